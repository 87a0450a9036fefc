"""Hand-built steppers with known answers, for the analysis tests.

Each implements the stepper interface of ``pipelines/analysis/stepper.py`` in numpy, so what
the analyses should find is known exactly:

- :class:`RegionPolicy`: logits and value depend only on the pixels of one box; head 0
  attends exactly the box's cells, head 1 a far corner; a recurrent step counter feeds the
  logits so the warm-up state matters.
- :class:`BrightAttention`: every head attends bright cells (softmax of β · cell brightness);
  it picks action 0 when its attention is centred in the lower half of the frame, else 1.
"""
from __future__ import annotations

import numpy as np

from pipelines.analysis.geometry import cell_of_pixel


def cell_means(frames: np.ndarray, feature_hw) -> np.ndarray:
    """Mean pixel brightness of every cell: ``[B, H, W, 3]`` → ``[B, h, w]`` in [0, 1]."""
    b, H, W, _ = frames.shape
    iy, jx = cell_of_pixel(np.arange(H), np.arange(W), (H, W), feature_hw)
    total = np.zeros((b,) + tuple(feature_hw))
    count = np.zeros(feature_hw)
    grey = frames.astype(np.float64).mean(-1) / 255.0
    np.add.at(total, (slice(None), iy[:, None], jx[None, :]), grey)
    np.add.at(count, (iy[:, None], jx[None, :]), 1.0)
    return total / count


class RegionPolicy:
    variant = "region-policy"

    def __init__(self, frame_hw=(64, 64), box=(24, 24, 40, 40), feature_hw=(8, 8)):
        self.observation_shape = tuple(frame_hw) + (3,)
        self.box = box
        self.num_actions = 3
        self.num_heads = 2
        self.feature_shape = tuple(feature_hw)
        att = np.zeros((2,) + self.feature_shape, np.float32)
        i0, j0 = cell_of_pixel(box[0], box[1], frame_hw, feature_hw)
        i1, j1 = cell_of_pixel(box[2] - 1, box[3] - 1, frame_hw, feature_hw)
        att[0, i0:i1 + 1, j0:j1 + 1] = 1.0
        att[1, -1, -1] = 1.0
        self.attention = att / att.sum((1, 2), keepdims=True)

    def initial_state(self, batch_size):
        return {"count": np.zeros((batch_size, 1), np.float32)}

    def step(self, observation, prev_action, prev_reward, state, first=None):
        obs = np.asarray(observation, np.float64) / 255.0
        b = len(obs)
        keep = 1.0 if first is None else 1.0 - np.asarray(first, np.float64)[:, None]
        count = np.asarray(state["count"], np.float64) * keep
        y0, x0, y1, x1 = self.box
        region = obs[:, y0:y1, x0:x1]
        m = region.mean((1, 2))                                              # [B, 3]
        texture = (region[:, 1:] - region[:, :-1]).__abs__().mean((1, 2, 3))   # sensitive to blur
        logits = np.stack([8 * m[:, 0] + 0.1 * count[:, 0], 8 * m[:, 1] - 30 * texture, 8 * m[:, 2]], 1)
        value = 10 * texture + 0.01 * count[:, 0]
        att = np.broadcast_to(self.attention, (b,) + self.attention.shape)
        out = {"logits": logits.astype(np.float32), "value": value.astype(np.float32),
               "attention": att.copy(), "what": np.log(att + 1e-6), "where": np.zeros_like(att)}
        return out, {"count": (count + 1).astype(np.float32)}


class BrightAttention:
    variant = "bright-attention"

    def __init__(self, frame_hw=(64, 64), feature_hw=(8, 8), num_heads=2, beta=40.0, num_actions=2):
        self.observation_shape = tuple(frame_hw) + (3,)
        self.num_actions = num_actions
        self.num_heads = num_heads
        self.feature_shape = tuple(feature_hw)
        self.beta = beta

    def initial_state(self, batch_size):
        return {}

    def step(self, observation, prev_action, prev_reward, state, first=None):
        logit_maps = self.beta * cell_means(np.asarray(observation), self.feature_shape)      # [B, h, w]
        flat = logit_maps.reshape(len(logit_maps), -1)
        att = np.exp(flat - flat.max(1, keepdims=True))
        att = (att / att.sum(1, keepdims=True)).reshape(logit_maps.shape)
        att = np.repeat(att[:, None], self.num_heads, axis=1).astype(np.float32)
        rows = np.arange(self.feature_shape[0], dtype=np.float64)
        centroid = (att[:, 0].sum(-1) * rows).sum(-1)                       # attended row, in cells
        low = centroid >= self.feature_shape[0] / 2.0
        logits = np.zeros((len(att), self.num_actions), np.float32)
        logits[:, 0] = np.where(low, 5.0, 0.0)
        logits[:, 1] = np.where(low, 0.0, 5.0)
        what = np.repeat(logit_maps[:, None], self.num_heads, axis=1).astype(np.float32)
        return ({"logits": logits, "value": att[:, 0].max((1, 2)), "attention": att, "what": what,
                 "where": np.zeros_like(what)}, {})
