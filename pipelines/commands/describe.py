"""``s3ta describe``: parameter counts per part and output shapes of a model."""
from __future__ import annotations

import json

from pipelines.commands.flags import add_model_args, build_model_from_args


def register(sub):
    p = sub.add_parser("describe", help="print a model's parameter counts and output shapes",
                       description="Build a model from a preset and print the parameter count of each "
                                   "part (vision core, spatial basis, query network, attention, answer "
                                   "processor, policy core, heads), the total, and the output shapes. "
                                   "Example: s3ta describe --preset paper --agent attention --num-actions 18 --json")
    add_model_args(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from s3ta_tf.describe import describe, format_description
    if args.num_actions < 1:
        raise ValueError(f"--num-actions must be a positive integer, got {args.num_actions}")
    desc = describe(build_model_from_args(args, args.num_actions))
    print(json.dumps(desc, indent=2) if args.json else format_description(desc))
    return 0
