"""The gymnasium → TF-Agents adapter on real ALE games and real MiniGrid."""
import gymnasium as gym
import numpy as np
import pytest
from tf_agents.environments import batched_py_environment, utils
from tf_agents.trajectories import time_step as ts

from agents import environments as envs
from agents.environments import check_observation_shape, make_environment

PONG, BREAKOUT, MINIGRID = "ALE/Pong-v5", "ALE/Breakout-v5", "MiniGrid-Empty-5x5-v0"
# MiniGrid-Empty-5x5: agent at (1, 1) facing right, goal at (3, 3).
LEFT, RIGHT, FORWARD = 0, 1, 2
PATH_TO_GOAL = [FORWARD, FORWARD, RIGHT, FORWARD, FORWARD]


def ale(env):
    return env.gym_env.unwrapped.ale


def run_until_last(env, actions, limit=10_000):
    """Steps ``env`` from a reset with ``actions(i)`` until a LAST; returns the time steps."""
    steps = [env.reset()]
    for i in range(limit):
        steps.append(env.step(np.int32(actions(i))))
        if steps[-1].is_last():
            return steps
    raise AssertionError(f"no episode end within {limit} steps")


# ---------------------------------------------------------------- specs and action sets

@pytest.mark.parametrize("env_id, minimal, full", [(PONG, 6, 18), (BREAKOUT, 4, 18)])
def test_ale_specs_and_action_sets(env_id, minimal, full):
    env = make_environment(env_id, seed=0)
    assert env.observation_spec().shape == (210, 160, 3)
    assert env.observation_spec().dtype == np.uint8
    assert env.action_spec().dtype == np.int32 and env.action_spec().shape == ()
    assert env.num_actions == minimal and env.action_spec().maximum == minimal - 1
    assert env.gym_env.unwrapped.get_action_meanings()[0] == "NOOP"
    step = env.reset()
    assert step.is_first() and step.observation.dtype == np.uint8
    assert step.observation.shape == (210, 160, 3) and step.observation.max() > 0
    assert step.reward.dtype == np.float32 and step.discount.dtype == np.float32
    full_env = make_environment(env_id, seed=0, full_action_space=True)
    assert full_env.num_actions == full and full_env.action_spec().maximum == full - 1


def test_sticky_actions_flag_sets_ale_probability():
    assert ale(make_environment(PONG, seed=0)).getFloat("repeat_action_probability") == 0.0
    sticky = make_environment(PONG, seed=0, sticky_actions=True)
    assert ale(sticky).getFloat("repeat_action_probability") == pytest.approx(0.25)


def test_minigrid_gets_rgb_pixels():
    env = make_environment(MINIGRID, seed=0)
    assert env.observation_spec().shape == (40, 40, 3)   # 5x5 tiles of 8 pixels
    assert env.observation_spec().dtype == np.uint8
    assert env.num_actions == 7 and env.frames_per_step == 1
    obs = env.reset().observation
    assert obs.shape == (40, 40, 3) and obs.dtype == np.uint8
    assert len(np.unique(obs.reshape(-1, 3), axis=0)) > 3   # walls, floor, agent, goal


# ---------------------------------------------------------------- episode ends

def test_minigrid_termination_has_discount_zero():
    env = make_environment(MINIGRID, seed=0)
    steps = run_until_last(env, lambda i: PATH_TO_GOAL[i])
    assert len(steps) == len(PATH_TO_GOAL) + 1
    last = steps[-1]
    assert last.step_type == ts.StepType.LAST and last.discount == 0.0 and last.reward > 0.5
    assert all(s.step_type == ts.StepType.MID and s.discount == 1.0 for s in steps[1:-1])
    # The step after a LAST starts a new episode, whatever the action.
    nxt = env.step(np.int32(FORWARD))
    assert nxt.is_first() and env.episode_return == 0.0
    np.testing.assert_array_equal(nxt.observation, steps[0].observation)


def test_minigrid_own_time_limit_truncates_with_discount_one():
    env = make_environment(MINIGRID, seed=0)
    steps = run_until_last(env, lambda i: LEFT)   # spinning in place never reaches the goal
    assert len(steps) - 1 == env.gym_env.unwrapped.max_steps == 100
    assert steps[-1].step_type == ts.StepType.LAST and steps[-1].discount == 1.0
    assert steps[-1].reward == 0.0


def test_time_limit_wrapper_truncation_bootstraps():
    env = make_environment(MINIGRID, seed=0, max_episode_frames=7)
    assert envs._find_wrapper(env.gym_env, gym.wrappers.TimeLimit) is not None
    steps = run_until_last(env, lambda i: LEFT)
    assert len(steps) - 1 == 7
    assert steps[-1].is_last() and steps[-1].discount == 1.0


def test_ale_frame_limit_truncates_with_discount_one():
    env = make_environment(PONG, seed=0, noop_max=0, max_episode_frames=200)
    steps = run_until_last(env, lambda i: 0)
    assert len(steps) - 1 == 200 // 4
    assert steps[-1].is_last() and steps[-1].discount == 1.0
    assert ale(env).game_truncated() and not ale(env).game_over(with_truncation=False)
    assert env.episode_frames == 200


