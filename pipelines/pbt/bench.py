"""``s3ta bench pbt``: what population-based training costs on this machine, measured in one run.

1. **One run**: ``s3ta train`` for ``2·F`` frames (the demo's model and recipe on MiniGrid):
   frames/s = frames / wall seconds, start-up included.
2. **A population of 2**: ``s3ta pbt --pbt-preset small`` (segments of 4,000 frames, an exploit
   possible at every boundary) with ``F`` frames per member, the same ``2·F`` frames in total:
   frames/s the same way, and its ratio to the single run.
3. **The exploit overhead**, seconds: copying a member's checkpoint into another member's root
   (``adopt_checkpoint``: model, optimiser slots, step, frames), and restarting a member from it:
   from launching ``s3ta train`` on the adopted root to the learner's first update after the
   restore (processes, TensorFlow import, replay server, tracing). Every segment boundary of a
   member costs this restart, exploit or not.

The matmul peak (GFLOP/s, float32) and the CPU flags are measured and recorded in the same run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from s3ta_tf.atomic_io import read_json_or_none

ENV = "MiniGrid-Empty-5x5-v0"
RUN_ARGS = ["--env", ENV, "--preset", "small", "--agent", "attention",
            "--set", "model.observation_shape=40,40,3"]


def _project_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(args, log_path: str, wait: bool = True):
    env = dict(os.environ, PYTHONPATH=_project_root(), TF_CPP_MIN_LOG_LEVEL="3")
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=_project_root(), env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    if not wait:
        return proc, log
    code = proc.wait()
    log.close()
    if code != 0:
        raise RuntimeError(f"s3ta {args[0]} exited with code {code}; log: {log_path}")
    return code


def timed_run(root: str, frames: int) -> dict:
    start = time.time()
    _cli(["train", *RUN_ARGS, "--root-dir", root, "--max-frames", str(frames), "--actors", "1"],
         os.path.join(os.path.dirname(root), "single.log"))
    seconds = time.time() - start
    done = (read_json_or_none(os.path.join(root, "learner.json")) or {}).get("frames", frames)
    return {"frames": int(done), "seconds": seconds, "frames_per_second": done / seconds}


def timed_population(root: str, frames_per_member: int) -> dict:
    start = time.time()
    _cli(["pbt", *RUN_ARGS, "--pbt-preset", "small", "--root-dir", root,
          "--max-frames", str(frames_per_member)], os.path.join(os.path.dirname(root), "pbt.log"))
    seconds = time.time() - start
    lineage = read_json_or_none(os.path.join(root, "lineage.json")) or {"members": {}, "exploits": []}
    total = sum(m["frames"] for m in lineage["members"].values())
    return {"members": len(lineage["members"]), "frames": int(total), "seconds": seconds,
            "frames_per_second": total / seconds, "exploits": len(lineage["exploits"]),
            "segments": sum(len(m["segments"]) for m in lineage["members"].values())}


def exploit_overhead(donor_root: str, work: str, extra_frames: int = 2_000) -> dict:
    """Seconds to adopt ``donor_root``'s checkpoint and to restart a member from it."""
    from pipelines.pbt.member import adopt_checkpoint

    loser = os.path.join(work, "loser")
    start = time.perf_counter()
    adopt_checkpoint(donor_root, loser)
    copy_seconds = time.perf_counter() - start
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(loser, "checkpoints"))
               for f in fs)
    restored = read_json_or_none(os.path.join(donor_root, "learner.json")) or {}
    step0, frames0 = int(restored.get("train_step", 0)), int(restored.get("frames", 0))
    start = time.time()
    proc, log = _cli(["train", *RUN_ARGS, "--root-dir", loser, "--max-frames", str(frames0 + extra_frames),
                      "--actors", "1"], os.path.join(work, "restart.log"), wait=False)
    first_update = None
    try:
        while proc.poll() is None and first_update is None:
            progress = read_json_or_none(os.path.join(loser, "learner.json")) or {}
            if int(progress.get("train_step", 0)) > step0:
                first_update = time.time() - start
            time.sleep(0.2)
        proc.wait(600)
    finally:
        log.close()
    return {"checkpoint_bytes": size, "copy_seconds": copy_seconds,
            "restart_to_first_update_seconds": first_update, "restored_frames": frames0}


def run_pbt_benchmark(out_path=None, args=None) -> dict:
    import tensorflow as tf
    from pipelines.bench_common import matmul_peak_gflops
    from s3ta_tf.precision import cpu_summary

    quick = bool(getattr(args, "quick", False))
    per_member = 8_000 if quick else 16_000
    peak = matmul_peak_gflops(tf.float32, seconds=2.0 if quick else 5.0)
    work = tempfile.mkdtemp(prefix="s3ta-bench-pbt-")
    try:
        single = timed_run(os.path.join(work, "single"), 2 * per_member)
        population = timed_population(os.path.join(work, "pbt"), per_member)
        overhead = exploit_overhead(os.path.join(work, "single"), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "benchmark": "pbt", "env": ENV, "model": "small attention agent, 40x40 observations (the demo)",
        "cpu_flags": cpu_summary(), "cpu_count": os.cpu_count(), "peak_gflops_float32": peak,
        "frames_per_member": per_member, "single_run": single, "population_of_2": population,
        "population_to_single_throughput": population["frames_per_second"] / single["frames_per_second"],
        "exploit": overhead,
        "note": "frames/s include process start-up; each segment boundary of a member restarts "
                "'s3ta train' (pbt small preset: 4,000-frame segments), which is the main cost of "
                "the population here; on a cluster members run on separate hosts",
    }
