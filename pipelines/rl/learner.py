"""The learner service: V-trace updates on batches from the replay queue.

Root directory layout (``ROOT``)::

    run.json                 the run record (variant, AgentConfig, TrainConfig, num_actions;
                             s3ta_tf.run_record): rebuilds the model of any checkpoint
    checkpoints/             tf.train.CheckpointManager: model, optimiser slots, train_step,
                             frames, nonfinite_updates; resumed automatically
    export/step_<N>/         SavedModels (s3ta_tf.export), periodically and at the end;
    export/latest/           the most recent one
    summaries/learner/       TensorBoard: the metrics of every summary_interval-th update
                             (losses, entropy, frames/s, episode return and its human-normalised
                             value for ALE games, policy lag, gradient norm per model part,
                             attention entropy)
    learner.json             progress (train step, frames, frames/s, mean return), for the
                             launcher (pipelines.rl.learner_log.Progress)

The shape of the loop is Acme's IMPALA learner's: :meth:`Learner.step` is one update from one
batch and returns its metrics (a dict named by TensorBoard tag); around it, :meth:`Learner.run`
reads batches, applies the divergence rule (:class:`DivergenceGuard`), pushes variables, hands
the metrics to one logger (:class:`pipelines.rl.learner_log.LearnerLogger`: summaries and
``learner.json``), checkpoints and exports, each on its own schedule (:class:`Every`).

Checkpoints are atomic: TensorFlow writes the data and index under temporary names and
renames them, and the ``checkpoint`` state file that names the latest checkpoint is replaced
(write + rename) only after that, so a crash mid-save leaves the previous checkpoint as the
latest. Where that fails (a file system without atomic renames, a full disk, files deleted by
hand) the learner resumes from the newest checkpoint that reads, in one line naming the one
skipped and why (:func:`s3ta_tf.checkpoints.newest_readable_checkpoint`). A checkpoint is never
written while any variable is non-finite (non-finite updates are skipped in the first place,
see agents.impala.learning).

Frames are counted as consumed emulator frames: the sum of the actors' per-step ``frames`` over
the batch's transitions (the same count as the actors', see :func:`consumed_frames`). With
``train.replay_reuse`` K > 1 each trajectory is sampled K times; its frames and finished
episodes are counted at its first sample only.
The update is one traced graph with static shapes (``VTraceAgent.compiled_train``, traced once
per run; ``jit_compile`` is off by default: XLA was slower on CPU, see docs/PERFORMANCE.md).
Trajectories are read with :class:`agents.impala.replay.BatchReader` (one at a time, none
lost while waiting) in a background thread (:class:`~agents.impala.replay.PrefetchingReader`)
that keeps the next batches ready while an update runs. The learner starts once the replay
server answers, logging each failed attempt as the actors do; every call it makes to replay from
the main thread is bounded in time, so that SIGINT/SIGTERM (handled between Python calls) are
seen within seconds even when the server is unreachable. If the replay server goes away the
reader backs off and reconnects; on SIGINT/SIGTERM the learner finishes the current update,
checkpoints and exits.

Non-finite updates are skipped (``agents.impala.learning``); after ``MAX_CONSECUTIVE_NONFINITE``
skipped updates in a row the learner stops with :class:`pipelines.errors.DivergenceError`, which names the first
non-finite tensor (inputs, variables, loss terms, then gradients per variable), keeping its
last good checkpoint.
"""
from __future__ import annotations

import collections
import os
import shutil
import time
from typing import Optional

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec

from agents.impala.learning import VTraceAgent
from agents.impala.replay import experience_spec
from pipelines.errors import DivergenceError
from pipelines.evaluation.curves import CAPPED_MEAN_TAG
from pipelines.rl.learner_log import LearnerLogger
from pipelines.rl.lifecycle import Backoff, StopFlag, log
from s3ta_tf.checkpoints import checkpoint_paths, newest_readable_checkpoint, variables_finite
from agents.impala.builder import RunSpec
from pipelines.evaluation.scores import aggregate, game_name, human_normalized
from agents.impala.replay import BatchReader, PrefetchingReader
from agents.impala.variables import push_variables

