"""SavedModel export: signatures, equality with the Python model, TF's own CLI, bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from s3ta_tf import agent_config, build_agent_net
from s3ta_tf.checkpoints import load_agent_net, save_checkpoint
from s3ta_tf.export import export_saved_model, load_metadata

A = 4
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build_agent_net(agent_config("small"), "attention", A)
    path = export_saved_model(model, str(tmp_path_factory.mktemp("export") / "model"))
    return model, path


def test_saved_model_matches_python_over_chained_steps(exported):
    model, path = exported
    loaded = tf.saved_model.load(path)
    serve, init = loaded.signatures["serving_default"], loaded.signatures["initial_state"]
    rng = np.random.default_rng(0)
    b = 3
    s_saved = init(batch_size=tf.constant(b))
    s_py = model.initial_state(b)
    assert sorted(s_saved) == sorted("state_" + k for k in s_py)
    action, reward = np.zeros(b, np.int32), np.zeros(b, np.float32)
    for t in range(4):
        obs = rng.integers(0, 256, size=(b, 64, 64, 3), dtype=np.uint8)
        out = serve(observation=tf.constant(obs), prev_action=tf.constant(action),
                    prev_reward=tf.constant(reward), first=tf.zeros([b], tf.bool), **s_saved)
        ref, s_py = model.step(obs, action, reward, s_py)
        for k in ("logits", "value", "attention", "what", "where"):
            assert np.allclose(out[k], ref[k], atol=1e-5), (k, t)
        assert np.array_equal(out["action"].numpy(), np.argmax(ref["logits"].numpy(), -1))
        s_saved = {k: v for k, v in out.items() if k.startswith("state_")}
        action, reward = out["action"].numpy(), rng.normal(size=b).astype(np.float32)
    meta = load_metadata(path)
    assert meta["variant"] == "attention" and meta["num_actions"] == A


def test_saved_model_rejects_wrong_shape_and_dtype(exported):
    _, path = exported
    serve = tf.saved_model.load(path).signatures["serving_default"]
    state = tf.saved_model.load(path).signatures["initial_state"](batch_size=tf.constant(1))
    good = dict(observation=tf.zeros([1, 64, 64, 3], tf.uint8), prev_action=tf.zeros([1], tf.int32),
                prev_reward=tf.zeros([1]), first=tf.zeros([1], tf.bool), **state)
    with pytest.raises(tf.errors.InvalidArgumentError, match="first: batch size differs"):
        serve(**dict(good, first=tf.constant([True, False])))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError), match=r"observation: expected uint8 \[B, 64, 64, 3\]"):
        serve(**dict(good, observation=tf.zeros([1, 32, 32, 3], tf.uint8)))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError), match=r"uint8|observation"):
        serve(**dict(good, observation=tf.zeros([1, 64, 64, 3], tf.float32)))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError), match=r"state_lstm_h: expected float32 \[B, 64\]"):
        serve(**dict(good, state_lstm_h=tf.zeros([1, 63])))


def test_saved_model_cli_runs_the_serving_signature(exported, tmp_path):
    """TF's own client: arrays from .npy files (--inputs) and literals (--input_exprs)."""
    model, path = exported
    h, w, _ = model.config.observation_shape
    files = {"observation": np.full((2, h, w, 3), 7, np.uint8)}
    files.update({f"state_{k}": np.zeros((2,) + tuple(s.shape), np.float32) for k, s in model.state_spec.items()})
    for k, v in files.items():
        np.save(tmp_path / f"{k}.npy", v)
    inputs = ";".join(f"{k}={tmp_path / k}.npy" for k in files)
    out = tmp_path / "out"
    proc = subprocess.run([os.path.join(BIN, "saved_model_cli"), "run", "--dir", path, "--tag_set", "serve",
                           "--signature_def", "serving_default", "--inputs", inputs,
                           "--input_exprs", "prev_action=[0, 0];prev_reward=[0.0, 0.0]", "--outdir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    logits = np.load(out / "logits.npy")
    ref, _ = model.step(np.full((2, h, w, 3), 7, np.uint8), np.zeros(2, np.int32), np.zeros(2, np.float32),
                        model.initial_state(2))
    assert np.allclose(logits, ref["logits"], atol=1e-5)
    assert np.load(out / "attention.npy").shape == (2, model.num_heads) + model.feature_shape


@pytest.mark.slow
def test_checkpoint_round_trip_and_export_from_checkpoint_cli(tmp_path):
    model = build_agent_net(agent_config("small"), "lstm", A)
    ckpt = tmp_path / "ckpt"
    save_checkpoint(str(ckpt), model, step=7)
    restored = load_agent_net(str(ckpt))
    for a, b in zip(model.get_weights(), restored.get_weights()):
        assert np.array_equal(a, b)
    out = tmp_path / "exported"
    proc = subprocess.run([os.path.join(BIN, "s3ta"), "export", "--checkpoint", str(ckpt), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    obs = np.random.default_rng(1).integers(0, 256, size=(1, 64, 64, 3), dtype=np.uint8)
    got = serve(observation=tf.constant(obs), prev_action=tf.zeros([1], tf.int32), prev_reward=tf.zeros([1]),
                first=tf.zeros([1], tf.bool), **{f"state_{k}": v for k, v in model.initial_state(1).items()})
    ref, _ = model.step(obs, np.zeros(1, np.int32), np.zeros(1, np.float32), model.initial_state(1))
    assert np.allclose(got["logits"], ref["logits"], atol=1e-5)


def test_cli_describe_json_reports_paper_sizes(capsys):
    from pipelines.cli import main
    assert main(["describe", "--preset", "paper", "--agent", "attention", "--num-actions", "18", "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["attention"] == {"num_heads": 4, "map_shape": [27, 20], "key_channels": 8, "value_channels": 120,
                                 "basis_channels": 64, "query_size": 72, "answer_size": 184}
    assert desc["outputs"]["attention"] == ["B", 4, 27, 20]
    parts = desc["parameters"]["parts"]
    assert desc["parameters"]["total"] == sum(p["trainable"] + p["non_trainable"] for p in parts.values())
    assert parts["spatial_basis"] == {"trainable": 0, "non_trainable": 27 * 20 * 64}
    # ConvLSTM 3x3: (64 + 128) * 9 * 512 + 512; torso: 8*8*3*32+32 + 4*4*32*64+64
    assert parts["vision_core"]["trainable"] == (64 + 128) * 9 * 512 + 512 + 8 * 8 * 3 * 32 + 32 + 4 * 4 * 32 * 64 + 64


@pytest.mark.parametrize("argv, message", [
    (["describe", "--num-actions", "0"], "--num-actions must be a positive integer"),
    (["describe", "--num-actions", "4", "--set", "model.num_heads=two"], "expected int"),
    (["export", "--out", "/tmp/never", "--checkpoint", "/nonexistent/dir"], "no such directory"),
    (["export", "--out", "/tmp/never"], "--num-actions is required"),
])
def test_cli_bad_flags_get_clear_errors(argv, message, capsys):
    """In-process through the CLI's own entry point (exit 2, one clear line, no traceback)."""
    from pipelines.cli import main
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("signature", ["serving_default", "serving_reset"])
def test_serving_default_takes_first_and_matches_python_with_a_reset_mid_episode(exported, signature):
    """serving_default's first (serving_reset is the same function, kept for older clients):
    logits, value, attention maps, queries and answers equal the Python model's step over
    chained steps in which row 0 starts a new episode at t = 3."""
    model, path = exported
    loaded = tf.saved_model.load(path)
    serve, init = loaded.signatures[signature], loaded.signatures["initial_state"]
    rng = np.random.default_rng(1)
    b = 2
    s_saved, s_py = init(batch_size=tf.constant(b)), model.initial_state(b)
    action, reward = np.zeros(b, np.int32), np.zeros(b, np.float32)
    for t in range(5):
        first = np.array([t == 0 or t == 3, t == 0])    # row 0 starts a new episode at t = 3
        obs = rng.integers(0, 256, size=(b, 64, 64, 3), dtype=np.uint8)
        out = serve(observation=tf.constant(obs), prev_action=tf.constant(action),
                    prev_reward=tf.constant(reward), first=tf.constant(first), **s_saved)
        ref, s_py = model.step(obs, action, reward, s_py, first)
        for k in ("logits", "value", "attention", "what", "where", "queries", "answers"):
            assert np.allclose(out[k], ref[k], atol=1e-5), (k, t)
        for k, v in s_py.items():
            assert np.allclose(out["state_" + k], v, atol=1e-5), (k, t)
        s_saved = {k: v for k, v in out.items() if k.startswith("state_")}
        action, reward = out["action"].numpy(), rng.normal(size=b).astype(np.float32)
    cfg = model.config
    assert out["queries"].shape == (b, cfg.num_heads, cfg.key_channels + cfg.basis_channels)
    assert out["answers"].shape == (b, cfg.num_heads, cfg.value_channels + cfg.basis_channels)


def _saved_model_proto(path):
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return proto


@pytest.mark.slow
def test_first_is_optional_where_the_signature_default_is_read(exported, tmp_path):
    """first has a SignatureDef default (an empty bool [0] = no reset), so clients that read the
    SignatureDef may leave it out: TF's saved_model_cli, a TF1 Session on the signature's
    tensors, and the restored tf.function. TF 2.15's Python ``signatures[...]`` ignores the
    default and requires first -- asserted so that a TF upgrade that changes it is noticed."""
    model, path = exported
    sig = _saved_model_proto(path).meta_graphs[0].signature_def["serving_default"]
    assert "first" in sig.inputs and list(sig.defaults) == ["first"]
    assert tf.make_ndarray(sig.defaults["first"]).shape == (0,)

    rng = np.random.default_rng(2)
    b = 2
    obs = rng.integers(0, 256, size=(b, 64, 64, 3), dtype=np.uint8)
    action, reward = np.array([1, 2], np.int32), np.array([0.5, -1.0], np.float32)
    s_py = model.initial_state(b)
    ref, s_py = model.step(obs, np.zeros(b, np.int32), np.zeros(b, np.float32), s_py)
    obs2 = rng.integers(0, 256, size=(b, 64, 64, 3), dtype=np.uint8)
    ref2, _ = model.step(obs2, action, reward, s_py)                      # no reset
    ref2_first, _ = model.step(obs2, action, reward, s_py, np.array([False, True]))
    state = {f"state_{k}": v.numpy() for k, v in s_py.items()}

    # 1. the restored tf.function: first is a Python default argument there
    loaded = tf.saved_model.load(path)
    got = loaded.serve(tf.constant(obs2), tf.constant(action), tf.constant(reward), state)
    for k in ("logits", "queries", "answers"):
        assert np.allclose(got[k], ref2[k], atol=1e-5), k
    got = loaded.serve(tf.constant(obs2), tf.constant(action), tf.constant(reward), state,
                       tf.constant([False, True]))
    assert np.allclose(got["logits"], ref2_first["logits"], atol=1e-5)

    # 2. a TF1 Session feeding the SignatureDef's tensors without first
    with tf.Graph().as_default() as g, tf.compat.v1.Session(graph=g) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        sd = meta.signature_def["serving_default"]
        feeds = {sd.inputs[k].name: v for k, v in
                 dict(state, observation=obs2, prev_action=action, prev_reward=reward).items()}
        got = sess.run({k: sd.outputs[k].name for k in ("logits", "queries", "answers")}, feeds)
    for k in got:
        assert np.allclose(got[k], ref2[k], atol=1e-5), k

    # 3. TF's saved_model_cli without first (the CLI test above feeds none either)
    for k, v in dict(state, observation=obs2).items():
        np.save(tmp_path / f"{k}.npy", v)
    inputs = ";".join(f"{k}={tmp_path / k}.npy" for k in list(state) + ["observation"])
    proc = subprocess.run([os.path.join(BIN, "saved_model_cli"), "run", "--dir", path, "--tag_set", "serve",
                           "--signature_def", "serving_default", "--inputs", inputs,
                           "--input_exprs", "prev_action=[1, 2];prev_reward=[0.5, -1.0]",
                           "--outdir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert np.allclose(np.load(tmp_path / "out" / "answers.npy"), ref2["answers"], atol=1e-5)

    # 4. TF 2.15's Python signature map requires every input
    serve = loaded.signatures["serving_default"]
    assert "first" in serve.structured_input_signature[1] and "queries" in serve.structured_outputs
    with pytest.raises(TypeError, match="first"):
        serve(observation=tf.constant(obs2), prev_action=tf.constant(action), prev_reward=tf.constant(reward),
              **{k: tf.constant(v) for k, v in state.items()})
