"""The actor's environment groups (agents/environments/groups.py) against the per-environment path, and
a real actor process stepping ALE's vector environment in two double-buffered groups, its
trajectories replayed by the learner's network (real ALE, real Reverb on localhost)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from agents.environments import (AtariVectorGroup, PyEnvGroup, batch_block_max, make_environment, resize_frame,
                                 uses_vector)
from agents.impala.builder import RunSpec
from agents.impala.config import ReplaySettings
from agents.impala.replay import TRAJECTORY_TABLE, experience_spec, make_dataset
from agents.impala.variables import push_variables
from pipelines.rl.replay import start_server
from test_services import assert_unroll_reproduces_behaviour_logits, continuing_windows

reverb = pytest.importorskip("reverb")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (64, 64, 3)


def both_paths(env_id, seeds, **kwargs):
    python = PyEnvGroup([make_environment(env_id, seed=s, observation_shape=SHAPE, **kwargs) for s in seeds])
    return python, AtariVectorGroup(env_id, seeds, SHAPE, **kwargs)


def step_both(python, vector, steps, seed=0):
    """Both groups driven by the same random actions; yields each step's pair of results."""
    a, b = python.reset(), vector.reset()
    yield (a, None), (b, None)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.integers(python.num_actions, size=python.num_envs).astype(np.int32)
        python.send(actions)
        vector.send(actions)
        yield python.recv(), vector.recv()


