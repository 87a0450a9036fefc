"""Groups of environments an actor steps as one batch, in two kinds with one interface.

An actor splits its K environments into G groups and keeps them all busy (Sample Factory's
double-buffered sampling): it sends group A its actions, and while A's emulators step it reads
group B's results, writes them to replay and computes B's next actions. Each group:

    reset()        → TimeStep [B]            the first time step of every environment
    send(actions)  (int32 [B])               starts a step; returns at once when the group
                                             steps in the background
    recv()         → (TimeStep [B], frames [B])  the step's result and the emulator frames
                                             each environment stepped for it
    frame_count    emulator frames stepped by the group since it was made

Time steps follow the TF-Agents convention of :mod:`agents.environments.adapter`: observations
uint8 ``[B, H, W, 3]``, rewards float32 (raw), discount float32 (0 at termination, 1 otherwise,
truncation included), step_type int32 FIRST / MID / LAST; the step after a LAST begins a new
episode (its action is ignored and its frames are the reset's no-ops).

* :class:`AtariVectorGroup` — ALE's own batched emulator (``ale_py.vector_env.AtariVectorEnv``):
  C++ threads step the group off the GIL, with the same action repeat, max over the last two
  frames, minimal action set, sticky actions and episode cap as
  :func:`agents.environments.factory.make_environment`, and
  the same block-maximum shrink to the model's input (done here on the whole batch: ALE's own
  resize averages, and a Pong ball shrunk that way fades to a faint dot). Two differences
  from the per-environment path, both in how an episode starts: the random no-ops at a reset
  are counted in emulator frames (uniform in ``[0, noop_max × frame_skip)``, the same span as
  ``noop_max`` no-op agent steps) and the first observation after them is one frame (no max);
  and ALE seeds its emulator from the seed directly. With ``noop_max = 0`` and no sticky
  actions the two paths produce the same observations, rewards and episode ends for the same
  actions (tests/test_actor_groups.py).
* :class:`PyEnvGroup` — the per-environment path for every other id (MiniGrid, any gymnasium
  env) or when asked: :class:`GymnasiumEnvironment` s stepped one after the other in
  ``recv()`` (``send`` only stores the actions), so nothing overlaps but the interface is the
  same.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
from tf_agents.trajectories import time_step as ts

from agents.environments import registry
from agents.environments.resize import batch_block_max, normalise_shape

FIRST, MID, LAST = (np.int32(ts.StepType.FIRST), np.int32(ts.StepType.MID), np.int32(ts.StepType.LAST))
SEED_MODULUS = 2 ** 31 - 1   # ALE takes a non-negative int32 seed


def _time_step(step_type, reward, discount, observation) -> ts.TimeStep:
    return ts.TimeStep(step_type=step_type, reward=reward, discount=discount, observation=observation)


class AtariVectorGroup:
    """``num_envs`` ALE environments of one game stepped by ALE's C++ vector environment.

    Args:
      env_id: an ALE v5 id (``ALE/Pong-v5``).
      seeds: one seed per environment (the first reset; later resets continue each stream).
      observation_shape: ``(H, W, 3)`` the model sees (block-maximum shrink from 210×160).
      frame_skip, noop_max, sticky_actions, full_action_space, max_episode_frames: as in
        :func:`agents.environments.factory.make_environment` (None: the ALE defaults).
      num_threads: emulator threads of this group (0: one per environment, capped by ALE).
    """

    def __init__(self, env_id: str, seeds: Sequence[int], observation_shape: Sequence[int], *,
                 frame_skip=None, noop_max=None, sticky_actions: bool = False,
                 full_action_space: bool = False, max_episode_frames=None, num_threads: int = 1):
        from ale_py.vector_env import AtariVectorEnv

        frame_skip = registry.ALE_FRAME_SKIP if frame_skip is None else int(frame_skip)
        noop_max = registry.ALE_NOOP_MAX if noop_max is None else int(noop_max)
        self.num_envs, self.frames_per_step = len(seeds), frame_skip
        self.observation_shape = normalise_shape(observation_shape)
        self._env = AtariVectorEnv(
            registry.ale_game(env_id), self.num_envs, num_threads=num_threads, img_height=210, img_width=160,
            grayscale=False, stack_num=1, frameskip=frame_skip, maxpool=True,
            noop_max=noop_max * frame_skip, reward_clipping=False, use_fire_reset=False, episodic_life=False,
            repeat_action_probability=registry.STICKY_ACTION_PROBABILITY if sticky_actions else 0.0,
            full_action_space=full_action_space,
            max_num_frames_per_episode=max_episode_frames or registry.ALE_MAX_EPISODE_FRAMES)
        self.num_actions = int(self._env.single_action_space.n)
        self._seeds = np.asarray([int(s) % SEED_MODULUS for s in seeds], np.int64)
        self._last = np.zeros(self.num_envs, bool)        # the previous step ended an episode
        self._episode_frames = np.zeros(self.num_envs, np.int64)
        self.frame_count = 0
        self.raw_frames = None                            # [B, 210, 160, 3] of the last result

    @property
    def episode_frames(self) -> np.ndarray:
        """Emulator frames of each environment's current (or just finished) episode."""
        return self._episode_frames

    def reset(self) -> ts.TimeStep:
        frames, info = self._env.reset(seed=self._seeds)
        self._last[:] = False
        self._count(info["episode_frame_number"], np.ones(self.num_envs, bool))
        n = self.num_envs
        return _time_step(np.full(n, FIRST), np.zeros(n, np.float32), np.ones(n, np.float32),
                          self._observe(frames))

    def send(self, actions) -> None:
        self._env.send(np.asarray(actions, np.int32))

    def recv(self):
        frames, reward, terminated, truncated, info = self._env.recv()
        if not np.array_equal(info["env_id"], np.arange(self.num_envs)):
            raise RuntimeError(f"ALE returned environments {info['env_id']} out of order")
        first = self._last.copy()
        stepped = self._count(info["episode_frame_number"], first)
        step_type = np.where(first, FIRST, np.where(terminated | truncated, LAST, MID)).astype(np.int32)
        self._last = (terminated | truncated) & ~first
        discount = np.where(terminated & ~first, 0.0, 1.0).astype(np.float32)
        reward = np.where(first, 0.0, reward).astype(np.float32)
        return _time_step(step_type, reward, discount, self._observe(frames)), stepped

    def _count(self, episode_frame_number, first) -> np.ndarray:
        """Frames stepped per environment: the episode counter's rise, or (at a new episode) its
        value, the reset's no-op frames."""
        now = np.asarray(episode_frame_number, np.int64)
        stepped = np.where(first, now, now - self._episode_frames).astype(np.int32)
        self._episode_frames = now
        self.frame_count += int(stepped.sum())
        return stepped

    def _observe(self, frames) -> np.ndarray:
        self.raw_frames = frames[:, 0]
        return batch_block_max(self.raw_frames, self.observation_shape)

    def close(self) -> None:
        self._env.close()


