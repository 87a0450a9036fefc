"""The Atari evaluation protocol of the papers, for any model directory (``s3ta evaluate``).

Per game, ``episodes`` complete episodes are played by ``num_envs`` environments stepped in
lock-step with one batched model call per agent step:

* each episode starts after a uniform random number of no-op steps in ``[0, noop_max]``
  (30 by default, each no-op one action repeat of 4 emulator frames);
* an episode is cut at ``max_episode_frames`` emulator frames (108,000 = 30 minutes) and then
  counts as **truncated**;
* sticky actions (p = 0.25 per emulator frame) are off by default, on with ``sticky_actions``;
* actions are sampled from the policy (the default, as the papers' agents act) or greedy;
* environment ``j`` of a game is seeded with ``seed · 1000 + j`` and the action sampler with
  ``seed``, so an evaluation repeats exactly; seeds are recorded with every episode.

Environment ``j`` plays a fixed quota of the episodes (``episodes`` split as evenly as
possible), so short episodes are not over-represented as they would be if the first
``episodes`` to finish were kept.

Scores are raw (unclipped) episode returns; ALE games also get their human-normalised score
(:mod:`pipelines.evaluation.scores`).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Callable, List, Optional

import numpy as np

from pipelines.evaluation import scores


@dataclasses.dataclass(frozen=True)
class Protocol:
    episodes: int = 10
    noop_max: int = 30
    max_episode_frames: int = 108_000
    sticky_actions: bool = False
    greedy: bool = False
    num_envs: int = 8
    seed: int = 0
    max_pool_frames: bool = True
    full_action_space: bool = False

    def __post_init__(self):
        for name in ("episodes", "num_envs", "max_episode_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.noop_max <= 1000:
            raise ValueError(f"noop_max must be in [0, 1000], got {self.noop_max}")

    def environment_settings(self, env_id: str) -> dict:
        """The environment options of this protocol for ``env_id``: an ALE game is played with
        the protocol's no-ops, episode cap, sticky actions and action set; other environments
        as they are."""
        from agents.environments import is_ale_id

        if not is_ale_id(env_id):
            return {}
        return dict(noop_max=self.noop_max, max_episode_frames=self.max_episode_frames,
                    sticky_actions=self.sticky_actions, full_action_space=self.full_action_space,
                    max_pool_frames=self.max_pool_frames)


def _environment(env_id: str, protocol: Protocol, stepper, seed: int):
    from agents.environments import environment_for

    return environment_for(stepper.observation_shape, env_id, seed, num_actions=stepper.num_actions,
                           advice="use --full-action-space if the model plays the full 18-action set, "
                                  "or a model trained on this game",
                           **protocol.environment_settings(env_id))


def _quotas(episodes: int, envs: int) -> List[int]:
    return [episodes // envs + (1 if j < episodes % envs else 0) for j in range(envs)]


def _noops_of(env) -> Optional[int]:
    from agents.environments import NoopReset, _find_wrapper
    wrapper = _find_wrapper(env.gym_env, NoopReset)
    return None if wrapper is None else int(wrapper.last_noops)


def choose_actions(logits, greedy: bool, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``logits``: the argmax when ``greedy``, else a draw from the softmax."""
    logits = np.asarray(logits, np.float64)
    if greedy:
        return logits.argmax(-1)
    z = np.exp(logits - logits.max(-1, keepdims=True))
    p = z / z.sum(-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


def evaluate_game(stepper, env_id: str, protocol: Protocol,
                  progress: Optional[Callable[[dict, int, int, float], None]] = None) -> dict:
    """Plays ``protocol.episodes`` episodes of ``env_id``; returns the game's record (summary
    and one row per episode)."""
    k = min(protocol.num_envs, protocol.episodes)
    quotas = _quotas(protocol.episodes, k)
    env_seeds = [protocol.seed * 1000 + j for j in range(k)]
    envs = [_environment(env_id, protocol, stepper, seed) for seed in env_seeds]
    rng = np.random.default_rng(protocol.seed)
    time_steps = [env.reset() for env in envs]
    noops = [_noops_of(env) for env in envs]
    state = {name: np.array(v) for name, v in stepper.initial_state(k).items()}  # writable copies
    prev_action = np.zeros(k, np.int32)
    prev_reward = np.zeros(k, np.float32)
    first = np.ones(k, bool)
    returns = np.zeros(k, np.float64)
    start_frames = [env.frame_count for env in envs]
    done_per_env = [0] * k
    episodes, active = [], list(range(k))
    start = time.time()
    while active:
        idx = np.asarray(active)
        obs = np.stack([time_steps[j].observation for j in active])
        sub_state = {name: v[idx] for name, v in state.items()}
        out, new_state = stepper.step(obs, prev_action[idx], prev_reward[idx], sub_state, first[idx])
        actions = choose_actions(out["logits"], protocol.greedy, rng)
        for name, v in new_state.items():
            state[name][idx] = v
        still = []
        for i, j in enumerate(active):
            ts = envs[j].step(np.int32(actions[i]))
            returns[j] += float(ts.reward)
            prev_action[j], prev_reward[j], first[j] = actions[i], ts.reward, False
            time_steps[j] = ts
            if ts.is_last():
                frames = envs[j].frame_count - start_frames[j]
                record = {"env": j, "env_seed": env_seeds[j], "episode_of_env": done_per_env[j],
                          "return": float(returns[j]), "frames": int(frames),
                          "noops": noops[j], "truncated": bool(ts.discount > 0)}
                episodes.append(record)
                done_per_env[j] += 1
                if progress is not None:
                    progress(record, len(episodes), protocol.episodes, time.time() - start)
                if done_per_env[j] < quotas[j]:
                    time_steps[j] = envs[j].reset()
                    noops[j] = _noops_of(envs[j])
                    start_frames[j] = envs[j].frame_count
                    returns[j], first[j] = 0.0, True
                    prev_action[j], prev_reward[j] = 0, 0.0
                    still.append(j)
            else:
                still.append(j)
        active = still
    for env in envs:
        env.close()
    return summarize(env_id, episodes, protocol, time.time() - start)


def summarize(env_id: str, episodes: List[dict], protocol: Protocol, seconds: float) -> dict:
    rets = [e["return"] for e in episodes]
    frames = [e["frames"] for e in episodes]
    mean, stderr = scores.mean_and_standard_error(rets)
    summary = {"env": env_id, "episodes": len(episodes), "mean": mean, "stderr": stderr,
               "min": min(rets), "max": max(rets), "median": float(np.median(rets)),
               "mean_episode_frames": float(np.mean(frames)), "total_frames": int(sum(frames)),
               "truncated": int(sum(e["truncated"] for e in episodes)), "seconds": seconds}
    game = scores.game_name(env_id)
    if game is not None:
        summary["game"] = game
        summary["human_normalized"] = scores.human_normalized(game, mean)
        summary["random_score"], summary["human_score"] = scores.REFERENCE_SCORES[game]
    return {"summary": summary, "episodes": episodes}


def build_result(model: str, protocol: Protocol, games: List[dict], extra: dict) -> dict:
    """The evaluation record: protocol, per-game records and the human-normalised aggregates."""
    hns = {g["summary"]["game"]: g["summary"]["human_normalized"] for g in games
           if "human_normalized" in g["summary"]}
    return {"model": model, "protocol": dataclasses.asdict(protocol), **extra,
            "games": games, "human_normalized": {"per_game": hns, **scores.aggregate(hns)}}


def write_results(out_dir: str, model: str, protocol: Protocol, games: List[dict], extra: dict) -> dict:
    """``evaluation.json`` (everything), ``episodes.csv`` (one row per episode) and
    ``evaluation.md`` (a table per game and the human-normalised aggregates), atomically."""
    from s3ta_tf.atomic_io import write_json_atomic, write_text_atomic

    os.makedirs(out_dir, exist_ok=True)
    result = build_result(model, protocol, games, extra)
    write_json_atomic(os.path.join(out_dir, "evaluation.json"), result)
    rows = ["env,env_index,env_seed,episode_of_env,return,frames,noops,truncated"]
    for g in games:
        for e in g["episodes"]:
            rows.append(f"{g['summary']['env']},{e['env']},{e['env_seed']},{e['episode_of_env']},"
                        f"{e['return']},{e['frames']},{'' if e['noops'] is None else e['noops']},"
                        f"{int(e['truncated'])}")
    write_text_atomic(os.path.join(out_dir, "episodes.csv"), "\n".join(rows) + "\n")
    write_text_atomic(os.path.join(out_dir, "evaluation.md"), markdown_table(result))
    return result


def _fmt(x, digits=1):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}" if abs(x) >= 10 else f"{x:.3g}"


