"""Classification data through TensorFlow Datasets (SPEC §4): loading and augmentation.

Datasets by ``--dataset`` name:

- ``imagenet2012``: TFDS's own builder, prepared from ``manual_dir`` holding the official
  ``ILSVRC2012_img_train.tar`` (one ``nXXXXXXXX.tar`` per class) and ``ILSVRC2012_img_val.tar``
  (``ILSVRC2012_val_XXXXXXXX.JPEG``); ``ILSVRC2012_img_test.tar`` is optional.
- ``kinetics600``: the project's builder (:mod:`pipelines.classify.kinetics`) over local clips
  and the official annotation CSVs in ``manual_dir``.
- ``image_folder``: ``tfds.ImageFolder(manual_dir)`` over ``manual_dir/<split>/<label>/*.png|jpg``.
- any other registered TFDS name: used as already prepared in ``data_dir`` (or prepared from
  ``manual_dir`` for manual-download datasets); nothing is ever downloaded.

Every pipeline yields ``(inputs, labels)``: images float32 ``[B, S, S, 3]`` in [0, 1] or video
float32 ``[B, T, S, S, 3]``, labels int32 ``[B]``.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tarfile
from typing import Optional

import tensorflow as tf
import tensorflow_datasets as tfds

from pipelines.classify.config import ClassifyDataConfig

IMAGENET_TRAIN_TAR = "ILSVRC2012_img_train.tar"
IMAGENET_VAL_TAR = "ILSVRC2012_img_val.tar"
_SYNSET_TAR = re.compile(r"^n\d{8}\.tar$")
_VAL_IMAGE = re.compile(r"^ILSVRC2012_val_\d{8}\.JPEG$")


@dataclasses.dataclass
class LoadedDataset:
    """A prepared dataset: the TFDS builder plus what the model needs to know about it."""
    name: str
    builder: tfds.core.DatasetBuilder
    num_classes: int
    class_names: list
    is_video: bool
    input_key: str

    def splits(self) -> list:
        return list(self.builder.info.splits.keys())

    def num_examples(self, split: str) -> int:
        return int(self.builder.info.splits[split].num_examples)

    def eval_split(self) -> str:
        for s in ("validation", "test"):
            if s in self.builder.info.splits:
                return s
        raise ValueError(f"dataset {self.name!r} has no validation or test split; "
                         f"splits are {self.splits()}")

    def check_split(self, split: str) -> None:
        if split not in self.builder.info.splits:
            raise ValueError(f"dataset {self.name!r} has no split {split!r}; "
                             f"splits are {self.splits()}")


# ----------------------------------------------------------------------------- ImageNet


def _first_member(tar_path: str) -> Optional[str]:
    with tarfile.open(tar_path, mode="r:") as tar:
        member = tar.next()
        return None if member is None else member.name


def check_imagenet_manual_dir(manual_dir: str) -> None:
    """Fails with a message naming the fault unless ``manual_dir`` has the official layout."""
    if not manual_dir or not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            f"ImageNet manual directory {manual_dir!r} does not exist; expected a directory "
            f"holding {IMAGENET_TRAIN_TAR} and {IMAGENET_VAL_TAR} (--manual-dir)")
    train = os.path.join(manual_dir, IMAGENET_TRAIN_TAR)
    val = os.path.join(manual_dir, IMAGENET_VAL_TAR)
    missing = [p for p in (train, val) if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"ImageNet archive(s) missing: {', '.join(missing)}; the manual directory must hold "
            f"the official {IMAGENET_TRAIN_TAR} (one nXXXXXXXX.tar per class) and "
            f"{IMAGENET_VAL_TAR} (ILSVRC2012_val_XXXXXXXX.JPEG files)")
    for path, pattern, form in ((train, _SYNSET_TAR, "per-class archives named nXXXXXXXX.tar"),
                                (val, _VAL_IMAGE, "images named ILSVRC2012_val_XXXXXXXX.JPEG")):
        try:
            first = _first_member(path)
        except tarfile.TarError as e:
            raise ValueError(f"{path} is not a readable tar archive ({e})") from None
        if first is None or not pattern.match(os.path.basename(first)) or "/" in first:
            raise ValueError(f"{path} has the wrong layout: its first member is {first!r}, "
                             f"expected {form} at the top level")
        if path == train and first[:-4] not in _imagenet_synsets():
            raise ValueError(f"{path}: {first!r} is not one of the 1000 ILSVRC2012 synsets "
                             f"(TFDS imagenet2012 labels.txt)")


def _imagenet_synsets() -> set:
    path = tfds.core.tfds_path("datasets/imagenet2012/labels.txt")
    return set(path.read_text().split())


def _download_config(manual_dir: Optional[str]) -> tfds.download.DownloadConfig:
    return tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)


def _builder_by_name(name: str, data_dir: str, **kwargs) -> tfds.core.DatasetBuilder:
    try:
        return tfds.builder(name, data_dir=data_dir, **kwargs)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"unknown dataset {name!r}: not a TFDS dataset; use imagenet2012, "
                         f"kinetics600, image_folder (with --manual-dir) or a registered TFDS "
                         f"image dataset name") from None


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
    return tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def prepare_imagenet(manual_dir: Optional[str], data_dir: str) -> tfds.core.DatasetBuilder:
    """The ``imagenet2012`` builder, prepared from the official archives if not done yet."""
    builder = _builder_by_name("imagenet2012", data_dir)
    if not _is_prepared(builder):
        check_imagenet_manual_dir(manual_dir)
        builder.download_and_prepare(download_config=_download_config(manual_dir))
    return builder


# ----------------------------------------------------------------------------- loading


def load_dataset(name: str, data_dir: str, manual_dir: Optional[str] = None,
                 num_frames: int = 32, frame_size: int = 256) -> LoadedDataset:
    """Prepares (when needed, never downloading) and opens the dataset called ``name``."""
    if not data_dir:
        raise ValueError("--data-dir is required: the directory TFDS prepares datasets in")
    if name == "imagenet2012":
        builder = prepare_imagenet(manual_dir, data_dir)
    elif name == "kinetics600":
        from pipelines.classify.kinetics import prepare_kinetics
        builder = prepare_kinetics(manual_dir, data_dir, num_frames=num_frames,
                                   frame_size=frame_size)
    elif name == "image_folder":
        if not manual_dir or not os.path.isdir(manual_dir):
            raise FileNotFoundError(
                f"image_folder needs --manual-dir pointing at a directory laid out as "
                f"<split>/<label>/<image>.png|jpg; got {manual_dir!r}")
        builder = tfds.ImageFolder(manual_dir)
        if not builder.info.splits:
            raise ValueError(f"{manual_dir} holds no images in the layout "
                             f"<split>/<label>/<image>.png|jpg")
        scan_image_folder(manual_dir, data_dir)
    else:
        builder = _builder_by_name(name, data_dir)
        if not _is_prepared(builder):
            if not getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
                raise FileNotFoundError(
                    f"dataset {name!r} is not prepared in {data_dir} and nothing is downloaded "
                    f"at run time; prepare it there first (tfds build {name} --data_dir "
                    f"{data_dir}) on a machine with network access")
            if not manual_dir:
                raise FileNotFoundError(f"dataset {name!r} needs --manual-dir: "
                                        f"{builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()}")
            builder.download_and_prepare(download_config=_download_config(manual_dir))
    return describe_builder(name, builder)


def scan_image_folder(manual_dir: str, data_dir: str) -> dict:
    """Finds the images of an image folder that cannot be read (empty, truncated or not an
    image); the input pipeline skips them (``ignore_errors``). Names them on stderr and in
    ``data_dir/image_folder_summary.json``; returns that summary. ValueError when no image (or
    no image of one split) can be read: there would be nothing to train or evaluate on."""
    import sys

    from PIL import Image

    from s3ta_tf.atomic_io import write_json_atomic

    bad, total, per_split = [], 0, {}
    for dirpath, _, files in sorted(os.walk(manual_dir)):
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            total += 1
            path = os.path.join(dirpath, name)
            split = os.path.relpath(path, manual_dir).split(os.sep, 1)[0]
            per_split.setdefault(split, [0, 0])[0] += 1
            try:
                with Image.open(path) as im:
                    im.load()  # decodes: a truncated file fails here, a header-only check would not
            except Exception as e:  # noqa: BLE001 (PIL raises many kinds for a bad file)
                reason = "empty file" if os.path.getsize(path) == 0 else f"{type(e).__name__}: {e}"
                bad.append({"file": os.path.relpath(path, manual_dir), "reason": reason[:200]})
                per_split[split][1] += 1
    summary = {"manual_dir": os.path.abspath(manual_dir), "images": total, "skipped": len(bad),
               "skipped_files": bad}
    os.makedirs(data_dir, exist_ok=True)
    write_json_atomic(os.path.join(data_dir, "image_folder_summary.json"), summary)
    # A split with no readable image would leave the input pipeline (which skips the bad ones)
    # waiting for ever: refuse it, naming the split and a few of its files.
    unreadable = [(None, total)] if total and len(bad) == total else [
        (split, n) for split, (n, n_bad) in sorted(per_split.items()) if n and n_bad == n]
    if unreadable:
        split, n = unreadable[0]
        files = [b["file"] for b in bad if split is None or b["file"].split(os.sep, 1)[0] == split]
        examples = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
        which = "" if split is None else f" of split {split!r}"
        raise ValueError(f"image_folder: none of the {n} images{which} in {manual_dir} can be read ({examples}); "
                         f"expected PNG/JPEG images laid out as <split>/<label>/<image> (the reasons "
                         f"are in {data_dir}/image_folder_summary.json)")
    if bad:
        names = ", ".join(f"{b['file']} ({b['reason']})" for b in bad[:5])
        print(f"image_folder: skipping {len(bad)} of {total} images that cannot be read: {names}"
              + (" ..." if len(bad) > 5 else "") + f" (all in {data_dir}/image_folder_summary.json)",
              file=sys.stderr)
    return summary


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def describe_builder(name: str, builder: tfds.core.DatasetBuilder) -> LoadedDataset:
    features = builder.info.features
    if "label" not in features:
        raise ValueError(f"dataset {name!r} has no 'label' feature; features are "
                         f"{list(features.keys())}")
    input_key = "video" if "video" in features else "image"
    if input_key not in features:
        raise ValueError(f"dataset {name!r} has neither an 'image' nor a 'video' feature")
    label = features["label"]
    names = list(label.names) if label.names else [str(i) for i in range(label.num_classes)]
    return LoadedDataset(name=name, builder=builder, num_classes=label.num_classes,
                         class_names=names, is_video=input_key == "video", input_key=input_key)


# ----------------------------------------------------------------------------- preprocessing


def _to_rgb(image: tf.Tensor) -> tf.Tensor:
    """uint8 ``[H, W, C]`` with C in {1, 3, 4} -> ``[H, W, 3]``."""
    c = tf.shape(image)[-1]
    return tf.cond(c == 1, lambda: tf.image.grayscale_to_rgb(image[..., :1]),
                   lambda: image[..., :3])


def random_aspect_crop(image: tf.Tensor, cfg: ClassifyDataConfig, seed=None) -> tf.Tensor:
    """Inception-style crop: random area fraction and aspect ratio, resized to image_size."""
    shape = tf.shape(image)
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        min_object_covered=0.1,
        aspect_ratio_range=(cfg.crop_aspect_min, cfg.crop_aspect_max),
        area_range=(cfg.crop_area_min, cfg.crop_area_max),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, size)
    return tf.image.resize(crop, (cfg.image_size, cfg.image_size), method="bilinear")


def color_distortion(image: tf.Tensor, strength: float) -> tf.Tensor:
    """Brightness, contrast, saturation and hue jitter on float ``[H, W, 3]`` in [0, 1]."""
    if strength <= 0:
        return image
    image = tf.image.random_brightness(image, 0.8 * strength)
    image = tf.image.random_contrast(image, 1 - 0.8 * strength, 1 + 0.8 * strength)
    image = tf.image.random_saturation(image, 1 - 0.8 * strength, 1 + 0.8 * strength)
    image = tf.image.random_hue(image, 0.2 * strength)
    return tf.clip_by_value(image, 0.0, 1.0)


def train_image(image: tf.Tensor, cfg: ClassifyDataConfig) -> tf.Tensor:
    """uint8 ``[H, W, C]`` -> float32 ``[S, S, 3]`` in [0, 1] with SPEC §4 augmentation."""
    image = _to_rgb(image)
    x = random_aspect_crop(image, cfg) / 255.0
    if cfg.horizontal_flip:
        x = tf.image.random_flip_left_right(x)
    return color_distortion(x, cfg.color_distortion)


def center_crop(image: tf.Tensor, size: int, crop_fraction: float) -> tf.Tensor:
    """Resizes the shorter side to ``size / crop_fraction`` and takes the central S×S crop.

    ``image``: ``[..., H, W, C]`` (a frame or a stack of frames) -> float32 ``[..., S, S, C]``.
    """
    shape = tf.shape(image)
    h, w = tf.cast(shape[-3], tf.float32), tf.cast(shape[-2], tf.float32)
    scale = (size / crop_fraction) / tf.minimum(h, w)
    nh = tf.maximum(size, tf.cast(tf.round(h * scale), tf.int32))
    nw = tf.maximum(size, tf.cast(tf.round(w * scale), tf.int32))
    lead = shape[:-3]
    flat = tf.reshape(image, tf.concat([[-1], shape[-3:]], 0))      # tf.image wants rank 4
    resized = tf.image.resize(flat, tf.stack([nh, nw]), method="bilinear")
    top, left = (nh - size) // 2, (nw - size) // 2
    crop = resized[:, top:top + size, left:left + size, :]
    out = tf.reshape(crop, tf.concat([lead, [size, size, shape[-1]]], 0))
    return tf.ensure_shape(out, image.shape[:-3].concatenate([size, size, image.shape[-1]]))


def eval_image(image: tf.Tensor, cfg: ClassifyDataConfig) -> tf.Tensor:
    """uint8 ``[H, W, C]`` -> float32 ``[S, S, 3]`` in [0, 1]: centre crop."""
    x = center_crop(_to_rgb(image), cfg.image_size, cfg.eval_crop_fraction) / 255.0
    return tf.ensure_shape(x, (cfg.image_size, cfg.image_size, 3))


def video_frames(video: tf.Tensor, cfg: ClassifyDataConfig) -> tf.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, S, S, 3]`` in [0, 1]: centre crop per frame."""
    x = center_crop(video, cfg.image_size, 1.0) / 255.0
    return tf.ensure_shape(x, (None, cfg.image_size, cfg.image_size, 3))


