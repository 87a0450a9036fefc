"""Frames resized to the model's input: a bilinear resize, or a block maximum that keeps small
bright sprites (a Pong ball) at full intensity when shrinking; one frame or a batch."""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

RESIZE_METHODS = ("bilinear", "max")


def normalise_shape(shape) -> tuple:
    """``(H, W, 3)`` from ``(H, W, 3)`` or ``(H, W)``; ValueError for anything else."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 2:
        shape = shape + (3,)
    if len(shape) != 3 or shape[2] != 3 or min(shape) <= 0:
        raise ValueError(f"observation_shape must be (height, width, 3) or (height, width), "
                         f"got {shape}")
    return shape


@functools.lru_cache(maxsize=16)
def block_indices(size: int, out: int) -> np.ndarray:
    """``[out, k]`` source indices of each output pixel's block (short blocks repeat their last
    index), for a block maximum by one gather: ``x[idx].max(axis=1)``."""
    edges = (np.arange(out + 1) * size) // out
    k = int(np.max(np.diff(edges)))
    return np.minimum(edges[:-1, None] + np.arange(k)[None, :], edges[1:, None] - 1)


def resize_frame(frame: np.ndarray, shape: tuple, method: str = "bilinear") -> np.ndarray:
    """Resize of a uint8 ``[H, W, 3]`` frame to ``shape``.

    ``bilinear``: antialiased when shrinking (an average: a Pong ball shrunk to a small input
    fades to a faint dot). ``max``: when shrinking, each output pixel is the per-channel maximum
    of its block of input pixels, so small bright sprites keep their intensity (the default for
    ALE ids); enlarging always uses bilinear.
    """
    h, w = shape[:2]
    if method == "max" and h <= frame.shape[0] and w <= frame.shape[1]:
        rows, cols = block_indices(frame.shape[0], h), block_indices(frame.shape[1], w)
        return frame[rows].max(axis=1)[:, cols].max(axis=2)
    from PIL import Image
    image = Image.fromarray(frame).resize((w, h), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def batch_block_max(frames: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``[B, H, W, 3]`` uint8 frames shrunk to ``[B, h, w, 3]`` by the per-channel maximum of
    each output pixel's block (the batched form of :func:`resize_frame`'s ``max``)."""
    h, w = int(shape[0]), int(shape[1])
    if frames.shape[1:3] == (h, w):
        return frames
    rows, cols = block_indices(frames.shape[1], h), block_indices(frames.shape[2], w)
    return frames[:, rows].max(axis=2)[:, :, cols].max(axis=3)
