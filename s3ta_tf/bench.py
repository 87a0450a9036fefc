"""``s3ta bench model``: actor-step latency, learner throughput and GFLOP/s vs the measured peak.

All figures come from one run, so ratios (achieved / peak, bf16 / f32) are meaningful on a
shared, noisy machine even when absolute numbers drift.
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np
import tensorflow as tf

from s3ta_tf.config import agent_config
from s3ta_tf.flops import agent_step_flops


def _timeit(fn, min_seconds: float, min_reps: int = 3) -> float:
    """Median seconds per call of ``fn`` over repeated calls (after one warm-up call)."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def matmul_peak_gflops(dtype=tf.bfloat16, n: int = 2048, seconds: float = 2.0) -> float:
    """Measured GFLOP/s of a square matmul chain in ``dtype`` (the machine's practical peak)."""
    a = tf.random.normal([n, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.random.normal([n, n]), dtype)

    @tf.function
    def chain():
        x = a
        for _ in range(4):
            x = tf.matmul(x, b) * tf.cast(1e-2, dtype)
        return tf.reduce_sum(tf.cast(x[:1, :1], tf.float32))

    sec = _timeit(lambda: chain().numpy(), seconds)
    return 4 * 2 * n ** 3 / sec / 1e9


def actor_step_fn(model):
    return tf.function(lambda o, a, r, s: model.step(o, a, r, s))


def learner_step_fn(model, optimizer, batch: int, unroll: int):
    """A learner update on synthetic data: unroll + an actor-critic style loss + RMSProp."""
    cfg = model.config
    obs = tf.random.uniform((batch, unroll) + tuple(cfg.observation_shape), 0, 255, tf.int32)
    obs = tf.cast(obs, tf.uint8)
    actions = tf.random.uniform((batch, unroll), 0, model.num_actions, tf.int32)
    rewards = tf.random.normal((batch, unroll))
    firsts = tf.zeros((batch, unroll), tf.bool)
    state = model.initial_state(batch)

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            out, _ = model.unroll(obs, actions, rewards, firsts, state)
            logp = tf.nn.log_softmax(out["logits"])
            pg = -tf.reduce_mean(tf.reduce_sum(tf.one_hot(actions, model.num_actions) * logp, -1) * rewards)
            entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(logp) * logp, -1))
            loss = pg + 0.5 * tf.reduce_mean(tf.square(out["value"] - rewards)) - 0.01 * entropy
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 1280.0)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return train


def run_model_benchmark(out_path=None, args=None) -> dict:
    from s3ta_tf import build_agent
    preset = getattr(args, "preset", "paper")
    variant = getattr(args, "agent", "attention")
    quick = bool(getattr(args, "quick", False))
    secs = 1.0 if quick else 4.0
    batch, unroll, num_actions = 32, 50, 18
    result = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "tensorflow": tf.__version__},
              "preset": preset, "variant": variant, "num_actions": num_actions}
    print("measuring matmul peak ...", flush=True)
    result["peak_gflops"] = {"bfloat16": matmul_peak_gflops(tf.bfloat16, seconds=secs),
                             "float32": matmul_peak_gflops(tf.float32, seconds=secs)}
    flops = agent_step_flops(agent_config(preset), variant, num_actions)["total"]
    result["gflop_per_agent_step"] = flops / 1e9
    for precision in ("float32", "bfloat16"):
        model = build_agent(agent_config(preset, [f"precision={precision}"]), variant, num_actions)
        step = actor_step_fn(model)
        entry = {}
        for b in (1, 16):
            o = tf.zeros((b,) + tuple(model.config.observation_shape), tf.uint8)
            a, r, s = tf.zeros([b], tf.int32), tf.zeros([b]), model.initial_state(b)
            sec = _timeit(lambda: tf.nest.map_structure(lambda t: t.numpy(), step(o, a, r, s)), secs, 5)
            entry[f"actor_batch{b}"] = {"ms_per_call": sec * 1e3, "agent_steps_per_s": b / sec,
                                        "gflops": b * flops / sec / 1e9}
            print(f"{precision} actor batch {b}: {sec * 1e3:.1f} ms/call, {b / sec:.0f} steps/s", flush=True)
        print(f"{precision} learner: tracing unroll {unroll} x batch {batch} ...", flush=True)
        opt = tf.keras.optimizers.RMSprop(2e-4, rho=0.99, epsilon=0.01, momentum=0.0)
        train = learner_step_fn(model, opt, batch, unroll)
        t0 = time.perf_counter()
        train().numpy()
        entry["learner_first_call_s"] = time.perf_counter() - t0
        sec = _timeit(lambda: train().numpy(), 3 * secs, 2 if quick else 3)
        samples = batch * unroll / sec
        entry["learner"] = {"s_per_update": sec, "samples_per_s": samples,
                            "gflops": 3 * flops * samples / 1e9,
                            "fraction_of_peak": 3 * flops * samples / 1e9 / result["peak_gflops"][precision]}
        print(f"{precision} learner: {samples:.0f} samples/s "
              f"({entry['learner']['gflops']:.0f} GFLOP/s)", flush=True)
        result[precision] = entry
    result["bf16_over_f32_learner"] = (result["bfloat16"]["learner"]["samples_per_s"]
                                       / result["float32"]["learner"]["samples_per_s"])
    result["targets"] = {"learner_bf16_samples_per_s": 250, "actor_batch16_steps_per_s": 500}
    return result
