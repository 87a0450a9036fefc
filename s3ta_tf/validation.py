"""Input checks that name the fault and the expected form (raised at trace time)."""
from __future__ import annotations

import tensorflow as tf


def _shape_str(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_tensor(name: str, x, expected_shape, dtypes) -> tf.Tensor:
    """Converts ``x`` and checks its dtype is one of ``dtypes`` and its static shape matches
    ``expected_shape`` (None = any size). Raises ValueError naming the expected form."""
    x = tf.convert_to_tensor(x) if not isinstance(x, tf.Tensor) else x
    dtypes = tuple(tf.as_dtype(d) for d in dtypes)
    want = f"{'/'.join(d.name for d in dtypes)} {_shape_str(expected_shape)}"
    if x.dtype not in dtypes:
        raise ValueError(f"{name}: expected {want}, got dtype {x.dtype.name} with shape {_shape_str(x.shape)}")
    if x.shape.rank is not None:
        ok = x.shape.rank == len(expected_shape) and all(
            e is None or d is None or int(d) == int(e) for d, e in zip(x.shape, expected_shape))
        if not ok:
            raise ValueError(f"{name}: expected {want}, got shape {_shape_str(x.shape)}")
    return x


def check_state(state, state_spec: dict, batch) -> dict:
    """``state`` must be a dict with exactly the keys of ``state_spec`` and shapes ``[B, *spec]``."""
    if not isinstance(state, dict) or set(state) != set(state_spec):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"state: expected a dict with keys {sorted(state_spec)} "
                         f"(from model.initial_state(batch_size)), got {got}")
    return {k: check_tensor(f"state[{k!r}]", v, (batch,) + tuple(state_spec[k].shape), (tf.float32,))
            for k, v in state.items()}


def assert_runtime_shapes(named: dict, expected: dict):
    """Graph-time checks for tensors whose static shape is unknown (exported signatures):
    every ``named[k]`` must have shape ``[B, *expected[k]]`` with one B shared by all.
    Returns control-dependency ops; the error names the input and the expected form."""
    ops, batch = [], None
    for k, x in named.items():
        want = list(expected[k])
        form = f"{k}: expected {x.dtype.name} [B, {', '.join(map(str, want))}]" if want else \
            f"{k}: expected {x.dtype.name} [B]"
        shape = tf.shape(x)
        ops.append(tf.debugging.assert_equal(tf.size(shape), len(want) + 1, message=form + " (wrong rank)"))
        if want:
            ops.append(tf.debugging.assert_equal(shape[1:len(want) + 1], tf.constant(want, tf.int32),
                                                 message=form))
        if batch is None:
            batch = shape[0]
        else:
            ops.append(tf.debugging.assert_equal(shape[0], batch,
                                                 message=f"{k}: batch size differs from the other inputs"))
    return ops
