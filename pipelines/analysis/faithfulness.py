"""Faithfulness: how well each head's attention predicts perturbation saliency (beyond the paper).

Saliency lives on a pixel grid, attention on the h×w cells; saliency is brought to the cells
by averaging the grid points that fall in each cell (cells without a grid point are left
out). Per head we report

* ``spearman``: rank correlation between attention and saliency over the cells;
* ``top_k_mass``: share of the total saliency in the k most attended cells
  (k = ``top_k_fraction``·h·w), next to ``chance`` = k / cells, what a random choice gets.

:func:`by_kind` scores both saliency maps of a frame; :func:`section` and :func:`summary_rows`
describe the scores in the report.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from pipelines.analysis.geometry import cell_of_pixel
from pipelines.analysis.report import Section

KINDS = ("policy", "value")


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


def by_kind(attention: np.ndarray, saliency, frame_hw, top_k_fraction: float) -> Dict[str, dict]:
    """:func:`faithfulness_scores` of ``attention [N, h, w]`` against the policy and the value map
    of one :class:`pipelines.analysis.saliency.Saliency`: ``{"policy": scores, "value": scores}``."""
    return {kind: faithfulness_scores(attention, getattr(saliency, kind), saliency.ys, saliency.xs, frame_hw,
                                      top_k_fraction) for kind in KINDS}


def section(by_frame: Dict[int, Dict[str, dict]], top_k_fraction: float) -> Section:
    """The report's table of ``{frame: by_kind(...)}``: one row per frame, kind and head (empty
    without frames)."""
    rows = [[t, n, kind, s["spearman"][n], s["top_k_mass"][n], s["chance"]]
            for t, scores in by_frame.items() for kind, s in scores.items() for n in range(len(s["spearman"]))]
    if not rows:
        return Section()
    return (Section().heading("Faithfulness: does attention predict saliency?")
            .text(f"Per head: Spearman rank correlation between attention and saliency over the cells, "
                  f"and the share of saliency inside the top {top_k_fraction:.0%} attended cells "
                  "(chance = what a random choice of as many cells gets).")
            .table(["frame", "head", "saliency of", "Spearman ρ", "top-k saliency share", "chance"], rows))


def summary_rows(summary: dict) -> List[list]:
    """The report's summary-table rows: per saliency frame and kind, the heads' scores."""
    rows = []
    for ts, entry in summary.get("saliency", {}).items():
        for kind in KINDS:
            faith = entry.get(f"faithfulness_{kind}")
            if faith:
                rows.append([f"frame {ts}: Spearman ρ(attention, {kind} saliency) per head",
                             ", ".join(f"{v:.3f}" for v in faith["spearman"])])
                rows.append([f"frame {ts}: {kind} saliency share in top-{faith['k']} cells per head "
                             f"(chance {faith['chance']:.3f})", ", ".join(f"{v:.3f}" for v in faith["top_k_mass"])])
    return rows
