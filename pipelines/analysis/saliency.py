"""Perturbation saliency (Greydanus et al. 2017; SPEC §3).

The frame X is perturbed at (i, j) by blending in a Gaussian-blurred copy under a Gaussian
mask centred there: ``X′ = X·(1 − M) + blur(X)·M`` (mask σ = 5 px, truncated at 4σ as
``scipy.ndimage.gaussian_filter`` does; blur σ = 3 px), rounded back to uint8. Then

    S_π(i, j) = ½ ‖softmax(π(X′)) − softmax(π(X))‖²      S_V(i, j) = ½ (V(X′) − V(X))²

on a stride grid. The perturbed frames go through the model in batches: ``evaluate`` maps
uint8 ``[B, H, W, 3]`` to ``(logits [B, A], values [B])``; :func:`recurrent_evaluator`
builds one from a stepper and the recurrent state reached after the warm-up, replicated
B times, so every perturbed frame is judged from the same state.

On a rollout: :func:`saliency_on_frames` computes the maps of chosen frames for the agent and
a baseline (replayed open loop on the same frames) and how well the agent's attention predicts
them (:mod:`.faithfulness`); :func:`write_saliency` writes and describes them.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from pipelines.analysis import faithfulness
from pipelines.analysis.geometry import upsample
from pipelines.analysis.overlay import overlay_heads
from pipelines.analysis.progress import Progress
from pipelines.analysis.report import Section, Written
from pipelines.analysis.rollout import Rollout, replay, softmax
from pipelines.analysis.video import labelled_row, write_png

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
    s = upsample(np.asarray(sal, np.float32), frame.shape[:2])
    s = np.clip(gain * s / max(float(s.max()), 1e-20), 0.0, 1.0)[..., None]
    base = 0.6 * np.asarray(frame, np.float32)
    out = base * (1.0 - s) + np.asarray(colour, np.float32) * s
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- the frames of one rollout
@dataclasses.dataclass
class SaliencyFrame:
    """Frame ``t`` of a rollout: the agent's saliency (and the ``seconds`` it took), the baseline's
    on the same frame (None without a baseline) and, per kind ("policy", "value"), how well each
    attention head predicts the agent's (None without attention)."""
    t: int
    agent: Saliency
    seconds: float
    baseline: Optional[Saliency] = None
    faithfulness: Optional[Dict[str, dict]] = None


def saliency_frame_indices(cfg, steps: int) -> List[int]:
    """The frames to perturb: ``cfg.saliency_frames`` or the first one after the warm-up.

    Each must leave at least ``saliency_warmup`` unperturbed frames before it; [] if the run is
    too short for the default (ValueError if explicitly asked frames do not fit).
    """
    if not cfg.saliency_frames:
        return [cfg.saliency_warmup] if steps > cfg.saliency_warmup else []
    bad = [t for t in cfg.saliency_frames if not cfg.saliency_warmup <= t < steps]
    if bad:
        raise ValueError(f"saliency frames {bad} must lie in [saliency_warmup={cfg.saliency_warmup}, "
                         f"steps={steps}): each needs > {cfg.saliency_warmup - 1} unperturbed frames before it")
    return sorted(set(int(t) for t in cfg.saliency_frames))


def _maps_with_progress(stepper, context, frame, cfg, label, enabled: bool = True) -> Saliency:
    bar = Progress(label, 0, unit="perturbed frames", enabled=enabled)
    def progress(done, total):
        bar.total = total
        bar.update(done)
    result = saliency_maps(recurrent_evaluator(stepper, context), frame, cfg.saliency_stride,
                           cfg.saliency_mask_sigma, cfg.saliency_blur_sigma, cfg.saliency_batch, progress)
    bar.close()
    return result


def _replay_baseline(baseline, stepper, rollout: Rollout, times: List[int], progress: bool) -> Rollout:
    """The baseline run open loop on the rollout's frames up to the last of ``times``."""
    if tuple(baseline.observation_shape) != tuple(stepper.observation_shape):
        raise ValueError(f"baseline model expects observations {tuple(baseline.observation_shape)} but "
                         f"the agent's are {tuple(stepper.observation_shape)}")
    upto = max(times) + 1
    return replay(baseline, rollout.frames[:upto], rollout.actions[:upto], rollout.rewards[:upto],
                  rollout.firsts[:upto], keep_contexts=times, progress=progress, label="baseline replay")