class PyEnvGroup:
    """:class:`agents.environments.adapter.GymnasiumEnvironment` s stepped in turn, as a group."""

    def __init__(self, envs: List):
        from tf_agents.environments import batched_py_environment

        self.envs, self.num_envs = envs, len(envs)
        self.num_actions = envs[0].num_actions
        self._batched = batched_py_environment.BatchedPyEnvironment(envs, multithreading=False)
        self._actions = None

    @property
    def frame_count(self) -> int:
        return sum(e.frame_count for e in self.envs)

    @property
    def episode_frames(self) -> np.ndarray:
        return np.asarray([e.episode_frames for e in self.envs], np.int64)

    def reset(self) -> ts.TimeStep:
        return self._batched.reset()

    def send(self, actions) -> None:
        self._actions = np.asarray(actions, np.int32)

    def recv(self):
        before = [e.frame_count for e in self.envs]
        time_step = self._batched.step(self._actions)
        return time_step, np.asarray([e.frame_count - b for e, b in zip(self.envs, before)], np.int32)

    def close(self) -> None:
        self._batched.close()


def uses_vector(engine: str, env_id: str, max_pool_frames: bool = True) -> bool:
    """Whether ``engine`` ("auto", "vector" or "python") steps ``env_id`` with ALE's vector
    environment: "auto" does for ALE ids (with the max over the last two frames)."""
    from agents.impala.config import ACTOR_ENGINES

    if engine not in ACTOR_ENGINES:
        raise ValueError(f"train.actor_engine must be one of {ACTOR_ENGINES}, got {engine!r}")
    ale = registry.is_ale_id(env_id)
    if engine == "vector" and not (ale and max_pool_frames):
        raise ValueError(f"train.actor_engine='vector' steps ALE ids ('ALE/<Game>-v5') with "
                         f"train.max_pool_frames=true; '{env_id}' needs actor_engine='python' or 'auto'")
    return engine == "vector" or (engine == "auto" and ale and max_pool_frames)