def markdown_table(result: dict) -> str:
    p = result["protocol"]
    lines = [f"Model `{result['model']}`; {p['episodes']} episodes per game, "
             f"{'greedy' if p['greedy'] else 'sampled'} actions, seed {p['seed']}; ALE games: up to "
             f"{p['noop_max']} no-op starts, cut at {p['max_episode_frames']:,} frames, sticky actions "
             f"{'p = 0.25' if p['sticky_actions'] else 'off'}, max over the last two frames of each repeat "
             f"{'on' if p['max_pool_frames'] else 'off'}.", "",
             "| game | episodes | mean ± s.e. | median | min | max | mean frames | truncated | HNS % |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for g in result["games"]:
        s = g["summary"]
        lines.append(f"| {s['env']} | {s['episodes']} | {_fmt(s['mean'])} ± {_fmt(s['stderr'])} | "
                     f"{_fmt(s['median'])} | {_fmt(s['min'])} | {_fmt(s['max'])} | "
                     f"{s['mean_episode_frames']:,.0f} | {s['truncated']} | {_fmt(s.get('human_normalized'))} |")
    h = result["human_normalized"]
    if h["games"]:
        lines += ["", f"Human-normalised over {h['games']} game(s): median {_fmt(h['median'])} %, "
                      f"mean {_fmt(h['mean'])} %, capped mean {_fmt(h['capped_mean'])} %."]
    return "\n".join(lines) + "\n"


def progress_printer(env_id: str, stream=None):
    """A progress callback printing one line per episode to ``stream`` (default: the
    ``sys.stdout`` of the moment it prints, not of import time)."""
    def show(record: dict, done: int, total: int, seconds: float) -> None:
        eta = seconds / done * (total - done)
        bar = "#" * int(20 * done / total)
        print(f"{env_id} [{bar:<20}] {done}/{total} episodes | return {record['return']:.1f} "
              f"({record['frames']:,} frames{', truncated' if record['truncated'] else ''}) | "
              f"ETA {eta:.0f}s", file=stream or sys.stdout, flush=True)
    return show
