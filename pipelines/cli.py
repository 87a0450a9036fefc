"""The ``s3ta`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets
``func`` (called with the parsed args; returns an exit code). Building the parser imports every
module listed in ``SUBCOMMANDS``; the modules keep TensorFlow, Reverb, the environments and the
plotting libraries out of their top level and import them inside the functions that run, so
``s3ta --help`` loads only argparse, NumPy and the config dataclasses (tested in
tests/test_layout.py), and a missing optional dependency fails only the subcommand that needs it.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import types

# Before anything imports TensorFlow: hide its C++ INFO/WARNING/ERROR start-up noise on CPU-only
# machines (e.g. "Unable to register cuDNN factory"); real failures still raise Python errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# oneDNN's kernels for TensorFlow's CPU ops. TensorFlow turns them on by itself only on CPUs with
# AVX-512 or AMX; on an AVX2-only CPU they make the Atari learner's update 2.2x faster (the small
# convolutions' gradients; docs/PERFORMANCE.md). TF_ENABLE_ONEDNN_OPTS=0 turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# tf_agents imports the old `gym`, whose package prints a banner about gymnasium and NumPy 2 on
# stderr at import; s3ta uses gymnasium, so the banner would only precede every message.
sys.modules.setdefault("gym_notices.notices", types.SimpleNamespace(notices={}))

# (module, one-line summary); the module registers the subcommand(s) it names.
SUBCOMMANDS = [
    ("pipelines.commands.describe", "describe"),
    ("pipelines.commands.export", "export"),
    ("pipelines.commands.bench", "bench"),
    ("pipelines.commands.replay", "replay"),
    ("pipelines.commands.actor", "actor"),
    ("pipelines.commands.learner", "learner"),
    ("pipelines.commands.train", "train"),
    ("pipelines.commands.actors", "actors"),
    ("pipelines.commands.analyze", "analyze"),
    ("pipelines.commands.evaluate", "evaluate"),
    ("pipelines.commands.plot", "plot"),
    ("pipelines.commands.classify", "classify"),
    ("pipelines.commands.pbt", "pbt"),
]


from pipelines.errors import CliError, DivergenceError  # noqa: F401 (DivergenceError re-exported)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3ta",
        description="S3TA attention agents: describe, export, train, analyse and classify. "
                    "Run 's3ta SUBCOMMAND --help' for the options of each.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    sub.required = True
    for module_name, _ in SUBCOMMANDS:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv=None) -> int:
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # TF's Python warnings are noise here
    from pipelines.commands.flags import check_finite_numbers
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_finite_numbers(args)
        return int(args.func(args) or 0)
    except (CliError, ValueError, FileNotFoundError) as e:
        parser.exit(getattr(e, "exit_code", 2), f"s3ta {args.command}: error: {e}\n")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
