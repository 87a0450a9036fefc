"""The environments of this project built from an id: :func:`make_environment` for any
settings, :func:`environment_for` for the environment a model plays (its input shape, its
action set), which training, evaluation and analysis all use.

ALE v5 ids (``ALE/Pong-v5``) get the paper's Atari setting: an action repeat with the
per-pixel maximum over the last two emulator frames of each repeat
(:class:`~agents.environments.max_pool.MaxPoolActionRepeat`; ``max_pool_frames=False``: ALE's
own frame skip), no sticky actions unless asked, the minimal action set unless
``full_action_space``, random no-op steps at reset, and episodes truncated after a fixed number
of emulator frames (the defaults are in :mod:`agents.environments.registry`). Any other
gymnasium id with ``[H, W, 3]`` uint8 observations and discrete actions works as is; MiniGrid
ids (``MiniGrid-Empty-5x5-v0``) are given fully observable RGB pixel observations.

Frames are counted as emulator frames actually stepped: every agent step costs
``frames_per_step`` (= ``frame_skip``) frames, fewer when a game ends inside an action repeat;
no-op steps at reset are included, and a reset by itself steps no frame.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import gymnasium as gym

from agents.environments import minigrid
from agents.environments.action_repeat import ActionRepeat
from agents.environments.adapter import GymnasiumEnvironment, check_observation_shape
from agents.environments.frame_counter import FrameCounter
from agents.environments.max_pool import MaxPoolActionRepeat
from agents.environments.noop_reset import NOOP_ACTION, NoopReset
from agents.environments.registry import (
    ALE_FRAME_SKIP, ALE_MAX_EPISODE_FRAMES, ALE_NOOP_MAX, FULL_ACTION_SET, STICKY_ACTION_PROBABILITY, gym_make,
    is_ale_id)
from agents.environments.resize import normalise_shape


def make_environment(env_id: str, *, seed: Optional[int], full_action_space: bool = False,
                     sticky_actions: bool = False, noop_max: Optional[int] = None,
                     frame_skip: Optional[int] = None, max_episode_frames: Optional[int] = None,
                     observation_shape: Optional[Sequence[int]] = None,
                     max_pool_frames: bool = True) -> GymnasiumEnvironment:
    """Builds a :class:`GymnasiumEnvironment` for ``env_id``.

    Args:
      env_id: an ALE v5 id (``ALE/Pong-v5``), a MiniGrid id, or any gymnasium id with uint8
        ``[H, W, 3]`` observations and discrete actions.
      seed: seeds the env (None: nondeterministic).
      full_action_space: ALE only: all actions instead of the game's minimal set.
      sticky_actions: ALE only: repeat the previous action with a fixed probability per frame.
      noop_max: up to this many random no-op steps at each reset. None: ALE's default, 0 for
        other envs (which have no known no-op action; a positive value is an error there).
      frame_skip: action repeat; emulator frames per agent step. None: ALE's default, 1 otherwise.
      max_episode_frames: truncate episodes after this many emulator frames (discount stays 1).
        None: ALE's default cap; other envs keep their own limit.
      observation_shape: resize observations to ``(H, W, 3)``; None keeps the native size.
        ALE frames are shrunk with a block maximum, so that small sprites such as Pong's ball
        keep their intensity.
      max_pool_frames: ALE only: the observation is the per-pixel maximum of the last two
        emulator frames of each action repeat; False: ALE's own frame skip, which returns the
        last frame only.

    Raises:
      ValueError: unknown id, non-image observations, or an ALE-only option on another env.
    """
    ale = is_ale_id(env_id)
    frame_skip = (ALE_FRAME_SKIP if ale else 1) if frame_skip is None else int(frame_skip)
    noop_max = (ALE_NOOP_MAX if ale else 0) if noop_max is None else int(noop_max)
    if max_episode_frames is None and ale:
        max_episode_frames = ALE_MAX_EPISODE_FRAMES
    if frame_skip < 1:
        raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
    if max_episode_frames is not None and max_episode_frames < 1:
        raise ValueError(f"max_episode_frames must be >= 1, got {max_episode_frames}")
    if observation_shape is not None:
        observation_shape = normalise_shape(observation_shape)
    if ale:
        env = _ale_env(env_id, frame_skip, noop_max, max_episode_frames, sticky_actions=sticky_actions,
                       full_action_space=full_action_space, max_pool_frames=max_pool_frames)
    else:
        env = _other_env(env_id, frame_skip, max_episode_frames, full_action_space=full_action_space,
                         sticky_actions=sticky_actions, noop_max=noop_max)
    if noop_max:
        env = NoopReset(env, noop_max)
    return GymnasiumEnvironment(env, seed=seed, observation_shape=observation_shape, name=env_id,
                                frames_per_step=frame_skip, resize="max" if ale else "bilinear")


def _ale_env(env_id: str, frame_skip: int, noop_max: int, max_episode_frames: int, *,
             sticky_actions: bool, full_action_space: bool, max_pool_frames: bool) -> gym.Env:
    """The ALE game with its action repeat and frame counter (no-op starts are added after)."""
    env = gym_make(env_id, frameskip=1 if max_pool_frames else frame_skip,
                   repeat_action_probability=STICKY_ACTION_PROBABILITY if sticky_actions else 0.0,
                   full_action_space=full_action_space, max_num_frames_per_episode=max_episode_frames)
    env = FrameCounter(MaxPoolActionRepeat(env, frame_skip) if max_pool_frames else env,
                       frames_per_step=frame_skip)
    meanings = env.unwrapped.get_action_meanings()
    if noop_max and meanings[NOOP_ACTION] != "NOOP":
        raise ValueError(f"'{env_id}': action {NOOP_ACTION} is {meanings[NOOP_ACTION]}, "
                         f"not NOOP; use noop_max=0")
    return env


def _other_env(env_id: str, frame_skip: int, max_episode_frames: Optional[int], **ale_only) -> gym.Env:
    """Any other gymnasium env (MiniGrid as pixels), with its action repeat and episode cap;
    ValueError for a set ALE-only option."""
    for flag, value in ale_only.items():
        if value:
            raise ValueError(f"{flag}={value!r} is only supported for ALE ids "
                             f"('ALE/<Game>-v5'), not '{env_id}'")
    env = FrameCounter(gym_make(env_id), frames_per_step=1)
    if minigrid.is_minigrid(env):
        env = minigrid.pixel_observations(env)
    if frame_skip > 1:
        env = ActionRepeat(env, frame_skip)
    if max_episode_frames is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=math.ceil(max_episode_frames / frame_skip))
    return env


def environment_for(observation_shape: Sequence[int], env_id: str, seed: Optional[int], *,
                    num_actions: Optional[int] = None, resize: bool = True, advice: str = "",
                    **settings) -> GymnasiumEnvironment:
    """The environment ``env_id`` as a model with input ``observation_shape`` plays it.

    Args:
      observation_shape: the model's input ``(H, W, 3)``.
      seed: seeds the env.
      num_actions: the model's action count, when there is a model: an ALE game is then played
        with the full action set if the model has that many actions (unless ``settings`` say
        ``full_action_space``), and a different action count is a ValueError.
      resize: frames are resized to the model's input; False: native frames, which must then
        have the model's input shape (ValueError otherwise).
      advice: what to do about a mismatch, appended to its ValueError.
      settings: :func:`make_environment`'s options (action repeat, no-ops, episode cap, ...).
    """
    if num_actions is not None and is_ale_id(env_id) and settings.get("full_action_space") is None:
        settings["full_action_space"] = num_actions == FULL_ACTION_SET
    env = make_environment(env_id, seed=seed, observation_shape=observation_shape if resize else None,
                           **settings)
    try:
        if num_actions is not None and env.num_actions != num_actions:
            raise ValueError(f"environment '{env_id}' has {env.num_actions} actions but the model has "
                             f"{num_actions}")
        check_observation_shape(env, observation_shape)
    except ValueError as e:
        env.close()
        raise ValueError(f"{e}; {advice}" if advice else str(e)) from None
    return env
