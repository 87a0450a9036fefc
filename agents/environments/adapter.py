"""Gymnasium environments as TF-Agents ``PyEnvironment``s (SPEC §2 "environment", "frames").

tf-agents 0.19 only wraps the old ``gym`` API, so :class:`GymnasiumEnvironment` adapts a
gymnasium env directly and keeps its two kinds of episode end apart:

    terminated → ``ts.termination``  (StepType.LAST, discount 0: nothing to bootstrap)
    truncated  → ``ts.truncation``   (StepType.LAST, discount 1: the learner bootstraps V(x_T))

The step after a LAST starts a new episode (the action is ignored), as TF-Agents expects.
Observations are uint8 pixels ``[H, W, 3]``; actions are int32 scalars in ``[0, num_actions)``.

:func:`make_environment` builds the paper's Atari setting from an ALE v5 id (``ALE/Pong-v5``):
action repeat ``frame_skip`` = 4 with the per-pixel maximum over the last two emulator frames of
each repeat (:class:`MaxPoolActionRepeat`; ``max_pool_frames=False``: ALE's own frame skip),
no sticky actions unless asked (then p = 0.25), the minimal action set unless
``full_action_space``, up to ``noop_max`` = 30 random no-op steps at reset, episodes
truncated after ``max_episode_frames`` = 108,000 emulator frames (30 minutes). Any other
gymnasium id with ``[H, W, 3]`` uint8 observations and discrete actions works as is;
MiniGrid ids (``MiniGrid-Empty-5x5-v0``) are given fully observable RGB pixel observations.

Frames are counted as emulator frames actually stepped: every agent step costs
``frames_per_step`` (= ``frame_skip``) frames, fewer when a game ends inside an action repeat;
no-op steps at reset are included, and a reset by itself steps no frame.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import gymnasium as gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

ALE_PREFIX = "ALE/"
ALE_FRAME_SKIP = 4
ALE_NOOP_MAX = 30
ALE_MAX_EPISODE_FRAMES = 108_000      # 30 minutes at 60 Hz, the standard Atari cap
STICKY_ACTION_PROBABILITY = 0.25
NOOP_ACTION = 0                       # index 0 is NOOP in both the minimal and full ALE sets


# ---------------------------------------------------------------- gymnasium wrappers

class FrameCounter(gym.Wrapper):
    """Counts emulator frames: each ``step`` costs the ``"frames"`` its env reports in ``info``
    (:class:`MaxPoolActionRepeat` reports what it actually stepped), else ``frames_per_step``.

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


class MaxPoolActionRepeat(gym.Wrapper):
    """ALE action repeat that does not lose flickering objects: repeats the action ``repeat``
    times on the emulator and returns the per-pixel maximum of the last two frames (DQN's
    preprocessing; sprites drawn on alternate frames — Space Invaders' shots, Pong's ball at
    some moments — vanish from a single frame). Stops early at a game over.

    Wraps an ALE v5 env made with ``frameskip=1``; reports the emulator frames it actually
    stepped as ``info["frames"]`` (fewer at a game over), which :class:`FrameCounter` counts.
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


# ---------------------------------------------------------------- the PyEnvironment adapter

def _find_wrapper(env: gym.Env, cls):
    """The first wrapper of type ``cls`` in ``env``'s wrapper chain, or None."""
    while env is not None:
        if isinstance(env, cls):
            return env
        env = getattr(env, "env", None)
    return None


def _normalise_shape(shape) -> tuple:
    shape = tuple(int(d) for d in shape)
    if len(shape) == 2:
        shape = shape + (3,)
    if len(shape) != 3 or shape[2] != 3 or min(shape) <= 0:
        raise ValueError(f"observation_shape must be (height, width, 3) or (height, width), "
                         f"got {shape}")
    return shape


RESIZE_METHODS = ("bilinear", "max")


@functools.lru_cache(maxsize=16)
def _block_indices(size: int, out: int) -> np.ndarray:
    """``[out, k]`` source indices of each output pixel's block (short blocks repeat their last
    index), for a block maximum by one gather: ``x[idx].max(axis=1)``."""
    edges = (np.arange(out + 1) * size) // out
    k = int(np.max(np.diff(edges)))
    return np.minimum(edges[:-1, None] + np.arange(k)[None, :], edges[1:, None] - 1)


