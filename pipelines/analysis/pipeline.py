"""``s3ta analyze`` end to end: run the agent once, then every analysis, then the report.

:func:`analyze` takes a stepper (see :mod:`.stepper`) and a factory of freshly seeded
environments, so it is as usable from a notebook as from the command line. Each analysis is a
module of its own, with a function from the rollout to its results and a writer of its files
that returns its entries of the summary and its section of the report (a
:class:`.report.Written`); :func:`analyze` only puts them in order. Outputs in ``out_dir``::

    overlays.mp4 / .gif        attention per head on the frames, with action and value
    overlays_episode<K>.mp4 / .gif   the same, one pair per episode of the run (SPEC §3)
    what_where.mp4 / .gif      SPEC §3 what/where contrast, blue–white–red
    weight_distribution.png    per head, attention mass along x and along y
    saliency_t<T>.png          policy/value saliency (agent and baseline) at frame T
    novel_state.png, .mp4      the sprite probe
    object_mass.png            per head, attention mass on each game object over time (ALE games
                               OCAtari knows: .object_scores), objects.npz the objects' cells
    entropy_by_ball_height.png per head, attention entropy against the ball's height
    summary.json               every number (faithfulness, probe, timings)
    rollout.npz                per-step frames, actions, values, attention, what, where
    report.html                all of the above in one self-contained page
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, List, Optional

import numpy as np

from pipelines.analysis import faithfulness
from pipelines.analysis import novel_state as ns
from pipelines.analysis import object_scores as obj
from pipelines.analysis import saliency as sal
from pipelines.analysis import what_where as ww
from pipelines.analysis.overlay import overlay_panels, write_overlays
from pipelines.analysis.report import Report, Written
from pipelines.analysis.rollout import Rollout, run_agent
from pipelines.analysis.weight_distribution import write_weight_distribution


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _has_attention(stepper) -> bool:
    return getattr(stepper, "num_heads", 0) > 0


def _record(stepper, make_env: Callable, steps: int, cfg, sal_times: List[int], has_attention: bool,
            out_dir: str, progress: bool):
    """The agent's run, keeping the recurrent contexts of the saliency frames and, where they can be
    read, the game's objects; saved as ``rollout.npz``. Returns ``(rollout, object reader or None,
    Written)``."""
    t = time.perf_counter()
    env = make_env()
    reader, why_not = obj.object_reader(env, cfg, has_attention)
    summary = {}
    if why_not:
        summary["objects_skipped"] = why_not
        _log(f"analyze: object scores skipped: {why_not}")
    rollout = run_agent(stepper, env, steps, cfg.policy, cfg.seed, keep_contexts=sal_times, progress=progress,
                        objects=reader)
    env.close()
    seconds = time.perf_counter() - t
    summary.update({"episode_starts": np.flatnonzero(rollout.firsts).tolist(), "return": float(rollout.rewards.sum())})
    np.savez_compressed(os.path.join(out_dir, "rollout.npz"), **rollout.arrays())
    return rollout, reader, Written(summary=summary, timings={"rollout_s": seconds})


def _timed_per_frame(key: str, frames: int, make: Callable[[], Written]) -> Written:
    """``make()``, with its seconds per frame among its timings as ``key``."""
    t = time.perf_counter()
    written = make()
    written.timings[key] = (time.perf_counter() - t) / frames
    return written


def _attention_analyses(rollout: Rollout, out_dir: str, cfg, progress: bool) -> List[Written]:
    """The analyses of the attention maps alone: overlays, what/where, weight distribution."""
    steps = len(rollout)
    return [
        _timed_per_frame("overlay_s_per_frame", steps, lambda: write_overlays(
            rollout, overlay_panels(rollout, cfg.overlay_alpha, cfg.video_scale, progress=progress), out_dir, cfg)),
        _timed_per_frame("what_where_s_per_frame", steps, lambda: ww.write_what_where(
            ww.what_where_panels(rollout, cfg.video_scale, progress), ww.attended_what_share(rollout), out_dir, cfg)),
        write_weight_distribution(rollout.attention, out_dir),
    ]


def _novel_state(stepper, make_env: Callable, plan: ns.ProbePlan, control: Rollout, out_dir: str, cfg,
                 progress: bool) -> Written:
    """The probe run against the ``control`` rollout (same seed), written."""
    _log(f"analyze: novel-state probe (sprite at step {plan.t0}, position {plan.position})")
    result, probe_run = ns.probe_in_environment(stepper, make_env, len(control), plan.sprite, plan.position, plan.t0,
                                                cfg.probe_duration, cfg.policy, cfg.seed, control=control,
                                                progress=progress)
    return ns.write_probe(result, probe_run, control.action_name, out_dir, cfg)


def summary_rows(summary: dict, stepper) -> List[list]:
    """The report's summary table: the run, then per head each analysis's headline numbers."""
    rows = [["steps", summary["steps"]], ["return", summary["return"]],
            ["episodes started", len(summary["episode_starts"])],
            ["attention heads", getattr(stepper, "num_heads", 0)]]
    return (rows + faithfulness.summary_rows(summary) + ns.summary_rows(summary) + obj.summary_rows(summary)
            + ww.summary_rows(summary))


def _summary(stepper, steps: int, cfg, written: List[Written]) -> dict:
    """The run's settings, then every analysis's entries, timings and files, in the order they ran."""
    summary = {"steps": steps, "variant": getattr(stepper, "variant", None),
               "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}}
    timings, files = {}, {}
    for w in written:
        summary.update(w.summary)
        timings.update(w.timings)
        files.update(w.files)
    summary.update(timings=timings, files=files)
    return summary


def _report(summary: dict, stepper, cfg, written: List[Written]) -> Report:
    """The page: the run and the summary table, every analysis's section, the timings."""
    report = Report(f"S3TA analysis — {summary['variant'] or 'agent'}, {summary['steps']} steps")
    report.text(f"Return over the run: {summary['return']:g}; episode starts at steps "
                f"{summary['episode_starts']}. Policy: {cfg.policy}, seed {cfg.seed}.")
    report.table(["", "value"], summary_rows(summary, stepper), "Summary")
    if not _has_attention(stepper):
        report.text("This model has no attention maps: overlays, what/where, weight distribution, faithfulness "
                    "and the novel-state probe need an attention variant; only saliency is shown.")
    for w in written:
        report.add(w.section)
    report.heading("Timings")
    report.table(["what", "seconds"], [[k, (float(np.mean(v)) if isinstance(v, list) else v)]
                                       for k, v in summary["timings"].items()])
    return report


