"""Weight distribution (SPEC §3, paper Appendix A.2.1): per head, attention mass along x and y."""
from __future__ import annotations

import os

import numpy as np

from pipelines.analysis.report import Section, Written


def mass_along_axes(attention: np.ndarray):
    """``attention [..., N, h, w]`` → ``(along_x [..., N, w], along_y [..., N, h])``.

    ``along_x`` is the mass in every column (summed over y), ``along_y`` in every row.
    """
    attention = np.asarray(attention, np.float32)
    if attention.ndim < 2:
        raise ValueError(f"attention must be [..., h, w], got shape {attention.shape}")
    return attention.sum(axis=-2), attention.sum(axis=-1)


def plot_weight_distribution(attention: np.ndarray, path: str, title: str = "") -> str:
    """Plots, per head, the mass along x and along y over a sequence ``attention [T, N, h, w]``.

    Mean over time with the 10–90 % band and the uniform level; writes a PNG at ``path`` and returns it.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attention = np.asarray(attention, np.float32)
    if attention.ndim != 4:
        raise ValueError(f"attention must be [T, N, h, w], got shape {attention.shape}")
    along_x, along_y = mass_along_axes(attention)              # [T, N, w], [T, N, h]
    n = attention.shape[1]
    fig, axes = plt.subplots(n, 2, figsize=(8, 2.2 * n), squeeze=False)
    for head in range(n):
        for col, (data, axis_name) in enumerate(((along_x[:, head], "x (column)"),
                                                  (along_y[:, head], "y (row)"))):
            ax = axes[head, col]
            pos = np.arange(data.shape[1])
            ax.fill_between(pos, np.percentile(data, 10, axis=0), np.percentile(data, 90, axis=0),
                            alpha=0.3, color="tab:blue", label="10–90 %")
            ax.plot(pos, data.mean(0), color="tab:blue", label="mean")
            ax.axhline(1.0 / data.shape[1], color="grey", lw=0.8, ls=":", label="uniform")
            ax.set_xlim(0, data.shape[1] - 1)
            ax.set_ylim(bottom=0)
            ax.set_title(f"head {head}: mass along {axis_name}", fontsize=9)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_weight_distribution(attention: np.ndarray, out_dir: str) -> Written:
    """The plot of a run's ``attention [T, N, h, w]`` as a PNG and the report's section."""
    path = plot_weight_distribution(attention, os.path.join(out_dir, "weight_distribution.png"),
                                    "Attention mass along x and y per head (mean, 10–90 % over steps)")
    return Written(files={"weight_distribution": path}, section=Section().heading("Weight distribution").media(path))
