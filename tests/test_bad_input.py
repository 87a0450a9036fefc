"""Bad input never costs data or shows a traceback (issue 11). Each case asserts the exit code,
that the message names the fault, and for the data-loss cases that nothing the user had is
lost. The table of these cases is docs/BAD_INPUT.md."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from agents.impala.builder import RunSpec
from pipelines.cli import main
from s3ta_tf import agent_config, build_agent_net
from s3ta_tf.checkpoints import save_checkpoint
from s3ta_tf.export import export_saved_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "MiniGrid-Empty-5x5-v0"
SMALL = ["--preset", "small", "--env", ENV, "--set", "model.observation_shape=24,24,3"]


def fails(capsys, *argv, code=2):
    """Runs ``s3ta argv`` in-process; returns stderr after checking the exit code and that no
    traceback was printed."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    err = capsys.readouterr().err
    assert exc.value.code == code, err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------- 1-3: data loss
def test_export_refuses_a_directory_that_is_not_an_export(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "notes.txt").write_text("x")
    err = fails(capsys, "export", "--preset", "small", "--num-actions", "7", "--out", str(out))
    assert "non-empty directory that is not an s3ta export" in err and "notes.txt" in err
    assert (out / "notes.txt").read_text() == "x" and sorted(os.listdir(out)) == ["notes.txt"]
    a_file = tmp_path / "f"
    a_file.write_text("keep")
    err = fails(capsys, "export", "--preset", "small", "--num-actions", "7", "--out", str(a_file))
    assert "is an existing file" in err and a_file.read_text() == "keep"
    assert not (tmp_path / "f.old").exists()
    # A previous export is replaced (atomically), and an empty directory is used.
    (tmp_path / "e").mkdir()
    assert main(["export", "--preset", "small", "--num-actions", "7", "--out", str(tmp_path / "e")]) == 0
    assert main(["export", "--preset", "small", "--num-actions", "5", "--out", str(tmp_path / "e")]) == 0
    meta = json.loads((tmp_path / "e" / "assets.extra" / "s3ta_config.json").read_text())
    assert meta["num_actions"] == 5 and sorted(p.name for p in tmp_path.iterdir()) == ["d", "e", "f"]


def test_export_refuses_a_previous_export_that_holds_other_files(tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["export", "--preset", "small", "--num-actions", "7", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    before = sorted(os.listdir(out))
    pb = (out / "saved_model.pb").read_bytes()
    err = fails(capsys, "export", "--preset", "small", "--num-actions", "5", "--out", str(out))
    assert "is a previous s3ta export that also holds notes.txt" in err and "nothing was written" in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "notes.txt").read_text() == "mine" and sorted(os.listdir(out)) == before
    assert (out / "saved_model.pb").read_bytes() == pb
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]   # no temporary export left behind


def test_train_refuses_a_root_that_records_another_run(tmp_path, capsys):
    root = tmp_path / "run"
    RunSpec.from_args("small", "attention", ["model.observation_shape=24,24,3"], env_id=ENV
                      ).write_or_check(str(root), 7)
    before = (root / "run.json").read_text()
    err = fails(capsys, "train", *SMALL[:2], "--env", "MiniGrid-Empty-6x6-v0", "--set",
                "model.observation_shape=24,24,3", "--root-dir", str(root))
    assert "env: recorded 'MiniGrid-Empty-5x5-v0', this run 'MiniGrid-Empty-6x6-v0'" in err
    assert "--fine-tune-from" in err
    # Another agent or a learning setting: every differing field is named, no config dump.
    err = fails(capsys, "train", *SMALL, "--agent", "lstm", "--set", "train.learning_rate=0.1",
                "--root-dir", str(root))
    assert "agent: recorded 'attention', this run 'lstm'" in err
    assert "train.learning_rate: recorded 0.0005, this run 0.1" in err and "query_hidden" not in err
    assert (root / "run.json").read_text() == before
    # What may change on resume (run length, actors, intervals) is not a difference.
    assert RunSpec.from_args("small", "attention", ["model.observation_shape=24,24,3", "train.max_frames=5",
                                                    "train.num_actors=3"], env_id=ENV
                             ).check_record(str(root), 7)["train_config"]["num_actors"] == 3


