"""The model side of every analysis: a *stepper* runs one agent step on numpy arrays.

A stepper has ``observation_shape (H, W, 3)``, ``num_actions``, ``num_heads`` (0 without
attention), ``feature_shape (h, w)`` or None, ``initial_state(batch_size) -> dict`` and::

    step(observation uint8 [B, H, W, 3], prev_action int32 [B], prev_reward float32 [B],
         state dict of [B, ...], first bool [B]) -> (outputs, new_state)

with numpy ``outputs``: ``logits [B, A]``, ``value [B]`` and, with attention, ``attention``,
``what``, ``where`` ``[B, N, h, w]``. Three kinds are provided: :class:`ModelStepper` over a
Python :class:`s3ta_tf.AgentNet`, :class:`SavedModelStepper` over an exported SavedModel
(``s3ta export``), and checkpoint directories (a ``tf.train.Checkpoint(model=...)`` with the
run's ``run.json`` beside it or in its parent, :mod:`s3ta_tf.checkpoints`) rebuilt into a :class:`ModelStepper`. Anything with the
same members (e.g. a small hand-made numpy model) works with every analysis.
"""
from __future__ import annotations

import os
from typing import Dict

import numpy as np

ATTENTION_KEYS = ("attention", "what", "where")


def _np_outputs(outputs) -> Dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in outputs.items()}


class ModelStepper:
    """A stepper over a Python ``s3ta_tf`` AgentNet (docs/API.md), traced once per batch shape."""

    def __init__(self, model):
        import tensorflow as tf
        self.model = model
        self.observation_shape = tuple(model.config.observation_shape)
        self.num_actions = int(model.num_actions)
        self.num_heads = int(model.num_heads) if model.has_attention else 0
        self.feature_shape = tuple(model.feature_shape) if model.has_attention else None
        self.variant = model.variant
        state_sig = {k: tf.TensorSpec([None] + s.shape.as_list(), tf.float32) for k, s in model.state_spec.items()}
        sig = [tf.TensorSpec([None, *self.observation_shape], tf.uint8), tf.TensorSpec([None], tf.int32),
               tf.TensorSpec([None], tf.float32), state_sig, tf.TensorSpec([None], tf.bool)]
        keep = ("logits", "value") + ATTENTION_KEYS

        def _step(observation, prev_action, prev_reward, state, first):
            out, new_state = model.step(observation, prev_action, prev_reward, state, first)
            return {k: v for k, v in out.items() if k in keep}, new_state

        self._step = tf.function(_step, input_signature=sig)

    def initial_state(self, batch_size: int) -> Dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.model.initial_state(batch_size).items()}

    def step(self, observation, prev_action, prev_reward, state, first=None):
        b = len(observation)
        first = np.zeros([b], bool) if first is None else np.asarray(first, bool)
        out, new_state = self._step(np.asarray(observation, np.uint8), np.asarray(prev_action, np.int32),
                                    np.asarray(prev_reward, np.float32),
                                    {k: np.asarray(v, np.float32) for k, v in state.items()}, first)
        return _np_outputs(out), _np_outputs(new_state)


