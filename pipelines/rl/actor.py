"""The actor service: K environments in G groups (:mod:`agents.environments.groups`), one batched
policy call per group step. For ALE ids a group is ALE's C++ vector environment, which steps
in the background between ``send`` and ``recv``; with G = 2 (``train.actor_groups``) one
group's emulators run while the other group's results are written and its actions computed.

The actor starts acting only once the learner has pushed its first variables (so every
trajectory carries a real policy version), pulls the latest variables every
``variable_pull_interval`` steps, and again right after a write that had to wait for room in
the queue (the learner has trained meanwhile; acting on with the variables from before the
wait would only add policy lag).

Per group step: one ``tf.function`` policy call on the group's ``[B, H, W, 3]`` batch, one
step of each of its environments, and one appended step per environment writer (see
:mod:`agents.impala.replay`); each record carries the policy version that chose its action. Every ``variable_pull_interval`` steps the actor pulls the
learner's latest variables. Finished episodes are reported to stdout and, when a root
directory is given, appended to ``ROOT/actors/episodes-<id>.jsonl``; ``ROOT/actors/
actor-<id>.json`` holds the actor's frame count and frames/s.

If the replay server goes away, the actor keeps its environments and policy state, backs off,
reconnects and starts new trajectories at the current step.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from agents.impala.policies import ActorCriticPolicy
from pipelines.rl.lifecycle import Backoff, StopFlag, log
from agents.impala.builder import RunSpec
from s3ta_tf.atomic_io import write_json_atomic
from agents.impala.replay import WindowWriter, as_numpy_state, step_records
from agents.impala.variables import assign_variables, pull_variables

FLUSH_TIMEOUT_MS = 1000
BLOCKED_SECS = 0.05  # a write that waited longer than this was held back by a full queue
FIRST_VARIABLES_LOG_SECS = 10.0
STATUS_INTERVAL_SECS = 2.0


class EpisodeLog:
    """Reports finished episodes (stdout and a JSONL file) and the actor's frame rate."""

    def __init__(self, actor_id: int, root_dir: Optional[str]):
        self.actor_id = actor_id
        self.dir = os.path.join(root_dir, "actors") if root_dir else None
        if self.dir:
            os.makedirs(self.dir, exist_ok=True)
        self.episodes = 0
        self._start = time.time()
        self._last_status = 0.0

    def episode(self, env_index: int, episode_return: float, episode_frames: Optional[int],
                total_frames: int) -> None:
        self.episodes += 1
        record = {"time": time.time(), "actor": self.actor_id, "env": env_index,
                  "return": float(episode_return), "frames": episode_frames,
                  "actor_frames": int(total_frames)}
        log(f"actor {self.actor_id}: episode {self.episodes} return {episode_return:.2f} "
            f"(env {env_index}, {total_frames} frames)")
        if self.dir:
            with open(os.path.join(self.dir, f"episodes-{self.actor_id}.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")

    def status(self, frames: int, version: int, force: bool = False, split=None) -> None:
        now = time.time()
        if not self.dir or (not force and now - self._last_status < STATUS_INTERVAL_SECS):
            return
        self._last_status = now
        write_json_atomic(os.path.join(self.dir, f"actor-{self.actor_id}.json"), {
            "time": now, "actor": self.actor_id, "frames": int(frames), "episodes": self.episodes,
            "frames_per_second": frames / max(now - self._start, 1e-9), "policy_version": version,
            **({"time_split": split.fractions()} if split is not None else {})})


class ReplayConnection:
    """A Reverb client and one :class:`WindowWriter` per environment; reconnects on failure."""

    def __init__(self, address: str, num_envs: int, unroll_length: int, stop: StopFlag):
        self.address, self.num_envs, self.unroll_length, self.stop = address, num_envs, unroll_length, stop
        self.client, self.writers = None, []
        self.backoff = Backoff()

    def connect(self) -> bool:
        """(Re)connects, retrying with back-off until it works or ``stop`` is set."""
        import reverb

        self.close()
        while not self.stop.is_set():
            try:
                client = reverb.Client(self.address)
                client.server_info(timeout=5)
                self.client = client
                self.writers = [WindowWriter.open(client, self.unroll_length) for _ in range(self.num_envs)]
                if self.backoff.failures:
                    log(f"actor: reconnected to replay at {self.address}")
                self.backoff.reset()
                return True
            except Exception as e:  # noqa: BLE001 (any gRPC/Reverb failure: retry)
                self.backoff.wait(self.stop, f"connecting to replay at {self.address}", e)
        return False

    def flush(self, writer: WindowWriter) -> bool:
        """Waits for the item just created to be accepted (blocks while the queue is full).
        Returns True if it had to wait (the learner moved on meanwhile: pull variables)."""
        import reverb

        start = time.monotonic()
        while not self.stop.is_set():
            try:
                writer.flush(FLUSH_TIMEOUT_MS)
                break
            except reverb.errors.DeadlineExceededError:
                self.client.server_info(timeout=5)  # raises if the server is gone
        return time.monotonic() - start > BLOCKED_SECS

    def close(self) -> None:
        for w in self.writers:
            w.close()
        self.writers = []


def make_policy_step(policy: ActorCriticPolicy):
    @tf.function(autograph=False)
    def policy_step(time_step, policy_state):
        return policy.action(time_step, policy_state)
    return policy_step


def _pull(replay: ReplayConnection, network, version: int) -> int:
    """Pulls the learner's latest variables if there are any; returns their version."""
    try:
        pulled = pull_variables(replay.client)
    except Exception as e:  # noqa: BLE001 (the replay server failed: reconnect, keep acting)
        replay.backoff.wait(replay.stop, "pulling variables", e)
        replay.connect()
        return version
    if pulled is None:
        return version
    new_version, values = pulled
    if new_version != version:
        assign_variables(network.variables, values)
    return new_version


def _wait_for_first_variables(replay: ReplayConnection, network, stop: StopFlag, actor_id: int) -> int:
    """Blocks until the learner has pushed variables and takes them, so that the first
    trajectories are acted by a real, versioned policy. Returns the version (-1 if stopped)."""
    waited = time.monotonic()
    version = -1
    while version < 0 and not stop.is_set():
        version = _pull(replay, network, -1)
        if version < 0:
            if time.monotonic() - waited > FIRST_VARIABLES_LOG_SECS:
                log(f"actor {actor_id}: waiting for the learner's first variables")
                waited = time.monotonic()
            stop.wait(0.2)
    return version


class TimeSplit:
    """Wall time of the actor's loop by what it was doing: waiting for the emulator, the policy
    call, writing to replay (``replay_blocked``: the part of it spent waiting for room in the
    queue), pulling variables, and the rest (bookkeeping)."""

    PARTS = ("emulation", "inference", "writing", "replay_blocked", "variables")

    def __init__(self):
        self.seconds = dict.fromkeys(self.PARTS, 0.0)
        self._start = time.perf_counter()

    def add(self, part: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[part] += now - since
        return now

    def fractions(self) -> dict:
        total = max(time.perf_counter() - self._start, 1e-9)
        split = {k: v / total for k, v in self.seconds.items()}
        split["writing"] -= split["replay_blocked"]
        split["other"] = max(0.0, 1.0 - sum(v for k, v in split.items()))
        return split


def make_groups(spec: RunSpec, actor_id: int, num_envs: int, level: int) -> list:
    """The actor's environments in groups (see :mod:`agents.environments.groups`): with ALE's
    vector environment, ``train.actor_groups`` groups stepped in the background while the other
    groups act; otherwise one group of per-environment wrappers."""
    from agents.environments import AtariVectorGroup, PyEnvGroup, uses_vector

    t, env_id = spec.train, spec.levels[level]
    seeds = [spec.environment_seed(actor_id, j) for j in range(num_envs)]
    if not uses_vector(t.actor_engine, env_id, t.max_pool_frames):
        return [PyEnvGroup([spec.make_environment(seed, level) for seed in seeds])]
    settings = spec.environment_settings()
    settings.pop("max_pool_frames")   # (the vector environment always takes the maximum)
    parts = np.array_split(np.asarray(seeds), min(t.actor_groups, num_envs))
    return [AtariVectorGroup(env_id, list(part), spec.agent.observation_shape, **settings) for part in parts]


@dataclasses.dataclass
class GroupState:
    """What the actor holds for one group between its steps."""
    group: object
    offset: int                      # index of the group's first environment in the actor
    time_step: object = None
    policy_state: object = None
    step: object = None              # the policy step taken from ``time_step`` (its action sent)
    version: int = -1                # the policy version that took ``step``
    running_return: np.ndarray = None


class Actor:
    """K environments in G groups, one batched policy call per group step, one replay writer
    per environment. See the module docstring for the protocol with the learner."""

    def __init__(self, spec: RunSpec, actor_id: int, replay_address: str, stop: StopFlag,
                 root_dir: Optional[str] = None, num_envs: Optional[int] = None):
        self.spec, self.actor_id, self.stop = spec, actor_id, stop
        num_envs = num_envs or spec.train.envs_per_actor
        self.level = spec.actor_level(actor_id)
        groups = make_groups(spec, actor_id, num_envs, self.level)
        offsets = np.cumsum([0] + [g.num_envs for g in groups])
        self.groups = [GroupState(g, int(o)) for g, o in zip(groups, offsets)]
        self.network = spec.build_network(groups[0].num_actions)
        self.policy = ActorCriticPolicy(self._time_step_spec(), tensor_spec.BoundedTensorSpec(
            (), tf.int32, 0, groups[0].num_actions - 1), self.network)
        self.policy_step = make_policy_step(self.policy)
        self.episodes = EpisodeLog(actor_id, root_dir)
        self.replay = ReplayConnection(replay_address, num_envs, spec.train.unroll_length, stop)
        self.split, self.version, self.steps = TimeSplit(), -1, 0
        log(f"actor {actor_id}: {num_envs} x {spec.levels[self.level]} ({groups[0].num_actions} actions"
            + (f"; level {self.level} of {len(spec.levels)}" if len(spec.levels) > 1 else "")
            + f"), {len(groups)} group(s) of {type(groups[0]).__name__}, {spec.variant} agent, "
              f"replay at {replay_address}")

    def _time_step_spec(self):
        shape = tuple(self.spec.agent.observation_shape)
        return ts.time_step_spec(tensor_spec.BoundedTensorSpec(shape, tf.uint8, 0, 255, "observation"))

    @property
    def frames(self) -> int:
        return sum(g.group.frame_count for g in self.groups)

    def run(self, max_steps: Optional[int] = None) -> int:
        """Acts until ``stop`` is set (or every group has taken ``max_steps`` steps)."""
        try:
            if not self.replay.connect():
                return 0
            self.version = _wait_for_first_variables(self.replay, self.network, self.stop, self.actor_id)
            for g in self.groups:
                self._start_group(g)
            while not self.stop.is_set() and (max_steps is None or self.steps < max_steps):
                for g in self.groups:
                    self._group_step(g)
                self.steps += 1
                if self.steps % self.spec.train.variable_pull_interval == 0:
                    self._pull()
                self.episodes.status(self.frames, self.version, split=self.split)
        finally:
            self.episodes.status(self.frames, self.version, force=True, split=self.split)
            self.replay.close()
            for g in self.groups:
                g.group.close()
            log(f"actor {self.actor_id}: stopped after {self.steps} steps ({self.stop.signal_name or 'done'})")
        return 0

    def _start_group(self, g: GroupState) -> None:
        g.time_step = g.group.reset()
        g.policy_state = self.policy.get_initial_state(g.group.num_envs)
        g.running_return = np.zeros(g.group.num_envs, np.float32)
        self._act(g)

    def _act(self, g: GroupState) -> None:
        """Counts the returns of ``g``'s current time step, computes its actions and sends them."""
        g.running_return = np.where(g.time_step.step_type == ts.StepType.FIRST, 0.0,
                                    g.running_return) + g.time_step.reward
        for j in np.flatnonzero(g.time_step.step_type == ts.StepType.LAST):
            self.episodes.episode(g.offset + int(j), float(g.running_return[j]),
                                  int(g.group.episode_frames[j]), self.frames)
        start, g.version = time.perf_counter(), self.version
        g.step = self.policy_step(tf.nest.map_structure(tf.convert_to_tensor, g.time_step), g.policy_state)
        action = g.step.action.numpy()
        start = self.split.add("inference", start)
        g.group.send(action)
        self.split.add("emulation", start)

    def _group_step(self, g: GroupState) -> None:
        """Receives ``g``'s step, writes it to replay, and sends ``g``'s next actions."""
        start = time.perf_counter()
        next_time_step, stepped = g.group.recv()
        start = self.split.add("emulation", start)
        blocked = self._write(g, next_time_step, stepped)
        self.split.add("writing", start)
        if blocked:   # the learner trained while this write waited: act with its new variables
            self._pull()
        g.time_step, g.policy_state = next_time_step, g.step.state
        self._act(g)

    def _write(self, g: GroupState, next_time_step, stepped) -> bool:
        """Appends the group's step to each environment's writer; True if a write had to wait
        for room in the queue."""
        info = tf.nest.map_structure(np.asarray, g.step.info)
        records = step_records(g.time_step, info, g.step.action.numpy(), next_time_step, stepped, g.version,
                               g.running_return, self.level)
        blocked = False
        try:
            for j, record in enumerate(records):
                writer = self.replay.writers[g.offset + j]
                state = as_numpy_state(info["network_state"], j) if writer.begins_window else None
                if writer.append(record, state):
                    start = time.perf_counter()
                    blocked = self.replay.flush(writer) or blocked
                    self.split.add("replay_blocked", start)
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001 (the replay server failed: reconnect)
            self.replay.backoff.wait(self.stop, "writing to replay", e)
            self.replay.connect()
        return blocked

    def _pull(self) -> None:
        start = time.perf_counter()
        self.version = _pull(self.replay, self.network, self.version)
        self.split.add("variables", start)


def run_actor(spec: RunSpec, actor_id: int, replay_address: str, stop: StopFlag,
              root_dir: Optional[str] = None, num_envs: Optional[int] = None,
              max_steps: Optional[int] = None) -> int:
    """Runs an :class:`Actor` until ``stop`` is set (or ``max_steps`` steps). Returns an exit code."""
    return Actor(spec, actor_id, replay_address, stop, root_dir, num_envs).run(max_steps)
