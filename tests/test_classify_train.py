"""Training, resume, evaluation, export and the CLI of `s3ta classify` on tiny real datasets."""
from __future__ import annotations

import glob
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from classify_fixtures import make_imagenet_archives, make_kinetics_folder
from pipelines.classify.data import load_dataset, make_pipeline
from pipelines.classify.evaluate import evaluate
from pipelines.classify.export import ClassifierServing, export_classifier
from pipelines.classify.run import load_classifier
from pipelines.classify.train import classification_loss, train
from pipelines.cli import main as cli_main
from pipelines.classify.config import classify_config

# Tiny and fast: 3 colour-coded ImageNet classes at 32x32, batch 8.
TINY = ["train.batch_size=8", "train.summary_every=1", "train.checkpoint_every=4",
        "train.learning_rate=0.02", "data.shuffle_buffer=16",
        "train.curriculum_seq_len=2", "train.curriculum_steps=3"]


@pytest.fixture(scope="module")
def imagenet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls_run")
    manual = make_imagenet_archives(str(root / "manual"), per_class=4, num_val=3)
    paths = {"manual": manual, "data": str(root / "data"), "run": str(root / "run"),
             "root": root}
    cfg = classify_config("small", TINY, seq_len=3)
    data = load_dataset("imagenet2012", paths["data"], manual)
    x, y = next(iter(make_pipeline(data, "train", cfg.data, 12, training=False,
                                   repeat=False)))
    # Loss on a fixed batch before training (the freshly initialised, seeded model), in
    # training mode (batch statistics): the quantity the optimiser lowers.
    tf.random.set_seed(0)
    from pipelines.classify.run import RunInfo, build_model
    info = RunInfo(cfg, "imagenet2012", data.class_names, "s3ta", False, 3)
    before = float(classification_loss(build_model(info)(x, training=True)["logits"], y))
    first = train(cfg, "imagenet2012", paths["data"], paths["run"], manual, steps=6,
                  progress=False)
    return paths, cfg, (x, y, before), first


@pytest.mark.slow
def test_training_lowers_the_loss(imagenet_run):
    paths, cfg, (x, y, before), first = imagenet_run
    assert first["step"] == 6 and first["resumed_from"] == 0
    _, model, _ = load_classifier(paths["run"])
    after = float(classification_loss(model(x, training=True)["logits"], y))
    assert after < before - 0.1, (before, after)


def test_checkpoints_atomic_and_resume(imagenet_run):
    paths, cfg, _, first = imagenet_run
    ckpts = sorted(os.path.basename(p) for p in glob.glob(paths["run"] + "/checkpoints/ckpt-*.index"))
    assert ckpts == ["ckpt-4.index", "ckpt-6.index"]
    assert not glob.glob(paths["run"] + "/checkpoints/*tempstate*")
    second = train(cfg, "imagenet2012", paths["data"], paths["run"], paths["manual"], steps=8,
                   progress=False)
    assert second["resumed_from"] == 6 and second["step"] == 8
    assert second["checkpoint"].endswith("ckpt-8")
    # A run directory holding another model config refuses to resume.
    other = classify_config("small", TINY + ["model.num_heads=3"], seq_len=3)
    with pytest.raises(ValueError, match="different model config"):
        train(other, "imagenet2012", paths["data"], paths["run"], paths["manual"], steps=9,
              progress=False)


def test_tensorboard_records_the_curriculum(imagenet_run):
    paths, *_ = imagenet_run
    from tensorflow.core.util import event_pb2
    seq = {}
    for f in glob.glob(paths["run"] + "/tensorboard/events.*"):
        for rec in tf.data.TFRecordDataset(f):
            ev = event_pb2.Event.FromString(rec.numpy())
            for v in ev.summary.value:
                if v.tag == "train/seq_len":
                    seq[ev.step] = float(tf.make_ndarray(v.tensor))
    # Curriculum: T=2 for the first 3 steps (global steps 1..3 logged after the update), then 3.
    assert seq[1] == 2 and seq[3] == 2 and seq[4] == 3 and seq[6] == 3


def test_eval_reports_top1_top5(imagenet_run):
    paths, *_ = imagenet_run
    r = evaluate(paths["run"], paths["data"], split="validation", batch_size=2, progress=False)
    assert r["examples"] == 3 and 0.0 <= r["top1"] <= r["top5"] <= 1.0
    assert os.path.isfile(os.path.join(paths["run"], "eval_validation.json"))