def test_ale_game_over_terminates_with_discount_zero():
    env = make_environment(BREAKOUT, seed=0, noop_max=0)
    rng = np.random.default_rng(0)
    steps = run_until_last(env, lambda i: rng.integers(env.num_actions))
    assert steps[-1].is_last() and steps[-1].discount == 0.0
    assert ale(env).game_over(with_truncation=False) and not ale(env).game_truncated()
    assert all(s.discount == 1.0 for s in steps[1:-1])   # losing a life does not end it
    assert env.episode_return == sum(float(s.reward) for s in steps[1:])
    # Every step stepped 4 frames except the last, which stops at the game over (1-4 frames).
    assert 4 * (len(steps) - 2) < env.episode_frames <= 4 * (len(steps) - 1)


# ---------------------------------------------------------------- frames, no-ops, determinism

def test_frame_skip_hides_intermediate_frames():
    """One agent step with frame_skip=4 shows the 4th frame of 4 single-frame steps (ALE's own
    frame skip, max_pool_frames=False), or by default the pixel max of the 3rd and 4th."""
    skip4 = make_environment(PONG, seed=3, noop_max=0, max_pool_frames=False)
    pooled = make_environment(PONG, seed=3, noop_max=0)
    skip1 = make_environment(PONG, seed=3, noop_max=0, frame_skip=1, max_pool_frames=False)
    assert skip4.frames_per_step == pooled.frames_per_step == 4 and skip1.frames_per_step == 1
    skip4.reset(), pooled.reset(), skip1.reset()
    for _ in range(60):   # far enough for the ball to be moving
        obs4 = skip4.step(np.int32(2)).observation
        obs_pooled = pooled.step(np.int32(2)).observation
        frames1 = [skip1.step(np.int32(2)).observation for _ in range(4)]
    np.testing.assert_array_equal(obs4, frames1[-1])
    assert not np.array_equal(obs4, frames1[-2])
    np.testing.assert_array_equal(obs_pooled, np.maximum(frames1[-2], frames1[-1]))
    assert skip4.frame_count == skip1.frame_count == pooled.frame_count == 240 == ale(skip4).getEpisodeFrameNumber()


def test_noop_starts_are_random_bounded_and_counted():
    noops = []
    for seed in range(8):
        env = make_environment(PONG, seed=seed)
        env.reset()
        n = env.gym_env.last_noops
        noops.append(n)
        assert 0 <= n <= 30
        # No-ops are real emulator frames: counted by us and by ALE alike.
        assert env.frame_count == env.episode_frames == 4 * n == ale(env).getEpisodeFrameNumber()
        for _ in range(5):
            env.step(np.int32(1))
        assert env.frame_count == 4 * (n + 5) == ale(env).getFrameNumber()
    assert len(set(noops)) >= 4   # the count really varies with the seed


def test_no_noops_when_disabled():
    env = make_environment(PONG, seed=5, noop_max=0)
    env.reset()
    assert env.frame_count == 0 and envs._find_wrapper(env.gym_env, envs.NoopReset) is None


def test_frame_count_accumulates_over_episodes():
    env = make_environment(PONG, seed=0, max_episode_frames=200)   # > 30 no-op steps
    noops = []
    for _ in range(3):
        steps = run_until_last(env, lambda i: 0)
        noops.append(env.gym_env.last_noops)
        # No-ops count towards the episode frame limit: fewer agent steps remain.
        assert env.episode_frames == 200 and len(steps) - 1 == 50 - noops[-1]
    assert env.frame_count == 600 and len(set(noops)) > 1


@pytest.mark.parametrize("env_id, kwargs", [(PONG, dict(sticky_actions=True)),
                                            ("MiniGrid-Empty-Random-5x5-v0", {})])
def test_same_seed_same_run(env_id, kwargs):
    def rollout(seed):
        env = make_environment(env_id, seed=seed, max_episode_frames=160, **kwargs)
        rng = np.random.default_rng(0)
        obs, rewards = [env.reset().observation], []
        for _ in range(120):   # crosses episode boundaries (auto reset)
            step = env.step(np.int32(rng.integers(env.num_actions)))
            obs.append(step.observation)
            rewards.append(float(step.reward))
        return np.stack(obs), rewards, env.frame_count

    a, b = rollout(11), rollout(11)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:]
    c = rollout(12)
    assert not np.array_equal(a[0], c[0])


# ---------------------------------------------------------------- resize, validation, batching

