"""A stack of Dense layers with ReLU between them (and after the last unless ``activate_final=False``).

ReLU layers start from ``relu_initializer`` (Glorot-uniform by default; the attention agent
uses He-uniform, variance-preserving for ReLU), a linear final layer from Glorot-uniform;
``final_bias_stddev`` > 0 starts the final layer's bias from N(0, σ²)."""
from __future__ import annotations

import tensorflow as tf


class MLP(tf.keras.layers.Layer):

    def __init__(self, sizes, activate_final: bool = True, final_bias_stddev: float = 0.0,
                 relu_initializer: str = "glorot_uniform", **kw):
        super().__init__(**kw)
        self.sizes, self.activate_final = tuple(int(s) for s in sizes), bool(activate_final)
        self.final_bias_stddev, self.relu_initializer = float(final_bias_stddev), str(relu_initializer)
        last = len(self.sizes) - 1
        final_bias = (tf.keras.initializers.RandomNormal(stddev=self.final_bias_stddev)
                      if self.final_bias_stddev > 0 else "zeros")
        self.dense = [tf.keras.layers.Dense(
            s, activation="relu" if (i < last or self.activate_final) else None,
            kernel_initializer=self.relu_initializer if (i < last or self.activate_final) else "glorot_uniform",
            bias_initializer=final_bias if i == last else "zeros",
            dtype=self.dtype_policy, name=f"dense_{i}") for i, s in enumerate(self.sizes)]

    def call(self, x):
        for layer in self.dense:
            x = layer(x)
        return x

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes, "activate_final": self.activate_final,
                "final_bias_stddev": self.final_bias_stddev, "relu_initializer": self.relu_initializer}
