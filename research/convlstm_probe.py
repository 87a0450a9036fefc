"""Probe of an attention run's checkpoint: dead torso channels, ConvLSTM cell-state growth and
saturation, how much h, the keys and the attention maps change over time (against a fresh
model of the same config). docs/LEARNING.md §9.

    PYTHONPATH=. python results/pong-pilots/probe_convlstm.py RUN_ROOT ENV_ID
"""
import os, sys, numpy as np
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
from s3ta_tf.checkpoints import load_agent_net
from agents.environments import make_environment
import s3ta_tf
run, env_id = sys.argv[1], sys.argv[2]
models = {"trained": load_agent_net(run + "/checkpoints")}
cfg = models["trained"].config
models["init"] = s3ta_tf.build_agent_net(cfg, "attention", models["trained"].num_actions)
env = make_environment(env_id, seed=3, observation_shape=cfg.observation_shape)
obs = []; t = env.reset(); rng = np.random.default_rng(0)
for i in range(300):
    obs.append(t.observation); t = env.step(np.int32(rng.integers(models["trained"].num_actions)))
    if t.is_last(): t = env.reset()
obs = np.stack(obs)
for name, m in models.items():
    torso = m.vision.torso
    x = tf.cast(obs, tf.float32) / 255.0
    for i, conv in enumerate(torso.convs):
        x = conv(x); a = x.numpy()
        dead = (a.reshape(-1, a.shape[-1]).max(0) <= 0).sum()
        print(f"{name} conv_{i}: channels never active {dead}/{a.shape[-1]}, active fraction {(a>0).mean():.3f}, std over time (mean) {a.std(0).mean():.4f}")
    state = m.initial_state(1); hs = []; cs = []; att = []
    for i in range(300):
        out, state = m.step(obs[i:i+1], np.zeros(1, np.int32), np.zeros(1, np.float32), state, np.array([i == 0]))
        hs.append(state["convlstm_h"].numpy()[0]); cs.append(state["convlstm_c"].numpy()[0]); att.append(out["attention"].numpy()[0])
    hs, cs, att = np.stack(hs[50:]), np.stack(cs[50:]), np.stack(att[50:])
    K = hs[..., :cfg.key_channels]
    print(f"{name} convlstm |c| {np.abs(cs).mean():.2f} (max {np.abs(cs).max():.1f}); |h|>0.9 frac {(np.abs(hs)>0.9).mean():.3f}; h std over time {hs.std(0).mean():.4f}; keys std over time {K.std(0).mean():.4f}, over space {K.std((1,2)).mean():.4f}")
    print(f"{name} attention std over time {att.std(0).mean():.5f}; max cell mass {att.max((2,3)).mean():.3f}")
