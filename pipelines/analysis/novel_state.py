"""Novel-state probe (SPEC §3, paper Section 4.2).

A sprite is spliced into the observations — pixels only, the emulator never sees it — from
step ``t0`` for ``duration`` steps at a chosen place. Against a control run without the
sprite (same seed, same start, so the two runs agree before ``t0``) we record, per head, the
attention mass on the sprite's region and the actions taken before, during and after.

On a run: :func:`plan_probe` settles the sprite, time and place (checked before any long work),
:func:`probe_in_environment` runs the probe, :func:`write_probe` writes and describes it.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from pipelines.analysis.geometry import box_cell_fraction
from pipelines.analysis.overlay import overlay_panels
from pipelines.analysis.report import Section, Written
from pipelines.analysis.video import write_mp4

Box = Tuple[int, int, int, int]   # (y0, x0, y1, x1), end exclusive


def default_sprite(height: int = 10, width: int = 8) -> np.ndarray:
    """A bright ghost-like sprite: uint8 RGBA ``[height, width, 4]`` (alpha 0 or 255)."""
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    body = ((yy - cy) / (height / 2.0)) ** 2 + ((xx - cx) / (width / 2.0)) ** 2 <= 1.0
    body |= yy >= height * 0.55            # flat skirt like a ghost
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = (255, 64, 255)
    eyes = (yy == int(height * 0.35)) & ((xx == int(width * 0.3)) | (xx == int(width * 0.7)))
    rgba[eyes, :3] = 255
    rgba[..., 3] = np.where(body, 255, 0)
    return rgba


def load_sprite(path: str) -> np.ndarray:
    """A PNG (or any PIL image) as uint8 RGBA ``[h, w, 4]``."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA"), np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"sprite image {path!r} does not exist; expected a PNG file") from None


def as_rgba(sprite: np.ndarray) -> np.ndarray:
    sprite = np.asarray(sprite, np.uint8)
    if sprite.ndim != 3 or sprite.shape[-1] not in (3, 4):
        raise ValueError(f"sprite must be uint8 [h, w, 3] or [h, w, 4] (RGBA), got shape {sprite.shape}")
    if sprite.shape[-1] == 3:
        sprite = np.concatenate([sprite, np.full(sprite.shape[:2] + (1,), 255, np.uint8)], -1)
    return sprite


def resolve_position(sprite: np.ndarray, position, frame_hw) -> Tuple[int, int]:
    """``position`` as ``(y, x)``; an empty position centres the sprite in the frame."""
    if len(position) == 0:
        return (int(frame_hw[0]) - sprite.shape[0]) // 2, (int(frame_hw[1]) - sprite.shape[1]) // 2
    return int(position[0]), int(position[1])


def sprite_box(sprite: np.ndarray, position, frame_hw) -> Box:
    """The part of the frame the sprite covers at top-left ``position = (y, x)``, clipped."""
    y, x = (int(v) for v in position)
    h, w = sprite.shape[:2]
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, frame_hw[0]), min(x + w, frame_hw[1])
    if y0 >= y1 or x0 >= x1:
        raise ValueError(f"sprite of size {h}x{w} at (y, x) = {(y, x)} lies outside the "
                         f"{frame_hw[0]}x{frame_hw[1]} frame")
    return y0, x0, y1, x1


def splice(frame: np.ndarray, sprite: np.ndarray, position) -> np.ndarray:
    """``frame [H, W, 3]`` with the RGBA ``sprite`` alpha-composited at top-left ``(y, x)``."""
    sprite = as_rgba(sprite)
    out = np.array(frame, np.uint8, copy=True)
    y0, x0, y1, x1 = sprite_box(sprite, position, out.shape[:2])
    sy, sx = y0 - int(position[0]), x0 - int(position[1])
    patch = sprite[sy:sy + (y1 - y0), sx:sx + (x1 - x0)].astype(np.float32)
    alpha = patch[..., 3:] / 255.0
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.rint(alpha * patch[..., :3] + (1 - alpha) * region).astype(np.uint8)
    return out


def splice_transform(sprite: np.ndarray, position, t0: int, duration: int):
    """A rollout ``transform(t, frame)`` showing the sprite for ``t0 <= t < t0 + duration``."""
    def transform(t: int, frame: np.ndarray) -> np.ndarray:
        return splice(frame, sprite, position) if t0 <= t < t0 + duration else frame
    return transform


def region_mass(attention: np.ndarray, box: Box, frame_hw) -> np.ndarray:
    """Attention mass on the pixel ``box``: ``attention [..., h, w]`` → ``[...]``."""
    frac = box_cell_fraction(box, frame_hw, np.shape(attention)[-2:])
    return (np.asarray(attention, np.float32) * frac).sum(axis=(-2, -1))


