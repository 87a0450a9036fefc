"""``s3ta evaluate``: score a trained agent with the papers' Atari protocol."""
from __future__ import annotations

import argparse
import os

from pipelines.commands.flags import (add_env, add_model_dir, add_num_envs, add_seed, check_at_least,
                                      check_output_dir)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score an agent: no-op starts, 108k-frame cap, human-normalised scores; JSON, CSV, Markdown",
        description="Plays --episodes episodes per environment with the standard Atari protocol (up to "
                    "--noop-max random no-op starts, episodes cut at --max-episode-frames emulator frames "
                    "and counted as truncated, optional sticky actions p = 0.25, sampled or greedy actions, "
                    "every seed recorded), --num-envs environments batched in one process, and writes "
                    "evaluation.json, episodes.csv and evaluation.md (mean, standard error, min/max, "
                    "episode frames; human-normalised score per ALE game with median, mean and capped mean). "
                    "Example: s3ta evaluate --model results/pong-attention/model --env ALE/Pong-v5 "
                    "--episodes 10 --out /tmp/pong-eval",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_dir(p, "an exported SavedModel ('s3ta export', a run's export/latest), a checkpoint directory "
                     "of a run, or a training run's --root-dir (its latest checkpoint)")
    add_env(p, None, "environment id(s), comma-separated, or a named set: atari57, atari-figures, "
                     "atari-easy (default: the run's environment when --model is a run directory)",
            metavar="ID[,ID...]|SET")
    p.add_argument("--episodes", type=int, default=10, help="episodes per environment")
    p.add_argument("--out", default=None, metavar="DIR", help="where the results go (default: print only)")
    p.add_argument("--greedy", action="store_true", help="take the most probable action (default: sample)")
    p.add_argument("--sticky-actions", action="store_true", help="repeat the previous action with p = 0.25 per frame")
    p.add_argument("--noop-max", type=int, default=30, help="up to this many random no-op steps at each start")
    p.add_argument("--max-episode-frames", type=int, default=108_000,
                   help="cut an episode after this many emulator frames (counted as truncated)")
    add_num_envs(p, 8, "environments stepped together per game")
    add_seed(p, 0, "seeds environments (seed*1000 + j) and action sampling")
    p.add_argument("--full-action-space", action="store_true",
                   help="all 18 ALE actions (for agents trained on the full set, e.g. multi-level)")
    p.add_argument("--no-max-pool", action="store_true",
                   help="observations without the max over the last two frames of each action repeat "
                        "(only for agents trained that way)")
    p.set_defaults(func=run)


def resolve_model(path: str) -> tuple:
    """``(model_dir, run record or None)``: a run root resolves to its checkpoints (or its
    latest export), and its run record tells the environment settings it was trained with."""
    from s3ta_tf.run_record import read_record, record_path
    expected = "expected a SavedModel directory, a checkpoint directory or a training run's root directory"
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"--model {path} is a file; {expected}")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--model {path!r} does not exist; {expected}")
    record = None
    for candidate in (path, os.path.dirname(os.path.normpath(path)),
                      os.path.dirname(os.path.dirname(os.path.normpath(path)))):
        if candidate and record_path(candidate) is not None:
            record = read_record(candidate)
            if record.get("kind") == "rl":
                break
            record = None
    if record_path(path) is not None and record is not None:
        for sub in ("checkpoints", os.path.join("export", "latest")):
            d = os.path.join(path, sub)
            if os.path.isdir(d) and (os.path.exists(os.path.join(d, "saved_model.pb"))
                                     or any(n.endswith(".index") for n in os.listdir(d))):
                return d, record
    return path, record


def run(args) -> int:
    from pipelines.analysis.stepper import load_stepper
    from pipelines.evaluation.protocol import (Protocol, build_result, evaluate_game, markdown_table,
                                               progress_printer, write_results)
    from pipelines.evaluation.scores import expand_env_list

    # Before the model is looked for, so the flag is named first, and before any episode is played.
    check_at_least(("--episodes", args.episodes, 1), ("--num-envs", args.num_envs, 1),
                   ("--max-episode-frames", args.max_episode_frames, 1), ("--seed", args.seed, 0),
                   ("--noop-max", args.noop_max, 0))
    if args.out:
        check_output_dir("--out", args.out)
    model_dir, run_config = resolve_model(args.model)
    train_cfg = (run_config or {}).get("train_config", {})
    env_spec = args.env or (run_config or {}).get("env_id")
    if not env_spec:
        raise ValueError("--env is required unless --model is (inside) a training run directory")
    protocol = Protocol(episodes=args.episodes, noop_max=args.noop_max,
                        max_episode_frames=args.max_episode_frames, sticky_actions=args.sticky_actions,
                        greedy=args.greedy, num_envs=args.num_envs, seed=args.seed,
                        max_pool_frames=not args.no_max_pool and train_cfg.get("max_pool_frames", True),
                        full_action_space=args.full_action_space or train_cfg.get("full_action_space", False))
    env_ids = expand_env_list(env_spec)
    stepper = load_stepper(model_dir)
    print(f"evaluate: {model_dir} ({stepper.variant}, {stepper.num_actions} actions) on {len(env_ids)} "
          f"environment(s), {protocol.episodes} episodes each", flush=True)
    games = [evaluate_game(stepper, env_id, protocol, progress_printer(env_id)) for env_id in env_ids]
    extra = {"variant": stepper.variant, "model_dir": model_dir}
    if args.out:
        write_results(args.out, args.model, protocol, games, extra)
        print(open(os.path.join(args.out, "evaluation.md")).read())
        print(f"wrote {args.out}/evaluation.json, episodes.csv, evaluation.md")
    else:
        print(markdown_table(build_result(args.model, protocol, games, extra)))
    return 0
