"""Learning curves from training runs: episode return and human-normalised return against
emulator frames, several runs overlaid (``s3ta plot``).

A run's curve comes from its learner's TensorBoard summaries (``ROOT/summaries/learner``):
``episode_return`` (mean of the last 100 finished training episodes) and ``frames`` (emulator
frames consumed), both written at the same train steps; the environment comes from
``ROOT/run.json``. Human-normalised returns are computed for the 57 ALE games.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from pipelines.evaluation import scores
from s3ta_tf.run_record import read_record, record_path


def _scalars(event_dir: str) -> Dict[str, Dict[int, float]]:
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(event_dir, size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get("tensors", []):
        out[tag] = {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}
    return out


def load_curve(run_dir: str) -> dict:
    """``{"label", "env", "variant", "frames" [n], "return" [n], "hns" [n] or None}``."""
    event_dir = os.path.join(run_dir, "summaries", "learner")
    if not os.path.isdir(event_dir):
        raise FileNotFoundError(f"{run_dir}: no summaries/learner directory; expected the --root-dir of a "
                                f"training run ('s3ta train')")
    config = read_record(run_dir) if record_path(run_dir) is not None else {}
    s = _scalars(event_dir)
    returns, frames = s.get("episode_return", {}), s.get("frames", {})
    steps = sorted(set(returns) & set(frames))
    env = config.get("env_id", "")
    game = scores.game_name(env) if env else None
    r = np.array([returns[k] for k in steps])
    return {"label": f"{os.path.basename(os.path.normpath(run_dir))} ({config.get('variant', '?')})",
            "env": env, "variant": config.get("variant"), "steps": steps,
            "frames": np.array([frames[k] for k in steps]), "return": r,
            "hns": np.array([scores.human_normalized(game, x) for x in r]) if game else None}


def plot_runs(run_dirs: List[str], out: str, title: Optional[str] = None,
              anchors: Optional[List[dict]] = None) -> List[str]:
    """Writes ``out`` (.png) and the same figure as .svg; returns both paths. ``anchors``:
    optional published reference points ``{"label", "frames", "return"}`` drawn as markers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [load_curve(d) for d in run_dirs]
    with_hns = any(c["hns"] is not None for c in curves)
    fig, axes = plt.subplots(1, 2 if with_hns else 1, figsize=(12 if with_hns else 6.5, 4.2), squeeze=False)
    ax_r = axes[0, 0]
    for c in curves:
        ax_r.plot(c["frames"] / 1e6, c["return"], label=c["label"], lw=1.6)
    for a in anchors or []:
        ax_r.scatter([a["frames"] / 1e6], [a["return"]], marker="x", s=40, zorder=3)
        ax_r.annotate(a["label"], (a["frames"] / 1e6, a["return"]), textcoords="offset points",
                      xytext=(4, 4), fontsize=8)
    ax_r.set_xlabel("emulator frames (millions)")
    ax_r.set_ylabel("training episode return (mean of last 100)")
    ax_r.grid(alpha=0.3)
    ax_r.legend(fontsize=8, loc="best")
    if with_hns:
        ax_h = axes[0, 1]
        for c in curves:
            if c["hns"] is not None:
                ax_h.plot(c["frames"] / 1e6, c["hns"], label=c["label"], lw=1.6)
        ax_h.axhline(100, color="grey", ls="--", lw=0.8)
        ax_h.set_xlabel("emulator frames (millions)")
        ax_h.set_ylabel("human-normalised return (%)")
        ax_h.grid(alpha=0.3)
        ax_h.legend(fontsize=8, loc="best")
    envs = sorted({c["env"] for c in curves if c["env"]})
    fig.suptitle(title or ", ".join(envs))
    fig.tight_layout()
    base, _ = os.path.splitext(out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    paths = [base + ".png", base + ".svg"]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def write_curve_csv(run_dir: str, path: str) -> None:
    """The curve's data as CSV: train_step, frames, return[, hns]."""
    from s3ta_tf.atomic_io import write_text_atomic
    c = load_curve(run_dir)
    header = "train_step,frames,episode_return" + (",human_normalized" if c["hns"] is not None else "")
    rows = [header]
    for i, step in enumerate(c["steps"]):
        row = f"{step},{int(c['frames'][i])},{c['return'][i]:.4f}"
        if c["hns"] is not None:
            row += f",{c['hns'][i]:.3f}"
        rows.append(row)
    write_text_atomic(path, "\n".join(rows) + "\n")
