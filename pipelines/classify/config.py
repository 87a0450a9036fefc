"""Configuration of supervised S3TA classification (SPEC §4): the model (the network's own
config, :class:`s3ta_tf.config.classifier.ClassifierModelConfig`), the data and the training.

Three presets, all data:

- ``imagenet``: ResNet-50 v2 core (no recurrence), the image presented T times, policy MLP
  2048×3, query MLP 1024/512/256/128, SGD momentum 0.9, lr 0.1 (0.01 when T = 8), batch 1024,
  ×0.1 at 1e5/1.5e5/1.75e5 steps, weight decay 1e-4, curriculum T = 4 for 1e5 steps then T = 8.
- ``kinetics``: ResNet-34 v2 + ConvLSTM 3×3 256, 32 equally spaced frames, policy MLP 1024×3,
  query MLP 512/256/128, lr 1e-2 ×0.1 at 1.5e5/2e5, batch 240.
- ``small``: a tiny ResNet v2 on 32×32 images, T = 4, for tests and quick learning checks.

Overrides use the project's grammar ``section.field=value`` (``model.num_heads=2``,
``train.batch_size=64``, ``data.image_size=64``; T is ``--seq-len``); a bare ``field=value`` or
``seq_len=N`` (the spellings before 0.2.0) is refused with an error naming the new spelling.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from s3ta_tf.config.classifier import ClassifierModelConfig
from s3ta_tf.config.overrides import apply_overrides, check_ranges, from_dict, split_sections


@dataclasses.dataclass(frozen=True)
class ClassifyDataConfig:
    """Input pipeline: TFDS loading, training augmentation (SPEC §4), evaluation centre crop."""
    image_size: int = 224
    # Number of frames sampled (equally spaced) from a video clip; unused for images.
    num_frames: int = 32
    # Inception-style crop: area fraction and aspect-ratio ranges.
    crop_area_min: float = 0.08
    crop_area_max: float = 1.0
    crop_aspect_min: float = 0.75
    crop_aspect_max: float = 4.0 / 3.0
    # Colour distortion strength (0 disables): brightness/contrast/saturation/hue jitter.
    color_distortion: float = 0.4
    horizontal_flip: bool = True
    # Evaluation: resize the shorter side to image_size / eval_crop_fraction, centre crop.
    eval_crop_fraction: float = 0.875
    shuffle_buffer: int = 10_000

    def __post_init__(self):
        if not self.image_size >= 8:
            raise ValueError(f"data.image_size must be >= 8, got {self.image_size}")
        check_ranges(self, "data", positive=("num_frames", "shuffle_buffer"),
                     non_negative_float=("color_distortion",),
                     positive_float=("crop_aspect_min", "crop_aspect_max"))
        if not self.crop_aspect_min <= self.crop_aspect_max:
            raise ValueError(f"data.crop_aspect_min must be <= data.crop_aspect_max, got "
                             f"{self.crop_aspect_min} > {self.crop_aspect_max}")
        if not 0 < self.crop_area_min <= self.crop_area_max <= 1:
            raise ValueError("data.crop_area_min/max must satisfy 0 < min <= max <= 1")
        if not 0 < self.eval_crop_fraction <= 1:
            raise ValueError("data.eval_crop_fraction must be in (0, 1]")


@dataclasses.dataclass(frozen=True)
class ClassifyTrainConfig:
    """Optimiser, schedule and bookkeeping of `s3ta classify train`."""
    batch_size: int = 1024
    momentum: float = 0.9
    # Base learning rate; `learning_rate_long` replaces it when the final T >= long_seq_len.
    learning_rate: float = 0.1
    learning_rate_long: float = 0.01
    long_seq_len: int = 8
    lr_boundaries: Tuple[int, ...] = (100_000, 150_000, 175_000)
    lr_decay: float = 0.1
    weight_decay: float = 1e-4
    # Global-norm gradient clipping; 0 disables it (the paper does not clip).
    grad_clip_norm: float = 0.0
    total_steps: int = 200_000
    # Curriculum: train at `curriculum_seq_len` for `curriculum_steps` when the requested T is
    # longer (SPEC §4: T = 4 for 1e5 steps, then T = 8). 0 steps disables it.
    curriculum_seq_len: int = 4
    curriculum_steps: int = 100_000
    summary_every: int = 100
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3

    def __post_init__(self):
        # (`not x > 0` style checks: NaN is out of every range.)
        check_ranges(self, "train",
                     positive=("batch_size", "total_steps", "long_seq_len", "curriculum_seq_len",
                               "summary_every", "checkpoint_every", "keep_checkpoints", "lr_boundaries"),
                     non_negative=("curriculum_steps",),
                     positive_float=("learning_rate", "learning_rate_long"),
                     non_negative_float=("weight_decay", "grad_clip_norm"))
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"train.momentum must be in [0, 1], got {self.momentum}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"train.lr_decay must be in (0, 1], got {self.lr_decay}")
        if list(self.lr_boundaries) != sorted(self.lr_boundaries):
            raise ValueError(f"train.lr_boundaries must be increasing, got {self.lr_boundaries}")

    def base_learning_rate(self, seq_len: int) -> float:
        return self.learning_rate_long if seq_len >= self.long_seq_len else self.learning_rate

    def seq_len_at(self, step: int, seq_len: int) -> int:
        """T used at global `step` for a run whose final sequence length is `seq_len`."""
        if self.curriculum_steps > 0 and seq_len > self.curriculum_seq_len \
                and step < self.curriculum_steps:
            return self.curriculum_seq_len
        return seq_len


@dataclasses.dataclass(frozen=True)
class ClassifyConfig:
    model: ClassifierModelConfig
    data: ClassifyDataConfig
    train: ClassifyTrainConfig
    # Default T: the image presented T times, or the number of video frames.
    seq_len: int = 8

    def __post_init__(self):
        if not self.seq_len >= 1:
            raise ValueError(f"seq_len must be >= 1, got {self.seq_len}")


CLASSIFY_PRESETS = {
    "imagenet": ClassifyConfig(
        model=ClassifierModelConfig(),
        data=ClassifyDataConfig(),
        train=ClassifyTrainConfig(),
        seq_len=8,
    ),
    "kinetics": ClassifyConfig(
        model=ClassifierModelConfig(
            core="resnet34v2", convlstm_channels=256, query_hidden=(512, 256, 128),
            policy_hidden=(1024, 1024, 1024)),
        data=ClassifyDataConfig(num_frames=32, color_distortion=0.0, crop_area_min=1.0,
                                crop_aspect_min=1.0, crop_aspect_max=1.0,
                                horizontal_flip=False),
        train=ClassifyTrainConfig(batch_size=240, learning_rate=1e-2, learning_rate_long=1e-2,
                                  lr_boundaries=(150_000, 200_000), total_steps=250_000,
                                  curriculum_steps=0),
        seq_len=32,
    ),
    "small": ClassifyConfig(
        model=ClassifierModelConfig(
            core="tiny", tiny_widths=(16, 32), num_heads=2, key_channels=8,
            basis_frequencies=2, query_hidden=(64, 32), policy_hidden=(128, 128)),
        data=ClassifyDataConfig(image_size=32, crop_area_min=0.6, color_distortion=0.2,
                                shuffle_buffer=2000),
        train=ClassifyTrainConfig(batch_size=64, learning_rate=0.02, learning_rate_long=0.02,
                                  lr_boundaries=(300, 450), total_steps=500,
                                  curriculum_seq_len=2, curriculum_steps=0,
                                  summary_every=20, checkpoint_every=200),
        seq_len=4,
    ),
}

_SECTIONS = ("model", "data", "train")


def _split_overrides(cfg: ClassifyConfig, items) -> dict:
    """Groups ``section.field=value`` strings by section; a bare ``seq_len=N`` (removed in 0.2.0)
    raises ValueError naming ``--seq-len N``."""
    for item in items or ():
        if item.split("=", 1)[0].strip() == "seq_len":
            raise ValueError(f"override {item!r}: a bare seq_len=N was removed in 0.2.0; use "
                             f"--seq-len {item.split('=', 1)[1].strip()}")
    return split_sections({s: getattr(cfg, s) for s in _SECTIONS}, items)


def classify_config(preset: str = "small", overrides=None,
                    seq_len: Optional[int] = None) -> ClassifyConfig:
    """The named preset with ``overrides`` (``["model.num_heads=2", ...]``) applied."""
    if preset not in CLASSIFY_PRESETS:
        raise ValueError(f"unknown classify preset {preset!r}; expected one of "
                         f"{sorted(CLASSIFY_PRESETS)}")
    cfg = CLASSIFY_PRESETS[preset]
    grouped = _split_overrides(cfg, overrides)
    changes = {s: apply_overrides(getattr(cfg, s), grouped[s]) for s in _SECTIONS}
    cfg = dataclasses.replace(cfg, **changes)
    if seq_len is not None:
        cfg = dataclasses.replace(cfg, seq_len=int(seq_len))
    return cfg


def classify_config_to_dict(cfg: ClassifyConfig) -> dict:
    return dataclasses.asdict(cfg)


def classify_config_from_dict(data: dict) -> ClassifyConfig:
    return ClassifyConfig(
        model=from_dict(ClassifierModelConfig, data["model"]),
        data=from_dict(ClassifyDataConfig, data["data"]),
        train=from_dict(ClassifyTrainConfig, data["train"]),
        seq_len=int(data["seq_len"]))
