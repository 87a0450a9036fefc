"""V-trace off-policy actor-critic targets (Espeholt et al., 2018, "IMPALA", Section 4).

All arguments are time-major: ``[T, B]`` (T = unroll length, B = batch), as in DeepMind's
``scalable_agent/vtrace.py`` which this module follows. Inputs may be numpy arrays or tensors;
they are cast to float32. Outputs are wrapped in ``tf.stop_gradient``: V-trace targets are
regression / advantage *targets*, never differentiated through.

Notation (per batch column; ``discounts[t]`` is γ_t, already 0 where step t ends an episode
by termination and γ where it continues or is truncated by a time limit):

    ρ_t  = min(ρ̄, π(a_t|x_t) / μ(a_t|x_t))            (ρ̄ = clip_rho_threshold)
    c_i  = min(c̄, π(a_i|x_i) / μ(a_i|x_i))            (c̄ = clip_c_threshold = 1)
    δ_t  = ρ_t (r_t + γ_t V(x_{t+1}) − V(x_t))          (V(x_T) = bootstrap_value)

    v_s  = V(x_s) + Σ_{t=s}^{T−1} (Π_{i=s}^{t−1} γ_i c_i) δ_t

computed by the backward recursion (Remark 1 of the paper)

    v_s − V(x_s) = δ_s + γ_s c_s (v_{s+1} − V(x_{s+1})),   v_T − V(x_T) = 0.

Policy-gradient advantage (ρ̄_pg = clip_pg_rho_threshold):

    A_s = min(ρ̄_pg, π(a_s|x_s)/μ(a_s|x_s)) (r_s + γ_s v_{s+1} − V(x_s)),   v_T = V(x_T).
"""
from __future__ import annotations

import collections

import tensorflow as tf

VTraceReturns = collections.namedtuple("VTraceReturns", ["vs", "pg_advantages"])

VTraceFromLogitsReturns = collections.namedtuple(
    "VTraceFromLogitsReturns",
    ["vs", "pg_advantages", "log_rhos", "behaviour_action_log_probs", "target_action_log_probs"],
)


def _as_float(name, x):
    """Converts ``x`` (numpy array or tensor) to a float32 tensor with a known rank."""
    x = tf.convert_to_tensor(x)
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise ValueError(f"vtrace: '{name}' must be a real-valued array, got dtype {x.dtype.name}")
    x = tf.cast(x, tf.float32)
    if x.shape.rank is None:
        raise ValueError(f"vtrace: '{name}' must have a statically known rank")
    return x


def _check_shapes(time_major, bootstrap_value):
    """Checks ``time_major`` (dict name -> tensor, all ``[T, B, ...]``) and bootstrap ``[B, ...]``."""
    (ref_name, ref), *others = time_major.items()
    if ref.shape.rank < 1:
        raise ValueError(f"vtrace: '{ref_name}' must be time-major [T, B], got a scalar")
    for name, x in others:
        if not x.shape.is_compatible_with(ref.shape):
            raise ValueError(
                f"vtrace: '{name}' has shape {x.shape.as_list()} but '{ref_name}' has "
                f"{ref.shape.as_list()}; all per-step inputs must be time-major [T, B] "
                f"with the same shape")
    if not bootstrap_value.shape.is_compatible_with(ref.shape[1:]):
        raise ValueError(
            f"vtrace: 'bootstrap_value' has shape {bootstrap_value.shape.as_list()} but must be "
            f"[B] = {ref.shape[1:].as_list()} (the value of the state after the last step of "
            f"'{ref_name}' {ref.shape.as_list()})")


