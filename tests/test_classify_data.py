"""Classification data through the real TFDS builders on tiny datasets in the official layouts."""
from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from classify_fixtures import (SYNSETS, add_unlabelled_test_csv, make_imagenet_archives,
                               make_kinetics_folder)
from pipelines.classify.data import (center_crop, check_imagenet_manual_dir, eval_image,
                                     load_dataset, make_pipeline, train_image)
from pipelines.classify.kinetics import equally_spaced, read_annotations
from pipelines.classify.config import classify_config


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    manual = make_imagenet_archives(str(root / "manual"), per_class=3, num_val=4)
    return load_dataset("imagenet2012", str(root / "data"), manual)


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinetics")
    expected = make_kinetics_folder(str(root / "manual"), train_per_class=2, frames=12)
    add_unlabelled_test_csv(str(root / "manual"))
    data = load_dataset("kinetics600", str(root / "data"), str(root / "manual"),
                        num_frames=4, frame_size=32)
    return data, expected, root


def test_imagenet_builder_reads_official_archives(imagenet):
    assert imagenet.builder.name == "imagenet2012"
    assert sorted(imagenet.splits()) == ["train", "validation"]   # no test archive: no split
    assert imagenet.num_examples("train") == 9 and imagenet.num_examples("validation") == 4
    assert imagenet.num_classes == 1000 and not imagenet.is_video
    names = imagenet.class_names
    for ex in imagenet.builder.as_dataset(split="train"):
        fname = ex["file_name"].numpy().decode()
        assert names[int(ex["label"])] == fname.split("_")[0]
        assert int(ex["label"]) in [names.index(s) for s in SYNSETS]
    # Validation labels come from the list TFDS ships, in sorted file-name order.
    shipped = tfds.core.tfds_path("datasets/imagenet2012/validation_labels.txt").read_text()
    first4 = shipped.split()[:4]
    for ex in imagenet.builder.as_dataset(split="validation"):
        k = int(ex["file_name"].numpy().decode()[-13:-5]) - 1
        assert names[int(ex["label"])] == first4[k]


def test_imagenet_pipelines_shapes_and_ranges(imagenet):
    cfg = classify_config("small").data
    x, y = next(iter(make_pipeline(imagenet, "train", cfg, 4, training=True, seed=1)))
    assert x.shape == (4, 32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    x, y = next(iter(make_pipeline(imagenet, "validation", cfg, 4, training=False)))
    assert x.shape == (4, 32, 32, 3)
    x2, y2 = next(iter(make_pipeline(imagenet, "validation", cfg, 4, training=False)))
    np.testing.assert_array_equal(x.numpy(), x2.numpy())   # evaluation is deterministic


def test_center_crop_and_augmentation():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 30:50] = 255                                     # a bright central band
    cfg = classify_config("small").data
    x = eval_image(tf.constant(img), cfg).numpy()
    assert x.shape == (32, 32, 3)
    assert x[:, 14:18].mean() > 0.9 and x[:, :3].mean() < 0.05   # centre kept, sides cut
    assert center_crop(tf.zeros([5, 20, 30, 3]), 8, 1.0).shape == (5, 8, 8, 3)
    grey = tf.constant(np.full((10, 12, 1), 128, np.uint8))
    assert train_image(grey, cfg).shape == (32, 32, 3)
    # Flip and colour distortion change the image; the crop keeps the output size.
    tf.random.set_seed(3)
    rgb = tf.constant(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8))
    outs = [train_image(rgb, cfg).numpy() for _ in range(4)]
    assert all(o.shape == (32, 32, 3) for o in outs)
    assert max(np.abs(outs[0] - o).max() for o in outs[1:]) > 0.05


def test_imagenet_missing_archive_is_a_clear_error(tmp_path):
    manual = make_imagenet_archives(str(tmp_path / "manual"), per_class=1, num_val=1)
    os.remove(os.path.join(manual, "ILSVRC2012_img_val.tar"))
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_val.tar"):
        load_dataset("imagenet2012", str(tmp_path / "data"), manual)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("imagenet2012", str(tmp_path / "data2"), str(tmp_path / "nowhere"))


