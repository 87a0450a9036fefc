"""The command-line flags that several ``s3ta`` subcommands share, each declared once (an
``add_*`` helper, the command's default and help as parameters where they differ), with choices
taken from the config constants; the subcommand modules pick the helpers they need and declare
only the flags that are theirs alone.

Overrides have one grammar everywhere: ``--set section.field=value`` (repeatable), with the
sections of the command: ``model`` and ``train`` for the training services (``s3ta train``,
``learner``, ``actor``), ``model`` for ``describe``/``export``, ``analysis`` for ``analyze``,
``model``/``data``/``train`` for ``classify train``. The spellings removed in 0.2.0 (a bare
``field=value``, ``--train-set field=value``, ``S3TA_MODEL_SET``/``S3TA_TRAIN_SET``) are refused
with a one-line error naming the new spelling.

The training services read their defaults from environment variables too, so that docker
compose (or any launcher) can drive them without flags::

    S3TA_REPLAY_ADDRESS  host:port of the replay server          (default localhost:8000)
    S3TA_REPLAY_PORT     port the replay server listens on        (default 8000)
    S3TA_QUEUE_SIZE      trajectories held by the replay queue
    S3TA_ROOT_DIR        the run's root directory (learner, train, pbt; actors' episode logs)
    S3TA_ENV             environment id                          (default: the preset's)
    S3TA_PRESET          paper | atari-cpu | atari-cpu-fine | small  (default paper)
    S3TA_AGENT           model variant                           (default attention)
    S3TA_PRECISION       auto | float32 | bfloat16               (default auto)
    S3TA_ACTOR_ID        this actor's index                      (default: from host and pid)
    S3TA_SET             space-separated section.field=value overrides
    S3TA_TF_THREADS      TensorFlow intra-op threads
"""
from __future__ import annotations

import argparse
import math
import os

from agents.impala.config import TRAIN_PRESETS, TrainConfig
from s3ta_tf.config import AGENT_PRESETS, AGENT_VARIANTS, agent_config
from s3ta_tf.config.overrides import join_sections, split_sections
from s3ta_tf.precision import PRECISION_CHOICES, precision_overrides

DEFAULT_REPLAY_PORT = 8000
RUN_PRESETS = sorted(set(TRAIN_PRESETS) & set(AGENT_PRESETS))
RUN_SECTIONS = {"model": AGENT_PRESETS["paper"], "train": TrainConfig}
# Variables removed in 0.2.0 (refused when set): variable -> the section their items belonged to.
REMOVED_SET_VARS = {"S3TA_MODEL_SET": "model", "S3TA_TRAIN_SET": "train"}
PRESET_HELP = ("'paper' (SPEC numbers, 210x160 input), 'atari-cpu' (the same agent narrowed, 64x64 "
               "input, Adam: Atari on a few CPU cores; 8x8 attention maps), 'atari-cpu-fine' (atari-cpu "
               "with 16x16 attention maps, for attention you can check: about twice the FLOPs per step and half the "
               "frames/s; see results/pong-fine) or 'small' (64x64 input, narrow layers: tests, quick runs, the demo)")


def env(name: str, default=None):
    """The environment variable ``name``, or ``default`` when it is unset or empty."""
    value = os.environ.get(name)
    return default if value in (None, "") else value


# ---------------------------------------------------------------- overrides and precision
def add_set(p, sections: str, example: str, env_var: str | None = None) -> None:
    """The one ``--set section.field=value`` flag (``args.overrides``)."""
    default = env(env_var, "").split() if env_var else []
    p.add_argument("--set", dest="overrides", action="append", default=default,
                   metavar="SECTION.FIELD=VALUE",
                   help=f"override a config field, sections: {sections}; e.g. {example} (repeatable"
                        + (f"; env {env_var}, space-separated" if env_var else "") + ")")