@dataclasses.dataclass
class ProbeResult:
    t0: int
    duration: int
    box: Box
    mass_probe: np.ndarray        # [T, N] attention mass on the box with the sprite
    mass_control: np.ndarray      # [T, N] the same region in the control run
    actions_probe: np.ndarray     # [T]
    actions_control: np.ndarray   # [T]
    box_area_fraction: float      # share of the frame the box covers (uniform attention's mass)

    def windows(self) -> Dict[str, slice]:
        t1 = min(self.t0 + self.duration, len(self.actions_probe))
        return {"before": slice(0, self.t0), "during": slice(self.t0, t1), "after": slice(t1, None)}

    def summary(self) -> dict:
        """Mean mass per head and action agreement with the control, before/during/after."""
        out = {"t0": self.t0, "duration": self.duration, "box": list(self.box),
               "uniform_mass": self.box_area_fraction}
        for name, sl in self.windows().items():
            n = len(self.actions_probe[sl])
            out[name] = {
                "steps": n,
                "mass_probe": self.mass_probe[sl].mean(0).tolist() if n else None,
                "mass_control": self.mass_control[sl].mean(0).tolist() if n else None,
                "actions_probe": self.actions_probe[sl].tolist(),
                "actions_control": self.actions_control[sl].tolist(),
                "action_agreement": float(np.mean(self.actions_probe[sl] == self.actions_control[sl])) if n else None,
            }
        during = out["during"]
        if during["steps"]:
            out["detected_by_head"] = [bool(p > max(c, self.box_area_fraction) * 2.0)
                                       for p, c in zip(during["mass_probe"], during["mass_control"])]
        return out


def compare_runs(control, probe, box: Box, t0: int, duration: int) -> ProbeResult:
    """A :class:`ProbeResult` from two rollouts (pipelines.analysis.rollout.Rollout) of equal start."""
    if control.attention is None or probe.attention is None:
        raise ValueError("the novel-state probe needs attention maps; this model has no attention")
    t = min(len(control), len(probe))
    hw = probe.frames.shape[1:3]
    area = (box[2] - box[0]) * (box[3] - box[1]) / float(hw[0] * hw[1])
    return ProbeResult(t0, duration, tuple(int(b) for b in box),
                       region_mass(probe.attention[:t], box, hw), region_mass(control.attention[:t], box, hw),
                       probe.actions[:t], control.actions[:t], float(area))


def probe_on_frames(stepper, frames, sprite, position, t0: int, duration: int, actions=None, rewards=None,
                    firsts=None, control=None) -> ProbeResult:
    """Open-loop probe on recorded ``frames [T, H, W, 3]`` (no environment needed)."""
    from pipelines.analysis.rollout import replay
    sprite = as_rgba(sprite)
    box = sprite_box(sprite, position, np.shape(frames)[1:3])
    if control is None:
        control = replay(stepper, frames, actions, rewards, firsts)
    probe = replay(stepper, frames, actions, rewards, firsts, transform=splice_transform(sprite, position, t0, duration))
    return compare_runs(control, probe, box, t0, duration)


def probe_in_environment(stepper, make_env, steps: int, sprite, position, t0: int, duration: int,
                         policy: str = "sample", seed: int = 0, control=None, progress: bool = True):
    """Closed-loop probe: the agent acts on the spliced frames. ``make_env()`` must give a freshly
    seeded environment each call, so that control and probe agree before ``t0``.

    Returns ``(ProbeResult, probe_rollout)``; ``control`` may be a rollout already made with the
    same ``make_env``, policy and seed (its first ``steps`` steps are used).
    """
    from pipelines.analysis.rollout import run_agent
    sprite = as_rgba(sprite)
    if not 0 <= t0 < steps:
        raise ValueError(f"probe time t0={t0} must be within the {steps} analysed steps")
    if control is None:
        env = make_env()
        control = run_agent(stepper, env, steps, policy, seed, progress=progress, label="probe control")
        env.close()
    box = sprite_box(sprite, position, control.frames.shape[1:3])
    env = make_env()
    probe = run_agent(stepper, env, steps, policy, seed, transform=splice_transform(sprite, position, t0, duration),
                      progress=progress, label="novel-state probe")
    env.close()
    return compare_runs(control, probe, box, t0, duration), probe


