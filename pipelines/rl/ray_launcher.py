"""``s3ta train --ray ADDRESS``: the local launcher's run with its services on a Ray cluster.

Each service is the same ``python -m pipelines.cli replay|learner|actor ...`` process as with
:class:`pipelines.rl.launcher.Launcher` (the same command lines, environment and logs,
:class:`~pipelines.rl.launcher.Service`), started by a :class:`ServiceHost`, a Ray actor, on the
node Ray placed that actor on:

* the replay server and the learner share one node: a STRICT_PACK placement group of two
  bundles (:meth:`RayPlacement.learner_bundle`); the replay host picks a free port there and
  reports ``node IP:port``, the address the learner and the actors are given;
* each actor goes wherever its CPU and custom-resource request fits;
* a host whose service exits unexpectedly ends its own process (``os._exit``), so that Ray
  restarts the host (``max_restarts=-1``) and with it the service, on the same bundle for the
  replay server and the learner (which resumes from its checkpoint), anywhere that fits for an
  actor. A service that exits cleanly (the learner at ``max_frames``), rejects its arguments
  (exit code 2) or was stopped by the launcher is left as it is;
* the launcher (:class:`RayLauncher`, the Ray driver) is the local launcher with
  :class:`RemoteService` in place of each local process: its loop, progress line, Ctrl-C
  handling, exit codes and ``kept()`` are the local ones. It counts a host restart when the
  service's pid changes, and gives up, like the local launcher, after
  ``MAX_QUICK_FAILURES`` restarts in a row each within ``QUICK_FAILURE_SECS`` of the previous;
* the run registers a named Ray actor, :class:`RunControl` (``control`` in the namespace of
  :func:`~pipelines.rl.ray_placement.run_namespace`), through which ``s3ta actors --ray ADDRESS
  --root-dir ROOT --add N | --remove N`` asks the launcher to add or remove actors; it is owned
  by the launcher and ends with it.

The root directory: the launcher and the learner's node must see it (a shared file system, or
the launcher started on the learner's node). A host sees it when it finds this run's id in
``ROOT/launcher.json``; an actor that does not runs without ``--root-dir`` and logs under
``<tmp>/s3ta-ray-<run id>/logs`` on its node (its episode returns still reach the learner, whose
running mean then stands in for the progress line's, :class:`RunReturns`).

``ROOT/launcher.json`` adds to the local launcher's record the Ray address, namespace, run id
and placement, and for each service its node id and IP, log path and whether it sees the root.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from typing import Callable, Dict, List, Optional

from pipelines.rl.launcher import (LAUNCHER_FILE, PORT_ATTEMPTS, PORT_IN_USE,
                                   QUICK_FAILURE_SECS, RESTART_DELAY_SECS, STOP_TIMEOUT_SECS, USAGE_ERROR,
                                   EpisodeReturns, Launcher, PortReservation, Service, _lock_port, count_exit,
                                   replay_answers, reserve_port)
from pipelines.rl.learner_log import read_progress
from pipelines.rl.lifecycle import log
from pipelines.rl.ray_placement import RayPlacement, check_reachable, run_namespace
from s3ta_tf.atomic_io import read_json_or_none

CONTROL_ACTOR = "control"   # the run's RunControl, in the run's namespace
CALL_TIMEOUT_SECS = 30.0    # one blocking call to a host (status, tail)
REPLAY_TIMEOUT_SECS = 180.0  # placement, start and first answer of the replay server
CLI = ["-m", "pipelines.cli"]


# ------------------------------------------------------------------ connecting
def connect(address: str, namespace: str) -> None:
    """``ray.init`` on the cluster at ``address`` in ``namespace``, quietly; ValueError in one line
    when no cluster answers. The caller's SIGINT/SIGTERM handlers survive (Ray replaces SIGTERM's)."""
    check_reachable(address)
    import ray

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # Ray's notes on pydantic and accelerators
        try:
            ray.init(address=address, namespace=namespace, log_to_driver=False,
                     logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"--ray {address}: {first}") from None
    if threading.current_thread() is threading.main_thread():
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _reconstructed() -> bool:
    """True in a Ray actor that Ray has restarted (its constructor runs again)."""
    import ray

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def _set_or_drop(name: str, value: Optional[str]) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def pick_port(avoid=()) -> int:
    """A free port on this node that no other s3ta run here holds (run as a Ray task on the
    replay's bundle; the replay host locks it again while it lives)."""
    reservation = reserve_port(avoid=avoid)
    reservation.release()
    return reservation.port


def _fits(need: Dict[str, float]) -> bool:
    """True when some live node of the cluster has ``need`` (its total resources, busy or not)."""
    import ray

    return any(all(n["Resources"].get(k, 0) >= v for k, v in need.items()) for n in ray.nodes() if n["Alive"])


# ------------------------------------------------------------------ the Ray actor that runs a service
class ServiceHost:
    """Runs one service process on its node (a Ray actor; see the module docstring).

    ``role``: ``replay`` (given ``port``; holds the port's lock), ``learner`` (needs the root;
    its clean exit is the run's end) or ``actor`` (given ``--root-dir`` only if it sees it).
    ``omp_threads``: the launcher's OMP_NUM_THREADS (None: unset), in place of the one Ray sets
    in its workers, so that the service's environment is the local launcher's."""

    def __init__(self, name: str, argv: List[str], root_dir: str, run_id: str, role: str,
                 port: Optional[int] = None, omp_threads: Optional[str] = None):
        import ray

        self.name, self.role, self.port = name, role, port
        self.stopping = self.settled = False
        self.error, self.service, self._lock = None, None, None
        self.node_id, self.node_ip = ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
        record = read_json_or_none(os.path.join(root_dir, LAUNCHER_FILE)) or {}
        self.sees_root = (record.get("ray") or {}).get("run_id") == run_id
        if not ray.get_gpu_ids():   # a service without a GPU of its own sees none
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        _set_or_drop("OMP_NUM_THREADS", omp_threads)   # Ray's per-worker value: the launcher's instead
        if _reconstructed():
            time.sleep(RESTART_DELAY_SECS)
        self.started_at = time.time()
        try:
            self.service = self._service(argv, root_dir, run_id)
            self.service.start()
        except Exception as e:  # noqa: BLE001 (reported by status(), the launcher stops the run)
            self.service, self.error = None, f"{type(e).__name__}: {e}"
            return
        threading.Thread(target=self._watch, daemon=True).start()

    def _service(self, argv: List[str], root_dir: str, run_id: str) -> Service:
        if self.role == "learner" and not self.sees_root:
            raise RuntimeError(f"node {self.node_ip} does not see --root-dir {root_dir} (the learner writes its "
                               f"checkpoints there): put the root on a file system this node shares, or start "
                               f"'s3ta train --ray' on the learner's node")
        if self.port is not None:
            self._lock = _lock_port(self.port)
            if self._lock is None:
                raise RuntimeError(f"port {self.port} is {PORT_IN_USE} by another s3ta run on {self.node_ip}")
        if self.role == "actor" and self.sees_root:
            argv = list(argv) + ["--root-dir", root_dir]
        logs = (os.path.join(root_dir, "logs") if self.sees_root
                else os.path.join(tempfile.gettempdir(), f"s3ta-ray-{run_id}", "logs"))
        return Service(self.name, [sys.executable] + CLI + list(argv), os.path.join(logs, f"{self.name}.log"))

    def _watch(self) -> None:
        code = self.service.proc.wait()
        if self.stopping or code == USAGE_ERROR or (code == 0 and self.role == "learner"):
            self.settled = True   # the launcher reads the exit code
            return
        with open(self.service.log_path, "a") as f:
            f.write(f"[{time.strftime('%H:%M:%S')}] ray: {self.name} exited with code {code}; its Ray actor "
                    f"exits so that Ray restarts it\n")
        os._exit(1)

    def status(self) -> dict:
        service = self.service
        return {"pid": service.pid if service else None, "code": service.poll() if self.settled else None,
                "settled": self.settled, "error": self.error, "node_id": self.node_id, "node_ip": self.node_ip,
                "host_pid": os.getpid(),
                "started_at": self.started_at, "sees_root": self.sees_root,
                "log": service.log_path if service else None,
                "address": f"{self.node_ip}:{self.port}" if self.port else None}

    def stop(self, sig: int) -> None:
        self.stopping = True
        if self.service:
            self.service.signal(sig)
        else:
            self.settled = True   # nothing to wait for

    def tail(self, lines: int = 15) -> str:
        return self.service.tail(lines) if self.service else (self.error or "")


class RunControl:
    """The run's mailbox (a named Ray actor): ``s3ta actors`` leaves ``request(delta)``s, the
    launcher ``take()``s them each loop and ``answer()``s; ``summary()`` is its latest record."""

    def __init__(self):
        self._requests, self._answers, self._summary, self._next = [], {}, {}, 0

    def request(self, delta: int) -> int:
        self._next += 1
        self._requests.append((self._next, int(delta)))
        return self._next

    def take(self) -> list:
        requests, self._requests = self._requests, []
        return requests

    def answer(self, request_id: int, ok: bool, message: str) -> None:
        self._answers[request_id] = (ok, message)

    def answer_of(self, request_id: int):
        return self._answers.get(request_id)

    def publish(self, summary: dict) -> None:
        self._summary = summary

    def summary(self) -> dict:
        return self._summary


_REMOTE: Dict[str, object] = {}


def remote(cls_or_fn, **options):
    """``ray.remote`` of a class or function of this module, made once per process."""
    import ray

    if cls_or_fn.__name__ not in _REMOTE:
        _REMOTE[cls_or_fn.__name__] = ray.remote(**options)(cls_or_fn) if options else ray.remote(cls_or_fn)
    return _REMOTE[cls_or_fn.__name__]


# ------------------------------------------------------------------ the driver's side of a host
class RemoteService:
    """One :class:`ServiceHost` seen from the launcher, with :class:`Service`'s interface (``name``,
    ``pid``, ``restarts``, ``start``, ``poll``, ``signal``, ``wait``, ``tail``), so that the local
    launcher's loop and shutdown drive it. ``state``: the host's latest :meth:`ServiceHost.status`."""

    def __init__(self, name: str, create: Callable):
        self.name, self._create = name, create
        self.handle, self.state, self._pending = None, {}, None
        self.restarts, self.quick_failures, self.started_at = 0, 0, 0.0

    def start(self) -> None:
        self.handle, self.state, self._pending = self._create(), {}, None
        self.started_at = time.time()

    @property
    def pid(self) -> Optional[int]:
        return self.state.get("pid")

    def poll(self) -> Optional[int]:
        """The service's exit code once its host has settled (stopped, finished, refused), else None."""
        return self.state.get("code")

    def refresh(self) -> Optional[dict]:
        """Without blocking: the host's newest status if one arrived since the last call (None
        while the host is being placed or restarted)."""
        import ray

        if self.handle is None:
            return None
        if self._pending is not None:
            ready, _ = ray.wait([self._pending], timeout=0)
            if not ready:
                return None
        ref, self._pending = self._pending, self.handle.status.remote()
        try:
            return ray.get(ref) if ref is not None else None
        except ray.exceptions.RayActorError:   # being restarted by Ray
            return None

    def ask(self, timeout: float = CALL_TIMEOUT_SECS) -> dict:
        """The host's status, waiting for it; Ray's RayActorError (the host died or is being
        restarted) and GetTimeoutError (no answer: not placed yet, or busy) pass through."""
        import ray

        self.state = ray.get(self.handle.status.remote(), timeout=timeout)
        return self.state

    def placed(self) -> bool:
        """False while Ray has not placed the host (no node has room for it) and once it is dead."""
        from ray._private import state as ray_state

        try:
            info = ray_state.actors(actor_id=self.handle._actor_id.hex())
        except Exception:  # noqa: BLE001 (Ray's private table: assume placed)
            return True
        return info.get("State") in ("ALIVE", "RESTARTING")

    def signal(self, sig) -> None:
        if self.handle is not None:
            self.handle.stop.remote(int(sig))   # (in order before any later status call)

    def wait(self, timeout: float) -> Optional[int]:
        """The exit code, waiting up to ``timeout`` for the service to stop; then its host is killed.
        Returns at once for a host killed already, never placed, dead, or without a service."""
        import ray

        deadline = time.time() + timeout
        while self.handle is not None and time.time() < deadline and self.placed():
            try:
                state = self.ask(max(1.0, deadline - time.time()))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                break
            if state.get("code") is not None or state.get("error") or state.get("settled"):
                break
            time.sleep(0.5)
        self.kill()
        return self.poll()

    def kill(self) -> None:
        """Ends the host for good, and a service still running with it (Ray kills a worker's child
        processes): call it after :meth:`signal` and :meth:`wait` for a clean stop."""
        import ray

        if self.handle is not None:
            try:
                ray.kill(self.handle, no_restart=True)
            except Exception:  # noqa: BLE001 (already gone)
                pass
        self.handle = None

    def tail(self, lines: int = 15) -> str:
        import ray

        if self.handle is not None:
            try:
                return ray.get(self.handle.tail.remote(lines), timeout=10)
            except Exception:  # noqa: BLE001 (restarting: read the log here if this machine sees it)
                pass
        return Service(self.name, [], self.state.get("log") or "").tail(lines)


class RunReturns(EpisodeReturns):
    """The actors' episode logs when they see the root; otherwise the learner's running mean
    over its last episodes (``learner.json``) stands in, as ``episodes`` copies of that mean."""

    def __init__(self, root_dir: str, window: int = 100):
        super().__init__(root_dir, window)
        self.root_dir = root_dir

    def update(self) -> None:
        super().update()
        if not self.offsets:
            p = read_progress(self.root_dir)
            if p.mean_return is not None:
                self.returns, self.count = [p.mean_return] * min(p.episodes, self.window), p.episodes


# ------------------------------------------------------------------ the launcher
class RayLauncher(Launcher):
    """:class:`Launcher` with its services on the Ray cluster of ``placement`` (see the module
    docstring). Connects in the constructor: a cluster that does not answer, or another run on
    the same root, is a ValueError before anything starts."""

    def __init__(self, root_dir: str, run_args: List[str], num_actors: int, max_frames: int,
                 placement: RayPlacement, replay_port: Optional[int] = None, **kwargs):
        self.placement, self.run_id = placement, uuid.uuid4().hex[:12]
        self._pg = self._control = self._taking = None
        super().__init__(root_dir, run_args, num_actors, max_frames, replay_port=replay_port, **kwargs)
        self._user_port = replay_port
        self.namespace = run_namespace(self.root_dir)
        self.returns = RunReturns(self.root_dir)
        connect(placement.address, self.namespace)
        self._register_control()

    @staticmethod
    def _reserve(replay_port: Optional[int]) -> PortReservation:
        """No lock here: the port is on the replay's node, which its host locks there."""
        return PortReservation(replay_port or 0, None)

    def _register_control(self) -> None:
        import ray

        try:
            self._control = remote(RunControl).options(name=CONTROL_ACTOR, num_cpus=0).remote()
            ray.get(self._control.summary.remote(), timeout=60)
        except ValueError:   # (Ray's ActorAlreadyExistsError is one)
            ray.shutdown()
            raise ValueError(f"--root-dir {self.root_dir}: a run on this root is already running on the Ray "
                             f"cluster at {self.placement.address} (stop it first, or use another root)") from None

    # -------------------------------------------------------------- building the services
    def _use_port(self, port: int) -> None:
        """The services as :class:`RemoteService`s for a replay server on ``port`` of its node
        (their command lines are made when they start: the replay's address is known by then)."""
        _, num_actors, replay_args, _, _ = self._args
        self.port, self.address = port, getattr(self, "address", None) or "(placed by Ray)"
        self.replay = self._remote("replay", "replay", lambda: ["replay", "--port", str(port)] + replay_args,
                                   self._bundle(0, num_cpus=self.placement.replay_cpus), port=port)
        learner_options = self._bundle(1, num_cpus=self.placement.learner_cpus, num_gpus=self.placement.learner_gpus,
                                       resources=self.placement.learner_resources)
        self.learner = self._remote("learner", "learner", self._learner_argv, learner_options)
        self.actors = [self._actor(i) for i in range(num_actors)]

    def _learner_argv(self) -> List[str]:
        run_args, _, _, learner_args, _ = self._args
        return (["learner"] + run_args + ["--replay-address", self.address, "--root-dir", self.root_dir,
                                          "--max-frames", str(self.max_frames)] + learner_args)

    def _actor(self, index: int) -> RemoteService:
        run_args, _, _, _, actor_args = self._args
        argv = lambda: (["actor"] + run_args + ["--replay-address", self.address, "--actor-id", str(index)]  # noqa: E731
                        + actor_args)
        return self._remote(f"actor-{index}", "actor", argv,
                            {"num_cpus": self.placement.actor_cpus, "resources": self.placement.actor_resources})

    def _bundle(self, index: int, **options) -> dict:
        """Options placing a host on bundle ``index`` of the learner's placement group."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        if self._pg is not None:
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(self._pg, index)
        return options

    def _remote(self, name: str, role: str, argv: Callable, options: dict, port: Optional[int] = None):
        create = lambda: remote(ServiceHost).options(max_restarts=-1, **options).remote(  # noqa: E731
            name, argv(), self.root_dir, self.run_id, role, port, os.environ.get("OMP_NUM_THREADS"))
        return RemoteService(name, create)

    # -------------------------------------------------------------- starting
    def _start_replay(self) -> None:
        """Reserves the learner's node (a placement group), starts the replay server there on a
        free port of that node and waits until it answers (another port if it was taken)."""
        import ray

        self._write_state()   # the run id, by which a host knows it sees the root
        room = self._actor_room()
        if room:
            log(f"train: {room}")
        self._pg = self._reserve_learner_node()
        tried = []
        while self._pg is not None and not self.stop.is_set():
            port = self._user_port or ray.get(remote(pick_port, num_cpus=0).options(
                **self._bundle(0)).remote(tried))
            self._use_port(port)
            self.replay.start()
            try:
                return self._wait_for_replay()
            except RuntimeError as e:
                self.replay.kill()
                if self._fixed_port or PORT_IN_USE not in str(e).lower() or len(tried) + 1 >= PORT_ATTEMPTS:
                    raise
            tried.append(port)
            log(f"train: port {port} was taken on the replay's node; trying another port")

    def _reserve_learner_node(self):
        """The placement group of the replay and learner bundles, once Ray has placed it (None if
        stopped while waiting). Says so when no node of the cluster has room for it now."""
        import ray
        from ray.util.placement_group import placement_group

        bundles = [{"CPU": self.placement.replay_cpus}, self.placement.learner_bundle()]
        pg = placement_group(bundles, strategy="STRICT_PACK", name=f"s3ta-{self.run_id}")
        need = {k: bundles[0].get(k, 0) + bundles[1].get(k, 0) for k in {**bundles[0], **bundles[1]}}
        if not _fits(need):
            log(f"train: no node of the cluster has {need} for the replay server and the learner; waiting for "
                f"one to join (Ctrl-C stops)")
        placed = pg.ready()
        while not self.stop.is_set():
            if ray.wait([placed], timeout=1.0)[0]:
                return pg
        ray.util.remove_placement_group(pg)
        return None

    def _wait_for_replay(self) -> None:
        """Until the replay server answers; RuntimeError (with its log tail) when it does not
        start: an error, an exit, or its host dying or being restarted by Ray before it answered."""
        import ray

        deadline, first_pid = time.time() + REPLAY_TIMEOUT_SECS, None
        while time.time() < deadline and not self.stop.is_set():
            try:
                state = self.replay.ask(min(CALL_TIMEOUT_SECS, max(1.0, deadline - time.time())))
            except ray.exceptions.GetTimeoutError:
                continue
            except ray.exceptions.RayActorError:
                raise self._replay_failed("its Ray actor died") from None
            if state.get("error") or state.get("code") is not None:
                raise RuntimeError(f"the replay server did not start on {state.get('node_ip')}: "
                                   f"{state.get('error') or self.replay.tail()}")
            first_pid = first_pid or state.get("pid")
            if state.get("pid") != first_pid:
                raise self._replay_failed("it exited and Ray restarted it")
            if state.get("address") and replay_answers(state["address"]):
                self.address = state["address"]
                log(f"train: replay on {self.address} (node {state['node_id'][:8]})")
                return
            time.sleep(0.5)
        if not self.stop.is_set():
            raise RuntimeError(f"the replay server did not answer within {REPLAY_TIMEOUT_SECS:.0f}s:\n"
                               f"{self.replay.tail()}")

    def _replay_failed(self, why: str) -> RuntimeError:
        return RuntimeError(f"the replay server did not start on {self.replay.state.get('node_ip')} ({why}):\n"
                            f"{self.replay.tail()}")

    # -------------------------------------------------------------- the loop
    def _supervise(self) -> bool:
        """Takes the hosts' new statuses (counting Ray's restarts) and scaling requests; returns
        True when the learner has finished."""
        changed = False
        for s in self.services:
            state = s.refresh()
            if state is not None:
                changed = self._note(s, state) or changed
        if self._serve_requests() or changed:
            self._write_state()
        for s in self.services:
            if s.poll() == USAGE_ERROR:
                raise RuntimeError(f"{s.name} rejected its arguments (exit code {USAGE_ERROR}):\n{s.tail(3)}")
        if self.learner.poll() == 0:
            log("train: the learner finished")
            return True
        return False

    def _note(self, s: RemoteService, state: dict) -> bool:
        """Takes a host's status; True when where or as what it runs changed."""
        if state.get("error"):
            raise RuntimeError(f"{s.name} could not start on node {state.get('node_ip')}: {state['error']}")
        old, s.state = s.state, state
        if old.get("pid") is not None and state.get("pid") != old["pid"]:   # Ray restarted the host
            s.restarts += 1
            count_exit(s, quick=state["started_at"] - old["started_at"] < QUICK_FAILURE_SECS + RESTART_DELAY_SECS)
            log(f"train: Ray restarted {s.name} on {state['node_ip']} (pid {state['pid']}, restart {s.restarts}). "
                f"Log tail:\n{s.tail(5)}")
        return (old.get("pid"), old.get("node_id")) != (state.get("pid"), state.get("node_id"))

    def _serve_requests(self) -> bool:
        """Carries out the scaling requests left with the run's :class:`RunControl`; True if any."""
        import ray

        if self._taking is None:
            self._taking = self._control.take.remote()
            return False
        ready, _ = ray.wait([self._taking], timeout=0)
        if not ready:
            return False
        requests, self._taking = ray.get(self._taking), self._control.take.remote()
        for request_id, delta in requests:
            ok, message = self._scale(delta)
            log(f"train: {message}")
            self._control.answer.remote(request_id, ok, message)
        return bool(requests)

    def _actor_room(self) -> str:
        """'' when some node of the cluster can hold an actor, else one sentence saying none can."""
        need = {"CPU": self.placement.actor_cpus, **self.placement.actor_resources}
        need = {k: v for k, v in need.items() if v}
        if _fits(need):
            return ""
        return (f"no node of the cluster has {need} for an actor: Ray starts the actors once one joins "
                f"(see --ray-actor-cpus, --ray-actor-resources)")

    def _scale(self, delta: int):
        """Adds ``delta`` actors (> 0) or stops the newest ``-delta``: (ok, message)."""
        if delta == 0:
            return True, f"no change ({len(self.actors)} actors)"
        if delta > 0:
            first = 1 + max((int(a.name.split("-")[1]) for a in self.actors), default=-1)
            new = [self._actor(i) for i in range(first, first + delta)]
            for a in new:
                a.start()
            self.actors += new
            room = self._actor_room()
            return True, (f"added {', '.join(a.name for a in new)} (now {len(self.actors)} actors; Ray places "
                          f"them as the cluster's resources allow, launcher.json shows where)"
                          + (f"; {room}" if room else ""))
        if len(self.actors) + delta < 1:
            return False, f"cannot remove {-delta} of {len(self.actors)} actors: a run keeps at least one"
        gone, self.actors = self.actors[delta:], self.actors[:delta]
        for a in gone:
            a.signal(signal.SIGTERM)
        for a in gone:
            a.wait(STOP_TIMEOUT_SECS)   # (then kills the host)
        return True, f"removed {', '.join(a.name for a in gone)} (now {len(self.actors)} actors)"

    def _state(self) -> dict:
        """The local launcher's record, with the Ray run and where each service runs."""
        state = super()._state()
        state["ray"] = {"address": self.placement.address, "namespace": self.namespace, "run_id": self.run_id,
                        "placement": self.placement.to_json()}
        for s in self.services:
            state["services"][s.name].update({k: s.state.get(k) for k in ("node_id", "node_ip", "log", "sees_root")})
        return state

    def _write_state(self) -> dict:
        state = super()._write_state()
        if self._control is not None:
            self._control.publish.remote(state)
        return state

    def _shutdown(self) -> None:
        """The local launcher's order (actors, then the learner, which checkpoints, then replay),
        then every host and the placement group go, and the driver leaves the cluster."""
        import ray

        try:
            super()._shutdown()
        finally:
            for s in self.services:
                s.kill()
            if self._pg is not None:
                ray.util.remove_placement_group(self._pg)
            ray.shutdown()


