"""A classification run directory: what was trained, and how to rebuild it.

``root_dir/run.json`` (the run record, :mod:`s3ta_tf.run_record`, written atomically at the
start of training) records the config, the
dataset, its classes and the model variant; ``root_dir/checkpoints/`` holds
``tf.train.CheckpointManager`` checkpoints (TensorFlow writes each bundle to ``*.tempstate*``
files and renames them, and rewrites the ``checkpoint`` index file atomically, so a crash
mid-save leaves the previous checkpoint as the latest); ``root_dir/tensorboard/`` the
summaries.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import tensorflow as tf

from s3ta_tf.run_record import RUN_FILE, kind_name, read_record, record_path, write_record
from pipelines.classify.config import (ClassifyConfig, classify_config_from_dict,
                                     classify_config_to_dict)
from s3ta_tf.models.classifier import build_classifier

@dataclasses.dataclass
class RunInfo:
    config: ClassifyConfig
    dataset: str
    class_names: list
    variant: str
    video: bool
    seq_len: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> dict:
        return {"kind": "classification", "config": classify_config_to_dict(self.config), "dataset": self.dataset,
                "class_names": list(self.class_names), "variant": self.variant,
                "video": self.video, "seq_len": self.seq_len}

    @classmethod
    def from_json(cls, d: dict) -> "RunInfo":
        return cls(config=classify_config_from_dict(d["config"]), dataset=d["dataset"],
                   class_names=list(d["class_names"]), variant=d["variant"],
                   video=bool(d["video"]), seq_len=int(d["seq_len"]))


def save_run_info(root_dir: str, info: RunInfo) -> None:
    write_record(root_dir, info.to_json())


def classification_record(root_dir: str) -> dict:
    """The run record of ``root_dir``, {} if it has none; ValueError naming what it holds when
    it records another kind of run (checked before a classification run reads or writes)."""
    path = record_path(root_dir)
    if path is None:
        return {}
    record = read_record(root_dir)
    if "class_names" not in record:   # (records written before "kind" have no kind)
        raise ValueError(f"{root_dir} holds {kind_name(record)} ({os.path.basename(path)}), not a "
                         f"classification run; use a new --root-dir")
    return record


def load_run_info(root_dir: str) -> RunInfo:
    record = classification_record(root_dir)
    if not record:
        raise FileNotFoundError(f"{root_dir} is not a classification run directory: no "
                                f"classification {RUN_FILE} (create one with 's3ta classify train "
                                f"--root-dir {root_dir}')")
    return RunInfo.from_json(record)


def build_model(info: RunInfo):
    c = info.config
    return build_classifier(c.model, info.num_classes, c.data.image_size, variant=info.variant,
                            video=info.video, seq_len=info.seq_len)


def checkpoint_dir(root_dir: str) -> str:
    return os.path.join(root_dir, "checkpoints")


def load_classifier(root_dir: str, checkpoint: Optional[str] = None):
    """Rebuilds the run's classifier and restores the latest (or given) checkpoint's weights
    (the classifier's counterpart of :func:`s3ta_tf.checkpoints.load_agent_net`)."""
    info = load_run_info(root_dir)
    model = build_model(info)
    path = checkpoint or tf.train.latest_checkpoint(checkpoint_dir(root_dir))
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {checkpoint_dir(root_dir)}; train first")
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return info, model, path
