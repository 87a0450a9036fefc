"""Action repeat for environments other than ALE's (which repeat actions themselves)."""
from __future__ import annotations

import gymnasium as gym


class ActionRepeat(gym.Wrapper):
    """Repeats each action ``repeat`` times, summing rewards; stops early at an episode end.

    Used for non-ALE envs (ALE repeats actions itself through its ``frameskip`` argument).
    """

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"frame_skip must be >= 1, got {repeat}")
        self.repeat = int(repeat)

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info
