"""The vision core of the attention agent (SPEC §1).

``ConvTorso``: uint8 frames ``[B, H, W, 3]`` → /255 → Conv 8×8/4 (32) → ReLU →
Conv 4×4/2 (64) → ReLU, SAME padding: 210×160 → 53×40 → 27×20.
``torso="resnet"`` (not in the paper) replaces the two strided convolutions by the IMPALA ResNet's
trunk (3×3 convolutions and max-pools, no dense layer: ``ImpalaResNet(dense=0)``), which keeps a
one-pixel sprite's response where a strided 8×8 kernel averages it with the background.
``VisionCore`` adds the ConvLSTM 3×3 (128 channels): the torso and the ConvLSTM's input
projection are applied to all frames at once (:meth:`VisionCore.project`); the recurrent
half then runs step by step (:meth:`VisionCore.step`).
"""
from __future__ import annotations

import tensorflow as tf

from s3ta_tf.config.model import VISION_TORSOS
from s3ta_tf.layers.convlstm import ConvLSTMCell
from s3ta_tf.layers.impala_resnet import ImpalaResNet


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
                 convlstm_layer_norm: bool = False, torso: str = "conv", resnet_channels=(16, 32, 32),
                 resnet_blocks: int = 2, **kw):
        super().__init__(**kw)
        if torso not in VISION_TORSOS:
            raise ValueError(f"vision torso must be one of {VISION_TORSOS}, got {torso!r}")
        if torso == "conv":
            self.torso = ConvTorso(channels, kernels, strides, dtype=self.dtype_policy, name="torso")
            self._torso_channels = tuple(channels)[-1]
        else:
            self.torso = ImpalaResNet(resnet_channels, resnet_blocks, 0, dtype=self.dtype_policy, name="torso")
            self._torso_channels = tuple(resnet_channels)[-1]
        self.convlstm = ConvLSTMCell(convlstm_channels, convlstm_kernel, layer_norm=convlstm_layer_norm,
                                     dtype=self.dtype_policy, name="convlstm")
        self._args = dict(channels=tuple(channels), kernels=tuple(kernels), strides=tuple(strides),
                          convlstm_channels=convlstm_channels, convlstm_kernel=convlstm_kernel,
                          convlstm_layer_norm=bool(convlstm_layer_norm), torso=torso,
                          resnet_channels=tuple(resnet_channels), resnet_blocks=int(resnet_blocks))

    def build(self, input_shape):
        # The torso's convolutions build on their first call; the ConvLSTM is built here
        # because only its split halves (project_inputs / step) are ever called.
        self.convlstm.build((None, None, None, self._torso_channels))
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
