"""The evaluation protocol and human-normalised scores (s3ta evaluate), on real ALE games."""
from __future__ import annotations

import json
import os

import gymnasium as gym
import numpy as np
import pytest

from agents.environments import NoopReset, _find_wrapper, make_environment
from pipelines.evaluation import scores
from pipelines.evaluation.protocol import Protocol, evaluate_game, write_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UniformStepper:
    """A stepper (pipelines/analysis/stepper.py) whose policy is uniform: a random agent."""
    variant, num_heads, feature_shape = "uniform", 0, None

    def __init__(self, num_actions: int, observation_shape=(64, 64, 3)):
        self.num_actions, self.observation_shape = num_actions, observation_shape
        self.calls = 0

    def initial_state(self, batch_size):
        return {"h": np.zeros((batch_size, 1), np.float32)}

    def step(self, observation, prev_action, prev_reward, state, first=None):
        assert observation.shape[1:] == self.observation_shape
        self.calls += 1
        return {"logits": np.zeros((len(observation), self.num_actions), np.float32)}, dict(state)


# ------------------------------------------------------------------ human-normalised scores
@pytest.mark.parametrize("game, score, expected", [
    ("pong", 14.6, 100.0), ("pong", -20.7, 0.0), ("ALE/Pong-v5", 0.0, 100 * 20.7 / 35.3),
    ("breakout", 16.1, 50.0), ("ALE/Breakout-v5", 1.7, 0.0),
    ("ms_pacman", 307.3 + 0.5 * (6951.6 - 307.3), 50.0), ("ALE/MontezumaRevenge-v5", 4753.3, 100.0),
    ("double_dunk", -17.5, 50.0),
])
def test_human_normalized_matches_hand_computed_values(game, score, expected):
    assert scores.human_normalized(game, score) == pytest.approx(expected, abs=1e-9)


def test_aggregates_median_mean_and_capped_mean():
    agg = scores.aggregate({"a": 50.0, "b": 150.0, "c": -10.0, "d": 400.0})
    assert agg["games"] == 4
    assert agg["median"] == pytest.approx(100.0)           # (50 + 150) / 2
    assert agg["mean"] == pytest.approx(147.5)             # 590 / 4
    assert agg["capped_mean"] == pytest.approx(60.0)       # (50 + 100 - 10 + 100) / 4
    assert scores.aggregate({"a": 3.0, "b": 1.0, "c": 2.0})["median"] == 2.0
    assert scores.aggregate({})["median"] is None


def test_the_57_games_are_real_ale_ids_and_sets_expand():
    import ale_py
    gym.register_envs(ale_py)
    ids = scores.expand_env_list("atari57")
    assert len(ids) == 57 == len(set(ids))
    for env_id in ids:
        gym.spec(env_id)  # raises if ALE does not know the id
        assert scores.game_name(env_id) is not None
    assert scores.expand_env_list("atari-easy,ALE/Pong-v5,pong") == [scores.ale_id(g) for g in
                                                                      scores.GAME_SETS["atari-easy"]]
    assert scores.game_name("MiniGrid-Empty-5x5-v0") is None
    with pytest.raises(ValueError, match="57 Atari games"):
        scores.human_normalized("MiniGrid-Empty-5x5-v0", 1.0)


# ------------------------------------------------------------------ protocol
def test_noop_starts_stay_within_bounds_and_are_counted_as_frames():
    env = make_environment("ALE/Pong-v5", seed=3, noop_max=30, observation_shape=(64, 64, 3))
    noops = []
    for _ in range(12):
        env.reset()
        n = _find_wrapper(env.gym_env, NoopReset).last_noops
        assert 0 <= n <= 30
        assert env.episode_frames == 4 * n  # each no-op is one action repeat of emulator frames
        noops.append(n)
    assert len(set(noops)) > 1  # random, not a constant


