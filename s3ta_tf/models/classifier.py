"""Supervised S3TA classifiers and their ResNet baselines (SPEC §4, S3TA paper Section 4.2).

``S3TAClassifier``, one step t = 0..T-1 (ℓ_{-1} = 0)::

    F_t        = core(x)                (image: computed once, the same image every step)
               | ConvLSTM(core(x_t))    (video: frame t, recurrent over frames)
    q_t        = QueryNetwork(ℓ_{t-1})                     [B, N, c_K + c_S]
    a_t, A_t   = SpatialAttention(F_t, S, q_t)             [B, N, c_V + c_S], [B, N, h, w]
    δ_t        = Dense_K(PolicyMLP([a_t, q_t]))            class logits of this step
    ℓ_t        = ℓ_{t-1} + δ_t                             accumulated logits

The output is ℓ_{T-1} (cross-entropy is applied to it). The ImageNet core has no recurrence,
so presenting the image T times gives the same features each step: they are computed once.

Baselines: ``resnet`` (core → global average pool → Dense_K) and ``recurrent-resnet``
(x_t = x + M(δ_{t-1}) where the shared 1-layer MLP M maps a step's logits to an image-sized
``[S, S, 1]`` tensor broadcast over RGB; logits accumulated over steps like S3TA).

Inputs: float32 images ``[B, S, S, 3]`` in [0, 1] or video ``[B, T, S, S, 3]`` in [0, 1]
(scaled to [-1, 1] inside). Outputs (dict, float32): ``logits [B, K]`` (final accumulated),
``step_logits [B, T, K]`` (accumulated after each step); S3TA also ``attention``, ``what``,
``where`` ``[B, T, N, h, w]``.
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf

from s3ta_tf.config.classifier import CLASSIFIER_VARIANTS, ClassifierModelConfig
from s3ta_tf.layers import ConvLSTMCell, FourierSpatialBasis, MLP, QueryNetwork, SpatialAttention
from s3ta_tf.models.resnet_v2 import build_core
from s3ta_tf.precision import layer_policy
from s3ta_tf.validation import check_tensor


class _ClassifierBase(tf.keras.Model):
    """Shared input checking and the vision core."""

    def __init__(self, config: ClassifierModelConfig, num_classes: int, image_size: int,
                 video: bool, seq_len: int, **kw):
        super().__init__(**kw)
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.config, self.num_classes = config, int(num_classes)
        self.image_size, self.video, self.seq_len = int(image_size), bool(video), int(seq_len)
        self.policy = layer_policy(config.precision)
        self.core = build_core(config.core, config.tiny_widths, dtype=self.policy)
        shape = self.core.compute_output_shape((1, self.image_size, self.image_size, 3))
        self.feature_shape = (int(shape[1]), int(shape[2]))
        self.core_channels = int(shape[3])

    @property
    def input_signature_shape(self):
        s = self.image_size
        return (None, None, s, s, 3) if self.video else (None, s, s, 3)

    def _check_inputs(self, inputs) -> tf.Tensor:
        expected = self.input_signature_shape
        x = check_tensor("video" if self.video else "images", inputs, expected,
                         (tf.float32, tf.uint8))
        if x.dtype == tf.uint8:
            x = tf.cast(x, tf.float32) / 255.0
        return x * 2.0 - 1.0

    def _core_features(self, x, training):
        """``[B, S, S, 3]`` -> ``[B, h, w, C]`` (compute dtype)."""
        return self.core(tf.cast(x, self.policy.compute_dtype), training=training)

    def _seq_len(self, seq_len: Optional[int]) -> int:
        t = self.seq_len if seq_len is None else int(seq_len)
        if t < 1:
            raise ValueError(f"seq_len must be >= 1, got {t}")
        return t


class S3TAClassifier(_ClassifierBase):
    """See the module docstring. ``call(inputs, seq_len=None, training=False)``."""

    def __init__(self, config: ClassifierModelConfig, num_classes: int, image_size: int,
                 video: bool = False, seq_len: int = 4, **kw):
        kw.setdefault("name", "s3ta_classifier")
        super().__init__(config, num_classes, image_size, video, seq_len, **kw)
        c = config
        if not 0 < c.key_channels < (c.convlstm_channels or self.core_channels):
            raise ValueError(f"model.key_channels must be in (0, feature channels = "
                             f"{c.convlstm_channels or self.core_channels}), got {c.key_channels}")
        self.variant = "s3ta"
        self.num_heads = c.num_heads
        self.convlstm = (ConvLSTMCell(c.convlstm_channels, c.convlstm_kernel, dtype=self.policy,
                                      name="convlstm") if c.convlstm_channels else None)
        if self.convlstm is not None:
            self.convlstm.build((None, *self.feature_shape, self.core_channels))
        self.spatial_basis = FourierSpatialBasis(*self.feature_shape, c.basis_frequencies,
                                                 name="spatial_basis")
        self.attention_heads = SpatialAttention(c.key_channels, name="attention")
        self.query_network = QueryNetwork(c.query_hidden, c.num_heads, c.query_size,
                                          dtype=self.policy, name="query_network")
        self.policy_core = MLP(c.policy_hidden, dtype=self.policy, name="policy_core")
        self.class_logits = tf.keras.layers.Dense(self.num_classes, dtype=self.policy,
                                                  name="class_logits")

    def _video_features(self, x, training):
        """``[B, T, S, S, 3]`` -> list of T feature maps ``[B, h, w, F]`` through the ConvLSTM."""
        b, t = tf.shape(x)[0], x.shape[1]
        if t is None:
            raise ValueError("video: the number of frames must be static")
        frames = tf.reshape(x, [-1, self.image_size, self.image_size, 3])
        f = self._core_features(frames, training)
        if self.convlstm is None:
            f = tf.reshape(f, [b, t, *self.feature_shape, self.core_channels])
            return [f[:, i] for i in range(t)]
        projected = self.convlstm.project_inputs(f)
        projected = tf.reshape(projected, [b, t, *self.feature_shape, 4 * self.convlstm.filters])
        zeros = tf.zeros([b, *self.feature_shape, self.convlstm.filters], tf.float32)
        state, out = (zeros, zeros), []
        for i in range(t):
            h, state = self.convlstm.step(projected[:, i], state)
            out.append(h)
        return out

    def _image_features(self, x, training, t):
        f = self._core_features(x, training)
        if self.convlstm is not None:  # a recurrent core still sees the same image each step
            projected = self.convlstm.project_inputs(f)
            zeros = tf.zeros([tf.shape(x)[0], *self.feature_shape, self.convlstm.filters])
            state, out = (zeros, zeros), []
            for _ in range(t):
                h, state = self.convlstm.step(projected, state)
                out.append(h)
            return out
        return [f] * t

    def call(self, inputs, seq_len: Optional[int] = None, training=False):
        x = self._check_inputs(inputs)
        if self.video:
            features = self._video_features(x, training)
        else:
            features = self._image_features(x, training, self._seq_len(seq_len))
        basis = self.spatial_basis(None)
        batch = tf.shape(x)[0]
        logits = tf.zeros([batch, self.num_classes], tf.float32)
        steps = {"step_logits": [], "attention": [], "what": [], "where": []}
        for f in features:
            queries = self.query_network(logits)                     # [B, N, c_K + c_S]
            att = self.attention_heads(f, basis, queries)
            flat = tf.concat([tf.reshape(att["answers"], [batch, -1]),
                              tf.reshape(queries, [batch, -1])], axis=-1)
            delta = self.class_logits(self.policy_core(tf.cast(flat, self.policy.compute_dtype)))
            logits = logits + tf.cast(delta, tf.float32)
            steps["step_logits"].append(logits)
            for k in ("attention", "what", "where"):
                steps[k].append(att[k])
        out = {k: tf.stack(v, axis=1) for k, v in steps.items()}
        out["logits"] = logits
        return out


class ResNetClassifier(_ClassifierBase):
    """Plain baseline: core → global average pool → Dense_K (one step, T ignored)."""

    def __init__(self, config, num_classes, image_size, video=False, seq_len=1, **kw):
        kw.setdefault("name", "resnet_classifier")
        super().__init__(config, num_classes, image_size, video, seq_len, **kw)
        if video:
            raise ValueError("the resnet baseline classifies images; use s3ta for video")
        self.variant = "resnet"
        self.class_logits = tf.keras.layers.Dense(self.num_classes, dtype=self.policy,
                                                  name="class_logits")

    def _logits(self, x, training):
        pooled = tf.reduce_mean(self._core_features(x, training), axis=[1, 2])
        return tf.cast(self.class_logits(pooled), tf.float32)

    def call(self, inputs, seq_len: Optional[int] = None, training=False):
        logits = self._logits(self._check_inputs(inputs), training)
        return {"logits": logits, "step_logits": logits[:, None]}


class RecurrentResNetClassifier(ResNetClassifier):
    """Recurrent baseline: x_t = x + M(δ_{t-1}), M a shared Dense_K→S·S; logits summed."""

    def __init__(self, config, num_classes, image_size, video=False, seq_len=4, **kw):
        kw.setdefault("name", "recurrent_resnet_classifier")
        super().__init__(config, num_classes, image_size, video, seq_len, **kw)
        self.variant = "recurrent-resnet"
        self.feedback = tf.keras.layers.Dense(self.image_size * self.image_size,
                                              dtype=self.policy, name="logits_to_image")

    def call(self, inputs, seq_len: Optional[int] = None, training=False):
        x = self._check_inputs(inputs)
        s = self.image_size
        logits, delta, steps = None, None, []
        for t in range(self._seq_len(seq_len)):
            x_t = x if delta is None else x + tf.reshape(
                tf.cast(self.feedback(delta), tf.float32), [-1, s, s, 1])
            delta = self._logits(x_t, training)
            logits = delta if logits is None else logits + delta
            steps.append(logits)
        return {"logits": logits, "step_logits": tf.stack(steps, axis=1)}


_VARIANTS = {"s3ta": S3TAClassifier, "resnet": ResNetClassifier,
             "recurrent-resnet": RecurrentResNetClassifier}


def build_classifier(config: ClassifierModelConfig, num_classes: int, image_size: int,
                     variant: str = "s3ta", video: bool = False, seq_len: int = 4):
    """Builds (and creates the weights of) a classifier variant."""
    if variant not in _VARIANTS:
        raise ValueError(f"unknown classifier variant {variant!r}; expected one of "
                         f"{CLASSIFIER_VARIANTS}")
    model = _VARIANTS[variant](config, num_classes, image_size, video=video, seq_len=seq_len)
    shape = [1, 1, image_size, image_size, 3] if video else [1, image_size, image_size, 3]
    model(tf.zeros(shape, tf.float32), seq_len=1)
    return model
