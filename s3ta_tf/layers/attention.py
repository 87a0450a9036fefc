"""Soft, spatial, top-down attention heads (SPEC §1, Appendix A.2).

Given vision features ``F [B, h, w, C]`` split into keys ``K = F[..., :c_K]`` and values
``V = F[..., c_K:]``, the spatial basis ``S [h, w, c_S]`` and N queries
``q [B, N, c_K + c_S]``::

    what_n[i, j]  = Σ_{c < c_K} q_n[c] · K[i, j, c]          (content part)
    where_n[i, j] = Σ_{c < c_S} q_n[c_K + c] · S[i, j, c]     (spatial part)
    Ã_n = what_n + where_n                                   (plain dot product, no 1/√d)
    A_n = softmax over all h·w positions of Ã_n
    a_n = Σ_ij A_n[i, j] · [V, S][i, j]                       answer [c_V + c_S]

The attention arithmetic (tiny next to the vision core) runs in float32.
"""
from __future__ import annotations

import tensorflow as tf


def _split_keys(x, key_channels: int):
    """``[..., c_K + rest] -> ([..., c_K], [..., rest])`` with tf.split (its gradient is one concat)."""
    return tf.split(x, [key_channels, x.shape[-1] - key_channels], axis=-1)


def spatial_softmax(logits):
    """Softmax over the last two axes: ``[..., h, w] -> [..., h, w]`` summing to 1 over (h, w)."""
    shape = tf.shape(logits)
    flat = tf.reshape(logits, tf.concat([shape[:-2], [-1]], 0))
    return tf.reshape(tf.nn.softmax(flat, axis=-1), shape)


def _flatten_space(x):
    """``[B, h, w, c] -> [B, h·w, c]`` (or ``[h, w, c] -> [h·w, c]``)."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([shape[:-3], [shape[-3] * shape[-2], shape[-1]]], 0))


def attend(attention, values, basis):
    """Answers ``a [B, N, c_V + c_S]`` = Σ_ij A[b, n, i, j] · [V, S][b, i, j, :].

    Two batched matmuls over the flattened space, ``[A·V, A·S]``, with no batch-broadcast copy
    of the basis."""
    shape = tf.shape(attention)
    flat = tf.reshape(attention, [shape[0], shape[1], -1])                       # [B, N, hw]
    answer_values = tf.matmul(flat, _flatten_space(values))                        # [B, N, c_V]
    answer_basis = tf.reshape(tf.matmul(tf.reshape(flat, [-1, shape[2] * shape[3]]), _flatten_space(basis)),
                              [shape[0], shape[1], -1])                           # [B, N, c_S]
    return tf.concat([answer_values, answer_basis], axis=-1)


def _logit_maps(queries, keys, basis):
    """``what [B, N, h, w]`` = q_K·K and ``where [B, N, h, w]`` = q_S·S as batched matmuls."""
    shape = tf.shape(keys)
    b, n = shape[0], tf.shape(queries)[1]
    q_keys, q_space = _split_keys(queries, keys.shape[-1])
    what = tf.matmul(q_keys, _flatten_space(keys), transpose_b=True)              # [B, N, hw]
    where = tf.matmul(tf.reshape(q_space, [b * n, -1]), _flatten_space(basis), transpose_b=True)
    to_maps = lambda x: tf.reshape(x, [b, n, shape[1], shape[2]])
    return to_maps(what), to_maps(where)


class SpatialAttention(tf.keras.layers.Layer):
    """Multi-head query/key/value attention over a feature map with a spatial basis.

    ``call(features, basis, queries)`` returns a dict: ``answers [B, N, c_V + c_S]``,
    ``attention [B, N, h, w]``, ``what`` and ``where`` ``[B, N, h, w]`` (their sum is the
    pre-softmax logits).
    """

    def __init__(self, key_channels: int, **kw):
        super().__init__(**kw)
        self.key_channels = int(key_channels)

    def call(self, features, basis, queries):
        features = tf.cast(features, tf.float32)
        basis = tf.cast(basis, tf.float32)
        queries = tf.cast(queries, tf.float32)
        keys, values = _split_keys(features, self.key_channels)
        what, where = _logit_maps(queries, keys, basis)
        attention = spatial_softmax(what + where)
        answers = attend(attention, values, basis)
        return {"answers": answers, "attention": attention, "what": what, "where": where}

    def get_config(self):
        return {**super().get_config(), "key_channels": self.key_channels}


def safe_norm(x, axis=-1):
    """‖x‖₂ over ``axis`` with a finite gradient everywhere: 0 (not NaN) where x = 0.

    ``tf.norm`` differentiates as x/‖x‖, which is 0/0 at an all-zero vector: a black region
    wider than a cell's receptive field gives all-zero keys, and one NaN gradient skips the
    whole update."""
    squared = tf.reduce_sum(tf.square(x), axis=axis)
    positive = squared > 0.0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, 1.0)), 0.0)


class L2KeyAttention(tf.keras.layers.Layer):
    """The "L2-norm keys" ablation (Section 4.4): no query; one map with logits ‖K_ij‖₂.

    Returns the same dict as :class:`SpatialAttention` with N = 1; ``what`` holds the key
    norms and ``where`` is zero (the map has no spatial query part).
    """

    def __init__(self, key_channels: int, **kw):
        super().__init__(**kw)
        self.key_channels = int(key_channels)

    def call(self, features, basis, queries=None):
        features = tf.cast(features, tf.float32)
        basis = tf.cast(basis, tf.float32)
        keys, values = _split_keys(features, self.key_channels)
        what = safe_norm(keys, axis=-1)[:, None]  # [B, 1, h, w]
        attention = spatial_softmax(what)
        answers = attend(attention, values, basis)
        return {"answers": answers, "attention": attention, "what": what, "where": tf.zeros_like(what)}

    def get_config(self):
        return {**super().get_config(), "key_channels": self.key_channels}
