"""Command-line arguments shared by the training services, with environment-variable defaults
so that docker compose (or any launcher) can drive them without flags.

    S3TA_REPLAY_ADDRESS  host:port of the replay server          (default localhost:8000)
    S3TA_REPLAY_PORT     port the replay server listens on        (default 8000)
    S3TA_ROOT_DIR        the run's root directory (learner; actors' episode logs)
    S3TA_ENV             environment id                          (default: the preset's)
    S3TA_PRESET          paper | small                           (default paper)
    S3TA_AGENT           model variant                           (default attention)
    S3TA_ACTOR_ID        this actor's index                      (default 0)
    S3TA_MODEL_SET / S3TA_TRAIN_SET   space-separated FIELD=VALUE overrides
"""
from __future__ import annotations

import argparse
import os

from s3ta_tf.config import AGENT_VARIANTS
from s3ta_tf.config.training import TRAIN_PRESETS

from pipelines.rl.run_spec import RunSpec

DEFAULT_REPLAY_PORT = 8000


def env(name: str, default=None):
    value = os.environ.get(name)
    return default if value in (None, "") else value


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Model and training configuration: --env --preset --agent --set --train-set --precision."""
    g = p.add_argument_group("run configuration (must be the same for the learner and all actors)")
    g.add_argument("--env", dest="env_id", default=env("S3TA_ENV"),
                   help="environment id: an ALE v5 id such as ALE/Pong-v5, or a MiniGrid id such as "
                        "MiniGrid-Empty-5x5-v0 (env S3TA_ENV; default: the preset's, "
                        f"{TRAIN_PRESETS['paper'].env_id} for paper)")
    g.add_argument("--preset", default=env("S3TA_PRESET"),
                   choices=sorted(TRAIN_PRESETS),
                   help="model and training preset: 'paper' (SPEC numbers), 'atari-cpu' (Atari on a few "
                        "CPU cores: 64x64 input, narrowed agent, Adam) or 'small' (tests, quick runs, the demo) "
                        "(env S3TA_PRESET; default paper)")
    g.add_argument("--agent", default=env("S3TA_AGENT", "attention"),
                   choices=AGENT_VARIANTS, help="model variant (env S3TA_AGENT)")
    g.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default=env("S3TA_PRECISION", "auto"),
                   help="compute precision: auto = bfloat16 mixed precision only where the CPU computes bf16 "
                        "natively (AMX or AVX-512 BF16), else float32; the choice is logged and recorded in "
                        "config.json (env S3TA_PRECISION)")
    g.add_argument("--set", dest="model_overrides", action="append",
                   default=env("S3TA_MODEL_SET", "").split(),
                   metavar="FIELD=VALUE",
                   help="override an AgentConfig field, e.g. --set observation_shape=40,40,3 (repeatable; "
                        "env S3TA_MODEL_SET, space-separated)")
    g.add_argument("--train-set", dest="train_overrides", action="append",
                   default=env("S3TA_TRAIN_SET", "").split(),
                   metavar="FIELD=VALUE",
                   help="override a TrainConfig field, e.g. --train-set learning_rate=1e-3 "
                        "(repeatable; env S3TA_TRAIN_SET, space-separated)")


def run_spec_from_args(args) -> RunSpec:
    return RunSpec.from_args(args.preset or "paper", args.agent, args.model_overrides, args.train_overrides,
                             env_id=args.env_id, precision=args.precision)


def add_replay_address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replay-address", default=env("S3TA_REPLAY_ADDRESS", f"localhost:{DEFAULT_REPLAY_PORT}"),
                   help="host:port of the replay server (env S3TA_REPLAY_ADDRESS; default "
                        f"localhost:{DEFAULT_REPLAY_PORT})")


def add_root_dir(p: argparse.ArgumentParser, required: bool) -> None:
    default = env("S3TA_ROOT_DIR")
    p.add_argument("--root-dir", default=default, required=required and default is None,
                   help="the run's root directory: config.json, checkpoints, exports, summaries, "
                        "episode logs (env S3TA_ROOT_DIR)")


def add_threads(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument("--tf-threads", type=int, default=int(env("S3TA_TF_THREADS", default)),
                   help=f"TensorFlow intra-op threads (0: all cores; env S3TA_TF_THREADS; default {default})")


def configure_threads(threads: int) -> None:
    import tensorflow as tf

    if threads < 0:
        raise ValueError(f"--tf-threads must be >= 0, got {threads}")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
