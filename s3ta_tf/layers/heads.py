"""Policy and value heads: MLP 128 (ReLU) → policy logits ``[B, A]`` and → value ``[B]``.

The hidden layer computes in the model's compute dtype; the logit and value layers always
compute in float32 (under bfloat16 a value of 57.3 would come out as 57.25, and the actors'
behaviour log-probabilities would carry that rounding into V-trace's importance weights)."""
from __future__ import annotations

import tensorflow as tf


class PolicyValueHeads(tf.keras.layers.Layer):

    def __init__(self, hidden: int, num_actions: int, **kw):
        super().__init__(**kw)
        self.hidden, self.num_actions = int(hidden), int(num_actions)
        self.torso = tf.keras.layers.Dense(self.hidden, activation="relu", dtype=self.dtype_policy, name="hidden")
        self.policy = tf.keras.layers.Dense(self.num_actions, dtype="float32", name="policy_logits")
        self.baseline = tf.keras.layers.Dense(1, dtype="float32", name="value")

    def call(self, x):
        x = tf.cast(self.torso(x), tf.float32)
        logits = tf.cast(self.policy(x), tf.float32)
        value = tf.cast(self.baseline(x), tf.float32)[..., 0]
        return logits, value

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "num_actions": self.num_actions}
