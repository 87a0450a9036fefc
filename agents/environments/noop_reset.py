"""Random no-op starts: each episode begins after a random number of no-op steps."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

NOOP_ACTION = 0                       # index 0 is NOOP in both the minimal and full ALE sets


class NoopReset(gym.Wrapper):
    """After each reset, takes a uniform random number in ``[0, noop_max]`` of no-op steps.

    Each no-op is one agent step (``frame_skip`` emulator frames). If the episode ends during
    the no-ops the env is reset again. The count is drawn from this wrapper's own generator,
    seeded by the first ``reset(seed=...)``, so runs are reproducible.
    """

    def __init__(self, env: gym.Env, noop_max: int, noop_action: int = NOOP_ACTION):
        super().__init__(env)
        if noop_max < 0:
            raise ValueError(f"noop_max must be >= 0, got {noop_max}")
        self.noop_max = int(noop_max)
        self.noop_action = noop_action
        self.last_noops = 0
        self._rng = np.random.default_rng()

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        obs, info = self.env.reset(seed=seed, options=options)
        self.last_noops = int(self._rng.integers(0, self.noop_max + 1))
        for _ in range(self.last_noops):
            obs, _, terminated, truncated, info = self.env.step(self.noop_action)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return obs, info
