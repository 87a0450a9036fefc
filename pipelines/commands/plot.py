"""``s3ta plot``: learning curves of training runs (PNG and SVG)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="learning curves (return and human-normalised return vs emulator frames) of runs",
        description="Reads each run's TensorBoard summaries (ROOT/summaries/learner) and draws the training "
                    "episode return (mean of the last 100 episodes) and, for ALE games, the human-normalised "
                    "return against emulator frames, runs overlaid and labelled. Writes FILE.png and FILE.svg "
                    "(and FILE-<run>.csv with --csv). Example: s3ta plot runs/pong-attention runs/pong-ff "
                    "--out docs/img/pong",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="training run root directories")
    p.add_argument("--out", default="curves.png", metavar="FILE", help="output path (.png; an .svg is written beside)")
    p.add_argument("--title", default=None, help="figure title (default: the environments)")
    p.add_argument("--csv", action="store_true", help="also write each run's curve data as CSV beside FILE")
    p.set_defaults(func=run)


def run(args) -> int:
    from pipelines.commands.flags import check_output_file
    from pipelines.evaluation.curves import csv_path, load_curves, plot_curves, save_curve_csv

    check_output_file("--out", args.out, "PNG")
    curves = load_curves(args.runs)
    paths = plot_curves(curves, args.out, args.title)
    if args.csv:
        for curve in curves:
            paths.append(csv_path(args.out, curve))
            save_curve_csv(curve, paths[-1])
    for p in paths:
        print(f"wrote {p}")
    return 0