def add_precision(p, default=None, choices=PRECISION_CHOICES, env_var: str | None = None,
                  extra: str = "") -> None:
    p.add_argument("--precision", choices=choices,
                   default=env(env_var, default) if env_var else default,
                   help="compute precision: bfloat16 is mixed precision (bf16 compute, float32 weights)"
                        + ("; auto = bfloat16 only where the CPU computes it natively (AMX or AVX-512 "
                           "BF16), else float32" if "auto" in choices else "")
                        + extra + (f" (env {env_var})" if env_var else ""))


# ---------------------------------------------------------------- one agent network
def add_preset(p, default, help: str, choices=RUN_PRESETS) -> None:
    """``--preset``: the model (and training) preset of an RL agent."""
    p.add_argument("--preset", default=default, choices=choices, help=help)


def add_agent(p, default="attention", help: str = "model variant (default: attention)") -> None:
    """``--agent``: the model variant."""
    p.add_argument("--agent", default=default, choices=AGENT_VARIANTS, help=help)


def add_model_args(p: argparse.ArgumentParser, num_actions_required: bool = True) -> None:
    """``describe``/``export``: which network (preset, variant, actions, precision, overrides)."""
    g = p.add_argument_group("model")
    add_preset(g, "paper", "configuration preset: " + PRESET_HELP, choices=sorted(AGENT_PRESETS))
    add_agent(g)
    g.add_argument("--num-actions", type=int, required=num_actions_required, default=None,
                   help="size of the discrete action set (18 for the full Atari set)")
    add_precision(g, extra=" (default: the preset's, float32)")
    add_set(g, "model", "--set model.num_heads=2 --set model.observation_shape=84,84,3")


def model_config_from_args(args):
    """The AgentConfig of :func:`add_model_args` flags."""
    items = list(args.overrides) + precision_overrides(getattr(args, "precision", None))
    return agent_config(args.preset, split_sections({"model": agent_config(args.preset)}, items)["model"])


def build_model_from_args(args, num_actions: int):
    """The network of :func:`add_model_args` flags, once its size is known to fit in memory."""
    from s3ta_tf import build_agent_net
    cfg = model_config_from_args(args)
    check_fits_in_memory(cfg, args.agent, num_actions)
    return build_agent_net(cfg, args.agent, num_actions)


def check_fits_in_memory(cfg, variant: str, num_actions: int) -> None:
    """Refuses a model whose one step at batch 1 needs more memory than the machine has free
    (a lower bound from the config alone, :func:`s3ta_tf.flops.step_memory_bytes`), instead of
    TensorFlow's out-of-memory traceback."""
    from s3ta_tf.flops import step_memory_bytes
    need, free = step_memory_bytes(cfg, variant, num_actions), available_memory_bytes()
    if free is not None and need > free:
        raise ValueError(f"model.observation_shape {','.join(map(str, cfg.observation_shape))}: one step at "
                         f"batch 1 needs at least {need / 2**30:,.1f} GiB, more than the {free / 2**30:,.1f} GiB "
                         f"of memory available; expected a smaller shape (the presets use 64,64,3 and 210,160,3)")


def available_memory_bytes():
    """Memory this process may still use: the kernel's MemAvailable, lowered to the cgroup's
    limit when there is one; None where neither can be read."""
    free = None
    try:
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f, open("/sys/fs/cgroup/memory.current") as g:
            limit = f.read().strip()
            if limit != "max":
                left = int(limit) - int(g.read())
                free = left if free is None else min(free, left)
    except (OSError, ValueError):
        pass
    return free


