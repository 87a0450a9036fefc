"""The recurrent actor policy of the V-trace agent.

Policy state (``policy_state_spec``)::

    {"network": the model's recurrent state (ActorCriticNetwork.state_spec),
     "prev_action": int32 []}                 the action taken at the previous step

The previous reward is the time step's own ``reward`` (TF-Agents delivers r_{t-1} with x_t).

Policy info (``info_spec``), recorded at every step so that trajectories carry what the
learner needs for off-policy correction and for unrolling from a trajectory's first step::

    {"behaviour_logits": float32 [A],       logits of μ(·|x_t)
     "prev_action": int32 [], "prev_reward": float32 [],   the model's inputs at t
     "network_state": the model state *before* step t}

Actions are sampled from softmax(logits) (``greedy=True``: argmax).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import policy_step

from agents.impala.networks import ActorCriticNetwork


def info_spec(network: ActorCriticNetwork, num_actions: int) -> dict:
    return {
        "behaviour_logits": tf.TensorSpec((num_actions,), tf.float32, name="behaviour_logits"),
        "prev_action": tf.TensorSpec((), tf.int32, name="prev_action"),
        "prev_reward": tf.TensorSpec((), tf.float32, name="prev_reward"),
        "network_state": network.state_spec,
    }


class ActorCriticPolicy(tf_policy.TFPolicy):
    """Samples actions from an :class:`ActorCriticNetwork`; see the module docstring."""

    def __init__(self, time_step_spec, action_spec, network: ActorCriticNetwork, greedy: bool = False,
                 name: str = "ActorCriticPolicy"):
        if not tensor_spec.is_discrete(action_spec) or action_spec.shape.rank != 0:
            raise ValueError(f"ActorCriticPolicy needs a scalar discrete action spec, got {action_spec}")
        num_actions = int(action_spec.maximum - action_spec.minimum + 1)
        if num_actions != network.num_actions:
            raise ValueError(f"the action spec has {num_actions} actions but the network's model "
                             f"was built for {network.num_actions}")
        self._network = network
        self._greedy = greedy
        state_spec = {"network": network.state_spec,
                      "prev_action": tf.TensorSpec((), tf.int32, name="prev_action")}
        super().__init__(time_step_spec, action_spec, policy_state_spec=state_spec,
                         info_spec=info_spec(network, num_actions), name=name)

    @property
    def network(self) -> ActorCriticNetwork:
        return self._network

    def _variables(self):
        return self._network.variables

    def _step(self, time_step, policy_state):
        """Runs the network one step: ``(outputs, inputs, new network state)``."""
        inputs = {"observation": time_step.observation,
                  "prev_action": policy_state["prev_action"],
                  "prev_reward": tf.cast(time_step.reward, tf.float32)}
        outputs, new_network_state = self._network(inputs, step_type=time_step.step_type,
                                                   network_state=policy_state["network"])
        return outputs, inputs, new_network_state

    def _distribution(self, time_step, policy_state):
        outputs, inputs, new_network_state = self._step(time_step, policy_state)
        dist = tfp.distributions.Categorical(logits=outputs["logits"], dtype=tf.int32)
        # The previous action is only known once an action is chosen; see _action.
        new_state = {"network": new_network_state, "prev_action": policy_state["prev_action"]}
        return policy_step.PolicyStep(dist, new_state, self._info(outputs, inputs, policy_state))

    def _action(self, time_step, policy_state, seed=None):
        outputs, inputs, new_network_state = self._step(time_step, policy_state)
        logits = outputs["logits"]
        if self._greedy:
            action = tf.argmax(logits, axis=-1, output_type=tf.int32)
        else:
            action = tf.random.categorical(logits, 1, dtype=tf.int32, seed=seed)[:, 0]
        new_state = {"network": new_network_state, "prev_action": action}
        return policy_step.PolicyStep(action, new_state, self._info(outputs, inputs, policy_state))

    @staticmethod
    def _info(outputs, inputs, policy_state):
        return {"behaviour_logits": tf.cast(outputs["logits"], tf.float32),
                "prev_action": inputs["prev_action"],
                "prev_reward": inputs["prev_reward"],
                "network_state": policy_state["network"]}
