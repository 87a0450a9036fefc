"""IMPALA V-trace actor-critic as a TF-Agents ``TFAgent`` (SPEC §2).

Training data (``training_data_spec``) is an :class:`Experience` of ``B`` trajectories of
``T + 1`` stored steps (``T`` = unroll length; the last step is the bootstrap step, shared
with the next trajectory as its first step). Step ``t`` holds the time step x_t, the model's
inputs there, the behaviour policy's action and logits at x_t, and the transition to t+1::

    step_type [B, T+1]   observation [B, T+1, H, W, 3] uint8
    prev_action, prev_reward [B, T+1]        (a_{t-1}, r_{t-1}: the model's inputs at t)
    action [B, T+1]   behaviour_logits [B, T+1, A]
    reward, discount [B, T+1]                (r_{t+1}, env discount of x_{t+1})
    policy_version [B, T+1] int64            (learner step of the actor's variables)
    episode_return [B, T+1]                  (raw return so far; the episode's return at LAST)
    frames [B, T+1] int32                    (emulator frames stepped from x_t to x_{t+1}: the
                                              action repeat, fewer at a game over, the no-op
                                              frames of a reset after LAST, 0 for a bare reset)
    level [B, T+1] int32                     (which environment of a multi-level run: an index
                                              into TrainConfig.env_ids; 0 for one environment)
    initial_state   model state at step 0 [B, ...] (no time axis)

The learner unrolls the model over all T + 1 steps from ``initial_state`` and computes, for
the T transitions t = 0..T-1 (time-major ``[T, B]``):

    rewards   = clip(reward_t, ±reward_clip)     (AgentConfig.reward_clip)
    discounts = discount · env_discount_t        (0 at termination, 1 kept at truncation)
    log ρ_t   = log π(a_t|x_t) − log μ(a_t|x_t)

A step whose ``step_type`` is LAST starts no transition (TF-Agents' next step is a reset):
there ρ = c = 0 and γ = 0, so v_t = V(x_t) and the policy-gradient advantage is 0 — the
step only serves as the bootstrap V(x_T) of the step before it (truncation bootstraps).

Loss (agents.impala.losses, summed over time and batch): L_π + c_V·L_V + c_H·L_H, the weights
``TrainConfig.baseline_cost`` and ``entropy_cost``. Gradients are clipped to
``TrainConfig.gradient_clip``, by global norm or by value (``gradient_clip_mode``); the update is
skipped — and counted in ``nonfinite_updates`` — whenever the loss or any gradient is not finite.
The optimiser is ``TrainConfig.optimizer``: Adam, or RMSProp as in IMPALA (TF1's RMSProp, its ε
inside the square root and its mean square initialised to ``rmsprop_initial_mean_square``). The
numbers of each preset are in agents/impala/config.py.
"""
from __future__ import annotations

import collections

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.trajectories import time_step as ts

from agents.impala import losses, vtrace
from agents.impala.networks import ActorCriticNetwork
from agents.impala.policies import ActorCriticPolicy
from agents.impala.replay import Experience, experience_spec

VTraceLossInfo = collections.namedtuple(
    "VTraceLossInfo", ["policy_gradient", "baseline", "entropy", "mean_entropy", "gradient_norm",
                       "applied", "policy_lag", "mean_log_rho", "attention_entropy", "part_gradient_norms"])

# exp(_NO_TRANSITION) == 0 exactly in float32: ρ = c = 0 where a step starts no transition.
_NO_TRANSITION = -1e30


class RMSProp(tf.compat.v1.train.RMSPropOptimizer):
    """TF1 RMSProp (IMPALA's optimiser): ms ← ρ·ms + (1−ρ)·g², Δ = −lr·g / sqrt(ms + ε).

    TF1 starts the mean square ``ms`` at 1, which makes the first few hundred updates plain
    SGD with step ``lr``; ``initial_mean_square`` makes that start selectable (0 normalises
    the very first update).
    """

    def __init__(self, learning_rate, decay, momentum, epsilon, initial_mean_square=1.0):
        super().__init__(learning_rate=learning_rate, decay=decay, momentum=momentum, epsilon=epsilon)
        self._initial_mean_square = float(initial_mean_square)

    def _create_slots(self, var_list):
        for v in var_list:
            init = tf.constant_initializer(self._initial_mean_square)
            self._get_or_make_slot_with_initializer(v, init, v.get_shape(), v.dtype.base_dtype, "rms",
                                                    self._name)
            self._zeros_slot(v, "momentum", self._name)


