"""ConvLSTM cell (Shi et al. 2015), split for speed into an input projection and a step.

Gates ``[i, f, g, o] = W_x * x_t + W_h * h_{t-1} + b`` (``*`` a SAME convolution), then
``c_t = σ(f + 1)·c_{t-1} + σ(i)·tanh(g)`` and ``h_t = σ(o)·tanh(c_t)``.

``W_x * x_t`` does not depend on the state, so the learner computes it for all B·T frames
in one batched convolution (:meth:`project_inputs`) and only the recurrent half runs inside
the time loop (:meth:`step`). Shapes: x ``[B, h, w, C_in]``, h and c ``[B, h, w, F]``,
gates ``[B, h, w, 4F]``. The cell state c is carried in float32 under mixed precision.

With ``layer_norm`` (Ba et al. 2016's layer-normalised LSTM, per position over the channels)
the two gate terms are normalised separately and the cell state before its tanh::

    gates = LN_x(W_x * x_t) + LN_h(W_h * h_{t-1}) + b,   h_t = σ(o)·tanh(LN_c(c_t))

so neither term's scale can pin the gates, and h keeps following the frame when c has grown.
Without it, over Pong's ~800-step episodes the cell integrates a nearly constant background
input until tanh(c) saturates (|c| 8 on average, 151 at most after 1.9M frames), h and the
keys stop changing from frame to frame and the attention is the same at every step
(docs/LEARNING.md §9).
"""
from __future__ import annotations

import tensorflow as tf


class ConvLSTMCell(tf.keras.layers.Layer):

    def __init__(self, filters: int, kernel_size: int = 3, forget_bias: float = 1.0, layer_norm: bool = False,
                 **kw):
        super().__init__(**kw)
        self.filters, self.kernel_size, self.forget_bias = int(filters), int(kernel_size), float(forget_bias)
        self.layer_norm = bool(layer_norm)
        norm = lambda name, center: tf.keras.layers.LayerNormalization(
            axis=-1, epsilon=1e-5, center=center, dtype="float32", name=name)
        # The gate bias b is added after the two normalised terms (their own offsets would repeat it).
        self.norms = ({"x": norm("input_norm", False), "h": norm("recurrent_norm", False),
                       "c": norm("cell_norm", True)} if self.layer_norm else None)

    def build(self, input_shape):
        c_in = int(input_shape[-1])
        k, f = self.kernel_size, self.filters
        self.input_kernel = self.add_weight(
            name="input_kernel", shape=(k, k, c_in, 4 * f), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(k, k, f, 4 * f), initializer="orthogonal")
        self.bias = self.add_weight(name="bias", shape=(4 * f,), initializer="zeros")
        if self.norms is not None:
            for key, n in self.norms.items():
                n.build((None, None, None, f if key == "c" else 4 * f))
        super().build(input_shape)

    def project_inputs(self, x):
        """``W_x * x + b`` for any leading batch size: ``[N, h, w, C_in] -> [N, h, w, 4F]``."""
        x = tf.cast(x, self.compute_dtype)
        w = tf.cast(self.input_kernel, self.compute_dtype)
        projected = tf.nn.conv2d(x, w, 1, "SAME")
        if self.norms is not None:
            projected = tf.cast(self.norms["x"](tf.cast(projected, tf.float32)), self.compute_dtype)
        return projected + tf.cast(self.bias, self.compute_dtype)

    def step(self, projected, state):
        """One recurrent step from projected inputs. state = (h, c) -> (h_t, (h_t, c_t))."""
        h, c = state
        w = tf.cast(self.recurrent_kernel, self.compute_dtype)
        recurrent = tf.nn.conv2d(tf.cast(h, self.compute_dtype), w, 1, "SAME")
        if self.norms is not None:
            recurrent = self.norms["h"](tf.cast(recurrent, tf.float32))
        gates = tf.cast(projected, tf.float32) + tf.cast(recurrent, tf.float32)
        i, f, g, o = tf.split(gates, 4, axis=-1)
        c = tf.sigmoid(f + self.forget_bias) * tf.cast(c, tf.float32) + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(self.norms["c"](c) if self.norms is not None else c)
        return h, (h, c)

    def call(self, x, state):
        return self.step(self.project_inputs(x), state)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "forget_bias": self.forget_bias, "layer_norm": self.layer_norm}
