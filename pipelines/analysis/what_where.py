"""What vs where (SPEC §3, paper Appendix A.2).

Every attention logit map is the sum of a content part, ``what = q_K · K``, and a location
part, ``where = q_S · S``. The contrast ``D = clip(what − where, −log 10, +log 10)``, weighted
by attention, ``C = D · A``, is drawn blue (where, −log 10) → white (0) → red (what, +log 10).

``what_share`` is a sign-free companion: the fraction ``|what| / (|what| + |where|)`` of the
logit's magnitude that comes from the content part (1 = all what, 0 = all where).

On a rollout: :func:`what_where_panels` makes the video frames, :func:`attended_what_share` the
per-head share weighted by attention, :func:`write_what_where` writes and describes both.
"""
from __future__ import annotations

from typing import List

import numpy as np

from pipelines.analysis.geometry import upsample
from pipelines.analysis.report import Section, Written
from pipelines.analysis.video import rollout_panels, write_video_pair

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


def what_where_panels(rollout, scale: int, progress: bool = False) -> np.ndarray:
    """Video frames: caption, the frame, one what/where row per head (red what, blue where)."""
    labels = [f"head {n}: red what / blue where" for n in range(rollout.attention.shape[1])]
    return rollout_panels(rollout, lambda t: what_where_frames(rollout.frames[t], rollout.what[t], rollout.where[t],
                                                               rollout.attention[t]),
                          labels, scale, None, "what/where video", progress)


def attended_what_share(rollout) -> List[float]:
    """Per head, :func:`what_share` averaged over the run's cells weighted by attention."""
    share = what_share(rollout.what, rollout.where)
    return [float((share[:, n] * rollout.attention[:, n]).sum() / rollout.attention[:, n].sum())
            for n in range(rollout.attention.shape[1])]


def write_what_where(panels: np.ndarray, shares: List[float], out_dir: str, cfg) -> Written:
    """The what/where video (MP4 + GIF), the attended shares for the summary, the report's section."""
    videos = write_video_pair(out_dir, "what_where", panels, cfg.video_fps, cfg.gif_max_frames)
    section = Section().heading("What vs where")
    section.text("D = clip(what − where, ±log 10) weighted by attention: red = content (what), "
                 "blue = location (where), white = balanced or unattended.")
    section.video_pair(videos, cfg.report_gif_max_mb)
    section.table(["head", "attention-weighted |what| share"], [[n, s] for n, s in enumerate(shares)])
    return Written(summary={"what_share_attended": shares}, files={"what_where": videos}, section=section)


def summary_rows(summary: dict) -> List[list]:
    """The report's summary-table row of the attended shares, if they were measured."""
    if "what_share_attended" not in summary:
        return []
    return [["attention-weighted |what| share per head",
             ", ".join(f"{v:.3f}" for v in summary["what_share_attended"])]]
