"""``s3ta bench classify``: ImageNet S3TA (ResNet-50 v2 core) training throughput.

Images/s of a full training step (forward T steps, backward, SGD momentum, weight decay) at
T = 1, 4, 8 in float32 and bfloat16 (mixed), with GFLOP/s against the matmul peak measured
in the same run. FLOPs come from TensorFlow's profiler on the traced forward graph (one
image), ×3 for forward + backward. The image features are computed once per image (the core
has no recurrence), so T adds only the attention, query and policy MLPs.
"""
from __future__ import annotations

import os
import platform
import time

import tensorflow as tf

from pipelines.classify.train import make_optimizer, make_train_step
from pipelines.bench_common import median_seconds, matmul_peak_gflops
from pipelines.classify.config import classify_config
from s3ta_tf.models.classifier import build_classifier


def forward_flops(model, seq_len: int) -> float:
    """FLOPs of one forward pass on one image, counted by the TF profiler on the graph."""
    s = model.image_size
    fn = tf.function(lambda x: model(x, seq_len=seq_len, training=False)["logits"])
    graph = fn.get_concrete_function(tf.TensorSpec([1, s, s, 3], tf.float32)).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph=graph, options=opts).total_float_ops)


def run_classify_benchmark(out_path=None, args=None, batch_size: int = None,
                           seq_lens=(1, 4, 8), precisions=("float32", "bfloat16"),
                           preset: str = "imagenet", num_classes: int = 1000) -> dict:
    quick = bool(getattr(args, "quick", False))
    secs = 2.0 if quick else 6.0
    batch = batch_size or (8 if quick else 32)
    result = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "tensorflow": tf.__version__},
              "preset": preset, "batch_size": batch, "num_classes": num_classes}
    print("measuring matmul peak ...", flush=True)
    result["peak_gflops"] = {"bfloat16": matmul_peak_gflops(tf.bfloat16, seconds=secs / 2),
                             "float32": matmul_peak_gflops(tf.float32, seconds=secs / 2)}
    for precision in precisions:
        cfg = classify_config(preset, [f"model.precision={precision}"])
        s = cfg.data.image_size
        model = build_classifier(cfg.model, num_classes, s, variant="s3ta")
        opt = make_optimizer(cfg.train, max(seq_lens))
        step = make_train_step(model, opt, cfg.train.weight_decay)
        x = tf.random.uniform([batch, s, s, 3])
        y = tf.random.uniform([batch], 0, num_classes, tf.int32)
        entry = {}
        for t in seq_lens:
            flops = forward_flops(model, t)
            t0 = time.perf_counter()
            step(x, y, t)["loss"].numpy()
            first = time.perf_counter() - t0
            sec = median_seconds(lambda: step(x, y, t)["loss"].numpy(), secs, 2)
            gflops = 3 * flops * batch / sec / 1e9
            entry[f"T{t}"] = {"images_per_s": batch / sec, "s_per_step": sec,
                              "first_call_s": first, "gflop_per_image_forward": flops / 1e9,
                              "train_gflops": gflops,
                              "fraction_of_peak": gflops / result["peak_gflops"][precision]}
            print(f"{precision} T={t}: {batch / sec:.1f} images/s, {gflops:.0f} GFLOP/s "
                  f"({entry[f'T{t}']['fraction_of_peak']:.0%} of peak)", flush=True)
        result[precision] = entry
    if set(precisions) >= {"float32", "bfloat16"}:
        result["bf16_over_f32"] = {f"T{t}": result["bfloat16"][f"T{t}"]["images_per_s"]
                                   / result["float32"][f"T{t}"]["images_per_s"]
                                   for t in seq_lens}
    return result