EXPORTS_TO_KEEP = 3
RETURN_WINDOW = 100  # episodes in the running mean return
DATA_TIMEOUT_MS = 2000  # wait this long for trajectories before checking for a stop request
REPLAY_TIMEOUT_SECS = 2  # a call to replay from the main thread waits at most this long
PREFETCH_DEPTH = 2  # batches read ahead while an update runs
MAX_CONSECUTIVE_NONFINITE = 20  # skipped updates in a row before the learner gives up


class Learner:
    """Owns the agent, its checkpoints and its logger: :meth:`step` is one update,
    :meth:`run` the service around it."""

    def __init__(self, spec: RunSpec, replay_address: str, root_dir: str, stop: StopFlag,
                 fine_tune_from: Optional[str] = None):
        import reverb

        self.spec, self.address, self.root_dir, self.stop = spec, replay_address, root_dir, stop
        os.makedirs(root_dir, exist_ok=True)
        self.num_actions = spec.check_levels()   # every level: same actions and observations
        env = spec.make_environment(seed=spec.train.seed)
        time_step_spec = tensor_spec.from_spec(env.time_step_spec())
        action_spec = tensor_spec.from_spec(env.action_spec())
        env.close()
        spec.write_or_check(root_dir, self.num_actions, fine_tune_from)

        self.network = spec.build_network(self.num_actions)
        self.agent = VTraceAgent(time_step_spec, action_spec, self.network, spec.train)
        self.frames = tf.Variable(0, dtype=tf.int64, trainable=False, name="frames")
        self._open_checkpoints(fine_tune_from)
        self.logger = LearnerLogger(root_dir, spec.train.summary_interval)
        self.client = reverb.Client(replay_address)
        self.backoff = Backoff()
        self.returns = RecentReturns(spec.levels)
        self.rate, self.waiting = FrameRate(), WaitClock()
        self._train = None   # the compiled update, traced at the first batch
        self._exported_step = -1

    def _open_checkpoints(self, fine_tune_from: Optional[str]) -> None:
        """The checkpoint of the model, optimiser and counters: resumed from the newest one that
        reads, or a new run, started from another run's weights with ``fine_tune_from``."""
        self.checkpoint_dir = os.path.join(self.root_dir, "checkpoints")
        self.checkpoint = tf.train.Checkpoint(
            model=self.network.model, optimizer=self.agent.optimizer,
            train_step=self.agent.train_step_counter, frames=self.frames,
            nonfinite_updates=self.agent.nonfinite_updates)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.checkpoint_dir,
                                                  max_to_keep=self.spec.train.checkpoints_to_keep)
        resume = newest_readable_checkpoint(self.checkpoint_dir, say=lambda line: log(f"learner: {line}"))
        if resume:
            self.checkpoint.restore(resume).assert_existing_objects_matched()
            log(f"learner: resumed from {resume} at train step {self.train_step}, "
                f"{int(self.frames.numpy())} frames")
        elif fine_tune_from:
            log(f"learner: starting from the weights of {fine_tune_weights(self.network.model, fine_tune_from)}")
        self._saved_step = self.train_step if resume else -1

    # ------------------------------------------------------------------ state
    @property
    def train_step(self) -> int:
        return int(self.agent.train_step_counter.numpy())

    def variables_finite(self) -> bool:
        return variables_finite(self.network.variables)

    def progress(self) -> dict:
        """Where training is: the counters, frames/s and the recent episode returns (the
        values of the :class:`~pipelines.rl.learner_log.Progress` record, with the returns'
        TensorBoard scalars)."""
        return {"train_step": self.train_step, "frames": int(self.frames.numpy()),
                "max_frames": self.spec.train.max_frames, "frames_per_second": self.rate.value,
                "nonfinite_updates": int(self.agent.nonfinite_updates.numpy()),
                "batch_wait_fraction": self.waiting.fraction(), **self.returns.metrics()}

    # ------------------------------------------------------------------ the update
    def step(self, batch, first_use=None) -> dict:
        """One V-trace update from one batch of trajectories (``first_use``: which of them are
        sampled for the first time; all if None). Returns its metrics, named by TensorBoard
        tag: the loss terms and diagnostics of :func:`update_metrics`, then
        :meth:`progress` (frames, frames/s, the returns of the episodes finished so far)."""
        t = self.spec.train
        self.agent.set_progress(int(self.frames.numpy()) / t.max_frames)   # the learning-rate schedule
        if self._train is None:
            log("learner: first batch received; tracing the update (once per run)")
            self._train = self.agent.compiled_train(t.batch_size, jit_compile=t.jit_compile)
        info = self._train(batch)
        self.frames.assign_add(consumed_frames(batch, t.unroll_length, first_use))
        self.returns.add(finished_episode_returns(batch, t.unroll_length, first_use))
        self.rate.update(int(self.frames.numpy()))
        return {**update_metrics(info, self.agent.learning_rate), **self.progress()}

    # ------------------------------------------------------------------ outputs
    def save_checkpoint(self) -> Optional[str]:
        if self.train_step == self._saved_step:
            return None
        if not self.variables_finite():  # unreachable while non-finite updates are skipped
            log("learner: NOT checkpointing: some variables are not finite")
            return None
        path = self.manager.save(checkpoint_number=self.train_step)
        self._saved_step = self.train_step
        log(f"learner: checkpoint {path}")
        return path

    def export(self) -> Optional[str]:
        """A SavedModel of the current weights (none before the first update: nothing learnt)."""
        from s3ta_tf.export import export_saved_model

        step = self.train_step
        if step in (0, self._exported_step) or not self.variables_finite():
            return None
        export_root = os.path.join(self.root_dir, "export")
        path = export_saved_model(self.network.model, os.path.join(export_root, f"step_{step:09d}"))
        latest = os.path.join(export_root, "latest")
        tmp = latest + f".tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(path, tmp)
        if os.path.exists(latest):
            shutil.rmtree(latest)
        os.replace(tmp, latest)
        for old in sorted(d for d in os.listdir(export_root) if d.startswith("step_"))[:-EXPORTS_TO_KEEP]:
            shutil.rmtree(os.path.join(export_root, old), ignore_errors=True)
        self._exported_step = step
        log(f"learner: exported SavedModel {path}")
        return path

    def push(self) -> None:
        try:
            self.client.server_info(timeout=REPLAY_TIMEOUT_SECS)   # bounded: insert waits for a server
            push_variables(self.client, self.train_step, [v.numpy() for v in self.network.variables])
        except Exception as e:  # noqa: BLE001 (replay down: actors keep their variables)
            log(f"learner: could not push variables ({type(e).__name__}); will retry")

    def wait_for_replay(self) -> bool:
        """Waits until the replay server answers, logging each failed attempt with back-off (as
        the actors do); False if a stop was requested first."""
        while not self.stop.is_set():
            try:
                self.client.server_info(timeout=REPLAY_TIMEOUT_SECS)
            except Exception as e:  # noqa: BLE001 (any gRPC/Reverb failure: retry)
                self.backoff.wait(self.stop, f"learner: connecting to replay at {self.address}", e)
                continue
            if self.backoff.failures:
                log(f"learner: connected to replay at {self.address}")
            self.backoff.reset()
            return True
        return False

    # ------------------------------------------------------------------ the service
    def run(self, max_steps: Optional[int] = None) -> int:
        t = self.spec.train
        log(f"learner: {self.spec.variant} agent on {t.env_id} ({self.num_actions} actions), batch "
            f"{t.batch_size} x unroll {t.unroll_length}, {self.spec.agent.precision}, replay at "
            f"{self.address}, root {self.root_dir}")
        try:
            if self.wait_for_replay():
                self.push()
                self.update_loop(max_steps)
        finally:
            self.save_checkpoint()
            self.logger.write_record(self.progress())
        done = int(self.frames.numpy()) >= t.max_frames
        self.export()  # at the end and at a clean stop (Ctrl-C): the newest weights, ready to use
        if done:
            self.push()
        log(f"learner: stopped at train step {self.train_step}, {int(self.frames.numpy())} frames "
            f"({'max frames reached' if done else self.stop.signal_name or 'stopped'})")
        return 0

    def update_loop(self, max_steps: Optional[int]) -> None:
        """:meth:`step` on batches from replay until max_frames, ``max_steps`` updates (this
        session) or a stop request; after each: the divergence rule, then the variable push,
        the logger, the checkpoint and the export when each is due."""
        t = self.spec.train
        diverging = DivergenceGuard(self.agent, MAX_CONSECUTIVE_NONFINITE, self.checkpoint_dir)
        push, export = Every(steps=t.variable_push_interval), Every(steps=t.export_interval_steps)
        checkpoint = Every(secs=t.checkpoint_interval_secs)
        self.rate = FrameRate()
        reader = self._reader()
        try:
            for batch, first_use in self._batches(reader, max_steps):
                metrics = self.step(batch, first_use)
                diverging.check(metrics, batch)
                if push.due(metrics["train_step"]):
                    self.push()
                self.logger.write(metrics)
                if checkpoint.due(metrics["train_step"]):
                    self.save_checkpoint()
                if export.due(metrics["train_step"]):
                    self.export()
        finally:
            reader.close()

    def _reader(self) -> PrefetchingReader:
        t = self.spec.train
        reader = BatchReader(self.address, experience_spec(self.network), t.sequence_length,
                             t.batch_size, timeout_ms=DATA_TIMEOUT_MS, with_first_use=True)
        return PrefetchingReader(reader, PREFETCH_DEPTH,
                                 on_error=lambda e: self.backoff.wait(
                                     self.stop, f"reading from replay at {self.address}", e))

    def _batches(self, reader: PrefetchingReader, max_steps: Optional[int]):
        """``(batch, first_use)`` from ``reader`` while frames < max_frames, fewer than
        ``max_steps`` were read and no stop was requested (also while waiting for one)."""
        max_frames, read_so_far = self.spec.train.max_frames, 0
        self.waiting = WaitClock()
        while (int(self.frames.numpy()) < max_frames and not self.stop.is_set()
               and (max_steps is None or read_so_far < max_steps)):
            with self.waiting:
                read = reader.next_batch(self.stop.is_set)
            if read is None:
                return
            self.backoff.reset()
            read_so_far += 1
            yield read[0], read[1].numpy()


