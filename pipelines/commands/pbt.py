"""``s3ta pbt``: population-based training of the V-trace agent on Ray Tune."""
from __future__ import annotations

import argparse
import json

from pipelines.commands.flags import (RUN_SECTIONS, add_max_frames, add_root_dir, add_run_args, check_at_least,
                                      check_output_dir, run_spec_from_args, run_overrides)
from pipelines.pbt.config import PBT_PRESETS, PBTConfig
from s3ta_tf.config.overrides import join_sections, split_sections


def register(sub):
    p = sub.add_parser(
        "pbt", help="population-based training: a population of runs evolved by Ray Tune",
        description="Trains --population members, each a full 's3ta train' run (its own replay server on a "
                    "free port, learner and actors) in segments of pbt interval_frames. After the burn-in "
                    "(ready_frames) Ray Tune's PopulationBasedTraining lets the bottom quantile copy a top "
                    "member's checkpoint (model and optimiser state) and perturb its learning rate, entropy "
                    "cost, optimiser epsilon and gradient clip (x1.2 / x0.8 or resampled, within bounds). "
                    "Fitness: the capped mean human-normalised return (mean return for non-Atari ids). "
                    "Writes ROOT/lineage.json and ROOT/hyperparameters.png. --set also takes the section "
                    "pbt (PBTConfig, pipelines/pbt/config.py), e.g. --set pbt.interval_frames=100000. "
                    "Example (this machine): "
                    "s3ta pbt --pbt-preset small --env MiniGrid-Empty-5x5-v0 --preset small "
                    "--set model.observation_shape=24,24,3 --max-frames 12000 --root-dir runs/pbt",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_run_args(p)
    add_root_dir(p, required=True, help="the population's directory")
    add_max_frames(p, "emulator frames per member", required=True)
    p.add_argument("--pbt-preset", default="paper", choices=sorted(PBT_PRESETS),
                   help="population size, segment length, burn-in ('paper': 16 members, 2M-frame segments, "
                        "evolution after 20M frames; 'small': 2 members, 4k-frame segments)")
    p.add_argument("--population", type=int, default=None, help="members (default: the PBT preset's)")
    p.add_argument("--address", default=None,
                   help="a Ray cluster's address (ray start --head prints it); default: a local Ray")
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.pbt.config import pbt_config
    from pipelines.pbt.run import run_pbt
    from pipelines.rl.ray_placement import require_ray

    check_at_least(("--population", args.population, 1), ("--max-frames", args.max_frames, 1))
    check_output_dir("--root-dir", args.root_dir)
    require_ray("s3ta pbt")
    grouped = split_sections({**RUN_SECTIONS, "pbt": PBTConfig}, args.overrides)
    population = [f"population={args.population}"] if args.population is not None else []
    overrides = grouped.pop("pbt") + population
    args.overrides = join_sections(grouped)
    pbt = pbt_config(args.pbt_preset, overrides)
    spec = run_spec_from_args(args)
    summary = run_pbt(spec, pbt, args.root_dir, args.max_frames, run_overrides(args), address=args.address)
    print(json.dumps({m: {k: v for k, v in d.items() if k != "segments"} for m, d in summary["members"].items()},
                     indent=2))
    print(f"{len(summary['exploits'])} exploit(s); lineage: {args.root_dir}/lineage.json")
    return exit_status(summary)


def exit_status(summary: dict) -> int:
    """0 when every member of the lineage summary finished, 1 when any ended with an error."""
    return 0 if all(m["status"] == "finished" for m in summary["members"].values()) else 1
