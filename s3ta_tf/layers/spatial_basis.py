"""The Fourier spatial basis S (SPEC §1).

Per axis, F cosines and F sines: for rows ``f_u(i) = cos(π·u·i/h)`` and
``f_{F+u}(i) = sin(π·u·i/h)`` for u = 1..F (likewise ``g`` for columns with w).
Channel ``a·2F + b`` of S is ``f_a(i)·g_b(j)``: (2F)² channels, 64 for F = 4.

Concatenated to keys and values, S lets a query ask "where" (non-zero spatial part) as
well as "what" (non-zero key part), and lets an answer report a location.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def _axis_functions(n: int, frequencies: int) -> np.ndarray:
    """[n, 2F]: cos(π·u·i/n) for u=1..F, then sin(π·u·i/n) for u=1..F."""
    i = np.arange(n, dtype=np.float64)[:, None]
    u = np.arange(1, frequencies + 1, dtype=np.float64)[None, :]
    return np.concatenate([np.cos(np.pi * u * i / n), np.sin(np.pi * u * i / n)], axis=1)


def fourier_basis(height: int, width: int, frequencies: int = 4) -> np.ndarray:
    """The fixed basis as a float32 array ``[height, width, (2F)²]``."""
    f = _axis_functions(height, frequencies)  # [h, 2F]
    g = _axis_functions(width, frequencies)   # [w, 2F]
    s = f[:, None, :, None] * g[None, :, None, :]  # [h, w, 2F, 2F]
    return s.reshape(height, width, -1).astype(np.float32)


class FourierSpatialBasis(tf.keras.layers.Layer):
    """Returns the basis ``[h, w, c_S]``; fixed by default, a trainable weight if ``learnable``.

    ``call()`` takes no tensor input (pass nothing or anything; it is ignored) so the same
    basis serves every batch element.
    """

    def __init__(self, height: int, width: int, frequencies: int = 4, learnable: bool = False, **kw):
        super().__init__(**kw)
        self.height, self.width = int(height), int(width)
        self.frequencies, self.learnable = int(frequencies), bool(learnable)
        self.channels = (2 * self.frequencies) ** 2

    def build(self, input_shape=None):
        init = fourier_basis(self.height, self.width, self.frequencies)
        self.basis = self.add_weight(
            name="basis", shape=init.shape, dtype=tf.float32, trainable=self.learnable,
            initializer=tf.constant_initializer(init))
        super().build(input_shape)

    def call(self, inputs=None):
        return tf.cast(self.basis, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "frequencies": self.frequencies, "learnable": self.learnable}