def decode_image(data: tf.Tensor) -> tf.Tensor:
    """Encoded image bytes (JPEG/PNG/...) -> uint8 ``[H, W, 3]``."""
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def decode_video(frames: tf.Tensor) -> tf.Tensor:
    """Encoded frames string ``[T]`` -> uint8 ``[T, H, W, 3]``."""
    return tf.map_fn(decode_image, frames, fn_output_signature=tf.uint8)


def make_pipeline(data: LoadedDataset, split: str, cfg: ClassifyDataConfig, batch_size: int,
                  training: bool, repeat: Optional[bool] = None, seed: Optional[int] = None
                  ) -> tf.data.Dataset:
    """Batched ``(inputs, labels)``: shuffled, augmented and repeated when ``training``.

    Examples are shuffled while still encoded (TFDS ``SkipDecoding``) and decoded after, so
    the shuffle buffer holds compressed bytes, not decoded images or clips.
    """
    data.check_split(split)
    key = data.input_key
    ds = data.builder.as_dataset(split=split, shuffle_files=training,
                                 decoders={key: tfds.decode.SkipDecoding()},
                                 read_config=tfds.ReadConfig(shuffle_seed=seed))
    if data.is_video:
        prep = lambda x: video_frames(decode_video(x), cfg)  # noqa: E731
    elif training:
        prep = lambda x: train_image(decode_image(x), cfg)  # noqa: E731
    else:
        prep = lambda x: eval_image(decode_image(x), cfg)  # noqa: E731
    if training:
        ds = ds.shuffle(min(cfg.shuffle_buffer, max(1, data.num_examples(split))), seed=seed)
    if training if repeat is None else repeat:
        ds = ds.repeat()
    ds = ds.map(lambda ex: (prep(ex[key]), tf.cast(ex["label"], tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if data.name == "image_folder":
        ds = ds.ignore_errors()  # unreadable images (named by scan_image_folder) are skipped
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
