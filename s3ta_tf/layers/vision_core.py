"""The vision core of the attention agent (SPEC §1).

``ConvTorso``: uint8 frames ``[B, H, W, 3]`` → /255 → Conv 8×8/4 (32) → ReLU →
Conv 4×4/2 (64) → ReLU, SAME padding: 210×160 → 53×40 → 27×20.
``VisionCore`` adds the ConvLSTM 3×3 (128 channels): the torso and the ConvLSTM's input
projection are applied to all frames at once (:meth:`VisionCore.project`); the recurrent
half then runs step by step (:meth:`VisionCore.step`).
"""
from __future__ import annotations

import tensorflow as tf

from s3ta_tf.layers.convlstm import ConvLSTMCell


class ConvTorso(tf.keras.layers.Layer):

    def __init__(self, channels, kernels, strides, **kw):
        super().__init__(**kw)
        self.channels, self.kernels, self.strides = tuple(channels), tuple(kernels), tuple(strides)
        self.convs = [tf.keras.layers.Conv2D(c, k, s, padding="same", activation="relu",
                                             kernel_initializer="he_uniform",
                                             dtype=self.dtype_policy, name=f"conv_{i}")
                      for i, (c, k, s) in enumerate(zip(self.channels, self.kernels, self.strides))]

    def call(self, frames):
        x = tf.cast(frames, self.compute_dtype) / 255.0
        for conv in self.convs:
            x = conv(x)
        return x

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "kernels": self.kernels,
                "strides": self.strides}


class VisionCore(tf.keras.layers.Layer):
    """Conv torso + ConvLSTM. State: ``(h, c)``, each ``[B, h, w, convlstm_channels]`` float32."""

    def __init__(self, channels, kernels, strides, convlstm_channels, convlstm_kernel,
                 convlstm_layer_norm: bool = False, **kw):
        super().__init__(**kw)
        self.torso = ConvTorso(channels, kernels, strides, dtype=self.dtype_policy, name="torso")
        self.convlstm = ConvLSTMCell(convlstm_channels, convlstm_kernel, layer_norm=convlstm_layer_norm,
                                     dtype=self.dtype_policy, name="convlstm")
        self._args = dict(channels=tuple(channels), kernels=tuple(kernels), strides=tuple(strides),
                          convlstm_channels=convlstm_channels, convlstm_kernel=convlstm_kernel,
                          convlstm_layer_norm=bool(convlstm_layer_norm))

    def build(self, input_shape):
        # The torso's convolutions build on their first call; the ConvLSTM is built here
        # because only its split halves (project_inputs / step) are ever called.
        self.convlstm.build((None, None, None, self._args["channels"][-1]))
        super().build(input_shape)

    def project(self, frames):
        """Frames ``[N, H, W, 3]`` uint8 → ConvLSTM input gates ``[N, h, w, 4F]`` (no state needed)."""
        if not self.built:
            self.build(frames.shape)
        return self.convlstm.project_inputs(self.torso(frames))

    def step(self, projected, state):
        return self.convlstm.step(projected, state)

    def call(self, frames, state):
        return self.step(self.project(frames), state)

    def get_config(self):
        return {**super().get_config(), **self._args}
