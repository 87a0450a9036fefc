"""Probe of an attention run's checkpoint (docs/LEARNING.md §9): dead torso channels, ConvLSTM
cell-state growth and saturation, how much h, the keys and the attention maps change over time —
each against a freshly initialised model of the same config.

    python research/convlstm_probe.py RUN_ROOT ENV_ID [--steps 300]

RUN_ROOT is a run's root (its checkpoints/ are read) or a checkpoint directory. The model plays
ENV_ID with uniformly random actions; the first sixth of the steps is left out of the state
statistics (warm-up). Prints one line per torso layer and two per model.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import s3ta_tf  # noqa: E402
from agents.environments import make_environment  # noqa: E402
from s3ta_tf.checkpoints import load_agent_net  # noqa: E402


def checkpoint_dir(path: str) -> str:
    return os.path.join(path, "checkpoints") if os.path.isdir(os.path.join(path, "checkpoints")) else path


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("env_id")
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args(argv)
    trained = load_agent_net(checkpoint_dir(a.run))
    cfg, num_actions = trained.config, trained.num_actions
    models = {"trained": trained, "init": s3ta_tf.build_agent_net(cfg, "attention", num_actions)}
    env = make_environment(a.env_id, seed=3, observation_shape=cfg.observation_shape)
    obs, t, rng = [], env.reset(), np.random.default_rng(0)
    for _ in range(a.steps):
        obs.append(t.observation)
        t = env.step(np.int32(rng.integers(num_actions)))
        if t.is_last():
            t = env.reset()
    obs = np.stack(obs)
    warm = a.steps // 6
    report = {}
    for name, m in models.items():
        x = tf.cast(obs, tf.float32) / 255.0
        layers = []
        for i, conv in enumerate(m.vision.torso.convs):
            x = conv(x)
            act = x.numpy()
            dead = int((act.reshape(-1, act.shape[-1]).max(0) <= 0).sum())
            layers.append({"dead": dead, "channels": act.shape[-1], "active": float((act > 0).mean()),
                           "std_over_time": float(act.std(0).mean())})
            print(f"{name} conv_{i}: channels never active {dead}/{act.shape[-1]}, active fraction "
                  f"{layers[-1]['active']:.3f}, std over time (mean) {layers[-1]['std_over_time']:.4f}")
        state, hs, cs, att = m.initial_state(1), [], [], []
        for i in range(a.steps):
            out, state = m.step(obs[i:i + 1], np.zeros(1, np.int32), np.zeros(1, np.float32), state,
                                np.array([i == 0]))
            hs.append(state["convlstm_h"].numpy()[0])
            cs.append(state["convlstm_c"].numpy()[0])
            att.append(out["attention"].numpy()[0])
        hs, cs, att = np.stack(hs[warm:]), np.stack(cs[warm:]), np.stack(att[warm:])
        keys = hs[..., :cfg.key_channels]
        report[name] = {"torso": layers, "c_abs": float(np.abs(cs).mean()), "c_abs_max": float(np.abs(cs).max()),
                        "h_saturated": float((np.abs(hs) > 0.9).mean()), "h_std_over_time": float(hs.std(0).mean()),
                        "keys_std_over_time": float(keys.std(0).mean()),
                        "keys_std_over_space": float(keys.std((1, 2)).mean()),
                        "attention_std_over_time": float(att.std(0).mean()),
                        "attention_max_cell": float(att.max((2, 3)).mean())}
        r = report[name]
        print(f"{name} convlstm |c| {r['c_abs']:.2f} (max {r['c_abs_max']:.1f}); |h|>0.9 frac {r['h_saturated']:.3f}; "
              f"h std over time {r['h_std_over_time']:.4f}; keys std over time {r['keys_std_over_time']:.4f}, "
              f"over space {r['keys_std_over_space']:.4f}")
        print(f"{name} attention std over time {r['attention_std_over_time']:.5f}; max cell mass "
              f"{r['attention_max_cell']:.3f}")
    return report


if __name__ == "__main__":
    main()