def make_optimizer(config, learning_rate=None):
    """The optimiser of a TrainConfig: IMPALA's RMSProp (``optimizer="rmsprop"``, SPEC §2), or
    Adam (``optimizer="adam"``: β₁ 0.9, β₂ 0.999, ε ``adam_epsilon``), whose per-parameter
    normalisation suits the attention agent's small vision gradients (see docs/LEARNING.md).
    ``learning_rate``: a value or a variable read at every update (default: the config's)."""
    lr = config.learning_rate if learning_rate is None else learning_rate
    if config.optimizer == "adam":
        return tf.compat.v1.train.AdamOptimizer(learning_rate=lr, epsilon=config.adam_epsilon)
    return RMSProp(learning_rate=lr, decay=config.rmsprop_decay,
                   momentum=config.rmsprop_momentum, epsilon=config.rmsprop_epsilon,
                   initial_mean_square=config.rmsprop_initial_mean_square)


class VTraceAgent(tf_agent.TFAgent):
    """V-trace actor-critic. ``config`` is a :class:`agents.impala.config.TrainConfig`."""

    def __init__(self, time_step_spec, action_spec, network: ActorCriticNetwork, config,
                 optimizer=None, train_step_counter=None, name: str = "VTraceAgent"):
        tf.Module.__init__(self, name=name)
        self._network = network
        self._config = config
        # The learning rate is a variable so that the learner can anneal it (set_progress).
        self._learning_rate = tf.Variable(config.learning_rate, dtype=tf.float32, trainable=False,
                                          name="learning_rate")
        self._optimizer = optimizer if optimizer is not None else make_optimizer(config, self._learning_rate)
        self._nonfinite_updates = tf.Variable(0, dtype=tf.int64, trainable=False,
                                              name="nonfinite_updates")
        self._part_of = model_parts(network.model)
        with tf.init_scope():  # slots now, not inside the tf.cond of _train
            self._optimizer._create_slots(network.trainable_variables)  # pylint: disable=protected-access
        policy = ActorCriticPolicy(time_step_spec, action_spec, network, greedy=True)
        collect_policy = ActorCriticPolicy(time_step_spec, action_spec, network, greedy=False)
        if train_step_counter is None:
            train_step_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
        super().__init__(time_step_spec, action_spec, policy, collect_policy,
                         train_sequence_length=config.sequence_length,
                         training_data_spec=experience_spec(network),
                         train_step_counter=train_step_counter)

    @property
    def network(self) -> ActorCriticNetwork:
        return self._network

    @property
    def optimizer(self):
        return self._optimizer

    @property
    def learning_rate(self) -> tf.Variable:
        return self._learning_rate

    def set_progress(self, fraction: float) -> None:
        """Training progress in [0, 1] (frames / max_frames): with ``anneal_learning_rate`` the
        learning rate falls linearly from its configured value to 0 at the end (IMPALA's
        schedule), otherwise it stays constant."""
        if self._config.anneal_learning_rate:
            self._learning_rate.assign(self._config.learning_rate * max(0.0, 1.0 - float(fraction)))

    @property
    def nonfinite_updates(self) -> tf.Variable:
        """Updates skipped because the loss or a gradient was NaN/inf."""
        return self._nonfinite_updates

    def _initialize(self):
        return tf.no_op()

    # ------------------------------------------------------------------ compiled update
    def batch_signature(self, batch_size: int) -> Experience:
        """``TensorSpec``s of one learner batch with static shapes: ``[batch_size, T + 1, ...]``
        per step, ``[batch_size, ...]`` for ``initial_state``."""
        spec, lead = self.training_data_spec, (int(batch_size), self._config.sequence_length)
        with_lead = lambda s, shape: tf.TensorSpec(shape + tuple(s.shape), s.dtype, s.name)
        fields = {name: with_lead(getattr(spec, name), lead) for name in Experience._fields
                  if name != "initial_state"}
        state = {k: with_lead(s, lead[:1]) for k, s in spec.initial_state.items()}
        return Experience(initial_state=state, **fields)

    def compiled_train(self, batch_size: int, jit_compile: bool = False):
        """The update as one traced graph with static shapes (traced once per run): a
        ``tf.function`` over :meth:`train` with :meth:`batch_signature` as its input signature.
        ``jit_compile`` additionally compiles it with XLA."""
        return tf.function(self.train, input_signature=[self.batch_signature(batch_size)],
                           jit_compile=bool(jit_compile), reduce_retracing=False)

    # ------------------------------------------------------------------ loss
    def _loss(self, experience: Experience, weights=None, training=False):
        total, extra = self._loss_terms(experience, training)
        return tf_agent.LossInfo(loss=total, extra=extra)

    def _loss_terms(self, experience: Experience, training: bool):
        """``(total loss, dict of diagnostics)``; see the module docstring."""
        c = self._config
        T = c.unroll_length
        experience = tf.nest.map_structure(tf.convert_to_tensor, experience)
        check_experience(experience, T + 1)
        inputs = {"observation": experience.observation, "prev_action": experience.prev_action,
                  "prev_reward": experience.prev_reward}
        outputs, _ = self._network(inputs, step_type=experience.step_type,
                                   network_state=experience.initial_state, training=training)
        t = transitions(experience, outputs["logits"], outputs["value"], c,
                        reward_clip=self._network.model.config.reward_clip)
        returns = vtrace.from_importance_weights(
            log_rhos=t.log_rhos, discounts=t.discounts, rewards=t.rewards, values=t.values,
            bootstrap_value=t.bootstrap_value, clip_rho_threshold=c.clip_rho_threshold,
            clip_pg_rho_threshold=c.clip_pg_rho_threshold, clip_c_threshold=c.clip_c_threshold)
        terms = losses.total_loss(t.target_logits, t.actions, t.values, returns,
                                  baseline_cost=c.baseline_cost, entropy_cost=c.entropy_cost, mask=t.mask,
                                  normalize_advantages=c.normalize_advantages)
        extra = dict(
            policy_gradient=terms.policy_gradient, baseline=terms.baseline, entropy=terms.entropy,
            mean_entropy=-terms.entropy / tf.maximum(tf.reduce_sum(t.mask), 1.0),
            mean_log_rho=tf.reduce_sum(tf.stop_gradient(t.log_rhos) * t.mask)
            / tf.maximum(tf.reduce_sum(t.mask), 1.0),
            policy_lag=tf.reduce_mean(tf.cast(
                self.train_step_counter - experience.policy_version[:, 0], tf.float32)),
            attention_entropy=attention_entropy(outputs.get("attention")))
        return terms.total, extra

    # ------------------------------------------------------------------ diagnosis
    def first_nonfinite(self, experience: Experience) -> str:
        """Where a non-finite update comes from, for the error that stops a diverging run: the
        first non-finite among the batch's float fields and initial state, the trainable
        variables, the loss terms, then the gradient of each variable (eager; call only after
        a skip)."""
        experience = tf.nest.map_structure(tf.convert_to_tensor, experience)
        for name in ("prev_reward", "reward", "discount", "behaviour_logits"):
            if not bool(tf.reduce_all(tf.math.is_finite(getattr(experience, name)))):
                return f"input Experience.{name}"
        for k, v in experience.initial_state.items():
            if not bool(tf.reduce_all(tf.math.is_finite(v))):
                return f"input Experience.initial_state[{k!r}]"
        for v in self._network.trainable_variables:
            if not bool(tf.reduce_all(tf.math.is_finite(v))):
                return f"variable {v.name}"
        variables = self._network.trainable_variables
        with tf.GradientTape() as tape:
            total, extra = self._loss_terms(experience, training=True)
        for name in ("policy_gradient", "baseline", "entropy"):
            if not bool(tf.math.is_finite(extra[name])):
                return f"loss term {name} ({float(extra[name])})"
        if not bool(tf.math.is_finite(total)):
            return f"total loss ({float(total)})"
        for g, v in zip(tape.gradient(total, variables), variables):
            if g is not None and not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(g)))):
                return f"gradient of {v.name}"
        return "none found when re-run eagerly (the non-finite value was transient)"

    # ------------------------------------------------------------------ update
    def _train(self, experience: Experience, weights=None):
        variables = self._network.trainable_variables
        with tf.GradientTape() as tape:
            total, extra = self._loss_terms(experience, training=True)
        grads = tape.gradient(total, variables)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, variables)]
        gradient_norm = tf.linalg.global_norm(grads)
        parts = {}
        for g, v in zip(grads, variables):
            parts.setdefault(self._part_of.get(v.ref(), "other"), []).append(g)
        part_norms = {k: tf.linalg.global_norm(gs) for k, gs in sorted(parts.items())}
        finite = tf.logical_and(tf.math.is_finite(total), tf.math.is_finite(gradient_norm))
        clip = self._config.gradient_clip
        if self._config.gradient_clip_mode == "global_norm":
            clipped, _ = tf.clip_by_global_norm(grads, clip, use_norm=gradient_norm)
        else:
            clipped = [tf.clip_by_value(g, -clip, clip) for g in grads]

        def apply():
            with tf.control_dependencies([self._optimizer.apply_gradients(zip(clipped, variables))]):
                self.train_step_counter.assign_add(1)
            return tf.constant(True)

        def skip():
            self._nonfinite_updates.assign_add(1)
            return tf.constant(False)

        applied = tf.cond(finite, apply, skip)
        info = VTraceLossInfo(gradient_norm=gradient_norm, applied=applied, part_gradient_norms=part_norms,
                              **extra)
        return tf_agent.LossInfo(loss=total, extra=info)


