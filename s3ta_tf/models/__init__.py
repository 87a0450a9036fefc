"""Keras models of s3ta-tf: the agents' network (``AgentNet``: the attention agent, its
ablations and the ResNet baselines) and the supervised classifier."""
from s3ta_tf.models.agent_net import AgentNet, build_agent_net

Agent, build_agent = AgentNet, build_agent_net  # the names before the layout by feature

__all__ = ["AgentNet", "build_agent_net", "Agent", "build_agent"]
