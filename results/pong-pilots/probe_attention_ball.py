"""Does a trained attention agent look at Pong's ball? Attention mass on the ball's cell.

Plays Pong with an exported agent (a run's ``export/latest`` or any SavedModel / checkpoint that
``s3ta analyze`` takes), finds the ball in each 64x64 frame the agent sees (the white pixels
between the court's top and bottom walls), and reports, per head, the mean attention weight on
the ball's cell of the attention map (chance: 1/(h*w)), the same for the head's mean map over the run (a head that does not follow the ball
scores the same on both), the weight within one cell of it, and how
much of the attention varies with the frame at all (1 - the mass a fixed map, the head's mean
over the run, shares with each step's map; 0 for a head that always looks at the same cells).

    python results/pong-pilots/probe_attention_ball.py MODEL_DIR [--steps N] [--policy greedy|sample]
    python results/pong-pilots/probe_attention_ball.py init [--set model.x=y ...]   # untrained atari-cpu
"""
import argparse
import json

import numpy as np

from pipelines.analysis.rollout import make_analysis_environment, run_agent
from pipelines.analysis.stepper import as_stepper, load_stepper

BALL = np.array([236, 236, 236])      # the ball and the walls; the walls are outside the court rows


def ball_pixel(frame: np.ndarray):
    """(y, x) of the ball in a frame shrunk from 210x160, or None when it is not in play."""
    h = frame.shape[0]
    top, bottom = int(np.ceil(35 * h / 210)), int(np.floor(193 * h / 210))
    court = frame[top:bottom]
    ys, xs = np.nonzero(np.all(np.abs(court.astype(int) - BALL) < 40, axis=-1))
    if len(ys) == 0:
        return None
    return int(np.median(ys)) + top, int(np.median(xs))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--policy", default="sample", choices=("sample", "greedy"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], help="model.x=y for 'init' (an untrained network)")
    a = p.parse_args()
    if a.model == "init":
        import s3ta_tf
        from s3ta_tf.config import agent_config
        import tensorflow as tf
        tf.random.set_seed(a.seed)
        cfg = agent_config("atari-cpu", [s.split("model.", 1)[-1] for s in a.set])
        stepper = as_stepper(s3ta_tf.build_agent_net(cfg, variant="attention", num_actions=6))
    else:
        stepper = load_stepper(a.model)
    env = make_analysis_environment("ALE/Pong-v5", stepper, seed=a.seed, resize=True)
    r = run_agent(stepper, env, a.steps, policy=a.policy, seed=a.seed, progress=False)
    att = r.attention                                   # [T, N, h, w]
    T, N, h, w = att.shape
    H, W = r.frames.shape[1:3]
    mean_map = att.mean(axis=0)                         # [N, h, w]
    on, near, fixed, steps = np.zeros(N), np.zeros(N), np.zeros(N), 0
    for t in range(T):
        b = ball_pixel(r.frames[t])
        if b is None:
            continue
        i, j = b[0] * h // H, b[1] * w // W
        on += att[t, :, i, j]
        fixed += mean_map[:, i, j]
        near += att[t, :, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].sum(axis=(1, 2))
        steps += 1
    shared = np.minimum(att, mean_map[None]).sum(axis=(2, 3)).mean(axis=0)
    out = {"model": a.model, "steps": T, "steps_with_ball": steps, "chance_on_cell": 1.0 / (h * w),
           "on_ball_cell": (on / max(steps, 1)).round(4).tolist(),
           "fixed_map_on_ball_cell": (fixed / max(steps, 1)).round(4).tolist(),
           "within_one_cell": (near / max(steps, 1)).round(4).tolist(),
           "frame_dependent_mass": (1.0 - shared).round(4).tolist(),
           # Spread over the map's cells of each logit part (mean over steps): content ("what",
           # the keys) against position ("where", the spatial basis).
           "what_spread": r.what.reshape(T, N, -1).std(axis=-1).mean(axis=0).round(3).tolist(),
           "where_spread": r.where.reshape(T, N, -1).std(axis=-1).mean(axis=0).round(3).tolist(),
           "episode_rewards": float(r.rewards.sum())}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