def test_the_frame_cap_ends_an_episode_as_truncated():
    stepper = UniformStepper(6)
    protocol = Protocol(episodes=3, num_envs=3, max_episode_frames=400, noop_max=5, seed=1)
    game = evaluate_game(stepper, "ALE/Pong-v5", protocol)
    assert game["summary"]["episodes"] == 3
    assert game["summary"]["truncated"] == 3
    for e in game["episodes"]:
        # ALE's own count also holds the few frames its reset steps (not agent frames): the cut
        # comes at most one action repeat plus those frames before 400 agent-stepped frames.
        assert e["truncated"] and 400 - 4 - 16 <= e["frames"] <= 400
        assert 0 <= e["noops"] <= 5


@pytest.mark.slow
def test_seeds_reproduce_and_every_episode_is_recorded(tmp_path):
    protocol = Protocol(episodes=4, num_envs=2, max_episode_frames=2000, seed=7)
    a = evaluate_game(UniformStepper(6), "ALE/Pong-v5", protocol)
    b = evaluate_game(UniformStepper(6), "ALE/Pong-v5", protocol)
    c = evaluate_game(UniformStepper(6), "ALE/Pong-v5", Protocol(episodes=4, num_envs=2,
                                                                   max_episode_frames=2000, seed=8))
    key = lambda g: [(e["env_seed"], e["noops"], e["return"], e["frames"]) for e in g["episodes"]]
    assert key(a) == key(b)
    assert key(a) != key(c)
    assert sorted(e["env_seed"] for e in a["episodes"]) == [7000, 7000, 7001, 7001]  # 2 episodes per env

    result = write_results(str(tmp_path), "uniform", protocol, [a], {})
    data = json.loads((tmp_path / "evaluation.json").read_text())
    s = data["games"][0]["summary"]
    rets = [e["return"] for e in a["episodes"]]
    assert s["mean"] == pytest.approx(np.mean(rets))
    assert s["stderr"] == pytest.approx(np.std(rets, ddof=1) / 2.0)
    assert s["human_normalized"] == pytest.approx(scores.human_normalized("pong", np.mean(rets)))
    assert data["human_normalized"]["games"] == 1
    csv = (tmp_path / "episodes.csv").read_text().strip().splitlines()
    assert len(csv) == 1 + 4 and csv[0].startswith("env,env_index,env_seed")
    assert "| ALE/Pong-v5 | 4 |" in (tmp_path / "evaluation.md").read_text()
    assert result["human_normalized"]["median"] == pytest.approx(s["human_normalized"])


def test_a_model_with_the_wrong_action_count_is_refused():
    with pytest.raises(ValueError, match="6 actions but the model has 18; use --full-action-space"):
        evaluate_game(UniformStepper(18), "ALE/Pong-v5", Protocol(episodes=1, num_envs=1))


# ------------------------------------------------------------------ the commands
def _fake_run(root, env_id, returns):
    import tensorflow as tf
    os.makedirs(root / "summaries" / "learner")
    (root / "run.json").write_text(json.dumps({"kind": "rl", "env_id": env_id, "variant": "attention"}))
    writer = tf.summary.create_file_writer(str(root / "summaries" / "learner"))
    with writer.as_default():
        for step, r in enumerate(returns, start=1):
            tf.summary.scalar("episode_return", r, step=step)
            tf.summary.scalar("frames", 1000 * step, step=step)
    writer.close()


def test_plot_overlays_runs_with_human_normalised_curves(tmp_path, capsys):
    from pipelines.cli import main
    from pipelines.evaluation.curves import load_curve

    _fake_run(tmp_path / "a", "ALE/Pong-v5", [-21.0, -10.0, 14.6])
    _fake_run(tmp_path / "b", "ALE/Pong-v5", [-20.7, -20.0, -15.0])
    curve = load_curve(str(tmp_path / "a"))
    np.testing.assert_allclose(curve["frames"], [1000, 2000, 3000])
    np.testing.assert_allclose(curve["hns"], [scores.human_normalized("pong", r) for r in (-21, -10, 14.6)],
                               rtol=1e-5)
    out = tmp_path / "fig" / "pong.png"
    assert main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--csv"]) == 0
    assert out.stat().st_size > 10_000 and (tmp_path / "fig" / "pong.svg").exists()
    rows = (tmp_path / "fig" / "pong-a.csv").read_text().splitlines()
    assert rows[0] == "train_step,frames,episode_return,human_normalized" and rows[-1].startswith("3,3000,14.6")
    with pytest.raises(SystemExit) as e:
        main(["plot", str(tmp_path / "nothing-here"), "--out", str(out)])
    assert e.value.code == 2 and "summaries/learner" in capsys.readouterr().err