@pytest.mark.parametrize("env_id,steps,cap", [("ALE/Breakout-v5", 700, None), ("ALE/Pong-v5", 600, 2000)])
def test_vector_group_steps_as_the_per_environment_path(env_id, steps, cap):
    """No-op starts off, no sticky actions: the same actions give the same observations (64x64
    block maximum), rewards, discounts, step types and frames per step, through terminations
    (Breakout's game overs) and truncations (Pong capped at 2,000 frames). The one exception:
    the observation of a LAST step whose episode ended inside an action repeat (ALE's own max
    buffer); it is never bootstrapped from at a termination."""
    python, vector = both_paths(env_id, [11, 12], noop_max=0, max_episode_frames=cap)
    ends = {"LAST": 0, "truncated": 0, "LAST observations differing": 0}
    for (a, fa), (b, fb) in step_both(python, vector, steps):
        for field in ("step_type", "reward", "discount"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        np.testing.assert_array_equal(fa, fb)
        last = a.step_type == ts.StepType.LAST
        ends["LAST"] += int(last.sum())
        ends["truncated"] += int((last & (a.discount == 1)).sum())
        same = np.all(a.observation == b.observation, axis=(1, 2, 3))
        assert np.all(same | last), "an observation differs outside an episode's LAST step"
        ends["LAST observations differing"] += int((~same).sum())
    assert python.frame_count == vector.frame_count > steps * 2 * 3
    assert ends["LAST"] >= 2, ends
    if cap:
        assert ends["truncated"] >= 2, ends
    python.close(), vector.close()


def test_vector_group_noop_starts_and_sticky_actions():
    """With 30 no-op steps (= up to 120 emulator frames) the vector group's episodes start after
    a random number of no-op frames within that span, counted as frames of the step that begins
    the episode; different seeds give different starts; sticky actions change the play of the
    same actions."""
    seeds = list(range(8))
    group = AtariVectorGroup("ALE/Pong-v5", seeds, SHAPE, noop_max=30, max_episode_frames=400)
    first = group.reset()
    assert np.all(first.step_type == ts.StepType.FIRST)
    starts = [int(n) for n in group.episode_frames]
    rng = np.random.default_rng(0)
    last = np.zeros(8, bool)
    for _ in range(300):
        group.send(rng.integers(group.num_actions, size=8).astype(np.int32))
        time_step, frames = group.recv()
        begins = time_step.step_type == ts.StepType.FIRST
        assert np.array_equal(begins, last)
        starts += [int(f) for f in frames[begins]]
        assert np.all(time_step.reward[begins] == 0) and np.all(frames[~begins] <= 4)
        last = time_step.step_type == ts.StepType.LAST
    assert len(starts) >= 16 and 0 <= min(starts) and max(starts) < 120 and len(set(starts)) >= 6, starts
    group.close()
    plays = []
    for sticky in (False, True):
        g = AtariVectorGroup("ALE/Pong-v5", [3], SHAPE, noop_max=0, sticky_actions=sticky)
        g.reset()
        frames = []
        for t in range(200):
            g.send(np.array([2 + (t // 10) % 2], np.int32))   # up and down in turns: the paddle moves
            frames.append(g.recv()[0].observation)
        plays.append(np.stack(frames))
        g.close()
    assert not np.array_equal(plays[0], plays[1])


def test_batch_block_max_is_the_per_frame_block_max():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(3, 210, 160, 3), dtype=np.uint8)
    out = batch_block_max(frames, SHAPE)
    assert out.shape == (3, 64, 64, 3)
    for i in range(3):
        np.testing.assert_array_equal(out[i], resize_frame(frames[i], SHAPE, "max"))


def test_engine_choice_and_refusal():
    assert uses_vector("auto", "ALE/Pong-v5") and not uses_vector("auto", "MiniGrid-Empty-5x5-v0")
    assert not uses_vector("auto", "ALE/Pong-v5", max_pool_frames=False)
    assert not uses_vector("python", "ALE/Pong-v5")
    with pytest.raises(ValueError, match="actor_engine='vector' steps ALE ids"):
        uses_vector("vector", "MiniGrid-Empty-5x5-v0")
    with pytest.raises(ValueError, match="train.actor_engine must be one of"):
        RunSpec.from_args("small", "attention", ["train.actor_engine=fast"], env_id="ALE/Pong-v5")


MODEL_SET = ["model.observation_shape=32,32,3", "model.convlstm_channels=16", "model.query_hidden=16",
             "model.answer_hidden=32", "model.lstm_units=16", "model.head_hidden=16"]


@pytest.mark.slow
def test_actor_process_with_two_vector_groups_writes_trajectories_the_learner_can_replay(tmp_path):
    """A real `s3ta actor` on Pong: 4 environments in 2 double-buffered groups. Each environment's
    windows continue into the next, carry the policy version that acted, count 4 frames per
    step, and the learner's unroll from the stored recurrent state reproduces the behaviour
    logits (each group's state stays with its own environments)."""
    server = start_server(0, ReplaySettings(64))
    try:
        address = f"localhost:{server.port}"
        spec = RunSpec.from_args("small", "attention", MODEL_SET + ["train.unroll_length=5", "train.noop_max=0"], env_id="ALE/Pong-v5",
                                 precision="float32")
        network = spec.build_network(6)
        push_variables(reverb.Client(address), 3, [v.numpy() for v in network.variables])
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "actor", "--env", "ALE/Pong-v5", "--preset", "small",
             *sum((["--set", s] for s in MODEL_SET), []), "--precision", "float32",
             "--set", "train.unroll_length=5", "--set", "train.actor_groups=2", "--set", "train.noop_max=0", "--replay-address", address,
             "--root-dir", str(tmp_path), "--actor-id", "0", "--num-envs", "4", "--max-steps", "21"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 group(s) of AtariVectorGroup" in result.stdout + result.stderr
        assert server.localhost_client().server_info()[TRAJECTORY_TABLE].current_size == 16   # 4 per env
        batch = next(iter(make_dataset(address, experience_spec(network), 6, batch_size=16)))
        assert np.all(batch.policy_version.numpy() == 3)
        assert np.all(batch.frames.numpy()[:, :-1] == 4)
        assert continuing_windows(batch) >= 12   # every window but each env's last continues into the next one
        assert_unroll_reproduces_behaviour_logits(network, batch)
        status = json.loads((tmp_path / "actors" / "actor-0.json").read_text())
        assert status["frames"] == 4 * 21 * 4   # 4 envs x 21 steps x 4 frames (no no-op starts here)
        assert set(status["time_split"]) >= {"emulation", "inference", "writing", "replay_blocked", "other"}
    finally:
        server.stop()
