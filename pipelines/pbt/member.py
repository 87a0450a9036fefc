"""One member of the population, as a Ray Tune function trainable: a full ``s3ta train`` run in
its own root directory (its own replay server on a free port, learner and actors), trained in
segments of ``interval_frames``. After each segment it reports its fitness and its checkpoint
(model, optimiser state, step and frame count). When PBT restarts it from another member's
checkpoint (exploit) it adopts that checkpoint, records the lineage, and trains on with its
new hyperparameters."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from pipelines.pbt.config import HYPERPARAMETERS, MEMBER_OVERRIDES, train_overrides
from pipelines.rl.learner_log import Progress, read_progress
from s3ta_tf.atomic_io import read_json_or_none, write_json_atomic
from s3ta_tf.run_record import RUN_FILE

MEMBER_FILE = "member.json"
LINEAGE_FILE = "lineage.jsonl"
NO_FITNESS = -1e9   # before the first finished episode


def fitness(progress: Progress, env_id: str) -> float:
    """The PBT fitness of a member's learner record (``learner.json``, :class:`Progress`): the
    capped mean human-normalised return of a multi-level Atari run, the capped
    human-normalised return of one Atari game, the plain mean return otherwise."""
    from pipelines.evaluation.scores import game_name, human_normalized

    if progress.capped_mean_hns is not None:
        return float(progress.capped_mean_hns)
    mean = progress.mean_return
    if mean is None:
        return NO_FITNESS
    game = game_name(env_id) if "," not in env_id else None
    return min(human_normalized(game, mean), 100.0) if game else float(mean)


def adopt_checkpoint(source: str, root: str) -> None:
    """Replaces ``root/checkpoints`` by a copy of ``source/checkpoints`` (the donor's model,
    optimiser slots, step and frames), its index rewritten to point at the copied files."""
    dst, tmp = os.path.join(root, "checkpoints"), os.path.join(root, "checkpoints.adopting")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(os.path.join(source, "checkpoints"), tmp)
    index = os.path.join(tmp, "checkpoint")
    if os.path.exists(index):
        lines = []
        for line in open(index).read().splitlines():
            key, _, value = line.partition(": ")
            if key.strip() in ("model_checkpoint_path", "all_model_checkpoint_paths"):
                line = f'{key}: "{os.path.basename(value.strip().strip(chr(34)))}"'
            lines.append(line)
        open(index, "w").write("\n".join(lines) + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    import tensorflow as tf
    if tf.train.latest_checkpoint(dst) is None:
        raise RuntimeError(f"adopting {source}: no readable checkpoint in {dst}")


def _record_lineage(pbt_root: str, event: dict) -> None:
    with open(os.path.join(pbt_root, LINEAGE_FILE), "a") as f:
        f.write(json.dumps(event) + "\n")


def member_overrides(run: dict, hyper: dict, member_index: int = 0) -> list:
    """A member's ``--set`` items: the population's overrides, its hyperparameters, its own
    ``train.seed`` (its own initial weights and environment seeds), then MEMBER_OVERRIDES
    (last, so they win: learning-rate annealing off)."""
    seed = [f"train.seed={run.get('seed', 0) + int(member_index)}"]
    return list(run["overrides"]) + train_overrides(hyper, run["optimizer"]) + seed + list(MEMBER_OVERRIDES)


def member_command(run: dict, hyper: dict, member_index: int, root: str, target_frames: int) -> list:
    """The ``s3ta train`` command line of one segment (up to ``target_frames``)."""
    sets = [a for s in member_overrides(run, hyper, member_index) for a in ("--set", s)]
    return [sys.executable, "-m", "pipelines.cli", "train", "--env", run["env"], "--preset", run["preset"],
            "--agent", run["agent"], "--root-dir", root, "--max-frames", str(target_frames),
            "--actors", str(run["actors"]), *sets]


def train_member(config: dict) -> None:
    from ray import tune

    run = config["run"]
    hyper = {k: float(config[k]) for k in HYPERPARAMETERS}
    trial = tune.get_context().get_trial_id()
    root = os.path.join(run["pbt_root"], "members", trial)
    os.makedirs(root, exist_ok=True)
    state = read_json_or_none(os.path.join(root, MEMBER_FILE)) or {"member": trial, "segments": []}
    state["forced_overrides"] = list(MEMBER_OVERRIDES)   # recorded: what every segment ran with
    frames = state["segments"][-1]["frames"] if state["segments"] else 0

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as donor:
            meta = json.load(open(os.path.join(donor, MEMBER_FILE)))
            adopt_checkpoint(donor, root)
        frames = meta["frames"]
        if meta["member"] != trial:   # exploit: a better member's state, then explore
            before = state["segments"][-1]["hyperparameters"] if state["segments"] else None
            _record_lineage(run["pbt_root"], {"member": trial, "copied": meta["member"], "at_frames": frames,
                                              "fitness_copied": meta["fitness"], "before": before,
                                              "after": hyper})

    log_path = os.path.join(root, "segments.log")
    while frames < run["max_frames"]:
        target = min(frames + run["interval_frames"], run["max_frames"])
        record = os.path.join(root, RUN_FILE)
        if os.path.exists(record):   # the hyperparameters may have changed since the last segment
            os.remove(record)
        cmd = member_command(run, hyper, int(config.get("member_index", 0)), root, target)
        with open(log_path, "a") as log:
            code = subprocess.run(cmd, cwd=run["cwd"], env=dict(os.environ, PYTHONPATH=run["cwd"]),
                                  stdout=log, stderr=subprocess.STDOUT).returncode
        if code != 0:
            raise RuntimeError(f"member {trial}: 's3ta train' exited with code {code} (log: {log_path})")
        progress = read_progress(root)
        frames = progress.frames or target
        score = fitness(progress, run["env"])
        state["segments"].append({"frames": frames, "fitness": score, "mean_return": progress.mean_return,
                                  "hyperparameters": hyper})
        write_json_atomic(os.path.join(root, MEMBER_FILE), state)
        with tempfile.TemporaryDirectory(prefix=f"pbt-{trial}-") as out:
            shutil.copytree(os.path.join(root, "checkpoints"), os.path.join(out, "checkpoints"))
            write_json_atomic(os.path.join(out, MEMBER_FILE), {"member": trial, "frames": frames,
                                                               "fitness": score, "hyperparameters": hyper})
            tune.report({"fitness": score, "frames": frames, **hyper},
                        checkpoint=tune.Checkpoint.from_directory(out))
