"""s3ta_tf: S3TA (soft, spatial, sequential, top-down attention) in TensorFlow/Keras.

Entry points::

    from s3ta_tf import agent_config, build_agent
    model = build_agent(agent_config("paper"), variant="attention", num_actions=18)

See docs/API.md for the step/unroll contract. TensorFlow is imported only when a model
is built, so configuration and the command line stay light.
"""
from s3ta_tf.config import AgentConfig, agent_config, AGENT_PRESETS, AGENT_VARIANTS

__all__ = ["AgentConfig", "agent_config", "AGENT_PRESETS", "AGENT_VARIANTS", "Agent", "build_agent"]


def __getattr__(name):
    if name in ("Agent", "build_agent"):
        from s3ta_tf.models import agent
        return getattr(agent, name)
    raise AttributeError(f"module 's3ta_tf' has no attribute {name!r}")
