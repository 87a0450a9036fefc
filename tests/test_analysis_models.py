"""Analyses against the real s3ta_tf model: the attention layer, steppers, batched saliency."""
import numpy as np
import pytest
import tensorflow as tf

from pipelines.analysis import saliency, what_where
from pipelines.analysis.rollout import replay
from pipelines.analysis.stepper import ModelStepper, SavedModelStepper, as_stepper, load_stepper
from s3ta_tf import agent_config, build_agent_net
from s3ta_tf.checkpoints import save_checkpoint
from s3ta_tf.export import export_saved_model
from s3ta_tf.layers.attention import SpatialAttention
from s3ta_tf.layers.spatial_basis import fourier_basis

KEY_CHANNELS = 8


@pytest.fixture(scope="module")
def small_agent():
    return build_agent_net(agent_config("small"), "attention", num_actions=4)


def frames(n, seed=0, shape=(64, 64, 3)):
    return np.random.default_rng(seed).integers(0, 256, (n,) + shape, dtype=np.uint8)


# ---------------------------------------------------------------- what / where on the real layer

def attend(query_keys, query_space, seed=0):
    rng = np.random.default_rng(seed)
    h, w = 6, 5
    basis = fourier_basis(h, w, 2).astype(np.float32)                      # [h, w, 16]
    features = rng.normal(size=(1, h, w, KEY_CHANNELS + 12)).astype(np.float32)
    queries = np.concatenate([query_keys, query_space], -1)[None].astype(np.float32)   # [1, N, c_K + c_S]
    out = SpatialAttention(KEY_CHANNELS)(tf.constant(features), tf.constant(basis), tf.constant(queries))
    return {k: v.numpy()[0] for k, v in out.items()}


def test_query_with_zero_spatial_part_gives_an_all_what_map():
    rng = np.random.default_rng(1)
    out = attend(rng.normal(size=(3, KEY_CHANNELS)), np.zeros((3, 16)))
    assert (out["where"] == 0).all()
    assert np.abs(out["what"]).min() > 0
    assert (what_where.what_share(out["what"], out["where"]) == 1).all()
    d, c = what_where.what_where_contrast(out["what"], out["where"], out["attention"])
    np.testing.assert_allclose(d, np.clip(out["what"], -np.log(10), np.log(10)), rtol=1e-6)
    np.testing.assert_allclose(c, d * out["attention"], rtol=1e-6)


def test_query_with_zero_key_part_gives_an_all_where_map():
    rng = np.random.default_rng(2)
    out = attend(np.zeros((2, KEY_CHANNELS)), rng.normal(size=(2, 16)))
    assert (out["what"] == 0).all()
    assert (what_where.what_share(out["what"], out["where"]) == 0).all()
    d, _ = what_where.what_where_contrast(out["what"], out["where"], out["attention"])
    np.testing.assert_allclose(d, np.clip(-out["where"], -np.log(10), np.log(10)), rtol=1e-6)


# ---------------------------------------------------------------- steppers

def run(stepper, obs, firsts):
    state = stepper.initial_state(2)
    outs = []
    for t in range(len(obs)):
        out, state = stepper.step(obs[t], np.array([1, 2]), np.array([0.5, -2.0], np.float32), state, firsts[t])
        outs.append(out)
    return outs


def test_model_savedmodel_and_checkpoint_steppers_agree(small_agent, tmp_path):
    export_saved_model(small_agent, str(tmp_path / "export"))
    save_checkpoint(str(tmp_path / "ckpt"), small_agent, step=3)
    steppers = [ModelStepper(small_agent), load_stepper(str(tmp_path / "export")),
                load_stepper(str(tmp_path / "ckpt"))]
    assert isinstance(steppers[1], SavedModelStepper) and isinstance(steppers[2], ModelStepper)
    for s in steppers:
        assert s.observation_shape == (64, 64, 3) and s.num_actions == 4
        assert s.num_heads == 2 and s.feature_shape == (8, 8)
    obs = frames(8).reshape(4, 2, 64, 64, 3)
    firsts = np.array([[True, True], [False, False], [False, True], [False, False]])   # a reset mid-run
    results = [run(s, obs, firsts) for s in steppers]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            for k in ("logits", "value", "attention", "what", "where"):
                np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5)
    assert results[0][0]["attention"].shape == (2, 2, 8, 8)
    np.testing.assert_allclose(results[0][0]["attention"].sum((-2, -1)), 1.0, rtol=1e-5)


def test_load_stepper_errors_name_the_fault(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_stepper(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="neither an exported SavedModel"):
        load_stepper(str(tmp_path))
    with pytest.raises(TypeError, match="not a stepper"):
        as_stepper(object())


# ---------------------------------------------------------------- batched saliency on the real model

def test_batched_saliency_matches_one_by_one_from_the_warmed_state(small_agent):
    stepper = ModelStepper(small_agent)
    seq = frames(12, seed=3)
    run_ = replay(stepper, seq, actions=np.arange(12) % 4, rewards=np.ones(12), keep_contexts=[11])
    ctx = run_.contexts[11]
    assert np.abs(ctx.state["lstm_h"]).max() > 0 and ctx.prev_action == 2 and not ctx.first
    evaluate = saliency.recurrent_evaluator(stepper, ctx)
    # the unperturbed frame through the evaluator reproduces the recorded step
    logits, value = evaluate(seq[11:12])
    np.testing.assert_allclose(logits[0], run_.logits[11], rtol=1e-4, atol=1e-6)
    batched = saliency.saliency_maps(evaluate, seq[11], stride=16, batch_size=16)
    single = saliency.saliency_maps(evaluate, seq[11], stride=16, batch_size=1)
    assert batched.policy.shape == (4, 4)
    assert batched.value.max() > 0 and batched.policy.max() > 0
    np.testing.assert_allclose(batched.policy, single.policy, rtol=1e-2, atol=1e-12)
    np.testing.assert_allclose(batched.value, single.value, rtol=1e-2, atol=1e-10)
