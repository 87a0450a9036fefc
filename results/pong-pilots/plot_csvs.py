"""Overlays the Pong pilots' curves from their CSVs (the runs themselves are not committed).

    python results/pong-pilots/plot_csvs.py      # writes results/pong-pilots/curve.{png,svg}
"""
import csv
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {
    "pA": "pA attention, entropy 0.01",
    "pB": "pB feed-forward, entropy 0.01",
    "pC": "pC attention + LSTM input norm, entropy 0.01",
    "pE": "pE attention + LSTM input norm, entropy 0.002",
    "pF": "pF attention + LSTM input norm + ConvLSTM layer norm, entropy 0.01",
    "pG": "pG = pF with entropy 0.002",
    "pH": "pH = pG with initial query scale 3.0",
    "pI": "pI = pH with each trajectory sampled 3 times",
    "pJ": "pJ = pI with baseline cost 0.1",
    "pK": "pK = pI with query basis gain 0.25",
    "pL": "pL = pH with standardised advantages, entropy 0.01, batch 16",
    "pM": "pM feed-forward on pL's recipe",
    "pN": "pN LSTM baseline on pB's recipe (+ LSTM input norm)",
    "pO": "pO = pH with 16 heads",
    "pP": "pP = pH with batch 32, each trajectory sampled twice",
    "pQ": "pQ = pH with the ResNet vision torso (the atari-cpu preset now)",
    "pR": "pR feed-forward on pQ's recipe",
}
BOLD = {"pB", "pN", "pQ", "pR"}   # the runs that learn
COLOURS = {"pB": "tab:orange", "pN": "tab:green", "pQ": "black", "pR": "tab:red"}

fig, ax = plt.subplots(figsize=(9, 7.5))
for run, label in RUNS.items():
    path = os.path.join(HERE, f"curve-{run}.csv")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        rows = list(csv.DictReader(f))
    ax.plot([int(r["frames"]) / 1e6 for r in rows], [float(r["episode_return"]) for r in rows], label=label,
            lw=2.2 if run in BOLD else 0.9, color=COLOURS.get(run), alpha=1.0 if run in BOLD else 0.6)
ax.axhline(-20.7, color="grey", lw=0.8, ls="--", label="random (-20.7)")
ax.scatter([10], [16.7], marker="*", s=120, color="tab:purple", zorder=5, label="PPO2 at 10M frames (+16.7)")
ax.scatter([10], [-12.4], marker="^", s=70, color="tab:brown", zorder=5, label="A2C at 10M frames (-12.4)")
ax.set_xlabel("emulator frames (millions)")
ax.set_ylabel("training return (mean of last 100 episodes)")
ax.set_title("ALE/Pong-v5, atari-cpu preset, 2-core CPU (pA-pK AVX2, pL-pR AVX-512)")
ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))
fig.tight_layout()
for ext in ("png", "svg"):
    fig.savefig(os.path.join(HERE, f"curve.{ext}"), dpi=110)
print("wrote", os.path.join(HERE, "curve.png"))