def _resize(frame: np.ndarray, shape: tuple, method: str = "bilinear") -> np.ndarray:
    """Resize of a uint8 ``[H, W, 3]`` frame to ``shape``.

    ``bilinear``: antialiased when shrinking (an average: a 2×4-pixel Pong ball shrunk from
    210×160 to 64×64 fades to a faint dot). ``max``: when shrinking, each output pixel is the
    per-channel maximum of its block of input pixels, so small bright sprites keep their
    intensity (the default for ALE ids); enlarging always uses bilinear.
    """
    h, w = shape[:2]
    if method == "max" and h <= frame.shape[0] and w <= frame.shape[1]:
        rows, cols = _block_indices(frame.shape[0], h), _block_indices(frame.shape[1], w)
        return frame[rows].max(axis=1)[:, cols].max(axis=2)
    from PIL import Image
    image = Image.fromarray(frame).resize((w, h), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


class GymnasiumEnvironment(py_environment.PyEnvironment):
    """A gymnasium env with uint8 ``[H, W, 3]`` observations and discrete actions.

    Args:
      env: the gymnasium env. Frames are counted by the :class:`FrameCounter` in its wrapper
        chain (:func:`make_environment` puts one next to the base env); without one, a
        counter charging ``frames_per_step`` per agent step is added on top.
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
        self._counter = _find_wrapper(env, FrameCounter)
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
                       else _normalise_shape(observation_shape))
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
        return frame if frame.shape == self._shape else _resize(frame, self._shape, self._resize_method)

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
    expected = _normalise_shape(expected)
    got = tuple(env.observation_spec().shape)
    if got != expected:
        raise ValueError(
            f"environment '{env.name}' gives observations of shape {got} but the model expects "
            f"{expected}; pass observation_shape={expected} to make_environment to resize")


# ---------------------------------------------------------------- factory

def is_ale_id(env_id: str) -> bool:
    return env_id.startswith(ALE_PREFIX)


def _register_envs():
    import ale_py  # noqa: F401  (importing registers the ALE/* ids)
    gym.register_envs(ale_py)
    try:
        import minigrid  # noqa: F401  (registers MiniGrid-* / BabyAI-* ids)
        gym.register_envs(minigrid)
    except ImportError:  # MiniGrid is optional; its ids are then unknown
        pass


def _gym_make(env_id: str, **kwargs) -> gym.Env:
    _register_envs()
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as e:  # NameNotFound, VersionNotFound, NamespaceNotFound, ...
        raise ValueError(f"unknown environment id '{env_id}' ({str(e).rstrip('.')}). Use an ALE v5 id such as "
                         f"'ALE/Pong-v5', a MiniGrid id such as 'MiniGrid-Empty-5x5-v0', or any "
                         f"registered gymnasium id with image observations") from None


def _cached_rgb_wrapper(env: gym.Env, cache_size: int = 4096) -> gym.Env:
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


def _is_minigrid(env: gym.Env) -> bool:
    try:
        from minigrid.minigrid_env import MiniGridEnv
    except ImportError:
        return False
    return isinstance(env.unwrapped, MiniGridEnv)


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
      full_action_space: ALE only: all 18 actions instead of the game's minimal set.
      sticky_actions: ALE only: repeat the previous action with probability 0.25 per frame.
      noop_max: up to this many random no-op steps at each reset. None: 30 for ALE, 0 for
        other envs (which have no known no-op action; a positive value is an error there).
      frame_skip: action repeat; emulator frames per agent step. None: 4 for ALE, 1 otherwise.
      max_episode_frames: truncate episodes after this many emulator frames (discount stays 1).
        None: 108,000 for ALE; other envs keep their own limit.
      observation_shape: resize observations to ``(H, W, 3)`` (e.g. ``(64, 64, 3)`` for the
        ``small`` preset); None keeps the native size (210×160×3 for Atari).
      (ALE frames are shrunk to ``observation_shape`` with a block maximum, ``_resize``'s
      ``max``, so that small sprites such as Pong's ball keep their intensity.)
      max_pool_frames: ALE only: the observation is the per-pixel maximum of the last two
        emulator frames of each action repeat (:class:`MaxPoolActionRepeat`); False: ALE's own
        frame skip, which returns the last frame only.

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
        observation_shape = _normalise_shape(observation_shape)

    if ale:
        env = _gym_make(env_id, frameskip=1 if max_pool_frames else frame_skip,
                        repeat_action_probability=STICKY_ACTION_PROBABILITY if sticky_actions
                        else 0.0,
                        full_action_space=full_action_space,
                        max_num_frames_per_episode=max_episode_frames)
        env = FrameCounter(MaxPoolActionRepeat(env, frame_skip) if max_pool_frames else env,
                           frames_per_step=frame_skip)
        meanings = env.unwrapped.get_action_meanings()
        if noop_max and meanings[NOOP_ACTION] != "NOOP":
            raise ValueError(f"'{env_id}': action {NOOP_ACTION} is {meanings[NOOP_ACTION]}, "
                             f"not NOOP; use noop_max=0")
    else:
        for flag, value in (("full_action_space", full_action_space),
                            ("sticky_actions", sticky_actions), ("noop_max", noop_max)):
            if value:
                raise ValueError(f"{flag}={value!r} is only supported for ALE ids "
                                 f"('ALE/<Game>-v5'), not '{env_id}'")
        env = FrameCounter(_gym_make(env_id), frames_per_step=1)
        if _is_minigrid(env):
            from minigrid.wrappers import ImgObsWrapper
            env = ImgObsWrapper(_cached_rgb_wrapper(env))
        if frame_skip > 1:
            env = ActionRepeat(env, frame_skip)
        if max_episode_frames is not None:
            env = gym.wrappers.TimeLimit(
                env, max_episode_steps=math.ceil(max_episode_frames / frame_skip))
    if noop_max:
        env = NoopReset(env, noop_max)
    return GymnasiumEnvironment(env, seed=seed, observation_shape=observation_shape, name=env_id,
                                frames_per_step=frame_skip, resize="max" if ale else "bilinear")
