"""Can the agent's network find Pong's ball and paddle? A supervised probe (no RL).

Plays Pong with random actions, labels each frame from the emulator RAM with the action a
ball-tracking player would take (UP if the ball is above its paddle by > 4 units, DOWN if
below, else NOOP), and trains the network's policy logits on those labels by cross entropy
over unrolls of T steps, the way the learner unrolls it. A network whose accuracy stays at
the majority-class rate cannot see where the ball is relative to the paddle.

    python results/pong-pilots/probe_supervised.py VARIANT [--steps N] [--set model.x=y ...]
"""
import argparse, time
import numpy as np
import tensorflow as tf

from agents.environments import make_environment
from s3ta_tf.config import agent_config
import s3ta_tf

p = argparse.ArgumentParser()
p.add_argument("variant"); p.add_argument("--steps", type=int, default=1500)
p.add_argument("--envs", type=int, default=8); p.add_argument("--frames", type=int, default=2500)
p.add_argument("--T", type=int, default=20); p.add_argument("--batch", type=int, default=8)
p.add_argument("--lr", type=float, default=5e-4); p.add_argument("--set", action="append", default=[])
a = p.parse_args()
tf.random.set_seed(0); rng = np.random.default_rng(0)
cfg = agent_config("atari-cpu", [s.split("model.", 1)[-1] for s in a.set])

obs, acts, rews, firsts, labels = [], [], [], [], []
for e in range(a.envs):
    env = make_environment("ALE/Pong-v5", seed=e, observation_shape=cfg.observation_shape)
    ts = env.reset(); o, ac, rw, fs, lb = [], [], [], [], []
    prev_a, prev_r = 0, 0.0
    for t in range(a.frames):
        ram = env._env.unwrapped.ale.getRAM()
        ball_y, pad_y = int(ram[54]), int(ram[51])
        d = ball_y - (pad_y + 8)
        lb.append(0 if ram[54] == 0 or abs(d) <= 4 else (2 if d < 0 else 3))
        o.append(ts.observation); ac.append(prev_a); rw.append(prev_r); fs.append(ts.is_first())
        act = int(rng.integers(6)); ts = env.step(np.int32(act))
        prev_a, prev_r = act, float(ts.reward)
        if ts.is_last():
            ts = env.reset(); prev_a, prev_r = 0, 0.0
    obs.append(o); acts.append(ac); rews.append(rw); firsts.append(fs); labels.append(lb)
obs, acts, rews, firsts, labels = (np.asarray(x) for x in (obs, acts, rews, firsts, labels))
print("labels", np.bincount(labels.ravel(), minlength=4) / labels.size, flush=True)
split = int(a.frames * 0.8)

net = s3ta_tf.build_agent_net(cfg, variant=a.variant, num_actions=6)
opt = tf.keras.optimizers.Adam(a.lr)
tf.get_logger().setLevel("ERROR")

def batch(lo, hi, n):
    e = rng.integers(a.envs, size=n); s = rng.integers(lo, hi - a.T, size=n)
    idx = s[:, None] + np.arange(a.T)[None]
    g = lambda x: x[e[:, None], idx]
    return g(obs), g(acts).astype(np.int32), g(rews).astype(np.float32), g(firsts), g(labels).astype(np.int32)

@tf.function
def train(o, pa, pr, f, y):
    with tf.GradientTape() as tape:
        out, _ = net.unroll(o, pa, pr, f, net.initial_state(tf.shape(o)[0]))
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, out["logits"]))
    g = tape.gradient(loss, net.trainable_variables)
    opt.apply_gradients(zip(g, net.trainable_variables))
    return loss, tf.reduce_mean(tf.cast(tf.argmax(out["logits"], -1, output_type=tf.int32) == y, tf.float32))

@tf.function
def evaluate(o, pa, pr, f, y):
    out, _ = net.unroll(o, pa, pr, f, net.initial_state(tf.shape(o)[0]))
    return tf.reduce_mean(tf.cast(tf.argmax(out["logits"], -1, output_type=tf.int32) == y, tf.float32))

t0 = time.time(); accs = []
for step in range(1, a.steps + 1):
    loss, acc = train(*batch(0, split, a.batch)); accs.append(float(acc))
    if step % 250 == 0:
        held = np.mean([float(evaluate(*batch(split, a.frames, 32))) for _ in range(4)])
        print(f"{a.variant} step {step} loss {float(loss):.3f} train acc {np.mean(accs[-250:]):.3f} "
              f"held-out acc {held:.3f} ({time.time() - t0:.0f}s)", flush=True)
