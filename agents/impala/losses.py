"""IMPALA / V-trace actor-critic loss terms (SPEC §2).

Each term maps time-major ``[T, B]`` (logits ``[T, B, A]``) to a scalar, **summed** over
time and batch as in IMPALA (DeepMind ``scalable_agent/experiment.py``); the paper's
learning rate (2e-4) and global-norm gradient clip (1280) are set for this summed scale.

    policy gradient   L_π = −Σ_{t,b} A_t log π(a_t|x_t)              (A_t: V-trace advantage)
    baseline          L_V = ½ Σ_{t,b} (v_t − V(x_t))²                (v_t: V-trace target)
    entropy           L_H = −Σ_{t,b} m_t H(π(·|x_t))   (m_t = 0 at LAST steps: no action taken)

    total             L = L_π + baseline_cost · L_V + entropy_cost · L_H
                      (paper: baseline_cost = 0.5, entropy_cost = 0.01)

Optionally (``TrainConfig.normalize_advantages``, as in PPO) the advantages are standardised over
the batch's transitions before L_π, Â_t = (A_t − mean_m A) / (std_m A + ε) (m: the transition
mask), so that the policy-gradient term keeps a unit scale next to L_V and L_H however sparse the
rewards are (Pong: |A_t| ~ 0.01 between points).

Targets (A_t, v_t) are treated as constants (``tf.stop_gradient``). Gradients flow into the
logits and values only. ∂L_V/∂V(x_t) = −(v_t − V(x_t)), the standard TD-style update.
"""
from __future__ import annotations

import collections

import tensorflow as tf

BASELINE_COST = 0.5
ENTROPY_COST = 0.01

LossTerms = collections.namedtuple(
    "LossTerms", ["total", "policy_gradient", "baseline", "entropy"])


def policy_gradient_loss(logits, actions, advantages):
    """L_π = −Σ_{t,b} A_t log π(a_t|x_t).

    Args:
      logits: ``[T, B, A]`` target-policy logits (differentiated).
      actions: ``[T, B]`` integer actions.
      advantages: ``[T, B]`` V-trace policy-gradient advantages (not differentiated).

    Returns:
      Scalar float32.
    """
    logits = tf.convert_to_tensor(logits)
    advantages = tf.stop_gradient(tf.cast(advantages, tf.float32))
    actions = tf.cast(actions, tf.int32)
    _check_logits(logits, actions, "advantages", advantages)
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=actions, logits=tf.cast(logits, tf.float32))  # −log π(a_t|x_t)
    return tf.reduce_sum(cross_entropy * advantages)


def normalise_advantages(advantages, mask=None, epsilon=1e-8):
    """Â = (A − mean A) / (std A + ε) over the entries where ``mask`` is 1 (all if None).

    Args:
      advantages: ``[T, B]`` policy-gradient advantages.
      mask: optional ``[T, B]`` transition mask; masked entries are returned as 0.
      epsilon: added to the standard deviation (a constant batch comes out as 0, not NaN).

    Returns:
      ``[T, B]`` float32, not differentiated.
    """
    advantages = tf.stop_gradient(tf.cast(advantages, tf.float32))
    mask = tf.ones_like(advantages) if mask is None else tf.cast(mask, tf.float32)
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    mean = tf.reduce_sum(advantages * mask) / count
    variance = tf.reduce_sum(tf.square(advantages - mean) * mask) / count
    return (advantages - mean) / (tf.sqrt(variance) + epsilon) * mask


def baseline_loss(vs, values):
    """L_V = ½ Σ_{t,b} (v_t − V(x_t))² (the ½ makes ∂L_V/∂V = −(v_t − V(x_t))).

    Args:
      vs: ``[T, B]`` V-trace value targets (not differentiated).
      values: ``[T, B]`` V(x_t) predicted by the learner (differentiated).

    Returns:
      Scalar float32.
    """
    values = tf.cast(values, tf.float32)
    vs = tf.stop_gradient(tf.cast(vs, tf.float32))
    if not vs.shape.is_compatible_with(values.shape):
        raise ValueError(f"baseline_loss: vs {vs.shape.as_list()} and values "
                         f"{values.shape.as_list()} must have the same [T, B] shape")
    return 0.5 * tf.reduce_sum(tf.square(vs - values))


def entropy_loss(logits, mask=None):
    """L_H = −Σ_{t,b} m_t H(π(·|x_t)), H(π) = −Σ_a π(a) log π(a): minimising it raises entropy.

    Args:
      logits: ``[T, B, A]`` target-policy logits.
      mask: optional ``[T, B]``: 0 at steps that start no transition (``LAST`` steps, whose
        action is never taken), which then add no entropy bonus.

    Returns:
      Scalar float32 (≤ 0).
    """
    logits = tf.cast(logits, tf.float32)
    if logits.shape.rank != 3:
        raise ValueError(f"entropy_loss: expected logits [T, B, A], got {logits.shape.as_list()}")
    policy = tf.nn.softmax(logits)
    log_policy = tf.nn.log_softmax(logits)
    negative_entropy = tf.reduce_sum(policy * log_policy, axis=-1)  # [T, B]
    if mask is not None:
        negative_entropy *= tf.cast(mask, tf.float32)
    return tf.reduce_sum(negative_entropy)


def total_loss(logits, actions, values, vtrace_returns, baseline_cost=BASELINE_COST,
               entropy_cost=ENTROPY_COST, mask=None, normalize_advantages=False):
    """L = L_π + baseline_cost · L_V + entropy_cost · L_H.

    Args:
      logits: ``[T, B, A]`` target-policy logits from the learner's unroll.
      actions: ``[T, B]`` behaviour actions.
      values: ``[T, B]`` learner values V(x_t).
      vtrace_returns: anything with ``vs`` and ``pg_advantages`` ``[T, B]``
        (:class:`agents.impala.vtrace.VTraceReturns` or ``VTraceFromLogitsReturns``).
      mask: optional ``[T, B]`` transition mask for the entropy term (see :func:`entropy_loss`;
        the other two terms are already 0 there: advantage 0, target = value).
      normalize_advantages: standardise the advantages over the masked batch first
        (:func:`normalise_advantages`).

    Returns:
      ``LossTerms(total, policy_gradient, baseline, entropy)``: the unweighted terms and the
      weighted total, all scalars.
    """
    advantages = vtrace_returns.pg_advantages
    if normalize_advantages:
        advantages = normalise_advantages(advantages, mask)
    pg = policy_gradient_loss(logits, actions, advantages)
    baseline = baseline_loss(vtrace_returns.vs, values)
    entropy = entropy_loss(logits, mask)
    total = pg + baseline_cost * baseline + entropy_cost * entropy
    return LossTerms(total=total, policy_gradient=pg, baseline=baseline, entropy=entropy)


def _check_logits(logits, actions, other_name, other):
    if logits.shape.rank != 3 or actions.shape.rank != 2 or \
            not logits.shape[:2].is_compatible_with(actions.shape) or \
            not other.shape.is_compatible_with(actions.shape):
        raise ValueError(
            f"expected logits [T, B, A], actions [T, B] and {other_name} [T, B]; got logits "
            f"{logits.shape.as_list()}, actions {actions.shape.as_list()}, {other_name} "
            f"{other.shape.as_list()}")
