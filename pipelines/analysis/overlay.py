"""Attention overlays (SPEC §3): every head's map, upsampled, alpha-blended onto the frame.

Bright = attended: each head's map is upsampled to the frame, normalised by its maximum,
and added as white light, ``out = (1 − α)·frame + α·255·m``. With α ≥ ½ the brightest pixel
of the overlay always lies in the most attended cell, whatever the frame.

On a rollout: :func:`overlay_panels` makes the video frames, :func:`write_overlays` writes the
whole run's video and one per episode (SPEC §3) and describes them.
"""
from __future__ import annotations

import os

import numpy as np

from pipelines.analysis.geometry import upsample
from pipelines.analysis.report import Section, Written
from pipelines.analysis.rollout import Rollout, episode_segments
from pipelines.analysis.video import rollout_panels, write_video_pair


def normalised_maps(attention: np.ndarray, frame_hw) -> np.ndarray:
    """``attention [..., h, w]`` → upsampled ``[..., H, W]`` in [0, 1] (max 1 per map)."""
    up = upsample(attention, frame_hw)
    peak = up.max(axis=(-2, -1), keepdims=True)
    return up / np.maximum(peak, 1e-12)


def overlay_heads(frame: np.ndarray, attention: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """One overlay per head.

    Args:
      frame: uint8 ``[H, W, 3]``.
      attention: ``[N, h, w]`` (each map sums to 1; only its shape of mass matters).
      alpha: weight of the attention light.
    Returns:
      uint8 ``[N, H, W, 3]``.
    """
    frame = np.asarray(frame)
    attention = np.asarray(attention)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame must be [H, W, 3], got shape {frame.shape}")
    if attention.ndim != 3:
        raise ValueError(f"attention must be [N, h, w], got shape {attention.shape}")
    m = normalised_maps(attention, frame.shape[:2])[..., None]          # [N, H, W, 1]
    out = (1.0 - alpha) * frame[None].astype(np.float32) + alpha * 255.0 * m
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def overlay_sequence(frames: np.ndarray, attention: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """``frames [T, H, W, 3]``, ``attention [T, N, h, w]`` → uint8 ``[T, N, H, W, 3]``."""
    if len(frames) != len(attention):
        raise ValueError(f"{len(frames)} frames but {len(attention)} attention maps")
    return np.stack([overlay_heads(f, a, alpha) for f, a in zip(frames, attention)])


def overlay_panels(rollout: Rollout, alpha: float, scale: int, times=None, progress: bool = False) -> np.ndarray:
    """Video frames ``[T, ...]``: caption (t, action, value, reward), the frame, one overlay row per head."""
    labels = [f"head {n}" for n in range(rollout.attention.shape[1])]
    return rollout_panels(rollout, lambda t: overlay_heads(rollout.frames[t], rollout.attention[t], alpha), labels,
                          scale, times, "overlay video", progress)


def write_overlays(rollout: Rollout, panels: np.ndarray, out_dir: str, cfg) -> Written:
    """The overlay video of the whole run and of each episode (MP4 + GIF), each episode's first
    step, length and return for the summary, and the report's section."""
    episodes = episode_segments(rollout.firsts)
    def pair(name, frames):
        return write_video_pair(out_dir, name, frames, cfg.video_fps, cfg.gif_max_frames)
    whole = pair("overlays", panels)
    per_episode = [pair(f"overlays_episode{k:03d}", panels[a:b]) for k, (a, b) in enumerate(episodes)]
    table = [{"episode": k, "first_step": a, "steps": b - a, "return": float(rollout.rewards[a:b].sum())}
             for k, (a, b) in enumerate(episodes)]
    section = Section().heading("Attention overlays")
    section.text("Top: the frame with step, action, value and reward; below: one row per head "
                 "(bright = attended). The whole run, then one video per episode.")
    section.video_pair(whole, cfg.report_gif_max_mb)
    section.table(["episode", "steps", "return", "overlay video"],
                  [[e["episode"], e["steps"], e["return"], os.path.basename(videos["mp4"])]
                   for e, videos in zip(table, per_episode)])
    return Written(summary={"episodes": table}, files={"overlays": whole, "overlays_per_episode": per_episode},
                   section=section)
