"""Keras models of s3ta-tf: the agents' network (``AgentNet``: the attention agent, its
ablations and the ResNet baselines) and the supervised classifier."""
from s3ta_tf.models.agent_net import AgentNet, build_agent_net

__all__ = ["AgentNet", "build_agent_net"]


def __getattr__(name):
    from s3ta_tf import REMOVED_NAMES
    if name in REMOVED_NAMES:   # removed in 0.2.0
        raise AttributeError(f"s3ta_tf.models.{name} was removed in 0.2.0; use {REMOVED_NAMES[name]}")
    raise AttributeError(f"module 's3ta_tf.models' has no attribute {name!r}")