def test_imagenet_wrong_layout_is_a_clear_error(tmp_path):
    manual = make_imagenet_archives(str(tmp_path / "manual"), per_class=1, num_val=1)
    # A train archive of loose JPEGs instead of one tar per class.
    with tarfile.open(os.path.join(manual, "ILSVRC2012_img_train.tar"), "w") as tar:
        info = tarfile.TarInfo("n01440764_1.JPEG")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ValueError, match="wrong layout.*nXXXXXXXX.tar"):
        check_imagenet_manual_dir(manual)
    with tarfile.open(os.path.join(manual, "ILSVRC2012_img_train.tar"), "w") as tar:
        info = tarfile.TarInfo("n99999999.tar")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ValueError, match="n99999999.tar.*not one of the 1000"):
        check_imagenet_manual_dir(manual)
    with open(os.path.join(manual, "ILSVRC2012_img_train.tar"), "wb") as f:
        f.write(b"not a tar")
    with pytest.raises(ValueError, match="not a readable tar"):
        check_imagenet_manual_dir(manual)


def test_unknown_and_unprepared_datasets(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'no_such_dataset'"):
        load_dataset("no_such_dataset", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not prepared.*nothing is downloaded"):
        load_dataset("mnist", str(tmp_path))
    assert not os.path.exists(tmp_path / "downloads")


def test_kinetics_builder_skips_and_counts_bad_clips(kinetics):
    data, expected, _ = kinetics
    from pipelines.classify.kinetics import load_prepare_summary
    assert data.is_video and data.class_names == ["abseiling", "juggling balls"]
    summary = load_prepare_summary(data.builder)
    for split, (written, corrupt, missing) in expected.items():
        assert data.num_examples(split) == written
        assert summary[split]["written"] == written
        assert summary[split]["corrupt"] == corrupt and summary[split]["missing"] == missing
    assert summary["train"]["skipped"]["missing"] == ["missing0000_000000_000010"]
    assert summary["test"]["unlabelled_csv"] == 1 and "test" not in data.splits()


def test_kinetics_frames_are_equally_spaced(kinetics):
    data, _, _ = kinetics
    assert list(equally_spaced(12, 4)) == [0, 4, 7, 11]
    for ex in data.builder.as_dataset(split="train"):
        video = ex["video"].numpy()                           # [4, 32, 32, 3]
        assert video.shape == (4, 32, 32, 3)
        label = int(ex["label"])
        # The white square moves along y (label 0) or x (label 1): p = 2 + k*22//11.
        expected = [2 + (k * 22) // 11 + 3 for k in (0, 4, 7, 11)]  # square centres
        bright = video.min(axis=-1) > 200
        for f, want in zip(bright, expected):
            ys, xs = np.nonzero(f)
            centre = ys.mean() if label == 0 else xs.mean()
            assert abs(centre - want) <= 2.0


def test_kinetics_reopens_without_manual_dir_and_pipeline(kinetics):
    data, _, root = kinetics
    again = load_dataset("kinetics600", str(root / "data"), None, num_frames=4, frame_size=32)
    assert again.class_names == data.class_names
    cfg = classify_config("small").data
    x, y = next(iter(make_pipeline(again, "train", cfg, 2, training=True)))
    assert x.shape == (2, 4, 32, 32, 3) and set(y.numpy()) <= {0, 1}


def test_kinetics_bad_annotations(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("label,youtube_id,time_start\nx,abc,0\n")
    with pytest.raises(ValueError, match="missing column.*time_end"):
        read_annotations(str(bad))
    (tmp_path / "empty_manual").mkdir()
    with pytest.raises(FileNotFoundError, match="no train.csv"):
        load_dataset("kinetics600", str(tmp_path / "data"), str(tmp_path / "empty_manual"),
                     num_frames=4, frame_size=32)


class TinyStripes(tfds.core.GeneratorBasedBuilder):
    """A registered TFDS image dataset (vertical vs horizontal stripes), prepared locally."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(12, 12, 3)),
            "label": tfds.features.ClassLabel(names=["vertical", "horizontal"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6), "test": self._generate_examples(2)}

    def _generate_examples(self, n):
        for i in range(n):
            img = np.zeros((12, 12, 3), np.uint8)
            if i % 2:
                img[::3] = 255
            else:
                img[:, ::3] = 255
            yield i, {"image": img, "label": i % 2}


def test_any_prepared_tfds_dataset_by_name(tmp_path):
    TinyStripes(data_dir=str(tmp_path)).download_and_prepare()
    data = load_dataset("tiny_stripes", str(tmp_path))
    assert data.class_names == ["vertical", "horizontal"] and data.eval_split() == "test"
    cfg = classify_config("small").data
    x, y = next(iter(make_pipeline(data, "test", cfg, 2, training=False)))
    assert x.shape == (2, 32, 32, 3) and sorted(y.numpy()) == [0, 1]
    with pytest.raises(ValueError, match="no split 'validation'"):
        make_pipeline(data, "validation", cfg, 2, training=False)