class SavedModelStepper:
    """A stepper over an ``s3ta export`` SavedModel (signatures ``serving_default``, ``initial_state``).

    ``first`` goes to the signature's ``first`` input. Exports made before ``serving_default``
    had one get the episode start applied here the way the model does it: state, previous
    action and previous reward are zeroed for that row.
    """

    def __init__(self, export_dir: str):
        import tensorflow as tf
        from s3ta_tf.export import STATE_PREFIX, load_metadata
        meta = load_metadata(export_dir)
        self._prefix = STATE_PREFIX
        try:
            self._loaded = tf.saved_model.load(export_dir)
            self._serve = self._loaded.signatures["serving_default"]
            self._init = self._loaded.signatures["initial_state"]
        except Exception as e:  # noqa: BLE001 (protobuf, OS and TF errors alike: a damaged export)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ValueError(f"{export_dir} cannot be loaded as a SavedModel ({type(e).__name__}: {first}); "
                             f"the export is damaged or incomplete (e.g. a truncated saved_model.pb): "
                             f"export it again with 's3ta export' or use the run's export/latest") from None
        self.observation_shape = tuple(meta["config"]["observation_shape"])
        self.num_actions = int(meta["num_actions"])
        self.variant = meta["variant"]
        has_attention = "attention" in self._serve.structured_outputs
        self.num_heads = 0
        self.feature_shape = None
        if has_attention:
            _, n, h, w = self._serve.structured_outputs["attention"].shape
            self.num_heads, self.feature_shape = int(n), (int(h), int(w))
        self._state_names = sorted(k[len(STATE_PREFIX):] for k in self._serve.structured_input_signature[1]
                                   if k.startswith(STATE_PREFIX))
        self._takes_first = "first" in self._serve.structured_input_signature[1]

    def initial_state(self, batch_size: int) -> Dict[str, np.ndarray]:
        import tensorflow as tf
        out = self._init(batch_size=tf.constant(batch_size, tf.int32))
        return {k[len(self._prefix):]: np.asarray(v) for k, v in out.items() if k.startswith(self._prefix)}

    def step(self, observation, prev_action, prev_reward, state, first=None):
        import tensorflow as tf
        b = len(observation)
        first = np.zeros([b], bool) if first is None else np.asarray(first, bool)
        if self._takes_first:
            inputs = {"observation": tf.constant(np.asarray(observation, np.uint8)),
                      "prev_action": tf.constant(np.asarray(prev_action, np.int32)),
                      "prev_reward": tf.constant(np.asarray(prev_reward, np.float32)),
                      "first": tf.constant(first)}
            inputs.update({self._prefix + k: tf.constant(np.asarray(state[k], np.float32))
                           for k in self._state_names})
            return self._split(self._serve(**inputs))
        keep = 1.0 - first.astype(np.float32)
        inputs = {"observation": tf.constant(np.asarray(observation, np.uint8)),
                  "prev_action": tf.constant((np.asarray(prev_action) * keep).astype(np.int32)),
                  "prev_reward": tf.constant((np.asarray(prev_reward, np.float32) * keep))}
        for k in self._state_names:
            v = np.asarray(state[k], np.float32)
            inputs[self._prefix + k] = tf.constant(v * keep.reshape([-1] + [1] * (v.ndim - 1)))
        return self._split(self._serve(**inputs))

    def _split(self, out):
        outputs = {k: np.asarray(v) for k, v in out.items() if not k.startswith(self._prefix)}
        new_state = {k[len(self._prefix):]: np.asarray(v) for k, v in out.items() if k.startswith(self._prefix)}
        return outputs, new_state


def load_stepper(model_dir: str):
    """A stepper for ``model_dir``: an ``s3ta export`` SavedModel or a checkpoint directory."""
    if not model_dir or not os.path.isdir(model_dir):
        raise FileNotFoundError(f"model directory {model_dir!r} does not exist; expected an exported "
                                "SavedModel (s3ta export) or a checkpoint directory of a run (with its run.json)")
    if os.path.exists(os.path.join(model_dir, "saved_model.pb")):
        return SavedModelStepper(model_dir)
    from s3ta_tf.checkpoints import has_model_record, load_agent_net
    if has_model_record(model_dir):
        return ModelStepper(load_agent_net(model_dir))
    raise FileNotFoundError(f"{model_dir} is neither an exported SavedModel (no saved_model.pb) nor a "
                            f"checkpoint directory of a run (no run.json beside it or in its parent); "
                            "expected the output of 's3ta export' or a learner checkpoint directory")


def as_stepper(model):
    """A stepper from a stepper, an ``s3ta_tf`` AgentNet or a model directory path."""
    if isinstance(model, (str, os.PathLike)):
        return load_stepper(os.fspath(model))
    if hasattr(model, "state_spec") and hasattr(model, "unroll"):
        return ModelStepper(model)
    missing = [m for m in ("step", "initial_state", "observation_shape", "num_actions", "num_heads")
               if not hasattr(model, m)]
    if missing:
        raise TypeError(f"{type(model).__name__} is not a stepper (missing {missing}); pass an s3ta_tf AgentNet, "
                        "a model directory or an object with the stepper members (pipelines/analysis/stepper.py)")
    return model
