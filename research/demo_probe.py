"""Probe a MiniGrid demo run (docs/LEARNING.md §7): does the policy depend on the frame, and
where do the attention heads look?

    python research/demo_probe.py RUN_DIR_OR_EXPORT [...] [--episodes 5] [--env ID]

For each argument (a run directory with export/latest, an export, or anything ``s3ta analyze``
loads): the per-action policy probabilities over sampled episodes (mean and std across steps),
the value's spread, the attention entropy / log(h·w), the spread of the "what" and "where" logits
across cells, and how many distinct cells each head's argmax visits in its first 40 steps.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

from agents.environments import make_environment  # noqa: E402
from pipelines.analysis.stepper import load_stepper  # noqa: E402

ENV = "MiniGrid-Empty-5x5-v0"


def softmax(x):
    p = np.exp(x - x.max())
    return p / p.sum()


def probe(path: str, episodes: int = 5, env_id: str = ENV) -> dict:
    export = os.path.join(path, "export", "latest") if os.path.isdir(os.path.join(path, "export")) else path
    st = load_stepper(export)
    env = make_environment(env_id, seed=3, observation_shape=st.observation_shape)
    rng = np.random.default_rng(0)
    probs, values, lengths, rows, cells = [], [], [], [], []
    for _ in range(episodes):
        ts, state, prev_a, prev_r, first, n = env.reset(), st.initial_state(1), 0, 0.0, True, 0
        while True:
            out, state = st.step(ts.observation[None], [prev_a], [prev_r], state, [first])
            p = softmax(out["logits"][0])
            probs.append(p)
            values.append(float(np.ravel(out["value"])[0]))
            if "attention" in out and len(rows) < 40:
                a, what, where = out["attention"][0], out["what"][0], out["where"][0]
                n_heads, h, w = a.shape
                entropy = -(a * np.log(a + 1e-12)).sum((-1, -2)) / np.log(h * w)
                rows.append((entropy.mean(), what.std((-1, -2)).mean(), where.std((-1, -2)).mean()))
                cells.append(a.reshape(n_heads, -1).argmax(1))
            prev_a = int(rng.choice(len(p), p=p))
            ts = env.step(np.int32(prev_a))
            prev_r, first, n = float(ts.reward), False, n + 1
            if ts.is_last():
                lengths.append(n)
                break
    probs = np.array(probs)
    np.set_printoptions(precision=3, suppress=True)
    print(f"== {path}")
    print("  episode lengths", lengths)
    print("  policy mean", probs.mean(0), " std across steps", probs.std(0))
    print(f"  value mean {np.mean(values):.3f} std {np.std(values):.3f}")
    result = {"episode_lengths": lengths, "policy_mean": probs.mean(0).tolist(), "policy_std": probs.std(0).tolist(),
              "value_std": float(np.std(values))}
    if rows:
        e, what, where = np.array(rows).mean(0)
        cells = np.array(cells)
        distinct = [len(set(cells[:, k].tolist())) for k in range(cells.shape[1])]
        print(f"  attention entropy/log(hw) {e:.3f}; what std {what:.3f}, where std {where:.3f}; "
              f"distinct argmax cells per head in {len(cells)} steps: {distinct}")
        result.update(attention_entropy=float(e), what_std=float(what), where_std=float(where),
                      distinct_cells=distinct)
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--env", default=ENV)
    a = p.parse_args(argv)
    return {path: probe(path, a.episodes, a.env) for path in a.paths}


if __name__ == "__main__":
    main()
