"""Model checkpoints: where an agent network's weights live, and the record that rebuilds it.

A checkpoint directory (written by the learner under ``ROOT/checkpoints``, or by
:func:`save_checkpoint`) holds TF checkpoint files from ``tf.train.CheckpointManager`` whose
root object has the network under the key ``model``. The network is rebuilt from the run's
record (:mod:`s3ta_tf.run_record`: ``run.json`` beside the checkpoint or in its parent), so
no flag has to be remembered. TF writes checkpoint data under a temporary name and renames
it, and the record is written with ``os.replace``, so a crash never leaves a half-written
checkpoint behind.
"""
from __future__ import annotations

import os

import tensorflow as tf

from s3ta_tf.config import AgentConfig, from_dict
from s3ta_tf.models.agent_net import AgentNet, build_agent_net
from s3ta_tf.run_record import RUN_FILE, agent_record, has_agent, read_record, record_path, write_record


def variables_finite(variables) -> bool:
    """True when every floating-point variable holds only finite values (checked before a
    checkpoint is written, so that a diverged model never replaces a good one)."""
    return all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in variables if v.dtype.is_floating)


def has_model_record(directory: str) -> bool:
    """True if ``directory`` (or its parent) has a run record that rebuilds an agent network."""
    if record_path(directory, search_parent=True) is None:
        return False
    try:
        return has_agent(read_record(directory, search_parent=True))
    except ValueError:
        return False


def model_from_record(directory: str) -> AgentNet:
    """The (untrained) network described by the run record of ``directory`` or its parent."""
    record = read_record(directory, search_parent=True)
    if not has_agent(record):
        raise ValueError(f"{record_path(directory, True)} records a {record['kind']} run, not an agent "
                         f"network (expected variant, num_actions and agent_config)")
    return build_agent_net(from_dict(AgentConfig, record["agent_config"]), record["variant"],
                           record["num_actions"])


def save_checkpoint(directory: str, model: AgentNet, step: int = 0) -> str:
    """Writes ``model`` as a checkpoint in ``directory``, with a ``run.json`` of kind ``model``
    that rebuilds it; returns the checkpoint prefix."""
    write_record(directory, {"kind": "model", **agent_record(model)})
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, max_to_keep=3)
    return manager.save(checkpoint_number=step)


def restore_model(model: AgentNet, directory: str) -> str:
    """Restores ``model``'s weights from the latest checkpoint in ``directory``; returns its path."""
    latest = tf.train.latest_checkpoint(directory)
    if latest is None:
        raise FileNotFoundError(f"{directory}: no TensorFlow checkpoint found (expected files "
                                f"'checkpoint', 'ckpt-N.index', 'ckpt-N.data-*')")
    try:
        tf.train.Checkpoint(model=model).restore(latest).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise ValueError(mismatch_message(model, latest, e)) from None
    return latest


def mismatch_message(model: AgentNet, checkpoint: str, error: BaseException) -> str:
    """One paragraph on why ``checkpoint`` does not fit ``model``: what the checkpoint holds
    (from its run record, when there is one) against what was built, and a variable that
    differs — instead of TensorFlow's dump of every tensor."""
    from s3ta_tf.config import to_dict

    saved = {name: shape for name, shape in tf.train.list_variables(checkpoint)
             if name.startswith("model/") and "OPTIMIZER_SLOT" not in name
             and name.endswith("VARIABLE_VALUE")}
    built = f"a {model.variant} network with {model.num_actions} actions ({len(model.variables)} variables)"
    text = f"the checkpoint {checkpoint} ({len(saved)} network variables) does not fit {built}"
    directory = os.path.dirname(checkpoint)
    if has_model_record(directory):
        record = read_record(directory, search_parent=True)
        theirs, mine = record["agent_config"], to_dict(model.config)
        fields = [f"{k}={theirs[k]!r} (built: {mine[k]!r})" for k in sorted(set(theirs) & set(mine))
                  if k != "precision" and json_equal(theirs[k]) != json_equal(mine[k])]
        text += (f"; its run record says a {record['variant']} network with {record['num_actions']} "
                 f"actions" + (", " + ", ".join(fields[:6]) if fields else ""))
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return (text + f". Build the model with the checkpoint's --preset/--agent/--set (or let its run.json "
            f"rebuild it). TensorFlow said: {first}")


def json_equal(value):
    return list(value) if isinstance(value, tuple) else value


def load_agent_net(directory: str) -> AgentNet:
    """Rebuilds the network from its run record and restores the latest checkpoint of
    ``directory`` (a learner's ``ROOT/checkpoints`` or a :func:`save_checkpoint` directory)."""
    model = model_from_record(directory)
    restore_model(model, directory)
    return model


load_agent = load_agent_net   # the older name


__all__ = ["RUN_FILE", "has_model_record", "model_from_record", "save_checkpoint", "restore_model",
           "load_agent_net", "load_agent"]
