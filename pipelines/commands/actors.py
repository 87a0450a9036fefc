"""``s3ta actors``: add or remove actors of a running ``s3ta train --ray`` run."""
from __future__ import annotations

import argparse

from pipelines.commands.flags import add_root_dir, check_at_least
from pipelines.rl.ray_placement import require_ray


def register(sub):
    p = sub.add_parser(
        "actors", help="add or remove actors of a running 's3ta train --ray' run (the learner goes on)",
        description="Talks to the launcher of the 's3ta train --ray' run whose --root-dir is ROOT on the Ray "
                    "cluster at ADDRESS: --add N starts N more actors (with the run's resource requests: Ray "
                    "places them where they fit), --remove N stops the N newest ones (a run keeps at least "
                    "one); with neither, lists where every service of the run runs. The learner and the "
                    "other actors go on. Example: s3ta actors --ray 10.0.0.5:6379 --root-dir /data/runs/pong "
                    "--add 8",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ray", dest="ray_address", required=True, metavar="ADDRESS",
                   help="the run's Ray cluster: HOST:PORT of its head node, or 'auto'")
    add_root_dir(p, required=True, help="the run's --root-dir (names the run on the cluster)", env_var=None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--add", type=int, default=None, metavar="N", help="start N more actors")
    g.add_argument("--remove", type=int, default=None, metavar="N", help="stop the N newest actors")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds to wait for the launcher's answer (removing waits for the actors to stop)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_at_least(("--add", args.add, 1), ("--remove", args.remove, 1), ("--timeout", args.timeout, 1))
    require_ray("s3ta actors")
    import ray

    from pipelines.commands.train import say_failed
    from pipelines.rl.ray_launcher import scale_actors

    delta = args.add or -(args.remove or 0)
    try:
        ok, message = scale_actors(args.ray_address, args.root_dir, delta, args.timeout)
    except (RuntimeError, ray.exceptions.RayError) as e:   # (the run's launcher or the cluster went away)
        say_failed("actors", e)
        return 1
    print(message, flush=True)
    return 0 if ok else 1