class WaitClock:
    """The share of wall time since it was made that was spent inside ``with clock:`` blocks."""

    def __init__(self):
        self.started, self.waited, self._entered = time.monotonic(), 0.0, None

    def __enter__(self):
        self._entered = time.monotonic()

    def __exit__(self, *exc):
        self.waited += time.monotonic() - self._entered

    def fraction(self) -> float:
        return self.waited / max(time.monotonic() - self.started, 1e-9)


def update_metrics(info, learning_rate) -> dict:
    """An update's loss terms and diagnostics (``VTraceLossInfo``) as numbers, named by
    TensorBoard tag; the attention entropy only for agents with attention (others report -1)."""
    extra = info.extra
    metrics = {"loss/total": info.loss, "loss/policy_gradient": extra.policy_gradient,
               "loss/baseline": extra.baseline, "loss/entropy": extra.entropy,
               "policy/entropy": extra.mean_entropy, "policy/mean_log_rho": extra.mean_log_rho,
               "policy/lag": extra.policy_lag, "learning_rate": learning_rate,
               "gradient_norm": extra.gradient_norm,
               **{f"gradient_norm/{part}": norm for part, norm in extra.part_gradient_norms.items()}}
    if float(extra.attention_entropy) >= 0:
        metrics["attention/entropy"] = extra.attention_entropy
    return {name: float(np.asarray(value)) for name, value in metrics.items()}


