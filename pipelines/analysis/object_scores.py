"""Object-level attention scores: does a head look at the ball, the player, the enemies?

Object boxes come from the emulator's RAM through OCAtari (Delfosse et al., "OCAtari:
Object-Centric Atari 2600 Reinforcement Learning Environments", RAM mode; the optional extra
``s3ta-tf[objects]``), never from the pixels the agent sees. For one object category ``k``
(every instance of it: Breakout's 108 blocks are one category) at step ``t``:

    M_t  [h, w] bool   the attention cells the boxes touch (a box of any size marks at least the
                       cell it lies in: the box "dilated to at least one cell")
    D_t  [h, w] bool   M_t grown by ``radius`` cells (Chebyshev distance ≤ radius)

and for a head's map ``a_t`` [h, w] (attention, or any map that sums to 1 over the cells), over
the steps where the object is on screen:

    mass  = mean_t Σ a_t[M_t]            the attention mass on the object
    area  = mean_t |M_t| / (h·w)         what an even spread puts there
    lift  = mass / area                  1 = no better than spreading evenly
    hit   = mean_t D_t[argmax a_t]       the head's most-attended cell within ``radius`` of it
    chance = mean_t D_t[c̄]               a head fixed on c̄, the cell of the object's mean centre
    best_fixed = max_c mean_t D_t[c]     the best any frame-independent head could score

A head that tracks the object scores hit ≫ chance and lift ≫ 1; a head parked where the object
usually is scores hit ≈ chance. A head may follow an object with a delay (its keys mark where the
ball was a few steps ago) or ahead of it: :func:`object_scores_by_lag` scores ``a_t`` against the
object at step ``t + k`` (within an episode) for a range of lags ``k``; ``k < 0``: the head looks
where the object was ``|k|`` steps before (it trails), ``k > 0``: where it will be (it leads). The same scores apply to the "what" and "where" logit maps (as
spatial softmaxes) and to saliency maps pooled onto the grid.

:func:`object_scores` and :func:`entropy_by_height` are functions on arrays; :class:`RamObjects`
reads the boxes from a running game; :func:`track_objects` turns recorded boxes into
:class:`ObjectTrack` arrays. On a rollout: :func:`analyse_rollout` scores it,
:func:`write_object_scores` writes and describes the scores.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pipelines.analysis.report import Section, Written

Box = Tuple[float, float, float, float]          # (x, y, w, h) in screen pixels, as OCAtari gives
INSTALL_HINT = "pip install 's3ta-tf[objects]' (OCAtari)"


class ObjectsUnavailable(Exception):
    """Object positions cannot be read for this environment (the message says why)."""


# ---------------------------------------------------------------- reading objects from RAM
def ocatari_game(env_id: str) -> str:
    """OCAtari's module name of an ALE id (``ALE/SpaceInvaders-v5`` → ``spaceinvaders``)."""
    name = env_id.split("/", 1)[-1]
    name = name.split("-v", 1)[0].split("NoFrameskip", 1)[0]
    return name.lower()


def _ocatari_ram():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")   # OCAtari imports pygame
    try:
        return importlib.import_module("ocatari.ram.extract_ram_info")
    except ImportError as e:
        raise ObjectsUnavailable(f"object scores need OCAtari, which is not installed ({e}): "
                                 f"{INSTALL_HINT}") from None


def known_games() -> List[str]:
    """OCAtari's games with a RAM object map."""
    _ocatari_ram()
    import ocatari.ram as ram
    return sorted(m for m in ram.__all__ if not m.startswith("_") and m not in
                  ("game_objects", "extract_ram_info", "utils"))


