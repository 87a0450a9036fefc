"""A structured description of a model: parameters per part, output shapes, key sizes."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from s3ta_tf.models.agent_net import AgentNet

# Attribute name on AgentNet -> part name in the description (paper terminology).
PARTS = (("vision", "vision_core"), ("torso", "impala_resnet"), ("spatial_basis", "spatial_basis"),
         ("query_source", "query_network"), ("attention_heads", "attention"),
         ("answer_processor", "answer_processor"), ("core", "policy_core"), ("heads", "heads"))


def _count(layer) -> dict:
    return {"trainable": int(sum(np.prod(v.shape) for v in layer.trainable_variables)),
            "non_trainable": int(sum(np.prod(v.shape) for v in layer.non_trainable_variables))}


def describe(model: AgentNet) -> dict:
    parts = {name: _count(getattr(model, attr)) for attr, name in PARTS
             if getattr(model, attr, None) is not None}
    out, _ = model.step(tf.zeros((1,) + tuple(model.config.observation_shape), tf.uint8),
                        tf.zeros([1], tf.int32), tf.zeros([1]), model.initial_state(1))
    desc = {
        "variant": model.variant,
        "num_actions": model.num_actions,
        "precision": model.config.precision,
        "observation_shape": list(model.config.observation_shape),
        "parameters": {"parts": parts,
                       "total_trainable": int(sum(p["trainable"] for p in parts.values())),
                       "total": int(sum(p["trainable"] + p["non_trainable"] for p in parts.values()))},
        "outputs": {k: ["B"] + v.shape.as_list()[1:] for k, v in out.items()},
        "state": {k: ["B"] + s.shape.as_list() for k, s in model.state_spec.items()},
    }
    if model.has_attention:
        h, w = model.feature_shape
        desc["attention"] = {"num_heads": model.num_heads, "map_shape": [h, w],
                             "key_channels": model.config.key_channels,
                             "value_channels": model.config.value_channels,
                             "basis_channels": model.config.basis_channels,
                             "query_size": model.config.query_size if model.query_source is not None else 0,
                             "answer_size": model.config.answer_size}
    return desc


def format_description(desc: dict) -> str:
    lines = [f"{desc['variant']} agent, {desc['num_actions']} actions, input {desc['observation_shape']}, "
             f"{desc['precision']}", "parameters:"]
    for name, p in desc["parameters"]["parts"].items():
        extra = f" (+{p['non_trainable']:,} fixed)" if p["non_trainable"] else ""
        lines.append(f"  {name:<18} {p['trainable']:>12,}{extra}")
    lines.append(f"  {'total':<18} {desc['parameters']['total']:>12,}")
    lines.append("outputs per step:")
    lines += [f"  {k:<10} {v}" for k, v in desc["outputs"].items()]
    if "attention" in desc:
        a = desc["attention"]
        lines.append(f"attention: {a['num_heads']} heads over {a['map_shape'][0]}x{a['map_shape'][1]} maps, "
                     f"queries of {a['query_size']}, answers of {a['answer_size']} "
                     f"(keys {a['key_channels']} + basis {a['basis_channels']}, values {a['value_channels']})")
    return "\n".join(lines)
