"""Model checkpoints: where an agent's weights and the config that rebuilds it live.

A checkpoint directory (written by the learner, or by :func:`save_checkpoint`) holds
TF checkpoint files from ``tf.train.CheckpointManager`` whose root object has the agent
under the key ``model``, and ``model_config.json`` (preset fields, variant, num_actions)
so the agent can be rebuilt without knowing its flags. TF writes checkpoint data under a
temporary name and renames it, and ``model_config.json`` is written with ``os.replace``,
so a crash never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from s3ta_tf.atomic_io import write_json_atomic
from s3ta_tf.config import AgentConfig, from_dict, to_dict
from s3ta_tf.models.agent import Agent, build_agent

MODEL_CONFIG_FILE = "model_config.json"


def save_model_config(directory: str, model: Agent) -> None:
    write_json_atomic(os.path.join(directory, MODEL_CONFIG_FILE),
                      {"config": to_dict(model.config), "variant": model.variant,
                       "num_actions": model.num_actions})


def model_from_config_file(directory: str) -> Agent:
    path = os.path.join(directory, MODEL_CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{directory}: no {MODEL_CONFIG_FILE}; expected a checkpoint directory "
                                f"written by 's3ta learner' or s3ta_tf.checkpoints.save_checkpoint")
    with open(path) as f:
        meta = json.load(f)
    return build_agent(from_dict(AgentConfig, meta["config"]), meta["variant"], meta["num_actions"])


def save_checkpoint(directory: str, model: Agent, step: int = 0) -> str:
    """Writes ``model`` (and its config) as a checkpoint in ``directory``; returns the prefix."""
    save_model_config(directory, model)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, max_to_keep=3)
    return manager.save(checkpoint_number=step)


def restore_model(model: Agent, directory: str) -> str:
    """Restores ``model``'s weights from the latest checkpoint in ``directory``; returns its path."""
    latest = tf.train.latest_checkpoint(directory)
    if latest is None:
        raise FileNotFoundError(f"{directory}: no TensorFlow checkpoint found (expected files "
                                f"'checkpoint', 'ckpt-N.index', 'ckpt-N.data-*')")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial().assert_existing_objects_matched()
    return latest


def load_agent(directory: str) -> Agent:
    """Rebuilds the agent from ``model_config.json`` and restores its latest checkpoint."""
    model = model_from_config_file(directory)
    restore_model(model, directory)
    return model
