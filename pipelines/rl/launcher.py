"""The local launcher behind ``s3ta train``: replay, learner and K actors as processes.

Every service is ``python -m pipelines.cli <service> ...`` in its own process (no fork of a
TensorFlow process), logging to ``ROOT/logs/<name>.log``. The launcher

* starts the replay server on a port it reserves (see :func:`reserve_port`; a start that
  finds the port taken after all is retried on another one), waits until it answers, then the
  learner and the actors;
* restarts any service that exits while the run is not finished (a crashed actor, a
  learner that resumes from its checkpoint, a replay server the others reconnect to);
* shows a progress line (frames, frames/s, mean episode return, ETA) from the learner's record
  (``ROOT/learner.json``, :func:`pipelines.rl.learner_log.read_progress`) and the actors'
  episode logs;
* on Ctrl-C / SIGTERM stops the actors, lets the learner checkpoint, then stops replay, and
  exits with 128 + the signal's number (130 for Ctrl-C); :meth:`Launcher.kept` says what the
  run kept (a service stopped while it was still starting has saved nothing);
* finishes when the learner exits after ``max_frames``.

``ROOT/launcher.json`` lists the services' pids and restart counts (tests use it).
"""
from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

from agents.impala.config import ReplaySettings
from pipelines.rl.lifecycle import StopFlag, log
from pipelines.rl.learner_log import read_progress
from s3ta_tf.atomic_io import write_json_atomic

POLL_SECS = 0.5
RESTART_DELAY_SECS = 2.0
MAX_QUICK_FAILURES = 5   # consecutive exits within QUICK_FAILURE_SECS of a start: give up
QUICK_FAILURE_SECS = 30.0
USAGE_ERROR = 2  # exit code of a CLI error (bad flags/config): restarting would not help
STOP_TIMEOUT_SECS = 60.0
LAUNCHER_FILE = "launcher.json"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORT_ATTEMPTS = 20       # ports tried by reserve_port, replay starts tried by Launcher.run
PORT_IN_USE = "already in use"   # in the replay's log when its port was taken (s3ta replay, gRPC)


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick). Another process may take it before
    it is used: :func:`reserve_port` guards against other ``s3ta train`` runs doing so."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class PortReservation:
    """An exclusive lock on ``<tmp>/s3ta-ports-<uid>/<port>.lock``, held while the run uses the
    port. The kernel's free-port pick is not a reservation: two runs started together (two PBT
    members) can both be given the same number, and two Reverb servers do not refuse to share
    a port (gRPC binds with SO_REUSEPORT), so without the lock they would silently split each
    other's traffic."""

    def __init__(self, port: int, fd: Optional[int]):
        self.port, self._fd = port, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing drops the lock
            self._fd = None


