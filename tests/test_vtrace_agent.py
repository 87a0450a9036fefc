"""The TF-Agents side of V-trace training: network, policy, agent (agents/*.py)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import s3ta_tf
from agents.impala.networks import ActorCriticNetwork
from agents.impala.policies import ActorCriticPolicy
from agents.impala.learning import VTraceAgent, transitions
from agents.impala.replay import Experience
from agents.impala.config import train_config

OBS = (24, 24, 3)
ACTIONS = 5
FIRST, MID, LAST = int(ts.StepType.FIRST), int(ts.StepType.MID), int(ts.StepType.LAST)


def tiny_config():
    return s3ta_tf.agent_config("small", [f"observation_shape={','.join(map(str, OBS))}",
                                          "convlstm_channels=16", "query_hidden=16", "answer_hidden=32",
                                          "lstm_units=16", "head_hidden=16"])


@pytest.fixture(scope="module")
def network():
    tf.random.set_seed(0)
    return ActorCriticNetwork.from_config_and_variant(tiny_config(), "attention", ACTIONS)


def specs(network):
    obs_spec = network.input_tensor_spec["observation"]
    return ts.time_step_spec(obs_spec), tensor_spec.BoundedTensorSpec((), tf.int32, 0, ACTIONS - 1)


def make_agent(network, **overrides):
    time_step_spec, action_spec = specs(network)
    cfg = train_config("small", {"unroll_length": 4, "batch_size": 2, "queue_size": 4, **overrides})
    return VTraceAgent(time_step_spec, action_spec, network, cfg), cfg


def collect(network, steps, batch=2, seed=0):
    """Runs the collect policy on random frames with an episode boundary; returns an
    Experience ``[batch, steps, ...]`` laid out as the actors write it (state at step 0)."""
    rng = np.random.default_rng(seed)
    time_step_spec, action_spec = specs(network)
    policy = ActorCriticPolicy(time_step_spec, action_spec, network)
    state = policy.get_initial_state(batch)
    step_types = [FIRST] + [MID] * (steps - 3) + [LAST, FIRST]
    fields = {k: [] for k in Experience._fields if k != "initial_state"}
    initial_state, reward = None, np.zeros(batch, np.float32)
    for t in range(steps):
        obs = rng.integers(0, 256, (batch,) + OBS, dtype=np.uint8)
        step_type = np.full(batch, step_types[t], np.int32)
        time_step = ts.TimeStep(tf.constant(step_type), tf.constant(reward), tf.ones(batch), tf.constant(obs))
        out = policy.action(time_step, state)
        if t == 0:
            initial_state = out.info["network_state"]
        next_reward = rng.normal(size=batch).astype(np.float32) * 2
        for name, value in (("step_type", step_type), ("observation", obs),
                            ("prev_action", out.info["prev_action"]), ("prev_reward", out.info["prev_reward"]),
                            ("action", out.action), ("behaviour_logits", out.info["behaviour_logits"]),
                            ("reward", next_reward), ("discount", np.ones(batch, np.float32)),
                            ("policy_version", np.zeros(batch, np.int64)),
                            ("episode_return", np.zeros(batch, np.float32)),
                            ("frames", np.full(batch, 4, np.int32)),
                            ("level", np.zeros(batch, np.int32))):
            fields[name].append(np.asarray(value))
        state, reward = out.state, next_reward
    stacked = {k: tf.constant(np.stack(v, axis=1)) for k, v in fields.items()}
    return Experience(initial_state=initial_state, **stacked)


def test_network_specs_and_shapes(network):
    model = network.model
    assert network.state_spec == dict(model.state_spec)
    assert set(network.state_spec) == {"convlstm_h", "convlstm_c", "lstm_h", "lstm_c"}
    inputs = {"observation": tf.zeros((3,) + OBS, tf.uint8), "prev_action": tf.zeros([3], tf.int32),
              "prev_reward": tf.zeros([3])}
    out, state = network(inputs, step_type=tf.zeros([3], tf.int32), network_state=model.initial_state(3))
    assert out["logits"].shape == (3, ACTIONS) and out["value"].shape == (3,)
    assert out["attention"].shape[:2] == (3, model.num_heads)
    seq = {k: tf.stack([v] * 4, axis=1) for k, v in inputs.items()}
    out, _ = network(seq, step_type=tf.zeros([3, 4], tf.int32), network_state=model.initial_state(3))
    assert out["logits"].shape == (3, 4, ACTIONS)
    with pytest.raises(ValueError, match="observation must be uint8"):
        network({**inputs, "observation": tf.zeros((3, 4, 5, 6) + OBS, tf.uint8)})


def test_policy_info_carries_logits_and_state(network):
    time_step_spec, action_spec = specs(network)
    policy = ActorCriticPolicy(time_step_spec, action_spec, network)
    assert set(policy.info_spec) == {"behaviour_logits", "prev_action", "prev_reward", "network_state"}
    assert policy.info_spec["network_state"] == network.state_spec
    state = policy.get_initial_state(2)
    time_step = ts.restart(tf.zeros((2,) + OBS, tf.uint8), batch_size=2)
    out = policy.action(time_step, state)
    assert out.info["behaviour_logits"].shape == (2, ACTIONS)
    np.testing.assert_array_equal(out.state["prev_action"], out.action)  # carried to the next step
    for k, v in state["network"].items():  # the info holds the state *before* the step
        np.testing.assert_array_equal(out.info["network_state"][k], v)
    greedy = ActorCriticPolicy(time_step_spec, action_spec, network, greedy=True).action(time_step, state)
    np.testing.assert_array_equal(greedy.action, np.argmax(greedy.info["behaviour_logits"], -1))
    with pytest.raises(ValueError, match="actions"):
        ActorCriticPolicy(time_step_spec, tensor_spec.BoundedTensorSpec((), tf.int32, 0, ACTIONS), network)


def test_learner_unroll_from_stored_state_reproduces_behaviour(network):
    """With the actor's variables, unrolling from the trajectory's first-step state gives the
    behaviour logits at every step (so log ρ = 0): the stored layout is consistent."""
    agent, cfg = make_agent(network, unroll_length=5)
    exp = collect(network, steps=6)
    inputs = {"observation": exp.observation, "prev_action": exp.prev_action, "prev_reward": exp.prev_reward}
    out, _ = network(inputs, step_type=exp.step_type, network_state=exp.initial_state)
    np.testing.assert_allclose(out["logits"], exp.behaviour_logits, atol=1e-4)
    t = transitions(exp, out["logits"], out["value"], cfg)
    mask = t.mask.numpy()
    np.testing.assert_allclose(t.log_rhos.numpy()[mask == 1], 0.0, atol=1e-4)


def test_transitions_cut_episode_ends_and_bootstrap_truncation(network):
    _, cfg = make_agent(network, unroll_length=5)
    exp = collect(network, steps=6)
    # Column 0: the step before LAST terminates (discount 0); column 1: it is truncated (1).
    discount = np.ones((2, 6), np.float32)
    discount[0, 3] = 0.0
    exp = exp._replace(discount=tf.constant(discount))
    logits = tf.zeros((2, 6, ACTIONS))
    values = tf.constant(np.arange(12, dtype=np.float32).reshape(2, 6))
    t = transitions(exp, logits, values, cfg)
    # Step 4 is LAST: it starts no transition.
    np.testing.assert_array_equal(t.mask.numpy()[:, 0], [1, 1, 1, 1, 0])
    assert np.all(np.exp(t.log_rhos.numpy()[4]) == 0.0)
    np.testing.assert_allclose(t.discounts.numpy()[:, 0], [0.99, 0.99, 0.99, 0.0, 0.0])
    np.testing.assert_allclose(t.discounts.numpy()[:, 1], [0.99, 0.99, 0.99, 0.99, 0.0])
    assert np.all(np.abs(t.rewards.numpy()) <= 1.0) and np.any(np.abs(exp.reward.numpy()) > 1.0)
    np.testing.assert_array_equal(t.bootstrap_value.numpy(), values.numpy()[:, 5])


@pytest.mark.slow
def test_training_lowers_the_loss_on_a_fixed_batch(network):
    """With discount 0 and on-policy data the V-trace targets are the rewards themselves
    (v_s = r_s), so the baseline loss is a fixed regression that the updates must lower.
    (The total V-trace loss is no fixed objective: its targets and advantages move with the
    parameters, so its sign of change on a few small steps is not a property to test.)"""
    tf.random.set_seed(1)
    net = ActorCriticNetwork.from_config_and_variant(tiny_config(), "attention", ACTIONS)
    agent, _ = make_agent(net, unroll_length=5, learning_rate=1e-3)
    exp = collect(net, steps=6, seed=3)
    exp = exp._replace(discount=tf.zeros_like(exp.discount), reward=tf.ones_like(exp.reward))
    before = float(agent.loss(exp).extra["baseline"])
    for _ in range(15):
        info = agent.train(exp)
        assert bool(info.extra.applied)
    after = float(agent.loss(exp).extra["baseline"])
    assert after < 0.95 * before, (before, after)  # 0.76-0.87 of it over seeds 0-5
    assert int(agent.train_step_counter.numpy()) == 15
    assert info.extra.gradient_norm.numpy() > 0


def test_gradient_clipping_bounds_the_update(network):
    tf.random.set_seed(2)
    net = ActorCriticNetwork.from_config_and_variant(tiny_config(), "attention", ACTIONS)
    agent, _ = make_agent(net, unroll_length=5, gradient_clip=1e-1, rmsprop_epsilon=1e4,
                          learning_rate=1.0, optimizer="rmsprop")
    # With ε huge, RMSProp is plain SGD scaled by lr/sqrt(ε): the step is bounded by the clip.
    # (A step of 1e-3 keeps float32 rounding of the weights, ~1e-6 in norm, well inside 1%.)
    before = [v.numpy().copy() for v in net.trainable_variables]
    info = agent.train(collect(net, steps=6, seed=4))
    assert float(info.extra.gradient_norm) > 1e-1
    step = np.sqrt(sum(np.sum((v.numpy().astype(np.float64) - b) ** 2)
                       for v, b in zip(net.trainable_variables, before)))
    assert 0 < step <= 1e-1 / np.sqrt(1e4) * 1.01


def test_non_finite_update_is_skipped_and_counted(network):
    tf.random.set_seed(3)
    net = ActorCriticNetwork.from_config_and_variant(tiny_config(), "attention", ACTIONS)
    agent, _ = make_agent(net, unroll_length=5)
    exp = collect(net, steps=6, seed=5)
    before = [v.numpy().copy() for v in net.variables]
    reward = exp.reward.numpy().copy()
    reward[0, 1] = np.nan
    info = agent.train(exp._replace(reward=tf.constant(reward)))
    assert not bool(info.extra.applied)
    assert int(agent.nonfinite_updates.numpy()) == 1 and int(agent.train_step_counter.numpy()) == 0
    for v, b in zip(net.variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    assert bool(agent.train(exp).extra.applied)  # the next finite batch trains normally
    assert int(agent.train_step_counter.numpy()) == 1


def test_experience_of_the_wrong_length_is_rejected(network):
    agent, _ = make_agent(network, unroll_length=4)
    with pytest.raises(ValueError, match=r"expected \[B, 5, \.\.\.\]"):
        agent.train(collect(network, steps=6))


def test_the_optimizer_setting_selects_rmsprop_or_adam(network):
    from agents.impala.learning import RMSProp
    assert isinstance(make_agent(network, optimizer="rmsprop")[0].optimizer, RMSProp)
    adam = make_agent(network, optimizer="adam", learning_rate=3e-4, adam_epsilon=1e-6)[0].optimizer
    assert isinstance(adam, tf.compat.v1.train.AdamOptimizer)
    assert adam._lr == 3e-4 and adam._epsilon == 1e-6  # pylint: disable=protected-access
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train_config("small", {"optimizer": "sgd"})


@pytest.mark.parametrize("initial_mean_square", [1.0, 0.0])
def test_rmsprop_is_impalas_tf1_rmsprop(initial_mean_square):
    from agents.impala.learning import RMSProp

    v = tf.Variable([1.0, -1.0])
    opt = RMSProp(learning_rate=0.1, decay=0.99, momentum=0.0, epsilon=0.01,
                  initial_mean_square=initial_mean_square)
    g = np.array([2.0, 0.5], np.float32)
    opt.apply_gradients([(tf.constant(g), v)])
    ms = 0.99 * initial_mean_square + 0.01 * g ** 2
    np.testing.assert_allclose(v.numpy(), np.array([1.0, -1.0]) - 0.1 * g / np.sqrt(ms + 0.01), rtol=1e-5)
