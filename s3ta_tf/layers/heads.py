"""Policy and value heads: MLP 128 (ReLU) → policy logits ``[B, A]`` and → value ``[B]`` (float32)."""
from __future__ import annotations

import tensorflow as tf


class PolicyValueHeads(tf.keras.layers.Layer):

    def __init__(self, hidden: int, num_actions: int, **kw):
        super().__init__(**kw)
        self.hidden, self.num_actions = int(hidden), int(num_actions)
        self.torso = tf.keras.layers.Dense(self.hidden, activation="relu", dtype=self.dtype_policy, name="hidden")
        self.policy = tf.keras.layers.Dense(self.num_actions, dtype=self.dtype_policy, name="policy_logits")
        self.baseline = tf.keras.layers.Dense(1, dtype=self.dtype_policy, name="value")

    def call(self, x):
        x = self.torso(x)
        logits = tf.cast(self.policy(x), tf.float32)
        value = tf.cast(self.baseline(x), tf.float32)[..., 0]
        return logits, value

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "num_actions": self.num_actions}
