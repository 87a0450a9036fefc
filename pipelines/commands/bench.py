"""``s3ta bench``: benchmarks writing JSON under bench/results/ (see each target's --help)."""
from __future__ import annotations

import importlib
import json
import os
import time

from pipelines.commands.flags import RUN_PRESETS, add_agent, add_precision, add_preset, check_output_dir

# target -> (module, function(out_path, args) -> dict, help)
TARGETS = {
    "model": ("pipelines.model_bench", "run_model_benchmark",
              "actor-step latency (batch 1, 16) and learner samples/s (unroll 50 x batch 32, "
              "forward+backward+RMSProp) in float32 and bfloat16, GFLOP/s against the measured peak"),
    "analysis": ("pipelines.analysis.bench", "run_analysis_benchmark",
                 "seconds per analysed frame: overlays (panels + MP4/GIF) and Greydanus saliency at stride 5 "
                 "on 210x160 frames, batched, attention agent and feed-forward baseline"),
    "classify": ("pipelines.classify.bench", "run_classify_benchmark",
                 "ImageNet S3TA (ResNet-50 v2) training images/s at T=1,4,8, float32/bfloat16 vs measured peak"),
    "e2e": ("pipelines.e2e_bench", "run_e2e_benchmark",
            "end-to-end frames/s of 's3ta train' (atari-cpu attention agent on Pong) next to raw ALE frames/s "
            "and the compute bound (measured peak GFLOP/s over GFLOP per agent step, actor plus learner)"),
    "pbt": ("pipelines.pbt.bench", "run_pbt_benchmark",
            "population-based training: frames/s of a population of 2 against one run of the same total "
            "frames, and an exploit's overhead (checkpoint copy, restart to the first update) in seconds"),
}


def register(sub):
    p = sub.add_parser("bench", help="run a benchmark and write JSON under bench/results/",
                       description="Benchmarks. Results are printed and written as JSON to "
                                   "--out-dir/<target>-<timestamp>.json and <target>-latest.json. "
                                   "Targets: " + "; ".join(f"'{k}': {v[2]}" for k, v in TARGETS.items()))
    p.add_argument("target", choices=sorted(TARGETS), help="what to benchmark")
    p.add_argument("--out-dir", default="bench/results", help="where the JSON goes (default: bench/results)")
    add_preset(p, None, "model preset (default: paper for 'model', atari-cpu for 'e2e')")
    add_agent(p)
    add_precision(p, extra=". For 'e2e' (default auto); 'model' measures float32, and bfloat16 where "
                           "the CPU has it natively (else records why not)")
    p.add_argument("--compare-preset", action="append", default=[], metavar="PRESET", choices=RUN_PRESETS,
                   help="'e2e' only: also measure this preset in the same run, beside --preset (same raw ALE "
                        "rate and matmul peak; repeatable), e.g. --preset atari-cpu-fine --compare-preset atari-cpu")
    p.add_argument("--compare-set", action="append", default=[], metavar="'KEY=VALUE ...'",
                   help="'e2e' only: also measure every preset with these overrides (the --set grammar; several "
                        "separated by spaces make one configuration; repeatable), for a before/after in one run, "
                        "e.g. --compare-set train.actor_engine=python")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="'e2e' only: also measure the same run (same actors, same seconds) with 's3ta train --ray', "
                        "right after the local launcher: on the Ray cluster at ADDRESS, or with no address on a "
                        "one-node Ray cluster started on this machine for it; reports the Ray launcher's frames/s "
                        "and its overhead (docs/DISTRIBUTED.md)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, noisier numbers)")
    p.set_defaults(func=run)


def run(args) -> int:
    module, fn, _ = TARGETS[args.target]
    check_output_dir("--out-dir", args.out_dir)
    os.makedirs(args.out_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = os.path.join(args.out_dir, f"{args.target}-{stamp}.json")
    result = getattr(importlib.import_module(module), fn)(out_path, args)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(args.out_dir, f"{args.target}-latest.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    print(f"wrote {out_path}")
    return 0
