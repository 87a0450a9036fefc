"""Attention overlays (SPEC §3): every head's map, upsampled, alpha-blended onto the frame.

Bright = attended: each head's map is upsampled to the frame, normalised by its maximum,
and added as white light, ``out = (1 − α)·frame + α·255·m``. With α ≥ ½ the brightest pixel
of the overlay always lies in the most attended cell, whatever the frame.
"""
from __future__ import annotations

import numpy as np

from pipelines.analysis.geometry import upsample


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
