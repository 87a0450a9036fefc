"""Learning through the real services: `s3ta train` (Reverb on localhost, learner and actor
processes) with the `small` attention agent on MiniGrid-Empty-5x5-v0 pixels clearly beats a
random policy, measured in the same test, within a fixed budget of emulator frames."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np

from agents.environments import make_environment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "MiniGrid-Empty-5x5-v0"
FRAMES = 80_000
EPISODES = 100  # returns compared: the last 100 training episodes vs 200 random episodes


def random_policy_returns(episodes: int, seed: int = 0) -> np.ndarray:
    env = make_environment(ENV, seed=seed, observation_shape=(40, 40, 3))
    rng = np.random.default_rng(seed)
    returns, total = [], 0.0
    env.reset()
    while len(returns) < episodes:
        step = env.step(np.int32(rng.integers(env.num_actions)))
        total += float(step.reward)
        if step.is_last():
            returns.append(total)
            total = 0.0
            env.reset()
    return np.asarray(returns)


def test_small_attention_agent_beats_a_random_policy_on_minigrid(tmp_path):
    random_returns = random_policy_returns(200)
    args = ["train", "--env", ENV, "--preset", "small", "--agent", "attention",
            "--set", "observation_shape=40,40,3", "--root-dir", str(tmp_path),
            "--max-frames", str(FRAMES), "--actors", "1"]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    records = []
    for path in glob.glob(str(tmp_path / "actors" / "episodes-*.jsonl")):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    records.sort(key=lambda r: r["time"])
    assert len(records) >= 2 * EPISODES
    # (The first episodes to finish are the short, successful ones: not a random-policy sample.)
    first = np.mean([r["return"] for r in records[:EPISODES]])
    last = np.mean([r["return"] for r in records[-EPISODES:]])
    baseline = random_returns.mean()
    print(f"random policy {baseline:.3f}; first {EPISODES} episodes {first:.3f}; last {EPISODES} {last:.3f}")
    # Random: about 0.2 (standard error over 100 episodes about 0.03).
    assert last > baseline + 0.12 and last > 1.6 * baseline, (baseline, first, last)

    # The run ended cleanly: learner at max frames, a final checkpoint and a SavedModel export.
    progress = json.loads((tmp_path / "learner.json").read_text())
    assert progress["frames"] >= FRAMES and progress["nonfinite_updates"] == 0
    assert os.path.exists(tmp_path / "export" / "latest" / "saved_model.pb")
    assert os.path.exists(tmp_path / "checkpoints" / "checkpoint")
