"""Mapping between attention cells (h×w) and frame pixels (H×W).

One convention everywhere: cell (i, j) covers the pixel rectangle
``[i·H/h, (i+1)·H/h) × [j·W/w, (j+1)·W/w)`` (the vision core's stride, stretched so the
h×w grid tiles the frame exactly). Upsampling is bilinear with half-pixel centres, so a
map that is 1 in one cell peaks at that cell's centre pixel.
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np


@functools.lru_cache(maxsize=64)
def _interp_matrix(out_size: int, in_size: int) -> np.ndarray:
    """[out, in] bilinear interpolation weights (half-pixel centres, edge-clamped)."""
    pos = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
    pos = np.clip(pos, 0.0, in_size - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = pos - lo
    m = np.zeros((out_size, in_size), np.float32)
    m[np.arange(out_size), lo] += 1.0 - frac
    m[np.arange(out_size), hi] += frac
    m.setflags(write=False)
    return m


def upsample(maps: np.ndarray, frame_hw: Tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``maps [..., h, w]`` to ``[..., H, W]`` (float32)."""
    maps = np.asarray(maps, np.float32)
    h, w = maps.shape[-2:]
    ry = _interp_matrix(int(frame_hw[0]), h)
    rx = _interp_matrix(int(frame_hw[1]), w)
    return np.einsum("Yh,...hw,Xw->...YX", ry, maps, rx, optimize=True).astype(np.float32)


def cell_of_pixel(y, x, frame_hw, feature_hw):
    """Cell indices (i, j) containing pixel (y, x) (arrays allowed)."""
    (H, W), (h, w) = frame_hw, feature_hw
    i = np.minimum((np.asarray(y) * h) // H, h - 1)
    j = np.minimum((np.asarray(x) * w) // W, w - 1)
    return i, j


def cell_box(i: int, j: int, frame_hw, feature_hw) -> Tuple[int, int, int, int]:
    """Pixel box ``(y0, x0, y1, x1)`` (end exclusive) of the pixels whose cell is (i, j)."""
    (H, W), (h, w) = frame_hw, feature_hw
    y0 = -(-i * H // h)
    y1 = -(-(i + 1) * H // h)
    x0 = -(-j * W // w)
    x1 = -(-(j + 1) * W // w)
    return int(y0), int(x0), int(y1), int(x1)


def box_cell_fraction(box, frame_hw, feature_hw) -> np.ndarray:
    """[h, w] fraction of each cell's pixels that lie inside the pixel ``box`` (y0, x0, y1, x1).

    Attention mass on a region is ``(attention * box_cell_fraction(...)).sum((-2, -1))``:
    each cell's mass spread evenly over its pixels, summed over the box.
    """
    (H, W), (h, w) = frame_hw, feature_hw
    y0, x0, y1, x1 = box
    if not (0 <= y0 < y1 <= H and 0 <= x0 < x1 <= W):
        raise ValueError(f"box {tuple(box)} (y0, x0, y1, x1) must lie inside the {H}x{W} frame")
    pixels = np.zeros((H, W), np.float32)
    pixels[y0:y1, x0:x1] = 1.0
    iy, jx = cell_of_pixel(np.arange(H), np.arange(W), frame_hw, feature_hw)
    inside = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    np.add.at(inside, (iy[:, None], jx[None, :]), pixels)
    np.add.at(count, (iy[:, None], jx[None, :]), 1.0)
    return (inside / np.maximum(count, 1.0)).astype(np.float32)
