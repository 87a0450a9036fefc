"""V-trace targets and IMPALA loss terms against direct numpy definitions."""
import numpy as np
import pytest
import tensorflow as tf

from agents.impala import losses, vtrace

T, B, A = 7, 5, 4


# ---------------------------------------------------------------- ground truth (numpy, O(T²))

def vtrace_ground_truth(log_rhos, discounts, rewards, values, bootstrap_value,
                        rho_bar=1.0, pg_rho_bar=1.0, c_bar=1.0):
    """Textbook V-trace, per column, no recursion:

    v_s = V(x_s) + Σ_{t=s}^{T-1} (Π_{i=s}^{t-1} γ_i c_i) ρ_t (r_t + γ_t V(x_{t+1}) − V(x_t))
    A_s = ρ_pg,s (r_s + γ_s v_{s+1} − V(x_s)),   V(x_T) = v_T = bootstrap_value.
    """
    rhos = np.exp(log_rhos.astype(np.float64))
    rho = np.minimum(rho_bar, rhos) if rho_bar is not None else rhos
    c = np.minimum(c_bar, rhos) if c_bar is not None else rhos
    pg_rho = np.minimum(pg_rho_bar, rhos) if pg_rho_bar is not None else rhos
    n_t, n_b = log_rhos.shape
    v_ext = np.concatenate([values, bootstrap_value[None]], axis=0).astype(np.float64)
    vs = np.zeros((n_t, n_b))
    for b in range(n_b):
        for s in range(n_t):
            total = v_ext[s, b]
            for t in range(s, n_t):
                trace = 1.0
                for i in range(s, t):
                    trace *= discounts[i, b] * c[i, b]
                delta = rewards[t, b] + discounts[t, b] * v_ext[t + 1, b] - v_ext[t, b]
                total += trace * rho[t, b] * delta
            vs[s, b] = total
    vs_ext = np.concatenate([vs, bootstrap_value[None]], axis=0)
    adv = pg_rho * (rewards + discounts * vs_ext[1:] - values)
    return vs, adv


def make_batch(seed, log_rho_scale=1.0):
    """Random [T, B] inputs; discounts are 0.99 with episode ends (0) in some columns."""
    rng = np.random.default_rng(seed)
    discounts = np.full((T, B), 0.99, np.float32)
    discounts[2, 0] = 0.0            # an episode ends inside column 0
    discounts[[1, 4], 3] = 0.0       # two episode ends in column 3
    discounts[T - 1, 4] = 0.0        # ends at the last step: bootstrap must be ignored
    return dict(
        log_rhos=(rng.standard_normal((T, B)) * log_rho_scale).astype(np.float32),
        discounts=discounts,
        rewards=rng.standard_normal((T, B)).astype(np.float32),
        values=rng.standard_normal((T, B)).astype(np.float32),
        bootstrap_value=rng.standard_normal(B).astype(np.float32),
    )


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


# ---------------------------------------------------------------- from_importance_weights