class RamObjects:
    """The objects of a running ALE game, read from its RAM after every frame the agent sees.

    ``env``: a :class:`agents.environments.GymnasiumEnvironment` of an ALE game. ``read(first)``
    returns ``{category: [(x, y, w, h), ...]}`` in screen pixels (210×160), for the screen the
    agent was just shown (its frame is the maximum of the last two emulator frames; the RAM is
    the last one's). Raises :class:`ObjectsUnavailable` for a game OCAtari does not know.
    """

    def __init__(self, env):
        name = getattr(env, "name", "") or ""
        from agents.environments import is_ale_id
        if not is_ale_id(name):
            raise ObjectsUnavailable(f"object scores need an ALE game ('ALE/<Game>-v5'); '{name}' is not one")
        self._info = _ocatari_ram()
        self.game = ocatari_game(name)
        games = known_games()
        if self.game not in games:
            raise ObjectsUnavailable(f"OCAtari has no RAM object map for '{name}' (module '{self.game}'); "
                                     f"it knows {len(games)} games: {', '.join(games)}")
        module = importlib.import_module(f"ocatari.ram.{self.game}")
        self.categories: List[str] = list(module.MAX_NB_OBJECTS)
        self.screen_hw: Tuple[int, int] = tuple(env.native_observation_shape[:2])
        self._ale = env.gym_env.unwrapped.ale
        self._objects = None

    def read(self, first: bool) -> Dict[str, List[Box]]:
        if first or self._objects is None:
            self._objects = self._info.init_objects(self.game, False)
        self._info.detect_objects_ram(self._objects, self._ale.getRAM(), self.game, False)
        out: Dict[str, List[Box]] = {c: [] for c in self.categories}
        for obj in self._objects:
            if obj and obj.category in out and obj.w > 0 and obj.h > 0:
                out[obj.category].append(tuple(float(v) for v in obj.xywh))
        return out


def object_reader(env, cfg, has_attention: bool) -> Tuple[Optional[RamObjects], Optional[str]]:
    """``(reader, None)`` for the object scores of ``env``, ``(None, None)`` if ``cfg`` turns them
    off, ``(None, why)`` if they cannot be had: no attention maps, not an ALE game OCAtari knows,
    or OCAtari not installed."""
    if not cfg.object_scores:
        return None, None
    if not has_attention:
        return None, "the model has no attention maps"
    try:
        return RamObjects(env), None
    except ObjectsUnavailable as e:
        return None, str(e)


# ---------------------------------------------------------------- boxes -> grid arrays
@dataclasses.dataclass
class ObjectTrack:
    """One object category over a run of T steps on an h×w grid."""
    category: str
    masks: np.ndarray        # bool [T, h, w]: cells its boxes touch
    present: np.ndarray      # bool [T]: on screen at step t
    centres: np.ndarray      # float [T, 2]: (row, col) of its boxes' mean centre in cell units; NaN if absent
    heights: np.ndarray      # float [T]: its boxes' mean centre y in screen pixels; NaN if absent


def box_cells(box: Box, screen_hw, grid_hw) -> Tuple[slice, slice]:
    """Rows and columns of the grid cells a screen box (x, y, w, h) touches (at least one each)."""
    (H, W), (h, w) = screen_hw, grid_hw
    x, y, bw, bh = box
    clamp = lambda v, hi: int(min(max(v, 0), hi - 1))
    i0, i1 = clamp(np.floor(y * h / H), h), clamp(np.floor((y + max(bh, 1) - 1e-6) * h / H), h)
    j0, j1 = clamp(np.floor(x * w / W), w), clamp(np.floor((x + max(bw, 1) - 1e-6) * w / W), w)
    return slice(i0, i1 + 1), slice(j0, j1 + 1)


def track_objects(boxes: Sequence[Dict[str, List[Box]]], categories: Sequence[str], screen_hw,
                  grid_hw) -> List[ObjectTrack]:
    """Per category, the arrays of :class:`ObjectTrack` from per-step boxes (``RamObjects.read``)."""
    T, (H, W), (h, w) = len(boxes), screen_hw, grid_hw
    tracks = []
    for c in categories:
        masks = np.zeros((T, h, w), bool)
        centres = np.full((T, 2), np.nan)
        heights = np.full(T, np.nan)
        for t, step in enumerate(boxes):
            found = step.get(c, [])
            for box in found:
                masks[(t,) + box_cells(box, screen_hw, grid_hw)] = True
            if found:
                cy = np.mean([b[1] + b[3] / 2 for b in found])
                cx = np.mean([b[0] + b[2] / 2 for b in found])
                centres[t] = (cy * h / H - 0.5, cx * w / W - 0.5)
                heights[t] = cy
        tracks.append(ObjectTrack(c, masks, masks.any(axis=(1, 2)), centres, heights))
    return tracks


def dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """``masks [..., h, w]`` grown by ``radius`` cells in Chebyshev distance."""
    out = masks.copy()
    h, w = masks.shape[-2:]
    for di in range(-radius, radius + 1):
        for dj in range(-radius, radius + 1):
            src = masks[..., max(0, -di):h - max(0, di), max(0, -dj):w - max(0, dj)]
            out[..., max(0, di):h - max(0, -di), max(0, dj):w - max(0, -dj)] |= src
    return out


# ---------------------------------------------------------------- the scores
def object_scores(maps: np.ndarray, track: ObjectTrack, radius: int = 1) -> dict:
    """Per-head scores of ``maps [T, N, h, w]`` (each sums to 1 over the cells) on ``track``.

    Returns lists over the N heads (``mass``, ``lift``, ``hit_rate``) and the head-independent
    ``area``, ``chance``, ``best_fixed`` and ``steps`` (steps with the object on screen); the
    per-step ``mass_t [N, T]`` (NaN where absent) is under ``"series"``. See the module docstring.
    """
    maps = np.asarray(maps, np.float64)
    T, N, h, w = maps.shape
    if track.masks.shape != (T, h, w):
        raise ValueError(f"maps [T={T}, N, {h}, {w}] and the object masks {track.masks.shape} differ in shape")
    present = track.present
    series = np.full((N, T), np.nan)
    steps = int(present.sum())
    if steps == 0:
        nan = [float("nan")] * N
        return {"steps": 0, "area": float("nan"), "mass": nan, "lift": nan, "hit_rate": nan,
                "chance": float("nan"), "best_fixed": float("nan"), "series": series}
    m, masks = maps[present], track.masks[present]                          # [S, N, h, w], [S, h, w]
    mass_t = (m * masks[:, None]).sum(axis=(2, 3))                          # [S, N]
    area = masks.sum(axis=(1, 2)).mean() / (h * w)
    near = dilate(masks, radius)                                            # [S, h, w]
    top = m.reshape(steps, N, -1).argmax(axis=-1)                           # [S, N]
    hit = np.take_along_axis(near.reshape(steps, -1), top, axis=1)          # [S, N]
    ci, cj = np.clip(np.rint(np.nanmean(track.centres[present], axis=0)), 0, [h - 1, w - 1]).astype(int)
    series[:, present] = mass_t.T
    return {"steps": steps, "area": float(area), "mass": mass_t.mean(axis=0).tolist(),
            "lift": (mass_t.mean(axis=0) / area).tolist(), "hit_rate": hit.mean(axis=0).tolist(),
            "chance": float(near[:, ci, cj].mean()), "best_fixed": float(near.mean(axis=0).max()),
            "mean_cell": [int(ci), int(cj)], "series": series}


def shift_track(track: ObjectTrack, lag: int, firsts: Optional[np.ndarray] = None) -> ObjectTrack:
    """The track re-indexed by ``lag``: step t holds the object of step ``t + lag`` (``lag < 0``:
    an earlier step), and is absent where ``t + lag`` lies outside the run or in another episode
    (``firsts [T]`` marks each episode's first step; None: one episode)."""
    T = len(track.present)
    src = np.arange(T) + lag
    ok = (src >= 0) & (src < T)
    if firsts is not None:
        episode = np.cumsum(np.asarray(firsts, bool))
        ok[ok] &= episode[src[ok]] == episode[ok]
    out = ObjectTrack(track.category, np.zeros_like(track.masks), np.zeros(T, bool),
                      np.full((T, 2), np.nan), np.full(T, np.nan))
    for name in ("masks", "present", "centres", "heights"):
        getattr(out, name)[ok] = getattr(track, name)[src[ok]]
    return out


