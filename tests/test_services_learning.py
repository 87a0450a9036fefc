"""Learning through the real services: the demo run (`s3ta train` with the small attention
agent on MiniGrid-Empty-5x5-v0 pixels: Reverb on localhost, learner and actor processes) must
produce an agent that *solves* the task, in a way a bias-only or random policy cannot pass:

* its greedy policy reaches the goal in at least 90% of 20 evaluation episodes (a policy that
  ignores the frame reaches it in none: it turns in circles or runs into a wall), and
* its action distribution depends on the frame (it differs across the frames of an episode).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from agents.impala.config import DEMO
from pipelines.analysis.stepper import load_stepper
from pipelines.evaluation.protocol import Protocol, evaluate_game
import pytest

pytestmark = pytest.mark.slow   # see setup.cfg's markers: `make test-fast` leaves it out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = DEMO["env_id"]


def test_demo_attention_agent_solves_minigrid(tmp_path):
    """The demo run itself (``s3ta train`` with no flags: agents.impala.config.DEMO), spelled out
    so that it writes to tmp_path; its greedy policy must reach the goal."""
    args = ["train", "--env", ENV, "--preset", DEMO["preset"], "--agent", DEMO["agent"],
            *[a for o in DEMO["overrides"] for a in ("--set", o)], "--root-dir", str(tmp_path),
            "--max-frames", str(DEMO["max_frames"]), "--actors", str(DEMO["actors"]),
            "--stop-at-return", str(DEMO["stop_at_return"])]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "train: reached mean return" in result.stdout

    stepper = load_stepper(str(tmp_path / "export" / "latest"))
    game = evaluate_game(stepper, ENV, Protocol(episodes=20, num_envs=4, greedy=True, seed=5))
    reached = [e["return"] > 0 for e in game["episodes"]]  # MiniGrid rewards only the goal
    print("greedy returns", [round(e["return"], 3) for e in game["episodes"]])
    assert sum(reached) >= 18, f"greedy policy reached the goal in {sum(reached)}/20 episodes"
    assert game["summary"]["mean"] > 0.8

    # The policy depends on the frame: along an episode the action distribution changes.
    from agents.environments import make_environment
    env_ = make_environment(ENV, seed=11, observation_shape=stepper.observation_shape)
    t, state, a, r, first = env_.reset(), stepper.initial_state(1), 0, 0.0, True
    probs = []
    for _ in range(12):
        out, state = stepper.step(t.observation[None], [a], [r], state, [first])
        logits = out["logits"][0]
        p = np.exp(logits - logits.max()); p /= p.sum()
        probs.append(p)
        a, first = int(np.argmax(p)), False
        t = env_.step(np.int32(a)); r = float(t.reward)
        if t.is_last():
            break
    probs = np.array(probs)
    assert probs.std(axis=0).max() > 0.1, probs  # a bias-only policy has std 0
    assert len(set(probs.argmax(axis=1))) >= 2      # it turns and it moves forward

    progress = json.loads((tmp_path / "learner.json").read_text())
    assert progress["frames"] >= DEMO["max_frames"] or "(stopped at the target)" in result.stdout
    assert progress["nonfinite_updates"] == 0
    assert os.path.exists(tmp_path / "checkpoints" / "checkpoint")