def test_train_refuses_a_root_of_another_preset_in_one_short_line(tmp_path, capsys):
    root = tmp_path / "run"
    RunSpec.from_args("small", "attention", env_id=ENV).write_or_check(str(root), 7)
    before = (root / "run.json").read_text()
    err = fails(capsys, "train", "--preset", "atari-cpu", "--env", ENV, "--root-dir", str(root))
    assert "preset differs: run has 'small', you asked for 'atari-cpu'" in err
    assert " more)" in err and "--fine-tune-from" in err     # at most 5 fields named, then "and N more"
    assert len(err.strip().splitlines()) == 1 and len(err) < 600 + 2 * len(str(root)), err
    assert (root / "run.json").read_text() == before


def _checkpoint_files(directory):
    return {name: open(os.path.join(directory, name), "rb").read() for name in sorted(os.listdir(directory))}


@pytest.mark.slow
def test_classify_skips_non_finite_steps_and_stops_without_saving_them(tmp_path, capsys):
    from classify_fixtures import make_digits_folder
    src = tmp_path / "digits"
    make_digits_folder(str(src))
    root = tmp_path / "run"
    train = ["classify", "train", "--dataset", "image_folder", "--manual-dir", str(src),
             "--data-dir", str(tmp_path / "tfds"), "--root-dir", str(root), "--preset", "small",
             "--no-progress"]
    assert main(train + ["--steps", "3"]) == 0   # a few good steps: ckpt-3
    capsys.readouterr()
    good = _checkpoint_files(root / "checkpoints")
    assert tf.train.latest_checkpoint(str(root / "checkpoints")).endswith("ckpt-3")

    def huge(lr):
        return ["--set", f"train.learning_rate={lr}", "--set", f"train.learning_rate_long={lr}"]

    # Resumed with a huge learning rate: the weights blow up, every later step is non-finite.
    err = fails(capsys, *train, "--steps", "60", *huge("1e30"), code=1)
    assert "training steps in a row had a non-finite loss or gradient" in err and "ckpt-3" in err
    assert _checkpoint_files(root / "checkpoints") == good
    # The last update of the run (finite loss and gradient) leaves the weights non-finite: the
    # run does not end with exit 0, and nothing is saved.
    err = fails(capsys, *train, "--steps", "4", *huge("inf"), code=1)
    assert "the weights are not finite after the update of step 4" in err and "ckpt-3" in err
    assert "train.learning_rate" in err and len(err.strip().splitlines()) == 1
    assert _checkpoint_files(root / "checkpoints") == good
    for name, _ in tf.train.list_variables(str(root / "checkpoints" / "ckpt-3")):
        value = tf.train.load_variable(str(root / "checkpoints" / "ckpt-3"), name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name
    # A checkpoint holding non-finite weights (written by something else) is refused by eval.
    from pipelines.classify.run import checkpoint_dir, load_classifier
    _, model, _ = load_classifier(str(root))
    model.trainable_variables[0].assign(tf.fill(model.trainable_variables[0].shape, np.nan))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), checkpoint_dir(str(root)), 5
                               ).save(checkpoint_number=99)
    err = fails(capsys, "classify", "eval", "--data-dir", str(tmp_path / "tfds"), "--manual-dir", str(src),
                "--root-dir", str(root), "--no-progress")
    assert "ckpt-99 holds non-finite weights (NaN or inf)" in err and len(err.strip().splitlines()) == 1
    assert not (root / "eval_test.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_classify_checkpoints_on_sigint_and_writes_valid_json(tmp_path, sig, code):
    from classify_fixtures import make_digits_folder
    src = tmp_path / "digits"
    make_digits_folder(str(src))
    root = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "classify", "train", "--dataset", "image_folder",
         "--manual-dir", str(src), "--data-dir", str(tmp_path / "tfds"), "--root-dir", str(root),
         "--preset", "small", "--steps", "100000", "--no-progress", "--set", "train.summary_every=5",
         "--set", "train.checkpoint_every=100000"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Signal once the first summary (step 5) is on disk, whatever the machine's speed; with no
    # periodic checkpoint before step 100,000, the only checkpoint is the one the signal writes.
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _summary_steps(root / "tensorboard") < 1:
        time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    result = json.loads(out[out.index("{"):])   # valid JSON (no NaN literal)
    assert result["stopped"] == sig.name and 5 <= result["step"] < 100000
    assert tf.train.latest_checkpoint(str(root / "checkpoints")).endswith(f"-{result['step']}")
    assert len(tf.train.get_checkpoint_state(str(root / "checkpoints")).all_model_checkpoint_paths) == 1


def _summary_steps(tensorboard_dir) -> int:
    """How many summary steps the event files under ``tensorboard_dir`` hold (0 while none)."""
    steps = set()
    for path in glob.glob(os.path.join(str(tensorboard_dir), "**", "events.*"), recursive=True):
        try:
            for event in tf.compat.v1.train.summary_iterator(path):
                if event.summary.value:
                    steps.add(event.step)
        except tf.errors.DataLossError:   # a record still being written
            pass
    return len(steps)


# ---------------------------------------------------------------- 4: silent wrong values
CLASSIFY_TRAIN = ["classify", "train", "--dataset", "image_folder", "--data-dir", "/tmp/x", "--root-dir", "/tmp/y"]


@pytest.mark.parametrize("argv, message", [
    (["train", *SMALL, "--max-frames", "0"], "--max-frames must be >= 1, got 0"),
    (["train", *SMALL, "--actors", "0"], "--actors must be >= 1, got 0"),
    (["train", *SMALL, "--envs-per-actor", "0"], "--envs-per-actor must be >= 1, got 0"),
    (["train", *SMALL, "--set", "model.num_heads=0"], "model.num_heads must be integers >= 1, got 0"),
    (["train", *SMALL, "--set", "train.entropy_cost=-1"], "train.entropy_cost must be >= 0"),
    (["train", *SMALL[:4], "--set", "model.observation_shape=-5,40,3"], "model.observation_shape must be height,width,3"),
    (["train", *SMALL[:4], "--set", "model.observation_shape=0,0,3"], "got 0,0,3"),
    (["describe", "--num-actions", "3", "--set", "model.lstm_units=0"], "model.lstm_units must be integers >= 1"),
    (["classify", "train", "--dataset", "image_folder", "--data-dir", "/tmp/x", "--root-dir", "/tmp/y",
      "--steps", "-1"], "--steps must be >= 1, got -1"),
    *[(CLASSIFY_TRAIN + ["--set", item], message) for item, message in [
        ("train.checkpoint_every=0", "train.checkpoint_every must be integers >= 1, got 0"),
        ("train.summary_every=0", "train.summary_every must be integers >= 1, got 0"),
        ("train.learning_rate=-1", "train.learning_rate must be > 0, got -1.0"),
        ("train.learning_rate=nan", "train.learning_rate must be > 0, got nan"),
        ("train.weight_decay=-1", "train.weight_decay must be >= 0, got -1.0"),
        ("train.momentum=-5", "train.momentum must be in [0, 1], got -5.0"),
        ("train.grad_clip_norm=-1", "train.grad_clip_norm must be >= 0, got -1.0"),
        ("train.keep_checkpoints=0", "train.keep_checkpoints must be integers >= 1, got 0"),
        ("data.num_frames=0", "data.num_frames must be integers >= 1, got 0"),
        ("data.shuffle_buffer=-3", "data.shuffle_buffer must be integers >= 1, got -3")]],
    *[(["train", *SMALL, "--set", item], message) for item, message in [
        ("train.rmsprop_decay=1", "train.rmsprop_decay must be in [0, 1), got 1.0"),
        ("train.rmsprop_decay=nan", "train.rmsprop_decay must be in [0, 1), got nan"),
        ("train.rmsprop_momentum=-1", "train.rmsprop_momentum must be >= 0, got -1.0"),
        ("train.rmsprop_initial_mean_square=-1", "train.rmsprop_initial_mean_square must be >= 0, got -1.0"),
        ("train.learning_rate=nan", "train.learning_rate must be > 0, got nan"),
        ("train.rmsprop_epsilon=0", "train.rmsprop_epsilon must be > 0, got 0.0"),
        ("train.gradient_clip=nan", "train.gradient_clip must be > 0, got nan")]],
    (["evaluate", "--model", "/tmp/y", "--env", ENV, "--episodes", "0"], "--episodes must be >= 1, got 0"),
    (["evaluate", "--model", "/tmp/y", "--env", ENV, "--num-envs", "0"], "--num-envs must be >= 1, got 0"),
    (["learner", "--preset", "small", "--root-dir", "/tmp/y", "--max-steps", "0"], "--max-steps must be >= 1, got 0"),
    (["classify", "eval", "--data-dir", "/tmp/x", "--root-dir", "/tmp/y", "--batch-size", "0"],
     "--batch-size must be >= 1, got 0"),
])
def test_out_of_range_numbers_are_refused(tmp_path, capsys, argv, message):
    argv = [a if a != "/tmp/y" else str(tmp_path / "y") for a in argv]
    if argv[0] == "train":
        argv += ["--root-dir", str(tmp_path / "r")]
    err = fails(capsys, *argv)
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())   # refused before anything was written


