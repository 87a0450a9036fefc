"""What vs where (SPEC §3, paper Appendix A.2).

Every attention logit map is the sum of a content part, ``what = q_K · K``, and a location
part, ``where = q_S · S``. The contrast ``D = clip(what − where, −log 10, +log 10)``, weighted
by attention, ``C = D · A``, is drawn blue (where, −log 10) → white (0) → red (what, +log 10).

``what_share`` is a sign-free companion: the fraction ``|what| / (|what| + |where|)`` of the
logit's magnitude that comes from the content part (1 = all what, 0 = all where).
"""
from __future__ import annotations

import numpy as np

from pipelines.analysis.geometry import upsample

LOG10 = float(np.log(10.0))


def what_where_contrast(what: np.ndarray, where: np.ndarray, attention: np.ndarray):
    """``(D, C)`` with ``D = clip(what − where, ±log 10)`` and ``C = D · attention``; any shape."""
    what, where, attention = (np.asarray(a, np.float32) for a in (what, where, attention))
    if not (what.shape == where.shape == attention.shape):
        raise ValueError(f"what {what.shape}, where {where.shape} and attention {attention.shape} "
                         "must have the same shape [..., h, w]")
    d = np.clip(what - where, -LOG10, LOG10)
    return d, d * attention


def what_share(what: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``|what| / (|what| + |where|)`` elementwise, ½ where both are 0."""
    a, b = np.abs(np.asarray(what, np.float64)), np.abs(np.asarray(where, np.float64))
    total = a + b
    return np.where(total > 0, a / np.where(total > 0, total, 1.0), 0.5).astype(np.float32)


def blue_white_red(v: np.ndarray) -> np.ndarray:
    """``v`` in [−1, 1] → uint8 RGB ``[..., 3]``: −1 blue, 0 white, +1 red."""
    v = np.clip(np.asarray(v, np.float32), -1.0, 1.0)[..., None]
    white = np.array([255, 255, 255], np.float32)
    red = np.array([215, 25, 28], np.float32)
    blue = np.array([43, 87, 215], np.float32)
    rgb = np.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return np.rint(rgb).astype(np.uint8)


def contrast_image(c: np.ndarray, attention: np.ndarray, frame_hw) -> np.ndarray:
    """``C [..., h, w]`` → uint8 ``[..., H, W, 3]`` coloured blue–white–red.

    Scaled per map by ``log 10 · max A`` so the most attended cell reaches the colour of its D;
    cells with little attention fade to white.
    """
    a_max = np.asarray(attention, np.float32).max(axis=(-2, -1), keepdims=True)
    v = np.asarray(c, np.float32) / (LOG10 * np.maximum(a_max, 1e-12))
    return blue_white_red(upsample(v, frame_hw))


def what_where_frames(frame: np.ndarray, what, where, attention, context: float = 0.3) -> np.ndarray:
    """One what/where picture per head for one frame: uint8 ``[N, H, W, 3]``.

    The coloured contrast is blended with the greyscale frame (weight ``context``) for orientation.
    """
    _, c = what_where_contrast(what, where, attention)
    colour = contrast_image(c, attention, frame.shape[:2]).astype(np.float32)
    grey = np.asarray(frame, np.float32).mean(-1, keepdims=True)
    out = (1.0 - context) * colour + context * grey[None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
