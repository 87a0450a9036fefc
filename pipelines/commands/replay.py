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
    from agents.impala.config import ReplaySettings
    from pipelines.rl.lifecycle import StopFlag
    from pipelines.rl.replay import check_port_free, serve

    check_port_free(args.port)
    return serve(args.port, ReplaySettings.from_flags(args), StopFlag().install())