def _jpeg(colour, size=(30, 40)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((*size, 3), colour, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), colour, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_export_reload_equal_outputs_and_bad_bytes(imagenet_run):
    paths, cfg, (x, _, _), _ = imagenet_run
    out_dir = str(paths["root"] / "export")
    export_classifier(paths["run"], out_dir, top_k=3)
    loaded = tf.saved_model.load(out_dir)
    serve = loaded.signatures["serving_default"]
    info, model, _ = load_classifier(paths["run"])
    module = ClassifierServing(model, info, top_k=3)
    images = tf.constant([_jpeg((250, 10, 10)), _png((10, 250, 10))])
    got, want = serve(images=images), module.serve(images)
    for k in ("top_k_classes", "top_k_probabilities", "logits", "attention"):
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-5, atol=1e-6)
    assert got["attention"].shape == (2, 3, cfg.model.num_heads, *model.feature_shape)
    assert got["top_k_names"].numpy()[0, 0].decode() == info.class_names[
        int(got["top_k_classes"][0, 0])]
    # The preprocessed-input signature equals the model called directly.
    direct = model(x, training=False)["logits"].numpy()
    np.testing.assert_allclose(loaded.signatures["preprocessed"](inputs=x)["logits"].numpy(),
                               direct, rtol=1e-5, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not an encoded JPEG or PNG"):
        serve(images=tf.constant([_jpeg((1, 2, 3)), b"garbage bytes, not an image"]))
    with pytest.raises(ValueError, match="not empty"):
        export_classifier(paths["run"], out_dir)
    # The same SavedModel runs from saved_model_cli (inputs: a numpy bytes array).
    np.save(paths["root"] / "batch.npy", np.array([_jpeg((250, 10, 10)), _png((10, 250, 10))]))
    cli_out = paths["root"] / "cli_out"
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), "run", "--dir",
         out_dir, "--tag_set", "serve", "--signature_def", "serving_default", "--inputs",
         f"images={paths['root'] / 'batch.npy'}", "--outdir", str(cli_out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_array_equal(np.load(cli_out / "top_k_classes.npy"),
                                  got["top_k_classes"].numpy())
    np.testing.assert_allclose(np.load(cli_out / "attention.npy"), got["attention"].numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_kinetics_train_and_export_frames(tmp_path):
    make_kinetics_folder(str(tmp_path / "manual"), train_per_class=1, frames=6)
    cfg = classify_config("small", ["data.num_frames=3", "model.convlstm_channels=8",
                                    "model.key_channels=4", "train.batch_size=2"])
    r = train(cfg, "kinetics600", str(tmp_path / "data"), str(tmp_path / "run"),
              str(tmp_path / "manual"), steps=2, progress=False)
    assert r["step"] == 2
    export_classifier(str(tmp_path / "run"), str(tmp_path / "export"), top_k=2)
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    frames = tf.constant(np.random.default_rng(0).integers(0, 255, (1, 3, 40, 50, 3), np.uint8))
    out = serve(frames=frames)
    assert out["top_k_classes"].shape == (1, 2) and out["attention"].shape[:3] == (1, 3, 2)
    np.testing.assert_allclose(out["top_k_probabilities"].numpy().sum(), 1.0, rtol=1e-5)


def test_cli_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["classify", "train", "--dataset", "no_such_dataset", "--data-dir",
                  str(tmp_path), "--root-dir", str(tmp_path / "run")])
    assert e.value.code == 2
    assert "unknown dataset 'no_such_dataset'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(["classify", "train", "--dataset", "imagenet2012", "--data-dir",
                  str(tmp_path / "d"), "--manual-dir", str(tmp_path / "empty"),
                  "--root-dir", str(tmp_path / "run")])
    assert e.value.code == 2 and "ImageNet manual directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main(["classify", "eval", "--data-dir", str(tmp_path), "--root-dir",
                  str(tmp_path / "not_a_run")])
    assert e.value.code == 2 and "not a classification run directory" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["resnet", "recurrent-resnet"])
def test_baselines_train_and_export(imagenet_run, variant):
    paths, cfg, (x, _, _), _ = imagenet_run
    run = str(paths["root"] / f"run_{variant}")
    r = train(cfg, "imagenet2012", paths["data"], run, paths["manual"], variant=variant,
              steps=2, progress=False)
    assert r["step"] == 2 and np.isfinite(r["loss"])
    export_classifier(run, str(paths["root"] / f"export_{variant}"), top_k=2)
    serve = tf.saved_model.load(str(paths["root"] / f"export_{variant}")).signatures[
        "serving_default"]
    out = serve(images=tf.constant([_jpeg((0, 0, 250))]))
    assert out["top_k_classes"].shape == (1, 2) and "attention" not in out
