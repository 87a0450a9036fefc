"""The Reverb side of the V-trace agent: the replay tables, what one stored item holds, the
actors' writer (the adder) and the learner's readers (the dataset).

Reverb tables on the replay server (:func:`make_tables`):

* ``trajectories``: a FIFO queue of items (or, with ``reuse`` K > 1, a table from which each
  item is sampled K times, see :func:`make_tables`), each one trajectory of ``T + 1`` steps
  (``T`` = unroll length). Consecutive trajectories of an environment overlap by one step:
  the last (bootstrap) step of one is the first step of the next, so windows start every
  ``T`` steps. Each item is a dict with the per-step fields of
  :class:`Experience` (``[T + 1, ...]``) and ``initial_state``, the
  policy's recurrent state before the item's first step (no time axis).
* ``variables``: one item, ``[version (int64), *model.variables]``, pushed by the learner.

An item's per-step columns reference the writer's history; the state column is only
appended at the steps that begin a window, so the recurrent state is stored once per
trajectory rather than once per step.
"""
from __future__ import annotations

import collections
import dataclasses
import queue
import threading
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec

TRAJECTORY_TABLE = "trajectories"
VARIABLES_TABLE = "variables"
STATE_KEY = "initial_state"

# One stored step (see agents.impala.learning for the meaning of each field).
Experience = collections.namedtuple(
    "Experience", ["step_type", "observation", "prev_action", "prev_reward", "action",
                   "behaviour_logits", "reward", "discount", "policy_version", "episode_return",
                   "frames", "level", "initial_state"])


def experience_spec(network) -> Experience:
    """Per-step specs of :class:`Experience` (no batch/time dimension; ``initial_state`` has
    no time dimension in the data either)."""
    shape = tuple(network.model.config.observation_shape)
    f32, i32 = tf.float32, tf.int32
    return Experience(
        step_type=tf.TensorSpec((), i32, "step_type"),
        observation=tensor_spec.BoundedTensorSpec(shape, tf.uint8, 0, 255, "observation"),
        prev_action=tf.TensorSpec((), i32, "prev_action"),
        prev_reward=tf.TensorSpec((), f32, "prev_reward"),
        action=tf.TensorSpec((), i32, "action"),
        behaviour_logits=tf.TensorSpec((network.num_actions,), f32, "behaviour_logits"),
        reward=tf.TensorSpec((), f32, "reward"),
        discount=tf.TensorSpec((), f32, "discount"),
        policy_version=tf.TensorSpec((), tf.int64, "policy_version"),
        episode_return=tf.TensorSpec((), f32, "episode_return"),
        frames=tf.TensorSpec((), i32, "frames"),
        level=tf.TensorSpec((), i32, "level"),
        initial_state=dict(network.state_spec),
    )


def step_records(time_step, info: dict, action, outcome, frames, version: int, returns, level: int) -> list:
    """The stored step (every :class:`Experience` field but ``initial_state``) of each
    environment of one batched step, as numpy values of :func:`experience_spec`'s dtypes.

    ``time_step`` ``[B]``: what the policy acted on; ``info``: the policy step's info (its
    previous action and reward inputs, ``behaviour_logits``); ``action`` ``[B]``; ``outcome``:
    the next time step (its reward and discount belong to this step); ``frames`` ``[B]``: the
    emulator frames each environment stepped for it; ``version``: the policy's version;
    ``returns`` ``[B]``: each episode's return so far; ``level``: the actor's environment.
    """
    return [{
        "step_type": np.int32(time_step.step_type[j]),
        "observation": time_step.observation[j],
        "prev_action": np.int32(info["prev_action"][j]),
        "prev_reward": np.float32(info["prev_reward"][j]),
        "action": np.int32(action[j]),
        "behaviour_logits": info["behaviour_logits"][j],
        "reward": np.float32(outcome.reward[j]),
        "discount": np.float32(outcome.discount[j]),
        "policy_version": np.int64(version),
        "episode_return": np.float32(returns[j]),
        "frames": np.int32(frames[j]),
        "level": np.int32(level),
    } for j in range(len(action))]


