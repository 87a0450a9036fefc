"""The trained Pong attention agent committed in results/pong-attention/model plays Pong, scored with
the papers' protocol (s3ta evaluate's: up to 30 random no-op starts, sampled actions, seeds
recorded): it must win by +10 on average over 3 episodes (random play scores -20.7), and it
must be the S3TA agent, not a baseline. Its 10-episode evaluation is in
results/pong-attention/eval-final/ (docs/RESULTS.md)."""
from __future__ import annotations

import json
import os

import numpy as np

from pipelines.analysis.stepper import load_stepper
from pipelines.evaluation.protocol import Protocol, evaluate_game
import pytest

pytestmark = pytest.mark.slow   # see setup.cfg's markers: `make test-fast` leaves it out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "results", "pong-attention", "model")


def test_the_committed_pong_attention_agent_wins_by_ten_over_three_episodes():
    stepper = load_stepper(MODEL)
    assert stepper.variant == "attention" and stepper.num_heads == 4
    result = evaluate_game(stepper, "ALE/Pong-v5", Protocol(episodes=3, num_envs=3, seed=0))
    returns = [e["return"] for e in result["episodes"]]
    assert len(returns) == 3 and all(e["frames"] > 0 for e in result["episodes"])
    assert np.mean(returns) >= 10.0, f"committed Pong agent scored {returns} (mean {np.mean(returns):.1f}), need >= +10"


def test_the_committed_evaluation_record_matches_the_model():
    with open(os.path.join(ROOT, "results", "pong-attention", "eval-final", "evaluation.json")) as f:
        record = json.load(f)
    summary = record["games"][0]["summary"]
    assert record["variant"] == "attention" and summary["env"] == "ALE/Pong-v5"
    assert summary["episodes"] >= 10 and record["protocol"]["noop_max"] == 30
