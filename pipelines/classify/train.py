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
    tcfg = cfg.train
    total = int(steps or tcfg.total_steps)
    data = load_dataset(dataset, data_dir, manual_dir, num_frames=cfg.data.num_frames,
                        frame_size=cfg.data.image_size)
    seq_len = cfg.data.num_frames if data.is_video else cfg.seq_len
    info = _run_info(root_dir, cfg, data, variant, seq_len)
    save_run_info(root_dir, info)
    model = build_model(info)
    optimizer = make_optimizer(tcfg, seq_len)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(ckpt, checkpoint_dir(root_dir),
                                         max_to_keep=tcfg.keep_checkpoints)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    start = int(optimizer.iterations.numpy())
    writer = tf.summary.create_file_writer(os.path.join(root_dir, "tensorboard"))
    step_fn = make_train_step(model, optimizer, tcfg.weight_decay, tcfg.grad_clip_norm)
    batches = iter(make_pipeline(data, "train", cfg.data, tcfg.batch_size, training=True,
                                 seed=seed))
    from pipelines.errors import DivergenceError
    from pipelines.rl.lifecycle import StopFlag

    def save_finite(at: int) -> None:
        """Checkpoints the weights, or (when an update that looked finite made them non-finite)
        stops with DivergenceError: non-finite weights are never saved, the last good checkpoint
        is kept as it was."""
        if variables_finite(model.variables):
            manager.save(checkpoint_number=at)
            return
        bar.close()
        writer.flush()
        raise DivergenceError(
            f"the weights are not finite after the update of step {at} (the loss and gradient "
            f"were finite, the step was too large); not checkpointed. The last finite checkpoint "
            f"is {manager.latest_checkpoint}. Lower train.learning_rate or set train.grad_clip_norm")

    stop = StopFlag().install()
    metrics, t_window, n_window = {}, time.perf_counter(), 0
    nonfinite, in_a_row = 0, 0
    bar = tqdm(total=total, initial=start, disable=not progress, unit="step", desc="train",
               dynamic_ncols=True)
    step = start
    while step < total and not stop.is_set():
        t = tcfg.seq_len_at(step, seq_len) if not data.is_video else seq_len
        inputs, labels = next(batches)
        metrics = {k: float(v) for k, v in step_fn(inputs, labels, t).items()}
        if not metrics.pop("applied"):
            nonfinite, in_a_row = nonfinite + 1, in_a_row + 1
            bar.write(f"step {step}: loss {metrics['loss']}, gradient norm {metrics['gradient_norm']}: "
                      f"not finite, update skipped ({in_a_row} in a row)")
            if in_a_row >= MAX_CONSECUTIVE_NONFINITE:
                bar.close()
                raise DivergenceError(
                    f"{in_a_row} training steps in a row had a non-finite loss or gradient (at step "
                    f"{step}); stopped. The last finite checkpoint is {manager.latest_checkpoint}. "
                    f"Lower train.learning_rate or set train.grad_clip_norm")
            continue
        in_a_row = 0
        step = int(optimizer.iterations.numpy())
        n_window += int(labels.shape[0])
        bar.update(1)
        if step % tcfg.summary_every == 0 or step == total:
            rate = n_window / max(time.perf_counter() - t_window, 1e-9)
            t_window, n_window = time.perf_counter(), 0
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.2f}",
                            T=t, img_s=f"{rate:.1f}")
            with writer.as_default(step=step):
                for k, v in metrics.items():
                    tf.summary.scalar(f"train/{k}", v)
                tf.summary.scalar("train/learning_rate",
                                  float(optimizer.learning_rate.numpy()))
                tf.summary.scalar("train/seq_len", t)
                tf.summary.scalar("train/images_per_second", rate)
            writer.flush()   # on disk now (TensorBoard and a watcher see it; the default waits 2 minutes)
        if step % tcfg.checkpoint_every == 0:
            save_finite(step)
    bar.close()
    saved = manager.latest_checkpoint is not None and manager.latest_checkpoint.endswith(f"-{step}")
    if not saved:
        save_finite(step)
    writer.flush()
    result = {"step": step, "resumed_from": start, "checkpoint": manager.latest_checkpoint,
              "nonfinite_steps": nonfinite, **metrics}
    if stop.is_set():
        result["stopped"] = stop.signal_name
    return result
