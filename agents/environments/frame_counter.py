"""Counting emulator frames: the unit every frame budget and frame rate of a run is in."""
from __future__ import annotations

import gymnasium as gym


class FrameCounter(gym.Wrapper):
    """Counts emulator frames: each ``step`` costs the ``"frames"`` its env reports in ``info``
    (:class:`agents.environments.max_pool.MaxPoolActionRepeat` reports what it actually
    stepped), else ``frames_per_step``.

    Sits directly on the base env (or on the action repeat that steps it) so that every step,
    no-ops at reset included, is counted. ``frame_count`` is the total since construction,
    ``episode_frames`` since the last reset.
    """

    def __init__(self, env: gym.Env, frames_per_step: int):
        super().__init__(env)
        self.frames_per_step = int(frames_per_step)
        self.frame_count = 0
        self.episode_frames = 0

    def reset(self, **kwargs):
        self.episode_frames = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        result = self.env.step(action)
        frames = int(result[-1].get("frames", self.frames_per_step))
        self.frame_count += frames
        self.episode_frames += frames
        return result


def find_wrapper(env: gym.Env, cls):
    """The first wrapper of type ``cls`` in ``env``'s wrapper chain, or None."""
    while env is not None:
        if isinstance(env, cls):
            return env
        env = getattr(env, "env", None)
    return None
