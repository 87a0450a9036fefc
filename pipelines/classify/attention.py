"""``s3ta classify attention``: a trained classifier's attention over its T steps, as a picture.

For each example: one row per head, one column per step (after the input). Each cell is the
head's map at that step upsampled onto the input (the image, or frame t of a video) with
the overlay of :mod:`pipelines.analysis.overlay` (bright = attended), titled with the step's
top class and its probability under the accumulated logits.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import tensorflow as tf

from pipelines.analysis.overlay import overlay_sequence
from pipelines.classify.data import load_dataset, make_pipeline
from pipelines.classify.run import load_classifier


def attention_steps(model, inputs: tf.Tensor) -> dict:
    """Runs the model; numpy ``attention [B, T, N, h, w]`` and ``step_probs [B, T, K]``."""
    out = model(inputs, training=False)
    if "attention" not in out:
        raise ValueError(f"the {model.variant} baseline has no attention maps; "
                         f"use an s3ta run")
    return {"attention": out["attention"].numpy(),
            "step_probs": tf.nn.softmax(out["step_logits"], -1).numpy()}


def draw_attention(images: np.ndarray, attention: np.ndarray, step_probs: np.ndarray,
                   labels: np.ndarray, class_names, out_path: str, alpha: float = 0.6) -> None:
    """``images`` uint8 ``[B, S, S, 3]`` or ``[B, T, S, S, 3]``; saves a PNG grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    b, t, n = attention.shape[:3]
    fig, axes = plt.subplots(b * n, t + 1, figsize=(1.6 * (t + 1), 1.7 * b * n), squeeze=False)
    for e in range(b):
        frames = images[e] if images.ndim == 5 else np.repeat(images[e][None], t, 0)
        panels = overlay_sequence(frames, attention[e], alpha)        # [T, N, S, S, 3]
        for h in range(n):
            row = axes[e * n + h]
            row[0].imshow(frames[0])
            row[0].set_title(f"{class_names[labels[e]]}"[:14] + f"\nhead {h}", fontsize=7)
            for s in range(t):
                k = int(step_probs[e, s].argmax())
                row[s + 1].imshow(panels[s, h])
                row[s + 1].set_title(f"t={s + 1}: {class_names[k]}"[:16]
                                     + f"\np={step_probs[e, s, k]:.2f}", fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def attention_picture(root_dir: str, data_dir: str, out_path: str,
                      manual_dir: Optional[str] = None, split: Optional[str] = None,
                      num_examples: int = 4) -> dict:
    """Draws the attention of the run's latest checkpoint on ``num_examples`` held-out inputs.
    An ``out_path`` without an extension gets ``.png`` (as matplotlib would add), so the result
    names the file written."""
    if not os.path.splitext(out_path)[1]:
        out_path += ".png"
    info, model, ckpt = load_classifier(root_dir)
    cfg = info.config
    data = load_dataset(info.dataset, data_dir, manual_dir, num_frames=cfg.data.num_frames,
                        frame_size=cfg.data.image_size)
    split = split or data.eval_split()
    x, y = next(iter(make_pipeline(data, split, cfg.data, num_examples, training=False)))
    steps = attention_steps(model, x)
    images = np.clip(np.rint(x.numpy() * 255), 0, 255).astype(np.uint8)
    draw_attention(images, steps["attention"], steps["step_probs"], y.numpy(),
                   info.class_names, out_path)
    labels = y.numpy()
    true_prob = steps["step_probs"][np.arange(len(labels)), :, labels]   # [B, T]
    return {"picture": out_path, "checkpoint": ckpt, "examples": int(len(labels)),
            "mean_true_class_prob_per_step": true_prob.mean(0).round(4).tolist()}
