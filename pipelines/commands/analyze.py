"""``s3ta analyze``: interpretability analyses of a trained agent (SPEC §3) and an HTML report."""
from __future__ import annotations

import argparse

from pipelines.analysis.config import ANALYSIS_PRESETS, POLICIES, AnalysisConfig, analysis_config
from pipelines.commands.flags import add_env, add_model_dir, add_seed, add_set, check_output_dir
from s3ta_tf.config.overrides import split_sections


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="run an agent and write attention overlays, what/where, saliency, probe and a report",
        description="Runs the agent in the environment for --steps steps and writes to --out: attention "
                    "overlay videos (MP4 + GIF, one row per head), what/where videos, per-head weight "
                    "distributions, Greydanus perturbation saliency (agent and optional baseline) on chosen "
                    "frames after a >200-frame warm-up, a novel-state sprite probe, per-head faithfulness "
                    "(attention vs saliency), per-head object scores on ALE games OCAtari knows (attention mass and "
                    "hit rate on the ball, player, enemies..., from the emulator's RAM; needs s3ta-tf[objects]) "
                    "and one self-contained report.html.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_dir(p, "an exported SavedModel ('s3ta export') or a run's checkpoint directory (the model is "
                     "rebuilt from the run's run.json)")
    add_env(p, "ALE/MsPacman-v5", "gymnasium environment id (ALE v5 ids such as ALE/MsPacman-v5)",
            metavar="ENV_ID")
    p.add_argument("--steps", type=int, default=300, help="agent steps to run and analyse")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--baseline-model", metavar="DIR", default=None,
                   help="a second model (e.g. the feed-forward baseline) whose saliency is computed on the "
                        "same frames")
    p.add_argument("--preset", default="paper", choices=sorted(ANALYSIS_PRESETS),
                   help="analysis preset ('small': short warm-up, coarse saliency grid, for quick looks)")
    add_set(p, "analysis (AnalysisConfig, pipelines/analysis/config.py)", "--set analysis.saliency_stride=10")
    p.add_argument("--saliency-frames", default=None, metavar="T[,T...]",
                   help="frame indices to perturb (each >= saliency_warmup); default: the first after the "
                        "warm-up")
    p.add_argument("--policy", choices=POLICIES, default=None, help="how actions are chosen (default: sample)")
    add_seed(p, None, "seed of the environment and the action sampling")
    p.add_argument("--sprite", default=None, metavar="PNG", help="sprite for the novel-state probe")
    p.add_argument("--probe-time", type=int, default=None, help="first step showing the sprite (default: steps/2)")
    p.add_argument("--probe-position", default=None, metavar="Y,X", help="top-left pixel of the sprite (default: centred in the frame)")
    p.add_argument("--resize-observations", action="store_true",
                   help="resize frames to the model's input shape instead of failing on a mismatch")
    p.add_argument("--sticky-actions", action="store_true", default=None,
                   help="ALE games: repeat the previous action with p = 0.25 per frame (as an agent trained "
                        "with train.sticky_actions=true saw them; = --set analysis.sticky_actions=true)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def config_from_args(args):
    overrides = split_sections({"analysis": AnalysisConfig}, args.overrides)["analysis"]
    for flag, field in (("saliency_frames", "saliency_frames"), ("policy", "policy"), ("seed", "seed"),
                        ("sprite", "probe_sprite"), ("probe_time", "probe_time"),
                        ("probe_position", "probe_position"), ("sticky_actions", "sticky_actions")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{field}={value}")
    return analysis_config(args.preset, overrides)


def read_sprite(path: str):
    """The ``--sprite`` image; a file that is not one is named in one line."""
    from pipelines.analysis.novel_state import load_sprite
    try:
        return load_sprite(path)
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError) as e:   # PIL's UnidentifiedImageError, a truncated or broken image
        raise ValueError(f"--sprite {path}: not a readable image ({str(e).splitlines()[0][:120]}); "
                         f"expected a PNG file") from None


def run(args) -> int:
    from pipelines.analysis.pipeline import analyze
    from pipelines.analysis.rollout import make_analysis_environment
    from pipelines.analysis.stepper import load_stepper

    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    check_output_dir("--out", args.out)
    cfg = config_from_args(args)
    sprite = read_sprite(cfg.probe_sprite) if cfg.probe_sprite else None
    stepper = load_stepper(args.model)
    baseline = load_stepper(args.baseline_model) if args.baseline_model else None

    def make_env():
        return make_analysis_environment(args.env, stepper, cfg.seed, args.resize_observations,
                                         sticky_actions=cfg.sticky_actions)

    make_env().close()   # fail fast on a bad env id or a model/env mismatch
    summary = analyze(stepper, make_env, args.steps, args.out, cfg, baseline=baseline, sprite=sprite,
                      progress=not args.quiet)
    if "objects" in summary:
        from pipelines.analysis.object_scores import head_lines, lag_lines
        print("attention on objects (lift: mass / area share; hit: top cell within "
              f"{summary['objects']['radius']} cell of the object):")
        for line in head_lines(summary["objects"]):
            print("  " + line)
        lines = lag_lines(summary["objects"])
        if lines:
            print("best lag per head (the object k steps later; k < 0: where it was):")
            for line in lines:
                print("  " + line)
    print(summary["files"]["report"])
    return 0
