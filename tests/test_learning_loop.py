"""The learning loop's parts (issue "A compiled, correct learning loop"): the compiled update,
the prefetching reader, precision, max-pooled Atari frames, the l2-keys norm, the entropy
mask, the attention agent's initial attention, and the learner stopping a diverging run."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from agents.impala import losses
from agents.impala.networks import ActorCriticNetwork
from agents.impala.learning import VTraceAgent
from pipelines.model_bench import synthetic_experience
from s3ta_tf import build_agent_net
from s3ta_tf.config import agent_config
from agents.impala.config import train_config
from s3ta_tf.precision import native_bfloat16, resolve_precision

SMALL = ["observation_shape=24,24,3", "convlstm_channels=16", "query_hidden=16", "answer_hidden=32",
         "lstm_units=16", "head_hidden=16"]


def make_agent(variant="attention", batch=2, unroll=4, model_set=(), **train):
    model = build_agent_net(agent_config("small", SMALL + list(model_set)), variant, 5)
    network = ActorCriticNetwork(model)
    cfg = train_config("small", {"batch_size": batch, "unroll_length": unroll, **train})
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int32, 0, 4)
    agent = VTraceAgent(ts.time_step_spec(network.input_tensor_spec["observation"]), action_spec, network, cfg)
    return agent, network


# ------------------------------------------------------------------ compiled update
@pytest.mark.slow
def test_compiled_update_is_one_trace_and_computes_the_eager_loss():
    agent, network = make_agent()
    train = agent.compiled_train(batch_size=2)
    batches = [synthetic_experience(network, 2, 5, seed=s) for s in range(3)]
    expected = float(agent.loss(batches[0]).loss)  # eager, before any update
    info = train(batches[0])
    assert float(info.loss) == pytest.approx(expected, rel=1e-5)
    assert bool(info.extra.applied) and int(agent.train_step_counter.numpy()) == 1
    for b in batches[1:]:
        train(b)
    assert train.experimental_get_tracing_count() == 1
    assert int(agent.train_step_counter.numpy()) == 3
    assert set(info.extra.part_gradient_norms) == {"vision_core", "query_network", "answer_processor",
                                                   "policy_core", "heads"}
    assert 0.0 < float(info.extra.attention_entropy) <= 1.0
    with pytest.raises((ValueError, TypeError)):
        train(synthetic_experience(network, 3, 5))  # another batch size: not the traced signature


# ------------------------------------------------------------------ precision
@pytest.mark.parametrize("flags, expected", [({"avx2", "fma"}, "float32"),
                                             ({"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),
                                             ({"avx2", "amx_bf16", "amx_tile"}, "bfloat16"), (set(), "float32")])
def test_auto_precision_uses_bfloat16_only_where_native(flags, expected):
    chosen, why = resolve_precision("auto", flags)
    assert chosen == expected and why.startswith("auto:")
    assert resolve_precision("bfloat16", flags)[0] == "bfloat16"
    assert native_bfloat16(flags)[0] == (expected == "bfloat16")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8")


def test_policy_and_value_layers_compute_in_float32_under_bfloat16():
    model = build_agent_net(agent_config("small", SMALL + ["precision=bfloat16"]), "feedforward", 5)
    heads = model.heads
    assert heads.torso.compute_dtype == "bfloat16"
    assert heads.policy.compute_dtype == "float32" and heads.baseline.compute_dtype == "float32"
    # A value of 57.3 survives (bf16 would round it to 57.25).
    x = tf.ones([1, heads.torso.kernel.shape[0]])
    heads.baseline.set_weights([np.zeros((model.config.head_hidden, 1), np.float32), np.array([57.3], np.float32)])
    assert float(heads.baseline(tf.nn.relu(heads.torso(x)))[0, 0]) == np.float32(57.3)


# ------------------------------------------------------------------ losses and ablations
def test_entropy_is_masked_at_steps_that_start_no_transition():
    logits = tf.constant(np.random.default_rng(0).normal(size=(4, 3, 5)), tf.float32)
    mask = tf.constant([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]], tf.float32)
    p = tf.nn.softmax(logits)
    per_step = tf.reduce_sum(p * tf.math.log(p), -1)
    assert float(losses.entropy_loss(logits, mask)) == pytest.approx(float(tf.reduce_sum(per_step * mask)), rel=1e-6)
    assert float(losses.entropy_loss(logits)) == pytest.approx(float(tf.reduce_sum(per_step)), rel=1e-6)


def test_l2_keys_agent_trains_on_black_frames():
    """All-zero keys (a black screen) used to give tf.norm a NaN gradient, skipping every update."""
    agent, network = make_agent("l2-keys")
    batch = synthetic_experience(network, 2, 5)
    batch = batch._replace(observation=tf.zeros_like(batch.observation))
    info = agent.compiled_train(2)(batch)
    assert bool(info.extra.applied) and np.isfinite(float(info.extra.gradient_norm))
    assert int(agent.nonfinite_updates.numpy()) == 0


def test_attention_is_not_uniform_at_an_episode_start():
    """Zero queries (from the zero LSTM state) would give a uniform map whose answers average
    away where things are; the queries' initial bias gives each head its own question."""
    def first_step_attention(overrides):
        model = build_agent_net(agent_config("small", SMALL + overrides), "attention", 5)
        out, _ = model.step(tf.zeros((1, 24, 24, 3), tf.uint8), [0], [0.0], model.initial_state(1), first=[True])
        attention = out["attention"].numpy().reshape(model.num_heads, -1)
        return attention, -(attention * np.log(attention)).sum(-1) / np.log(attention.shape[-1])

    _, uniform = first_step_attention(["initial_query_scale=0"])
    assert np.all(uniform > 0.9999), uniform            # zero queries: exactly uniform maps
    attention, entropy = first_step_attention([])       # the small preset's scale (0.3)
    assert np.all(entropy < 0.99), entropy
    assert not np.allclose(attention[0], attention[1])  # the heads look at different places


