"""Pre-activation ResNets (He et al. 2016, "Identity Mappings", v2) as Keras feature extractors.

All cores map images ``[B, H, W, 3]`` (float, already scaled to [-1, 1]) to a feature map
``[B, H/32, W/32, C]`` (``tiny``: ``[B, H/2^(S-1), W/2^(S-1), C]`` for S stages) after a final
BN → ReLU, with no classification head and random initialisation (nothing is downloaded).

- ``resnet50v2``: ``tf.keras.applications.ResNet50V2(weights=None, include_top=False)``,
  C = 2048.
- ``resnet34v2``: written here (Keras ships no ResNet-34): basic blocks, stages of
  3, 4, 6, 3 blocks with 64, 128, 256, 512 channels, C = 512.
- ``tiny``: basic blocks, one per stage, 3×3 stem without pooling, for tests and small images.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

layers = tf.keras.layers

RESNET34_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))


def _conv(filters: int, kernel: int, stride: int, name: str, dtype) -> layers.Layer:
    return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                         kernel_initializer="he_normal", name=name, dtype=dtype)


def _bn(name: str, dtype) -> layers.Layer:
    return layers.BatchNormalization(momentum=0.9, epsilon=1.001e-5, name=name, dtype=dtype)


def basic_block_v2(x, filters: int, stride: int, name: str, dtype=None):
    """Pre-activation basic block: BN-ReLU → conv3×3(stride) → BN-ReLU → conv3×3, + shortcut.

    The shortcut is a 1×1 projection of the pre-activation when the shape changes.
    ``x``: ``[B, H, W, C_in]`` -> ``[B, H/stride, W/stride, filters]``.
    """
    preact = layers.Activation("relu", name=name + "_preact_relu", dtype=dtype)(
        _bn(name + "_preact_bn", dtype)(x))
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, stride, name + "_shortcut", dtype)(preact)
    else:
        shortcut = x
    y = _conv(filters, 3, stride, name + "_conv1", dtype)(preact)
    y = layers.Activation("relu", name=name + "_relu", dtype=dtype)(_bn(name + "_bn", dtype)(y))
    y = _conv(filters, 3, 1, name + "_conv2", dtype)(y)
    return layers.Add(name=name + "_out", dtype=dtype)([shortcut, y])


def _basic_resnet_v2(stages: Sequence[tuple[int, int]], stem_kernel: int, stem_stride: int,
                     stem_pool: bool, name: str, dtype=None) -> tf.keras.Model:
    inputs = layers.Input((None, None, 3), name="images")
    x = layers.Conv2D(stages[0][0], stem_kernel, strides=stem_stride, padding="same",
                      kernel_initializer="he_normal", name="stem_conv", dtype=dtype)(inputs)
    if stem_pool:
        x = layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool", dtype=dtype)(x)
    for s, (filters, blocks) in enumerate(stages):
        for b in range(blocks):
            stride = 2 if (b == 0 and s > 0) else 1
            x = basic_block_v2(x, filters, stride, name=f"stage{s + 1}_block{b + 1}", dtype=dtype)
    x = _bn("post_bn", dtype)(x)
    x = layers.Activation("relu", name="post_relu", dtype=dtype)(x)
    return tf.keras.Model(inputs, x, name=name)


def resnet34_v2(dtype=None) -> tf.keras.Model:
    """ResNet-34 v2 feature extractor: ``[B, H, W, 3]`` -> ``[B, H/32, W/32, 512]``."""
    return _basic_resnet_v2(RESNET34_STAGES, 7, 2, True, "resnet34v2", dtype)


def tiny_resnet_v2(widths: Sequence[int] = (16, 32), dtype=None) -> tf.keras.Model:
    """Tiny ResNet v2: 3×3 stem, one basic block per width, downsampling ×2 between stages."""
    return _basic_resnet_v2([(w, 1) for w in widths], 3, 1, False, "tiny_resnet_v2", dtype)


def resnet50_v2(dtype=None) -> tf.keras.Model:
    """ResNet-50 v2 from keras.applications with random weights: ``-> [B, H/32, W/32, 2048]``.

    keras.applications takes the dtype policy from the global policy at construction time, so
    ``dtype`` (a policy name) is installed globally just for the duration of the call.
    """
    previous = tf.keras.mixed_precision.global_policy()
    try:
        if dtype is not None:
            tf.keras.mixed_precision.set_global_policy(dtype)
        return tf.keras.applications.ResNet50V2(
            weights=None, include_top=False, input_shape=(None, None, 3))
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def build_core(core: str, tiny_widths: Sequence[int] = (16, 32), dtype=None) -> tf.keras.Model:
    """The vision core named by ``ClassifierModelConfig.core``."""
    if core == "resnet50v2":
        return resnet50_v2(dtype)
    if core == "resnet34v2":
        return resnet34_v2(dtype)
    if core == "tiny":
        return tiny_resnet_v2(tiny_widths, dtype)
    raise ValueError(f"unknown vision core {core!r}; expected resnet50v2, resnet34v2 or tiny")


def core_stride(core: str, tiny_widths: Sequence[int] = (16, 32)) -> int:
    """Total downsampling factor of the core (feature map = ceil(image / stride))."""
    return 2 ** (len(tiny_widths) - 1) if core == "tiny" else 32
