"""Probe of a checkpoint's policy side (docs/LEARNING.md §6): dead units of the heads' hidden layer,
the LSTM's input scale, gate saturation, |c| and the value's spread, over steps of the model's own
sampled policy.

    python research/saturation_probe.py RUN_ROOT [--env ALE/Pong-v5] [--steps 300]

RUN_ROOT is a run's root (its checkpoints/ are read) or a checkpoint directory. Prints one line a
measure and returns them as a dict.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from agents.environments import make_environment  # noqa: E402
from s3ta_tf.checkpoints import load_agent_net  # noqa: E402


def record_layers(model) -> dict:
    """Wraps the heads' and the answer processor's ``call`` so that every input of the heads,
    their hidden layer and every answer are kept: ``{"heads_in", "hidden", "ap"}`` lists."""
    rec = {"heads_in": [], "hidden": [], "ap": []}
    heads_call = model.heads.call

    def recording_heads(x):
        rec["heads_in"].append(np.asarray(x))
        rec["hidden"].append(np.asarray(model.heads.torso(x)))
        return heads_call(x)
    model.heads.call = recording_heads
    if hasattr(model, "answer_processor"):
        ap_call = model.answer_processor.call

        def recording_ap(x, *args, **kwargs):
            y = ap_call(x, *args, **kwargs)
            rec["ap"].append(np.asarray(y))
            return y
        model.answer_processor.call = recording_ap
    return rec


def play(model, env_id: str, steps: int):
    """``steps`` steps of the model's sampled policy on ``env_id``: (values, final state)."""
    env = make_environment(env_id, seed=3, observation_shape=model.config.observation_shape)
    t, state, action, reward, first = env.reset(), model.initial_state(1), 0, 0.0, True
    rng, values = np.random.default_rng(0), []
    for _ in range(steps):
        out, state = model.step(t.observation[None], np.array([action], np.int32), np.array([reward], np.float32),
                                state, np.array([first]))
        probs = tf.nn.softmax(out["logits"][0]).numpy().astype(np.float64)
        values.append(float(out["value"][0]))
        action, first = int(rng.choice(len(probs), p=probs / probs.sum())), False
        t = env.step(np.int32(action))
        reward = float(t.reward)
        if t.is_last():
            first, t = True, env.reset()
    return values, state


def answers_report(model, answers: np.ndarray, r: dict) -> None:
    """Adds the answer processor's dead units, spread and the LSTM gates its answers drive."""
    r["answers_dead"], r["answers_std"] = int((answers.max(0) <= 0).sum()), float(answers.std(0).mean())
    print(f" answer_processor units never active: {r['answers_dead']} / {answers.shape[1]}; std across steps "
          f"{r['answers_std']:.4f}")
    gates = answers @ model.core.input_kernel.numpy()
    i, f, g, _ = np.split(gates, 4, axis=1)
    r["forget_gate_open"] = float((1 / (1 + np.exp(-(f + 1)))).mean())
    print(f" answer_processor output: mean {answers.mean():.2f}, max {answers.max():.1f}, L2 norm per step "
          f"{np.linalg.norm(answers, axis=1).mean():.1f}")
    print(f" gate pre-activations from x: |f| mean {np.abs(f).mean():.2f}, |g| mean {np.abs(g).mean():.2f}, "
          f"|i| mean {np.abs(i).mean():.2f}; sigmoid(f+1) mean {r['forget_gate_open']:.3f}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--env", default="ALE/Pong-v5")
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args(argv)
    directory = os.path.join(a.run, "checkpoints") if os.path.isdir(os.path.join(a.run, "checkpoints")) else a.run
    model = load_agent_net(directory)
    rec = record_layers(model)
    values, state = play(model, a.env, a.steps)
    hidden, x = np.concatenate(rec["hidden"]), np.concatenate(rec["heads_in"])
    r = {"variant": model.variant, "heads_dead": int((hidden.max(0) <= 0).sum()), "heads_units": hidden.shape[1],
         "heads_active": float((hidden > 0).mean()), "heads_input_std": float(x.std(0).mean()),
         "heads_input_abs": float(np.abs(x).mean()), "value_mean": float(np.mean(values)),
         "value_std": float(np.std(values))}
    print(a.run, model.variant)
    print(f" heads hidden units never active: {r['heads_dead']} / {r['heads_units']}")
    print(f" heads hidden active fraction per sample: {r['heads_active']:.3f}")
    print(f" heads input std across steps (mean over units): {r['heads_input_std']:.4f}; |x| mean "
          f"{r['heads_input_abs']:.3f}")
    if "lstm_c" in state:
        r["lstm_h_saturated"] = float((np.abs(x) > 0.95).mean())
        r["lstm_c_abs"] = float(np.abs(np.asarray(state["lstm_c"])).mean())
        print(f" lstm |h| >0.95 fraction: {r['lstm_h_saturated']:.3f}; |c| mean {r['lstm_c_abs']:.2f}")
    if rec["ap"]:
        answers_report(model, np.concatenate(rec["ap"]), r)
    print(f" value: mean {r['value_mean']:.3f} std {r['value_std']:.3f}")
    return r


if __name__ == "__main__":
    main()
