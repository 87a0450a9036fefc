"""IMPALA "deep" ResNet torso (Espeholt et al. 2018; the Table 1 baselines, SPEC §1).

Sections of C ∈ (16, 32, 32) channels, each: Conv 3×3 → MaxPool 3×3 stride 2 (SAME) →
``blocks`` residual blocks (ReLU, Conv 3×3, ReLU, Conv 3×3, + skip). Then ReLU → flatten
→ Dense 256 → ReLU. uint8 frames ``[B, H, W, 3]`` → ``[B, 256]``.
With ``dense=0`` the layer stops before the flatten and returns the ReLU'd feature map
``[B, ⌈H/8⌉, ⌈W/8⌉, C_last]`` (the attention agent's ``vision_torso="resnet"``).
"""
from __future__ import annotations

import tensorflow as tf


class ImpalaResNet(tf.keras.layers.Layer):

    def __init__(self, channels=(16, 32, 32), blocks: int = 2, dense: int = 256, **kw):
        super().__init__(**kw)
        self.channels, self.blocks, self.dense_units = tuple(channels), int(blocks), int(dense)
        conv = lambda c, name: tf.keras.layers.Conv2D(c, 3, padding="same", dtype=self.dtype_policy, name=name)
        self.sections = []
        for s, c in enumerate(self.channels):
            residual = [(conv(c, f"s{s}_b{b}_conv0"), conv(c, f"s{s}_b{b}_conv1")) for b in range(self.blocks)]
            self.sections.append((conv(c, f"s{s}_conv"), residual))
        self.dense = tf.keras.layers.Dense(self.dense_units, activation="relu", dtype=self.dtype_policy,
                                           name="dense") if self.dense_units else None

    def call(self, frames):
        x = tf.cast(frames, self.compute_dtype) / 255.0
        for conv, residual in self.sections:
            x = tf.nn.max_pool2d(conv(x), 3, 2, "SAME")
            for conv0, conv1 in residual:
                x = x + conv1(tf.nn.relu(conv0(tf.nn.relu(x))))
        x = tf.nn.relu(x)
        if self.dense is None:
            return x
        return self.dense(tf.reshape(x, [tf.shape(x)[0], -1]))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "blocks": self.blocks,
                "dense": self.dense_units}