@pytest.mark.parametrize("log_rho_scale", [0.3, 3.0], ids=["mild", "clipping-binds"])
@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "tf"])
def test_matches_ground_truth(log_rho_scale, as_tensor):
    batch = make_batch(0, log_rho_scale)
    rhos = np.exp(batch["log_rhos"])
    if log_rho_scale > 1:  # the thresholds really bind on both sides of 1
        assert (rhos > 1.0).mean() > 0.3 and (rhos < 1.0).mean() > 0.3
    inputs = {k: tf.constant(v) for k, v in batch.items()} if as_tensor else batch
    out = vtrace.from_importance_weights(**inputs)
    assert isinstance(out, vtrace.VTraceReturns)
    vs_ref, adv_ref = vtrace_ground_truth(**batch)
    assert out.vs.shape == (T, B) and out.pg_advantages.shape == (T, B)
    np.testing.assert_allclose(out.vs.numpy(), vs_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.pg_advantages.numpy(), adv_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rho_bar, pg_rho_bar", [(0.5, 2.0), (None, None), (2.0, 0.7)])
def test_thresholds_are_applied(rho_bar, pg_rho_bar):
    batch = make_batch(1, log_rho_scale=2.0)
    out = vtrace.from_importance_weights(**batch, clip_rho_threshold=rho_bar,
                                         clip_pg_rho_threshold=pg_rho_bar)
    vs_ref, adv_ref = vtrace_ground_truth(**batch, rho_bar=rho_bar, pg_rho_bar=pg_rho_bar)
    np.testing.assert_allclose(out.vs.numpy(), vs_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.pg_advantages.numpy(), adv_ref, rtol=1e-5, atol=1e-5)
    # Different thresholds give different targets (they are not silently ignored).
    default = vtrace.from_importance_weights(**batch)
    assert not np.allclose(default.vs.numpy(), out.vs.numpy())


def test_on_policy_is_n_step_return():
    """ρ = c = 1: v_s is the discounted n-step return bootstrapped from V(x_T), cut at γ = 0."""
    batch = make_batch(2)
    batch["log_rhos"] = np.zeros((T, B), np.float32)
    out = vtrace.from_importance_weights(**batch)
    expected = np.zeros((T, B))
    ret = batch["bootstrap_value"].astype(np.float64)
    for t in reversed(range(T)):
        ret = batch["rewards"][t] + batch["discounts"][t] * ret
        expected[t] = ret
    np.testing.assert_allclose(out.vs.numpy(), expected, rtol=1e-5, atol=1e-5)
    # Where the episode ends at step t, v_t is just r_t.
    np.testing.assert_allclose(out.vs.numpy()[2, 0], batch["rewards"][2, 0], rtol=1e-6)
    np.testing.assert_allclose(out.vs.numpy()[T - 1, 4], batch["rewards"][T - 1, 4], rtol=1e-6)


def test_rank_3_batch_dims_and_tf_function():
    batch = make_batch(3)
    stacked = {k: np.stack([v, v[..., ::-1]], axis=-1) for k, v in batch.items()}  # [T, B, 2]
    fn = tf.function(vtrace.from_importance_weights)
    out = fn(**{k: tf.constant(v) for k, v in stacked.items()})
    vs_ref, _ = vtrace_ground_truth(**batch)
    np.testing.assert_allclose(out.vs.numpy()[..., 0], vs_ref, rtol=1e-5, atol=1e-5)


def test_outputs_stop_gradients():
    batch = {k: tf.Variable(v) for k, v in make_batch(4).items()}
    with tf.GradientTape() as tape:
        out = vtrace.from_importance_weights(**batch)
        total = tf.reduce_sum(out.vs) + tf.reduce_sum(out.pg_advantages)
    grads = tape.gradient(total, list(batch.values()))
    assert all(g is None for g in grads)


@pytest.mark.parametrize("field, bad, message", [
    ("values", np.zeros((T, B + 1), np.float32), "'values' has shape \\[7, 6\\]"),
    ("rewards", np.zeros((T + 1, B), np.float32), "'rewards' has shape \\[8, 5\\]"),
    ("bootstrap_value", np.zeros((T, B), np.float32), "'bootstrap_value' has shape \\[7, 5\\]"),
    ("discounts", np.zeros((T,), np.float32), "'discounts' has shape \\[7\\]"),
    ("log_rhos", np.float32(0.0), "time-major"),
    ("rewards", np.array([["a"] * B] * T), "real-valued"),
])
def test_shape_errors_are_clear(field, bad, message):
    batch = make_batch(5)
    batch[field] = bad
    with pytest.raises(ValueError, match=message):
        vtrace.from_importance_weights(**batch)


# ---------------------------------------------------------------- from_logits

@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "tf"])
def test_from_logits_consistent_with_importance_weights(as_tensor):
    rng = np.random.default_rng(6)
    batch = make_batch(6)
    del batch["log_rhos"]
    behaviour = (rng.standard_normal((T, B, A)) * 2).astype(np.float32)
    target = (rng.standard_normal((T, B, A)) * 2).astype(np.float32)
    actions = rng.integers(0, A, (T, B)).astype(np.int32)
    args = dict(batch, behaviour_policy_logits=behaviour, target_policy_logits=target,
                actions=actions)
    if as_tensor:
        args = {k: tf.constant(v) for k, v in args.items()}
    out = vtrace.from_logits(**args)

    taken = np.take_along_axis
    target_lp = taken(log_softmax(target.astype(np.float64)), actions[..., None], -1)[..., 0]
    behaviour_lp = taken(log_softmax(behaviour.astype(np.float64)), actions[..., None], -1)[..., 0]
    np.testing.assert_allclose(out.target_action_log_probs.numpy(), target_lp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.behaviour_action_log_probs.numpy(), behaviour_lp, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(out.log_rhos.numpy(), target_lp - behaviour_lp, rtol=1e-5, atol=1e-5)

    direct = vtrace.from_importance_weights(log_rhos=out.log_rhos, **batch)
    np.testing.assert_allclose(out.vs.numpy(), direct.vs.numpy(), rtol=1e-6)
    np.testing.assert_allclose(out.pg_advantages.numpy(), direct.pg_advantages.numpy(), rtol=1e-6)
    vs_ref, adv_ref = vtrace_ground_truth(log_rhos=(target_lp - behaviour_lp), **batch)
    np.testing.assert_allclose(out.vs.numpy(), vs_ref, rtol=1e-4, atol=1e-4)


def test_from_logits_shape_errors():
    batch = make_batch(7)
    del batch["log_rhos"]
    logits = np.zeros((T, B, A), np.float32)
    actions = np.zeros((T, B), np.int32)
    with pytest.raises(ValueError, match="must both be \\[T, B, A\\]"):
        vtrace.from_logits(logits, np.zeros((T, B, A + 1), np.float32), actions, **batch)
    with pytest.raises(ValueError, match="expected logits \\[T, B, A\\] and actions \\[T, B\\]"):
        vtrace.from_logits(logits, logits, np.zeros((T, B + 1), np.int32), **batch)
    with pytest.raises(ValueError, match="'actions' must be integers"):
        vtrace.from_logits(logits, logits, actions.astype(np.float32), **batch)


# ---------------------------------------------------------------- losses

def test_loss_terms_match_numpy_and_gradients():
    rng = np.random.default_rng(8)
    logits = tf.Variable(rng.standard_normal((T, B, A)).astype(np.float32))
    values = tf.Variable(rng.standard_normal((T, B)).astype(np.float32))
    actions = rng.integers(0, A, (T, B)).astype(np.int32)
    vs = tf.Variable(rng.standard_normal((T, B)).astype(np.float32))
    adv = tf.Variable(rng.standard_normal((T, B)).astype(np.float32))
    returns = vtrace.VTraceReturns(vs=vs, pg_advantages=adv)

    with tf.GradientTape(persistent=True) as tape:
        terms = losses.total_loss(logits, actions, values, returns)
    lp = log_softmax(logits.numpy().astype(np.float64))
    taken = np.take_along_axis(lp, actions[..., None], -1)[..., 0]
    pg_ref = -(adv.numpy() * taken).sum()
    base_ref = 0.5 * ((vs.numpy() - values.numpy()) ** 2).sum()
    ent_ref = (np.exp(lp) * lp).sum()
    np.testing.assert_allclose(terms.policy_gradient.numpy(), pg_ref, rtol=1e-5)
    np.testing.assert_allclose(terms.baseline.numpy(), base_ref, rtol=1e-5)
    np.testing.assert_allclose(terms.entropy.numpy(), ent_ref, rtol=1e-5)
    np.testing.assert_allclose(terms.total.numpy(), pg_ref + 0.5 * base_ref + 0.01 * ent_ref,
                               rtol=1e-5)
    # Targets are constants; ∂(0.5·L_V)/∂V = −0.5 (v − V).
    assert tape.gradient(terms.total, vs) is None and tape.gradient(terms.total, adv) is None
    np.testing.assert_allclose(tape.gradient(terms.total, values).numpy(),
                               -0.5 * (vs.numpy() - values.numpy()), rtol=1e-5, atol=1e-6)


def test_normalised_advantages_are_standardised_over_the_masked_transitions():
    adv = np.array([[1.0, 3.0], [5.0, 100.0], [7.0, -2.0]], np.float32)   # [T=3, B=2]
    mask = np.array([[1, 1], [1, 0], [1, 1]], np.float32)                 # 100 is a LAST step
    kept = np.array([1.0, 3.0, 5.0, 7.0, -2.0])
    expected = (adv - kept.mean()) / (kept.std() + 1e-8) * mask
    out = losses.normalise_advantages(adv, mask).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert out[1, 1] == 0.0 and abs(out[mask > 0].mean()) < 1e-6 and abs(out[mask > 0].std() - 1) < 1e-4
    # A constant batch gives zeros, not NaN.
    np.testing.assert_array_equal(losses.normalise_advantages(np.full((2, 2), 0.3, np.float32)).numpy(),
                                  np.zeros((2, 2), np.float32))
    # total_loss uses them only when asked: the same loss as with pre-standardised advantages.
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((3, 2, A)).astype(np.float32)
    actions = rng.integers(0, A, (3, 2)).astype(np.int32)
    values = np.zeros((3, 2), np.float32)
    raw = vtrace.VTraceReturns(vs=values, pg_advantages=adv)
    pre = vtrace.VTraceReturns(vs=values, pg_advantages=expected.astype(np.float32))
    on = losses.total_loss(logits, actions, values, raw, mask=mask, normalize_advantages=True)
    off = losses.total_loss(logits, actions, values, raw, mask=mask)
    np.testing.assert_allclose(on.policy_gradient.numpy(),
                               losses.total_loss(logits, actions, values, pre, mask=mask).policy_gradient.numpy(),
                               rtol=1e-5)
    assert abs(on.policy_gradient.numpy() - off.policy_gradient.numpy()) > 1.0


def test_entropy_loss_of_uniform_policy_is_minus_log_a():
    assert losses.entropy_loss(np.zeros((T, B, A), np.float32)).numpy() == pytest.approx(
        -T * B * np.log(A), rel=1e-5)
    # Minimising the entropy loss moves a peaked policy towards uniform.
    logits = tf.Variable(np.array([[[3.0, 0.0, 0.0]]], np.float32))
    with tf.GradientTape() as tape:
        loss = losses.entropy_loss(logits)
    grad = tape.gradient(loss, logits).numpy()[0, 0]
    assert grad[0] > 0 and grad[1] < 0 and grad[2] < 0


def test_policy_gradient_raises_probability_of_advantaged_actions():
    logits = tf.Variable(np.zeros((1, 1, 3), np.float32))
    with tf.GradientTape() as tape:
        loss = losses.policy_gradient_loss(logits, [[1]], [[2.0]])
    step = -tape.gradient(loss, logits).numpy()[0, 0]   # gradient descent direction
    assert step[1] > 0 and step[0] < 0 and step[2] < 0


def test_loss_shape_errors():
    with pytest.raises(ValueError, match="expected logits \\[T, B, A\\]"):
        losses.policy_gradient_loss(np.zeros((T, B), np.float32), np.zeros((T, B), np.int32),
                                    np.zeros((T, B), np.float32))
    with pytest.raises(ValueError, match="advantages \\[7, 4\\]"):
        losses.policy_gradient_loss(np.zeros((T, B, A), np.float32), np.zeros((T, B), np.int32),
                                    np.zeros((T, B - 1), np.float32))
    with pytest.raises(ValueError, match="same \\[T, B\\] shape"):
        losses.baseline_loss(np.zeros((T, B), np.float32), np.zeros((T, B + 1), np.float32))
    with pytest.raises(ValueError, match="expected logits \\[T, B, A\\]"):
        losses.entropy_loss(np.zeros((T,), np.float32))
