"""``s3ta bench e2e``: end-to-end frames/s of ``s3ta train`` next to two bounds, in one run.

1. **Raw ALE frames/s**: one ``make_environment(env)`` stepped with random actions in this
   process (emulator frames: agent steps × 4).
2. **Compute bound**: the measured matmul peak in the run's precision (GFLOP/s, ``pipelines.bench_common``) divided by
   the GFLOP one emulator frame costs: per agent step, the actor's forward step plus the
   learner's forward + backward (3× forward, ``s3ta_tf.flops``) = 4× the step's FLOPs, spread
   over the 4 frames of the action repeat.
3. **End to end**: ``s3ta train --env ENV --preset PRESET --agent AGENT`` with a queue no
   larger than one batch (so actors are throttled to the learner's pace), run for
   ``seconds``; frames/s is measured between the learner's first and last progress reports
   after a warm-up, from the frames it consumed, and the actors' own frame rate is reported
   alongside, with the split of the actors' time (``pipelines.rl.actor.TimeSplit``), the
   learner's share of time waiting for data and its policy lag. ``--compare-preset`` and
   ``--compare-set`` add configurations measured in the same run.
4. **On Ray** (``--ray [ADDRESS]``): the same ``s3ta train`` run (same actors, same seconds) with
   ``--ray``, its services as Ray actors (``pipelines.rl.ray_launcher``), on ADDRESS or on a
   throwaway one-node Ray cluster on this machine, right after the local one: the engine's
   overhead is ``1 - ray / local`` frames/s.

Reports frames/s, and the ratios to the raw ALE rate and to the compute bound.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from pipelines.rl.launcher import PROJECT_ROOT
from s3ta_tf.atomic_io import read_json_or_none

FORWARD_BACKWARD = 3.0  # learner forward + backward ≈ 3 forwards (s3ta_tf.flops convention)


def frames_per_second(step, frame_count, seconds: float) -> float:
    """Emulator frames/s of calling ``step()`` (random actions) for ``seconds``, read from
    ``frame_count()`` before and after."""
    start, frames0 = time.perf_counter(), frame_count()
    while time.perf_counter() - start < seconds:
        step()
    return (frame_count() - frames0) / (time.perf_counter() - start)


def raw_vector_frames_per_second(env_id: str, num_envs: int = 16, seconds: float = 5.0) -> float:
    """Emulator frames/s of ALE's vector environment (the actors' engine) stepping ``num_envs``
    games with random actions on one thread, shrink to 64x64 included."""
    import numpy as np
    from agents.environments import AtariVectorGroup

    group = AtariVectorGroup(env_id, list(range(num_envs)), (64, 64, 3))
    rng = np.random.default_rng(0)
    group.reset()

    def step():
        group.send(rng.integers(group.num_actions, size=num_envs).astype(np.int32))
        group.recv()
    rate = frames_per_second(step, lambda: group.frame_count, seconds)
    group.close()
    return rate


def raw_env_frames_per_second(env_id: str, seconds: float = 5.0) -> float:
    """Emulator frames/s of one ``make_environment(env_id)`` stepped with random actions."""
    import numpy as np
    from agents.environments import make_environment

    env = make_environment(env_id, seed=0)
    rng = np.random.default_rng(0)
    env.reset()
    rate = frames_per_second(lambda: env.step(np.int32(rng.integers(env.num_actions))),
                             lambda: env.frame_count, seconds)
    env.close()
    return rate


def compute_bound(spec, num_actions: int, frames_per_step: int, peak_gflops: float) -> dict:
    from s3ta_tf.flops import agent_step_flops

    step_gflop = agent_step_flops(spec.agent, spec.variant, num_actions)["total"] / 1e9
    per_agent_step = step_gflop * (1.0 + FORWARD_BACKWARD)
    return {"gflop_per_actor_step": step_gflop, "gflop_per_learner_step": step_gflop * FORWARD_BACKWARD,
            "gflop_per_agent_step": per_agent_step, "gflop_per_frame": per_agent_step / frames_per_step,
            "frames_per_second": peak_gflops / per_agent_step * frames_per_step}


def measure_train(env_id: str, preset: str, agent: str, actors: int, seconds: float,
                  warmup_seconds: float, root_dir: str, extra_args=(), sample=None) -> dict:
    """Runs ``s3ta train`` for ``seconds`` and samples its progress files (and ``sample()``'s
    numbers, if given, into each sample)."""
    from agents.impala.config import train_config

    batch = train_config(preset).batch_size
    argv = [sys.executable, "-m", "pipelines.cli", "train", "--env", env_id, "--preset", preset,
            "--agent", agent, "--root-dir", root_dir, "--actors", str(actors),
            "--max-frames", str(10 ** 12), "--set", f"train.queue_size={batch}",
            "--set", "train.checkpoint_interval_secs=100000", "--set", "train.export_interval_steps=0",
            *extra_args]
    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    log = open(os.path.join(root_dir, "bench-train.out"), "w")
    proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    samples = []
    start = time.time()
    try:
        while time.time() - start < seconds and proc.poll() is None:
            time.sleep(2.0)
            learner = read_json_or_none(os.path.join(root_dir, "learner.json"))
            actor_frames = sum((read_json_or_none(p) or {}).get("frames", 0)
                               for p in glob.glob(os.path.join(root_dir, "actors", "actor-*.json")))
            samples.append({"t": time.time() - start,
                            "learner_frames": learner["frames"] if learner else 0,
                            "train_step": learner["train_step"] if learner else 0,
                            "actor_frames": actor_frames, **(sample() if sample else {})})
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    steady = [s for s in samples if s["t"] >= warmup_seconds]
    result = {"seconds": seconds, "warmup_seconds": warmup_seconds, "samples": len(samples)}
    for key in ("learner_frames", "actor_frames"):
        changed = [s for s in steady if s[key] != steady[0][key]] if steady else []
        if steady and changed:
            first, last = steady[0], changed[-1]
            result[key.replace("frames", "frames_per_second")] = (last[key] - first[key]) / (last["t"] - first["t"])
        else:
            result[key.replace("frames", "frames_per_second")] = None
    result["train_steps"] = samples[-1]["train_step"] if samples else 0
    result["first_update_seconds"] = next((s["t"] for s in samples if s["train_step"] > 0), None)
    if sample and len(steady) > 1:   # the rate of each of sample()'s counters over the measured window
        result["sampled_rates"] = {k: (steady[-1][k] - steady[0][k]) / (steady[-1]["t"] - steady[0]["t"])
                                   for k in sample()}
    result["actor_time_split"] = actor_time_split(root_dir)
    result["learner"] = learner_figures(root_dir)
    return result


def learner_figures(root_dir: str) -> dict:
    """The learner's share of time waiting for data (``learner.json``) and its mean policy lag
    (train steps between acting and learning, over its summaries' second half)."""
    from pipelines.evaluation.curves import summary_records

    record = read_json_or_none(os.path.join(root_dir, "learner.json")) or {}
    figures = {"batch_wait_fraction": record.get("batch_wait_fraction")}
    events = os.path.join(root_dir, "summaries", "learner")
    lags = [r["policy/lag"] for r in (summary_records(events) if os.path.isdir(events) else []) if "policy/lag" in r]
    figures["policy_lag"] = sum(lags[len(lags) // 2:]) / len(lags[len(lags) // 2:]) if lags else None
    return figures


def actor_time_split(root_dir: str) -> dict:
    """The actors' wall time by part (emulation, inference, writing, replay_blocked, variables,
    other; see ``pipelines.rl.actor.TimeSplit``), averaged over the actors."""
    splits = [s["time_split"] for s in (read_json_or_none(p) or {} for p in
                                        glob.glob(os.path.join(root_dir, "actors", "actor-*.json")))
              if "time_split" in s]
    return {k: sum(s[k] for s in splits) / len(splits) for k in splits[0]} if splits else {}


def run_e2e_benchmark(out_path=None, args=None) -> dict:
    """``--preset`` (and each ``--compare-preset``) measured in one run, against one raw ALE rate
    and one matmul peak; the first preset's figures are also the top-level keys."""
    from pipelines.bench_common import matmul_peak_gflops
    import tensorflow as tf
    from s3ta_tf.precision import cpu_summary, resolve_precision

    env_id = getattr(args, "env", None) or "ALE/Pong-v5"
    presets = [getattr(args, "preset", None) or "atari-cpu"]
    presets += [p for p in (getattr(args, "compare_preset", None) or []) if p not in presets]
    agent = getattr(args, "agent", None) or "attention"
    quick = bool(getattr(args, "quick", False))
    seconds = float(getattr(args, "seconds", None) or (150 if quick else 600))
    precision, precision_why = resolve_precision(getattr(args, "precision", None) or "auto")
    raw = raw_env_frames_per_second(env_id, seconds=3.0 if quick else 10.0)
    raw_vector = raw_vector_frames_per_second(env_id, seconds=3.0 if quick else 10.0)
    peak = matmul_peak_gflops(tf.as_dtype(precision), seconds=2.0 if quick else 5.0)
    variants = [""] + list(dict.fromkeys(getattr(args, "compare_set", None) or []))
    measured = {p + (f" {v}" if v else ""): measure_preset(env_id, p, agent, precision, seconds, raw, peak,
                                                             getattr(args, "actors", None), v.split(),
                                                             ray=getattr(args, "ray", None))
                for p in presets for v in variants}
    return {
        "benchmark": "e2e", "env": env_id, "agent": agent, "precision": precision,
        "precision_choice": precision_why, "cpu_flags": cpu_summary(), "cpu_count": os.cpu_count(),
        **measured[presets[0]],
        "raw_env_frames_per_second": raw,
        "raw_vector_frames_per_second": raw_vector,
        "peak_gflops": peak,
        "presets": measured,
        "note": "frames are emulator frames (agent steps x action repeat); the compute bound counts the "
                "actor forward plus the learner forward+backward (3x) per agent step; every preset was "
                "measured in this run against the same raw ALE rate and matmul peak",
    }


def measure_preset(env_id: str, preset: str, agent: str, precision: str, seconds: float, raw: float,
                   peak: float, actors=None, overrides=(), ray=None) -> dict:
    """One preset's end-to-end frames/s, its compute bound and both ratios, with ``overrides``
    (``KEY=VALUE`` strings, as ``--set`` takes them) applied; with ``ray`` (an address, or
    ``local``) the same run on Ray too (:func:`measure_on_ray`)."""
    from agents.impala.builder import RunSpec
    from agents.impala.config import train_config
    from s3ta_tf.flops import agent_step_flops

    actors = int(actors or train_config(preset).num_actors)
    spec = RunSpec.from_args(preset, agent, list(overrides), env_id=env_id, precision=precision)
    env = spec.make_environment(seed=0)
    num_actions, frames_per_step = env.num_actions, env.frames_per_step
    env.close()
    bound = compute_bound(spec, num_actions, frames_per_step, peak)
    root_dir = tempfile.mkdtemp(prefix="s3ta-bench-e2e-")
    try:
        train = measure_train(env_id, preset, agent, actors, seconds, warmup_seconds=seconds / 3,
                              root_dir=root_dir, extra_args=("--precision", precision,
                                                             *sum((["--set", o] for o in overrides), [])))
    finally:
        shutil.rmtree(root_dir, ignore_errors=True)
    fps = train["learner_frames_per_second"] or train["actor_frames_per_second"]
    print(f"e2e {' '.join([preset, *overrides])}: {fps or 0:,.0f} frames/s end to end, raw ALE {raw:,.0f}, compute bound "
          f"{bound['frames_per_second']:,.0f}", flush=True)
    on_ray = measure_on_ray(ray, fps, env_id, preset, agent, actors, seconds, precision, overrides) if ray else None
    return {
        **({"ray": on_ray} if on_ray else {}),
        "preset": preset, "overrides": list(overrides), "actor_engine": spec.train.actor_engine,
        "actor_groups": spec.train.actor_groups, "envs_per_actor": spec.train.envs_per_actor, "actors": actors, "num_actions": num_actions, "frames_per_step": frames_per_step,
        "feature_shape": list(spec.agent.feature_shape),
        "flops_per_step": agent_step_flops(spec.agent, spec.variant, num_actions)["total"],
        "frames_per_second": fps,
        "frames_per_second_source": "learner" if train["learner_frames_per_second"] else "actors",
        "train": train,
        "compute_bound": bound,
        "ratio_to_raw_env": fps / raw if fps else None,
        "ratio_to_compute_bound": fps / bound["frames_per_second"] if fps else None,
    }


def measure_on_ray(address: str, local_fps, env_id: str, preset: str, agent: str, actors: int, seconds: float,
                   precision: str, overrides=()) -> dict:
    """The run of :func:`measure_train` again with ``s3ta train --ray``: on ``address``, or for
    ``local`` on a one-node Ray cluster started here for it (CPUs: the actors', replay's and
    learner's one each). Its frames/s and the overhead against ``local_fps``; on the local
    cluster also the CPU that Ray's own processes took meanwhile (``ray_cores``: its GCS,
    raylet and the Ray workers hosting the services, not the services), a figure that other
    jobs on the machine do not disturb as they disturb frames/s."""
    import contextlib
    from pipelines.rl.ray_launcher import local_cluster

    extra = ("--precision", precision, *sum((["--set", o] for o in overrides), []))
    cluster = (local_cluster([{"num_cpus": actors + 2}]) if address == "local"
               else contextlib.nullcontext((address, None)))
    root_dir = tempfile.mkdtemp(prefix="s3ta-bench-e2e-ray-")
    try:
        with cluster as (ray_address, _):
            train = measure_train(env_id, preset, agent, actors, seconds, warmup_seconds=seconds / 3,
                                  root_dir=root_dir, extra_args=(*extra, "--ray", ray_address),
                                  sample=ray_cpu_seconds if address == "local" else None)
    finally:
        shutil.rmtree(root_dir, ignore_errors=True)
    fps = train["learner_frames_per_second"] or train["actor_frames_per_second"]
    overhead = 1.0 - fps / local_fps if fps and local_fps else None
    ray_cores = (train.get("sampled_rates") or {}).get("ray_cpu_seconds")
    print(f"e2e {' '.join([preset, *overrides])} on Ray ({address}): {fps or 0:,.0f} frames/s end to end"
          + (f", overhead {100 * overhead:.1f}% against the local launcher" if overhead is not None else "")
          + (f"; Ray's own processes used {ray_cores:.3f} cores" if ray_cores is not None else ""), flush=True)
    return {"address": address, "frames_per_second": fps, "overhead": overhead, "ray_cores": ray_cores,
            "train": train}


def ray_cpu_seconds() -> dict:
    """CPU seconds so far of this process's descendants that are Ray's (a local cluster's GCS,
    raylet, dashboard agents and workers), leaving out the s3ta processes (``pipelines.cli``:
    the launcher and the services it hosts): ``{"ray_cpu_seconds": s}``."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "pipelines.cli" in " ".join(child.cmdline()):
                continue
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:   # (ended meanwhile)
            continue
    return {"ray_cpu_seconds": total}