class DivergenceGuard:
    """The divergence rule, applied to each update's metrics: a skipped (non-finite) update is
    logged, and ``limit`` of them in a row stop training with :class:`DivergenceError`, naming
    the first non-finite tensor of the last batch (the last good checkpoint is kept)."""

    def __init__(self, agent: VTraceAgent, limit: int, checkpoint_dir: str):
        self.agent, self.limit, self.checkpoint_dir = agent, limit, checkpoint_dir
        self.skipped = int(agent.nonfinite_updates.numpy())
        self.in_a_row = 0

    def check(self, metrics: dict, batch) -> None:
        skipped, self.skipped = metrics["nonfinite_updates"] > self.skipped, metrics["nonfinite_updates"]
        if not skipped:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        log(f"learner: non-finite loss ({metrics['loss/total']}) or gradient norm "
            f"({metrics['gradient_norm']}): update skipped "
            f"({metrics['nonfinite_updates']} so far, {self.in_a_row} in a row)")
        if self.in_a_row >= self.limit:
            raise DivergenceError(
                f"{self.in_a_row} consecutive updates were non-finite; first non-finite "
                f"tensor: {self.agent.first_nonfinite(batch)}. Training stopped; the last good "
                f"checkpoint is kept in {self.checkpoint_dir}. Lower learning_rate or gradient_clip, "
                f"or check the environment's rewards and observations")


