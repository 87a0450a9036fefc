"""The run record: one ``run.json`` per run directory, saying what was trained.

Every run of s3ta-tf writes exactly one record, ``run.json`` in its root directory (written
atomically): ``s3ta train``/``s3ta learner`` (``"kind": "rl"``: the model, the training config,
the environment), ``s3ta classify train`` (``"kind": "classification"``) and
:func:`s3ta_tf.checkpoints.save_checkpoint` (``"kind": "model"``). Records that hold an agent
network share its part, enough to rebuild it without knowing any flag::

    {"kind": ..., "variant": "attention", "num_actions": 6, "agent_config": {...}, ...}

A checkpoint directory finds its record beside it or in its parent (``ROOT/checkpoints`` →
``ROOT/run.json``). Runs written before this layout kept ``config.json`` (RL root) and
``checkpoints/model_config.json``; both are still read.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from s3ta_tf.atomic_io import write_json_atomic

RUN_FILE = "run.json"
LEGACY_FILES = ("config.json", "model_config.json")  # read, never written
KINDS = ("rl", "classification", "model")
KIND_NAMES = {"rl": "an RL training run", "classification": "a classification run", "model": "a saved agent network"}


def write_record(directory: str, record: dict) -> str:
    """Writes ``directory/run.json`` atomically; ``record["kind"]`` must be one of KINDS."""
    if record.get("kind") not in KINDS:
        raise ValueError(f"run record kind must be one of {KINDS}, got {record.get('kind')!r}")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, RUN_FILE)
    write_json_atomic(path, record)
    return path


def record_path(directory: str, search_parent: bool = False) -> Optional[str]:
    """The record of ``directory`` (``run.json``, else a legacy file), or with ``search_parent``
    of its parent when ``directory`` is a run's ``checkpoints``; None if there is none."""
    parent = os.path.dirname(os.path.abspath(directory))
    # Only a learner's ROOT/checkpoints looks into its parent: another directory's parent may
    # hold an unrelated config.json.
    search_parent = search_parent and os.path.basename(os.path.abspath(directory)) == "checkpoints"
    places = [directory] + ([parent] if search_parent else [])
    for place in places:
        for name in (RUN_FILE,) + LEGACY_FILES:
            path = os.path.join(place, name)
            if os.path.isfile(path):
                return path
    return None


def read_record(directory: str, search_parent: bool = False) -> dict:
    """The record of ``directory`` (see :func:`record_path`) as a dict. A legacy
    ``model_config.json`` (``{"config": ...}``) is returned in the current form."""
    path = record_path(directory, search_parent)
    if path is None:
        raise FileNotFoundError(f"{directory}: no {RUN_FILE}; expected the --root-dir of a run (or "
                                f"its checkpoints directory), or a directory written by "
                                f"s3ta_tf.checkpoints.save_checkpoint")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable run record ({e})") from None
    if not isinstance(record, dict):
        got = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(record), "a number")
        raise ValueError(f"{path}: not a run record (expected a JSON object, got {got})")
    if os.path.basename(path) == "model_config.json":
        record = {"kind": "model", "variant": record["variant"], "num_actions": record["num_actions"],
                  "agent_config": record["config"]}
    # Records written before "kind": an RL run's config.json, or a classification run's run.json.
    record.setdefault("kind", "classification" if "class_names" in record else "rl")
    return record


def kind_name(record: dict) -> str:
    """What a record's run is, in words ("an RL training run", ...)."""
    return KIND_NAMES.get(record.get("kind"), f"a {record.get('kind')} run")


def has_agent(record: dict) -> bool:
    return all(k in record for k in ("variant", "num_actions", "agent_config"))


def agent_record(model) -> dict:
    """The part of a record that rebuilds an agent network."""
    from s3ta_tf.config import to_dict
    return {"variant": model.variant, "num_actions": int(model.num_actions),
            "agent_config": to_dict(model.config)}
