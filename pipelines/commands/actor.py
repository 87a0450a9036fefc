"""``s3ta actor``: K environments with batched inference, writing trajectories to replay."""
from __future__ import annotations

import os

from pipelines.commands.flags import (add_max_steps, add_num_envs, add_replay_address, add_root_dir,
                                      add_run_args, add_threads, configure_threads, env, run_spec_from_args)


def register(sub):
    p = sub.add_parser(
        "actor", help="run an actor: K environments, batched inference, trajectories to replay",
        description="Steps --num-envs environments in lock-step with one batched policy call per step, "
                    "writes overlapping trajectories of unroll+1 steps (behaviour logits and the "
                    "recurrent state at each trajectory's first step included) to the replay server, "
                    "pulls the learner's variables every variable_pull_interval steps and reports "
                    "episode returns (stdout, and ROOT/actors/episodes-<id>.jsonl with --root-dir). "
                    "Reconnects with back-off if the replay server goes away. Use the learner's "
                    "--env/--preset/--agent/--set.")
    add_run_args(p)
    add_replay_address(p)
    add_root_dir(p, required=False)
    p.add_argument("--actor-id", type=int, default=env("S3TA_ACTOR_ID"),
                   help="this actor's index: seeds its environments and names its files (env "
                        "S3TA_ACTOR_ID; default: derived from the host name and process id, so that "
                        "replicated containers differ)")
    add_num_envs(p, None, "environments in this actor (default: the preset's envs_per_actor)")
    add_max_steps(p, "stop after this many agent steps")
    add_threads(p, default=1)
    p.set_defaults(func=run)


def default_actor_id() -> int:
    import socket
    import zlib

    return zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_000


def run(args) -> int:
    from pipelines.rl.actor import run_actor
    from pipelines.rl.lifecycle import StopFlag
    from pipelines.rl.replay import check_address

    check_address(args.replay_address)   # before anything starts: a bad one is waited for for ever
    if args.num_envs is not None and args.num_envs < 1:
        raise ValueError(f"--num-envs must be >= 1, got {args.num_envs}")
    spec = run_spec_from_args(args)   # (a bad override is refused before TensorFlow starts)
    configure_threads(args.tf_threads)
    stop = StopFlag().install()
    actor_id = int(args.actor_id) if args.actor_id is not None else default_actor_id()
    return run_actor(spec, actor_id, args.replay_address, stop,
                     root_dir=args.root_dir, num_envs=args.num_envs, max_steps=args.max_steps)
