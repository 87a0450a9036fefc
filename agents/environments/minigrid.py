"""MiniGrid as pixels: fully observable RGB frames, drawn once per distinct state."""
from __future__ import annotations

import gymnasium as gym


def cached_rgb_wrapper(env: gym.Env, cache_size: int = 4096) -> gym.Env:
    """MiniGrid's fully observable RGB pixels (``RGBImgObsWrapper``) with a render cache.

    The full-grid frame is a function of the grid's contents and the agent's position and
    direction (the highlighted view cone too), so a state seen before is not drawn again:
    rendering is most of a MiniGrid step's cost, and small grids revisit few states.
    """
    from collections import OrderedDict
    from minigrid.wrappers import RGBImgObsWrapper

    class CachedRGBImgObsWrapper(RGBImgObsWrapper):
        def __init__(self, env, tile_size=8):
            super().__init__(env, tile_size)
            self._cache = OrderedDict()

        def observation(self, obs):
            u = self.unwrapped
            key = (u.grid.encode().tobytes(), tuple(int(x) for x in u.agent_pos), int(u.agent_dir))
            image = self._cache.get(key)
            if image is None:
                image = u.get_frame(highlight=u.highlight, tile_size=self.tile_size)
                self._cache[key] = image
                if len(self._cache) > cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return {**obs, "image": image.copy()}

    return CachedRGBImgObsWrapper(env)


def is_minigrid(env: gym.Env) -> bool:
    try:
        from minigrid.minigrid_env import MiniGridEnv
    except ImportError:
        return False
    return isinstance(env.unwrapped, MiniGridEnv)


def pixel_observations(env: gym.Env) -> gym.Env:
    """A MiniGrid env whose observations are the full grid's RGB frame alone."""
    from minigrid.wrappers import ImgObsWrapper
    return ImgObsWrapper(cached_rgb_wrapper(env))