def object_scores_by_lag(maps: np.ndarray, track: ObjectTrack, lags: Sequence[int],
                         firsts: Optional[np.ndarray] = None, radius: int = 1) -> dict:
    """:func:`object_scores` of ``maps [T, N, h, w]`` against the object ``k`` steps later, for
    each ``k`` in ``lags`` (``k < 0``: where it was; see :func:`shift_track`).

    Returns ``{"lags", "steps": [L], "lift": [N][L], "hit_rate": [N][L], "best_lag": [N],
    "best_lift": [N], "best_hit_rate": [N]}``. A head's best lag is the one of its highest lift
    (the mass, not the top cell, so one noisy argmax does not decide it), ties going to the
    smallest ``|k|``; None (and NaN scores) when no lag lifts it above an even spread (lift ≤ 1:
    the head is not on the object at any lag). ``steps`` counts the steps scored at each lag
    (the object on screen at ``t + k`` in ``t``'s episode). Lags where the object is never on
    screen score NaN and are never best."""
    lags = [int(k) for k in lags]
    if not lags:
        raise ValueError("lags must name at least one lag")
    scores = [object_scores(maps, shift_track(track, k, firsts), radius) for k in lags]
    lift = np.array([s["lift"] for s in scores], np.float64).T                # [N, L]
    hit = np.array([s["hit_rate"] for s in scores], np.float64).T
    nearest_first = sorted(range(len(lags)), key=lambda i: abs(lags[i]))

    def best_of(row):
        best = None
        for i in nearest_first:
            if np.isfinite(row[i]) and row[i] > 1.0 and (best is None or row[i] > row[best]):
                best = i
        return best

    best = [best_of(row) for row in lift]
    pick = lambda table: [float(table[n, b]) if b is not None else float("nan") for n, b in enumerate(best)]
    return {"lags": lags, "steps": [s["steps"] for s in scores], "lift": lift.tolist(), "hit_rate": hit.tolist(),
            "best_lag": [lags[b] if b is not None else None for b in best],
            "best_lift": pick(lift), "best_hit_rate": pick(hit)}


