"""A TF-Agents ``Network`` around an s3ta_tf ``AgentNet`` (any variant).

Inputs are the model's inputs at a time step (docs/API.md)::

    {"observation": uint8 [B, (T,) H, W, 3],
     "prev_action": int32 [B, (T)],      a_{t-1}
     "prev_reward": float32 [B, (T)]}    r_{t-1}, raw (the model clips it)

``step_type`` ``[B, (T)]`` marks episode starts (``StepType.FIRST``), where the model resets
its recurrent state and the previous action/reward. ``network_state`` is the model's state
(``state_spec = model.state_spec``: ConvLSTM and LSTM h/c; ``{}`` for ``feedforward``).

With one outer dimension ``[B]`` the call is one actor step (``model.step``); with two,
``[B, T]``, it is a learner unroll (``model.unroll``) starting from ``network_state``.
Returns ``(outputs, new_state)``, ``outputs`` the model's dict (``logits [B, (T,) A]``,
``value [B, (T)]``, and the attention outputs for attention variants).
"""
from __future__ import annotations

import tensorflow as tf
from tf_agents.networks import network
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import s3ta_tf


def input_spec(observation_shape) -> dict:
    """The network's per-step input spec (no batch or time dimension)."""
    return {
        "observation": tensor_spec.BoundedTensorSpec(tuple(observation_shape), tf.uint8, 0, 255,
                                                     name="observation"),
        "prev_action": tf.TensorSpec((), tf.int32, name="prev_action"),
        "prev_reward": tf.TensorSpec((), tf.float32, name="prev_reward"),
    }


class ActorCriticNetwork(network.Network):
    """See the module docstring. ``model`` is an ``s3ta_tf`` AgentNet (``build_agent_net``)."""

    def __init__(self, model: tf.keras.Model, name: str = "ActorCriticNetwork"):
        super().__init__(input_tensor_spec=input_spec(model.config.observation_shape),
                         state_spec=dict(model.state_spec), name=name)
        self._model = model
        self.create_variables()  # the model's weights exist already; this registers them

    @property
    def model(self) -> tf.keras.Model:
        return self._model

    @property
    def num_actions(self) -> int:
        return self._model.num_actions

    @classmethod
    def from_config_and_variant(cls, agent_config, variant: str, num_actions: int) -> "ActorCriticNetwork":
        return cls(s3ta_tf.build_agent_net(agent_config, variant=variant, num_actions=num_actions))

    def call(self, inputs, step_type=None, network_state=(), training=False):
        observation = tf.convert_to_tensor(inputs["observation"])
        outer_rank = observation.shape.rank - 3
        if outer_rank not in (1, 2):
            raise ValueError(f"ActorCriticNetwork: observation must be uint8 [B, H, W, 3] (one step) or "
                             f"[B, T, H, W, 3] (an unroll), got shape {observation.shape}")
        if step_type is None:
            first = tf.zeros(tf.shape(observation)[:outer_rank], tf.bool)
        else:
            first = tf.equal(step_type, ts.StepType.FIRST)
        state = network_state if network_state else self._model.initial_state(tf.shape(observation)[0])
        if outer_rank == 1:
            return self._model.step(observation, inputs["prev_action"], inputs["prev_reward"], state,
                                    first=first)
        return self._model.unroll(observation, inputs["prev_action"], inputs["prev_reward"], first, state)
