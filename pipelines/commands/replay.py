"""``s3ta replay``: the Reverb replay server of a training run."""
from __future__ import annotations

from pipelines.commands.flags import add_replay_server


def register(sub):
    p = sub.add_parser(
        "replay", help="run the Reverb replay server (trajectory queue + variables table)",
        description="Serves a Reverb FIFO queue table 'trajectories' (each item one trajectory of "
                    "unroll+1 steps, sampled once by the learner, or --reuse times; actors block when it "
                    "is full or the learner is behind) and a "
                    "one-item table 'variables' (the learner's latest weights, pulled by actors). "
                    "Runs until SIGINT/SIGTERM.")
    add_replay_server(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.rl.lifecycle import StopFlag
    from pipelines.rl.replay import serve

    from pipelines.rl.replay import check_port_free
    check_port_free(args.port)
    if args.queue_size < 1:
        raise ValueError(f"--queue-size must be >= 1, got {args.queue_size}")
    for flag, value in (("--reuse", args.reuse), ("--min-size", args.min_size)):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if args.reuse > 1 and args.queue_size < 2 * args.min_size:
        raise ValueError(f"--queue-size ({args.queue_size}) must be >= 2 x --min-size ({args.min_size}) "
                         f"with --reuse {args.reuse}")
    return serve(args.port, args.queue_size, StopFlag().install(), args.reuse, args.min_size)