def _write_json(path: str, data: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=2, default=float)
    os.replace(path + ".tmp", path)


def analyze(stepper, make_env: Callable, steps: int, out_dir: str, cfg, baseline=None,
            sprite: Optional[np.ndarray] = None, progress: bool = True) -> dict:
    """Runs every analysis and writes ``out_dir`` (see the module docstring); returns the summary.

    Args:
      stepper: the agent (a stepper; attention variants get every analysis, others saliency only).
      make_env: ``make_env()`` → a freshly seeded TF-Agents PyEnvironment (the probe re-runs it).
      steps: agent steps to run.
      cfg: an :class:`pipelines.analysis.config.AnalysisConfig`.
      baseline: optional stepper (e.g. the feed-forward baseline) for saliency on the same frames.
      sprite: RGBA sprite for the novel-state probe (default: the built-in one).
    """
    os.makedirs(out_dir, exist_ok=True)
    sal_times = sal.saliency_frame_indices(cfg, steps)
    if not sal_times:
        _log(f"analyze: {steps} steps leave no frame after the {cfg.saliency_warmup}-frame warm-up; "
             "saliency skipped (run more steps or --set analysis.saliency_warmup=...)")
    has_attention = _has_attention(stepper)
    # the probe is checked before the long work, not after it
    probe = ns.plan_probe(sprite, cfg, steps, stepper.observation_shape[:2]) if has_attention else None

    rollout, reader, recorded = _record(stepper, make_env, steps, cfg, sal_times, has_attention, out_dir, progress)
    written = [recorded]
    if has_attention:
        written += _attention_analyses(rollout, out_dir, cfg, progress)
    frames = sal.saliency_on_frames(stepper, rollout, sal_times, cfg, baseline, progress) if sal_times else []
    if frames:
        written.append(sal.write_saliency(frames, rollout, out_dir, cfg))
    if reader is not None:
        written.append(obj.write_object_scores(obj.analyse_rollout(rollout, reader, cfg.object_radius, frames,
                                                                   cfg.object_max_lag),
                                               out_dir))
    if probe is not None:
        written.append(_novel_state(stepper, make_env, probe, rollout, out_dir, cfg, progress))

    summary = _summary(stepper, steps, cfg, written)
    _write_json(os.path.join(out_dir, "summary.json"), summary)
    summary["files"]["report"] = _report(summary, stepper, cfg, written).write(os.path.join(out_dir, "report.html"))
    _log(f"analyze: wrote {out_dir}/report.html")
    return summary
