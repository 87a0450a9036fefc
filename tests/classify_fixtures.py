"""Tiny datasets in the official layouts, for the classification tests (real files, real TFDS).

- :func:`make_imagenet_archives`: ``ILSVRC2012_img_train.tar`` holding ``nXXXXXXXX.tar`` per
  class (each with a few JPEGs named ``nXXXXXXXX_<id>.JPEG``) and ``ILSVRC2012_img_val.tar``
  with ``ILSVRC2012_val_0000000k.JPEG`` (labels come from TFDS's shipped validation list).
- :func:`make_kinetics_folder`: mp4 clips named ``<youtube_id>_<start:06d>_<end:06d>.mp4``
  plus ``train.csv`` / ``validate.csv`` in the official column layout, one corrupt clip and
  one clip referenced by the CSV but missing.
- :func:`make_digits_folder`: scikit-learn's 8×8 digits written as PNGs in the
  ``ImageFolder`` layout ``<split>/<label>/<n>.png``.
"""
from __future__ import annotations

import csv
import io
import os
import tarfile

import numpy as np
from PIL import Image

# The first synsets of TFDS's imagenet2012 labels.txt (real class names).
SYNSETS = ("n01440764", "n01443537", "n01484850")


def _jpeg_bytes(rng: np.random.Generator, size=(40, 48), colour=None) -> bytes:
    arr = rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)
    if colour is not None:
        arr[:] = np.asarray(colour, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_imagenet_archives(root: str, per_class: int = 3, num_val: int = 4, seed: int = 0) -> str:
    """Writes the two official archives into ``root``; returns ``root`` (the manual dir)."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    with tarfile.open(os.path.join(root, "ILSVRC2012_img_train.tar"), "w") as train:
        for k, synset in enumerate(SYNSETS):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as cls_tar:
                for i in range(per_class):
                    colour = [(255, 0, 0), (0, 255, 0), (0, 0, 255)][k]
                    _add_bytes(cls_tar, f"{synset}_{1000 + i}.JPEG", _jpeg_bytes(rng, colour=colour))
            _add_bytes(train, f"{synset}.tar", inner.getvalue())
    with tarfile.open(os.path.join(root, "ILSVRC2012_img_val.tar"), "w") as val:
        for i in range(1, num_val + 1):
            _add_bytes(val, f"ILSVRC2012_val_{i:08d}.JPEG", _jpeg_bytes(rng))
    return root


def write_clip(path: str, frames: np.ndarray, fps: int = 10) -> None:
    """Encodes uint8 ``[T, H, W, 3]`` frames as an MPEG-4 (mpeg4 codec) file with PyAV."""
    import av
    with av.open(path, mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


KINETICS_CLASSES = ("abseiling", "juggling balls")


def _clip_frames(label: int, num: int, size: int = 32) -> np.ndarray:
    """A clip whose frame k has a bright square moving along a class-dependent direction."""
    frames = np.zeros((num, size, size, 3), np.uint8)
    for k in range(num):
        p = 2 + (k * (size - 10)) // max(1, num - 1)
        y, x = (p, 4) if label == 0 else (4, p)
        frames[k, y:y + 6, x:x + 6] = (255, 255, 255)
        frames[k, ..., label] = np.maximum(frames[k, ..., label], 80)
    return frames


def make_kinetics_folder(root: str, train_per_class: int = 2, frames: int = 12) -> dict:
    """Clips + ``train.csv``/``validate.csv``; returns {split: (written, corrupt, missing)}."""
    os.makedirs(os.path.join(root, "clips"), exist_ok=True)
    header = ["label", "youtube_id", "time_start", "time_end", "split"]
    rows = {"train": [], "validate": []}
    n = 0
    for split, count in (("train", train_per_class), ("validate", 1)):
        for label, name in enumerate(KINETICS_CLASSES):
            for _ in range(count):
                yid = f"vid{n:08d}"[:11]
                start = 10 * n
                fname = f"{yid}_{start:06d}_{start + 10:06d}.mp4"
                write_clip(os.path.join(root, "clips", fname), _clip_frames(label, frames))
                rows[split].append([name, yid, start, start + 10, split])
                n += 1
    # One corrupt clip (garbage bytes) and one clip listed but absent, both in train.
    with open(os.path.join(root, "clips", "corrupt0000_000000_000010.mp4"), "wb") as f:
        f.write(b"this is not a video" * 10)
    rows["train"].append([KINETICS_CLASSES[0], "corrupt0000", 0, 10, "train"])
    rows["train"].append([KINETICS_CLASSES[1], "missing0000", 0, 10, "train"])
    for split, fname in (("train", "train.csv"), ("validate", "validate.csv")):
        with open(os.path.join(root, fname), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows[split])
    return {"train": (2 * train_per_class, 1, 1), "validation": (2, 0, 0)}


def make_digits_folder(root: str, test_fraction: float = 0.25, seed: int = 0) -> dict:
    """sklearn digits as ``root/{train,test}/<digit>/<n>.png`` (8×8 greyscale scaled to 0..255)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(len(images) * test_fraction)
    counts = {"train": 0, "test": 0}
    for rank, i in enumerate(order):
        split = "test" if rank < n_test else "train"
        d = os.path.join(root, split, str(int(digits.target[i])))
        os.makedirs(d, exist_ok=True)
        Image.fromarray(images[i], mode="L").save(os.path.join(d, f"{i:04d}.png"))
        counts[split] += 1
    return counts


def add_unlabelled_test_csv(root: str) -> None:
    """The original Kinetics-600 test.csv: no label column."""
    with open(os.path.join(root, "test.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["youtube_id", "time_start", "time_end", "split"])
        w.writerow(["vid00000000", 0, 10, "test"])
