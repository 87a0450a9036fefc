"""What the learner writes about each update, and the record other processes read of it.

An update's metrics are one flat dict (:meth:`pipelines.rl.learner.Learner.step`): names are
TensorBoard tags (``loss/total``, ``policy/lag``, ``gradient_norm/<part>``, ``episode_return``,
...), values plain numbers. :class:`LearnerLogger` writes whatever it is given, without a
list of names of its own:

* every ``summary_interval``-th dict: one TensorBoard scalar per entry (ROOT/summaries/learner),
  at the train step, except the fields only the record holds (:data:`NOT_SUMMARISED`);
* at most once per ``record_interval_secs``, and when the learner stops: the :class:`Progress`
  record, ``ROOT/learner.json``, replaced atomically.

:class:`Progress` is the one definition of that record: the learner writes it through this
module, and the launcher's progress line, ``s3ta train``'s last line and tests read it with
:func:`read_progress`. This module imports TensorFlow only to write summaries, so that readers
stay light.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional

from s3ta_tf.atomic_io import read_json_or_none, write_json_atomic

PROGRESS_FILE = "learner.json"
RECORD_INTERVAL_SECS = 1.0   # learner.json refresh (the launcher's progress line reads it)


@dataclasses.dataclass
class Progress:
    """``ROOT/learner.json``: how far a learner has got. ``levels`` and ``human_normalized``
    exist in multi-level runs only: each level's ``{"episodes", "mean_return"[,
    "human_normalized"]}``, and the aggregate of the ALE games' human-normalised returns
    (:func:`pipelines.evaluation.scores.aggregate`; None without one)."""
    time: float = 0.0
    train_step: int = 0
    frames: int = 0
    max_frames: Optional[int] = None
    frames_per_second: float = 0.0
    mean_return: Optional[float] = None   # over the last finished training episodes
    episodes: int = 0                     # how many episodes that mean is over
    nonfinite_updates: int = 0
    batch_wait_fraction: Optional[float] = None   # of the learner's time so far, spent waiting for data
    levels: Optional[dict] = None
    human_normalized: Optional[dict] = None

    @classmethod
    def of(cls, values: dict) -> "Progress":
        """The record's fields among ``values`` (a metrics dict, or a JSON record: other
        entries are ignored)."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})

    def to_json(self) -> dict:
        record = dataclasses.asdict(self)
        if self.levels is None:   # one level: no per-level part
            del record["levels"], record["human_normalized"]
        return record

    @property
    def capped_mean_hns(self) -> Optional[float]:
        """The headline of a multi-level Atari run: the capped mean human-normalised return."""
        return (self.human_normalized or {}).get("capped_mean")


# The record's fields that are not TensorBoard scalars: the step is the summaries' own step,
# the others are counts or nested entries (the mean return's scalar is ``episode_return``).
NOT_SUMMARISED = frozenset(f.name for f in dataclasses.fields(Progress)) - {
    "frames", "frames_per_second", "nonfinite_updates", "batch_wait_fraction"}


def read_progress(root_dir: str) -> Progress:
    """The learner's record of the run at ``root_dir`` (all zero before its first write)."""
    return Progress.of(read_json_or_none(os.path.join(root_dir, PROGRESS_FILE)) or {})


class LearnerLogger:
    """Writes the metrics of each update: see the module docstring."""

    def __init__(self, root_dir: str, summary_interval: int,
                 record_interval_secs: float = RECORD_INTERVAL_SECS):
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(os.path.join(root_dir, "summaries", "learner"))
        self.path = os.path.join(root_dir, PROGRESS_FILE)
        self.summary_interval, self.record_interval_secs = summary_interval, record_interval_secs
        self._writes, self._recorded_at = 0, 0.0

    def write(self, metrics: dict) -> None:
        self._writes += 1
        if self._writes % self.summary_interval == 0:
            self.write_summaries(metrics)
        if time.time() - self._recorded_at >= self.record_interval_secs:
            self.write_record(metrics)

    def write_summaries(self, metrics: dict) -> None:
        import tensorflow as tf

        with self.writer.as_default(step=metrics["train_step"]):
            for name, value in metrics.items():
                if name not in NOT_SUMMARISED and value is not None:
                    tf.summary.scalar(name, value)
        self.writer.flush()

    def write_record(self, values: dict) -> None:
        """``values``' :class:`Progress` fields, stamped with the time, to ``learner.json``."""
        write_json_atomic(self.path, Progress.of({**values, "time": time.time()}).to_json())
        self._recorded_at = time.time()