# ---------------------------------------------------------------- 5: the exported signature
def test_exported_signature_rejects_nan_reward_and_out_of_range_action(tmp_path):
    path = export_saved_model(build_agent_net(agent_config("small"), "lstm", 4), str(tmp_path / "m"))
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]
    state = loaded.signatures["initial_state"](batch_size=tf.constant(1))
    good = dict(observation=tf.zeros([1, 64, 64, 3], tf.uint8), prev_action=tf.zeros([1], tf.int32),
                prev_reward=tf.zeros([1]), first=tf.zeros([1], tf.bool), **state)
    assert np.isfinite(serve(**good)["value"].numpy()).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="prev_reward: expected finite"):
        serve(**dict(good, prev_reward=tf.constant([np.nan], tf.float32)))
    for bad in (4, -1):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"prev_action: expected int32 \[B\] in \[0, 4\)"):
            serve(**dict(good, prev_action=tf.constant([bad], tf.int32)))


# ---------------------------------------------------------------- 7: unreadable images
@pytest.mark.slow
def test_unreadable_images_are_skipped_and_named(tmp_path, capsys):
    from classify_fixtures import make_digits_folder
    src = tmp_path / "digits"
    make_digits_folder(str(src))
    (src / "train" / "3" / "empty.png").write_bytes(b"")
    good = next((src / "train" / "4").iterdir()).read_bytes()
    (src / "train" / "4" / "truncated.png").write_bytes(good[: len(good) // 2])
    assert main(["classify", "train", "--dataset", "image_folder", "--manual-dir", str(src),
                 "--data-dir", str(tmp_path / "tfds"), "--root-dir", str(tmp_path / "run"),
                 "--preset", "small", "--steps", "3", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "skipping 2 of" in err and "3/empty.png (empty file)" in err and "truncated.png" in err
    summary = json.loads((tmp_path / "tfds" / "image_folder_summary.json").read_text())
    assert summary["skipped"] == 2 and {b["file"] for b in summary["skipped_files"]} == {
        "train/3/empty.png", "train/4/truncated.png"}


def test_a_folder_of_only_unreadable_images_is_refused(tmp_path, capsys):
    src = tmp_path / "bad"
    for split in ("train", "test"):
        for label in ("0", "1"):
            (src / split / label).mkdir(parents=True)
            (src / split / label / "empty.png").write_bytes(b"")
            (src / split / label / "junk.png").write_bytes(b"not a png at all")
    argv = ["classify", "train", "--dataset", "image_folder", "--manual-dir", str(src), "--data-dir",
            str(tmp_path / "tfds"), "--root-dir", str(tmp_path / "run"), "--preset", "small", "--steps", "3",
            "--no-progress"]
    err = fails(capsys, *argv)
    assert "image_folder: none of the 8 images in" in err and "can be read" in err
    assert "expected PNG/JPEG images laid out as <split>/<label>/<image>" in err
    assert len(err.strip().splitlines()) == 1
    summary = json.loads((tmp_path / "tfds" / "image_folder_summary.json").read_text())
    assert summary["images"] == summary["skipped"] == 8
    assert sorted(p.name for p in (src / "train" / "0").iterdir()) == ["empty.png", "junk.png"]   # untouched
    # Only the training split unreadable: refused too (training would wait for ever), naming it.
    from classify_fixtures import make_digits_folder
    make_digits_folder(str(tmp_path / "digits"))
    import shutil
    shutil.rmtree(src / "test")
    shutil.copytree(tmp_path / "digits" / "test", src / "test")
    err = fails(capsys, *argv)
    assert "none of the 4 images of split 'train' in" in err


# ---------------------------------------------------------------- tracebacks where a sentence belongs
def test_unknown_environment_is_refused_before_any_service_starts(tmp_path, capsys):
    err = fails(capsys, "train", "--preset", "small", "--env", "NoSuchGame-v0", "--root-dir", str(tmp_path / "r"))
    assert "unknown environment id 'NoSuchGame-v0'" in err
    assert not (tmp_path / "r").exists()   # refused before the root directory is created


def test_root_dir_faults_are_named(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is a file" in fails(capsys, "train", *SMALL, "--root-dir", str(a_file))
    assert "lies under a file" in fails(capsys, "train", *SMALL, "--root-dir", str(a_file / "sub"))
    assert "cannot be created" in fails(capsys, "train", *SMALL, "--root-dir", "/sys/s3ta-test-root")
    # An existing directory that cannot be written (sysfs refuses new files even to root, where a
    # chmod 0o500 directory would not): found by the probe before any service starts.
    err = fails(capsys, "train", *SMALL, "--root-dir", "/sys/kernel")
    assert "--root-dir /sys/kernel cannot be written (" in err and len(err.strip().splitlines()) == 1
    assert a_file.read_text() == "x"


def test_a_replay_port_in_use_is_named(tmp_path, capsys):
    import socket
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        port = s.getsockname()[1]
        err = fails(capsys, "train", *SMALL, "--root-dir", str(tmp_path / "r"), "--replay-port", str(port))
        assert f"--replay-port {port}: the port is already in use" in err
        err = fails(capsys, "replay", "--port", str(port))
        assert f"--port {port}: the port is already in use" in err


def test_a_truncated_saved_model_is_named(tmp_path, capsys):
    path = export_saved_model(build_agent_net(agent_config("small"), "feedforward", 7), str(tmp_path / "m"))
    pb = os.path.join(path, "saved_model.pb")
    data = open(pb, "rb").read()
    open(pb, "wb").write(data[: len(data) // 2])
    for command in (["evaluate", "--env", ENV, "--episodes", "1"],
                    ["analyze", "--env", ENV, "--steps", "2", "--out", str(tmp_path / "a")]):
        err = fails(capsys, command[0], "--model", path, *command[1:])
        assert "cannot be loaded as a SavedModel" in err and "truncated saved_model.pb" in err


def test_a_checkpoint_of_another_model_is_named(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    save_checkpoint(str(ckpt), build_agent_net(agent_config("small"), "lstm", 7))
    os.remove(ckpt / "run.json")   # a bare checkpoint: the flags say which model to build
    err = fails(capsys, "export", "--preset", "small", "--agent", "attention", "--num-actions", "7",
                "--checkpoint", str(ckpt), "--out", str(tmp_path / "e"))
    assert "does not fit a attention network with 7 actions" in err and "--preset/--agent/--set" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "e").exists()
    # With its record the checkpoint rebuilds its own model, whatever the flags say.
    save_checkpoint(str(ckpt), build_agent_net(agent_config("small"), "lstm", 7))
    assert main(["export", "--preset", "paper", "--num-actions", "3", "--checkpoint", str(ckpt),
                 "--out", str(tmp_path / "e")]) == 0