def model_parts(model) -> dict:
    """``{variable.ref(): part}``: the top-level layer of the model each trainable variable
    belongs to (``vision_core``, ``query_network``, ``answer_processor``, ``policy_core``,
    ``heads``, ``impala_resnet``, ...), for per-part gradient norms."""
    return {v.ref(): layer.name for layer in model.layers for v in layer.trainable_variables}


def attention_entropy(attention):
    """Mean entropy of the attention maps over space, normalised by log(h·w) (1 = uniform,
    0 = one position); -1 for models without attention. ``attention [B, T, N, h, w]``."""
    if attention is None:
        return tf.constant(-1.0)
    a = tf.cast(attention, tf.float32)
    shape = tf.shape(a)
    flat = tf.reshape(a, tf.concat([shape[:-2], [-1]], 0))
    entropy = -tf.reduce_sum(flat * tf.math.log(flat + 1e-12), axis=-1)
    return tf.reduce_mean(entropy) / tf.math.log(tf.cast(tf.shape(flat)[-1], tf.float32))


Transitions = collections.namedtuple(
    "Transitions", ["log_rhos", "discounts", "rewards", "values", "bootstrap_value", "target_logits",
                    "actions", "mask"])


def _time_major(x):
    return tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))


def transitions(experience: Experience, logits, values, config, reward_clip: float = 1.0) -> Transitions:
    """The V-trace inputs, time-major, for the T transitions of ``T + 1``-step trajectories.

    Args:
      experience: :class:`Experience` ``[B, T+1, ...]``.
      logits: ``[B, T+1, A]`` target-policy logits of the learner's unroll.
      values: ``[B, T+1]`` V(x_t) of the learner's unroll.
      config: TrainConfig (discount, unroll_length).
      reward_clip: rewards are clipped to ±reward_clip: the model's ``AgentConfig.reward_clip``,
        which also clips the previous reward the model sees (one setting for both).

    Returns:
      :class:`Transitions`: ``log_rhos, discounts, rewards, values [T, B]``, ``bootstrap_value
      [B]`` (V(x_T)), ``target_logits [T, B, A]``, ``actions [T, B]``, ``mask [T, B]`` (0 where
      step t is LAST and so starts no transition; there log ρ = −1e30 and γ = 0).
    """
    T = config.unroll_length
    logits = _time_major(tf.cast(logits, tf.float32))
    values = _time_major(tf.cast(values, tf.float32))
    actions = _time_major(experience.action)[:T]
    starts_transition = tf.not_equal(_time_major(experience.step_type)[:T], ts.StepType.LAST)
    mask = tf.cast(starts_transition, tf.float32)
    rewards = tf.clip_by_value(_time_major(experience.reward)[:T], -reward_clip, reward_clip)
    discounts = config.discount * _time_major(experience.discount)[:T] * mask
    log_rhos = (vtrace.action_log_probs(logits[:T], actions)
                - vtrace.action_log_probs(_time_major(experience.behaviour_logits)[:T], actions))
    log_rhos = tf.where(starts_transition, log_rhos, _NO_TRANSITION)
    return Transitions(log_rhos=log_rhos, discounts=discounts, rewards=rewards, values=values[:T],
                       bootstrap_value=values[T], target_logits=logits[:T], actions=actions, mask=mask)


def check_experience(experience: Experience, sequence_length: int) -> None:
    """Raises ValueError unless every per-step field is ``[B, sequence_length, ...]``."""
    if not isinstance(experience, Experience):
        raise ValueError(f"expected an agents.impala.learning.Experience, got {type(experience).__name__}")
    for name in Experience._fields:
        if name == "initial_state":
            continue
        shape = getattr(experience, name).shape
        if shape.rank is None or shape.rank < 2 or shape[1] != sequence_length:
            raise ValueError(f"Experience.{name} has shape {shape}; expected [B, {sequence_length}, ...] "
                             f"(unroll_length + 1 steps)")
