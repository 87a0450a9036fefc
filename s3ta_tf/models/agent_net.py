"""The attention-augmented agent and its baselines as one recurrent Keras model (SPEC §1).

One time step of the ``attention`` agent (state from step t-1, frame x_t)::

    F_t, s_vis   = ConvLSTM(ConvTorso(x_t), s_vis)              F_t [B, h, w, 128]
    q_t          = QueryNetwork(h_lstm(t-1))                    [B, N, c_K + c_S]
    a_t, A_t     = SpatialAttention(F_t, S, q_t)                 [B, N, c_V + c_S], [B, N, h, w]
    z_t          = AnswerMLP([a_t, q_t, onehot(a_{t-1}), clip(r_{t-1})])
    h_lstm, s    = LSTM(z_t, s)
    π_t, V_t     = Heads(h_lstm)

``fixed-query`` replaces QueryNetwork by a learnable bias, ``l2-keys`` drops the queries and
uses one map with logits ‖K_ij‖₂. ``feedforward`` and ``lstm`` are the IMPALA deep-ResNet
baselines (the latter with an LSTM fed the previous action and reward).

With ``config.frame_difference`` the torso sees ``[x_t, x_t − x_{t−1}]`` (6 channels, in pixel
units; the difference is 0 at an episode's first step) and the state carries ``prev_frame``.

Where ``first`` is True the recurrent state and the previous action and reward are reset
to zero before the step. :meth:`AgentNet.unroll` applies the vision torso and the ConvLSTM's
input projection to all B·T frames at once, then runs the recurrent half step by step.
"""
from __future__ import annotations

import tensorflow as tf

from s3ta_tf.config import AgentConfig, AGENT_VARIANTS, from_dict, to_dict
from s3ta_tf.layers import (FixedQueries, FourierSpatialBasis, ImpalaResNet, L2KeyAttention, LSTMCell,
                            MLP, PolicyValueHeads, QueryNetwork, SpatialAttention, VisionCore)
from s3ta_tf.precision import layer_policy
from s3ta_tf.validation import check_state, check_tensor

ATTENTION_VARIANTS = ("attention", "fixed-query", "l2-keys")


