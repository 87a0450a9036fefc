"""Agent-level behaviour: shapes, resets, ablations, unroll vs step, precision, config."""
import numpy as np
import pytest
import tensorflow as tf

from s3ta_tf import agent_config, build_agent_net
from s3ta_tf.models.agent_net import AgentNet

A = 5


def _inputs(cfg, b, t=None, seed=0):
    rng = np.random.default_rng(seed)
    lead = (b,) if t is None else (b, t)
    obs = rng.integers(0, 256, size=lead + tuple(cfg.observation_shape), dtype=np.uint8)
    act = rng.integers(0, A, size=lead).astype(np.int32)
    rew = rng.normal(size=lead).astype(np.float32) * 2
    return tf.constant(obs), tf.constant(act), tf.constant(rew)


def _random_state(model, b, seed=1):
    rng = np.random.default_rng(seed)
    return {k: tf.constant(rng.normal(size=(b,) + tuple(s.shape)).astype(np.float32))
            for k, s in model.state_spec.items()}


@pytest.fixture(scope="module")
def small_attention():
    return build_agent_net(agent_config("small"), "attention", A)


def test_paper_agent_has_27x20_maps_and_spec_sizes():
    model = build_agent_net(agent_config("paper"), "attention", 18)
    obs, act, rew = _inputs(model.config, 1)
    out, state = model.step(obs, act, rew, model.initial_state(1))
    assert out["attention"].shape == (1, 4, 27, 20)
    assert out["queries"].shape == (1, 4, 72) and out["answers"].shape == (1, 4, 184)
    assert out["logits"].shape == (1, 18) and out["value"].shape == (1,)
    assert state["convlstm_h"].shape == (1, 27, 20, 128) and state["lstm_h"].shape == (1, 256)


def test_maps_sum_to_one_and_what_plus_where_gives_the_softmax(small_attention):
    obs, act, rew = _inputs(small_attention.config, 3)
    out, _ = small_attention.step(obs, act, rew, _random_state(small_attention, 3))
    att = out["attention"].numpy()
    assert np.allclose(att.sum(axis=(2, 3)), 1.0, atol=1e-5)
    logits = (out["what"] + out["where"]).numpy().reshape(3, small_attention.num_heads, -1)
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    assert np.allclose(att.reshape(logits.shape), soft / soft.sum(-1, keepdims=True), atol=1e-5)


def test_state_advances_and_resets_at_episode_start(small_attention):
    m = small_attention
    obs, act, rew = _inputs(m.config, 2)
    zero = m.initial_state(2)
    out0, s1 = m.step(obs, act, rew, zero)
    out1, _ = m.step(obs, act, rew, s1)
    assert not np.allclose(out0["logits"], out1["logits"], atol=1e-4)  # the state matters
    first = tf.constant([True, False])
    out_reset, s_reset = m.step(obs, act, rew, s1, first=first)
    # row 0 reset: equals a fresh start with zero prev action and reward
    fresh, fresh_state = m.step(obs, tf.zeros_like(act), tf.zeros_like(rew), zero)
    assert np.allclose(out_reset["logits"][0], fresh["logits"][0], atol=1e-5)
    assert np.allclose(s_reset["lstm_c"][0], fresh_state["lstm_c"][0], atol=1e-5)
    # row 1 not reset: equals the continued step
    assert np.allclose(out_reset["logits"][1], out1["logits"][1], atol=1e-5)


def test_fixed_query_maps_do_not_depend_on_the_lstm_state():
    m = build_agent_net(agent_config("small"), "fixed-query", A)
    obs, act, rew = _inputs(m.config, 2)
    s_a = _random_state(m, 2, seed=1)
    s_b = dict(s_a, lstm_h=s_a["lstm_h"] * -3.0 + 1.0, lstm_c=s_a["lstm_c"] + 2.0)
    out_a, _ = m.step(obs, act, rew, s_a)
    out_b, _ = m.step(obs, act, rew, s_b)
    assert np.allclose(out_a["attention"], out_b["attention"], atol=1e-6)
    assert not np.allclose(out_a["logits"], out_b["logits"], atol=1e-4)
    # while the full attention agent's maps do depend on it
    full = build_agent_net(agent_config("small"), "attention", A)
    fa, _ = full.step(obs, act, rew, s_a)
    fb, _ = full.step(obs, act, rew, s_b)
    assert not np.allclose(fa["attention"], fb["attention"], atol=1e-6)


