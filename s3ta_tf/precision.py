"""Numeric precision: float32, or bfloat16 mixed precision (bf16 compute, f32 weights).

bfloat16 runs the convolutions, the ConvLSTM and the dense layers on the CPU's AMX-bf16
units; softmaxes, the LSTM cell state and all model outputs stay float32.
"""
import tensorflow as tf

_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def layer_policy(precision: str) -> tf.keras.mixed_precision.Policy:
    """The Keras dtype policy to pass as ``dtype=`` to layers for ``precision``."""
    if precision not in _POLICIES:
        raise ValueError(f"precision must be one of {sorted(_POLICIES)}, got {precision!r}")
    return tf.keras.mixed_precision.Policy(_POLICIES[precision])
