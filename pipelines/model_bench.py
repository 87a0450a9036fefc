"""``s3ta bench model``: actor-step latency, learner throughput and GFLOP/s vs the measured peak.

The learner figure is the project's real update (``agents.impala.learning.VTraceAgent.train``)
on a synthetic batch, so it includes V-trace, clipping and RMSProp.

All figures come from one run, so ratios (achieved / peak, bf16 / f32) are meaningful on a
shared, noisy machine even when absolute numbers drift.
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np
import tensorflow as tf

from pipelines.bench_common import median_seconds, matmul_peak_gflops
from s3ta_tf.config import agent_config
from s3ta_tf.flops import agent_step_flops


def actor_step_fn(model, jit_compile: bool = False):
    return tf.function(lambda o, a, r, s: model.step(o, a, r, s), jit_compile=jit_compile)


def synthetic_experience(network, batch: int, sequence_length: int, seed: int = 0):
    """An :class:`agents.impala.learning.Experience` ``[batch, sequence_length, ...]`` of random
    frames and actions laid out as the actors write it (one episode start per trajectory)."""
    from agents.impala.replay import experience_spec
    from tf_agents.trajectories import time_step as ts
    rng = np.random.default_rng(seed)
    spec = experience_spec(network)
    lead = (batch, sequence_length)
    step_type = np.full(lead, int(ts.StepType.MID), np.int32)
    step_type[:, 0] = int(ts.StepType.FIRST)
    fields = dict(
        step_type=step_type,
        observation=rng.integers(0, 256, lead + tuple(spec.observation.shape.as_list()), dtype=np.uint8),
        prev_action=rng.integers(0, network.num_actions, lead).astype(np.int32),
        prev_reward=rng.normal(size=lead).astype(np.float32),
        action=rng.integers(0, network.num_actions, lead).astype(np.int32),
        behaviour_logits=rng.normal(size=lead + (network.num_actions,)).astype(np.float32),
        reward=rng.normal(size=lead).astype(np.float32),
        discount=np.ones(lead, np.float32),
        policy_version=np.zeros(lead, np.int64),
        episode_return=np.zeros(lead, np.float32),
        frames=np.full(lead, 4, np.int32),
        level=np.zeros(lead, np.int32),
    )
    fields = {k: tf.constant(v) for k, v in fields.items()}
    return type(spec)(initial_state=network.model.initial_state(batch), **fields)


def learner_step_fn(model, batch: int, unroll: int, compiled: bool = True, preset: str = "paper",
                    jit_compile: bool = False):
    """The real learner update: ``VTraceAgent.train`` (unroll from the stored state, V-trace
    loss, gradient clipping, RMSProp) on a synthetic batch of ``unroll + 1``-step trajectories,
    called as the learner calls it (``compiled``: ``VTraceAgent.compiled_train``, one traced
    graph; ``jit_compile``: with XLA) or eagerly (the learner before the compiled step). The
    training settings other than batch and unroll are ``preset``'s."""
    from agents.impala.networks import ActorCriticNetwork
    from agents.impala.learning import VTraceAgent
    from agents.impala.config import train_config
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import time_step as ts
    network = ActorCriticNetwork(model)
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int32, 0, model.num_actions - 1)
    cfg = train_config(preset, {"batch_size": batch, "unroll_length": unroll})
    agent = VTraceAgent(ts.time_step_spec(network.input_tensor_spec["observation"]), action_spec, network, cfg)
    experience = synthetic_experience(network, batch, unroll + 1)
    train = agent.compiled_train(batch, jit_compile=jit_compile) if compiled else agent.train
    return lambda: train(experience).loss


