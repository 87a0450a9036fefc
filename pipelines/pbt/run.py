"""``s3ta pbt``: a population of training runs evolved by Ray Tune's PopulationBasedTraining.

Outputs in ``root_dir``::

    members/<id>/            each member's run root (run.json, checkpoints, summaries, logs) and
                             member.json (its segments: frames, fitness, hyperparameters)
    lineage.jsonl            one line per exploit, written as it happens
    lineage.json             every member: final fitness and frames, status, its segments and the
                             exploits (which member it copied, at which frames, hyperparameters
                             before and after)
    hyperparameters.png/.svg the evolved hyperparameters of every member against frames
    ray/                     Ray Tune's own experiment directory
"""
from __future__ import annotations

import json
import os
from typing import Optional

from pipelines.pbt.config import HYPERPARAMETERS, MEMBER_OVERRIDES, PBTConfig, clip_to_bounds
from pipelines.pbt.member import LINEAGE_FILE, MEMBER_FILE, train_member
from s3ta_tf.atomic_io import read_json_or_none, write_json_atomic


def expert_values(spec) -> dict:
    t = spec.train
    return {"learning_rate": t.learning_rate, "entropy_cost": t.entropy_cost,
            "epsilon": t.adam_epsilon if t.optimizer == "adam" else t.rmsprop_epsilon,
            "gradient_clip": t.gradient_clip}


def member_run(spec, pbt: PBTConfig, root_dir: str, max_frames: int, overrides: list) -> dict:
    """What every member's segments share (``config["run"]`` of :func:`train_member`). A member
    gets at least one actor per level (actor i plays level i mod levels)."""
    forced = {o.split("=", 1)[0] for o in MEMBER_OVERRIDES}
    for o in overrides:
        if o.split("=", 1)[0] in forced and o.lower() not in MEMBER_OVERRIDES:
            from s3ta_tf.config.overrides import warn
            warn(f"{o} is replaced by {', '.join(MEMBER_OVERRIDES)} in every PBT member "
                 f"(PBT evolves the learning rate; see docs/PBT.md)")
    return {"pbt_root": root_dir, "env": spec.train.env_id, "preset": spec.preset, "agent": spec.variant,
            "overrides": [o for o in overrides if not o.startswith(("train.env_id=", "train.seed="))],
            "optimizer": spec.train.optimizer, "max_frames": int(max_frames), "seed": spec.train.seed,
            "interval_frames": pbt.interval_frames, "actors": max(pbt.actors_per_member, len(spec.levels)),
            "cwd": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))}


def run_pbt(spec, pbt: PBTConfig, root_dir: str, max_frames: int, overrides: list,
            address: Optional[str] = None, seed: int = 0) -> dict:
    """Runs the population to ``max_frames`` frames per member; returns the lineage summary."""
    import numpy as np
    import ray
    from ray import tune
    from pipelines.pbt.scheduler import PopulationBasedTrainingWithFailures

    root_dir = os.path.abspath(root_dir)
    os.makedirs(root_dir, exist_ok=True)
    expert = expert_values(spec)
    rng = np.random.default_rng(seed)
    # Member 0 starts from the expert values, the others near them (x0.5 .. x2, log-uniform).
    starts = [expert] + [clip_to_bounds({k: v * float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
                                         for k, v in expert.items()}) for _ in range(pbt.population - 1)]
    run = member_run(spec, pbt, root_dir, max_frames, overrides)
    scheduler = PopulationBasedTrainingWithFailures(
        time_attr="frames", metric="fitness", mode="max", perturbation_interval=pbt.interval_frames,
        burn_in_period=pbt.ready_frames,
        hyperparam_mutations={k: tune.loguniform(*bounds) for k, bounds in HYPERPARAMETERS.items()},
        quantile_fraction=pbt.quantile, resample_probability=pbt.resample_probability,
        perturbation_factors=tuple(pbt.perturbation_factors), custom_explore_fn=clip_to_bounds,
        synch=pbt.synchronous)
    if address:
        ray.init(address=address, log_to_driver=False)
    else:   # "local": a Ray of its own, even when a cluster started by `ray start` runs on this host
        ray.init(address="local", num_cpus=pbt.population, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(train_member, {"cpu": 1}),
            param_space={"run": run, "member_index": tune.grid_search(list(range(pbt.population))),
                         **{k: tune.sample_from(lambda config, k=k: starts[config["member_index"]][k])
                            for k in HYPERPARAMETERS}},
            tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1, reuse_actors=False),
            run_config=tune.RunConfig(name="pbt", storage_path=os.path.join(root_dir, "ray"), verbose=1,
                                      stop={"frames": int(max_frames)},
                                      failure_config=tune.FailureConfig(max_failures=0)))
        results = tuner.fit()
        status = {r.path: ("error: " + (str(r.error).strip().splitlines() or ["?"])[-1][:300]
                           if r.error else "finished") for r in results}
    finally:
        ray.shutdown()
    summary = write_lineage(root_dir, status)
    plot_hyperparameters(root_dir, summary)
    return summary


def write_lineage(root_dir: str, status: Optional[dict] = None) -> dict:
    """``lineage.json`` from the members' records and the exploit log."""
    events = []
    path = os.path.join(root_dir, LINEAGE_FILE)
    if os.path.exists(path):
        events = [json.loads(line) for line in open(path) if line.strip()]
    members = {}
    members_dir = os.path.join(root_dir, "members")
    for name in sorted(os.listdir(members_dir)) if os.path.isdir(members_dir) else []:
        record = read_json_or_none(os.path.join(members_dir, name, MEMBER_FILE)) or {"segments": []}
        last = record["segments"][-1] if record["segments"] else {}
        state = next((v for k, v in (status or {}).items() if name in os.path.basename(k)), "unknown")
        members[name] = {"status": state, "frames": last.get("frames", 0),
                         "fitness": last.get("fitness"), "hyperparameters": last.get("hyperparameters"),
                         "segments": record["segments"],
                         "exploits": [e for e in events if e["member"] == name]}
    summary = {"members": members, "exploits": events}
    write_json_atomic(os.path.join(root_dir, "lineage.json"), summary)
    return summary


def plot_hyperparameters(root_dir: str, summary: dict) -> None:
    """Each evolved hyperparameter of every member against frames (log scale), PNG and SVG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(HYPERPARAMETERS)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4 * (len(names) + 1), 3.4))
    for member, m in summary["members"].items():
        frames = [s["frames"] / 1e6 for s in m["segments"]]
        for ax, name in zip(axes, names):
            ax.step(frames, [s["hyperparameters"][name] for s in m["segments"]], where="post", label=member[-8:])
        axes[-1].plot(frames, [s["fitness"] for s in m["segments"]], marker="o", label=member[-8:])
    for ax, name in zip(axes, names):
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("frames (millions)")
    axes[-1].set_title("fitness")
    axes[-1].set_xlabel("frames (millions)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(root_dir, f"hyperparameters.{ext}"), dpi=110)
    plt.close(fig)
