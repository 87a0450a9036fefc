"""Configuration of the interpretability analyses (SPEC §3): ``s3ta analyze``.

``paper`` follows SPEC §3 and Greydanus et al. (2017): > 200 unperturbed warm-up frames
before a saliency frame, perturbations on a stride-5 grid, a Gaussian mask of σ = 5 px
blending in a copy of the frame blurred with σ = 3 px. ``small`` is the same analysis
with short runs and a coarse grid, for tests and quick looks. Any field can be overridden
with ``--set analysis.field=value``.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from s3ta_tf.config.overrides import from_preset

POLICIES = ("sample", "greedy")


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    # Rollout: how actions are chosen from the policy logits, and the seed of env + sampling.
    policy: str = "sample"
    seed: int = 0
    # ALE only: repeat the previous action with p = 0.25 per frame, as agents trained with
    # train.sticky_actions=true saw it (as `s3ta evaluate --sticky-actions` plays). Off by default.
    sticky_actions: bool = False
    # Overlays / videos.
    overlay_alpha: float = 0.6          # weight of the attention light on the frame
    video_fps: int = 15
    video_scale: int = 2                # integer upscaling of every video frame
    gif_max_frames: int = 150           # GIFs are large: subsample to at most this many frames
    report_gif_max_mb: float = 4.0      # embed a GIF in report.html only up to this size (MP4s always)
    # Saliency (Greydanus et al. 2017; SPEC §3).
    saliency_warmup: int = 201          # unperturbed frames before the first saliency frame (> 200)
    saliency_frames: Tuple[int, ...] = ()   # frame indices to perturb; () = the first allowed one
    saliency_stride: int = 5
    saliency_mask_sigma: float = 5.0    # σ of the Gaussian mask M (pixels)
    saliency_blur_sigma: float = 3.0    # σ of the blur blended in under the mask (pixels)
    saliency_batch: int = 96            # perturbed frames per model call
    # Faithfulness: share of saliency mass inside the top-k attended cells, k = fraction · h·w.
    top_k_fraction: float = 0.05
    # Novel-state probe: splice a sprite into the observations (pixels only).
    probe_time: int = -1                # first spliced step; -1 = steps // 2
    probe_duration: int = 20            # steps during which the sprite is shown
    probe_position: Tuple[int, ...] = ()   # (y, x) of the sprite's top-left corner; () = centred
    probe_sprite: str = ""              # PNG path; "" = the built-in sprite
    # Object scores (ALE games OCAtari knows; .object_scores): per head and object, lift and hit rate.
    object_scores: bool = True
    object_radius: int = 1              # a hit: the most-attended cell within this many cells of the object
    object_max_lag: int = 8             # also score against the objects -k..+k steps away (0: off)

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if not 0.0 < self.overlay_alpha <= 1.0:
            raise ValueError(f"overlay_alpha must be in (0, 1], got {self.overlay_alpha}")
        for name in ("video_fps", "video_scale", "saliency_stride", "saliency_batch",
                     "probe_duration", "gif_max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("object_radius", "object_max_lag"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.report_gif_max_mb < 0:
            raise ValueError(f"report_gif_max_mb must be >= 0, got {self.report_gif_max_mb}")
        if self.saliency_warmup < 0:
            raise ValueError(f"saliency_warmup must be >= 0, got {self.saliency_warmup}")
        if self.saliency_mask_sigma <= 0 or self.saliency_blur_sigma <= 0:
            raise ValueError("saliency_mask_sigma and saliency_blur_sigma must be > 0")
        if not 0.0 < self.top_k_fraction <= 1.0:
            raise ValueError(f"top_k_fraction must be in (0, 1], got {self.top_k_fraction}")
        if len(self.probe_position) not in (0, 2):
            raise ValueError(f"probe_position must be y,x (or empty for the frame's centre); "
                             f"got {self.probe_position}")


ANALYSIS_PRESETS = {
    "paper": AnalysisConfig(),
    "small": AnalysisConfig(
        video_fps=8,
        video_scale=1,
        gif_max_frames=60,
        saliency_warmup=5,
        saliency_stride=8,
        saliency_batch=32,
        top_k_fraction=0.1,
        probe_duration=5,
        probe_position=(20, 20),
    ),
}


def analysis_config(preset: str = "paper", overrides=None) -> AnalysisConfig:
    """The named preset with ``overrides`` (``["field=value", ...]`` or a dict) applied."""
    return from_preset(ANALYSIS_PRESETS, preset, overrides, "analysis preset")
