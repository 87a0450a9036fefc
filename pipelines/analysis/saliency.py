"""Perturbation saliency (Greydanus et al. 2017; SPEC §3).

The frame X is perturbed at (i, j) by blending in a Gaussian-blurred copy under a Gaussian
mask centred there: ``X′ = X·(1 − M) + blur(X)·M`` (mask σ = 5 px, truncated at 4σ as
``scipy.ndimage.gaussian_filter`` does; blur σ = 3 px), rounded back to uint8. Then

    S_π(i, j) = ½ ‖softmax(π(X′)) − softmax(π(X))‖²      S_V(i, j) = ½ (V(X′) − V(X))²

on a stride grid. The perturbed frames go through the model in batches: ``evaluate`` maps
uint8 ``[B, H, W, 3]`` to ``(logits [B, A], values [B])``; :func:`recurrent_evaluator`
builds one from a stepper and the recurrent state reached after the warm-up, replicated
B times, so every perturbed frame is judged from the same state.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional, Tuple

import numpy as np

Evaluate = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]
TRUNCATE = 4.0


@functools.lru_cache(maxsize=32)
def _kernel(sigma: float) -> np.ndarray:
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``frame [H, W, C]`` (reflect borders) → float32 [H, W, C]."""
    k = _kernel(float(sigma))
    r = len(k) // 2
    x = np.asarray(frame, np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        xp = np.pad(x, pad, mode="symmetric")
        windows = np.lib.stride_tricks.sliding_window_view(xp, len(k), axis=axis)
        x = windows @ k
    return x


def mask_profile(size: int, centres: np.ndarray, sigma: float) -> np.ndarray:
    """``[len(centres), size]`` 1-D Gaussian profiles (peak 1, zero beyond 4σ)."""
    pos = np.arange(size, dtype=np.float32)[None, :]
    d = pos - np.asarray(centres, np.float32)[:, None]
    prof = np.exp(-0.5 * (d / sigma) ** 2)
    prof[np.abs(d) > TRUNCATE * sigma] = 0.0
    return prof.astype(np.float32)


def gaussian_mask(frame_hw, centre, sigma: float) -> np.ndarray:
    """The mask M ``[H, W]`` centred on ``centre = (i, j)``."""
    my = mask_profile(frame_hw[0], np.array([centre[0]]), sigma)[0]
    mx = mask_profile(frame_hw[1], np.array([centre[1]]), sigma)[0]
    return my[:, None] * mx[None, :]


def grid_centres(frame_hw, stride: int):
    """Perturbation centres: ``(ys [gh], xs [gw])`` = ``range(0, H, stride)``, ``range(0, W, stride)``."""
    return np.arange(0, frame_hw[0], stride), np.arange(0, frame_hw[1], stride)


def perturbed_batch(frame: np.ndarray, blurred: np.ndarray, my: np.ndarray, mx: np.ndarray) -> np.ndarray:
    """``X + M·(blur(X) − X)`` for masks ``M_b = my[b] ⊗ mx[b]``: uint8 ``[B, H, W, 3]``."""
    x = np.asarray(frame, np.float32)
    m = my[:, :, None] * mx[:, None, :]                                # [B, H, W]
    out = x[None] + m[..., None] * (blurred - x)[None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@dataclasses.dataclass
class Saliency:
    """Saliency on a grid: ``policy``/``value`` ``[gh, gw]`` at pixel rows ``ys`` and columns ``xs``.

    ``noise_policy``/``noise_value``: the largest "saliency" of the *unperturbed* frame pushed
    through the model in a full batch — the numerical floor below which values mean nothing.
    """
    policy: np.ndarray
    value: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    noise_policy: float = 0.0
    noise_value: float = 0.0


def saliency_maps(evaluate: Evaluate, frame: np.ndarray, stride: int = 5, mask_sigma: float = 5.0,
                  blur_sigma: float = 3.0, batch_size: int = 96,
                  progress: Optional[Callable[[int, int], None]] = None) -> Saliency:
    """Policy and value saliency of ``frame`` (uint8 ``[H, W, 3]``) under ``evaluate``.

    All ``gh·gw`` perturbed frames are evaluated in batches of ``batch_size``;
    ``progress(done, total)`` is called after each batch.
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    hw = frame.shape[:2]
    ys, xs = grid_centres(hw, stride)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    cy, cx = gy.ravel(), gx.ravel()
    my_all = mask_profile(hw[0], ys, mask_sigma)                       # [gh, H]
    mx_all = mask_profile(hw[1], xs, mask_sigma)                       # [gw, W]
    iy, ix = np.meshgrid(np.arange(len(ys)), np.arange(len(xs)), indexing="ij")
    iy, ix = iy.ravel(), ix.ravel()
    blurred = gaussian_blur(frame, blur_sigma)

    ref_logits, ref_value = evaluate(frame[None])
    ref_pi = softmax(ref_logits)[0]
    ref_v = float(np.asarray(ref_value, np.float64).reshape(-1)[0])
    total = len(cy)
    same_logits, same_values = evaluate(np.repeat(frame[None], min(batch_size, total), axis=0))
    noise_pi = float((0.5 * np.sum((softmax(same_logits) - ref_pi) ** 2, axis=-1)).max())
    noise_v = float((0.5 * (np.asarray(same_values, np.float64).reshape(-1) - ref_v) ** 2).max())
    s_pi = np.zeros(len(cy), np.float64)
    s_v = np.zeros(len(cy), np.float64)
    for start in range(0, total, batch_size):
        sl = slice(start, min(start + batch_size, total))
        batch = perturbed_batch(frame, blurred, my_all[iy[sl]], mx_all[ix[sl]])
        logits, values = evaluate(batch)
        s_pi[sl] = 0.5 * np.sum((softmax(logits) - ref_pi) ** 2, axis=-1)
        s_v[sl] = 0.5 * (np.asarray(values, np.float64).reshape(-1) - ref_v) ** 2
        if progress is not None:
            progress(sl.stop, total)
    shape = (len(ys), len(xs))
    return Saliency(s_pi.reshape(shape).astype(np.float32), s_v.reshape(shape).astype(np.float32), ys, xs,
                    noise_pi, noise_v)


def replicate_state(state: dict, batch_size: int) -> dict:
    """Every state tensor ``[1, ...]`` repeated to ``[batch_size, ...]``."""
    out = {}
    for name, value in state.items():
        value = np.asarray(value)
        if value.shape[0] != 1:
            raise ValueError(f"state {name!r} must have batch size 1 to be replicated, got {value.shape}")
        out[name] = np.repeat(value, batch_size, axis=0)
    return out


def recurrent_evaluator(stepper, context) -> Evaluate:
    """``evaluate`` for a stepper, from the recorded context of one step (see rollout.StepContext).

    The state (batch 1), previous action/reward and episode-start flag are replicated to the
    batch of perturbed frames; the new state is discarded, so every frame sees the same past.
    """
    def evaluate(frames: np.ndarray):
        b = len(frames)
        outputs, _ = stepper.step(
            frames,
            np.full([b], context.prev_action, np.int32),
            np.full([b], context.prev_reward, np.float32),
            replicate_state(context.state, b),
            np.full([b], context.first, bool))
        return outputs["logits"], outputs["value"]
    return evaluate


def saliency_image(frame: np.ndarray, sal: np.ndarray, colour=(0, 255, 0), gain: float = 1.0) -> np.ndarray:
    """Saliency drawn in ``colour`` over a dimmed frame (the paper's green), uint8 [H, W, 3]."""
    from pipelines.analysis.geometry import upsample
    s = upsample(np.asarray(sal, np.float32), frame.shape[:2])
    s = np.clip(gain * s / max(float(s.max()), 1e-20), 0.0, 1.0)[..., None]
    base = 0.6 * np.asarray(frame, np.float32)
    out = base * (1.0 - s) + np.asarray(colour, np.float32) * s
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
