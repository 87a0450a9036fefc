"""``s3ta classify export``: a SavedModel that classifies encoded images (or video frames).

Signature ``serving_default``:

- image runs: input ``images`` string ``[B]`` (JPEG or PNG bytes). Each is decoded to RGB,
  resized so its shorter side is ``S / eval_crop_fraction`` and centre-cropped to S×S (the
  evaluation preprocessing). Bytes that are neither JPEG nor PNG fail with an error saying so.
- video runs: input ``frames`` uint8 ``[B, T, H, W, 3]`` (T = the trained number of frames),
  each frame centre-cropped and resized to S×S.

Outputs: ``top_k_classes`` int32 ``[B, k]``, ``top_k_names`` string ``[B, k]``,
``top_k_probabilities`` float32 ``[B, k]`` (softmax of the final accumulated logits),
``logits`` float32 ``[B, K]``, ``attention`` float32 ``[B, T, N, h, w]`` (per-step maps; S3TA
only). Run it with ``saved_model_cli run --dir DIR --tag_set serve --signature_def
serving_default --inputs images=batch.npy`` where ``batch.npy`` is a numpy bytes array.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

from pipelines.classify.data import center_crop
from pipelines.classify.run import RunInfo, load_classifier

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_encoded_image(data: tf.Tensor) -> tf.Tensor:
    """Asserts that scalar string ``data`` holds JPEG or PNG bytes (clear error otherwise)."""
    ok = tf.logical_or(tf.io.is_jpeg(data), tf.equal(tf.strings.substr(data, 0, 8), _PNG_MAGIC))
    with tf.control_dependencies([tf.debugging.Assert(ok, [
            "serving_default: an element of 'images' is not an encoded JPEG or PNG image; "
            "expected string [B] of JPEG/PNG file bytes. First bytes:",
            tf.strings.substr(data, 0, 16)], summarize=1)]):
        return tf.identity(data)


class ClassifierServing(tf.Module):
    """The exported module: preprocessing + the trained classifier + top-k."""

    def __init__(self, model, info: RunInfo, top_k: int = 5):
        super().__init__(name="classifier_serving")
        self.model = model
        self.image_size = info.config.data.image_size
        self.crop_fraction = info.config.data.eval_crop_fraction
        self.top_k = min(int(top_k), info.num_classes)
        self.class_names = tf.constant(info.class_names)
        self.seq_len = info.seq_len
        s = self.image_size
        if info.video:
            self.serve = tf.function(self._serve_frames, input_signature=[
                tf.TensorSpec([None, info.seq_len, None, None, 3], tf.uint8, name="frames")])
        else:
            self.serve = tf.function(self._serve_images, input_signature=[
                tf.TensorSpec([None], tf.string, name="images")])
        self.preprocessed = tf.function(self._outputs, input_signature=[
            tf.TensorSpec(model.input_signature_shape[:1] + (info.seq_len,) * info.video
                          + (s, s, 3), tf.float32, name="inputs")])

    def _decode(self, data):
        image = tf.io.decode_image(check_encoded_image(data), channels=3,
                                   expand_animations=False)
        x = center_crop(image, self.image_size, self.crop_fraction) / 255.0
        return tf.ensure_shape(x, (self.image_size, self.image_size, 3))

    def _serve_images(self, images):
        x = tf.map_fn(self._decode, images, fn_output_signature=tf.float32)
        return self._outputs(x)

    def _serve_frames(self, frames):
        x = center_crop(frames, self.image_size, 1.0) / 255.0
        return self._outputs(x)

    def _outputs(self, x):
        out = self.model(x, training=False)
        probs = tf.nn.softmax(out["logits"], axis=-1)
        top_p, top_i = tf.math.top_k(probs, k=self.top_k)
        result = {"top_k_classes": top_i, "top_k_names": tf.gather(self.class_names, top_i),
                  "top_k_probabilities": top_p, "logits": out["logits"]}
        if "attention" in out:
            result["attention"] = out["attention"]
        return result


def export_classifier(root_dir: str, export_dir: str, top_k: int = 5,
                      checkpoint: Optional[str] = None) -> dict:
    """Writes the SavedModel into ``export_dir`` atomically (temp dir, then rename); a
    non-empty ``export_dir`` is refused before the model is loaded."""
    export_dir = os.path.abspath(export_dir)
    if os.path.isdir(export_dir) and os.listdir(export_dir):
        raise ValueError(f"export directory {export_dir} exists and is not empty; "
                         f"choose a new one")
    info, model, ckpt_path = load_classifier(root_dir, checkpoint)
    module = ClassifierServing(model, info, top_k)
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        tf.saved_model.save(module, tmp, signatures={
            "serving_default": module.serve, "preprocessed": module.preprocessed})
        with open(os.path.join(tmp, "assets.extra.json"), "w") as f:
            json.dump({"class_names": info.class_names, "checkpoint": ckpt_path,
                       "dataset": info.dataset, "variant": info.variant,
                       "seq_len": info.seq_len}, f, indent=2)
        if os.path.isdir(export_dir):
            os.rmdir(export_dir)
        os.replace(tmp, export_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"export_dir": export_dir, "checkpoint": ckpt_path, "video": info.video,
            "top_k": module.top_k}
