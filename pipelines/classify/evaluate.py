"""``s3ta classify eval``: top-1 / top-5 accuracy of a trained run on a held-out split."""
from __future__ import annotations

import json
import os
from typing import Optional

import tensorflow as tf
from tqdm import tqdm

from pipelines.classify.data import load_dataset, make_pipeline
from pipelines.classify.run import load_classifier
from s3ta_tf.atomic_io import write_text_atomic
from s3ta_tf.checkpoints import variables_finite


def top_k_correct(logits: tf.Tensor, labels: tf.Tensor, k: int) -> tf.Tensor:
    """Number of rows whose label is among the ``k`` largest logits."""
    k = min(k, int(logits.shape[-1]))
    return tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, k), tf.int64))


def evaluate(root_dir: str, data_dir: str, manual_dir: Optional[str] = None,
             split: Optional[str] = None, batch_size: int = 64,
             max_examples: Optional[int] = None, progress: bool = True) -> dict:
    """Restores the latest checkpoint of ``root_dir``; returns and saves top-1/top-5."""
    info, model, ckpt_path = load_classifier(root_dir)
    if not variables_finite(model.variables):
        raise ValueError(f"checkpoint {ckpt_path} holds non-finite weights (NaN or inf): the run "
                         f"diverged, and its accuracy would mean nothing; evaluate a run whose "
                         f"checkpoints are finite (retrain with a lower train.learning_rate)")
    cfg = info.config
    data = load_dataset(info.dataset, data_dir, manual_dir, num_frames=cfg.data.num_frames,
                        frame_size=cfg.data.image_size)
    split = split or data.eval_split()
    ds = make_pipeline(data, split, cfg.data, batch_size, training=False)
    if max_examples:
        ds = ds.unbatch().take(max_examples).batch(batch_size)

    @tf.function
    def logits_of(x):
        return model(x, training=False)["logits"]

    n = top1 = top5 = 0
    total = min(data.num_examples(split), max_examples or data.num_examples(split))
    with tqdm(total=total, disable=not progress, unit="img", desc=f"eval {split}") as bar:
        for x, y in ds:
            logits = logits_of(x)
            top1 += int(top_k_correct(logits, y, 1))
            top5 += int(top_k_correct(logits, y, 5))
            n += int(y.shape[0])
            bar.update(int(y.shape[0]))
    if n == 0:
        raise ValueError(f"split {split!r} of {info.dataset!r} is empty")
    result = {"dataset": info.dataset, "split": split, "checkpoint": ckpt_path, "examples": n,
              "seq_len": info.seq_len, "top1": top1 / n, "top5": top5 / n}
    write_text_atomic(os.path.join(root_dir, f"eval_{split}.json"), json.dumps(result, indent=2))
    return result