class AgentNet(tf.keras.Model):
    """See the module docstring and docs/API.md."""

    def __init__(self, config: AgentConfig, variant: str = "attention", num_actions: int = 18, **kw):
        if variant not in AGENT_VARIANTS:
            raise ValueError(f"unknown agent variant {variant!r}; expected one of {AGENT_VARIANTS}")
        if int(num_actions) < 1:
            raise ValueError(f"num_actions must be a positive integer, got {num_actions}")
        kw.setdefault("name", variant.replace("-", "_") + "_agent")
        super().__init__(**kw)
        self.config, self.variant, self.num_actions = config, variant, int(num_actions)
        self.has_attention = variant in ATTENTION_VARIANTS
        self.has_lstm = variant != "feedforward"
        self.num_heads = 1 if variant == "l2-keys" else config.num_heads
        self.feature_shape = config.feature_shape
        policy = layer_policy(config.precision)
        c = config
        if self.has_attention:
            self.vision = VisionCore(c.conv_channels, c.conv_kernels, c.conv_strides, c.convlstm_channels,
                                     c.convlstm_kernel, c.convlstm_layer_norm, torso=c.vision_torso,
                                     resnet_channels=c.resnet_channels, resnet_blocks=c.resnet_blocks,
                                     dtype=policy, name="vision_core")
            self.spatial_basis = FourierSpatialBasis(*self.feature_shape, c.basis_frequencies,
                                                     c.learnable_basis, name="spatial_basis")
            if variant == "l2-keys":
                self.attention_heads, self.query_source = L2KeyAttention(c.key_channels, name="attention"), None
            else:
                self.attention_heads = SpatialAttention(c.key_channels, name="attention")
                self.query_source = (QueryNetwork(c.query_hidden, c.num_heads, c.query_size,
                                                  c.initial_query_scale, "he_uniform",
                                                  key_channels=c.key_channels, basis_gain=c.query_basis_gain,
                                                  dtype=policy, name="query_network") if variant == "attention" else
                                     FixedQueries(c.num_heads, c.query_size, c.initial_query_scale,
                                                  name="fixed_queries"))
            self.answer_processor = MLP(c.answer_hidden, relu_initializer="he_uniform", dtype=policy,
                                        name="answer_processor")
        else:
            self.torso = ImpalaResNet(c.resnet_channels, c.resnet_blocks, c.resnet_dense, dtype=policy,
                                      name="impala_resnet")
        if self.has_lstm:
            self.core = LSTMCell(c.lstm_units, input_norm=c.lstm_input_norm, dtype=policy, name="policy_core")
        self.heads = PolicyValueHeads(c.head_hidden, self.num_actions, dtype=policy, name="heads")
        self.state_spec = self._state_spec()
        self._observation_shape = tuple(c.observation_shape)
        # Create every weight now with one eager step on a batch of one.
        self.step(tf.zeros((1,) + self._observation_shape, tf.uint8), tf.zeros([1], tf.int32),
                  tf.zeros([1]), self.initial_state(1))
        self.built = True

    # ---- state ---------------------------------------------------------------------------
    def _state_spec(self) -> dict:
        spec = {}
        if self.has_attention:
            h, w = self.feature_shape
            for k in ("convlstm_h", "convlstm_c"):
                spec[k] = tf.TensorSpec((h, w, self.config.convlstm_channels), tf.float32, name=k)
        if self.has_lstm:
            for k in ("lstm_h", "lstm_c"):
                spec[k] = tf.TensorSpec((self.config.lstm_units,), tf.float32, name=k)
        if self.config.frame_difference:
            spec["prev_frame"] = tf.TensorSpec(tuple(self.config.observation_shape), tf.float32, name="prev_frame")
        return spec

    def initial_state(self, batch_size) -> dict:
        """Zero state: dict name -> float32 ``[batch_size, *spec.shape]``."""
        return {k: tf.zeros(tf.concat([[batch_size], s.shape], 0), tf.float32) for k, s in self.state_spec.items()}

    # ---- the two halves of a step --------------------------------------------------------
    def _encode(self, frames, previous=None):
        """State-free part, batched over any number of frames: ``[N, H, W, 3] -> [N, ...]``;
        ``previous`` (float32 pixels ``[N, H, W, 3]``) only with ``config.frame_difference``."""
        if self.config.frame_difference:
            frames = tf.cast(frames, tf.float32)
            frames = tf.concat([frames, frames - previous], axis=-1)
        return self.vision.project(frames) if self.has_attention else self.torso(frames)

    def _previous_frames(self, frames, prev_frame, first):
        """The frame each step's difference is taken against: the last one, or the frame itself
        where an episode begins. ``frames [B, T, H, W, 3]``, ``prev_frame [B, H, W, 3]``, ``first [B, T]``."""
        frames = tf.cast(frames, tf.float32)
        previous = tf.concat([prev_frame[:, None], frames[:, :-1]], axis=1)
        return tf.where(first[:, :, None, None, None], frames, previous)

    def _recurrent_step(self, encoded, prev_action, prev_reward, state, first):
        keep = 1.0 - tf.cast(first, tf.float32)  # [B]: 0 where an episode begins
        state = {k: v * tf.reshape(keep, [-1] + [1] * (v.shape.rank - 1)) for k, v in state.items()}
        prev_action = tf.where(first, tf.zeros_like(prev_action), prev_action)
        action_reward = [tf.one_hot(prev_action, self.num_actions),
                         (tf.clip_by_value(prev_reward, -self.config.reward_clip, self.config.reward_clip)
                          * keep)[:, None]]
        outputs, new_state = {}, {}
        if self.has_attention:
            features, (new_state["convlstm_h"], new_state["convlstm_c"]) = self.vision.step(
                encoded, (state["convlstm_h"], state["convlstm_c"]))
            queries = None if self.query_source is None else self.query_source(state["lstm_h"])
            heads = self.attention_heads(features, self.spatial_basis(None), queries)
            batch = tf.shape(features)[0]
            pieces = [tf.reshape(heads["answers"], [batch, -1])]
            if queries is not None:
                pieces.append(tf.reshape(queries, [batch, -1]))
                outputs["queries"] = queries
            x = self.answer_processor(tf.concat(pieces + action_reward, axis=-1))
            outputs.update(heads)
        elif self.has_lstm:
            x = tf.concat([tf.cast(encoded, tf.float32)] + action_reward, axis=-1)
        else:
            x = encoded
        if self.has_lstm:
            x, (new_state["lstm_h"], new_state["lstm_c"]) = self.core(x, (state["lstm_h"], state["lstm_c"]))
        outputs["logits"], outputs["value"] = self.heads(x)
        return outputs, new_state

    # ---- public API ----------------------------------------------------------------------
    def _check_inputs(self, observation, prev_action, prev_reward, first, state, lead):
        observation = check_tensor("observation", observation, lead + self._observation_shape, (tf.uint8,))
        prev_action = tf.cast(check_tensor("prev_action", prev_action, lead, (tf.int32, tf.int64)), tf.int32)
        prev_reward = tf.cast(check_tensor("prev_reward", prev_reward, lead, (tf.float32, tf.float64)), tf.float32)
        if first is None:
            first = tf.zeros_like(prev_action, tf.bool)
        first = tf.cast(check_tensor("first", first, lead, (tf.bool, tf.int32, tf.int64)), tf.bool)
        state = check_state(state, self.state_spec, lead[0])
        return observation, prev_action, prev_reward, first, state

    def step(self, observation, prev_action, prev_reward, state, first=None):
        """One step (actor path). observation uint8 ``[B, H, W, 3]``, prev_action int32 ``[B]``,
        prev_reward float32 ``[B]``, state from :meth:`initial_state`, first bool ``[B]``.
        Returns ``(outputs, new_state)`` (see docs/API.md)."""
        observation = tf.convert_to_tensor(observation)
        batch = observation.shape[0] if observation.shape.rank else None
        observation, prev_action, prev_reward, first, state = self._check_inputs(
            observation, prev_action, prev_reward, first, state, (batch,))
        if not self.config.frame_difference:
            return self._recurrent_step(self._encode(observation), prev_action, prev_reward, state, first)
        previous = self._previous_frames(observation[:, None], state["prev_frame"], first[:, None])[:, 0]
        outputs, new_state = self._recurrent_step(self._encode(observation, previous), prev_action, prev_reward,
                                                  state, first)
        new_state["prev_frame"] = tf.cast(observation, tf.float32)
        return outputs, new_state

    def unroll(self, observations, prev_actions, prev_rewards, firsts, state):
        """Time-unrolled call (learner path) over ``[B, T, ...]`` inputs with a static T.
        ``firsts[:, t]`` resets the state before step t. Returns ``(outputs [B, T, ...], final_state)``."""
        observations = tf.convert_to_tensor(observations)
        if observations.shape.rank != 5 or observations.shape[1] is None:
            raise ValueError(f"observations: expected uint8 [B, T, {', '.join(map(str, self._observation_shape))}] "
                             f"with a static T, got shape {observations.shape}")
        batch, steps = observations.shape[0], int(observations.shape[1])
        observations, prev_actions, prev_rewards, firsts, state = self._check_inputs(
            observations, prev_actions, prev_rewards, firsts, state, (batch, steps))
        previous = None
        if self.config.frame_difference:
            previous = tf.reshape(self._previous_frames(observations, state["prev_frame"], firsts),
                                  (-1,) + self._observation_shape)
        encoded = self._encode(tf.reshape(observations, (-1,) + self._observation_shape), previous)
        encoded = tf.reshape(encoded, tf.concat([tf.shape(observations)[:2], tf.shape(encoded)[1:]], 0))
        # tf.unstack (not encoded[:, t]): its gradient is one stack, where a slice's gradient
        # would materialise a full [B, T, ...] tensor per step.
        per_step = []
        for enc_t, a_t, r_t, f_t in zip(*(tf.unstack(x, axis=1) for x in (encoded, prev_actions, prev_rewards,
                                                                         firsts))):
            out, state = self._recurrent_step(enc_t, a_t, r_t, state, f_t)
            per_step.append(out)
        outputs = {k: tf.stack([o[k] for o in per_step], axis=1) for k in per_step[0]}
        if self.config.frame_difference:
            state["prev_frame"] = tf.cast(observations[:, -1], tf.float32)
        return outputs, state

    def call(self, inputs, training=None):
        """Keras entry point: ``inputs`` dict with observation, prev_action, prev_reward, state
        (and optionally first); same as :meth:`step`."""
        return self.step(inputs["observation"], inputs["prev_action"], inputs["prev_reward"], inputs["state"],
                         inputs.get("first"))

    def get_config(self):
        return {"config": to_dict(self.config), "variant": self.variant, "num_actions": self.num_actions}

    @classmethod
    def from_config(cls, config):
        return cls(from_dict(AgentConfig, config["config"]), config["variant"], config["num_actions"])


def build_agent_net(config: AgentConfig, variant: str = "attention", num_actions: int = 18) -> AgentNet:
    """Builds (and creates the weights of) an agent; see docs/API.md."""
    return AgentNet(config, variant, num_actions)
