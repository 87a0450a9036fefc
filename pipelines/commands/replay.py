"""``s3ta replay``: the Reverb replay server of a training run."""
from __future__ import annotations

from pipelines.rl.cli_args import DEFAULT_REPLAY_PORT, env


def register(sub):
    p = sub.add_parser(
        "replay", help="run the Reverb replay server (trajectory queue + variables table)",
        description="Serves a Reverb FIFO queue table 'trajectories' (each item one trajectory of "
                    "unroll+1 steps, sampled once by the learner; actors block when it is full) and a "
                    "one-item table 'variables' (the learner's latest weights, pulled by actors). "
                    "Runs until SIGINT/SIGTERM.")
    p.add_argument("--port", type=int, default=int(env("S3TA_REPLAY_PORT", DEFAULT_REPLAY_PORT)),
                   help=f"port to listen on (env S3TA_REPLAY_PORT; default {DEFAULT_REPLAY_PORT})")
    p.add_argument("--queue-size", type=int, default=int(env("S3TA_QUEUE_SIZE", 128)),
                   help="trajectories held by the queue (env S3TA_QUEUE_SIZE; default 128; at least the "
                        "learner's batch size)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.rl.lifecycle import StopFlag
    from pipelines.rl.replay import serve

    if not 0 <= args.port < 65536:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    return serve(args.port, args.queue_size, StopFlag().install())
