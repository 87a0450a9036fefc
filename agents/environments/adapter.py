"""Gymnasium environments as TF-Agents ``PyEnvironment``s (SPEC §2 "environment", "frames").

tf-agents 0.19 only wraps the old ``gym`` API, so :class:`GymnasiumEnvironment` adapts a
gymnasium env directly and keeps its two kinds of episode end apart:

    terminated → ``ts.termination``  (StepType.LAST, discount 0: nothing to bootstrap)
    truncated  → ``ts.truncation``   (StepType.LAST, discount 1: the learner bootstraps V(x_T))

The step after a LAST starts a new episode (the action is ignored), as TF-Agents expects.
Observations are uint8 pixels ``[H, W, 3]``; actions are int32 scalars in ``[0, num_actions)``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from agents.environments.frame_counter import FrameCounter, find_wrapper
from agents.environments.resize import RESIZE_METHODS, normalise_shape, resize_frame


class GymnasiumEnvironment(py_environment.PyEnvironment):
    """A gymnasium env with uint8 ``[H, W, 3]`` observations and discrete actions.

    Args:
      env: the gymnasium env. Frames are counted by the :class:`FrameCounter` in its wrapper
        chain (:func:`agents.environments.factory.make_environment` puts one next to the base
        env); without one, a counter charging ``frames_per_step`` per agent step is added on top.
      seed: seeds the first reset (and through it the env's RNGs); later resets continue
        the same random streams, so a seed fixes the whole run.
      observation_shape: resize observations to ``(H, W, 3)``; None keeps the native size.
      name: shown in errors (defaults to the env's registered id).
      frames_per_step: emulator frames per agent step (the action repeat), as reported.

    Time steps: observation uint8 ``[H, W, 3]``, reward float32 ``[]`` (raw, unclipped),
    discount float32 ``[]`` (0 at termination, 1 otherwise), step_type int32 ``[]``.
    """

    def __init__(self, env: gym.Env, *, seed: Optional[int] = None,
                 observation_shape: Optional[Sequence[int]] = None, name: Optional[str] = None,
                 frames_per_step: int = 1, resize: str = "bilinear"):
        super().__init__(handle_auto_reset=True)
        self._counter = find_wrapper(env, FrameCounter)
        if self._counter is None:
            env = self._counter = FrameCounter(env, frames_per_step)
        self._env = env
        self._frames_per_step = int(frames_per_step)
        self.name = name or (env.spec.id if env.spec is not None else type(env.unwrapped).__name__)
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8
                and len(space.shape) == 3 and space.shape[2] == 3):
            raise ValueError(
                f"environment '{self.name}' has observation space {space}; expected uint8 "
                f"RGB pixels Box(0, 255, (H, W, 3), uint8)")
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"environment '{self.name}' has action space {env.action_space}; "
                             f"expected Discrete(n)")
        self.native_observation_shape = tuple(space.shape)
        self._shape = (self.native_observation_shape if observation_shape is None
                       else normalise_shape(observation_shape))
        if resize not in RESIZE_METHODS:
            raise ValueError(f"resize must be one of {RESIZE_METHODS}, got {resize!r}")
        self._resize_method = resize
        self._seed = seed
        self._seeded = False
        self._episode_return = 0.0
        self._raw_frame = None
        self._observation_spec = array_spec.BoundedArraySpec(
            self._shape, np.uint8, minimum=0, maximum=255, name="observation")
        self._action_spec = array_spec.BoundedArraySpec(
            (), np.int32, minimum=0, maximum=env.action_space.n - 1, name="action")

    # -- specs
    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    # -- facts
    @property
    def gym_env(self) -> gym.Env:
        return self._env

    @property
    def num_actions(self) -> int:
        return int(self._env.action_space.n)

    @property
    def frames_per_step(self) -> int:
        """Emulator frames per agent step (the action repeat)."""
        return self._frames_per_step

    @property
    def frame_count(self) -> int:
        """Emulator frames stepped since construction (no-ops at reset included)."""
        return self._counter.frame_count

    @property
    def episode_frames(self) -> int:
        """Emulator frames of the current (or just finished) episode."""
        return self._counter.episode_frames

    @property
    def episode_return(self) -> float:
        """Sum of raw rewards of the current (or just finished) episode."""
        return self._episode_return

    def render(self, mode: str = "rgb_array") -> np.ndarray:
        """The last observed frame at its native size (before any resize)."""
        if mode != "rgb_array":
            raise ValueError(f"only mode='rgb_array' is supported, got {mode!r}")
        if self._raw_frame is None:
            raise ValueError("render() called before reset()")
        return self._raw_frame

    def close(self):
        self._env.close()

    # -- stepping
    def _observe(self, frame):
        frame = np.asarray(frame, dtype=np.uint8)
        self._raw_frame = frame
        return frame if frame.shape == self._shape else resize_frame(frame, self._shape, self._resize_method)

    def _reset(self):
        seed = None if self._seeded else self._seed
        self._seeded = True
        frame, _ = self._env.reset(seed=seed)
        self._episode_return = 0.0
        return ts.restart(self._observe(frame))

    def _step(self, action):
        action = np.asarray(action)
        if action.shape != () or not np.issubdtype(action.dtype, np.integer) or \
                not 0 <= int(action) < self.num_actions:
            raise ValueError(f"environment '{self.name}': action must be an integer scalar in "
                             f"[0, {self.num_actions}), got {action!r}")
        frame, reward, terminated, truncated, _ = self._env.step(int(action))
        self._episode_return += float(reward)
        observation, reward = self._observe(frame), np.float32(reward)
        if terminated:
            return ts.termination(observation, reward)
        if truncated:
            return ts.truncation(observation, reward, discount=np.float32(1.0))
        return ts.transition(observation, reward, discount=np.float32(1.0))


def check_observation_shape(env: GymnasiumEnvironment, expected: Sequence[int]) -> None:
    """Raises ValueError unless ``env`` produces observations of shape ``expected``."""
    expected = normalise_shape(expected)
    got = tuple(env.observation_spec().shape)
    if got != expected:
        raise ValueError(
            f"environment '{env.name}' gives observations of shape {got} but the model expects "
            f"{expected}; pass observation_shape={expected} to make_environment to resize")