# ------------------------------------------------------------------ a cluster on this machine
@contextlib.contextmanager
def local_cluster(nodes: List[dict]):
    """A throwaway Ray cluster on this machine (``ray.cluster_utils.Cluster``, for tests and
    ``s3ta bench e2e --ray``): one node per dict of node arguments (``num_cpus``,
    ``resources``), the first the head. Yields ``(address, [node ids])``; removes its nodes and
    its temporary directory afterwards (never ``ray stop``, which would end every Ray process of
    the machine)."""
    import shutil
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="s3ta-ray-")   # short: Ray's socket paths must stay < 108 chars
    cluster = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cluster = Cluster(initialize_head=True, head_node_args={"include_dashboard": False,
                                                                    "temp_dir": temp_dir, **nodes[0]})
            ids = [cluster.head_node.node_id] + [cluster.add_node(temp_dir=temp_dir, **n).node_id
                                                 for n in nodes[1:]]
            cluster.wait_for_nodes()
        yield cluster.address, ids
    finally:
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


# ------------------------------------------------------------------ s3ta actors
def scale_actors(address: str, root_dir: str, delta: int, timeout: float = 300.0):
    """Asks the run at ``root_dir`` on the cluster at ``address`` to add (``delta`` > 0) or
    remove actors; ``delta`` 0 only asks where its services run. Returns (ok, message);
    ValueError when no such run is running."""
    import ray

    connect(address, run_namespace(root_dir))
    try:
        try:
            control = ray.get_actor(CONTROL_ACTOR)
        except ValueError:
            raise ValueError(f"no 's3ta train --ray' run with --root-dir {os.path.abspath(root_dir)} is running "
                             f"on the Ray cluster at {address}") from None
        if delta == 0:
            return True, _where(ray.get(control.summary.remote(), timeout=CALL_TIMEOUT_SECS))
        request_id = ray.get(control.request.remote(delta), timeout=CALL_TIMEOUT_SECS)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                answer = ray.get(control.answer_of.remote(request_id),
                                 timeout=max(1.0, min(CALL_TIMEOUT_SECS, deadline - time.time())))
            except ray.exceptions.GetTimeoutError:
                continue
            if answer is not None:
                return tuple(answer)
            time.sleep(0.5)
        return False, f"the run did not answer within {timeout:.0f}s (is its launcher stuck?)"
    finally:
        ray.shutdown()


def _where(summary: dict) -> str:
    """One line per service of a launcher record: name, node, pid, restarts."""
    lines = [f"replay address {summary.get('replay_address')}"]
    for name, s in (summary.get("services") or {}).items():
        lines.append(f"{name:10s} node {s.get('node_ip')} ({(s.get('node_id') or '?')[:8]}) pid {s.get('pid')} "
                     f"restarts {s.get('restarts')}")
    return "\n".join(lines)