# ---------------------------------------------------------------- the training services
def add_run_args(p: argparse.ArgumentParser) -> None:
    """Model and training configuration: --env --preset --agent --precision --set."""
    g = p.add_argument_group("run configuration (must be the same for the learner and all actors)")
    add_env(g, env("S3TA_ENV"), dest="env_id",
            help="environment id: an ALE v5 id such as ALE/Pong-v5, or a MiniGrid id such as "
                 "MiniGrid-Empty-5x5-v0; several ids separated by commas, or a named set "
                 "(atari57, atari-easy, atari-figures), train one agent on all of them "
                 "(multi-level: actor i plays level i mod the number of levels; ALE games use "
                 "the full 18 actions) (env S3TA_ENV; default: the preset's, "
                 f"{TRAIN_PRESETS['paper'].env_id} for paper)")
    add_preset(g, env("S3TA_PRESET"), f"model and training preset: {PRESET_HELP} (env S3TA_PRESET; default paper)")
    add_agent(g, env("S3TA_AGENT", "attention"), "model variant (env S3TA_AGENT)")
    add_precision(g, default="auto", env_var="S3TA_PRECISION",
                  extra="; the choice is logged and recorded in run.json")
    add_set(g, "model (AgentConfig), train (TrainConfig)",
            "--set model.observation_shape=40,40,3 --set train.learning_rate=1e-3", env_var="S3TA_SET")
    g.add_argument("--train-set", action=_Removed, help=argparse.SUPPRESS,
                   new_spelling="--set train.FIELD=VALUE")


class _Removed(argparse.Action):
    """A flag removed in 0.2.0: kept out of --help, and refused, naming its new spelling, if given."""

    def __init__(self, option_strings, dest, new_spelling: str, **kwargs):
        super().__init__(option_strings, argparse.SUPPRESS, nargs="?", default=argparse.SUPPRESS, **kwargs)
        self.new_spelling = new_spelling

    def __call__(self, parser, namespace, values, option_string=None):
        parser.exit(2, f"{parser.prog}: error: {option_string} was removed in 0.2.0; use {self.new_spelling}\n")


def refuse_removed_variables() -> None:
    """ValueError naming S3TA_SET when a variable removed in 0.2.0 (:data:`REMOVED_SET_VARS`) is set."""
    for var, section in REMOVED_SET_VARS.items():
        if env(var):
            raise ValueError(f"{var} was removed in 0.2.0; use S3TA_SET with {section}.FIELD=VALUE items")


def run_overrides(args) -> list:
    """All ``section.field=value`` overrides of the run flags, validated against the sections."""
    refuse_removed_variables()
    return join_sections(split_sections(RUN_SECTIONS, args.overrides))


def run_spec_from_args(args):
    """The :class:`agents.impala.builder.RunSpec` of :func:`add_run_args` flags."""
    from agents.impala.builder import RunSpec
    env_id = args.env_id
    if env_id:   # several ids, or a named set (atari57, atari-easy, ...): a multi-level run
        from pipelines.evaluation.scores import expand_env_list
        env_id = ",".join(expand_env_list(env_id))
    return RunSpec.from_args(args.preset or "paper", args.agent, run_overrides(args),
                             env_id=env_id, precision=args.precision)


def add_replay_address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replay-address", default=env("S3TA_REPLAY_ADDRESS", f"localhost:{DEFAULT_REPLAY_PORT}"),
                   help="host:port of the replay server (env S3TA_REPLAY_ADDRESS; default "
                        f"localhost:{DEFAULT_REPLAY_PORT})")


def add_replay_server(p: argparse.ArgumentParser) -> None:
    """``s3ta replay``: --port and --queue-size."""
    queue_default = TrainConfig().queue_size
    p.add_argument("--port", type=int, default=int(env("S3TA_REPLAY_PORT", DEFAULT_REPLAY_PORT)),
                   help=f"port to listen on (env S3TA_REPLAY_PORT; default {DEFAULT_REPLAY_PORT})")
    p.add_argument("--queue-size", type=int, default=int(env("S3TA_QUEUE_SIZE", queue_default)),
                   help=f"trajectories held by the queue (env S3TA_QUEUE_SIZE; default {queue_default}; at "
                        "least the learner's batch size)")
    p.add_argument("--reuse", type=int, default=int(env("S3TA_REPLAY_REUSE", 1)),
                   help="times the learner samples each trajectory (env S3TA_REPLAY_REUSE; default 1: a "
                        "FIFO queue, each sampled once; K > 1: sampled K times, uniformly among the newest "
                        "--queue-size; set it to the run's train.replay_reuse)")
    p.add_argument("--min-size", type=int, default=int(env("S3TA_REPLAY_MIN_SIZE", 1)),
                   help="with --reuse > 1: trajectories stored before the learner may sample, and about how "
                        "far actors may run ahead (env S3TA_REPLAY_MIN_SIZE; default 1; use the learner's "
                        "batch size)")


