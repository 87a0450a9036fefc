"""Where ``s3ta train --ray`` puts a run's services on a Ray cluster: the one home of those
settings (:class:`RayPlacement`), their flags (:func:`add_ray_flags`) and their checks.

Light on purpose (argparse and dataclasses only): ``s3ta --help`` imports it, Ray is imported
only by :mod:`pipelines.rl.ray_launcher` when a run starts.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import socket
from typing import Dict, Optional

RAY_DOC = "docs/DISTRIBUTED.md"


@dataclasses.dataclass
class RayPlacement:
    """The Ray resource requests of a run's services (logical resources, as Ray counts them).

    * the replay server and the learner share one node (a STRICT_PACK placement group of two
      bundles: ``{CPU: replay_cpus}`` and ``{CPU: learner_cpus, GPU: learner_gpus,
      **learner_resources}``), so the learner reads batches without crossing the network;
    * each actor asks for ``{CPU: actor_cpus, **actor_resources}`` anywhere on the cluster.

    Custom resources are what a node was started with (``ray start --resources
    '{"actor_node": 16}'``); asking for one keeps a service on the nodes that have it."""
    address: str
    actor_cpus: float = 1.0
    actor_resources: Dict[str, float] = dataclasses.field(default_factory=dict)
    learner_cpus: float = 1.0
    learner_gpus: float = 0.0
    learner_resources: Dict[str, float] = dataclasses.field(default_factory=dict)
    replay_cpus: float = 1.0

    def check(self) -> "RayPlacement":
        """ValueError naming the flag of a value Ray would refuse."""
        for flag, value, low, strict in (("--ray-actor-cpus", self.actor_cpus, 0, False),
                                         ("--ray-learner-cpus", self.learner_cpus, 0, True),
                                         ("--ray-learner-gpus", self.learner_gpus, 0, False),
                                         ("--ray-replay-cpus", self.replay_cpus, 0, True)):
            if value < low or strict and value == low:
                raise ValueError(f"{flag} must be {'>' if strict else '>='} {low}, got {value:g}")
        return self

    def learner_bundle(self) -> Dict[str, float]:
        bundle = {"CPU": self.learner_cpus, **self.learner_resources}
        if self.learner_gpus:
            bundle["GPU"] = self.learner_gpus
        return bundle

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def parse_resources(flag: str, text: Optional[str]) -> Dict[str, float]:
    """``NAME=AMOUNT[,NAME=AMOUNT]`` (``actor_node=1,spot=0.5``) -> dict; ValueError naming ``flag``."""
    resources = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, amount = item.partition("=")
        try:
            value = float(amount) if sep and name.strip() else None
        except ValueError:
            value = None
        if value is None or value <= 0 or name.strip() in ("CPU", "GPU", "memory"):
            raise ValueError(f"{flag} {text!r}: expected NAME=AMOUNT items separated by commas, amounts > 0, "
                             f"custom names only (CPUs and GPUs have their own flags), e.g. actor_node=1")
        resources[name.strip()] = value
    return resources


def add_ray_flags(p: argparse.ArgumentParser) -> None:
    """The ``--ray*`` flags of ``s3ta train`` (defaults: :class:`RayPlacement`'s)."""
    d = RayPlacement(address="")
    g = p.add_argument_group(
        "Ray cluster (run the services on a cluster instead of this machine; see " + RAY_DOC + ")",
        "With --ray, the replay server, the learner and the actors run as Ray actors on the cluster "
        "(the same 's3ta replay/learner/actor' processes, one per Ray actor), the learner and replay "
        "on one node; Ray restarts a service that dies (the learner resumes from its checkpoint). "
        "--root-dir must be a path the learner's node and this machine both see (a shared file "
        "system, or run 's3ta train' on the learner's node); actors need not see it. "
        "'s3ta actors --ray ADDRESS --root-dir ROOT --add N' adds actors to the running run. "
        "launcher.json lists the node of every service.")
    g.add_argument("--ray", dest="ray_address", default=None, metavar="ADDRESS",
                   help="the Ray cluster: HOST:PORT of its head node ('ray start --head' prints it) or "
                        "'auto' (the cluster this machine joined with 'ray start')")
    g.add_argument("--ray-actor-cpus", type=float, default=None, metavar="N",
                   help=f"CPUs each actor asks for (default {d.actor_cpus:g}; an actor with "
                        "--envs-per-actor 16 keeps about one core busy)")
    g.add_argument("--ray-actor-resources", default=None, metavar="NAME=N[,NAME=N]",
                   help="custom resources each actor asks for, e.g. actor_node=1 to keep actors on the "
                        "nodes started with --resources '{\"actor_node\": 16}' (default none)")
    g.add_argument("--ray-learner-cpus", type=float, default=None, metavar="N",
                   help=f"CPUs the learner asks for (default {d.learner_cpus:g})")
    g.add_argument("--ray-learner-gpus", type=float, default=None, metavar="N",
                   help=f"GPUs the learner asks for (default {d.learner_gpus:g}; 1 puts it, and the replay "
                        "server, on a node with a GPU, and the learner's process sees only that GPU)")
    g.add_argument("--ray-learner-resources", default=None, metavar="NAME=N[,NAME=N]",
                   help="custom resources the learner asks for, e.g. learner_node=1 (default none)")
    g.add_argument("--ray-replay-cpus", type=float, default=None, metavar="N",
                   help=f"CPUs the replay server asks for, on the learner's node (default {d.replay_cpus:g})")


RAY_DETAIL_FLAGS = ("ray_actor_cpus", "ray_actor_resources", "ray_learner_cpus", "ray_learner_gpus",
                    "ray_learner_resources", "ray_replay_cpus")


def placement_from_args(args) -> Optional[RayPlacement]:
    """The run's :class:`RayPlacement`, or None without ``--ray`` (ValueError for a ``--ray-*``
    flag given without it, or a value Ray would refuse)."""
    if not getattr(args, "ray_address", None):
        given = [f for f in RAY_DETAIL_FLAGS if getattr(args, f, None) is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} needs --ray ADDRESS (the cluster to run on)")
        return None
    require_ray("--ray")
    d = RayPlacement(address=args.ray_address)
    pick = lambda name, default: default if getattr(args, name) is None else getattr(args, name)  # noqa: E731
    return RayPlacement(
        address=args.ray_address.strip(),
        actor_cpus=pick("ray_actor_cpus", d.actor_cpus),
        actor_resources=parse_resources("--ray-actor-resources", args.ray_actor_resources),
        learner_cpus=pick("ray_learner_cpus", d.learner_cpus),
        learner_gpus=pick("ray_learner_gpus", d.learner_gpus),
        learner_resources=parse_resources("--ray-learner-resources", args.ray_learner_resources),
        replay_cpus=pick("ray_replay_cpus", d.replay_cpus)).check()


def check_reachable(address: str, flag: str = "--ray", timeout: float = 5.0) -> None:
    """A HOST:PORT (or ray://HOST:PORT) address must accept a TCP connection: ValueError in one
    line otherwise, instead of Ray's minute of retries. 'auto' is checked by Ray itself."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{flag} {address}: expected HOST:PORT of the cluster's head node (the address "
                         f"'ray start --head' prints, e.g. 10.0.0.5:6379) or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ValueError(f"{flag} {address}: no Ray cluster answers there ({why}); start one with "
                         f"'ray start --head' ({RAY_DOC})") from None


def require_ray(what: str) -> None:
    """ValueError in one line when Ray is not installed (it is the optional extra ``pbt``, not in
    the runtime image): ``what`` names the command or flag that needs it."""
    try:
        __import__("ray")
    except ImportError:
        raise ValueError(f"{what} needs Ray, which is not installed: pip install 's3ta-tf[pbt]' "
                         f"(Ray 2.55 beside the pinned stack; docs/PBT.md)") from None


def run_namespace(root_dir: str) -> str:
    """The Ray namespace of the run at ``root_dir``: ``s3ta actors`` finds the run's control
    actor there, and a second run on the same root is refused."""
    return "s3ta-" + hashlib.sha1(os.path.abspath(root_dir).encode()).hexdigest()[:16]
