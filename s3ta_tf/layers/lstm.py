"""The policy core: an LSTM cell whose gates are computed in the compute dtype (bf16 under
mixed precision) while the cell state stays float32.

``[i, f, g, o] = x W_x + h W_h + b``; ``c' = σ(f + 1)·c + σ(i)·tanh(g)``; ``h' = σ(o)·tanh(c')``.
x ``[B, D]``, h and c ``[B, U]``. With ``input_norm`` x is layer-normalised first (learned gain
and bias): unbounded ReLU features whose scale grows in training (the attention agent's answer
processor reached an L2 norm of 52 on Pong) otherwise saturate every gate, so that c integrates
±1 per step, tanh(c) is constant and no gradient passes (docs/LEARNING.md §6).
"""
from __future__ import annotations

import tensorflow as tf


class LSTMCell(tf.keras.layers.Layer):

    def __init__(self, units: int, forget_bias: float = 1.0, input_norm: bool = False, **kw):
        super().__init__(**kw)
        self.units, self.forget_bias, self.input_norm = int(units), float(forget_bias), bool(input_norm)
        self.norm = (tf.keras.layers.LayerNormalization(epsilon=1e-5, dtype="float32", name="input_norm")
                     if self.input_norm else None)

    def build(self, input_shape):
        d, u = int(input_shape[-1]), self.units
        self.input_kernel = self.add_weight(name="input_kernel", shape=(d, 4 * u), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(u, 4 * u), initializer="orthogonal")
        self.bias = self.add_weight(name="bias", shape=(4 * u,), initializer="zeros")
        super().build(input_shape)

    def call(self, x, state):
        h, c = state
        dt = self.compute_dtype
        if self.norm is not None:
            x = self.norm(tf.cast(x, tf.float32))
        gates = (tf.matmul(tf.cast(x, dt), tf.cast(self.input_kernel, dt))
                 + tf.matmul(tf.cast(h, dt), tf.cast(self.recurrent_kernel, dt))
                 + tf.cast(self.bias, dt))
        i, f, g, o = tf.split(tf.cast(gates, tf.float32), 4, axis=-1)
        c = tf.sigmoid(f + self.forget_bias) * tf.cast(c, tf.float32) + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, (h, c)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "forget_bias": self.forget_bias,
                "input_norm": self.input_norm}