def plot_probe(result: ProbeResult, path: str, action_name=str) -> str:
    """Mass on the sprite's region per head (probe vs control) and the actions, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = np.arange(len(result.actions_probe))
    n = result.mass_probe.shape[1]
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for head in range(n):
        line, = axes[0].plot(t, result.mass_probe[:, head], label=f"head {head} (sprite)")
        axes[0].plot(t, result.mass_control[:, head], ls="--", color=line.get_color(), alpha=0.6,
                     label=f"head {head} (control)")
    axes[0].axhline(result.box_area_fraction, color="grey", lw=0.8, ls=":", label="uniform attention")
    for ax in axes:
        ax.axvspan(result.t0, result.t0 + result.duration, color="orange", alpha=0.15)
    axes[0].set_ylabel("attention mass on sprite")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].step(t, result.actions_control, where="mid", label="control", alpha=0.7)
    axes[1].step(t, result.actions_probe, where="mid", label="with sprite")
    used = sorted(set(result.actions_probe.tolist()) | set(result.actions_control.tolist()))
    axes[1].set_yticks(used)
    axes[1].set_yticklabels([action_name(a) for a in used], fontsize=7)
    axes[1].set_xlabel("step")
    axes[1].legend(fontsize=7)
    fig.suptitle("Novel-state probe: sprite shown in the shaded steps (pixels only)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- the probe of one analysis run
VIDEO_MARGIN = 10      # steps the probe's video shows before and after the sprite


@dataclasses.dataclass
class ProbePlan:
    sprite: np.ndarray             # uint8 RGBA [h, w, 4]
    t0: int                        # first step showing the sprite
    position: Tuple[int, int]      # (y, x) of its top-left corner


def plan_probe(sprite: Optional[np.ndarray], cfg, steps: int, frame_hw) -> ProbePlan:
    """The probe of a run of ``steps`` steps: ``sprite`` (default: :func:`default_sprite`), the
    first step ``cfg.probe_time`` (default: mid-run) and ``cfg.probe_position`` (default: centred).
    ValueError if the time lies outside the run or the sprite outside the frame."""
    sprite = default_sprite() if sprite is None else as_rgba(sprite)
    t0 = cfg.probe_time if cfg.probe_time >= 0 else steps // 2
    position = resolve_position(sprite, cfg.probe_position, frame_hw)
    if not 0 <= t0 < steps:
        raise ValueError(f"probe_time={t0} must be within the {steps} analysed steps")
    sprite_box(sprite, position, frame_hw)
    return ProbePlan(sprite, t0, position)


def _window_rows(s: dict) -> Tuple[List[list], List[list]]:
    """The report's tables of a probe summary: per head, then per window."""
    def mean_or_nan(window, key, n):
        return s[window][key][n] if s[window]["steps"] else float("nan")
    heads = [[n, mean_or_nan("before", "mass_probe", n), s["during"]["mass_probe"][n], s["during"]["mass_control"][n],
              mean_or_nan("after", "mass_probe", n), "yes" if s["detected_by_head"][n] else "no"]
             for n in range(len(s["during"]["mass_probe"]))]
    windows = [[w, s[w]["steps"], s[w]["action_agreement"] if s[w]["steps"] else float("nan")]
               for w in ("before", "during", "after")]
    return heads, windows


def write_probe(result: ProbeResult, probe_run, action_name, out_dir: str, cfg) -> Written:
    """The probe's plot, a video of the probe run around the sprite, its summary and report section."""
    png = plot_probe(result, os.path.join(out_dir, "novel_state.png"), action_name)
    window = range(max(0, result.t0 - VIDEO_MARGIN), min(len(probe_run), result.t0 + result.duration + VIDEO_MARGIN))
    mp4 = write_mp4(os.path.join(out_dir, "novel_state.mp4"),
                    overlay_panels(probe_run, cfg.overlay_alpha, cfg.video_scale, window), cfg.video_fps)
    summary = result.summary()
    heads, windows = _window_rows(summary)
    section = Section().heading("Novel-state probe")
    section.text(f"A sprite is spliced into the pixels at steps {result.t0}–{result.t0 + result.duration - 1}, "
                 f"box (y0, x0, y1, x1) = {result.box}; the control run is the same seed without it.")
    section.media(png).media(mp4, "probe run around the sprite")
    section.table(["head", "mass before", "mass during", "control during", "mass after", "detected"], heads)
    section.table(["window", "steps", "actions agree with control"], windows)
    return Written(summary={"novel_state": summary}, files={"novel_state": png, "novel_state_video": mp4},
                   section=section)


def summary_rows(summary: dict) -> List[list]:
    """The report's summary-table rows of the probe, if it ran: detection per head, actions."""
    if "novel_state" not in summary:
        return []
    probe = summary["novel_state"]
    return [["novel state: sprite detected per head",
             ", ".join("yes" if d else "no" for d in probe.get("detected_by_head", []))],
            ["novel state: actions agree with control during / after",
             f"{probe['during']['action_agreement']}, {probe['after']['action_agreement']}"]]
