"""Can the agent see Pong's ball? A supervised probe, minutes instead of an RL run's hours.

Pong frames (64x64, the atari-cpu input) are collected from 16 environments under random,
persistent actions; each step is labelled from the emulator's RAM with where the ball is
relative to the agent's paddle (0: above, 1: level, 2: below; RAM bytes 54 ball y and
51 paddle y; steps without a ball in play are left out of the loss). Each model variant is
trained on 20-step sequences (from a zero state, as the learner's unrolls start) with a
cross-entropy loss on its first three policy logits, Adam 5e-4, and its accuracy measured on
held-out environments. Knowing the ball's side of the paddle is what a Pong policy needs first;
a model that cannot learn it from labels will not learn it from Pong's sparse rewards.

    python research/ball_side_probe.py --steps 600 [--variants NAME=AGENT:SET;SET ...] [--out FILE]

Prints a table (accuracy every --eval-every steps) and writes it as JSON (the run of LEARNING §10:
results/pong-probe/ball_probe.json).
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")

from agents.environments import make_environment  # noqa: E402
from agents.impala.builder import RunSpec  # noqa: E402

ENV = "ALE/Pong-v5"
BALL_Y, PADDLE_Y = 54, 51
LEVEL = 4  # |ball − paddle centre| below this many RAM units counts as level
VARIANTS = {
    "feedforward": ("feedforward", []),
    "attention": ("attention", []),
    "attention_q0.3": ("attention", ["model.initial_query_scale=0.3"]),
    "attention_q0.3_norm": ("attention", ["model.initial_query_scale=0.3", "model.lstm_input_norm=true"]),
}


def label(ram) -> int:
    ball, paddle = int(ram[BALL_Y]), int(ram[PADDLE_Y])
    if ball == 0:       # no ball in play
        return -1
    d = ball - (paddle + 8)
    return 0 if d < -LEVEL else (2 if d > LEVEL else 1)


def collect(num_envs: int, steps: int, seed: int):
    """observations [E, S, 64, 64, 3] uint8, actions [E, S], labels [E, S]."""
    envs = [make_environment(ENV, seed=seed + i, observation_shape=(64, 64, 3)) for i in range(num_envs)]
    rng = np.random.default_rng(seed)
    obs = np.zeros((num_envs, steps, 64, 64, 3), np.uint8)
    acts = np.zeros((num_envs, steps), np.int32)
    labels = np.zeros((num_envs, steps), np.int32)
    for i, env in enumerate(envs):
        ts, a = env.reset(), 0
        for t in range(steps):
            obs[i, t] = ts.observation
            labels[i, t] = label(env._env.unwrapped.ale.getRAM())
            if rng.random() > 0.8:
                a = int(rng.integers(env.num_actions))
            acts[i, t] = a
            ts = env.step(np.int32(a))
            if ts.is_last():
                ts = env.reset()
        env.close()
    return obs, acts, labels


def sequences(obs, acts, labels, length: int):
    e, s = labels.shape
    n = s // length
    cut = lambda x: x[:, :n * length].reshape((e * n, length) + x.shape[2:])
    prev = np.concatenate([np.zeros((e, 1), np.int32), acts[:, :-1]], 1)
    return cut(obs), cut(prev), cut(labels)


def run_variant(name, agent, overrides, train, test, steps, batch, eval_every, seed=0):
    tf.keras.utils.set_random_seed(seed)
    spec = RunSpec.from_args("atari-cpu", agent, overrides, env_id=ENV)
    model = spec.build_network(6).model
    opt = tf.keras.optimizers.Adam(5e-4)
    obs, prev, lab = train
    length = obs.shape[1]

    def forward(o, p, y):
        b = o.shape[0]
        firsts = np.zeros((b, length), bool)
        firsts[:, 0] = True
        out, _ = model.unroll(o, p, np.zeros((b, length), np.float32), firsts, model.initial_state(b))
        logits = out["logits"][..., :3]
        mask = tf.cast(y >= 0, tf.float32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(y, 0), logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)
        return tf.reduce_sum(ce * mask) / tf.reduce_sum(mask), tf.reduce_sum(correct * mask) / tf.reduce_sum(mask)

    @tf.function
    def train_step(o, p, y):
        with tf.GradientTape() as tape:
            loss, acc = forward(o, p, y)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss, acc

    evaluate = tf.function(forward)
    rng = np.random.default_rng(seed)
    curve, start = [], time.time()
    for step in range(1, steps + 1):
        idx = rng.integers(len(obs), size=batch)
        train_step(tf.constant(obs[idx]), tf.constant(prev[idx]), tf.constant(lab[idx]))
        if step % eval_every == 0 or step == steps:
            accs = [float(evaluate(tf.constant(test[0][i:i + 32]), tf.constant(test[1][i:i + 32]),
                                   tf.constant(test[2][i:i + 32]))[1]) for i in range(0, len(test[0]), 32)]
            curve.append((step, float(np.mean(accs))))
            print(f"  {name:22s} step {step:5d}: held-out accuracy {curve[-1][1]:.3f} "
                  f"({time.time() - start:.0f}s)", flush=True)
    return curve


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=16, help="training environments")
    p.add_argument("--test-envs", type=int, default=4, help="held-out environments")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--collect-steps", type=int, default=1000)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS),
                   help="names from VARIANTS, or NAME=AGENT:SET;SET for a new one")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    train = sequences(*collect(args.envs, args.collect_steps, seed=0), args.length)
    test = sequences(*collect(args.test_envs, args.collect_steps, seed=100), args.length)
    prior = np.bincount(test[2][test[2] >= 0].ravel(), minlength=3) / (test[2] >= 0).sum()
    print(f"train sequences {len(train[0])}, held-out {len(test[0])}; held-out label shares {prior.round(3)} "
          f"(majority-class accuracy {prior.max():.3f})", flush=True)
    results = {"majority_accuracy": float(prior.max()), "variants": {}}
    for v in args.variants:
        if "=" in v:
            name, rest = v.split("=", 1)
            agent, _, sets = rest.partition(":")
            agent, overrides = agent, [s for s in sets.split(";") if s]
        else:
            name, (agent, overrides) = v, VARIANTS[v]
        results["variants"][name] = {"agent": agent, "overrides": overrides,
                                     "curve": run_variant(name, agent, overrides, train, test, args.steps,
                                                          args.batch, args.eval_every)}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
