"""s3ta_tf: S3TA (soft, spatial, sequential, top-down attention) in TensorFlow/Keras.

Entry points::

    from s3ta_tf import agent_config, build_agent
    model = build_agent(agent_config("paper"), variant="attention", num_actions=18)

See docs/API.md for the step/unroll contract.
"""
from s3ta_tf.config import AgentConfig, agent_config, AGENT_PRESETS, AGENT_VARIANTS
from s3ta_tf.models.agent import Agent, build_agent

__all__ = ["AgentConfig", "agent_config", "AGENT_PRESETS", "AGENT_VARIANTS", "Agent", "build_agent"]
