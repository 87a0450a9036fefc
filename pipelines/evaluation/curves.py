"""Learning curves from training runs: episode return and human-normalised return against
emulator frames, several runs overlaid (``s3ta plot``).

A run's curve comes from its learner's TensorBoard summaries (``ROOT/summaries/learner``):
``episode_return`` (mean of the last 100 finished training episodes) and ``frames`` (emulator
frames consumed), both written at the same train steps; the environment comes from
``ROOT/run.json``. Human-normalised returns are computed for the 57 ALE games; a multi-level
run (a comma list of ids) shows its logged capped mean human-normalised return. Points are
drawn in the order they were written, against frames (see :func:`summary_records`).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from pipelines.evaluation import scores
from s3ta_tf.config.overrides import warn
from s3ta_tf.run_record import read_record, record_path


CAPPED_MEAN_TAG = "episode_return_human_normalized_capped_mean"   # multi-level Atari headline


def read_events(path: str) -> list:
    """The events of one TensorBoard file, up to a cut: a hard kill can leave the last record
    half written, so the records before it are kept and a warning says how many bytes were
    skipped. A file whose first record cannot be read is not an events file (ValueError)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.util import event_pb2

    events, read = [], 0
    try:
        for record in tf.compat.v1.io.tf_record_iterator(path):
            events.append(event_pb2.Event.FromString(record))
            read += len(record) + 16   # length (8 bytes) and two CRCs (4 bytes each) per record
    except (tf.errors.DataLossError, DecodeError) as e:   # DecodeError: a record that is no Event
        reason = str(e).strip().splitlines()[0][:120]
        if not events:
            raise ValueError(f"{path}: not a TensorBoard events file ({reason}); expected the "
                             f"learner's summaries under ROOT/summaries/learner") from None
        warn(f"{path}: cut at byte {read} (as a hard kill leaves it): read the {len(events)} records "
             f"before the cut, skipped the last {os.path.getsize(path) - read} bytes")
    return events


def summary_records(event_dir: str) -> List[Dict[str, float]]:
    """The learner's summary writes in the order they were made: one ``{tag: value, "step"}``
    per write (the scalars of one train step). Event files are read in the order they were
    started (each learner process writes its own). Nothing is keyed by step alone: a PBT
    member that exploits continues from another member's step counter, which may be lower
    than its own, and TensorBoard's reader would then discard (or overwrite) the earlier
    points with the same steps."""
    import tensorflow as tf

    files = []
    for name in os.listdir(event_dir):
        if name.startswith("events.out.tfevents."):
            events = read_events(os.path.join(event_dir, name))
            files.append((events[0].wall_time if events else 0.0, name, events))
    records, current = [], None
    for _, _, events in sorted(files, key=lambda f: f[:2]):
        current = None   # a new process: a new write
        for event in events:
            for value in event.summary.value:
                if current is None or current["step"] != event.step or value.tag in current:
                    current = {"step": int(event.step)}
                    records.append(current)
                current[value.tag] = (float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                                      else float(value.simple_value))
    return records


def run_labels(run_dirs: List[str]) -> List[str]:
    """A name per run: its folder, with as many parent folders as it takes to tell apart runs
    whose folders share a name (``a/run``, ``b/run``); the legends and CSV files use it."""
    parts = [os.path.abspath(d).strip(os.sep).split(os.sep) for d in run_dirs]
    depth = [1] * len(parts)
    while True:
        labels = ["/".join(p[-k:]) for p, k in zip(parts, depth)]
        clashes = {i for i, label in enumerate(labels) if labels.count(label) > 1 and depth[i] < len(parts[i])}
        if not clashes:
            return labels
        for i in clashes:
            depth[i] += 1


def load_curve(run_dir: str, label: Optional[str] = None) -> dict:
    """``{"label", "name", "run_dir", "env", "variant", "steps" [n], "frames" [n], "return" [n],
    "hns" [n] or None}``,
    points in the order they were written (plot against frames: a PBT member's step counter
    can jump back after an exploit). ``hns``: the human-normalised return of an ALE game, or
    the capped mean over the games of a multi-level run (its logged headline). ``label``: the
    run's ``name`` (default: its folder); the legend adds its variant."""
    event_dir = os.path.join(run_dir, "summaries", "learner")
    if not os.path.isdir(event_dir):
        raise FileNotFoundError(f"{run_dir}: no summaries/learner directory; expected the --root-dir of a "
                                f"training run ('s3ta train')")
    config = read_record(run_dir) if record_path(run_dir) is not None else {}
    points = [r for r in summary_records(event_dir) if "episode_return" in r and "frames" in r]
    env = config.get("env_id", "")
    multi = "," in env
    game = scores.game_name(env) if env and not multi else None
    r = np.array([p["episode_return"] for p in points])
    if game:
        hns = np.array([scores.human_normalized(game, x) for x in r])
    elif multi and any(CAPPED_MEAN_TAG in p for p in points):
        hns = np.array([p.get(CAPPED_MEAN_TAG, np.nan) for p in points])
    else:
        hns = None
    name = label or os.path.basename(os.path.normpath(run_dir))
    return {"label": f"{name} ({config.get('variant', '?')})", "name": name, "run_dir": run_dir,
            "env": env, "variant": config.get("variant"), "steps": [p["step"] for p in points],
            "frames": np.array([p["frames"] for p in points]), "return": r, "hns": hns}


def load_curves(run_dirs: List[str]) -> List[dict]:
    """The curves of runs to draw, named apart (:func:`run_labels`); a run without a point yet
    is left out with a warning, and ValueError says so when no run has one."""
    curves = [load_curve(d, label) for d, label in zip(run_dirs, run_labels(run_dirs))]
    empty = [c["run_dir"] for c in curves if not len(c["frames"])]
    if len(empty) == len(curves):
        raise ValueError(f"nothing to plot: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no "
                         f"learning-curve point yet (no training episode has finished)")
    for d in empty:
        warn(f"{d}: no learning-curve point yet (no training episode has finished); left out of the plot")
    return [c for c in curves if len(c["frames"])]


def plot_curves(curves: List[dict], out: str, title: Optional[str] = None,
                anchors: Optional[List[dict]] = None) -> List[str]:
    """Writes ``out`` (.png) and the same figure as .svg; returns both paths. ``anchors``:
    optional published reference points ``{"label", "frames", "return"}`` drawn as markers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        ax_h.set_ylabel("human-normalised return (%)\n(multi-level runs: capped mean)")
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


def csv_path(out: str, curve: dict) -> str:
    """``FILE-<run>.csv`` beside ``out``: one file per run, also for runs whose folders share a
    name (the run's name then holds its parent folders, ``FILE-a-run.csv``)."""
    return f"{os.path.splitext(out)[0]}-{curve['name'].replace('/', '-')}.csv"


def write_curve_csv(run_dir: str, path: str) -> None:
    """The run's curve as CSV (:func:`save_curve_csv`)."""
    save_curve_csv(load_curve(run_dir), path)


def save_curve_csv(c: dict, path: str) -> None:
    """A curve's data as CSV: train_step, frames, return[, hns]."""
    from s3ta_tf.atomic_io import write_text_atomic
    header = "train_step,frames,episode_return" + (",human_normalized" if c["hns"] is not None else "")
    rows = [header]
    for i, step in enumerate(c["steps"]):
        row = f"{step},{int(c['frames'][i])},{c['return'][i]:.4f}"
        if c["hns"] is not None:
            row += f",{c['hns'][i]:.3f}"
        rows.append(row)
    write_text_atomic(path, "\n".join(rows) + "\n")