def make_tables(settings) -> list:
    """The tables of :class:`agents.impala.config.ReplaySettings` ``settings``.

    ``trajectories``: with ``reuse`` = 1 (IMPALA), a FIFO queue of ``queue_size`` items, each
    sampled once; writers block when it is full. With ``reuse`` = K > 1, each item is sampled K
    times (uniformly among the ``queue_size`` newest; removed after its K-th sample), and a
    sample-to-insert ratio of K keeps actors and learner in step: samples wait until
    ``min_size`` items are in and writers block once the learner is more than about
    ``min_size`` items behind (V-trace corrects the added policy lag). ``variables``: the latest
    variables (one item, samples block until the first push). ValueError for settings that
    cannot work (see ``ReplaySettings.check``)."""
    import reverb

    queue_size, reuse, min_size = settings.check().queue_size, settings.reuse, settings.min_size
    if reuse == 1:
        trajectories = reverb.Table.queue(TRAJECTORY_TABLE, max_size=queue_size)
    else:
        trajectories = reverb.Table(
            TRAJECTORY_TABLE, sampler=reverb.selectors.Uniform(), remover=reverb.selectors.Fifo(),
            max_size=queue_size, max_times_sampled=reuse,
            rate_limiter=reverb.rate_limiters.SampleToInsertRatio(
                samples_per_insert=float(reuse), min_size_to_sample=min_size,
                error_buffer=float(reuse * min_size)))
    return [
        trajectories,
        reverb.Table(VARIABLES_TABLE, sampler=reverb.selectors.Uniform(),
                     remover=reverb.selectors.Fifo(), max_size=1,
                     rate_limiter=reverb.rate_limiters.MinSize(1)),
    ]


def per_step_fields(spec) -> list:
    """Names of the per-step fields of an ``Experience`` spec (all but the initial state)."""
    return [f for f in spec._fields if f != STATE_KEY]


def item_signature(spec, sequence_length: int):
    """``(dtypes, shapes)`` of one stored item for ``reverb.TrajectoryDataset``."""
    dtypes, shapes = {}, {}
    for name in per_step_fields(spec):
        s = getattr(spec, name)
        dtypes[name], shapes[name] = s.dtype, tf.TensorShape([sequence_length, *s.shape])
    state = getattr(spec, STATE_KEY)
    dtypes[STATE_KEY] = {k: s.dtype for k, s in state.items()}
    shapes[STATE_KEY] = {k: tf.TensorShape(s.shape) for k, s in state.items()}
    return dtypes, shapes


def make_dataset(server_address: str, spec, sequence_length: int, batch_size: Optional[int],
                 table: str = TRAJECTORY_TABLE, timeout_ms: int = -1,
                 max_in_flight: Optional[int] = None, with_first_use: bool = False) -> tf.data.Dataset:
    """Batches of ``batch_size`` trajectories from the queue as ``Experience`` ``[B, T+1, ...]``
    (``batch_size=None``: single trajectories ``[T+1, ...]``).

    Each item is sampled exactly once (the table is a queue). One sampler worker keeps at most
    ``max_in_flight`` (default ``batch_size``) items in flight, so the queue's back-pressure
    reaches the actors. Blocks while the queue is empty;
    with ``timeout_ms >= 0`` the dataset instead ends after waiting that long for an item
    (so that a caller can check for a stop request and iterate a fresh dataset).
    With ``with_first_use`` each element is ``(experience, first_use)``, ``first_use`` True when
    this is the item's first sample (always, from a queue; once in K with ``reuse`` K).
    """
    import reverb

    dtypes, shapes = item_signature(spec, sequence_length)
    dataset = reverb.TrajectoryDataset(server_address, table, dtypes, shapes,
                                       max_in_flight_samples_per_worker=max_in_flight or batch_size or 1,
                                       num_workers_per_iterator=1,
                                       rate_limiter_timeout_ms=timeout_ms)
    experience_type = type(spec)
    if with_first_use:
        dataset = dataset.map(lambda sample: (experience_type(**sample.data), sample.info.times_sampled == 1))
    else:
        dataset = dataset.map(lambda sample: experience_type(**sample.data))
    if batch_size is None:
        return dataset
    return dataset.batch(batch_size, drop_remainder=True).prefetch(1)


class BatchReader:
    """The learner's reader: batches of ``batch_size`` trajectories, losing none.

    Items are sampled one at a time with a ``timeout_ms`` wait, so that the caller regains
    control (to honour a stop request) while the queue is empty; items received before such
    a timeout, or before a replay failure, are kept for the next batch. (A batched
    ``tf.data`` pipeline would drop a partial batch whenever a wait timed out.)
    With ``with_first_use`` a batch is ``(experience, first_use bool [B])`` (see
    :func:`make_dataset`).
    """

    def __init__(self, server_address: str, spec, sequence_length: int, batch_size: int,
                 timeout_ms: int = 2000, table: str = TRAJECTORY_TABLE, with_first_use: bool = False):
        self._args = (server_address, spec, sequence_length, None, table, timeout_ms, 1, with_first_use)
        self.batch_size = batch_size
        self._type = type(spec)
        self._iterator = None
        self._pending = []

    def reset(self) -> None:
        """Drops the connection (after a replay failure); received items are kept."""
        self._iterator = None

    def next_batch(self, should_stop) -> Optional[object]:
        """The next ``Experience [B, T+1, ...]``, or None once ``should_stop()`` is true.
        Raises ``tf.errors.OpError`` if the replay server fails."""
        while len(self._pending) < self.batch_size:
            if should_stop():
                return None
            if self._iterator is None:
                self._iterator = iter(make_dataset(*self._args))
            try:
                item = next(self._iterator)
            except StopIteration:  # nothing arrived within timeout_ms
                self._iterator = None
                continue
            self._pending.append(tf.nest.map_structure(lambda x: x.numpy(), item))
        batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
        return tf.nest.map_structure(lambda *xs: tf.convert_to_tensor(np.stack(xs)), *batch)


