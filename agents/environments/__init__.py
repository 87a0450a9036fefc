"""Gymnasium environments as TF-Agents ``PyEnvironment``s (SPEC §2 "environment", "frames"), one
module per idea:

* :mod:`.frame_counter` — counting emulator frames (and finding a wrapper in a chain);
* :mod:`.max_pool` — ALE's action repeat with the maximum over the last two frames;
* :mod:`.action_repeat` — action repeat for other environments;
* :mod:`.noop_reset` — random no-op starts;
* :mod:`.resize` — frames resized to the model's input (bilinear, or a block maximum);
* :mod:`.minigrid` — MiniGrid as fully observable pixels, drawn once per state;
* :mod:`.registry` — the ids this project knows and ALE's defaults;
* :mod:`.adapter` — :class:`GymnasiumEnvironment`, a gymnasium env as a ``PyEnvironment``;
* :mod:`.factory` — :func:`make_environment` from an id and settings, and
  :func:`environment_for`, the environment a model plays (training, evaluation, analysis);
* :mod:`.groups` — the actor's batched groups (ALE's vector environment, or per-environment).

Every public name is importable from here.
"""
from agents.environments.action_repeat import ActionRepeat
from agents.environments.adapter import GymnasiumEnvironment, check_observation_shape
from agents.environments.factory import environment_for, make_environment
from agents.environments.frame_counter import FrameCounter, find_wrapper
from agents.environments.groups import AtariVectorGroup, PyEnvGroup, uses_vector
from agents.environments.max_pool import MaxPoolActionRepeat
from agents.environments.minigrid import cached_rgb_wrapper, is_minigrid
from agents.environments.noop_reset import NOOP_ACTION, NoopReset
from agents.environments.registry import (
    ALE_FRAME_SKIP, ALE_MAX_EPISODE_FRAMES, ALE_NOOP_MAX, ALE_PREFIX, FULL_ACTION_SET, STICKY_ACTION_PROBABILITY,
    ale_game, gym_make, is_ale_id, register_envs)
from agents.environments.resize import (
    RESIZE_METHODS, batch_block_max, block_indices, normalise_shape, resize_frame)

# The names these had when they were private to one module (still imported by older code).
_find_wrapper, _normalise_shape, _block_indices, _resize = find_wrapper, normalise_shape, block_indices, resize_frame
_register_envs, _gym_make, _cached_rgb_wrapper, _is_minigrid = register_envs, gym_make, cached_rgb_wrapper, is_minigrid

__all__ = [
    "ALE_FRAME_SKIP", "ALE_MAX_EPISODE_FRAMES", "ALE_NOOP_MAX", "ALE_PREFIX", "FULL_ACTION_SET", "NOOP_ACTION",
    "RESIZE_METHODS", "STICKY_ACTION_PROBABILITY", "ActionRepeat", "AtariVectorGroup", "FrameCounter",
    "GymnasiumEnvironment", "MaxPoolActionRepeat", "NoopReset", "PyEnvGroup", "ale_game", "batch_block_max",
    "block_indices", "cached_rgb_wrapper", "check_observation_shape", "environment_for", "find_wrapper",
    "gym_make", "is_ale_id", "is_minigrid", "make_environment", "normalise_shape", "register_envs",
    "resize_frame", "uses_vector",
]
