"""Argument helpers shared by subcommands: model selection and config overrides."""
from __future__ import annotations

import argparse

from s3ta_tf.config import AGENT_PRESETS, AGENT_VARIANTS, agent_config


def add_model_args(p: argparse.ArgumentParser, num_actions_required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--preset", default="paper", choices=sorted(AGENT_PRESETS),
                   help="configuration preset: 'paper' (SPEC numbers, 210x160 input), 'atari-cpu' (the "
                        "same agent narrowed, 64x64 input, to train Atari on a few CPU cores) or 'small' "
                        "(64x64 input, narrow layers, for tests and quick runs)")
    g.add_argument("--agent", default="attention", choices=AGENT_VARIANTS,
                   help="model variant (default: attention)")
    g.add_argument("--num-actions", type=int, required=num_actions_required, default=None,
                   help="size of the discrete action set (18 for the full Atari set)")
    g.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default=None,
                   help="compute precision; bfloat16 is mixed precision (float32 weights); auto: bfloat16 "
                        "only where the CPU computes it natively (default: the preset's, float32)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any AgentConfig field, e.g. --set num_heads=2 "
                        "--set observation_shape=84,84,3 (repeatable)")


def model_config_from_args(args):
    overrides = list(args.overrides)
    if getattr(args, "precision", None):
        from s3ta_tf.precision import resolve_precision
        overrides.append(f"precision={resolve_precision(args.precision)[0]}")
    return agent_config(args.preset, overrides)