def spatial_softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last two axes (a head's what or where logits as a distribution over cells)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=(-2, -1), keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=(-2, -1), keepdims=True)


def pool_to_grid(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, frame_hw, grid_hw) -> np.ndarray:
    """A map sampled at pixel rows ``ys`` × columns ``xs`` (e.g. saliency) pooled onto the h×w grid:
    each cell gets the mean of its samples, and the result sums to 1 (uniform if all zero)."""
    from pipelines.analysis.geometry import cell_of_pixel
    h, w = grid_hw
    ii, _ = cell_of_pixel(np.asarray(ys), 0, frame_hw, grid_hw)
    _, jj = cell_of_pixel(0, np.asarray(xs), frame_hw, grid_hw)
    total, count = np.zeros((h, w)), np.zeros((h, w))
    np.add.at(total, (ii[:, None], jj[None, :]), np.asarray(values, np.float64))
    np.add.at(count, (ii[:, None], jj[None, :]), 1.0)
    cell = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    s = cell.sum()
    return cell / s if s > 0 else np.full((h, w), 1.0 / (h * w))


def entropy(maps: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each map over its last two axes."""
    p = np.asarray(maps, np.float64)
    return -(p * np.log(np.maximum(p, 1e-30))).sum(axis=(-2, -1))


def entropy_by_height(maps: np.ndarray, heights: np.ndarray, bins: Sequence[float]) -> dict:
    """Each head's mean attention entropy against an object's height (the paper's "trip wire":
    spread while Breakout's ball is far from the paddle, sharp as it comes down).

    ``maps [T, N, h, w]``, ``heights [T]`` (screen y of the object's centre, NaN when absent),
    ``bins``: the height bin edges. Returns ``{"edges", "centres", "entropy": [N][bins], "count":
    [bins], "max_entropy": log(h·w), "spearman": [N]}`` (Spearman ρ of entropy and height per head
    over the steps with the object; ρ < 0: sharper as the object descends)."""
    maps = np.asarray(maps)
    T, N, h, w = maps.shape
    heights = np.asarray(heights, np.float64)
    ok = np.isfinite(heights)
    ent = entropy(maps)                                                     # [T, N]
    edges = np.asarray(bins, np.float64)
    which = np.digitize(heights[ok], edges) - 1
    inside = (which >= 0) & (which < len(edges) - 1)
    nb = len(edges) - 1
    count = np.bincount(which[inside], minlength=nb).astype(float)
    table = np.full((N, nb), np.nan)
    for n in range(N):
        sums = np.bincount(which[inside], weights=ent[ok, n][inside], minlength=nb)
        table[n] = np.where(count > 0, sums / np.maximum(count, 1), np.nan)
    rho = [_spearman(heights[ok], ent[ok, n]) for n in range(N)]
    return {"edges": edges.tolist(), "centres": ((edges[:-1] + edges[1:]) / 2).tolist(),
            "entropy": table.tolist(), "count": count.tolist(), "max_entropy": float(np.log(h * w)),
            "spearman": rho, "steps": int(ok.sum())}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from pipelines.analysis.faithfulness import rank_correlation
    return rank_correlation(a, b) if len(a) >= 3 else float("nan")


# ---------------------------------------------------------------- one rollout: scores, plots, table
MAP_KINDS = ("attention", "what", "where")
HEIGHT_BIN_PX = 15             # entropy-against-height bins (screen pixels)


@dataclasses.dataclass
class ObjectAnalysis:
    summary: dict                       # JSON-able: per map kind, category: scores (no series)
    tracks: List[ObjectTrack]
    series: Dict[str, np.ndarray]       # category -> attention mass per head and step [N, T]


def score_rollout(rollout, categories: Sequence[str], screen_hw, radius: int = 1,
                  max_lag: int = 0) -> ObjectAnalysis:
    """Scores of every head's attention, "what" and "where" maps on every object category of a
    rollout recorded with an object reader (``Rollout.objects``), plus each head's attention
    entropy against the ball's height when the game has a ``Ball``. With ``max_lag`` > 0, also
    the scores against the objects ``-max_lag … +max_lag`` steps away (``summary["by_lag"]``,
    :func:`object_scores_by_lag`)."""
    if rollout.objects is None or rollout.attention is None:
        raise ValueError("object scores need a rollout of an attention model recorded with an object reader")
    grid = rollout.attention.shape[-2:]
    tracks = track_objects(rollout.objects, categories, screen_hw, grid)
    maps = {"attention": rollout.attention, "what": spatial_softmax(rollout.what),
            "where": spatial_softmax(rollout.where)}
    summary = {"categories": list(categories), "grid": list(grid), "screen": list(screen_hw),
               "radius": radius, "steps": len(rollout)}
    series = {}
    for kind in MAP_KINDS:
        summary[kind] = {}
        for track in tracks:
            scores = object_scores(maps[kind], track, radius)
            if kind == "attention":
                series[track.category] = scores["series"]
            summary[kind][track.category] = {k: v for k, v in scores.items() if k != "series"}
    if max_lag > 0:
        lags = range(-max_lag, max_lag + 1)
        summary["by_lag"] = {kind: {t.category: object_scores_by_lag(maps[kind], t, lags, rollout.firsts, radius)
                                    for t in tracks if t.present.any()} for kind in MAP_KINDS}
    ball = next((t for t in tracks if t.category == "Ball"), None)
    if ball is not None and ball.present.any():
        edges = np.arange(0, screen_hw[0] + HEIGHT_BIN_PX, HEIGHT_BIN_PX)
        summary["entropy_by_ball_height"] = entropy_by_height(rollout.attention, ball.heights, edges)
    return ObjectAnalysis(summary, tracks, series)


def score_maps_on_frames(maps: np.ndarray, tracks: Sequence[ObjectTrack], times: Sequence[int],
                         radius: int = 1) -> Dict[str, dict]:
    """Scores of ``maps [len(times), N, h, w]`` (e.g. saliency pooled onto the grid at the
    saliency frames) against the tracks restricted to those steps."""
    idx = np.asarray(times, int)
    return {t.category: {k: v for k, v in object_scores(
        maps, ObjectTrack(t.category, t.masks[idx], t.present[idx], t.centres[idx], t.heights[idx]),
        radius).items() if k != "series"} for t in tracks}


def pooled_saliency(frames, frame_hw, grid_hw) -> Dict[str, np.ndarray]:
    """The saliency maps of :class:`pipelines.analysis.saliency.SaliencyFrame` s pooled onto the
    attention grid as one-head maps ``[len(frames), 1, h, w]``: the baseline's, then the agent's."""
    maps = {}
    for who in ("baseline", "agent"):
        for kind in ("policy", "value"):
            pooled = [pool_to_grid(getattr(sal, kind), sal.ys, sal.xs, frame_hw, grid_hw)
                      for sal in (getattr(f, who) for f in frames) if sal is not None]
            if pooled:
                maps[f"{who} {kind} saliency"] = np.stack(pooled)[:, None]
    return maps


def analyse_rollout(rollout, reader: RamObjects, radius: int = 1, saliency=(), max_lag: int = 0) -> ObjectAnalysis:
    """:func:`score_rollout` with the reader's categories (and ``max_lag``); given saliency frames
    (:func:`pipelines.analysis.saliency.saliency_on_frames`), the same scores on those frames for
    the attention and for the saliency maps pooled onto the grid, under ``summary["saliency"]``."""
    analysis = score_rollout(rollout, reader.categories, reader.screen_hw, radius, max_lag)
    if saliency:
        times = [f.t for f in saliency]
        maps = {"attention (same frames)": rollout.attention[times],
                **pooled_saliency(saliency, rollout.frames.shape[1:3], rollout.attention.shape[-2:])}
        analysis.summary["saliency"] = {k: score_maps_on_frames(m, analysis.tracks, times, radius)
                                        for k, m in maps.items()}
        analysis.summary["saliency_frames"] = times
    return analysis


def head_lines(summary: dict, kind: str = "attention") -> List[str]:
    """One terminal line per head: each category's lift and hit rate (chance beside it)."""
    scores = summary[kind]
    heads = len(next(iter(scores.values()))["lift"]) if scores else 0
    lines = []
    for n in range(heads):
        parts = []
        for c, s in scores.items():
            if s["steps"]:
                parts.append(f"{c}: lift {s['lift'][n]:.2f}, hit {s['hit_rate'][n]:.2f} (chance {s['chance']:.2f})")
            else:
                parts.append(f"{c}: not on screen")
        lines.append(f"head {n}  " + " | ".join(parts))
    return lines


def _at_lag_zero(s: dict, n: int) -> Tuple[float, float]:
    """Head n's lift and hit rate at lag 0 in an :func:`object_scores_by_lag` result (NaN when
    lag 0 was not scored)."""
    if 0 not in s["lags"]:
        return float("nan"), float("nan")
    zero = s["lags"].index(0)
    return s["lift"][n][zero], s["hit_rate"][n][zero]


def lag_lines(summary: dict, kind: str = "attention") -> List[str]:
    """One terminal line per head: each category's best lag with its lift and hit rate, and the
    scores at lag 0 beside them (``summary["by_lag"]``; none without it)."""
    by_lag = summary.get("by_lag", {}).get(kind, {})
    if not by_lag:
        return []
    heads = len(next(iter(by_lag.values()))["best_lag"])
    lines = []
    for n in range(heads):
        parts = []
        for c, s in by_lag.items():
            best = s["best_lag"][n]
            if best is None:
                parts.append(f"{c}: lift <= 1 at every lag")
                continue
            lift0, hit0 = _at_lag_zero(s, n)
            at_zero = f" (at 0: {lift0:.2f}, {hit0:.2f})" if 0 in s["lags"] else ""
            edge = " (edge of the range)" if best in (min(s["lags"]), max(s["lags"])) and best != 0 else ""
            parts.append(f"{c}: lag {best:+d}{edge} lift {s['best_lift'][n]:.2f}, hit "
                         f"{s['best_hit_rate'][n]:.2f}{at_zero}")
        lines.append(f"head {n}  " + " | ".join(parts))
    return lines


def table_rows(summary: dict) -> List[list]:
    """The report's rows: map kind, head, category, steps, mass, area, lift, hit, chance, best fixed."""
    rows = []
    for kind in MAP_KINDS + ("saliency",):
        for key, scores in summary.get(kind, {}).items():
            for c, s in scores.items() if kind == "saliency" else [(key, scores)]:
                label = f"{kind}: {key}" if kind == "saliency" else kind
                for n in range(len(s["lift"])):
                    rows.append([label, n, c, s["steps"], s["mass"][n], s["area"], s["lift"][n],
                                 s["hit_rate"][n], s["chance"], s["best_fixed"]])
    return rows


def plot_mass_over_time(analysis: ObjectAnalysis, path: str, smooth: int = 9) -> str:
    """Per head, the attention mass on each category over the run (running mean of ``smooth``
    steps) with the category's area share (dashed: an even spread's mass)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = next(iter(analysis.series.values())).shape[0]
    fig, axes = plt.subplots(heads, 1, figsize=(9, 1.9 * heads), squeeze=False, sharex=True)
    kernel = np.ones(smooth) / smooth
    for track, colour in zip(analysis.tracks, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        mass = analysis.series[track.category]
        area = np.where(track.present, track.masks.sum(axis=(1, 2)) / track.masks[0].size, np.nan)
        for n in range(heads):
            ax = axes[n, 0]
            filled = np.nan_to_num(mass[n])
            valid = np.convolve(np.isfinite(mass[n]).astype(float), kernel, "same")
            ax.plot(np.where(valid > 0, np.convolve(filled, kernel, "same") / np.maximum(valid, 1e-9), np.nan),
                    color=colour, lw=1, label=track.category)
            ax.plot(area, color=colour, lw=0.8, ls="--")
    for n in range(heads):
        lift = {c: s["lift"][n] for c, s in analysis.summary["attention"].items() if s["steps"]}
        axes[n, 0].set_title(f"head {n}: attention mass on each object (dashed: its area share); lift "
                             + ", ".join(f"{c} {v:.1f}" for c, v in lift.items()), fontsize=8)
        axes[n, 0].set_ylim(0, 1)
        axes[n, 0].tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, ncol=len(analysis.tracks), loc="upper right")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_entropy_by_height(table: dict, path: str) -> str:
    """Each head's mean attention entropy against the ball's height (screen y; down = nearer the
    bottom), with the number of steps per bin."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for n, row in enumerate(table["entropy"]):
        ax.plot(table["centres"], row, marker="o", ms=3, label=f"head {n} (ρ {table['spearman'][n]:+.2f})")
    ax.axhline(table["max_entropy"], color="grey", ls=":", lw=0.8, label="uniform map")
    ax.set_xlabel("ball height: screen row of its centre (larger = lower on screen)")
    ax.set_ylabel("attention entropy (nats)")
    twin = ax.twinx()
    twin.bar(table["centres"], table["count"], width=HEIGHT_BIN_PX * 0.8, color="grey", alpha=0.15)
    twin.set_ylabel("steps", fontsize=8)
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(fontsize=7)
    ax.set_title("Attention entropy against the ball's height (trip wires: sharp as the ball comes down)",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_lift_by_lag(by_lag: dict, path: str) -> str:
    """Per head, each category's attention lift against the lag (``k < 0``: the object ``|k|``
    steps earlier), log scale, with an even spread (1) dotted."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = len(next(iter(by_lag.values()))["lift"])
    fig, axes = plt.subplots(1, heads, figsize=(2.6 * heads, 2.8), squeeze=False, sharey=True)
    for c, s in by_lag.items():
        for n in range(heads):
            axes[0, n].plot(s["lags"], s["lift"][n], marker="o", ms=2.5, lw=1,
                            label=f"{c} (best {s['best_lag'][n]:+d})" if s["best_lag"][n] is not None else c)
    for n in range(heads):
        ax = axes[0, n]
        ax.axvline(0, color="grey", lw=0.8)
        ax.axhline(1, color="grey", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.05)                  # lifts of ~0 would stretch every panel
        ax.set_title(f"head {n}", fontsize=8)
        ax.set_xlabel("lag k (steps; < 0: where it was)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("lift against the object at t + k", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def lag_rows(summary: dict) -> List[list]:
    """The report's rows of best lags: map kind, head, category, best lag, lift and hit there and at 0."""
    rows = []
    for kind, by_lag in summary.get("by_lag", {}).items():
        for c, s in by_lag.items():
            for n, best in enumerate(s["best_lag"]):
                rows.append([kind, n, c, best, s["best_lift"][n], s["best_hit_rate"][n], *_at_lag_zero(s, n)])
    return rows


def write_object_scores(analysis: ObjectAnalysis, out_dir: str) -> Written:
    """The plots, ``objects.npz`` (per-category masks and centres), the scores for the summary
    and the report's section with their table."""
    files = {"mass_over_time": plot_mass_over_time(analysis, os.path.join(out_dir, "object_mass.png"))}
    np.savez_compressed(os.path.join(out_dir, "objects.npz"),
                        **{f"{t.category}_{k}": getattr(t, k) for t in analysis.tracks
                           for k in ("masks", "present", "centres", "heights")})
    section = Section().heading("Objects: which head looks at what")
    s = analysis.summary
    section.text(f"Object boxes from the emulator's RAM (OCAtari), mapped onto the {s['grid'][0]}×{s['grid'][1]} "
                 f"attention grid. Lift = mass on the object's cells ÷ their area share (1 = an even spread); "
                 f"hit = the head's most-attended cell within {s['radius']} cell of the object; chance = a head "
                 "fixed on the object's mean cell; best fixed = the best any frame-independent head could do. "
                 "'what' and 'where' are the logit parts as spatial softmaxes; saliency rows compare on the "
                 "saliency frames only.")
    section.media(files["mass_over_time"])
    section.table(["map", "head", "object", "steps", "mass", "area", "lift", "hit rate", "chance", "best fixed"],
                  table_rows(s))
    if s.get("by_lag", {}).get("attention"):
        section.text("Lags: the same scores against the object k steps later (k < 0: where it was |k| "
                     "steps before, a head that trails it; k > 0: where it will be, a head that leads it), "
                     "within episodes; a head's best lag is the one of its highest lift.")
        files["lift_by_lag"] = plot_lift_by_lag(s["by_lag"]["attention"], os.path.join(out_dir, "object_lag.png"))
        section.media(files["lift_by_lag"])
        section.table(["map", "head", "object", "best lag", "lift there", "hit there", "lift at 0", "hit at 0"],
                      lag_rows(s))
    if "entropy_by_ball_height" in s:
        files["entropy_by_ball_height"] = plot_entropy_by_height(
            s["entropy_by_ball_height"], os.path.join(out_dir, "entropy_by_ball_height.png"))
        section.media(files["entropy_by_ball_height"])
    return Written(summary={"objects": s}, files={"objects": files}, section=section)


def summary_rows(summary: dict) -> List[list]:
    """The report's summary-table rows: per object on screen, the heads' lift and hit rate."""
    rows = []
    for c, s in summary.get("objects", {}).get("attention", {}).items():
        if s["steps"]:
            rows.append([f"{c}: lift per head (1 = even spread)", ", ".join(f"{v:.2f}" for v in s["lift"])])
            rows.append([f"{c}: hit rate per head (chance {s['chance']:.2f})",
                         ", ".join(f"{v:.2f}" for v in s["hit_rate"])])
    return rows