def from_importance_weights(log_rhos, discounts, rewards, values, bootstrap_value,
                            clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0,
                            clip_c_threshold=1.0, name="vtrace_from_importance_weights"):
    """V-trace targets from log importance weights.

    Args:
      log_rhos: ``[T, B]`` log π(a_t|x_t) − log μ(a_t|x_t) (target minus behaviour).
      discounts: ``[T, B]`` γ_t: the discount applied after step t (0 at a terminal step).
      rewards: ``[T, B]`` r_t (clipped by the caller if wanted).
      values: ``[T, B]`` V(x_t) under the current (target) value function.
      bootstrap_value: ``[B]`` V(x_T), the value of the state after the last step.
      clip_rho_threshold: ρ̄ for the value targets (None: no clipping).
      clip_pg_rho_threshold: ρ̄_pg for the policy-gradient advantages (None: no clipping).
      clip_c_threshold: c̄ for the trace cutting coefficients (None: no clipping).

    Returns:
      ``VTraceReturns(vs [T, B], pg_advantages [T, B])``, float32, gradients stopped.

    Raises:
      ValueError: when the inputs are not all ``[T, B]`` with a ``[B]`` bootstrap value.
    """
    with tf.name_scope(name):
        log_rhos = _as_float("log_rhos", log_rhos)
        discounts = _as_float("discounts", discounts)
        rewards = _as_float("rewards", rewards)
        values = _as_float("values", values)
        bootstrap_value = _as_float("bootstrap_value", bootstrap_value)
        _check_shapes({"log_rhos": log_rhos, "discounts": discounts, "rewards": rewards,
                       "values": values}, bootstrap_value)

        rhos = tf.exp(log_rhos)
        clipped_rhos = rhos if clip_rho_threshold is None else tf.minimum(clip_rho_threshold, rhos)
        cs = rhos if clip_c_threshold is None else tf.minimum(clip_c_threshold, rhos)

        # V(x_{t+1}) for t = 0..T-1: [V(x_1), ..., V(x_{T-1}), V(x_T) = bootstrap].
        values_t_plus_1 = tf.concat([values[1:], bootstrap_value[None]], axis=0)
        deltas = clipped_rhos * (rewards + discounts * values_t_plus_1 - values)

        # v_s - V(x_s) = δ_s + γ_s c_s (v_{s+1} - V(x_{s+1})), scanned from s = T-1 down to 0.
        def backward_step(acc, elems):
            discount_t, c_t, delta_t = elems
            return delta_t + discount_t * c_t * acc

        vs_minus_v_xs = tf.scan(backward_step, (discounts, cs, deltas),
                                initializer=tf.zeros_like(bootstrap_value),
                                parallel_iterations=1, reverse=True)
        vs = vs_minus_v_xs + values

        # A_s = ρ_pg,s (r_s + γ_s v_{s+1} - V(x_s)), with v_T = V(x_T).
        vs_t_plus_1 = tf.concat([vs[1:], bootstrap_value[None]], axis=0)
        clipped_pg_rhos = (rhos if clip_pg_rho_threshold is None
                           else tf.minimum(clip_pg_rho_threshold, rhos))
        pg_advantages = clipped_pg_rhos * (rewards + discounts * vs_t_plus_1 - values)

        return VTraceReturns(vs=tf.stop_gradient(vs),
                             pg_advantages=tf.stop_gradient(pg_advantages))


def action_log_probs(policy_logits, actions):
    """log π(a_t|x_t) of the taken actions.

    Args:
      policy_logits: ``[T, B, A]`` unnormalised log-probabilities.
      actions: ``[T, B]`` integer actions in ``[0, A)``.

    Returns:
      ``[T, B]`` float32 log-probabilities.
    """
    policy_logits = tf.cast(tf.convert_to_tensor(policy_logits), tf.float32)
    actions = tf.convert_to_tensor(actions)
    if not actions.dtype.is_integer:
        raise ValueError(f"vtrace: 'actions' must be integers [T, B], got dtype {actions.dtype.name}")
    if policy_logits.shape.rank != actions.shape.rank + 1 or not \
            policy_logits.shape[:-1].is_compatible_with(actions.shape):
        raise ValueError(
            f"vtrace: logits of shape {policy_logits.shape.as_list()} do not match actions of "
            f"shape {actions.shape.as_list()}; expected logits [T, B, A] and actions [T, B]")
    return -tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(actions, tf.int32), logits=policy_logits)


def from_logits(behaviour_policy_logits, target_policy_logits, actions, discounts, rewards,
                values, bootstrap_value, clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0,
                clip_c_threshold=1.0, name="vtrace_from_logits"):
    """V-trace targets from behaviour (μ) and target (π) policy logits.

    log ρ_t = log π(a_t|x_t) − log μ(a_t|x_t), then :func:`from_importance_weights`.

    Args:
      behaviour_policy_logits: ``[T, B, A]`` logits of μ, recorded by the actors.
      target_policy_logits: ``[T, B, A]`` logits of π, from the learner's unroll.
      actions: ``[T, B]`` integer actions taken by μ.
      discounts, rewards, values, bootstrap_value, clip_*: as in
        :func:`from_importance_weights`.

    Returns:
      ``VTraceFromLogitsReturns(vs, pg_advantages, log_rhos, behaviour_action_log_probs,
      target_action_log_probs)``, each ``[T, B]``.
    """
    with tf.name_scope(name):
        behaviour_policy_logits = tf.convert_to_tensor(behaviour_policy_logits)
        target_policy_logits = tf.convert_to_tensor(target_policy_logits)
        if not behaviour_policy_logits.shape.is_compatible_with(target_policy_logits.shape):
            raise ValueError(
                f"vtrace: behaviour_policy_logits {behaviour_policy_logits.shape.as_list()} and "
                f"target_policy_logits {target_policy_logits.shape.as_list()} must both be "
                f"[T, B, A] with the same shape")
        target_action_log_probs = action_log_probs(target_policy_logits, actions)
        behaviour_action_log_probs = action_log_probs(behaviour_policy_logits, actions)
        log_rhos = target_action_log_probs - behaviour_action_log_probs
        returns = from_importance_weights(
            log_rhos=log_rhos, discounts=discounts, rewards=rewards, values=values,
            bootstrap_value=bootstrap_value, clip_rho_threshold=clip_rho_threshold,
            clip_pg_rho_threshold=clip_pg_rho_threshold, clip_c_threshold=clip_c_threshold)
        return VTraceFromLogitsReturns(
            vs=returns.vs, pg_advantages=returns.pg_advantages, log_rhos=log_rhos,
            behaviour_action_log_probs=behaviour_action_log_probs,
            target_action_log_probs=target_action_log_probs)