def add_root_dir(p: argparse.ArgumentParser, required: bool,
                 help: str = "the run's root directory: run.json, checkpoints, exports, summaries, episode logs",
                 env_var: str | None = "S3TA_ROOT_DIR") -> None:
    """``--root-dir``; its default is ``env_var`` (then it is not required) unless that is None."""
    default = env(env_var) if env_var else None
    p.add_argument("--root-dir", default=default, required=required and default is None,
                   help=help + (f" (env {env_var})" if env_var else ""))


def add_max_frames(p: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    p.add_argument("--max-frames", type=int, default=None, required=required, help=help)


def add_max_steps(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--max-steps", type=int, default=None, help=help)


def add_fine_tune(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fine-tune-from", default=None, metavar="DIR",
                   help="start a new run (a --root-dir without checkpoints) from the weights of another "
                        "run's latest checkpoint (its root or checkpoints directory): e.g. the same agent "
                        "on another game. Recorded in run.json; ignored when the root already has "
                        "checkpoints (it resumes)")


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


# ---------------------------------------------------------------- running a trained agent
def add_model_dir(p: argparse.ArgumentParser, help: str) -> None:
    """``--model DIR``: a trained agent (``analyze``, ``evaluate``)."""
    p.add_argument("--model", required=True, metavar="DIR", help=help)


def add_env(p, default, help: str, metavar: str | None = None, dest: str | None = None) -> None:
    """``--env``: the environment id(s) (``args.env``, or ``dest``)."""
    p.add_argument("--env", default=default, help=help,
                   **({"metavar": metavar} if metavar else {}), **({"dest": dest} if dest else {}))


def add_num_envs(p: argparse.ArgumentParser, default, help: str) -> None:
    p.add_argument("--num-envs", type=int, default=default, help=help)


def add_seed(p: argparse.ArgumentParser, default, help: str) -> None:
    p.add_argument("--seed", type=int, default=default, help=help)


def add_no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------- values and output paths
def check_finite_numbers(args) -> None:
    """A number flag given NaN or inf means nothing (``--stop-at-return nan`` is never reached):
    ValueError naming the flag. Run on every command's flags before it starts."""
    for name, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number, got {value}")


def check_at_least(*flags) -> None:
    """``(flag, value, low)`` triples: ValueError for the first value below its ``low`` (None:
    not given)."""
    for flag, value, low in flags:
        if value is not None and not value >= low:
            raise ValueError(f"{flag} must be >= {low}, got {value}")


def check_output_dir(flag: str, path: str) -> None:
    """An output directory must be one, or be creatable: ValueError naming ``flag`` when
    ``path`` is an existing file, lies under a file or cannot be written. Checked before any
    work, so that nothing is computed for results that could not be kept; nothing is created."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} {path} is an existing file; expected a directory (new or existing)")
    _check_writable_ancestor(flag, path)


def check_output_file(flag: str, path: str, example: str) -> None:
    """An output file's path must not be a directory, and its directory must be (or become)
    one; ``example`` is a name to suggest (ValueError naming ``flag``)."""
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a directory; expected a {example} file path such as "
                         f"{os.path.join(path, 'picture.' + example.lower())}")
    _check_writable_ancestor(flag, path, os.path.dirname(os.path.abspath(path)))


def _check_writable_ancestor(flag: str, path: str, directory: str | None = None) -> None:
    """The nearest existing ancestor of ``directory`` (default ``path``) must be a directory
    this process can write into."""
    ancestor = os.path.abspath(directory or path)
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"{flag} {path} lies under a file ({ancestor}); expected a path of directories")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path} cannot be written ({ancestor}: permission denied)")


# ---------------------------------------------------------------- the classifiers
CLASSIFY_SECTIONS = "model, data, train"


def add_split(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default=None, help="split (default: validation, else test)")