class Every:
    """A schedule: due every ``steps`` train steps (0: never), or, with ``secs``, once that many
    seconds have passed since it was created or last due."""

    def __init__(self, steps: int = 0, secs: Optional[float] = None):
        self.steps, self.secs, self._last = steps, secs, time.time()

    def due(self, train_step: int) -> bool:
        if self.secs is None:
            return bool(self.steps) and train_step % self.steps == 0
        if time.time() - self._last < self.secs:
            return False
        self._last = time.time()
        return True


class FrameRate:
    """Frames consumed per second since the first update it counted (so that the update's
    tracing is not in it)."""

    def __init__(self):
        self.value, self._start = 0.0, None

    def update(self, frames: int) -> float:
        now = time.time()
        if self._start is None:
            self._start = (now, frames)
        self.value = (frames - self._start[1]) / max(now - self._start[0], 1e-9)
        return self.value


class RecentReturns:
    """The returns of the last RETURN_WINDOW finished training episodes, and in a multi-level run
    the same window per level, with human-normalised scores for ALE games."""

    def __init__(self, levels):
        self.levels = tuple(levels)
        self.games = [game_name(env_id) for env_id in self.levels]   # None unless ALE
        self.all = collections.deque(maxlen=RETURN_WINDOW)
        self.per_level = [collections.deque(maxlen=RETURN_WINDOW) for _ in self.levels]

    def add(self, finished) -> None:
        """``finished``: ``[(level, return), ...]`` (:func:`finished_episode_returns`)."""
        for level, value in finished:
            self.all.append(value)
            self.per_level[level].append(value)

    def metrics(self) -> dict:
        """The record's ``mean_return`` and ``episodes`` (and ``levels``, ``human_normalized``
        in a multi-level run), then the same as TensorBoard scalars."""
        record = {"mean_return": float(np.mean(self.all)) if self.all else None, "episodes": len(self.all)}
        if len(self.levels) > 1:
            record.update(self._per_level())
        return {**record, **self._scalars(record)}

    def _per_level(self) -> dict:
        """Each level's mean return (and HNS for ALE games) over its last episodes, and the
        headline: the capped mean HNS over the games with episodes."""
        levels, hns = {}, {}
        for env_id, game, returns in zip(self.levels, self.games, self.per_level):
            entry = {"episodes": len(returns), "mean_return": float(np.mean(returns)) if returns else None}
            if game is not None and returns:
                entry["human_normalized"] = hns[game] = human_normalized(game, entry["mean_return"])
            levels[env_id] = entry
        return {"levels": levels, "human_normalized": aggregate(hns) if hns else None}

    def _scalars(self, record: dict) -> dict:
        scalars, mean = {}, record["mean_return"]
        if mean is not None:
            scalars["episode_return"] = mean
            if len(self.games) == 1 and self.games[0] is not None:
                scalars["episode_return_human_normalized"] = human_normalized(self.games[0], mean)
        for env_id, entry in (record.get("levels") or {}).items():
            name = env_id.replace("/", "_")
            if entry["mean_return"] is not None:
                scalars[f"episode_return/{name}"] = entry["mean_return"]
            if "human_normalized" in entry:
                scalars[f"episode_return_human_normalized/{name}"] = entry["human_normalized"]
        if (record.get("human_normalized") or {}).get("capped_mean") is not None:
            scalars[CAPPED_MEAN_TAG] = record["human_normalized"]["capped_mean"]
        return scalars


