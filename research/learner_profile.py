"""Where does the compiled learner update spend its time, and does XLA help at these sizes?

Runs the real update (``VTraceAgent.compiled_train`` on a synthetic batch, as ``s3ta bench model``
does) of a preset, then:

- ``profile``: records ``--reps`` updates with ``tf.profiler`` and prints the op time per update
  by op type (summed over TensorFlow's compute threads, the thread pool's wrapper events left
  out), the number of ops per update, and the wall time per update;
- ``xla``: the actor step at batch 16 and the learner update without and with
  ``jit_compile=True`` (first call = tracing and compiling, then the median);
- ``layernorm``: the update with the ConvLSTM's layer norms (presets with
  ``convlstm_layer_norm``) on Keras's own path (moments and batch-norm arithmetic, a dozen small
  ops per norm; Keras takes it because the epsilon 1e-5 is below fused batch norm's floor) and
  forced onto Keras's fused path (one ``FusedBatchNormV3`` in NCHW), alternated twice.

oneDNN is on (as ``s3ta`` sets it). Issue 22, docs/PERFORMANCE.md. Example:

    python research/learner_profile.py --preset atari-cpu-fine --batch 8 --unroll 20 --mode profile
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from pipelines.bench_common import matmul_peak_gflops, median_seconds  # noqa: E402
from pipelines.model_bench import actor_step_fn, learner_step_fn  # noqa: E402
from s3ta_tf import build_agent_net  # noqa: E402
from s3ta_tf.config import agent_config  # noqa: E402

WRAPPERS = ("Process", "ParallelFor")     # thread-pool events that contain the ops


def learner(preset: str, batch: int, unroll: int, jit: bool = False):
    """``(update, model)``: one compiled learner update of ``preset`` on a synthetic batch
    (``s3ta bench model``'s :func:`pipelines.model_bench.learner_step_fn`)."""
    model = build_agent_net(agent_config(preset, ["precision=float32"]), "attention", 6)
    train = learner_step_fn(model, batch, unroll, preset=preset, jit_compile=jit)
    return (lambda: train().numpy()), model


def op_times(logdir: str) -> tuple[collections.Counter, collections.Counter]:
    """``(milliseconds, counts)`` per op type from the xplane ``tf.profiler`` wrote to ``logdir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    ms, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if "tf_Compute" not in line.name and "Eigen" not in line.name:
                continue
            for event in line.events:
                op = names.get(event.metadata_id, "?").split(":")[-1]
                if op not in WRAPPERS:
                    ms[op] += event.duration_ps / 1e9
                    counts[op] += 1
    return ms, counts


def profile(preset: str, batch: int, unroll: int, reps: int, top: int) -> dict:
    update, _ = learner(preset, batch, unroll)
    for _ in range(3):
        update()
    with tempfile.TemporaryDirectory() as logdir:
        start = time.perf_counter()
        tf.profiler.experimental.start(logdir)
        for _ in range(reps):
            update()
        tf.profiler.experimental.stop()
        wall = (time.perf_counter() - start) / reps
        ms, counts = op_times(logdir)
    total = sum(ms.values())
    result = {"wall_ms_per_update": wall * 1e3, "op_ms_per_update": total / reps,
              "ops_per_update": sum(counts.values()) // reps,
              "top": [{"op": op, "ms_per_update": t / reps, "share": t / total, "count": counts[op] // reps}
                      for op, t in ms.most_common(top)]}
    print(f"{preset} batch {batch} x unroll {unroll}: {result['wall_ms_per_update']:.0f} ms/update (profiled), "
          f"op time {result['op_ms_per_update']:.0f} ms summed over threads, {result['ops_per_update']} ops")
    for row in result["top"]:
        print(f"  {row['op']:40s} {row['ms_per_update']:8.1f} ms  {row['share']:5.1%}  x{row['count']}")
    return result


def xla(preset: str, batch: int, unroll: int, seconds: float = 4.0) -> dict:
    result = {}
    for jit in (False, True):
        update, model = learner(preset, batch, unroll, jit)
        step = actor_step_fn(model, jit_compile=jit)
        o = tf.zeros((16,) + tuple(model.config.observation_shape), tf.uint8)
        a, r, s = tf.zeros([16], tf.int32), tf.zeros([16]), model.initial_state(16)
        actor = median_seconds(lambda: tf.nest.map_structure(lambda t: t.numpy(), step(o, a, r, s)), seconds / 2, 5)
        start = time.perf_counter()
        update()
        first = time.perf_counter() - start
        sec = median_seconds(update, seconds, 5)
        key = "xla" if jit else "graph"
        result[key] = {"actor_batch16_ms": actor * 1e3, "learner_ms_per_update": sec * 1e3,
                       "learner_samples_per_s": batch * unroll / sec, "learner_first_call_s": first}
        print(f"{preset} {key}: actor batch 16 {actor * 1e3:.2f} ms; learner {sec * 1e3:.1f} ms/update "
              f"({batch * unroll / sec:.0f} samples/s; first call {first:.1f} s)")
    return result


def layernorm(preset: str, batch: int, unroll: int, seconds: float = 4.0) -> dict:
    from keras.src.layers.normalization import layer_normalization
    cls = layer_normalization.LayerNormalization
    keras_choice = cls._fused_can_be_used
    result = {"unfused_ms_per_update": [], "fused_ms_per_update": []}
    try:
        for fused in (False, True, False, True):
            cls._fused_can_be_used = (lambda self, ndims: True) if fused else keras_choice
            update, _ = learner(preset, batch, unroll)
            sec = median_seconds(update, seconds, 5)
            result["fused_ms_per_update" if fused else "unfused_ms_per_update"].append(sec * 1e3)
            print(f"{preset} layer norm {'fused' if fused else 'unfused (as trained)'}: {sec * 1e3:.1f} ms/update")
    finally:
        cls._fused_can_be_used = keras_choice
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="atari-cpu", help="agent and training preset (default atari-cpu)")
    parser.add_argument("--batch", type=int, default=8, help="trajectories per update (atari-cpu: 8)")
    parser.add_argument("--unroll", type=int, default=20, help="steps per trajectory (atari-cpu: 20)")
    parser.add_argument("--mode", choices=("profile", "xla", "layernorm", "both"), default="both",
                        help="what to measure (both = profile and xla)")
    parser.add_argument("--reps", type=int, default=5, help="profiled updates (profile)")
    parser.add_argument("--top", type=int, default=20, help="op types printed (profile)")
    parser.add_argument("--seconds", type=float, default=4.0, help="least seconds timed per figure (xla, layernorm)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    from s3ta_tf.precision import cpu_summary
    result = {"preset": args.preset, "batch": args.batch, "unroll": args.unroll, "cpu_flags": cpu_summary(),
              "matmul_peak_gflops": matmul_peak_gflops(tf.float32, seconds=1.0)}
    print(f"matmul peak {result['matmul_peak_gflops']:.0f} GFLOP/s; CPU {result['cpu_flags']}")
    if args.mode in ("profile", "both"):
        result["profile"] = profile(args.preset, args.batch, args.unroll, args.reps, args.top)
    if args.mode in ("xla", "both"):
        result["xla"] = xla(args.preset, args.batch, args.unroll, args.seconds)
    if args.mode == "layernorm":
        result["layernorm"] = layernorm(args.preset, args.batch, args.unroll, args.seconds)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
