"""ALE's action repeat with the maximum over the last two frames (DQN's preprocessing)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class MaxPoolActionRepeat(gym.Wrapper):
    """ALE action repeat that does not lose flickering objects: repeats the action ``repeat``
    times on the emulator and returns the per-pixel maximum of the last two frames (DQN's
    preprocessing; sprites drawn on alternate frames — Space Invaders' shots, Pong's ball at
    some moments — vanish from a single frame). Stops early at a game over.

    Wraps an ALE v5 env made with ``frameskip=1``; reports the emulator frames it actually
    stepped as ``info["frames"]`` (fewer at a game over), which
    :class:`agents.environments.frame_counter.FrameCounter` counts.
    """

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"frame_skip must be >= 1, got {repeat}")
        base = env.unwrapped
        self.repeat, self._ale, self._action_set = int(repeat), base.ale, base._action_set  # noqa: SLF001
        self._screens = np.zeros((2,) + tuple(env.observation_space.shape), np.uint8)

    def step(self, action):
        ale, screens = self._ale, self._screens
        ale_action = self._action_set[int(action)]
        total, stepped, terminated = 0.0, 0, False
        for k in range(self.repeat):
            total += ale.act(ale_action)
            stepped += 1
            if k >= self.repeat - 2:   # (before the end checks: an end on the last frame keeps it)
                ale.getScreenRGB(screens[k - (self.repeat - 2)])
            if ale.game_over(with_truncation=False):
                terminated = True
                break
            if ale.game_truncated():
                break
        if stepped == self.repeat and self.repeat >= 2:
            frame = np.maximum(screens[0], screens[1])
        else:  # an early end, or no repeat: the current frame
            frame = ale.getScreenRGB()
        truncated = (not terminated) and ale.game_truncated()
        return frame, total, terminated, truncated, {"lives": ale.lives(), "frames": stepped}
