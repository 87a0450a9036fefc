"""A TFDS builder for Kinetics-600 over local clips and the official annotation CSVs.

Manual directory layout (as the official release is usually mirrored)::

    manual_dir/
      train.csv  validate.csv  [test.csv]     label,youtube_id,time_start,time_end,split[,...]
      **/<youtube_id>_<time_start:06d>_<time_end:06d>.<mp4|webm|mkv|avi>   (any sub-folders)

Each clip is decoded with PyAV, ``num_frames`` equally spaced frames are taken over the whole
clip (SPEC §4: 32), resized so the shorter side is ``frame_size`` (centre-cropped square) and
stored as JPEG frames. A clip listed in a CSV but absent, or one PyAV cannot decode, is
skipped and counted; the counts are written to ``prepare_summary.json`` next to the prepared
data and printed — never fatal. Classes are the sorted labels of ``train.csv``.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow_datasets as tfds

CSV_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
SPLIT_FILES = {"train": "train.csv", "validation": "validate.csv", "test": "test.csv"}
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi")


@dataclasses.dataclass(frozen=True)
class ClipRow:
    label: str
    youtube_id: str
    time_start: int
    time_end: int

    @property
    def clip_id(self) -> str:
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}"


def read_annotations(path: str) -> List[ClipRow]:
    """Rows of an official annotation CSV; a missing column raises ValueError naming it."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected a header with "
                             f"{','.join(CSV_COLUMNS)}")
        rows = []
        for n, r in enumerate(reader, start=2):
            try:
                rows.append(ClipRow(r["label"], r["youtube_id"], int(float(r["time_start"])),
                                    int(float(r["time_end"]))))
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{n}: time_start/time_end must be numbers, got "
                                 f"{r['time_start']!r}, {r['time_end']!r}") from None
        return rows


def _has_labels(path: str) -> bool:
    with open(path, newline="") as f:
        return "label" in (csv.DictReader(f).fieldnames or [])


