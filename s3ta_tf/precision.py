"""Numeric precision: float32, or bfloat16 mixed precision (bf16 compute, f32 weights), or
``auto``: bfloat16 only where the CPU computes it natively.

bfloat16 runs the convolutions, the ConvLSTM and the hidden dense layers in bf16; softmaxes,
the LSTM cell states, the policy-logit and value layers and all model outputs stay float32.
On a CPU without native bf16 arithmetic (AVX2 only: no ``avx512_bf16``, no ``amx_bf16``) a bf16
convolution is emulated and 10–100× slower than float32, so ``auto`` picks float32 there.
"""
from __future__ import annotations

import functools
from typing import FrozenSet, List, Optional, Tuple

PRECISIONS = ("float32", "bfloat16")            # what a model config may hold
PRECISION_CHOICES = ("auto",) + PRECISIONS      # what a --precision flag accepts
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def layer_policy(precision: str):
    """The Keras dtype policy (``tf.keras.mixed_precision.Policy``) to pass as ``dtype=`` to
    layers for ``precision``."""
    import tensorflow as tf

    if precision not in _POLICIES:
        raise ValueError(f"precision must be one of {sorted(_POLICIES)}, got {precision!r}")
    return tf.keras.mixed_precision.Policy(_POLICIES[precision])


@functools.lru_cache(maxsize=1)
def cpu_flags() -> FrozenSet[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bfloat16(flags=None) -> Tuple[bool, str]:
    """``(True, reason)`` if the CPU has native bf16 arithmetic (AMX or AVX-512 BF16)."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    found = [f for f in NATIVE_BF16_FLAGS if f in flags]
    if found:
        return True, f"CPU flags {', '.join(found)}: native bfloat16"
    simd = "avx512f" if "avx512f" in flags else ("avx2" if "avx2" in flags else "no AVX2")
    return False, (f"no native bfloat16 on this CPU ({simd}; neither amx_bf16 nor avx512_bf16): bfloat16 "
                   f"would be emulated, 10-100x slower than float32")


def cpu_summary(flags=None) -> dict:
    flags = cpu_flags() if flags is None else frozenset(flags)
    return {"avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
            "amx_tile": "amx_tile" in flags}


def resolve_precision(precision: str, flags=None) -> Tuple[str, str]:
    """``(float32|bfloat16, why)`` for ``auto``, ``float32`` or ``bfloat16``."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    if precision != "auto":
        return precision, "chosen explicitly"
    native, why = native_bfloat16(flags)
    return ("bfloat16" if native else "float32"), f"auto: {why}"


def precision_overrides(precision: Optional[str]) -> List[str]:
    """The ``model.precision=...`` override of a ``--precision`` value (``auto`` resolved for this
    CPU), or none when it is unset."""
    return [f"model.precision={resolve_precision(precision)[0]}"] if precision else []
