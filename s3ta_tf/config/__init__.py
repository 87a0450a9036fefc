"""Typed configuration for s3ta-tf: one package, one dataclass per concern.

Every dataclass here has named presets (``paper``, ``small``) and any field can be
overridden from the command line with ``--set field=value`` (see :mod:`.overrides`).
A preset is data: presets differ only in field values, never in code paths.
"""
from s3ta_tf.config.overrides import apply_overrides, parse_override, to_dict, from_dict
from s3ta_tf.config.model import AgentConfig, AGENT_PRESETS, AGENT_VARIANTS, agent_config

__all__ = [
    "AgentConfig", "AGENT_PRESETS", "AGENT_VARIANTS", "agent_config",
    "apply_overrides", "parse_override", "to_dict", "from_dict",
]
