"""Model checkpoints: where an agent network's weights live, and the record that rebuilds it.

A checkpoint directory (written by the learner under ``ROOT/checkpoints``, or by
:func:`save_checkpoint`) holds TF checkpoint files from ``tf.train.CheckpointManager`` whose
root object has the network under the key ``model``. The network is rebuilt from the run's
record (:mod:`s3ta_tf.run_record`: ``run.json`` beside the checkpoint or in its parent), so
no flag has to be remembered. TF writes checkpoint data under a temporary name and renames
it, and the record is written with ``os.replace``, so a crash never leaves a half-written
checkpoint behind — on a file system that keeps renames atomic. A disk that fills up, a machine
killed mid-write elsewhere, or files deleted by hand can still leave the latest checkpoint
unreadable while the ``checkpoint`` state file names it: every restore
(:func:`newest_readable_checkpoint`) then uses the newest checkpoint that reads, in one line
saying which one was skipped and why, and refuses in one line naming every file when none does.
"""
from __future__ import annotations

import glob
import os
from typing import Callable, List, Optional

import tensorflow as tf

from s3ta_tf.config import AgentConfig, from_dict
from s3ta_tf.config.overrides import warn
from s3ta_tf.models.agent_net import AgentNet, build_agent_net
from s3ta_tf.run_record import RUN_FILE, agent_record, has_agent, read_record, record_path, write_record

OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"   # the checkpoint's tensor that every restore reads first


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


def checkpoint_paths(directory: str) -> List[str]:
    """The checkpoint prefixes (``DIR/ckpt-N``) the ``checkpoint`` state file of ``directory``
    names, newest first, whether or not their files exist; [] when it names none."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None or not state.model_checkpoint_path:
        return []
    paths = [state.model_checkpoint_path] + list(reversed(state.all_model_checkpoint_paths))
    return list(dict.fromkeys(paths))   # (TensorFlow has already joined relative names to ``directory``)


def is_weight(key: str) -> bool:
    """A checkpoint key of the network's weights (``model/...``, not an optimiser slot)."""
    return key.startswith("model/") and "OPTIMIZER_SLOT" not in key


def checkpoint_fault(prefix: str, weights_only: bool = False) -> Optional[str]:
    """Why the checkpoint ``prefix`` cannot be restored, or None when it reads: a missing file,
    an index TensorFlow cannot open, or a tensor that cannot be read from the data file (cut
    short, or failing its checksum). The tensors are read (the index alone still opens when the
    data file was cut short): all of them, or with ``weights_only`` those a restore of the
    network alone needs (a damaged optimiser slot does not stop an export)."""
    name = os.path.basename(prefix)
    if not os.path.exists(prefix + ".index"):
        return f"{name}.index is missing"
    shards = sorted(glob.glob(glob.escape(prefix) + ".data-*"))
    if not shards:
        return f"{name}.data-* is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as e:  # noqa: BLE001 (TF raises OpError, RuntimeError or ValueError by damage)
        return f"{name}.index is damaged ({first_line(e)})"
    data = os.path.basename(shards[0]) if len(shards) == 1 else f"{name}.data-*"
    keys = [k for k in reader.get_variable_to_shape_map() if not weights_only or k == OBJECT_GRAPH or is_weight(k)]
    for key in sorted(keys):
        try:
            reader.get_tensor(key)
        except (IndexError, tf.errors.OutOfRangeError):
            size = sum(os.path.getsize(s) for s in shards)
            return f"{data} is cut short ({size:,} bytes; {key} lies beyond its end)"
        except Exception as e:  # noqa: BLE001 (a checksum mismatch, a missing shard, ...)
            return f"{data} is damaged ({first_line(e)})"
    return None


def newest_readable_checkpoint(directory: str, say: Callable[[str], None] = warn,
                               weights_only: bool = False) -> Optional[str]:
    """The newest checkpoint of ``directory`` that reads (None if the directory names none; see
    :func:`checkpoint_fault` for ``weights_only``). Skipped ones are told to ``say`` (default: a
    warning on stderr) in one line with the reason; ValueError naming every checkpoint and its
    fault if none reads."""
    paths, skipped = checkpoint_paths(directory), []
    for path in paths:
        fault = checkpoint_fault(path, weights_only)
        if fault is None:
            if skipped:
                say(f"{skipped_text(skipped)}; using {path}, the newest checkpoint that reads")
            return path
        skipped.append((os.path.basename(path), fault))
    if paths:
        faults = ", ".join(f"{name} ({fault})" for name, fault in skipped)
        raise ValueError(f"no checkpoint in {directory} can be read: {faults}. Restore the files from a "
                         f"backup, or move {directory} away to train afresh")
    return None


def skipped_text(skipped) -> str:
    """``[(name, fault), ...]`` as one clause."""
    if len(skipped) == 1:
        return f"checkpoint {skipped[0][0]} skipped ({skipped[0][1]})"
    return "checkpoints skipped: " + ", ".join(f"{name} ({fault})" for name, fault in skipped)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def restore_model(model: AgentNet, directory: str, say: Callable[[str], None] = warn) -> str:
    """Restores ``model``'s weights from the newest checkpoint in ``directory`` that reads
    (:func:`newest_readable_checkpoint`); returns its path."""
    latest = newest_readable_checkpoint(directory, say, weights_only=True)
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
             if is_weight(name) and name.endswith("VARIABLE_VALUE")}
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
    return (text + f". Build the model with the checkpoint's --preset/--agent/--set (or let its run.json "
            f"rebuild it). TensorFlow said: {first_line(error)}")


def json_equal(value):
    return list(value) if isinstance(value, tuple) else value


def load_agent_net(directory: str) -> AgentNet:
    """Rebuilds the network from its run record and restores the newest checkpoint that reads of
    ``directory`` (a learner's ``ROOT/checkpoints`` or a :func:`save_checkpoint` directory)."""
    model = model_from_record(directory)
    restore_model(model, directory)
    return model


def __getattr__(name):
    if name == "load_agent":   # removed in 0.2.0
        raise AttributeError("s3ta_tf.checkpoints.load_agent was removed in 0.2.0; use load_agent_net")
    raise AttributeError(f"module 's3ta_tf.checkpoints' has no attribute {name!r}")


__all__ = ["RUN_FILE", "has_model_record", "model_from_record", "save_checkpoint", "checkpoint_paths",
           "checkpoint_fault", "newest_readable_checkpoint", "restore_model", "load_agent_net"]
