"""The actor service: K environments stepped in lock-step with one batched policy call.

The actor starts acting only once the learner has pushed its first variables (so every
trajectory carries a real policy version), pulls the latest variables every
``variable_pull_interval`` steps, and again right after a write that had to wait for room in
the queue (the learner has trained meanwhile; acting on with the variables from before the
wait would only add policy lag).

Per agent step: one ``tf.function`` policy call on the ``[K, H, W, 3]`` batch, one step of
each environment, and one appended step per environment writer (see
:mod:`agents.impala.replay`). Every ``variable_pull_interval`` steps the actor pulls the
learner's latest variables. Finished episodes are reported to stdout and, when a root
directory is given, appended to ``ROOT/actors/episodes-<id>.jsonl``; ``ROOT/actors/
actor-<id>.json`` holds the actor's frame count and frames/s.

If the replay server goes away, the actor keeps its environments and policy state, backs off,
reconnects and starts new trajectories at the current step.
"""
from __future__ import annotations

import json
import os
import time
from typing import Optional

import numpy as np
import tensorflow as tf
from tf_agents.environments import batched_py_environment
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from agents.impala.policies import ActorCriticPolicy
from pipelines.rl.lifecycle import Backoff, StopFlag, log
from agents.impala.builder import RunSpec
from s3ta_tf.atomic_io import write_json_atomic
from agents.impala.replay import WindowWriter, as_numpy_state
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

    def status(self, frames: int, version: int, force: bool = False) -> None:
        now = time.time()
        if not self.dir or (not force and now - self._last_status < STATUS_INTERVAL_SECS):
            return
        self._last_status = now
        write_json_atomic(os.path.join(self.dir, f"actor-{self.actor_id}.json"), {
            "time": now, "actor": self.actor_id, "frames": int(frames), "episodes": self.episodes,
            "frames_per_second": frames / max(now - self._start, 1e-9), "policy_version": version})


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


def run_actor(spec: RunSpec, actor_id: int, replay_address: str, stop: StopFlag,
              root_dir: Optional[str] = None, num_envs: Optional[int] = None,
              max_steps: Optional[int] = None) -> int:
    """Runs until ``stop`` is set (or ``max_steps`` agent steps). Returns an exit code."""
    num_envs = num_envs or spec.train.envs_per_actor
    level = spec.actor_level(actor_id)
    envs = [spec.make_environment(spec.environment_seed(actor_id, j), level) for j in range(num_envs)]
    batched = batched_py_environment.BatchedPyEnvironment(envs, multithreading=False)
    network = spec.build_network(envs[0].num_actions)
    time_step_spec = tensor_spec.from_spec(batched.time_step_spec())
    policy = ActorCriticPolicy(time_step_spec, tensor_spec.from_spec(batched.action_spec()), network)
    policy_step = make_policy_step(policy)
    episodes = EpisodeLog(actor_id, root_dir)
    replay = ReplayConnection(replay_address, num_envs, spec.train.unroll_length, stop)
    log(f"actor {actor_id}: {num_envs} x {spec.levels[level]} ({envs[0].num_actions} actions"
        + (f"; level {level} of {len(spec.levels)}" if len(spec.levels) > 1 else "")
        + f"), {spec.variant} agent, replay at {replay_address}")

    version = -1
    time_step = batched.reset()
    policy_state = policy.get_initial_state(num_envs)
    running_return = np.zeros(num_envs, np.float32)
    steps = 0
    try:
        if not replay.connect():
            return 0
        version = _wait_for_first_variables(replay, network, stop, actor_id)
        while not stop.is_set() and (max_steps is None or steps < max_steps):
            if steps and steps % spec.train.variable_pull_interval == 0:
                version = _pull(replay, network, version)
            running_return = np.where(time_step.step_type == ts.StepType.FIRST, 0.0,
                                      running_return) + time_step.reward
            for j in np.flatnonzero(time_step.step_type == ts.StepType.LAST):
                episodes.episode(int(j), float(running_return[j]), envs[j].episode_frames,
                                 sum(e.frame_count for e in envs))
            step = policy_step(tf.nest.map_structure(tf.convert_to_tensor, time_step), policy_state)
            action = step.action.numpy()
            frames_before = [e.frame_count for e in envs]
            next_time_step = batched.step(action)
            stepped = [e.frame_count - f for e, f in zip(envs, frames_before)]
            info = tf.nest.map_structure(np.asarray, step.info)
            records = [{
                "step_type": np.int32(time_step.step_type[j]),
                "observation": time_step.observation[j],
                "prev_action": np.int32(info["prev_action"][j]),
                "prev_reward": np.float32(info["prev_reward"][j]),
                "action": np.int32(action[j]),
                "behaviour_logits": info["behaviour_logits"][j],
                "reward": np.float32(next_time_step.reward[j]),
                "discount": np.float32(next_time_step.discount[j]),
                "policy_version": np.int64(version),
                "episode_return": np.float32(running_return[j]),
                "frames": np.int32(stepped[j]),
                "level": np.int32(level),
            } for j in range(num_envs)]
            blocked = False
            try:
                for j, writer in enumerate(replay.writers):
                    if writer.append(records[j], as_numpy_state(info["network_state"], j)):
                        blocked = replay.flush(writer) or blocked
            except ValueError:
                raise
            except Exception as e:  # noqa: BLE001 (the replay server failed: reconnect)
                replay.backoff.wait(stop, "writing to replay", e)
                replay.connect()
            if blocked:  # the learner trained while this write waited: act with its new variables
                version = _pull(replay, network, version)
            time_step, policy_state = next_time_step, step.state
            steps += 1
            episodes.status(sum(e.frame_count for e in envs), version)
    finally:
        episodes.status(sum(e.frame_count for e in envs), version, force=True)
        replay.close()
        batched.close()
        log(f"actor {actor_id}: stopped after {steps} steps ({stop.signal_name or 'done'})")
    return 0