class PrefetchingReader:
    """Overlaps the replay read with the learner's update: a background thread fills a bounded
    queue of ``depth`` ready batches from a :class:`BatchReader` while the update runs.

    Nothing is lost or read twice: the thread hands over each batch exactly once; a replay
    failure is retried in the thread (``on_error(error)`` is called, then the reader reconnects)
    and the items it had received are kept for the next batch. At :meth:`close`, batches still
    waiting in the queue are counted in ``unconsumed`` (they were taken from the replay queue,
    like every item still queued there when a run stops).
    """

    def __init__(self, reader: BatchReader, depth: int = 2,
                 on_error: Optional[Callable[[BaseException], None]] = None):
        self._reader, self._on_error = reader, on_error
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._failure: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._fill, name="replay-prefetch", daemon=True)
        self._thread.start()

    def _put(self, batch) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(batch, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    batch = self._reader.next_batch(self._stop.is_set)
                except tf.errors.OpError as e:
                    self._reader.reset()
                    if self._on_error is not None:
                        self._on_error(e)
                    continue
                if batch is None or not self._put(batch):
                    return
        except BaseException as e:  # noqa: BLE001 (re-raised in the consumer)
            self._failure = e

    def next_batch(self, should_stop: Callable[[], bool], poll_secs: float = 0.1):
        """The next prefetched batch, or None once ``should_stop()`` is true. Re-raises an
        unexpected error of the background thread."""
        while True:
            try:
                return self._queue.get(timeout=poll_secs)
            except queue.Empty:
                if self._failure is not None:
                    raise self._failure
                if should_stop():
                    return None

    def close(self) -> int:
        """Stops the thread; returns how many prefetched batches were never consumed."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.unconsumed = self._queue.qsize()
        return self.unconsumed


@dataclasses.dataclass
class WindowWriter:
    """Cuts one environment's stream of steps into overlapping ``T + 1``-step items.

    ``append(step, state)`` takes the per-step fields (numpy scalars/arrays) of step t and
    the policy's recurrent state before step t (only stored when t begins a window).
    """
    writer: object                 # reverb.TrajectoryWriter
    unroll_length: int
    table: str = TRAJECTORY_TABLE
    steps: int = 0                 # steps appended so far

    @classmethod
    def open(cls, client, unroll_length: int, table: str = TRAJECTORY_TABLE) -> "WindowWriter":
        return cls(client.trajectory_writer(num_keep_alive_refs=unroll_length + 1),
                   unroll_length, table)

    @property
    def begins_window(self) -> bool:
        """Whether the next appended step begins a window (only then is its state stored)."""
        return self.steps % self.unroll_length == 0

    def append(self, step: dict, state: Optional[dict]) -> bool:
        """Appends one step (``state`` is only read when the step begins a window); returns
        True when it completed (and enqueued) a trajectory."""
        T = self.unroll_length
        data = dict(step)
        if self.begins_window:
            data[STATE_KEY] = state
        self.writer.append(data)
        self.steps += 1
        if self.steps <= T or (self.steps - 1) % T:
            return False
        history = self.writer.history
        item = {name: history[name][-(T + 1):] for name in step}
        item[STATE_KEY] = {k: col[-(T + 1)] for k, col in history[STATE_KEY].items()}
        self.writer.create_item(self.table, priority=1.0, trajectory=item)
        return True

    def flush(self, timeout_ms: int, pending: int = 1) -> None:
        """Waits until at most ``pending`` items are unconfirmed (the queue applies back-pressure
        here); raises ``reverb.errors.DeadlineExceededError`` after ``timeout_ms``."""
        self.writer.flush(block_until_num_items=pending, timeout_ms=timeout_ms)

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # the server may be gone; nothing to save
            pass


def as_numpy_state(state: dict, index: int) -> dict:
    """Row ``index`` of a batched state dict as numpy arrays."""
    return {k: np.asarray(v[index]) for k, v in state.items()}
