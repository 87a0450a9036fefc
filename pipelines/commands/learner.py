"""``s3ta learner``: V-trace training from the replay queue."""
from __future__ import annotations

from pipelines.commands.flags import (add_fine_tune, add_max_frames, add_max_steps, add_replay_address,
                                      add_root_dir, add_run_args, add_threads, configure_threads,
                                      run_spec_from_args)


def register(sub):
    p = sub.add_parser(
        "learner", help="run the learner: V-trace updates on batches from replay",
        description="Reads batches of trajectories from the replay queue, trains the V-trace agent "
                    "(RMSProp, global-norm clipping, reward clipping; non-finite updates are skipped and "
                    "logged), pushes variables to replay, writes TensorBoard summaries to "
                    "ROOT/summaries/learner, checkpoints to ROOT/checkpoints (resumed automatically from "
                    "the newest that reads: train step and optimiser state) and exports SavedModels to "
                    "ROOT/export periodically and at the end. Waits for the replay server, logging each "
                    "retry. Stops at max_frames (see --max-frames) or on SIGINT/SIGTERM, checkpointing first.")
    add_run_args(p)
    add_replay_address(p)
    add_root_dir(p, required=True)
    add_max_frames(p, "stop after consuming this many emulator frames (default: the preset's max_frames)")
    add_max_steps(p, "stop after this many updates (this session)")
    add_fine_tune(p)
    add_threads(p, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.rl.learner import run_learner
    from pipelines.rl.lifecycle import StopFlag
    from pipelines.rl.replay import check_address

    check_address(args.replay_address)   # before anything starts: a bad one is waited for for ever
    for flag, value in (("--max-steps", args.max_steps), ("--max-frames", args.max_frames)):
        if value is not None and not value >= 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if args.max_frames is not None:
        args.overrides = list(args.overrides) + [f"train.max_frames={args.max_frames}"]
    spec = run_spec_from_args(args)   # (a bad override is refused before TensorFlow starts)
    configure_threads(args.tf_threads)
    stop = StopFlag().install()
    return run_learner(spec, args.replay_address, args.root_dir, stop,
                       max_steps=args.max_steps, fine_tune_from=args.fine_tune_from)