def test_resize_to_model_shape_and_render_keeps_native_frame():
    env = make_environment(PONG, seed=0, observation_shape=(64, 64, 3))
    assert env.observation_spec().shape == (64, 64, 3)
    obs = env.reset().observation
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.render().shape == (210, 160, 3)
    # The resized frame is the native one shrunk by a block maximum (ALE's default): every pixel
    # is the per-channel max of its block, so bright small sprites keep their intensity.
    from agents.environments import _block_indices, _resize
    native = env.render()
    rows, cols = _block_indices(210, 64), _block_indices(160, 64)
    assert rows.shape == (64, 4) and rows[0, 0] == 0 and rows[-1].max() == 209 and cols[-1].max() == 159
    for i, j in ((0, 0), (31, 17), (63, 63)):
        block = native[np.unique(rows[i])][:, np.unique(cols[j])]
        np.testing.assert_array_equal(obs[i, j], block.reshape(-1, 3).max(0))
    ball = np.zeros((210, 160, 3), np.uint8)
    ball[100:104, 80:82] = 236  # a 2x4 Pong ball
    assert _resize(ball, (64, 64, 3), "max").max() == 236
    assert _resize(ball, (64, 64, 3), "bilinear").max() < 236 // 2  # averaging fades it
    bilinear = make_environment("MiniGrid-Empty-5x5-v0", seed=0, observation_shape=(20, 20, 3))
    small = bilinear.reset().observation  # other ids keep the antialiased average
    np.testing.assert_allclose(small.reshape(-1, 3).mean(0), bilinear.render().reshape(-1, 3).mean(0), atol=6.0)
    check_observation_shape(env, (64, 64, 3))
    check_observation_shape(env, (64, 64))


def test_shape_mismatch_without_resize_is_a_clear_error():
    env = make_environment(PONG, seed=0)
    with pytest.raises(ValueError, match=r"\(210, 160, 3\) but the model expects \(64, 64, 3\); "
                                         r"pass observation_shape"):
        check_observation_shape(env, (64, 64, 3))
    with pytest.raises(ValueError, match=r"observation_shape must be \(height, width, 3\)"):
        make_environment(PONG, seed=0, observation_shape=(64, 64, 1))


def test_validate_py_environment():
    utils.validate_py_environment(make_environment(PONG, seed=0, max_episode_frames=120),
                                  episodes=2)
    utils.validate_py_environment(
        make_environment(MINIGRID, seed=0, observation_shape=(64, 64)), episodes=2)


def test_batched_py_environment():
    batch = batched_py_environment.BatchedPyEnvironment(
        [make_environment(MINIGRID, seed=s, max_episode_frames=3 + s) for s in range(3)],
        multithreading=True)
    assert batch.batch_size == 3 and batch.batched
    assert batch.observation_spec().shape == (40, 40, 3)
    step = batch.reset()
    assert step.observation.shape == (3, 40, 40, 3) and step.observation.dtype == np.uint8
    assert list(step.step_type) == [ts.StepType.FIRST] * 3
    kinds = []
    for _ in range(5):
        step = batch.step(np.full(3, LEFT, np.int32))
        assert step.reward.shape == (3,) and step.discount.dtype == np.float32
        kinds.append(list(step.step_type))
    # Env b truncates after 3 + b steps and restarts on its own on the step after.
    kinds = np.array(kinds)
    np.testing.assert_array_equal(kinds[:, 0], [1, 1, 2, 0, 1])
    np.testing.assert_array_equal(kinds[:, 1], [1, 1, 1, 2, 0])
    np.testing.assert_array_equal(kinds[:, 2], [1, 1, 1, 1, 2])
    batch.close()


# ---------------------------------------------------------------- errors

def test_unknown_id_names_it():
    with pytest.raises(ValueError, match="unknown environment id 'ALE/NoSuchGame-v5'"):
        make_environment("ALE/NoSuchGame-v5", seed=0)
    with pytest.raises(ValueError, match="unknown environment id 'NotAnEnv-v0'"):
        make_environment("NotAnEnv-v0", seed=0)


def test_non_image_env_is_rejected():
    with pytest.raises(ValueError, match=r"'CartPole-v1' has observation space .* expected uint8"):
        make_environment("CartPole-v1", seed=0)


@pytest.mark.parametrize("flag", [dict(sticky_actions=True), dict(full_action_space=True),
                                  dict(noop_max=5)])
def test_ale_only_options_rejected_elsewhere(flag):
    with pytest.raises(ValueError, match="only supported for ALE ids"):
        make_environment(MINIGRID, seed=0, **flag)


@pytest.mark.parametrize("action", [np.int32(6), np.int32(-1), np.float32(1.0),
                                    np.array([1, 2], np.int32)])
def test_bad_action_is_a_clear_error(action):
    env = make_environment(PONG, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"action must be an integer scalar in \[0, 6\)"):
        env.step(action)


def test_adapter_on_a_plain_gymnasium_env():
    """GymnasiumEnvironment also wraps an env built by hand (it adds its own frame counter)."""
    from minigrid.wrappers import ImgObsWrapper, RGBImgObsWrapper
    envs._register_envs()
    env = envs.GymnasiumEnvironment(ImgObsWrapper(RGBImgObsWrapper(gym.make(MINIGRID))), seed=0)
    assert env.name == MINIGRID and env.frames_per_step == 1
    env.reset()
    for _ in range(3):
        env.step(np.int32(LEFT))
    assert env.frame_count == env.episode_frames == 3
    utils.validate_py_environment(env, episodes=1)
