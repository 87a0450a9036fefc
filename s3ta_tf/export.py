"""SavedModel export with explicit serving signatures.

Signatures (state tensors are flattened to ``state_<name>`` for every key of
``model.state_spec``; the same names come back as outputs so steps chain)::

    serving_default(observation uint8 [B, H, W, 3], prev_action int32 [B],
                    prev_reward float32 [B], state_<name> float32 [B, ...],
                    first bool [B] (optional))
        -> logits [B, A], value [B], action int32 [B] (greedy),
           attention / what / where [B, N, h, w], queries [B, N, c_K + c_S],
           answers [B, N, c_V + c_S] (attention variants), state_<name>
        where first[i] is True, row i starts an episode: its state and previous action and
        reward are reset to zero before the step (no initial_state call needed)
    serving_reset  the same function (kept for clients of earlier exports, where only it
                   had ``first``)
    initial_state(batch_size int32 []) -> state_<name> zeros

How ``first`` is optional (measured with TF 2.15): its placeholder is a
``PlaceholderWithDefault`` and ``SignatureDef.defaults['first']`` holds the default, an empty
bool ``[0]`` meaning "no row starts an episode". Clients that read the SignatureDef -- TF
Serving, ``saved_model_cli run``, a TF1 ``Session`` on the signature's tensors, C++
``SavedModelBundle`` -- may leave ``first`` out. Python's ``tf.saved_model.load(d).signatures``
ignores ``SignatureDef.defaults`` in TF 2.15 (the call fails with "missing a required argument:
'first'"), so from Python either pass ``first`` (``tf.zeros([B], tf.bool)`` for no reset) or call
the restored function ``tf.saved_model.load(d).serve(observation, prev_action, prev_reward,
state_dict[, first])``, which keeps the Python default.

The export also stores ``s3ta_config.json`` (preset fields, variant, num_actions) in
``assets.extra/`` so tools can rebuild the Python model or check input shapes.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import tensorflow as tf

from s3ta_tf.models.agent_net import AgentNet
from s3ta_tf.validation import assert_runtime_shapes

STATE_PREFIX = "state_"
CONFIG_FILE = "s3ta_config.json"
INTERPRETABILITY_OUTPUTS = ("attention", "what", "where", "queries", "answers")


class _Untracked:
    """Hides the Keras model from SavedModel's object tracking (Keras would try to trace its
    own ``call``); its variables are tracked explicitly instead."""

    def __init__(self, model):
        self.model = model


class ServingModule(tf.Module):
    """Holds the model's variables and the serving functions.

    ``serve(observation, prev_action, prev_reward, state, first=<empty>)``: ``state`` is a dict
    ``{state_<name>: tensor}``; an empty ``first`` (the default) resets no row. Exported as the
    ``serving_default`` and ``serving_reset`` signatures; the Python default of ``first`` becomes
    the SignatureDef's default.
    """

    def __init__(self, model: AgentNet):
        super().__init__(name="s3ta_serving")
        self._agent = _Untracked(model)
        self.model_variables = list(model.variables)
        h, w, c = model.config.observation_shape
        state_specs = {STATE_PREFIX + k: tf.TensorSpec([None] + spec.shape.as_list(), tf.float32,
                                                       name=STATE_PREFIX + k)
                       for k, spec in model.state_spec.items()}
        no_reset = tf.zeros([0], tf.bool)   # must be a Tensor: SavedModel keeps only Tensor defaults

        def serve(observation, prev_action, prev_reward, state, first=no_reset):
            return self._serve(dict(state, observation=observation, prev_action=prev_action,
                                    prev_reward=prev_reward, first=first))

        self.serve = tf.function(serve, input_signature=[
            tf.TensorSpec([None, h, w, c], tf.uint8, name="observation"),
            tf.TensorSpec([None], tf.int32, name="prev_action"),
            tf.TensorSpec([None], tf.float32, name="prev_reward"),
            state_specs,
            tf.TensorSpec([None], tf.bool, name="first")])
        self.initial_state = tf.function(
            self._initial_state, input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")])

    def _serve(self, inputs):
        model = self._agent.model
        batch = tf.shape(inputs["observation"])[0]
        first = inputs["first"]
        # An empty first (the signature's default) resets no row; any other length must be B.
        inputs["first"] = tf.cond(tf.equal(tf.size(first), 0), lambda: tf.zeros([batch], tf.bool),
                                  lambda: first)
        expected = {"observation": model.config.observation_shape, "prev_action": (), "prev_reward": (),
                    "first": ()}
        expected.update({STATE_PREFIX + k: s.shape.as_list() for k, s in model.state_spec.items()})
        checks = assert_runtime_shapes(inputs, expected) + assert_input_values(inputs, model.num_actions)
        with tf.control_dependencies(checks):
            inputs = {k: tf.identity(v) for k, v in inputs.items()}
        state = {k[len(STATE_PREFIX):]: v for k, v in inputs.items() if k.startswith(STATE_PREFIX)}
        out, new_state = self._agent.model.step(inputs["observation"], inputs["prev_action"], inputs["prev_reward"],
                                                state, inputs["first"])
        result = {"logits": out["logits"], "value": out["value"],
                  "action": tf.argmax(out["logits"], axis=-1, output_type=tf.int32)}
        result.update({k: out[k] for k in INTERPRETABILITY_OUTPUTS if k in out})
        result.update({STATE_PREFIX + k: v for k, v in new_state.items()})
        return result

    def _initial_state(self, batch_size):
        state = {STATE_PREFIX + k: v for k, v in self._agent.model.initial_state(batch_size).items()}
        # A signature needs at least one output; the feed-forward baseline has no state.
        return state or {"empty": tf.zeros([batch_size, 0])}


def assert_input_values(inputs: dict, num_actions: int) -> list:
    """Graph-time value checks of a step's inputs: at least one row (an empty batch would fail
    deep in the network with a misleading shape error), ``prev_action`` in ``[0, num_actions)``,
    and ``prev_reward`` and every state tensor finite. The error names the input and its range."""
    ops = [
        tf.debugging.assert_positive(
            tf.shape(inputs["observation"])[0], message="observation: expected a batch of B >= 1 rows, got B = 0"),
        tf.debugging.assert_greater_equal(
            inputs["prev_action"], 0, message=f"prev_action: expected int32 [B] in [0, {num_actions})"),
        tf.debugging.assert_less(
            inputs["prev_action"], num_actions, message=f"prev_action: expected int32 [B] in [0, {num_actions})"),
    ]
    for k, x in inputs.items():
        if x.dtype.is_floating:
            ops.append(tf.debugging.assert_equal(
                tf.reduce_all(tf.math.is_finite(x)), True,
                message=f"{k}: expected finite float32 values (got NaN or inf)"))
    return ops


def check_export_target(out_dir: str) -> None:
    """``out_dir`` must be new, empty, or a previous s3ta export (which is then replaced):
    anything else would be lost, so it raises ValueError naming what is there. A previous
    export holding anything besides the SavedModel's own entries (a user's file put beside it)
    is refused too, naming those entries."""
    if not os.path.lexists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise ValueError(f"--out {out_dir} is an existing file; expected a new directory, an empty one "
                         f"or a previous s3ta export to replace")
    entries = os.listdir(out_dir)
    if entries and not os.path.isfile(os.path.join(out_dir, "assets.extra", CONFIG_FILE)):
        shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
        raise ValueError(f"--out {out_dir} is a non-empty directory that is not an s3ta export "
                         f"(it holds {shown}); choose a new directory: nothing was written")
    saved_model_entries = {"saved_model.pb", "variables", "assets", "assets.extra", "fingerprint.pb"}
    others = sorted(set(entries) - saved_model_entries)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise ValueError(f"--out {out_dir} is a previous s3ta export that also holds {shown}, which "
                         f"replacing it would delete; move them out or choose a new directory: "
                         f"nothing was written")


def model_metadata(model: AgentNet) -> dict:
    from s3ta_tf.config import to_dict
    return {"config": to_dict(model.config), "variant": model.variant, "num_actions": model.num_actions,
            "state_spec": {k: s.shape.as_list() for k, s in model.state_spec.items()}}


def export_saved_model(model: AgentNet, out_dir: str) -> str:
    """Writes the SavedModel to ``out_dir`` atomically (a sibling temp dir, then a rename).
    ``out_dir`` must be new, empty or a previous export (:func:`check_export_target`)."""
    out_dir = os.path.abspath(out_dir)
    check_export_target(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    module = ServingModule(model)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        tf.saved_model.save(module, tmp, signatures={
            # The tf.function itself, not a concrete function: only then does SavedModel turn
            # first's Python default into SignatureDef.defaults (a PlaceholderWithDefault).
            "serving_default": module.serve,
            "serving_reset": module.serve,
            "initial_state": module.initial_state.get_concrete_function()})
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, "assets.extra", CONFIG_FILE), "w") as f:
            json.dump(model_metadata(model), f, indent=2)
        if os.path.exists(out_dir):  # a previous export (or an empty directory): swap it out
            old = tempfile.mkdtemp(prefix=".export-old-", dir=parent)
            os.rmdir(old)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def load_metadata(export_dir: str) -> dict:
    """The ``s3ta_config.json`` of an exported model (FileNotFoundError naming the path if absent)."""
    path = os.path.join(export_dir, "assets.extra", CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{export_dir} is not an s3ta SavedModel export (missing {path})")
    with open(path) as f:
        return json.load(f)
