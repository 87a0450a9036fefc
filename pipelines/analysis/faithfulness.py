"""Faithfulness: how well each head's attention predicts perturbation saliency (beyond the paper).

Saliency lives on a pixel grid, attention on the h×w cells; saliency is brought to the cells
by averaging the grid points that fall in each cell (cells without a grid point are left
out). Per head we report

* ``spearman``: rank correlation between attention and saliency over the cells;
* ``top_k_mass``: share of the total saliency in the k most attended cells
  (k = ``top_k_fraction``·h·w), next to ``chance`` = k / cells, what a random choice gets.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from pipelines.analysis.geometry import cell_of_pixel


def saliency_on_cells(saliency: np.ndarray, ys: np.ndarray, xs: np.ndarray, frame_hw, feature_hw) -> np.ndarray:
    """Mean saliency of the grid points in each cell: ``[gh, gw]`` → ``[h, w]`` (NaN if none)."""
    ci, _ = cell_of_pixel(np.asarray(ys), 0, frame_hw, feature_hw)
    _, cj = cell_of_pixel(0, np.asarray(xs), frame_hw, feature_hw)
    total = np.zeros(feature_hw, np.float64)
    count = np.zeros(feature_hw, np.float64)
    np.add.at(total, (ci[:, None], cj[None, :]), np.asarray(saliency, np.float64))
    np.add.at(count, (ci[:, None], cj[None, :]), 1.0)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), np.float64)
    r[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=r)
    return (sums / counts)[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equal-size arrays (NaN if either is constant)."""
    ra, rb = ranks(np.ravel(a)), ranks(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def top_k_mass(attention: np.ndarray, saliency: np.ndarray, k: int) -> float:
    """Share of the saliency mass inside the ``k`` most attended entries (NaN if no saliency)."""
    a, s = np.ravel(attention), np.ravel(saliency)
    total = s.sum()
    if total <= 0:
        return float("nan")
    top = np.argsort(-a, kind="mergesort")[:k]
    return float(s[top].sum() / total)


def faithfulness_scores(attention: np.ndarray, saliency: np.ndarray, ys, xs, frame_hw,
                 top_k_fraction: float = 0.05) -> Dict[str, list]:
    """Per head scores for ``attention [N, h, w]`` against one saliency map ``[gh, gw]``.

    Returns ``{"spearman": [N], "top_k_mass": [N], "chance": float, "k": int}``.
    """
    attention = np.asarray(attention, np.float64)
    if attention.ndim != 3:
        raise ValueError(f"attention must be [N, h, w], got shape {attention.shape}")
    cells = saliency_on_cells(saliency, ys, xs, frame_hw, attention.shape[1:])
    valid = ~np.isnan(cells)
    s = cells[valid]
    k = max(1, int(round(top_k_fraction * s.size)))
    return {"spearman": [rank_correlation(a[valid], s) for a in attention],
            "top_k_mass": [top_k_mass(a[valid], s, k) for a in attention],
            "chance": k / float(s.size), "k": k}