# ------------------------------------------------------------------ the cross-game table
def _evaluation_dir(root, game_id, variant, returns, sticky=True):
    """An evaluation directory as `s3ta evaluate` writes it, with the given episode returns."""
    from pipelines.evaluation.protocol import summarize
    protocol = Protocol(episodes=len(returns), num_envs=1, sticky_actions=sticky)
    episodes = [{"env": 0, "env_seed": 0, "episode_of_env": i, "return": r, "frames": 1000, "noops": 0,
                 "truncated": False} for i, r in enumerate(returns)]
    out = os.path.join(str(root), f"{game_id.split('/')[1]}-{variant}-{len(os.listdir(str(root)))}")
    write_results(out, "model", protocol, [summarize(game_id, episodes, protocol, 1.0)], {"variant": variant})
    return out


def test_the_results_table_averages_seeds_and_sets_the_anchors_beside(tmp_path, capsys):
    from pipelines.evaluation import anchors
    dirs = [_evaluation_dir(tmp_path, "ALE/Pong-v5", "attention", [16.0, 18.0]),      # seed 0: 17
            _evaluation_dir(tmp_path, "ALE/Pong-v5", "attention", [13.0, 13.0]),      # seed 1: 13
            _evaluation_dir(tmp_path, "ALE/Breakout-v5", "attention", [48.0, 52.0]),    # one seed, 2 episodes
            _evaluation_dir(tmp_path, "ALE/Breakout-v5", "fixed-query", [10.0]),
            _evaluation_dir(tmp_path, "ALE/Pong-v5", "attention", [-21.0], sticky=False)]  # not counted
    assert anchors.main(dirs) == 0
    table = capsys.readouterr().out
    pong_hns = scores.human_normalized("pong", 15.0)
    # the no-op evaluation of the same game and variant sits beside the sticky score, not in it
    assert f"| pong | attention | 15.0 (13.0 to 17.0, 2 seeds) | {pong_hns:.1f} | -21.0 | -4.9 | 15.2 | 15.2 | no |" in table
    # one seed: its mean ± the standard error over its episodes; no no-op evaluation given: a dash
    assert "| breakout | attention | 50.0 ± 2.00 | " in table and "| – | 21.5 | 41.9 | 102.7 | yes |" in table
    assert "| breakout | fixed-query | 10.0 | " in table                                   # one episode: no ±
    breakout_hns = scores.human_normalized("breakout", 50.0)
    assert f"| attention | 2 | {(pong_hns + breakout_hns) / 2:.1f} | {(pong_hns + breakout_hns) / 2:.1f} |" in table
    assert f"| fixed-query | 1 | {scores.human_normalized('breakout', 10.0):.1f} |" in table
    assert anchors.anchor("ALE/Seaquest-v5", "IQN") == 4410.7 and anchors.anchor("alien") is None


def test_the_results_table_refuses_a_directory_without_an_evaluation(tmp_path, capsys):
    from pipelines.evaluation import anchors
    assert anchors.main([str(tmp_path)]) == 2
    assert "holds no evaluation.json; expected the --out directory of `s3ta evaluate`" in capsys.readouterr().err
    no_sticky = _evaluation_dir(tmp_path, "ALE/Pong-v5", "attention", [1.0], sticky=False)
    assert anchors.main([no_sticky]) == 2
    assert "none of these evaluations used sticky actions" in capsys.readouterr().err
