"""``s3ta analyze`` end to end: run the agent once, then every analysis, then the report.

:func:`analyze` takes a stepper (see :mod:`.stepper`) and a factory of freshly seeded
environments, so it is as usable from a notebook as from the command line. Outputs in
``out_dir``::

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
from typing import Callable, Dict, List, Optional

import numpy as np

from pipelines.analysis import novel_state as ns
from pipelines.analysis import object_scores as obj
from pipelines.analysis.faithfulness import faithfulness_scores
from pipelines.analysis.overlay import overlay_heads
from pipelines.analysis.progress import Progress
from pipelines.analysis.report import Report
from pipelines.analysis.rollout import Rollout, replay, run_agent
from pipelines.analysis.saliency import Saliency, recurrent_evaluator, saliency_image, saliency_maps
from pipelines.analysis.video import labelled_row, panel, write_gif, write_mp4, write_png
from pipelines.analysis.weight_distribution import plot_weight_distribution
from pipelines.analysis.what_where import what_share, what_where_frames


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def saliency_frame_indices(cfg, steps: int) -> List[int]:
    """The frames to perturb: ``cfg.saliency_frames`` or the first one after the warm-up.

    Each must leave at least ``saliency_warmup`` unperturbed frames before it; [] if the run is
    too short for the default (ValueError if explicitly asked frames do not fit).
    """
    if not cfg.saliency_frames:
        return [cfg.saliency_warmup] if steps > cfg.saliency_warmup else []
    bad = [t for t in cfg.saliency_frames if not cfg.saliency_warmup <= t < steps]
    if bad:
        raise ValueError(f"saliency frames {bad} must lie in [saliency_warmup={cfg.saliency_warmup}, "
                         f"steps={steps}): each needs > {cfg.saliency_warmup - 1} unperturbed frames before it")
    return sorted(set(int(t) for t in cfg.saliency_frames))


def caption(rollout: Rollout, t: int) -> str:
    return (f"t={t} a={rollout.action_name(int(rollout.actions[t]))} "
            f"v={rollout.values[t]:.3f} r={rollout.rewards[t]:g}")


def _panels(rollout: Rollout, rows_of, labels, scale: int, times, label: str, progress: bool) -> np.ndarray:
    times = list(range(len(rollout)) if times is None else times)
    bar = Progress(label, len(times), enabled=progress)
    out = []
    for i, t in enumerate(times):
        out.append(panel(rollout.frames[t], rows_of(t), caption(rollout, t), labels, scale))
        bar.update(i + 1)
    bar.close()
    return np.stack(out)


def overlay_panels(rollout: Rollout, alpha: float, scale: int, times=None, progress: bool = False) -> np.ndarray:
    """Video frames ``[T, ...]``: caption (t, action, value, reward), the frame, one overlay row per head."""
    labels = [f"head {n}" for n in range(rollout.attention.shape[1])]
    return _panels(rollout, lambda t: overlay_heads(rollout.frames[t], rollout.attention[t], alpha), labels,
                   scale, times, "overlay video", progress)


def what_where_panels(rollout: Rollout, scale: int, progress: bool = False) -> np.ndarray:
    """Video frames: caption, the frame, one what/where row per head (red what, blue where)."""
    labels = [f"head {n}: red what / blue where" for n in range(rollout.attention.shape[1])]
    return _panels(rollout, lambda t: what_where_frames(rollout.frames[t], rollout.what[t], rollout.where[t],
                                                        rollout.attention[t]),
                   labels, scale, None, "what/where video", progress)


def episode_segments(firsts) -> List[tuple]:
    """``[(start, end), ...]``: the steps of each episode of a run, split where ``firsts`` is
    True (the run's first step always starts one; the last may be cut by the step budget)."""
    starts = sorted(set([0] + np.flatnonzero(np.asarray(firsts)).tolist()))
    ends = starts[1:] + [len(firsts)]
    return [(a, b) for a, b in zip(starts, ends) if b > a]


def write_video_pair(out_dir: str, name: str, frames: np.ndarray, cfg) -> Dict[str, str]:
    return {"mp4": write_mp4(os.path.join(out_dir, name + ".mp4"), frames, cfg.video_fps),
            "gif": write_gif(os.path.join(out_dir, name + ".gif"), frames, cfg.video_fps, cfg.gif_max_frames)}


def _add_video_pair(report: Report, pair: Dict[str, str], cfg) -> None:
    """The MP4, and the GIF too unless it exceeds ``cfg.report_gif_max_mb`` (it stays in the directory)."""
    report.media(pair["mp4"], "MP4")
    size_mb = os.path.getsize(pair["gif"]) / 2 ** 20
    if size_mb <= cfg.report_gif_max_mb:
        report.media(pair["gif"], "GIF")
    else:
        report.text(f"{os.path.basename(pair['gif'])} ({size_mb:.1f} MB) is next to this page; not embedded "
                    f"(over report_gif_max_mb={cfg.report_gif_max_mb:g}).")


def _saliency(stepper, context, frame, cfg, label) -> Saliency:
    bar = Progress(label, 0, unit="perturbed frames")
    def progress(done, total):
        bar.total = total
        bar.update(done)
    result = saliency_maps(recurrent_evaluator(stepper, context), frame, cfg.saliency_stride,
                           cfg.saliency_mask_sigma, cfg.saliency_blur_sigma, cfg.saliency_batch, progress)
    bar.close()
    return result


def _object_reader(env, cfg, has_attention: bool, summary: dict):
    """The object reader of ``env`` for the object scores, or None (the reason logged and put in
    ``summary["objects_skipped"]``): off in ``cfg``, no attention maps, not an ALE game OCAtari
    knows, or OCAtari not installed."""
    if not cfg.object_scores:
        return None
    why = None if has_attention else "the model has no attention maps"
    if why is None:
        try:
            return obj.RamObjects(env)
        except obj.ObjectsUnavailable as e:
            why = str(e)
    summary["objects_skipped"] = why
    _log(f"analyze: object scores skipped: {why}")
    return None


def _pool_saliency(pooled: Dict[str, list], who: str, sal: Saliency, frame_hw, grid_hw) -> None:
    for kind in ("policy", "value"):
        pooled.setdefault(f"{who} {kind} saliency", []).append(
            obj.pool_to_grid(getattr(sal, kind), sal.ys, sal.xs, frame_hw, grid_hw))


def summary_rows(summary: dict, stepper) -> List[list]:
    """The report's summary table: the run, then per head the headline numbers."""
    rows = [["steps", summary["steps"]], ["return", summary["return"]],
            ["episodes started", len(summary["episode_starts"])],
            ["attention heads", getattr(stepper, "num_heads", 0)]]
    for ts, entry in summary.get("saliency", {}).items():
        for kind in ("policy", "value"):
            faith = entry.get(f"faithfulness_{kind}")
            if faith:
                rows.append([f"frame {ts}: Spearman ρ(attention, {kind} saliency) per head",
                             ", ".join(f"{v:.3f}" for v in faith["spearman"])])
                rows.append([f"frame {ts}: {kind} saliency share in top-{faith['k']} cells per head "
                             f"(chance {faith['chance']:.3f})", ", ".join(f"{v:.3f}" for v in faith["top_k_mass"])])
    if "novel_state" in summary:
        probe = summary["novel_state"]
        rows.append(["novel state: sprite detected per head",
                     ", ".join("yes" if d else "no" for d in probe.get("detected_by_head", []))])
        rows.append(["novel state: actions agree with control during / after",
                     f"{probe['during']['action_agreement']}, {probe['after']['action_agreement']}"])
    for c, s in summary.get("objects", {}).get("attention", {}).items():
        if s["steps"]:
            rows.append([f"{c}: lift per head (1 = even spread)", ", ".join(f"{v:.2f}" for v in s["lift"])])
            rows.append([f"{c}: hit rate per head (chance {s['chance']:.2f})",
                         ", ".join(f"{v:.2f}" for v in s["hit_rate"])])
    if "what_share_attended" in summary:
        rows.append(["attention-weighted |what| share per head",
                     ", ".join(f"{v:.3f}" for v in summary["what_share_attended"])])
    return rows


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
    timings: Dict[str, float] = {}
    summary: dict = {"steps": steps, "variant": getattr(stepper, "variant", None),
                     "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()}}
    sal_times = saliency_frame_indices(cfg, steps)
    if not sal_times:
        _log(f"analyze: {steps} steps leave no frame after the {cfg.saliency_warmup}-frame warm-up; "
             "saliency skipped (run more steps or --set saliency_warmup=...)")
    has_attention = getattr(stepper, "num_heads", 0) > 0
    object_analysis = None
    sprite = ns.default_sprite() if sprite is None else ns.as_rgba(sprite)
    t0 = cfg.probe_time if cfg.probe_time >= 0 else steps // 2
    probe_position = ns.resolve_position(sprite, cfg.probe_position, stepper.observation_shape[:2])
    if has_attention:        # fail before the long work, not after it
        if not 0 <= t0 < steps:
            raise ValueError(f"probe_time={t0} must be within the {steps} analysed steps")
        ns.sprite_box(sprite, probe_position, stepper.observation_shape[:2])

    t = time.perf_counter()
    env = make_env()
    objects = _object_reader(env, cfg, has_attention, summary)
    rollout = run_agent(stepper, env, steps, cfg.policy, cfg.seed, keep_contexts=sal_times, progress=progress,
                        objects=objects)
    env.close()
    timings["rollout_s"] = time.perf_counter() - t
    summary["episode_starts"] = np.flatnonzero(rollout.firsts).tolist()
    summary["return"] = float(rollout.rewards.sum())
    np.savez_compressed(os.path.join(out_dir, "rollout.npz"), **rollout.arrays())

    report = Report(f"S3TA analysis — {summary['variant'] or 'agent'}, {steps} steps")
    report.text(f"Return over the run: {summary['return']:g}; episode starts at steps "
                f"{summary['episode_starts']}. Policy: {cfg.policy}, seed {cfg.seed}.")
    files: Dict[str, object] = {}
    summary_at = len(report.parts)

    if not has_attention:
        report.text("This model has no attention maps: overlays, what/where, weight distribution, faithfulness "
                    "and the novel-state probe need an attention variant; only saliency is shown.")
    if has_attention:
        t = time.perf_counter()
        panels = overlay_panels(rollout, cfg.overlay_alpha, cfg.video_scale, progress=progress)
        files["overlays"] = write_video_pair(out_dir, "overlays", panels, cfg)
        episodes = episode_segments(rollout.firsts)
        files["overlays_per_episode"] = [write_video_pair(out_dir, f"overlays_episode{k:03d}", panels[a:b], cfg)
                                         for k, (a, b) in enumerate(episodes)]
        summary["episodes"] = [{"episode": k, "first_step": a, "steps": b - a,
                                "return": float(rollout.rewards[a:b].sum())}
                               for k, (a, b) in enumerate(episodes)]
        timings["overlay_s_per_frame"] = (time.perf_counter() - t) / steps
        report.heading("Attention overlays")
        report.text("Top: the frame with step, action, value and reward; below: one row per head "
                    "(bright = attended). The whole run, then one video per episode.")
        _add_video_pair(report, files["overlays"], cfg)
        report.table(["episode", "steps", "return", "overlay video"],
                     [[e["episode"], e["steps"], e["return"],
                       os.path.basename(files["overlays_per_episode"][e["episode"]]["mp4"])]
                      for e in summary["episodes"]])

        t = time.perf_counter()
        files["what_where"] = write_video_pair(out_dir, "what_where", what_where_panels(rollout, cfg.video_scale, progress),
                                               cfg)
        timings["what_where_s_per_frame"] = (time.perf_counter() - t) / steps
        share = what_share(rollout.what, rollout.where)
        summary["what_share_attended"] = [float((share[:, n] * rollout.attention[:, n]).sum()
                                                / rollout.attention[:, n].sum())
                                          for n in range(rollout.attention.shape[1])]
        report.heading("What vs where")
        report.text("D = clip(what − where, ±log 10) weighted by attention: red = content (what), "
                    "blue = location (where), white = balanced or unattended.")
        _add_video_pair(report, files["what_where"], cfg)
        report.table(["head", "attention-weighted |what| share"],
                     [[n, s] for n, s in enumerate(summary["what_share_attended"])])

        if objects is not None:
            object_analysis = obj.score_rollout(rollout, objects.categories, objects.screen_hw, cfg.object_radius)
            summary["objects"] = object_analysis.summary
        files["weight_distribution"] = plot_weight_distribution(
            rollout.attention, os.path.join(out_dir, "weight_distribution.png"),
            "Attention mass along x and y per head (mean, 10–90 % over steps)")
        report.heading("Weight distribution")
        report.media(files["weight_distribution"])

    if sal_times:
        report.heading("Saliency (Greydanus et al.)")
        report.text(f"Perturbation saliency after ≥ {cfg.saliency_warmup} unperturbed frames, stride "
                    f"{cfg.saliency_stride}, mask σ {cfg.saliency_mask_sigma}, blur σ {cfg.saliency_blur_sigma}; "
                    "green = salient. The baseline sees the same frames (open loop).")
        summary["saliency"] = {}
        base_run = None
        if baseline is not None:
            if tuple(baseline.observation_shape) != tuple(stepper.observation_shape):
                raise ValueError(f"baseline model expects observations {tuple(baseline.observation_shape)} but "
                                 f"the agent's are {tuple(stepper.observation_shape)}")
            upto = max(sal_times) + 1
            base_run = replay(baseline, rollout.frames[:upto], rollout.actions[:upto], rollout.rewards[:upto],
                              rollout.firsts[:upto], keep_contexts=sal_times, progress=progress,
                              label="baseline replay")
        rows = []
        pooled: Dict[str, list] = {}
        for ts in sal_times:
            frame = rollout.frames[ts]
            t = time.perf_counter()
            agent_sal = _saliency(stepper, rollout.contexts[ts], frame, cfg, f"saliency t={ts}")
            timings.setdefault("saliency_s_per_frame", []).append(time.perf_counter() - t)
            entry = {"policy_max": float(agent_sal.policy.max()), "value_max": float(agent_sal.value.max()),
                     "policy_noise_floor": agent_sal.noise_policy, "value_noise_floor": agent_sal.noise_value}
            images = [frame, saliency_image(frame, agent_sal.policy), saliency_image(frame, agent_sal.value)]
            labels = ["frame", "agent policy", "agent value"]
            arrays = {"agent_policy": agent_sal.policy, "agent_value": agent_sal.value,
                      "ys": agent_sal.ys, "xs": agent_sal.xs}
            if has_attention:
                att = rollout.attention[ts]
                for kind, sal in (("policy", agent_sal.policy), ("value", agent_sal.value)):
                    entry[f"faithfulness_{kind}"] = faithfulness_scores(att, sal, agent_sal.ys, agent_sal.xs,
                                                                 frame.shape[:2], cfg.top_k_fraction)
                    for n in range(att.shape[0]):
                        rows.append([ts, n, kind, entry[f"faithfulness_{kind}"]["spearman"][n],
                                     entry[f"faithfulness_{kind}"]["top_k_mass"][n],
                                     entry[f"faithfulness_{kind}"]["chance"]])
                images += list(overlay_heads(frame, att, cfg.overlay_alpha))
                labels += [f"attention head {n}" for n in range(att.shape[0])]
            if base_run is not None:
                base_sal = _saliency(baseline, base_run.contexts[ts], frame, cfg, f"baseline saliency t={ts}")
                images += [saliency_image(frame, base_sal.policy), saliency_image(frame, base_sal.value)]
                labels += ["baseline policy", "baseline value"]
                arrays.update(baseline_policy=base_sal.policy, baseline_value=base_sal.value)
                if object_analysis is not None:
                    _pool_saliency(pooled, "baseline", base_sal, frame.shape[:2], rollout.attention.shape[-2:])
                entry.update(baseline_policy_max=float(base_sal.policy.max()),
                             baseline_value_max=float(base_sal.value.max()))
            if object_analysis is not None:
                _pool_saliency(pooled, "agent", agent_sal, frame.shape[:2], rollout.attention.shape[-2:])
            np.savez_compressed(os.path.join(out_dir, f"saliency_t{ts}.npz"), **arrays)
            png = write_png(os.path.join(out_dir, f"saliency_t{ts}.png"), labelled_row(images, labels))
            report.media(png, f"frame {ts}: saliency (normalised per map) and attention")
            summary["saliency"][str(ts)] = entry
        if rows:
            report.heading("Faithfulness: does attention predict saliency?")
            report.text(f"Per head: Spearman rank correlation between attention and saliency over the cells, "
                        f"and the share of saliency inside the top {cfg.top_k_fraction:.0%} attended cells "
                        "(chance = what a random choice of as many cells gets).")
            report.table(["frame", "head", "saliency of", "Spearman ρ", "top-k saliency share", "chance"], rows)
        if object_analysis is not None:
            maps = {"attention (same frames)": rollout.attention[sal_times],
                    **{k: np.stack(v)[:, None] for k, v in pooled.items()}}
            summary["objects"]["saliency"] = {k: obj.score_maps_on_frames(m, object_analysis.tracks, sal_times,
                                                                          cfg.object_radius)
                                              for k, m in maps.items()}
            summary["objects"]["saliency_frames"] = sal_times

    if object_analysis is not None:
        files["objects"] = obj.write_object_scores(object_analysis, out_dir, report)

    if has_attention:
        _log(f"analyze: novel-state probe (sprite at step {t0}, position {probe_position})")
        result, probe_run = ns.probe_in_environment(stepper, make_env, steps, sprite, probe_position, t0,
                                                    cfg.probe_duration, cfg.policy, cfg.seed, control=rollout,
                                                    progress=progress)
        summary["novel_state"] = result.summary()
        files["novel_state"] = ns.plot_probe(result, os.path.join(out_dir, "novel_state.png"), rollout.action_name)
        window = range(max(0, t0 - 10), min(steps, t0 + cfg.probe_duration + 10))
        files["novel_state_video"] = write_mp4(os.path.join(out_dir, "novel_state.mp4"),
                                               overlay_panels(probe_run, cfg.overlay_alpha, cfg.video_scale, window),
                                               cfg.video_fps)
        report.heading("Novel-state probe")
        report.text(f"A sprite is spliced into the pixels at steps {t0}–{t0 + cfg.probe_duration - 1}, "
                    f"box (y0, x0, y1, x1) = {result.box}; the control run is the same seed without it.")
        report.media(files["novel_state"]).media(files["novel_state_video"], "probe run around the sprite")
        s = summary["novel_state"]
        report.table(["head", "mass before", "mass during", "control during", "mass after", "detected"],
                     [[n, s["before"]["mass_probe"][n] if s["before"]["steps"] else float("nan"),
                       s["during"]["mass_probe"][n], s["during"]["mass_control"][n],
                       s["after"]["mass_probe"][n] if s["after"]["steps"] else float("nan"),
                       "yes" if s["detected_by_head"][n] else "no"]
                      for n in range(len(s["during"]["mass_probe"]))])
        report.table(["window", "steps", "actions agree with control"],
                     [[w, s[w]["steps"], s[w]["action_agreement"] if s[w]["steps"] else float("nan")]
                      for w in ("before", "during", "after")])

    summary["timings"] = timings
    summary["files"] = files
    report.table(["", "value"], summary_rows(summary, stepper), "Summary", at=summary_at)
    report.heading("Timings")
    report.table(["what", "seconds"], [[k, (float(np.mean(v)) if isinstance(v, list) else v)]
                                       for k, v in timings.items()])
    with open(os.path.join(out_dir, "summary.json.tmp"), "w") as f:
        json.dump(summary, f, indent=2, default=float)
    os.replace(os.path.join(out_dir, "summary.json.tmp"), os.path.join(out_dir, "summary.json"))
    summary["files"]["report"] = report.write(os.path.join(out_dir, "report.html"))
    _log(f"analyze: wrote {out_dir}/report.html")
    return summary