def test_l2_keys_maps_are_softmax_of_key_norms():
    m = build_agent_net(agent_config("small"), "l2-keys", A)
    obs, act, rew = _inputs(m.config, 2)
    state = _random_state(m, 2)
    out, _ = m.step(obs, act, rew, state)
    features, _ = m.vision.step(m.vision.project(obs), (state["convlstm_h"], state["convlstm_c"]))
    norms = np.linalg.norm(features.numpy()[..., :m.config.key_channels], axis=-1).reshape(2, -1)
    soft = np.exp(norms - norms.max(-1, keepdims=True))
    assert out["attention"].shape[1] == 1 and "queries" not in out
    assert np.allclose(out["attention"].numpy().reshape(2, -1), soft / soft.sum(-1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("variant, options", [
    ("attention", {}), ("l2-keys", {}), ("lstm", {}), ("feedforward", {}),
    ("attention", {"frame_difference": True}), ("feedforward", {"frame_difference": True}),
    ("attention", {"vision_torso": "resnet"})])
def test_unroll_equals_single_steps_with_resets(variant, options):
    m = build_agent_net(agent_config("small", options), variant, A)
    b, t = 2, 5
    obs, act, rew = _inputs(m.config, b, t)
    firsts = np.zeros((b, t), bool)
    firsts[0, 0], firsts[1, 3] = True, True
    state0 = _random_state(m, b)
    out_u, final_u = m.unroll(obs, act, rew, tf.constant(firsts), state0)
    state = state0
    for i in range(t):
        out_s, state = m.step(obs[:, i], act[:, i], rew[:, i], state, first=tf.constant(firsts[:, i]))
        for k in out_s:
            assert np.allclose(out_u[k][:, i], out_s[k], atol=1e-4), (variant, k, i)
    for k in state:
        assert np.allclose(final_u[k], state[k], atol=1e-4)


def test_frame_difference_is_zero_at_an_episode_start_and_follows_the_last_frame():
    # The feed-forward baseline's output depends on (x_t, x_t - x_{t-1}) only.
    m = build_agent_net(agent_config("small", {"frame_difference": True}), "feedforward", A)
    assert m.state_spec["prev_frame"].shape == (64, 64, 3)
    obs, act, rew = _inputs(m.config, 2)
    other, _, _ = _inputs(m.config, 2, seed=5)
    same = {"prev_frame": tf.cast(obs, tf.float32)}
    at_start, state = m.step(obs, act, rew, {"prev_frame": tf.cast(other, tf.float32)}, first=tf.constant([True, True]))
    np.testing.assert_array_equal(state["prev_frame"], tf.cast(obs, tf.float32))
    unmoved, _ = m.step(obs, act, rew, same, first=tf.constant([False, False]))
    moved, _ = m.step(obs, act, rew, {"prev_frame": tf.cast(other, tf.float32)}, first=tf.constant([False, False]))
    np.testing.assert_allclose(at_start["logits"], unmoved["logits"], atol=1e-6)
    assert np.abs(moved["logits"] - unmoved["logits"]).max() > 1e-3


def test_the_resnet_vision_torso_gives_an_eighth_size_map_and_round_trips():
    cfg = agent_config("small", {"vision_torso": "resnet"})
    m = build_agent_net(cfg, "attention", A)
    assert cfg.feature_shape == (8, 8) and m.feature_shape == (8, 8)
    assert "max_pool" not in str(type(m.vision.torso)) and m.vision.torso.dense is None
    obs, act, rew = _inputs(cfg, 2)
    out, _ = m.step(obs, act, rew, m.initial_state(2))
    assert out["attention"].shape == (2, cfg.num_heads, 8, 8)
    clone = AgentNet.from_config(m.get_config())
    clone.set_weights(m.get_weights())
    np.testing.assert_allclose(clone.step(obs, act, rew, m.initial_state(2))[0]["logits"], out["logits"], atol=1e-5)
    with pytest.raises(ValueError, match="vision_torso"):
        agent_config("small", {"vision_torso": "vgg"})


def test_bfloat16_is_close_to_float32():
    f32 = build_agent_net(agent_config("small"), "attention", A)
    bf16 = build_agent_net(agent_config("small", ["precision=bfloat16"]), "attention", A)
    bf16.set_weights(f32.get_weights())
    obs, act, rew = _inputs(f32.config, 4, 6)
    firsts = tf.zeros((4, 6), tf.bool)
    o32, _ = f32.unroll(obs, act, rew, firsts, f32.initial_state(4))
    o16, _ = bf16.unroll(obs, act, rew, firsts, bf16.initial_state(4))
    assert o16["logits"].dtype == tf.float32
    p32, p16 = tf.nn.softmax(o32["logits"]).numpy(), tf.nn.softmax(o16["logits"]).numpy()
    assert np.abs(p32 - p16).max() < 0.02
    assert np.abs((o32["value"] - o16["value"]).numpy()).max() < 0.05 * (1 + np.abs(o32["value"]).max())
    assert np.abs((o32["attention"] - o16["attention"]).numpy()).max() < 0.02
    # and the bf16 model really computes in bf16
    assert bf16.vision.convlstm.compute_dtype == "bfloat16"


def test_get_config_round_trip_rebuilds_the_same_function(small_attention):
    m = small_attention
    clone = AgentNet.from_config(m.get_config())
    assert clone.config == m.config and clone.variant == m.variant and clone.num_actions == A
    clone.set_weights(m.get_weights())
    obs, act, rew = _inputs(m.config, 2)
    a, _ = m.step(obs, act, rew, m.initial_state(2))
    b, _ = clone.step(obs, act, rew, clone.initial_state(2))
    assert np.allclose(a["logits"], b["logits"], atol=1e-6)


@pytest.mark.parametrize("variant", ["attention", "fixed-query", "l2-keys", "feedforward", "lstm"])
def test_every_variant_steps_and_trains(variant):
    m = build_agent_net(agent_config("small"), variant, A)
    obs, act, rew = _inputs(m.config, 2, 3)
    with tf.GradientTape() as tape:
        out, _ = m.unroll(obs, act, rew, tf.zeros((2, 3), tf.bool), m.initial_state(2))
        loss = tf.reduce_sum(out["logits"] ** 2) + tf.reduce_sum(out["value"] ** 2)
    grads = tape.gradient(loss, m.trainable_variables)
    assert all(g is not None for g in grads)
    assert all(np.isfinite(g.numpy()).all() for g in grads)


@pytest.mark.parametrize("bad, match", [
    (dict(observation=np.zeros((2, 32, 64, 3), np.uint8)), r"observation: expected uint8 \[2, 64, 64, 3\]"),
    (dict(observation=np.zeros((2, 64, 64, 3), np.float32)), r"observation: expected uint8 .* got dtype float32"),
    (dict(prev_action=np.zeros((3,), np.int32)), r"prev_action: expected .*\[2\]"),
    (dict(state="lstm_h"), r"state: expected a dict with keys"),
    (dict(state_shape=True), r"state\['convlstm_c'\]: expected float32 \[2, 8, 8, 40\]"),
])
def test_bad_input_names_the_expected_form(small_attention, bad, match):
    m = small_attention
    kwargs = dict(observation=np.zeros((2, 64, 64, 3), np.uint8), prev_action=np.zeros(2, np.int32),
                  prev_reward=np.zeros(2, np.float32), state=m.initial_state(2))
    if bad.pop("state_shape", False):
        kwargs["state"] = dict(kwargs["state"], convlstm_c=tf.zeros([2, 8, 8, 39]))
    kwargs.update(bad)
    with pytest.raises(ValueError, match=match):
        m.step(**kwargs)


def test_unknown_variant_preset_and_override_are_rejected():
    with pytest.raises(ValueError, match="unknown agent variant"):
        build_agent_net(agent_config("small"), "transformer", A)
    with pytest.raises(ValueError, match="unknown preset"):
        agent_config("huge")
    with pytest.raises(ValueError, match="has no field 'num_head'"):
        agent_config("small", ["num_head=3"])
    with pytest.raises(ValueError, match="expected int"):
        agent_config("small", ["num_heads=many"])
    assert agent_config("small", ["observation_shape=84,84,3"]).feature_shape == (11, 11)