def measure_model(model, precision: str, flops: float, batch: int, unroll: int, secs: float,
                  quick: bool) -> dict:
    """The actor step at batch 1 and 16 and the learner update (compiled and eager) of
    ``model``: times, rates and GFLOP/s (``flops`` per agent step)."""
    step = actor_step_fn(model)
    entry = {}
    for b in (1, 16):
        o = tf.zeros((b,) + tuple(model.config.observation_shape), tf.uint8)
        a, r, s = tf.zeros([b], tf.int32), tf.zeros([b]), model.initial_state(b)
        sec = median_seconds(lambda: tf.nest.map_structure(lambda t: t.numpy(), step(o, a, r, s)), secs, 5)
        entry[f"actor_batch{b}"] = {"ms_per_call": sec * 1e3, "agent_steps_per_s": b / sec,
                                    "gflops": b * flops / sec / 1e9}
        print(f"{precision} actor batch {b}: {sec * 1e3:.1f} ms/call, {b / sec:.0f} steps/s", flush=True)
    for mode in ("compiled", "eager"):
        print(f"{precision} learner ({mode}): unroll {unroll} x batch {batch} ...", flush=True)
        train = learner_step_fn(model, batch, unroll, compiled=(mode == "compiled"))
        t0 = time.perf_counter()
        train().numpy()
        first = time.perf_counter() - t0
        sec = median_seconds(lambda: train().numpy(), 3 * secs, 2 if (quick or mode == "eager") else 3)
        samples = batch * unroll / sec
        key = "learner" if mode == "compiled" else "learner_eager"
        entry[key] = {"s_per_update": sec, "samples_per_s": samples, "first_call_s": first,
                      "gflops": 3 * flops * samples / 1e9}
        print(f"{precision} learner ({mode}): {samples:.0f} samples/s "
              f"({entry[key]['gflops']:.0f} GFLOP/s)", flush=True)
    entry["compiled_over_eager"] = entry["learner"]["samples_per_s"] / entry["learner_eager"]["samples_per_s"]
    return entry


def run_model_benchmark(out_path=None, args=None) -> dict:
    from s3ta_tf import build_agent_net
    from s3ta_tf.precision import cpu_summary, native_bfloat16
    preset = getattr(args, "preset", None) or "paper"
    variant = getattr(args, "agent", "attention")
    quick = bool(getattr(args, "quick", False))
    secs = 1.0 if quick else 4.0
    batch, unroll, num_actions = 32, 50, 18
    native, why = native_bfloat16()
    precisions = ["float32"] + (["bfloat16"] if native else [])
    result = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "tensorflow": tf.__version__, "cpu_flags": cpu_summary()},
              "preset": preset, "variant": variant, "num_actions": num_actions,
              "batch": batch, "unroll": unroll, "precisions_measured": precisions}
    if not native:
        result["bfloat16_skipped"] = why
        print(f"bfloat16 not measured: {why}", flush=True)
    print("measuring matmul peak ...", flush=True)
    result["peak_gflops"] = {p: matmul_peak_gflops(tf.as_dtype(p), seconds=secs) for p in precisions}
    flops = agent_step_flops(agent_config(preset), variant, num_actions)["total"]
    result["gflop_per_agent_step"] = flops / 1e9
    for precision in precisions:
        model = build_agent_net(agent_config(preset, [f"precision={precision}"]), variant, num_actions)
        result[precision] = measure_model(model, precision, flops, batch, unroll, secs, quick)
    # The machine is shared: measure the peak again at the end and use the higher reading, so a
    # busy moment during the first reading cannot inflate the fractions of peak.
    end_peak = {p: matmul_peak_gflops(tf.as_dtype(p), seconds=secs) for p in precisions}
    result["peak_gflops_readings"] = {"start": result["peak_gflops"], "end": end_peak}
    result["peak_gflops"] = {k: max(v, end_peak[k]) for k, v in result["peak_gflops"].items()}
    for precision in precisions:
        for entry in result[precision].values():
            if isinstance(entry, dict) and "gflops" in entry:
                entry["fraction_of_peak"] = entry["gflops"] / result["peak_gflops"][precision]
    if "bfloat16" in precisions:
        result["bf16_over_f32_learner"] = (result["bfloat16"]["learner"]["samples_per_s"]
                                           / result["float32"]["learner"]["samples_per_s"])
    result["targets"] = {"compiled_learner_fraction_of_f32_peak": {"paper": 0.85, "small": 0.60}}
    return result
