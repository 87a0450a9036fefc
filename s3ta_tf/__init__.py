"""s3ta_tf: S3TA (soft, spatial, sequential, top-down attention) in TensorFlow/Keras — the
Keras layers, the models and their model configs, nothing of training or services.

Entry points::

    from s3ta_tf import agent_config, build_agent_net
    model = build_agent_net(agent_config("paper"), variant="attention", num_actions=18)

See docs/API.md for the step/unroll contract. TensorFlow is imported only when a
model is built, so configuration and the command line stay light.
"""
from s3ta_tf.config import AgentConfig, agent_config, AGENT_PRESETS, AGENT_VARIANTS

# Names removed in 0.2.0 -> their replacements (importing one raises an error naming it).
REMOVED_NAMES = {"build_agent": "build_agent_net", "Agent": "AgentNet"}

__all__ = ["AgentConfig", "agent_config", "AGENT_PRESETS", "AGENT_VARIANTS", "AgentNet",
           "build_agent_net"]


def __getattr__(name):
    if name in ("AgentNet", "build_agent_net"):
        from s3ta_tf import models
        return getattr(models, name)
    if name in REMOVED_NAMES:
        raise AttributeError(f"s3ta_tf.{name} was removed in 0.2.0; use s3ta_tf.{REMOVED_NAMES[name]}")
    raise AttributeError(f"module 's3ta_tf' has no attribute {name!r}")
