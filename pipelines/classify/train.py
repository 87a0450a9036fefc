"""``s3ta classify train``: supervised training of an S3TA classifier (SPEC §4).

A small custom loop: SGD with momentum and a piecewise-constant learning rate (×decay at
each boundary), weight decay as an L2 penalty ``wd · Σ ½‖W‖²`` on every kernel, cross-entropy
on the final accumulated logits, and the T curriculum (``train.curriculum_seq_len`` until
``train.curriculum_steps``, then the requested T; one traced step function per T).
Progress bar with images/s and ETA, TensorBoard scalars, atomic checkpoints every
``train.checkpoint_every`` steps, at the end and at SIGINT/SIGTERM; a rerun with the same
``--root-dir`` resumes from the latest checkpoint. A step whose loss or gradients are not finite
is skipped and counted (``nonfinite_steps``); after ``MAX_CONSECUTIVE_NONFINITE`` in a row training
stops with :class:`pipelines.errors.DivergenceError`, as does an update that leaves the weights
non-finite (found when they are checkpointed, and always at the end: a run never ends with exit 0
on non-finite weights). Non-finite weights are never checkpointed.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

import tensorflow as tf
from tqdm import tqdm

from pipelines.classify.data import LoadedDataset, load_dataset, make_pipeline
from pipelines.classify.run import (RunInfo, build_model, checkpoint_dir, classification_record, load_run_info,
                                    save_run_info)
from pipelines.classify.config import ClassifyConfig, ClassifyTrainConfig
from s3ta_tf.checkpoints import variables_finite
from s3ta_tf.run_record import RUN_FILE

MAX_CONSECUTIVE_NONFINITE = 20  # skipped steps in a row before training gives up


def learning_rate_schedule(cfg: ClassifyTrainConfig, seq_len: int):
    """Piecewise constant: the base lr of the T the run *starts* with (SPEC §4: 0.1 at T = 4,
    0.01 for a run at T = 8 throughout), ×lr_decay from each of lr_boundaries on. The step at
    a boundary already uses the decayed rate, so in the T = 4 → 8 curriculum the ×0.1 step
    lands on the same step as the switch to T = 8 (the schedule is called with the number of
    updates done so far, and ``PiecewiseConstantDecay`` keeps a value up to its boundary)."""
    base = cfg.base_learning_rate(cfg.seq_len_at(0, seq_len))
    values = [base * cfg.lr_decay ** i for i in range(len(cfg.lr_boundaries) + 1)]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay([b - 1 for b in cfg.lr_boundaries], values)


def weight_decay_penalty(model: tf.keras.Model, weight_decay: float) -> tf.Tensor:
    """``wd · Σ ½‖W‖²`` over the trainable kernels (biases, BN and the basis excluded)."""
    kernels = [v for v in model.trainable_variables if "kernel" in v.name]
    if weight_decay <= 0 or not kernels:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in kernels])


def classification_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy of ``logits [B, K]`` against int ``labels [B]``."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


def make_train_step(model, optimizer, weight_decay: float, grad_clip_norm: float = 0.0
                    ) -> Callable:
    """Returns ``step(inputs, labels, seq_len) -> dict`` (a tf.function per static T).

    ``grad_clip_norm > 0`` clips the gradients by their global norm (off by default).
    """

    @tf.function
    def step(inputs, labels, seq_len):
        with tf.GradientTape() as tape:
            out = model(inputs, seq_len=seq_len, training=True)
            ce = classification_loss(out["logits"], labels)
            loss = ce + weight_decay_penalty(model, weight_decay)
        grads = tape.gradient(loss, model.trainable_variables)
        norm = tf.linalg.global_norm(grads)
        finite = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))
        if grad_clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, grad_clip_norm, use_norm=norm)

        def apply():
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return tf.constant(True)

        applied = tf.cond(finite, apply, lambda: tf.constant(False))  # a non-finite step is skipped
        correct = tf.equal(tf.argmax(out["logits"], -1, output_type=tf.int32), labels)
        return {"loss": loss, "cross_entropy": ce, "gradient_norm": norm,
                "accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)), "applied": applied}

    return step


def make_optimizer(cfg: ClassifyTrainConfig, seq_len: int) -> tf.keras.optimizers.Optimizer:
    return tf.keras.optimizers.SGD(learning_rate=learning_rate_schedule(cfg, seq_len),
                                   momentum=cfg.momentum)


def _run_info(root_dir, cfg, data: LoadedDataset, variant, seq_len) -> RunInfo:
    """A new run's info, or the saved one when resuming (which must match)."""
    info = RunInfo(config=cfg, dataset=data.name, class_names=data.class_names,
                   variant=variant, video=data.is_video, seq_len=seq_len)
    if os.path.isfile(os.path.join(root_dir, RUN_FILE)):
        saved = load_run_info(root_dir)
        for field in ("dataset", "variant", "video", "class_names"):
            if getattr(saved, field) != getattr(info, field):
                raise ValueError(f"--root-dir {root_dir} holds a run with a different "
                                 f"{field} ({getattr(saved, field)!r}); use a new --root-dir")
        if saved.config.model != cfg.model:
            raise ValueError(f"--root-dir {root_dir} holds a run with a different model "
                             f"config; use a new --root-dir or the same preset/overrides")
    return info