def _lock_port(port: int) -> Optional[PortReservation]:
    """The port's lock, or None if another process holds it."""
    directory = os.path.join(tempfile.gettempdir(), f"s3ta-ports-{os.getuid()}")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(os.path.join(directory, f"{port}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:   # no usable temp directory: no reservation, the start-up retry still applies
        return PortReservation(port, None)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return PortReservation(port, fd)


def reserve_port(port: Optional[int] = None, avoid=()) -> PortReservation:
    """Reserves ``port`` (ValueError if another run holds it), or a free port (none of
    ``avoid``) that no other run of this user on this host has reserved."""
    if port:
        reservation = _lock_port(port)
        if reservation is None:
            raise ValueError(f"--replay-port {port}: the port is already in use by another s3ta run; "
                             f"choose another one")
        return reservation
    for _ in range(PORT_ATTEMPTS):
        candidate = free_port()
        reservation = None if candidate in avoid else _lock_port(candidate)
        if reservation is not None:
            return reservation
    raise RuntimeError(f"no free port found for the replay server in {PORT_ATTEMPTS} attempts")


def replay_answers(address: str) -> bool:
    """True when the replay server at ``address`` answers (a 2 s call)."""
    import reverb

    try:
        reverb.Client(address).server_info(timeout=2)
        return True
    except Exception:  # noqa: BLE001 (not up yet)
        return False


def warn_if_levels_without_actors(actors: int, levels) -> None:
    """One warning line when fewer actors than levels: actor i plays level i mod len(levels),
    so levels beyond the actor count are never played."""
    if len(levels) > 1 and actors < len(levels):
        from s3ta_tf.config.overrides import warn
        warn(f"--actors {actors} < {len(levels)} levels: only {', '.join(levels[:actors])} will be played "
             f"(actor i plays level i mod {len(levels)}); use --actors {len(levels)} or more")


def _die_with_parent():  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def count_exit(service, quick: bool) -> None:
    """Counts a service's unexpected exit (a :class:`Service` or anything with its ``name``,
    ``quick_failures`` and ``tail``); RuntimeError once more than MAX_QUICK_FAILURES exits in a
    row came within QUICK_FAILURE_SECS of a start: restarting would not help."""
    service.quick_failures = service.quick_failures + 1 if quick else 0
    if service.quick_failures > MAX_QUICK_FAILURES:
        raise RuntimeError(f"{service.name} exited {service.quick_failures} times in a row within "
                           f"{QUICK_FAILURE_SECS:.0f}s of starting; last log:\n{service.tail()}")


@dataclasses.dataclass
class Service:
    """One service process, restartable."""
    name: str
    argv: List[str]
    log_path: str
    proc: Optional[subprocess.Popen] = None
    restarts: int = 0
    restart_at: Optional[float] = None
    started_at: float = 0.0
    quick_failures: int = 0

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, environ.get("PYTHONPATH")) if p)
        environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        environ["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=environ,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        self.restart_at = None
        self.started_at = time.time()

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def poll(self) -> Optional[int]:
        return self.proc.poll() if self.proc else None

    def signal(self, sig) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> Optional[int]:
        if not self.proc:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - 8000))
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class EpisodeReturns:
    """Follows the actors' episode logs (ROOT/actors/episodes-*.jsonl)."""

    def __init__(self, root_dir: str, window: int = 100):
        self.pattern = os.path.join(root_dir, "actors", "episodes-*.jsonl")
        self.offsets, self.returns, self.window, self.count = {}, [], window, 0

    def update(self) -> None:
        for path in glob.glob(self.pattern):
            with open(path) as f:
                f.seek(self.offsets.get(path, 0))
                while True:
                    line = f.readline()
                    if not line.endswith("\n"):
                        break
                    self.offsets[path] = f.tell()
                    self.returns.append(json.loads(line)["return"])
                    self.count += 1
        self.returns = self.returns[-self.window:]

    @property
    def mean(self) -> Optional[float]:
        return sum(self.returns) / len(self.returns) if self.returns else None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, m, s = seconds // 3600, seconds % 3600 // 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Launcher:
    """See the module docstring. ``run_args``: the --env/--preset/... flags for every service."""

    def __init__(self, root_dir: str, run_args: List[str], num_actors: int, max_frames: int,
                 replay_port: Optional[int] = None, replay: Optional[ReplaySettings] = None,
                 learner_args: List[str] = (), actor_args: List[str] = (), stop: StopFlag = None,
                 progress: bool = True, stop_at_return: Optional[float] = None):
        self.root_dir, self.max_frames = os.path.abspath(root_dir), max_frames
        # Stop early (cleanly: final checkpoint and export) once the mean return over the last
        # EpisodeReturns.window training episodes reaches this value; None: train to max_frames.
        self.stop_at_return = stop_at_return
        self.stopped_at_target = False
        self.stop = stop or StopFlag()
        self.progress = progress
        self._fixed_port = bool(replay_port)   # the user's port: refused if taken, never replaced
        replay_args = (replay or ReplaySettings()).server_args()
        self._args = (list(run_args), int(num_actors), replay_args, list(learner_args), list(actor_args))
        self._reservation = self._reserve(replay_port)
        self._use_port(self._reservation.port)
        self.returns = EpisodeReturns(self.root_dir)
        self._last_line = 0.0

    def _use_port(self, port: int) -> None:
        """(Re)builds the services' command lines for a replay server on ``port``."""
        run_args, num_actors, replay_args, learner_args, actor_args = self._args
        self.port, self.address = port, f"localhost:{port}"
        cli = [sys.executable, "-m", "pipelines.cli"]
        logs = os.path.join(self.root_dir, "logs")
        self.replay = Service("replay", cli + ["replay", "--port", str(self.port)] + replay_args,
                              os.path.join(logs, "replay.log"))
        common = run_args + ["--replay-address", self.address, "--root-dir", self.root_dir]
        self.learner = Service("learner", cli + ["learner"] + common + ["--max-frames", str(self.max_frames)]
                               + learner_args, os.path.join(logs, "learner.log"))
        self.actors = [Service(f"actor-{i}", cli + ["actor"] + common + ["--actor-id", str(i)]
                               + actor_args, os.path.join(logs, f"actor-{i}.log"))
                       for i in range(num_actors)]

    @property
    def services(self) -> List[Service]:
        return [self.replay, self.learner] + self.actors

    def _state(self) -> dict:
        """The record of ``ROOT/launcher.json``."""
        return {"replay_address": self.address, "launcher_pid": os.getpid(),
                "services": {s.name: {"pid": s.pid, "restarts": s.restarts} for s in self.services}}

    def _write_state(self) -> dict:
        """Writes :meth:`_state` to ``ROOT/launcher.json``; returns it."""
        state = self._state()
        write_json_atomic(os.path.join(self.root_dir, LAUNCHER_FILE), state)
        return state

    @staticmethod
    def _reserve(replay_port: Optional[int]) -> PortReservation:
        """This machine's lock on the replay server's port (:func:`reserve_port`)."""
        return reserve_port(replay_port)

    def _start_replay(self) -> None:
        """Starts the replay server and waits until it answers. If it exits because its port
        was taken meanwhile (by a process outside the reservation), it is started again on a
        newly reserved port (up to PORT_ATTEMPTS times; not for a --replay-port the user chose)."""
        tried = []
        while True:
            self.replay.start()
            self._write_state()
            try:
                return self._wait_for_replay()
            except RuntimeError as e:
                if (self._fixed_port or PORT_IN_USE not in str(e).lower()
                        or len(tried) + 1 >= PORT_ATTEMPTS):
                    raise
            tried.append(self.port)
            log(f"train: port {self.port} was taken before the replay server bound it; trying another port")
            self._reservation.release()
            self._reservation = reserve_port(avoid=tried)
            self._use_port(self._reservation.port)

    def _wait_for_replay(self, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stop.is_set():
            if self.replay.poll() is not None:
                raise RuntimeError(f"the replay server exited with code {self.replay.poll()}:\n"
                                   f"{self.replay.tail()}")
            if replay_answers(self.address):
                return
            time.sleep(0.5)
        if not self.stop.is_set():
            raise RuntimeError(f"the replay server did not answer on {self.address} within {timeout:.0f}s")

    def run(self) -> int:
        os.makedirs(self.root_dir, exist_ok=True)
        log(f"train: root {self.root_dir}, replay on {self.address}, {len(self.actors)} actor(s); "
            f"logs in {os.path.join(self.root_dir, 'logs')}")
        try:
            self._start_replay()
            for s in [self.learner] + self.actors:
                if not self.stop.is_set():   # (stopped while replay started: nothing else to start)
                    s.start()
            self._write_state()
            while not self.stop.wait(POLL_SECS):
                if self._supervise():
                    break
                self._show_progress()
                if self._target_reached():
                    break
        finally:
            self._shutdown()
        self._show_progress(final=True)
        if self.stop.signal_name:   # Ctrl-C / SIGTERM: the caller's last line says what was kept
            return 128 + signal.Signals[self.stop.signal_name].value
        code = self.learner.poll() or 0
        if code == 0:
            log("train: done. " + self._what_exists())
        return code

    def _target_reached(self) -> bool:
        """True (once) when ``stop_at_return`` is set and the mean return over a full window of
        training episodes has reached it."""
        if self.stop_at_return is None:
            return False
        self.returns.update()
        r = self.returns
        if len(r.returns) < r.window or r.mean < self.stop_at_return:
            return False
        self.stopped_at_target = True
        log(f"train: mean return {r.mean:.3f} over the last {r.window} training episodes reached the "
            f"target {self.stop_at_return:.3f}: stopping (final checkpoint and export)")
        return True

    def _what_exists(self) -> str:
        """Where the run's results are: only the files that exist (a run stopped before its
        first update has no export)."""
        export = os.path.join(self.root_dir, "export", "latest")
        checkpoints = os.path.join(self.root_dir, "checkpoints")
        parts = []
        if os.path.exists(os.path.join(export, "saved_model.pb")):
            parts.append(f"SavedModel: {export}")
        if os.path.exists(os.path.join(checkpoints, "checkpoint")):
            parts.append(f"checkpoints: {checkpoints}")
        if os.path.isdir(os.path.join(self.root_dir, "summaries")):
            parts.append(f"TensorBoard: tensorboard --logdir {os.path.join(self.root_dir, 'summaries')}")
        if os.path.exists(os.path.join(export, "saved_model.pb")):
            parts.append(f"look inside: s3ta analyze --model {export} --env ENV_ID --steps 300 --out DIR")
        return "; ".join(parts) if parts else "nothing was saved (the learner stopped before it started)"

    def kept(self) -> str:
        """What a stopped run kept: its newest checkpoint (with its train step; the same command
        resumes from it) and SavedModel, or that nothing was saved."""
        from s3ta_tf.checkpoints import newest_readable_checkpoint

        try:   # (a damaged newer one was named when the run started)
            checkpoint = newest_readable_checkpoint(os.path.join(self.root_dir, "checkpoints"), say=lambda _: None)
        except ValueError:
            checkpoint = None
        export = os.path.join(self.root_dir, "export", "latest")
        parts = []
        if checkpoint:
            step = int(checkpoint.rsplit("-", 1)[1])
            parts.append(f"checkpoint {checkpoint} (train step {step}"
                         + ("; the initial weights, no update yet" if step == 0 else "") + ")")
        if os.path.exists(os.path.join(export, "saved_model.pb")):
            parts.append(f"SavedModel {export}")
        if not parts:
            return "nothing was saved (no checkpoint, no export)"
        return "kept: " + ", ".join(parts) + "; the same command resumes the run"

    def _supervise(self) -> bool:
        """Restarts exited services; returns True when the run is finished."""
        now = time.time()
        for s in self.services:
            code = s.poll()
            if code is None or s.restart_at is not None and now < s.restart_at:
                continue
            if s is self.learner and code == 0:
                log("train: the learner finished")
                return True
            if s.restart_at is None and code == USAGE_ERROR:
                raise RuntimeError(f"{s.name} rejected its arguments (exit code {code}):\n{s.tail(3)}")
            if s.restart_at is None:  # just noticed
                count_exit(s, quick=now - s.started_at < QUICK_FAILURE_SECS)
                log(f"train: {s.name} exited with code {code}; restarting in {RESTART_DELAY_SECS:.0f}s. "
                    f"Log tail:\n{s.tail(5)}")
                s.restart_at = now + RESTART_DELAY_SECS
                continue
            s.restarts += 1
            s.start()
            log(f"train: restarted {s.name} (pid {s.pid}, restart {s.restarts})")
            self._write_state()
        return False

    def _show_progress(self, final: bool = False) -> None:
        now = time.time()
        interactive = sys.stdout.isatty()
        if not final and now - self._last_line < (1.0 if interactive else 10.0):
            return
        self._last_line = now
        self.returns.update()
        p = read_progress(self.root_dir)
        frames, fps = p.frames, p.frames_per_second or 0.0
        pct = 100.0 * frames / self.max_frames
        eta = _duration((self.max_frames - frames) / fps) if fps > 0 else "?"
        mean = f"{self.returns.mean:.2f}" if self.returns.mean is not None else "-"
        alive = sum(a.pid is not None and a.poll() is None for a in self.actors)   # (started, not exited)
        hns = p.capped_mean_hns   # multi-level Atari headline
        line = (f"frames {frames:,}/{self.max_frames:,} ({pct:5.1f}%) | {fps:,.0f} frames/s | "
                f"mean return {mean} ({self.returns.count} episodes) | "
                + (f"capped mean HNS {hns:.1f}% | " if hns is not None else "")
                + f"step {p.train_step} | ETA {eta} | actors {alive}/{len(self.actors)}")
        if interactive:
            print("\r" + line.ljust(120), end="\n" if final else "", flush=True)
        else:
            print(line, flush=True)

    def _shutdown(self) -> None:
        if self.stop.is_set():
            log(f"train: stopping ({self.stop.signal_name}); the learner checkpoints first")
        for s in self.actors:
            s.signal(signal.SIGTERM)
        self.learner.signal(signal.SIGTERM)
        for s in self.actors + [self.learner]:
            s.wait(STOP_TIMEOUT_SECS)
        self.replay.signal(signal.SIGTERM)
        self.replay.wait(STOP_TIMEOUT_SECS)
        self._write_state()
        self._reservation.release()
