"""Shared benchmark tools: robust timing and the machine's measured matmul peak.

Every benchmark measures the peak in its own run so that "fraction of peak" ratios stay
meaningful on a shared, noisy machine.
"""
from __future__ import annotations

import time

import numpy as np
import tensorflow as tf


def median_seconds(fn, min_seconds: float, min_reps: int = 3) -> float:
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

    sec = median_seconds(lambda: chain().numpy(), seconds)
    return 4 * 2 * n ** 3 / sec / 1e9