def train(cfg: ClassifyConfig, dataset: str, data_dir: str, root_dir: str,
          manual_dir: Optional[str] = None, variant: str = "s3ta",
          steps: Optional[int] = None, seed: int = 0, progress: bool = True) -> dict:
    """Trains (or resumes) until ``steps`` (default ``train.total_steps``); returns metrics."""
    classification_record(root_dir)   # a root of another kind of run is refused before the data is read
    tf.random.set_seed(seed)
    data = load_dataset(dataset, data_dir, manual_dir, num_frames=cfg.data.num_frames,
                        frame_size=cfg.data.image_size)
    seq_len = cfg.data.num_frames if data.is_video else cfg.seq_len
    info = _run_info(root_dir, cfg, data, variant, seq_len)
    save_run_info(root_dir, info)
    run = ClassifyRun(cfg, info, root_dir, seq_len)
    batches = iter(make_pipeline(data, "train", cfg.data, cfg.train.batch_size, training=True, seed=seed))
    return run.train(batches, int(steps or cfg.train.total_steps), progress)


class ClassifyRun:
    """One classification run's model, optimiser, checkpoints and summaries, and the loop that
    trains it: each step is applied, or skipped when not finite (see the module docstring)."""

    def __init__(self, cfg: ClassifyConfig, info: RunInfo, root_dir: str, seq_len: int):
        self.tcfg, self.seq_len, self.video = cfg.train, seq_len, info.video
        self.model = build_model(info)
        self.optimizer = make_optimizer(self.tcfg, seq_len)
        ckpt = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.manager = tf.train.CheckpointManager(ckpt, checkpoint_dir(root_dir),
                                                  max_to_keep=self.tcfg.keep_checkpoints)
        if self.manager.latest_checkpoint:
            ckpt.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
        self.writer = tf.summary.create_file_writer(os.path.join(root_dir, "tensorboard"))
        self.step_fn = make_train_step(self.model, self.optimizer, self.tcfg.weight_decay, self.tcfg.grad_clip_norm)
        self.nonfinite, self.in_a_row = 0, 0
        self.bar = None

    def train(self, batches, total: int, progress: bool) -> dict:
        from pipelines.rl.lifecycle import StopFlag

        stop = StopFlag().install()
        start = step = int(self.optimizer.iterations.numpy())
        metrics, self.window = {}, (time.perf_counter(), 0)
        self.bar = tqdm(total=total, initial=start, disable=not progress, unit="step", desc="train",
                        dynamic_ncols=True)
        while step < total and not stop.is_set():
            t = self.tcfg.seq_len_at(step, self.seq_len) if not self.video else self.seq_len
            inputs, labels = next(batches)
            metrics = {k: float(v) for k, v in self.step_fn(inputs, labels, t).items()}
            if not self._applied(metrics, step):
                continue
            step = int(self.optimizer.iterations.numpy())
            self.window = (self.window[0], self.window[1] + int(labels.shape[0]))
            self.bar.update(1)
            if step % self.tcfg.summary_every == 0 or step == total:
                self._summaries(step, metrics, t)
            if step % self.tcfg.checkpoint_every == 0:
                self._save_finite(step)
        self.bar.close()
        latest = self.manager.latest_checkpoint
        if latest is None or not latest.endswith(f"-{step}"):
            self._save_finite(step)
        self.writer.flush()
        result = {"step": step, "resumed_from": start, "checkpoint": self.manager.latest_checkpoint,
                  "nonfinite_steps": self.nonfinite, **metrics}
        if stop.is_set():
            result["stopped"] = stop.signal_name
        return result

    def _applied(self, metrics: dict, step: int) -> bool:
        """Whether the step's update was applied; counts a skipped one, and stops the run
        (DivergenceError) after too many in a row."""
        from pipelines.errors import DivergenceError

        if metrics.pop("applied"):
            self.in_a_row = 0
            return True
        self.nonfinite, self.in_a_row = self.nonfinite + 1, self.in_a_row + 1
        self.bar.write(f"step {step}: loss {metrics['loss']}, gradient norm {metrics['gradient_norm']}: "
                       f"not finite, update skipped ({self.in_a_row} in a row)")
        if self.in_a_row >= MAX_CONSECUTIVE_NONFINITE:
            self.bar.close()
            raise DivergenceError(
                f"{self.in_a_row} training steps in a row had a non-finite loss or gradient (at step "
                f"{step}); stopped. The last finite checkpoint is {self.manager.latest_checkpoint}. "
                f"Lower train.learning_rate or set train.grad_clip_norm")
        return False

    def _summaries(self, step: int, metrics: dict, seq_len: int) -> None:
        rate = self.window[1] / max(time.perf_counter() - self.window[0], 1e-9)
        self.window = (time.perf_counter(), 0)
        self.bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.2f}",
                             T=seq_len, img_s=f"{rate:.1f}")
        with self.writer.as_default(step=step):
            for k, v in metrics.items():
                tf.summary.scalar(f"train/{k}", v)
            tf.summary.scalar("train/learning_rate", float(self.optimizer.learning_rate.numpy()))
            tf.summary.scalar("train/seq_len", seq_len)
            tf.summary.scalar("train/images_per_second", rate)
        self.writer.flush()   # on disk now (TensorBoard and a watcher see it; the default waits 2 minutes)

    def _save_finite(self, at: int) -> None:
        """Checkpoints the weights, or (when an update that looked finite made them non-finite)
        stops with DivergenceError: non-finite weights are never saved, the last good checkpoint
        is kept as it was."""
        from pipelines.errors import DivergenceError

        if variables_finite(self.model.variables):
            self.manager.save(checkpoint_number=at)
            return
        self.bar.close()
        self.writer.flush()
        raise DivergenceError(
            f"the weights are not finite after the update of step {at} (the loss and gradient "
            f"were finite, the step was too large); not checkpointed. The last finite checkpoint "
            f"is {self.manager.latest_checkpoint}. Lower train.learning_rate or set train.grad_clip_norm")
