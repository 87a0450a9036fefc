"""A stack of Dense layers with ReLU between them (and after the last unless ``activate_final=False``)."""
from __future__ import annotations

import tensorflow as tf


class MLP(tf.keras.layers.Layer):

    def __init__(self, sizes, activate_final: bool = True, **kw):
        super().__init__(**kw)
        self.sizes, self.activate_final = tuple(int(s) for s in sizes), bool(activate_final)
        last = len(self.sizes) - 1
        self.dense = [tf.keras.layers.Dense(
            s, activation="relu" if (i < last or self.activate_final) else None,
            dtype=self.dtype_policy, name=f"dense_{i}") for i, s in enumerate(self.sizes)]

    def call(self, x):
        for layer in self.dense:
            x = layer(x)
        return x

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes, "activate_final": self.activate_final}