def consumed_frames(batch, unroll_length: int, first_use=None) -> int:
    """Emulator frames behind a batch: the actors' per-step ``frames`` over the first
    ``unroll_length`` steps of each trajectory (the bootstrap step is the next one's first),
    so the learner's count equals the actors' (no-op starts included, bare resets free).
    ``first_use`` (bool ``[B]``): count only these trajectories (a reused one counts once)."""
    frames = batch.frames.numpy()[:, :unroll_length]
    if first_use is not None:
        frames = frames[np.asarray(first_use, bool)]
    return int(np.sum(frames, dtype=np.int64))


def finished_episode_returns(batch, unroll_length: int, first_use=None) -> list:
    """``[(level, return), ...]`` of the episodes that end in a batch: ``episode_return`` at
    LAST steps among the first ``unroll_length`` steps (the bootstrap step is the next
    trajectory's first), with the level (environment index) they were played on.
    ``first_use`` (bool ``[B]``): only these trajectories' episodes (a reused one counts once)."""
    from tf_agents.trajectories import time_step as ts

    step_type = batch.step_type.numpy()[:, :unroll_length]
    returns = batch.episode_return.numpy()[:, :unroll_length]
    levels = batch.level.numpy()[:, :unroll_length]
    last = step_type == ts.StepType.LAST
    if first_use is not None:   # a reused trajectory's episodes count at its first sample
        last &= np.asarray(first_use, bool)[:, None]
    return list(zip(levels[last].astype(int).tolist(), returns[last].tolist()))


def checkpoint_to_fine_tune(source: str) -> str:
    """The checkpoint directory of ``source`` (a run root or a checkpoint directory);
    ValueError if it holds no checkpoint."""
    directory = os.path.join(source, "checkpoints")
    directory = directory if os.path.isdir(directory) else source
    if not os.path.isdir(directory) or not checkpoint_paths(directory):
        raise ValueError(f"--fine-tune-from {source}: no checkpoint there; expected a run's root "
                         f"directory or its checkpoints directory")
    return directory


def fine_tune_weights(model, source: str) -> str:
    """Restores ``model``'s weights (not the optimiser's state, step or frame count) from the
    newest checkpoint that reads of ``source``: a run root or a checkpoint directory. Returns its path."""
    from s3ta_tf.checkpoints import restore_model

    return restore_model(model, checkpoint_to_fine_tune(source))


def run_learner(spec: RunSpec, replay_address: str, root_dir: str, stop: StopFlag,
                max_steps: Optional[int] = None, fine_tune_from: Optional[str] = None) -> int:
    return Learner(spec, replay_address, root_dir, stop, fine_tune_from).run(max_steps=max_steps)