def test_query_basis_gain_scales_only_the_where_logits_and_round_trips():
    from s3ta_tf.layers import QueryNetwork

    frames = tf.cast(tf.random.stateless_uniform((1, 24, 24, 3), [1, 2], maxval=255, dtype=tf.int32), tf.uint8)

    def logits(model):
        out, _ = model.step(frames, [0], [0.0], model.initial_state(1), first=[True])
        return out["what"].numpy(), out["where"].numpy()
    plain, model = (build_agent_net(agent_config("small", SMALL + [f"query_basis_gain={g}"]), "attention", 5)
                    for g in (1.0, 0.25))
    what1, where1 = logits(plain)
    model.set_weights(plain.get_weights())          # the gain has no weights: same network otherwise
    what_g, where_g = logits(model)
    np.testing.assert_allclose(what_g, what1, rtol=1e-5, atol=1e-6)      # content part untouched
    np.testing.assert_allclose(where_g, 0.25 * where1, rtol=1e-4, atol=1e-6)
    assert np.abs(where1).max() > 1e-3
    layer = model.query_source
    config = layer.get_config()
    assert config["basis_gain"] == 0.25 and config["key_channels"] == model.config.key_channels
    assert QueryNetwork.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="query_basis_gain"):
        agent_config("small", ["query_basis_gain=0"])


# ------------------------------------------------------------------ Atari frames
def test_max_pool_frames_is_the_pixel_max_of_the_last_two_emulator_frames():
    from agents.environments import MaxPoolActionRepeat, _find_wrapper, make_environment

    env = make_environment("ALE/SpaceInvaders-v5", seed=0, noop_max=0)
    env.reset()
    rng = np.random.default_rng(0)
    wrapper = _find_wrapper(env.gym_env, MaxPoolActionRepeat)
    ale = wrapper.unwrapped.ale
    differs = 0
    for _ in range(40):
        action = int(rng.integers(env.num_actions))
        snapshot = ale.cloneState()
        frames = []
        for _ in range(4):
            ale.act(wrapper._action_set[action])
            frames.append(ale.getScreenRGB())
        ale.restoreState(snapshot)
        before = env.frame_count
        step = env.step(np.int32(action))
        np.testing.assert_array_equal(step.observation, np.maximum(frames[2], frames[3]))
        assert env.frame_count - before == 4
        differs += int(not np.array_equal(frames[2], frames[3]))
    assert differs > 0  # Space Invaders flickers: the max keeps what one frame alone loses
    plain = make_environment("ALE/SpaceInvaders-v5", seed=0, noop_max=0, max_pool_frames=False)
    assert _find_wrapper(plain.gym_env, MaxPoolActionRepeat) is None


@pytest.mark.slow
def test_learning_rate_anneals_linearly_and_reaches_the_optimiser():
    agent, network = make_agent(anneal_learning_rate=True, learning_rate=1e-3)
    train = agent.compiled_train(batch_size=2)
    agent.set_progress(0.25)
    assert float(agent.learning_rate) == pytest.approx(7.5e-4)
    agent.set_progress(1.0)  # the end of training: a zero step leaves every weight as it is
    before = [v.numpy().copy() for v in network.trainable_variables]
    assert bool(train(synthetic_experience(network, 2, 5)).extra.applied)
    for v, b in zip(network.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    fixed, _ = make_agent(anneal_learning_rate=False, learning_rate=1e-3)
    fixed.set_progress(0.9)
    assert float(fixed.learning_rate) == pytest.approx(1e-3)
