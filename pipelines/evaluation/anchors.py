"""Published anchors at 10M frames under sticky actions, and the cross-game results table.

Dopamine's baselines (Castro et al. 2018; https://github.com/google/dopamine,
``baselines/atari/data/<game>.json``, Apache-2.0) train every agent with sticky actions
(p = 0.25) and report, per iteration of 1M emulator frames, the mean training return of each
of 5 seeds. The anchor "at 10M frames" is iteration 9 (frames 9M–10M), averaged over the 5 seeds:

    anchor(game, agent) = mean over seeds s of  Value[agent, s, Iteration = 9]

They are training returns (ε = 0.01), not a separate evaluation, so our sticky-action
evaluation of a 10M-frame model is set beside them, not identical to them. The numbers are data,
read from the JSON files with the short script in ``docs/RESULTS.md``; the table code is ours.

``python -m pipelines.evaluation.anchors EVAL_DIR ...`` prints the table for the evaluations
``s3ta evaluate --sticky-actions --out EVAL_DIR`` wrote (one game each; several seeds of one game
and variant are averaged, with their spread).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import defaultdict
from typing import Dict, Iterable, List, Optional

from pipelines.evaluation import scores

ANCHOR_AGENTS = ("DQN", "Rainbow", "IQN")

# game -> agent -> mean training return over 5 seeds at iteration 9 (9M-10M frames), sticky actions.
DOPAMINE_STICKY_10M: Dict[str, Dict[str, float]] = {
    "pong": {"DQN": -4.9, "Rainbow": 15.2, "IQN": 15.2},
    "breakout": {"DQN": 21.5, "Rainbow": 41.9, "IQN": 102.7},
    "boxing": {"DQN": 37.3, "Rainbow": 68.4, "IQN": 89.5},
    "freeway": {"DQN": 8.3, "Rainbow": 32.2, "IQN": 31.6},
    "seaquest": {"DQN": 299.6, "Rainbow": 1641.1, "IQN": 4410.7},
}


def anchor(game: str, agent: str = "Rainbow") -> Optional[float]:
    """The Dopamine anchor for a game (name or ALE id), or None when it is not in the table."""
    return DOPAMINE_STICKY_10M.get(scores.table_name(game) or "", {}).get(agent)


def load_evaluations(paths: Iterable[str]) -> List[dict]:
    """One record per (evaluation, game): game, variant, mean score, sticky flag, source path.
    ``paths`` are evaluation.json files or the directories holding them."""
    records = []
    for path in paths:
        file = os.path.join(path, "evaluation.json") if os.path.isdir(path) else path
        if not os.path.exists(file):
            raise FileNotFoundError(f"{path!r} holds no evaluation.json; expected the --out directory of "
                                    f"`s3ta evaluate` or the evaluation.json file itself")
        with open(file) as f:
            result = json.load(f)
        for g in result["games"]:
            s = g["summary"]
            if "game" not in s:
                continue
            records.append({"game": s["game"], "variant": result.get("variant", "?"), "score": s["mean"],
                            "stderr": s.get("stderr"), "episodes": s.get("episodes", 0),
                            "sticky": bool(result["protocol"]["sticky_actions"]), "path": file})
    return records


def _spread(runs: List[dict]) -> str:
    """One seed: its mean ± the standard error over its episodes; several: the mean over seeds and their range."""
    values = [r["score"] for r in runs]
    mean = statistics.fmean(values)
    if len(values) == 1:
        r = runs[0]
        return f"{mean:.1f}" + (f" ± {r['stderr']:.2f}" if r.get("stderr") is not None and r.get("episodes", 0) > 1 else "")
    return f"{mean:.1f} ({min(values):.1f} to {max(values):.1f}, {len(values)} seeds)"


def results_table(records: List[dict]) -> str:
    """Markdown: per game and variant the sticky-action score (mean over seeds), its HNS, the
    no-op protocol's score of the same runs where given, the anchors and whether it reaches
    Rainbow's; then the median and mean HNS per variant."""
    by, noop = defaultdict(list), defaultdict(list)
    for r in records:
        (by if r["sticky"] else noop)[(r["game"], r["variant"])].append(r)
    lines = ["| game | variant | sticky-action score | HNS % | no-op score | "
             + " | ".join(f"{a} (10M)" for a in ANCHOR_AGENTS) + " | ≥ Rainbow |",
             "| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in ANCHOR_AGENTS) + " | --- |"]
    hns_by_variant = defaultdict(dict)
    for (game, variant), runs in sorted(by.items()):
        mean = statistics.fmean(r["score"] for r in runs)
        hns = scores.human_normalized(game, mean)
        hns_by_variant[variant][game] = hns
        anchors = {a: anchor(game, a) for a in ANCHOR_AGENTS}
        rainbow = anchors["Rainbow"]
        no_op = _spread(noop[(game, variant)]) if noop[(game, variant)] else "–"
        lines.append(f"| {game} | {variant} | {_spread(runs)} | {hns:.1f} | {no_op} | "
                     + " | ".join("–" if a is None else f"{a:g}" for a in anchors.values())
                     + f" | {'–' if rainbow is None else ('yes' if mean >= rainbow else 'no')} |")
    lines += ["", "| variant | games | median HNS % | mean HNS % |", "| --- | ---: | ---: | ---: |"]
    for variant, hns in sorted(hns_by_variant.items()):
        agg = scores.aggregate(hns)
        lines.append(f"| {variant} | {agg['games']} | {agg['median']:.1f} | {agg['mean']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.evaluation.anchors",
        description="The cross-game table of sticky-action evaluations beside Dopamine's 10M-frame "
                    "DQN / Rainbow / IQN anchors, with median and mean human-normalised score per variant.")
    parser.add_argument("evaluations", nargs="+", metavar="EVAL_DIR",
                        help="--out directories of `s3ta evaluate --sticky-actions` (or their evaluation.json)")
    args = parser.parse_args(argv)
    try:
        records = load_evaluations(args.evaluations)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not any(r["sticky"] for r in records):
        print("error: none of these evaluations used sticky actions; run `s3ta evaluate --sticky-actions`",
              file=sys.stderr)
        return 2
    sys.stdout.write(results_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
