"""Probe of a Pong checkpoint: dead head units, the LSTM input scale, gate saturation, |c|.

    PYTHONPATH=. python results/pong-pilots/probe_saturation.py RUN_ROOT
"""
import os, sys, numpy as np
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
from s3ta_tf.checkpoints import load_agent_net
from agents.environments import make_environment
run = sys.argv[1]
model = load_agent_net(run + "/checkpoints")
rec = {"heads_in": [], "hidden": [], "ap": []}
orig_heads = model.heads.call
def heads_call(x):
    rec["heads_in"].append(np.asarray(x)); rec["hidden"].append(np.asarray(model.heads.torso(x)))
    return orig_heads(x)
model.heads.call = heads_call
if hasattr(model, "answer_processor"):
    orig_ap = model.answer_processor.call
    def ap_call(x, *a, **k):
        y = orig_ap(x, *a, **k); rec["ap"].append(np.asarray(y)); return y
    model.answer_processor.call = ap_call
env = make_environment("ALE/Pong-v5", seed=3, observation_shape=model.config.observation_shape)
t = env.reset(); state = model.initial_state(1); a, r, first = 0, 0.0, True
rng = np.random.default_rng(0); vals = []
for i in range(300):
    out, state = model.step(t.observation[None], np.array([a], np.int32), np.array([r], np.float32), state, np.array([first]))
    p = tf.nn.softmax(out["logits"][0]).numpy(); vals.append(float(out["value"][0]))
    a = int(rng.choice(len(p), p=p)); first = False
    t = env.step(np.int32(a)); r = float(t.reward)
    if t.is_last(): first = True; t = env.reset()
H = np.concatenate(rec["hidden"]); X = np.concatenate(rec["heads_in"])
print(run, model.variant)
print(" heads hidden units never active: %d / %d" % ((H.max(0) <= 0).sum(), H.shape[1]))
print(" heads hidden active fraction per sample: %.3f" % (H > 0).mean())
print(" heads input std across steps (mean over units): %.4f; |x| mean %.3f" % (X.std(0).mean(), np.abs(X).mean()))
if "lstm_c" in state:
    print(" lstm |h| >0.95 fraction: %.3f; |c| mean %.2f" % ((np.abs(X) > 0.95).mean(), np.abs(np.asarray(state["lstm_c"])).mean()))
if rec["ap"]:
    A = np.concatenate(rec["ap"]); print(" answer_processor units never active: %d / %d; std across steps %.4f" % ((A.max(0) <= 0).sum(), A.shape[1], A.std(0).mean()))
print(" value: mean %.3f std %.3f" % (np.mean(vals), np.std(vals)))
if rec["ap"]:
    A = np.concatenate(rec["ap"])
    gates = A @ model.core.input_kernel.numpy()
    i, f, g, o = np.split(gates, 4, axis=1)
    print(" answer_processor output: mean %.2f, max %.1f, L2 norm per step %.1f" % (A.mean(), A.max(), np.linalg.norm(A, axis=1).mean()))
    print(" gate pre-activations from x: |f| mean %.2f, |g| mean %.2f, |i| mean %.2f; sigmoid(f+1) mean %.3f" % (
        np.abs(f).mean(), np.abs(g).mean(), np.abs(i).mean(), (1 / (1 + np.exp(-(f + 1)))).mean()))
