"""Running a stepper: closed loop in an environment, or open loop over recorded frames.

Both record, per step t, the observation the agent saw (after an optional pixel
``transform``), its outputs (logits, value, attention, what, where), the action taken, the
reward that followed and whether t began an episode; and, for the steps asked for, the
:class:`StepContext` — recurrent state, previous action/reward, episode start — from which
step t can be re-run (saliency perturbs frame t from exactly that context).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from pipelines.analysis.progress import Progress

Transform = Callable[[int, np.ndarray], np.ndarray]   # (step t, frame [H, W, 3]) -> frame


@dataclasses.dataclass
class StepContext:
    """What step t starts from: ``state`` (dict of [1, ...]), previous action/reward, episode start."""
    state: Dict[str, np.ndarray]
    prev_action: int
    prev_reward: float
    first: bool


@dataclasses.dataclass
class Rollout:
    """Per-step records of a run of T steps (shapes below)."""
    frames: np.ndarray            # uint8 [T, H, W, 3], as seen by the agent
    actions: np.ndarray           # int32 [T]
    rewards: np.ndarray           # float32 [T], reward after the action
    firsts: np.ndarray            # bool [T], step t begins an episode
    logits: np.ndarray            # float32 [T, A]
    values: np.ndarray            # float32 [T]
    attention: Optional[np.ndarray] = None   # float32 [T, N, h, w]
    what: Optional[np.ndarray] = None
    where: Optional[np.ndarray] = None
    contexts: Dict[int, StepContext] = dataclasses.field(default_factory=dict)
    action_names: Optional[List[str]] = None
    objects: Optional[List[dict]] = None     # per step, {category: [(x, y, w, h), ...]} (screen pixels)

    def __len__(self):
        return len(self.actions)

    def action_name(self, a: int) -> str:
        return self.action_names[a] if self.action_names and 0 <= a < len(self.action_names) else str(a)

    def arrays(self) -> Dict[str, np.ndarray]:
        """Every per-step array (for ``np.savez``)."""
        keys = ("frames", "actions", "rewards", "firsts", "logits", "values", "attention", "what", "where")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


def episode_segments(firsts) -> List[tuple]:
    """``[(start, end), ...]``: the steps of each episode of a run, split where ``firsts`` is
    True (the run's first step always starts one; the last may be cut by the step budget)."""
    starts = sorted(set([0] + np.flatnonzero(np.asarray(firsts)).tolist()))
    ends = starts[1:] + [len(firsts)]
    return [(a, b) for a, b in zip(starts, ends) if b > a]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def choose_action(logits: np.ndarray, policy: str, rng: np.random.Generator) -> int:
    """``greedy``: argmax; ``sample``: a draw from softmax(logits)."""
    if policy == "greedy":
        return int(np.argmax(logits))
    if policy == "sample":
        p = softmax(logits)
        return int(rng.choice(len(p), p=p / p.sum()))
    raise ValueError(f"policy must be 'greedy' or 'sample', got {policy!r}")


class _Recorder:
    def __init__(self, stepper, keep_contexts: Iterable[int]):
        self.stepper = stepper
        self.keep = set(int(t) for t in keep_contexts)
        self.state = stepper.initial_state(1)
        self.rows: Dict[str, list] = {k: [] for k in ("frames", "actions", "rewards", "firsts", "logits",
                                                       "values", "attention", "what", "where")}
        self.contexts: Dict[int, StepContext] = {}

    def step(self, t: int, frame: np.ndarray, prev_action: int, prev_reward: float, first: bool):
        if t in self.keep:
            self.contexts[t] = StepContext({k: v.copy() for k, v in self.state.items()},
                                           int(prev_action), float(prev_reward), bool(first))
        out, self.state = self.stepper.step(frame[None], np.array([prev_action], np.int32),
                                            np.array([prev_reward], np.float32), self.state,
                                            np.array([first], bool))
        self.rows["frames"].append(frame)
        self.rows["firsts"].append(bool(first))
        self.rows["logits"].append(np.asarray(out["logits"][0], np.float32))
        self.rows["values"].append(np.float32(np.asarray(out["value"]).reshape(-1)[0]))
        for k in ("attention", "what", "where"):
            if k in out:
                self.rows[k].append(np.asarray(out[k][0], np.float32))
        return out

    def finish(self, action_names=None) -> Rollout:
        r = self.rows
        maybe = {k: (np.stack(r[k]) if r[k] else None) for k in ("attention", "what", "where")}
        return Rollout(frames=np.stack(r["frames"]).astype(np.uint8),
                       actions=np.asarray(r["actions"], np.int32), rewards=np.asarray(r["rewards"], np.float32),
                       firsts=np.asarray(r["firsts"], bool), logits=np.stack(r["logits"]),
                       values=np.asarray(r["values"], np.float32), contexts=self.contexts,
                       action_names=action_names, **maybe)


def make_analysis_environment(env_id: str, stepper, seed: int, resize: bool = False, sticky_actions: bool = False):
    """The environment for ``env_id`` matched to the stepper's action count and frame shape
    (``sticky_actions``: ALE's repeat of the previous action with p = 0.25 per frame).

    Models with ALE's full action count get ALE's full action set, others the minimal one.
    Raises ValueError when the action count or (unless ``resize``) the observation shape does
    not match the model.
    """
    from agents.environments import environment_for
    return environment_for(stepper.observation_shape, env_id, seed, num_actions=stepper.num_actions,
                           resize=resize, sticky_actions=sticky_actions,
                           advice="analyse a model trained on this game (a model with "
                           "ALE's full action count for the full action set), or pass --resize-observations")


def action_names_of(env) -> Optional[List[str]]:
    unwrapped = getattr(getattr(env, "gym_env", None), "unwrapped", None)
    getter = getattr(unwrapped, "get_action_meanings", None)
    return list(getter()) if getter else None


def run_agent(stepper, env, steps: int, policy: str = "sample", seed: int = 0,
              transform: Optional[Transform] = None, keep_contexts: Iterable[int] = (),
              progress: bool = True, label: str = "rollout", objects=None) -> Rollout:
    """Runs ``steps`` agent steps in ``env`` (a TF-Agents PyEnvironment, e.g. from
    :func:`agents.environments.make_environment`); episodes restart as they end.

    ``transform(t, frame)`` edits the pixels the agent sees at step t (the env is untouched).
    ``objects``: an object reader (``.read(first)``, e.g.
    :class:`pipelines.analysis.object_scores.RamObjects` of ``env``) called as each frame is seen;
    its records become ``Rollout.objects``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    rng = np.random.default_rng(seed)
    rec = _Recorder(stepper, keep_contexts)
    bar = Progress(label, steps, enabled=progress)
    seen: List[dict] = []
    time_step = env.reset()
    prev_action, prev_reward, first = 0, 0.0, True
    for t in range(steps):
        if time_step.is_last():
            time_step = env.reset()
            prev_action, prev_reward, first = 0, 0.0, True
        frame = np.asarray(time_step.observation, np.uint8)
        if objects is not None:
            seen.append(objects.read(first))
        if transform is not None:
            frame = np.asarray(transform(t, frame), np.uint8)
        out = rec.step(t, frame, prev_action, prev_reward, first)
        action = choose_action(out["logits"][0], policy, rng)
        time_step = env.step(np.asarray(action, np.int32))
        reward = float(time_step.reward)
        rec.rows["actions"].append(action)
        rec.rows["rewards"].append(reward)
        prev_action, prev_reward, first = action, reward, False
        bar.update(t + 1)
    bar.close()
    rollout = rec.finish(action_names_of(env))
    rollout.objects = seen if objects is not None else None
    return rollout


def replay(stepper, frames: np.ndarray, actions: Optional[np.ndarray] = None,
           rewards: Optional[np.ndarray] = None, firsts: Optional[np.ndarray] = None,
           transform: Optional[Transform] = None, keep_contexts: Iterable[int] = (),
           policy: str = "greedy", seed: int = 0, progress: bool = False,
           label: str = "replay") -> Rollout:
    """Open loop: feeds recorded ``frames [T, H, W, 3]`` to the stepper.

    The previous action/reward inputs come from the recorded ``actions``/``rewards`` (zeros if
    not given); the ``actions`` of the result are the stepper's own choices under ``policy``.
    """
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got shape {frames.shape}")
    steps = len(frames)
    actions = np.zeros(steps, np.int32) if actions is None else np.asarray(actions, np.int32)
    rewards = np.zeros(steps, np.float32) if rewards is None else np.asarray(rewards, np.float32)
    firsts = np.eye(1, steps, dtype=bool)[0] if firsts is None else np.asarray(firsts, bool)
    if not (len(actions) == len(rewards) == len(firsts) == steps):
        raise ValueError(f"frames ({steps}), actions ({len(actions)}), rewards ({len(rewards)}) and firsts "
                         f"({len(firsts)}) must have the same length")
    rng = np.random.default_rng(seed)
    rec = _Recorder(stepper, keep_contexts)
    bar = Progress(label, steps, enabled=progress)
    for t in range(steps):
        frame = frames[t] if transform is None else np.asarray(transform(t, frames[t]), np.uint8)
        first = bool(firsts[t]) or t == 0
        prev_a = 0 if first else int(actions[t - 1])
        prev_r = 0.0 if first else float(rewards[t - 1])
        out = rec.step(t, frame, prev_a, prev_r, first)
        rec.rows["actions"].append(choose_action(out["logits"][0], policy, rng))
        rec.rows["rewards"].append(float(rewards[t]))
        bar.update(t + 1)
    bar.close()
    return rec.finish()