def index_clips(root: str) -> Dict[str, str]:
    """Maps clip id (file stem) to path for every video file under ``root``."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, os.path.join(dirpath, name))
    return found


def equally_spaced(total: int, num: int) -> np.ndarray:
    """``num`` indices spread evenly over ``[0, total)`` from the first to the last frame."""
    if total < 1:
        raise ValueError("a clip with no frames")
    return np.round(np.linspace(0, total - 1, num)).astype(np.int64)


def square_resize(frame: np.ndarray, size: int) -> np.ndarray:
    """Centre-crops ``[H, W, 3]`` to a square and resizes it to ``[size, size, 3]``."""
    from PIL import Image
    h, w = frame.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = Image.fromarray(frame[top:top + s, left:left + s])
    return np.asarray(img.resize((size, size), Image.BILINEAR))


def decode_clip(path: str, num_frames: int, size: int) -> np.ndarray:
    """PyAV decode -> uint8 ``[num_frames, size, size, 3]`` equally spaced over the clip.

    Every frame is downscaled as soon as it is decoded (the frame count is only known at the
    end of the stream), so memory stays at ``frames × size² × 3`` bytes.
    """
    import av
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        frames = [square_resize(f.to_ndarray(format="rgb24"), size)
                  for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path}: no decodable frames")
    return np.stack([frames[i] for i in equally_spaced(len(frames), num_frames)])


class Kinetics600Config(tfds.core.BuilderConfig):
    """``num_frames`` equally spaced frames per clip, stored as ``frame_size``² squares."""

    def __init__(self, *, num_frames: int = 32, frame_size: int = 256, **kw):
        kw.setdefault("name", f"{num_frames}x{frame_size}")
        super().__init__(**kw)
        self.num_frames, self.frame_size = int(num_frames), int(frame_size)


class Kinetics600(tfds.core.GeneratorBasedBuilder):
    """Kinetics-600 from local clips (registered with TFDS as ``kinetics600``)."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [Kinetics600Config(num_frames=32, frame_size=256)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

    def __init__(self, *, manual_dir: Optional[str] = None, **kw):
        self._annotations_dir = manual_dir
        self.skipped: Dict[str, Dict[str, List[str]]] = {}
        super().__init__(**kw)

    def _class_names(self) -> Optional[List[str]]:
        if not self._annotations_dir:
            return None  # restored from label.labels.txt of the prepared dataset
        train = os.path.join(self._annotations_dir, SPLIT_FILES["train"])
        if not os.path.isfile(train):
            return None
        return sorted({r.label for r in read_annotations(train)})

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        names = self._class_names()
        return self.dataset_info_from_configs(
            description="Kinetics-600 clips from local files, equally spaced frames.",
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Video(shape=(c.num_frames, c.frame_size, c.frame_size, 3),
                                             encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(names=names) if names
                else tfds.features.ClassLabel(),
                "clip_id": tfds.features.Text(),
            }),
            supervised_keys=("video", "label"),
            homepage="https://github.com/cvdfoundation/kinetics-dataset",
        )

    def _split_generators(self, dl_manager):
        root = dl_manager.manual_dir
        clips = index_clips(root)
        gens = {}
        for split, fname in SPLIT_FILES.items():
            path = os.path.join(root, fname)
            if not os.path.isfile(path):
                continue
            if split == "test" and not _has_labels(path):
                # The original Kinetics-600 test.csv has no labels: nothing to classify against.
                self.skipped["test"] = {"unlabelled_csv": [path]}
                continue
            gens[split] = self._generate_examples(split, read_annotations(path), clips)
        return gens

    def _generate_examples(self, split: str, rows: List[ClipRow],
                           clips: Dict[str, str]) -> Iterator[Tuple[str, dict]]:
        c = self.builder_config
        names = set(self.info.features["label"].names)
        skipped = self.skipped.setdefault(split, {"missing": [], "corrupt": [],
                                                  "unknown_label": []})
        for row in rows:
            path = clips.get(row.clip_id)
            if path is None:
                skipped["missing"].append(row.clip_id)
                continue
            if row.label not in names:
                skipped["unknown_label"].append(row.clip_id)
                continue
            try:
                frames = decode_clip(path, c.num_frames, c.frame_size)
            except Exception as e:  # noqa: BLE001 -- any decoder failure means a corrupt clip
                skipped["corrupt"].append(f"{row.clip_id}: {type(e).__name__}: {e}"[:200])
                continue
            yield row.clip_id, {"video": frames, "label": row.label, "clip_id": row.clip_id}


def check_kinetics_manual_dir(manual_dir: Optional[str]) -> None:
    if not manual_dir or not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            f"Kinetics manual directory {manual_dir!r} does not exist; expected a directory "
            f"holding train.csv and validate.csv ({','.join(CSV_COLUMNS)}) and the clips "
            f"named <youtube_id>_<time_start:06d>_<time_end:06d>.mp4 (--manual-dir)")
    if not os.path.isfile(os.path.join(manual_dir, SPLIT_FILES["train"])):
        raise FileNotFoundError(f"{manual_dir} has no train.csv (the official annotation file "
                                f"with columns {','.join(CSV_COLUMNS)})")


def prepare_kinetics(manual_dir: Optional[str], data_dir: str, num_frames: int = 32,
                     frame_size: int = 256) -> Kinetics600:
    """Prepares (once) and returns the builder; prints and saves the skip summary."""
    config = Kinetics600Config(num_frames=num_frames, frame_size=frame_size)
    builder = Kinetics600(data_dir=data_dir, config=config, manual_dir=manual_dir)
    if os.path.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        return builder
    check_kinetics_manual_dir(manual_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual_dir, try_download_gcs=False))
    summary = {split: {"written": int(builder.info.splits[split].num_examples)
                       if split in builder.info.splits else 0,
                       **{k: len(v) for k, v in s.items()}, "skipped": s}
               for split, s in builder.skipped.items()}
    with open(os.path.join(builder.data_dir, "prepare_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    for split, s in summary.items():
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in s.items()
                           if k not in ("written", "skipped"))
        print(f"kinetics600 {split}: {s['written']} clips written; skipped: {counts}")
    return builder


def load_prepare_summary(builder: Kinetics600) -> dict:
    with open(os.path.join(builder.data_dir, "prepare_summary.json")) as f:
        return json.load(f)
