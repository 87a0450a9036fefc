"""SavedModel export with explicit serving signatures.

Signatures (state tensors are flattened to ``state_<name>`` for every key of
``model.state_spec``; the same names come back as outputs so steps chain)::

    serving_default(observation uint8 [B, H, W, 3], prev_action int32 [B],
                    prev_reward float32 [B], state_<name> float32 [B, ...])
        -> logits [B, A], value [B], action int32 [B] (greedy),
           attention / what / where [B, N, h, w], queries [B, N, c_K + c_S],
           answers [B, N, c_V + c_S] (attention variants), state_<name>
    serving_reset(the same inputs + first bool [B]) -> the same outputs
        where first[i] is True, row i starts an episode: its state and previous action and
        reward are reset to zero before the step (no initial_state call needed)
    initial_state(batch_size int32 []) -> state_<name> zeros

A TF Serving request must feed every input of a signature, so the optional ``first`` is a
second signature rather than an optional input of ``serving_default``.

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
    """Holds the model's variables and the two signature functions."""

    def __init__(self, model: AgentNet):
        super().__init__(name="s3ta_serving")
        self._agent = _Untracked(model)
        self.model_variables = list(model.variables)
        h, w, c = model.config.observation_shape
        inputs = {
            "observation": tf.TensorSpec([None, h, w, c], tf.uint8, name="observation"),
            "prev_action": tf.TensorSpec([None], tf.int32, name="prev_action"),
            "prev_reward": tf.TensorSpec([None], tf.float32, name="prev_reward"),
        }
        for k, spec in model.state_spec.items():
            inputs[STATE_PREFIX + k] = tf.TensorSpec([None] + spec.shape.as_list(), tf.float32,
                                                     name=STATE_PREFIX + k)
        self.serve = tf.function(self._serve, input_signature=[inputs])
        self.serve_reset = tf.function(
            self._serve, input_signature=[dict(inputs, first=tf.TensorSpec([None], tf.bool, name="first"))])
        self.initial_state = tf.function(
            self._initial_state, input_signature=[tf.TensorSpec([], tf.int32, name="batch_size")])

    def _serve(self, inputs):
        model = self._agent.model
        expected = {"observation": model.config.observation_shape, "prev_action": (), "prev_reward": ()}
        if "first" in inputs:
            expected["first"] = ()
        expected.update({STATE_PREFIX + k: s.shape.as_list() for k, s in model.state_spec.items()})
        checks = assert_runtime_shapes(inputs, expected) + assert_input_values(inputs, model.num_actions)
        with tf.control_dependencies(checks):
            inputs = {k: tf.identity(v) for k, v in inputs.items()}
        state = {k[len(STATE_PREFIX):]: v for k, v in inputs.items() if k.startswith(STATE_PREFIX)}
        out, new_state = self._agent.model.step(inputs["observation"], inputs["prev_action"], inputs["prev_reward"],
                                                state, inputs.get("first"))
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
    """Graph-time value checks of a step's inputs: ``prev_action`` in ``[0, num_actions)``, and
    ``prev_reward`` and every state tensor finite. The error names the input and its range."""
    ops = [
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
    anything else would be lost, so it raises ValueError naming what is there."""
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
            "serving_default": module.serve.get_concrete_function(),
            "serving_reset": module.serve_reset.get_concrete_function(),
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
