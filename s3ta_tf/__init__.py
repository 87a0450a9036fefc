"""s3ta_tf: S3TA (soft, spatial, sequential, top-down attention) in TensorFlow/Keras — the
Keras layers, the models and their model configs, nothing of training or services.

Entry points::

    from s3ta_tf import agent_config, build_agent_net
    model = build_agent_net(agent_config("paper"), variant="attention", num_actions=18)

``build_agent`` and ``Agent`` are the older names of ``build_agent_net`` and ``AgentNet`` and
still work. See docs/API.md for the step/unroll contract. TensorFlow is imported only when a
model is built, so configuration and the command line stay light.
"""
from s3ta_tf.config import AgentConfig, agent_config, AGENT_PRESETS, AGENT_VARIANTS

__all__ = ["AgentConfig", "agent_config", "AGENT_PRESETS", "AGENT_VARIANTS", "AgentNet",
           "build_agent_net", "Agent", "build_agent"]


def __getattr__(name):
    if name in ("AgentNet", "build_agent_net", "Agent", "build_agent"):
        from s3ta_tf import models
        return getattr(models, name)
    raise AttributeError(f"module 's3ta_tf' has no attribute {name!r}")
