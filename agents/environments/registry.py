"""Environment ids: ALE's and MiniGrid's registered with gymnasium, the ALE defaults of the
paper's Atari setting, and gymnasium's errors turned into one line naming the id."""
from __future__ import annotations

import gymnasium as gym

ALE_PREFIX = "ALE/"
ALE_FRAME_SKIP = 4
ALE_NOOP_MAX = 30
ALE_MAX_EPISODE_FRAMES = 108_000      # 30 minutes at 60 Hz, the standard Atari cap
STICKY_ACTION_PROBABILITY = 0.25
FULL_ACTION_SET = 18                  # actions in ALE's full set (a game's minimal set has fewer)


def is_ale_id(env_id: str) -> bool:
    return env_id.startswith(ALE_PREFIX)


def register_envs():
    import ale_py  # noqa: F401  (importing registers the ALE/* ids)
    gym.register_envs(ale_py)
    try:
        import minigrid  # noqa: F401  (registers MiniGrid-* / BabyAI-* ids)
        gym.register_envs(minigrid)
    except ImportError:  # MiniGrid is optional; its ids are then unknown
        pass


def gym_make(env_id: str, **kwargs) -> gym.Env:
    """``gym.make`` with every id this project knows registered; ValueError for an unknown id."""
    register_envs()
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as e:  # NameNotFound, VersionNotFound, NamespaceNotFound, ...
        raise ValueError(f"unknown environment id '{env_id}' ({str(e).rstrip('.')}). Use an ALE v5 id such as "
                         f"'ALE/Pong-v5', a MiniGrid id such as 'MiniGrid-Empty-5x5-v0', or any "
                         f"registered gymnasium id with image observations") from None


def ale_game(env_id: str) -> str:
    """The ROM name of an ALE v5 id (``ALE/SpaceInvaders-v5`` → ``space_invaders``)."""
    env = gym_make(env_id)
    try:
        return env.spec.kwargs["game"]
    finally:
        env.close()
