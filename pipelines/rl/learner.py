"""The learner service: V-trace updates on batches from the replay queue.

Root directory layout (``ROOT``)::

    run.json                 the run record (variant, AgentConfig, TrainConfig, num_actions;
                             s3ta_tf.run_record): rebuilds the model of any checkpoint
    checkpoints/             tf.train.CheckpointManager: model, optimiser slots, train_step,
                             frames, nonfinite_updates; resumed automatically
    export/step_<N>/         SavedModels (s3ta_tf.export), periodically and at the end;
    export/latest/           the most recent one
    summaries/learner/       TensorBoard: losses, entropy, frames/s, episode return (and its
                             human-normalised value for ALE games), policy lag, gradient norm
                             per model part, attention entropy
    learner.json             progress (train step, frames, frames/s, mean return), for the launcher

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
from pipelines.rl.lifecycle import Backoff, StopFlag, log
from s3ta_tf.checkpoints import checkpoint_paths, newest_readable_checkpoint, variables_finite
from agents.impala.builder import RunSpec
from s3ta_tf.atomic_io import write_json_atomic
from pipelines.evaluation.scores import aggregate, game_name, human_normalized
from agents.impala.replay import BatchReader, PrefetchingReader
from agents.impala.variables import push_variables

PROGRESS_FILE = "learner.json"
EXPORTS_TO_KEEP = 3
RETURN_WINDOW = 100  # episodes in the running mean return
PROGRESS_INTERVAL_SECS = 1.0  # learner.json refresh (the launcher's progress line reads it)
DATA_TIMEOUT_MS = 2000  # wait this long for trajectories before checking for a stop request
REPLAY_TIMEOUT_SECS = 2  # a call to replay from the main thread waits at most this long
PREFETCH_DEPTH = 2  # batches read ahead while an update runs
MAX_CONSECUTIVE_NONFINITE = 20  # skipped updates in a row before the learner gives up


class Learner:
    """Owns the agent, its checkpoint and summaries; :meth:`run` is the service loop."""

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
        self.checkpoint_dir = os.path.join(root_dir, "checkpoints")
        self.checkpoint = tf.train.Checkpoint(
            model=self.network.model, optimizer=self.agent.optimizer,
            train_step=self.agent.train_step_counter, frames=self.frames,
            nonfinite_updates=self.agent.nonfinite_updates)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.checkpoint_dir,
                                                  max_to_keep=spec.train.checkpoints_to_keep)
        resume = newest_readable_checkpoint(self.checkpoint_dir, say=lambda line: log(f"learner: {line}"))
        if resume:
            self.checkpoint.restore(resume).assert_existing_objects_matched()
            log(f"learner: resumed from {resume} at train step {self.train_step}, "
                f"{int(self.frames.numpy())} frames")
        elif fine_tune_from:
            log(f"learner: starting from the weights of {fine_tune_weights(self.network.model, fine_tune_from)}")
        self.summary_writer = tf.summary.create_file_writer(os.path.join(root_dir, "summaries", "learner"))
        self.client = reverb.Client(replay_address)
        self.backoff = Backoff()
        self.returns = collections.deque(maxlen=RETURN_WINDOW)
        # Multi-level runs: the same window per level, and each level's game (None unless ALE).
        self.level_returns = [collections.deque(maxlen=RETURN_WINDOW) for _ in spec.levels]
        self.games = [game_name(env_id) for env_id in spec.levels]
        self.game = self.games[0] if len(self.games) == 1 else None
        self._saved_step = self.train_step if resume else -1
        self._exported_step = -1
        self.fps = 0.0

    # ------------------------------------------------------------------ state
    @property
    def train_step(self) -> int:
        return int(self.agent.train_step_counter.numpy())

    def variables_finite(self) -> bool:
        return variables_finite(self.network.variables)

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

    def write_progress(self, fps: float) -> None:
        write_json_atomic(os.path.join(self.root_dir, PROGRESS_FILE), {
            "time": time.time(), "train_step": self.train_step, "frames": int(self.frames.numpy()),
            "max_frames": self.spec.train.max_frames, "frames_per_second": fps,
            "mean_return": float(np.mean(self.returns)) if self.returns else None,
            "episodes": len(self.returns),
            "nonfinite_updates": int(self.agent.nonfinite_updates.numpy()),
            **self.level_progress()})

    def level_progress(self) -> dict:
        """Multi-level runs: each level's mean return (and HNS for ALE games) over its last
        episodes, and the headline: the capped mean HNS over the games with episodes."""
        if len(self.spec.levels) == 1:
            return {}
        levels, hns = {}, {}
        for env_id, game, returns in zip(self.spec.levels, self.games, self.level_returns):
            entry = {"episodes": len(returns), "mean_return": float(np.mean(returns)) if returns else None}
            if game is not None and returns:
                entry["human_normalized"] = hns[game] = human_normalized(game, entry["mean_return"])
            levels[env_id] = entry
        return {"levels": levels, "human_normalized": aggregate(hns) if hns else None}

    def write_summaries(self, info, fps: float) -> None:
        extra, step = info.extra, self.train_step
        with self.summary_writer.as_default(step=step):
            tf.summary.scalar("loss/total", info.loss)
            for name in ("policy_gradient", "baseline", "entropy"):
                tf.summary.scalar(f"loss/{name}", getattr(extra, name))
            tf.summary.scalar("policy/entropy", extra.mean_entropy)
            tf.summary.scalar("policy/mean_log_rho", extra.mean_log_rho)
            tf.summary.scalar("policy/lag", extra.policy_lag)
            tf.summary.scalar("learning_rate", self.agent.learning_rate)
            tf.summary.scalar("gradient_norm", extra.gradient_norm)
            for part, norm in extra.part_gradient_norms.items():
                tf.summary.scalar(f"gradient_norm/{part}", norm)
            if float(extra.attention_entropy) >= 0:
                tf.summary.scalar("attention/entropy", extra.attention_entropy)
            tf.summary.scalar("frames", self.frames)
            tf.summary.scalar("frames_per_second", fps)
            tf.summary.scalar("nonfinite_updates", self.agent.nonfinite_updates)
            if self.returns:
                mean_return = float(np.mean(self.returns))
                tf.summary.scalar("episode_return", mean_return)
                if self.game is not None:
                    tf.summary.scalar("episode_return_human_normalized",
                                      human_normalized(self.game, mean_return))
            progress = self.level_progress()
            for env_id, entry in progress.get("levels", {}).items():
                name = env_id.replace("/", "_")
                if entry["mean_return"] is not None:
                    tf.summary.scalar(f"episode_return/{name}", entry["mean_return"])
                if "human_normalized" in entry:
                    tf.summary.scalar(f"episode_return_human_normalized/{name}", entry["human_normalized"])
            if progress.get("human_normalized"):
                tf.summary.scalar("episode_return_human_normalized_capped_mean",
                                  progress["human_normalized"]["capped_mean"])
        self.summary_writer.flush()

    # ------------------------------------------------------------------ loop
    def _reader(self) -> PrefetchingReader:
        t = self.spec.train
        reader = BatchReader(self.address, experience_spec(self.network), t.sequence_length,
                             t.batch_size, timeout_ms=DATA_TIMEOUT_MS, with_first_use=True)
        return PrefetchingReader(reader, PREFETCH_DEPTH,
                                 on_error=lambda e: self.backoff.wait(
                                     self.stop, f"reading from replay at {self.address}", e))

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
            self.write_progress(self.fps)
        done = int(self.frames.numpy()) >= t.max_frames
        self.export()  # at the end and at a clean stop (Ctrl-C): the newest weights, ready to use
        if done:
            self.push()
        log(f"learner: stopped at train step {self.train_step}, {int(self.frames.numpy())} frames "
            f"({'max frames reached' if done else self.stop.signal_name or 'stopped'})")
        return 0

    def update_loop(self, max_steps: Optional[int]) -> None:
        """Updates on batches from replay until max_frames, ``max_steps`` updates (this session)
        or a stop request."""
        t = self.spec.train
        train = self.agent.compiled_train(t.batch_size, jit_compile=t.jit_compile)
        reader = self._reader()
        start_time, start_frames = None, int(self.frames.numpy())
        last_checkpoint, last_progress, steps = time.time(), 0.0, 0
        skipped_in_a_row = 0
        try:
            while (int(self.frames.numpy()) < t.max_frames and not self.stop.is_set()
                   and (max_steps is None or steps < max_steps)):
                read = reader.next_batch(self.stop.is_set)
                if read is None:
                    break
                batch, first_use = read[0], read[1].numpy()
                self.agent.set_progress(int(self.frames.numpy()) / t.max_frames)
                self.backoff.reset()
                if start_time is None:
                    log("learner: first batch received; tracing the update (once per run)")
                info = train(batch)
                steps += 1
                self.frames.assign_add(consumed_frames(batch, t.unroll_length, first_use))
                if start_time is None:  # frames/s from the first update on (excludes tracing)
                    start_time, start_frames = time.time(), int(self.frames.numpy())
                extra = info.extra
                for level, value in finished_episode_returns(batch, t.unroll_length, first_use):
                    self.returns.append(value)
                    self.level_returns[level].append(value)
                if not bool(extra.applied.numpy()):
                    skipped_in_a_row += 1
                    log(f"learner: non-finite loss ({float(info.loss.numpy())}) or gradient norm "
                        f"({float(extra.gradient_norm.numpy())}): update skipped "
                        f"({int(self.agent.nonfinite_updates.numpy())} so far, {skipped_in_a_row} in a row)")
                    if skipped_in_a_row >= MAX_CONSECUTIVE_NONFINITE:
                        where = self.agent.first_nonfinite(batch)
                        raise DivergenceError(
                            f"{skipped_in_a_row} consecutive updates were non-finite; first non-finite "
                            f"tensor: {where}. Training stopped; the last good checkpoint is kept in "
                            f"{self.checkpoint_dir}. Lower learning_rate or gradient_clip, or check the "
                            f"environment's rewards and observations")
                else:
                    skipped_in_a_row = 0
                self.fps = (int(self.frames.numpy()) - start_frames) / max(time.time() - start_time, 1e-9)
                if self.train_step % t.variable_push_interval == 0:
                    self.push()
                if steps % t.summary_interval == 0:
                    self.write_summaries(info, self.fps)
                if time.time() - last_progress >= PROGRESS_INTERVAL_SECS:
                    self.write_progress(self.fps)
                    last_progress = time.time()
                if time.time() - last_checkpoint >= t.checkpoint_interval_secs:
                    self.save_checkpoint()
                    last_checkpoint = time.time()
                if t.export_interval_steps and self.train_step % t.export_interval_steps == 0:
                    self.export()
        finally:
            reader.close()


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
