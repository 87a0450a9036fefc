"""``s3ta classify``: supervised S3TA through TensorFlow Datasets (SPEC §4).

Sub-commands: ``train``, ``eval``, ``export``, ``attention``. Heavy imports happen inside the
handlers so ``s3ta --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json

from pipelines.classify.config import CLASSIFY_PRESETS
from pipelines.commands.flags import (CLASSIFY_SECTIONS, add_no_progress, add_precision, add_root_dir, add_seed,
                                      add_set, add_split, check_at_least, check_output_dir, check_output_file)
from s3ta_tf.config.classifier import CLASSIFIER_VARIANTS

DATASET_HELP = ("dataset: 'imagenet2012' (TFDS builder, official archives in --manual-dir), "
                "'kinetics600' (the project's builder over clips and annotation CSVs in "
                "--manual-dir), 'image_folder' (tfds.ImageFolder over --manual-dir laid out as "
                "<split>/<label>/<image>), or any TFDS image dataset already prepared in "
                "--data-dir. Nothing is downloaded.")


def _add_data_args(p: argparse.ArgumentParser, need_dataset: bool) -> None:
    g = p.add_argument_group("data")
    if need_dataset:
        g.add_argument("--dataset", required=True, help=DATASET_HELP)
    g.add_argument("--data-dir", required=True,
                   help="directory where TFDS prepares/reads datasets (tfds data_dir)")
    g.add_argument("--manual-dir", default=None,
                   help="directory holding the source data (archives, clips + CSVs, image "
                        "folder); needed the first time a dataset is prepared")


def _add_root(p: argparse.ArgumentParser) -> None:
    add_root_dir(p, required=True, help="run directory: run.json, checkpoints/, tensorboard/, results",
                 env_var=None)


def register(sub) -> None:
    p = sub.add_parser(
        "classify", help="supervised S3TA classification through TFDS (train/eval/export/attention)",
        description="Supervised S3TA (SPEC §4): an image presented T times (ImageNet) or T "
                    "video frames (Kinetics-600), attention queries from the accumulated "
                    "logits. Run 's3ta classify SUB --help' for each sub-command.")
    cs = p.add_subparsers(dest="classify_command", metavar="SUB")
    cs.required = True
    for add in (_register_train, _register_eval, _register_export, _register_attention):
        add(cs)


def _register_train(cs) -> None:
    t = cs.add_parser("train", help="train (or resume) a classifier",
                      description="Train with SGD momentum, piecewise lr, weight decay and the "
                                  "T=4->8 curriculum of the preset; progress bar, TensorBoard "
                                  "in ROOT/tensorboard, atomic checkpoints in ROOT/checkpoints; "
                                  "rerunning with the same --root-dir resumes.")
    _add_data_args(t, need_dataset=True)
    _add_root(t)
    t.add_argument("--preset", default=None, choices=sorted(CLASSIFY_PRESETS),
                   help="configuration preset (default: kinetics for kinetics600, imagenet for "
                        "imagenet2012, small otherwise)")
    t.add_argument("--model", dest="variant", default="s3ta",
                   choices=CLASSIFIER_VARIANTS,
                   help="s3ta (default) or a baseline: plain ResNet, recurrent ResNet")
    t.add_argument("--seq-len", type=int, default=None,
                   help="T: times the image is presented (default: the preset's; video runs "
                        "use data.num_frames)")
    t.add_argument("--steps", type=int, default=None,
                   help="train until this global step (default: train.total_steps)")
    add_precision(t, extra=" (default: the preset's, float32)")
    add_set(t, CLASSIFY_SECTIONS, "--set train.batch_size=256 --set model.num_heads=2 "
                                  "--set data.image_size=128")
    add_seed(t, 0, "random seed (default 0)")
    add_no_progress(t)
    t.set_defaults(func=_train)


def _register_eval(cs) -> None:
    e = cs.add_parser("eval", help="top-1/top-5 accuracy on the validation split",
                      description="Restore the latest checkpoint of --root-dir and report "
                                  "top-1 and top-5 accuracy; also written to "
                                  "ROOT/eval_<split>.json.")
    _add_data_args(e, need_dataset=False)
    _add_root(e)
    add_split(e)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--max-examples", type=int, default=None, help="evaluate at most this many")
    add_no_progress(e)
    e.set_defaults(func=_eval)


def _register_export(cs) -> None:
    x = cs.add_parser("export", help="SavedModel taking JPEG/PNG bytes (or video frames)",
                      description="Write a SavedModel whose serving_default takes 'images' "
                                  "(string [B] of JPEG/PNG bytes; video runs: 'frames' uint8 "
                                  "[B,T,H,W,3]) and returns top-k classes, names, "
                                  "probabilities, logits and the per-step attention maps. "
                                  "Try it with saved_model_cli run.")
    _add_root(x)
    x.add_argument("--export-dir", required=True, help="new directory for the SavedModel")
    x.add_argument("--top-k", type=int, default=5, help="classes returned (default 5)")
    x.set_defaults(func=_export)


def _register_attention(cs) -> None:
    a = cs.add_parser("attention", help="picture of the attention over the T steps",
                      description="Draw each head's attention at every step on held-out "
                                  "examples (one row per head, one column per step).")
    _add_data_args(a, need_dataset=False)
    _add_root(a)
    a.add_argument("--out", required=True, help="output PNG path")
    add_split(a)
    a.add_argument("--num-examples", type=int, default=4)
    a.set_defaults(func=_attention)


_DEFAULT_PRESET = {"imagenet2012": "imagenet", "kinetics600": "kinetics"}


def _train(args) -> int:
    from pipelines.classify.train import train
    from pipelines.classify.config import classify_config
    from s3ta_tf.precision import precision_overrides
    overrides = list(args.overrides) + precision_overrides(args.precision)
    preset = args.preset or _DEFAULT_PRESET.get(args.dataset, "small")
    cfg = classify_config(preset, overrides, seq_len=args.seq_len)
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.seq_len is not None and args.seq_len < 1:
        raise ValueError(f"--seq-len must be >= 1, got {args.seq_len}")
    check_output_dir("--root-dir", args.root_dir)
    result = train(cfg, args.dataset, args.data_dir, args.root_dir, args.manual_dir,
                   variant=args.variant, steps=args.steps, seed=args.seed,
                   progress=not args.no_progress)
    print(json_text(result))
    stopped = result.get("stopped")
    return {"SIGINT": 130, "SIGTERM": 143}.get(stopped, 0)


def json_text(result: dict) -> str:
    """Valid JSON: a non-finite number (a diverged metric) is written as null."""
    import math
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
    return json.dumps(clean, indent=2, allow_nan=False)


def _eval(args) -> int:
    from pipelines.classify.evaluate import evaluate
    for flag, value in (("--batch-size", args.batch_size), ("--max-examples", args.max_examples)):
        if value is not None and not value >= 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    result = evaluate(args.root_dir, args.data_dir, args.manual_dir, args.split,
                      args.batch_size, args.max_examples, progress=not args.no_progress)
    print(json_text(result))
    return 0


def _export(args) -> int:
    from pipelines.classify.export import export_classifier
    check_at_least(("--top-k", args.top_k, 1))
    check_output_dir("--export-dir", args.export_dir)
    print(json.dumps(export_classifier(args.root_dir, args.export_dir, args.top_k), indent=2))
    return 0


def _attention(args) -> int:
    from pipelines.classify.attention import attention_picture
    check_output_file("--out", args.out, "PNG")
    print(json.dumps(attention_picture(args.root_dir, args.data_dir, args.out, args.manual_dir,
                                       args.split, args.num_examples), indent=2))
    return 0
