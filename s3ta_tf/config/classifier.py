"""Configuration of the supervised S3TA classifier networks (SPEC §4); the data and training
sections, and the presets that combine all three, are in :mod:`pipelines.classify.config`.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from s3ta_tf.config.model import AttentionSizes, check_precision

CLASSIFIER_VARIANTS = ("s3ta", "resnet", "recurrent-resnet")
CORES = ("resnet50v2", "resnet34v2", "tiny")


@dataclasses.dataclass(frozen=True)
class ClassifierModelConfig(AttentionSizes):
    """The network. Feature map (h, w) = image_size / 32 for the ResNet cores (7×7 at 224)."""
    # Vision core: "resnet50v2" (keras.applications, weights=None), "resnet34v2" (ours) or
    # "tiny" (ours: basic blocks with `tiny_widths`, one block per stage, stem without pooling).
    core: str = "resnet50v2"
    tiny_widths: Tuple[int, ...] = (16, 32, 64)
    # ConvLSTM 3×3 after the core (video); 0 = no recurrence (ImageNet).
    convlstm_channels: int = 0
    convlstm_kernel: int = 3
    # Attention: keys = first `key_channels` of the core's output channels, values = the rest.
    num_heads: int = 4
    key_channels: int = 64
    basis_frequencies: int = 4
    # Query network on the previous accumulated logits; a final linear layer gives N·(c_K+c_S).
    query_hidden: Tuple[int, ...] = (1024, 512, 256, 128)
    # Policy core: MLP on concat(answers, queries) -> class logits every step.
    policy_hidden: Tuple[int, ...] = (2048, 2048, 2048)
    precision: str = "float32"

    def __post_init__(self):
        if self.core not in CORES:
            raise ValueError(f"model.core must be one of {CORES}, got {self.core!r}")
        check_precision(self.precision)
        for name in ("num_heads", "key_channels", "basis_frequencies"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
