"""Can the attention heads follow Pong's ball when the task needs the ball? A supervised probe.

No RL: random play fills a buffer of Pong frames; each frame is labelled from the emulator's RAM
(OCAtari's boxes) with the action of a player that tracks the ball — UP when the ball's centre is
above its paddle's centre by more than ``--margin`` pixels, DOWN when below, NOOP when the ball is
level or off screen — and the attention agent's policy logits are trained on those labels by cross
entropy over unrolls of ``--unroll`` steps, as the learner unrolls them. Then, on held-out
frames, it reports the label accuracy and every head's object scores (lift and hit rate on the
ball and on the paddle; ``pipelines.analysis.object_scores``). A preset whose heads stay off the
ball here, where the answer depends on nothing else, will not grow ball-tracking heads in RL.

    python research/supervised_attention.py --preset atari-cpu-fine [--updates 1500] [--set model.x=y] \
        [--out results/attention-probe/fine.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

UP, DOWN, NOOP = 2, 3, 0        # Pong's minimal action set: NOOP, FIRE, RIGHT (up), LEFT (down), ...


def tracking_label(boxes: dict, margin: float) -> int:
    """The action of a player whose paddle follows the ball (from one step's object boxes)."""
    if not boxes["Ball"] or not boxes["Player"]:
        return NOOP
    bx, by, bw, bh = boxes["Ball"][0]
    px, py, pw, ph = boxes["Player"][0]
    d = (by + bh / 2) - (py + ph / 2)
    return NOOP if abs(d) <= margin else (UP if d < 0 else DOWN)


def collect(envs: int, frames: int, shape, seed: int, margin: float):
    """Random play: observations [E, F, H, W, 3], previous actions/rewards, firsts, labels and the
    object boxes of every frame (per environment, a list of F dicts)."""
    from agents.environments import make_environment
    from pipelines.analysis.object_scores import RamObjects

    rng = np.random.default_rng(seed)
    out = {k: [] for k in ("obs", "prev_action", "prev_reward", "first", "label")}
    boxes = []
    for e in range(envs):
        env = make_environment("ALE/Pong-v5", seed=seed + e, observation_shape=shape)
        reader = RamObjects(env)
        rows = {k: [] for k in out}
        env_boxes = []
        ts, prev_a, prev_r = env.reset(), 0, 0.0
        for _ in range(frames):
            b = reader.read(ts.is_first())
            env_boxes.append(b)
            for k, v in (("obs", ts.observation), ("prev_action", prev_a), ("prev_reward", prev_r),
                         ("first", ts.is_first()), ("label", tracking_label(b, margin))):
                rows[k].append(v)
            prev_a = int(rng.integers(env.num_actions))
            ts = env.step(np.int32(prev_a))
            prev_r = float(ts.reward)
            if ts.is_last():
                ts, prev_a, prev_r = env.reset(), 0, 0.0
        env.close()
        for k in out:
            out[k].append(rows[k])
        boxes.append(env_boxes)
    return {k: np.asarray(v) for k, v in out.items()}, boxes, reader.categories, reader.screen_hw


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="atari-cpu-fine", help="model preset (s3ta_tf.config.model)")
    p.add_argument("--set", action="append", default=[], metavar="model.FIELD=VALUE", help="model override")
    p.add_argument("--updates", type=int, default=1500, help="training updates")
    p.add_argument("--envs", type=int, default=8, help="environments of random play")
    p.add_argument("--frames", type=int, default=2500, help="frames per environment (the last 20%% held out)")
    p.add_argument("--unroll", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--margin", type=float, default=4.0, help="pixels within which the ball counts as level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the result as JSON here")
    return p.parse_args(argv)


def train_on_windows(net, data, a, split: int, rng, t0: float) -> None:
    """``a.updates`` Adam updates of the cross-entropy of the labels on random windows of
    ``a.unroll`` steps from the first ``split`` frames of each environment."""
    import tensorflow as tf

    opt = tf.keras.optimizers.Adam(a.lr)

    def window(n):
        e = rng.integers(a.envs, size=n)
        s = rng.integers(0, split - a.unroll, size=n)
        idx = s[:, None] + np.arange(a.unroll)[None]
        g = lambda x: x[e[:, None], idx]  # noqa: E731
        return (g(data["obs"]), g(data["prev_action"]).astype(np.int32), g(data["prev_reward"]).astype(np.float32),
                g(data["first"]), g(data["label"]).astype(np.int32))

    @tf.function
    def train(o, pa, pr, f, y):
        with tf.GradientTape() as tape:
            out, _ = net.unroll(o, pa, pr, f, net.initial_state(tf.shape(o)[0]))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, out["logits"]))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    for step in range(1, a.updates + 1):
        loss = train(*window(a.batch))
        if step % 250 == 0 or step == a.updates:
            print(f"update {step}: loss {float(loss):.3f} ({time.time() - t0:.0f}s)", flush=True)


def score_held_out(net, data, boxes, categories, screen_hw, held: slice, envs: int):
    """Accuracy and per-head object scores on each environment's held-out frames, unrolled
    from a zero state."""
    from pipelines.analysis import object_scores as obj

    out, _ = net.unroll(data["obs"][:, held], data["prev_action"][:, held].astype(np.int32),
                        data["prev_reward"][:, held].astype(np.float32), data["first"][:, held],
                        net.initial_state(envs))
    accuracy = float(np.mean(np.argmax(out["logits"].numpy(), -1) == data["label"][:, held]))
    attention = out["attention"].numpy().reshape((-1,) + tuple(out["attention"].shape[2:]))  # [E*T, N, h, w]
    grid = attention.shape[-2:]
    flat_boxes = [b for env_boxes in boxes for b in env_boxes[held]]
    tracks = obj.track_objects(flat_boxes, categories, screen_hw, grid)
    scores = {t.category: {k: v for k, v in obj.object_scores(attention, t).items() if k != "series"}
              for t in tracks}
    return accuracy, grid, scores


def main(argv=None) -> dict:
    a = parse(argv)
    import tensorflow as tf
    import s3ta_tf
    from pipelines.analysis import object_scores as obj
    from s3ta_tf.config import agent_config

    tf.random.set_seed(a.seed)
    cfg = agent_config(a.preset, [s.split("model.", 1)[-1] for s in a.set])
    t0 = time.time()
    data, boxes, categories, screen_hw = collect(a.envs, a.frames, cfg.observation_shape, a.seed, a.margin)
    split = int(a.frames * 0.8)
    labels = data["label"]
    majority = float(np.bincount(labels[:, split:].ravel()).max() / labels[:, split:].size)
    print(f"collected {labels.size} frames in {time.time() - t0:.0f}s; held-out majority rate {majority:.3f}",
          flush=True)
    net = s3ta_tf.build_agent_net(cfg, variant="attention", num_actions=6)
    train_on_windows(net, data, a, split, np.random.default_rng(a.seed), t0)
    accuracy, grid, scores = score_held_out(net, data, boxes, categories, screen_hw, slice(split, a.frames), a.envs)
    result = {"preset": a.preset, "overrides": a.set, "grid": list(grid), "updates": a.updates,
              "held_out_accuracy": accuracy, "majority_rate": majority, "seconds": time.time() - t0,
              "attention": scores}
    print(f"{a.preset} {grid[0]}x{grid[1]}: held-out accuracy {accuracy:.3f} (majority {majority:.3f})")
    for line in obj.head_lines({"attention": {c: scores[c] for c in ("Ball", "Player")}}):
        print("  " + line)
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
