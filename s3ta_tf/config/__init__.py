"""Typed configuration of the model library: the agent network (``model.AgentConfig``) and the
classifier network (``classifier.ClassifierModelConfig``), plus the one override grammar
(``overrides``: ``--set section.field=value``). Training, analysis and classification-data
settings live beside their code (``agents/impala/config.py``, ``pipelines/analysis/config.py``,
``pipelines/classify/config.py``). A preset is data: presets differ only in field values.
"""
from s3ta_tf.config.overrides import apply_overrides, parse_override, to_dict, from_dict
from s3ta_tf.config.model import AgentConfig, AGENT_PRESETS, AGENT_VARIANTS, agent_config

__all__ = [
    "AgentConfig", "AGENT_PRESETS", "AGENT_VARIANTS", "agent_config",
    "apply_overrides", "parse_override", "to_dict", "from_dict",
]