def saliency_on_frames(stepper, rollout: Rollout, times: List[int], cfg, baseline=None,
                       progress: bool = True) -> List[SaliencyFrame]:
    """The saliency of each frame of ``times`` (recorded in ``rollout.contexts``), for the agent and
    the optional ``baseline`` stepper, with the attention's faithfulness when the rollout has attention."""
    base_run = _replay_baseline(baseline, stepper, rollout, times, progress) if baseline is not None else None
    out = []
    for t in times:
        frame = rollout.frames[t]
        start = time.perf_counter()
        agent = _maps_with_progress(stepper, rollout.contexts[t], frame, cfg, f"saliency t={t}", progress)
        result = SaliencyFrame(t, agent, time.perf_counter() - start)
        if rollout.attention is not None:
            result.faithfulness = faithfulness.by_kind(rollout.attention[t], agent, frame.shape[:2],
                                                       cfg.top_k_fraction)
        if base_run is not None:
            result.baseline = _maps_with_progress(baseline, base_run.contexts[t], frame, cfg,
                                                  f"baseline saliency t={t}", progress)
        out.append(result)
    return out


def _entry(r: SaliencyFrame) -> dict:
    """The summary's numbers of one frame: peaks, noise floors, faithfulness."""
    entry = {"policy_max": float(r.agent.policy.max()), "value_max": float(r.agent.value.max()),
             "policy_noise_floor": r.agent.noise_policy, "value_noise_floor": r.agent.noise_value}
    for kind, scores in (r.faithfulness or {}).items():
        entry[f"faithfulness_{kind}"] = scores
    if r.baseline is not None:
        entry.update(baseline_policy_max=float(r.baseline.policy.max()),
                     baseline_value_max=float(r.baseline.value.max()))
    return entry


def _arrays(r: SaliencyFrame) -> Dict[str, np.ndarray]:
    arrays = {"agent_policy": r.agent.policy, "agent_value": r.agent.value, "ys": r.agent.ys, "xs": r.agent.xs}
    if r.baseline is not None:
        arrays.update(baseline_policy=r.baseline.policy, baseline_value=r.baseline.value)
    return arrays


def _picture(r: SaliencyFrame, rollout: Rollout, alpha: float) -> np.ndarray:
    """The frame, the agent's maps, each head's attention, the baseline's maps: one labelled row."""
    frame = rollout.frames[r.t]
    images = [frame, saliency_image(frame, r.agent.policy), saliency_image(frame, r.agent.value)]
    labels = ["frame", "agent policy", "agent value"]
    if rollout.attention is not None:
        images += list(overlay_heads(frame, rollout.attention[r.t], alpha))
        labels += [f"attention head {n}" for n in range(rollout.attention.shape[1])]
    if r.baseline is not None:
        images += [saliency_image(frame, r.baseline.policy), saliency_image(frame, r.baseline.value)]
        labels += ["baseline policy", "baseline value"]
    return labelled_row(images, labels)


def write_saliency(frames: List[SaliencyFrame], rollout: Rollout, out_dir: str, cfg) -> Written:
    """Per frame ``saliency_t<T>.npz`` (the maps) and ``.png`` (:func:`_picture`); the summary's
    entries and timings; the report's section, with the faithfulness table."""
    section = Section().heading("Saliency (Greydanus et al.)")
    section.text(f"Perturbation saliency after ≥ {cfg.saliency_warmup} unperturbed frames, stride "
                 f"{cfg.saliency_stride}, mask σ {cfg.saliency_mask_sigma}, blur σ {cfg.saliency_blur_sigma}; "
                 "green = salient. The baseline sees the same frames (open loop).")
    for r in frames:
        np.savez_compressed(os.path.join(out_dir, f"saliency_t{r.t}.npz"), **_arrays(r))
        png = write_png(os.path.join(out_dir, f"saliency_t{r.t}.png"), _picture(r, rollout, cfg.overlay_alpha))
        section.media(png, f"frame {r.t}: saliency (normalised per map) and attention")
    section.add(faithfulness.section({r.t: r.faithfulness for r in frames if r.faithfulness}, cfg.top_k_fraction))
    return Written(summary={"saliency": {str(r.t): _entry(r) for r in frames}},
                   timings={"saliency_s_per_frame": [r.seconds for r in frames]}, section=section)
