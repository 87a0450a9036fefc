"""Outputs that already exist as files, event files cut by a kill, values that mean nothing,
tracebacks where a sentence belongs, and a field set twice (issue 21, items 3-6 and 8). Each
case asserts the exit code, that the message names the fault in one line, and that nothing was
computed or written first. The table of these cases is the last section of docs/BAD_INPUT.md."""
import json
import os

import numpy as np
import pytest
from cli_fixtures import fails
import tensorflow as tf

from agents.impala.builder import RunSpec
from pipelines.cli import main
from s3ta_tf import agent_config, build_agent_net
from s3ta_tf.checkpoints import save_checkpoint
from s3ta_tf.export import export_saved_model

ENV = "MiniGrid-Empty-5x5-v0"   # 7 actions
SHAPE = "model.observation_shape=24,24,3"
SMALL = ["--preset", "small", "--env", ENV, "--set", SHAPE]


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """A small feed-forward agent (SavedModel, 24x24 input, 7 actions)."""
    root = tmp_path_factory.mktemp("agent")
    cfg = agent_config("small", {"observation_shape": (24, 24, 3)})
    return export_saved_model(build_agent_net(cfg, "feedforward", 7), str(root / "model"))


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    """A classification run of one step on the digits (its root, data and manual directories)."""
    from classify_fixtures import make_digits_folder
    base = tmp_path_factory.mktemp("classify")
    paths = {"manual": str(base / "digits"), "data": str(base / "tfds"), "root": str(base / "run")}
    make_digits_folder(paths["manual"])
    assert main(["classify", "train", "--dataset", "image_folder", "--manual-dir", paths["manual"],
                 "--data-dir", paths["data"], "--root-dir", paths["root"], "--preset", "small",
                 "--steps", "1", "--no-progress"]) == 0
    return paths


def a_file(tmp_path, name="results"):
    path = tmp_path / name
    path.write_text("keep")
    return path


# ---------------------------------------------------------------- 3: outputs that are files
@pytest.mark.parametrize("command", ["evaluate", "analyze", "plot", "classify export", "classify train",
                                     "export", "pbt", "bench"])
def test_an_output_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, agent, classify_run, command):
    f = a_file(tmp_path)
    run = tmp_path / "run"
    (run / "summaries" / "learner").mkdir(parents=True)
    argv, message = {
        "evaluate": (["evaluate", "--model", agent, "--env", ENV, "--episodes", "1", "--num-envs", "1",
                      "--out", str(f)], f"--out {f} is an existing file"),
        "analyze": (["analyze", "--model", agent, "--env", ENV, "--steps", "2", "--preset", "small",
                     "--resize-observations", "--out", str(f)], f"--out {f} is an existing file"),
        "plot": (["plot", str(run), "--out", str(f / "p.png")], f"--out {f / 'p.png'} lies under a file"),
        "classify export": (["classify", "export", "--root-dir", classify_run["root"], "--export-dir", str(f)],
                            f"--export-dir {f} is an existing file"),
        "classify train": (["classify", "train", "--dataset", "image_folder", "--manual-dir",
                            classify_run["manual"], "--data-dir", classify_run["data"], "--root-dir",
                            str(f / "run"), "--steps", "1", "--no-progress"],
                           f"--root-dir {f / 'run'} lies under a file"),
        "export": (["export", "--preset", "small", "--num-actions", "3", "--out", str(f / "e")],
                   f"--out {f / 'e'} lies under a file"),
        "pbt": (["pbt", "--pbt-preset", "small", *SMALL, "--max-frames", "100", "--root-dir", str(f)],
                f"--root-dir {f} is an existing file"),
        "bench": (["bench", "model", "--quick", "--out-dir", str(f)], f"--out-dir {f} is an existing file"),
    }[command]
    err = fails(capsys, *argv)
    assert message in err, err
    assert f.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["results", "run"]


def test_evaluate_checks_its_output_before_playing(tmp_path, capsys, agent):
    f = a_file(tmp_path)
    with pytest.raises(SystemExit):
        main(["evaluate", "--model", agent, "--env", ENV, "--episodes", "1", "--num-envs", "1", "--out", str(f)])
    assert "evaluate:" not in capsys.readouterr().out   # no model loaded, no episode played


# ---------------------------------------------------------------- 4: what a kill leaves
def make_run(root, points=10, env=ENV):
    """A training run's root with ``points`` learner summaries (episode_return and frames at
    steps 1..points, two event records per step); returns its events file."""
    directory = root / "summaries" / "learner"
    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default():
        for step in range(1, points + 1):
            tf.summary.scalar("episode_return", 0.1 * step, step=step)
            tf.summary.scalar("frames", 1000 * step, step=step)
    writer.close()
    RunSpec.from_args("small", "attention", [SHAPE], env_id=env).write_or_check(str(root), 7)
    return next(directory.iterdir())


def test_plot_reads_an_events_file_cut_by_a_kill(tmp_path, capsys):
    events = make_run(tmp_path / "run")
    data = events.read_bytes()
    events.write_bytes(data[:-30])   # the last record (frames at step 10) cut short
    out = tmp_path / "plots" / "p.png"
    assert main(["plot", str(tmp_path / "run"), "--out", str(out), "--csv"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{events}: cut at byte" in err, err
    assert "skipped the last" in err and "bytes" in err and len(err.strip().splitlines()) == 1
    rows = (tmp_path / "plots" / "p-run.csv").read_text().splitlines()
    assert len(rows) == 1 + 9 and rows[-1].startswith("9,9000,")   # every point before the cut
    assert out.exists()


def test_plot_refuses_a_file_of_random_bytes_in_one_line(tmp_path, capsys):
    events = make_run(tmp_path / "run")
    events.write_bytes(np.random.default_rng(0).bytes(500))
    err = fails(capsys, "plot", str(tmp_path / "run"), "--out", str(tmp_path / "p.png"))
    assert f"{events}: not a TensorBoard events file" in err
    assert not (tmp_path / "p.png").exists()


def test_plot_warns_about_an_empty_run_instead_of_drawing_empty_axes(tmp_path, capsys):
    (tmp_path / "empty" / "summaries" / "learner").mkdir(parents=True)
    err = fails(capsys, "plot", str(tmp_path / "empty"), "--out", str(tmp_path / "p.png"))
    assert "nothing to plot" in err and "no learning-curve point yet" in err
    assert not (tmp_path / "p.png").exists()
    make_run(tmp_path / "good")
    assert main(["plot", str(tmp_path / "empty"), str(tmp_path / "good"), "--out", str(tmp_path / "p.png")]) == 0
    captured = capsys.readouterr()
    assert f"warning: {tmp_path / 'empty'}: no learning-curve point yet" in captured.err
    assert "left out" in captured.err and (tmp_path / "p.png").exists()


def test_runs_whose_folders_share_a_name_keep_their_own_csv_and_legend(tmp_path, capsys):
    from pipelines.evaluation.curves import run_labels
    make_run(tmp_path / "a" / "run", points=4)
    make_run(tmp_path / "b" / "run", points=6)
    runs = [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]
    assert main(["plot", *runs, "--out", str(tmp_path / "p.png"), "--csv"]) == 0
    assert len((tmp_path / "p-a-run.csv").read_text().splitlines()) == 1 + 4
    assert len((tmp_path / "p-b-run.csv").read_text().splitlines()) == 1 + 6
    assert run_labels(runs) == ["a/run", "b/run"]
    assert run_labels([str(tmp_path / "a" / "run"), str(tmp_path / "b" / "other")]) == ["run", "other"]


# ---------------------------------------------------------------- 5: values that mean nothing
@pytest.mark.parametrize("argv, message", [
    (["export", "--preset", "small", "--num-actions", "3", "--set", "model.initial_query_scale=inf",
      "--out", "OUT"], "model.initial_query_scale must be finite, got inf"),
    (["describe", "--preset", "small", "--num-actions", "3", "--set", "model.query_basis_gain=inf"],
     "model.query_basis_gain must be finite, got inf"),
    (["train", *SMALL, "--stop-at-return", "nan", "--root-dir", "OUT"],
     "--stop-at-return must be a finite number, got nan"),
    (["train", *SMALL, "--stop-at-return", "inf", "--root-dir", "OUT"],
     "--stop-at-return must be a finite number, got inf"),
    (["pbt", "--pbt-preset", "small", *SMALL, "--max-frames", "100", "--population", "0", "--root-dir", "OUT"],
     "--population must be >= 1, got 0"),
    (["classify", "export", "--root-dir", "OUT", "--export-dir", "OUT2", "--top-k", "0"],
     "--top-k must be >= 1, got 0"),
    (["classify", "export", "--root-dir", "OUT", "--export-dir", "OUT2", "--top-k", "-3"],
     "--top-k must be >= 1, got -3"),
], ids=["inf-model-field", "inf-gain", "stop-at-nan", "stop-at-inf", "population-0", "top-k-0", "top-k-negative"])
def test_meaningless_values_are_refused_in_one_line(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / a) if a.startswith("OUT") else a for a in argv]
    err = fails(capsys, *argv)
    assert message in err, err
    assert not any(tmp_path.iterdir())   # refused before anything was written


# ---------------------------------------------------------------- 6: tracebacks and wrong words
def test_a_run_record_of_the_wrong_shape_is_named(tmp_path, capsys):
    root = tmp_path / "run"
    (root / "summaries" / "learner").mkdir(parents=True)
    (root / "run.json").write_text("[1, 2]")
    for argv in (["plot", str(root), "--out", str(tmp_path / "p.png")],
                 ["evaluate", "--model", str(root), "--env", ENV],
                 ["classify", "eval", "--data-dir", str(tmp_path / "d"), "--root-dir", str(root)],
                 ["export", "--checkpoint", str(root), "--out", str(tmp_path / "e")]):
        err = fails(capsys, *argv)
        assert f"{root / 'run.json'}: not a run record (expected a JSON object, got a list)" in err, err
    assert (root / "run.json").read_text() == "[1, 2]"


def test_a_sprite_that_is_not_an_image_is_named(tmp_path, capsys, agent):
    f = a_file(tmp_path, "sprite.png")
    err = fails(capsys, "analyze", "--model", agent, "--env", ENV, "--steps", "2", "--preset", "small",
                "--resize-observations", "--sprite", str(f), "--out", str(tmp_path / "a"))
    assert f"--sprite {f}: not a readable image" in err and "expected a PNG" in err
    assert not (tmp_path / "a").exists()


def test_describe_checks_a_huge_observation_against_memory_first(capsys):
    err = fails(capsys, "describe", "--preset", "small", "--num-actions", "3",
                "--set", "model.observation_shape=600000,600000,3")
    assert "model.observation_shape 600000,600000,3: one step at batch 1 needs at least" in err
    assert "GiB of memory available" in err


def test_fine_tuning_across_agent_variants_is_refused_before_any_service(tmp_path, capsys):
    source = tmp_path / "lstm-run"
    cfg = agent_config("small", {"observation_shape": (24, 24, 3)})
    save_checkpoint(str(source / "checkpoints"), build_agent_net(cfg, "lstm", 7))
    new = tmp_path / "new"
    err = fails(capsys, "train", *SMALL, "--agent", "attention", "--fine-tune-from", str(source),
                "--root-dir", str(new))
    assert f"--fine-tune-from {source}: its weights do not fit this run's model" in err
    assert "agent: recorded 'lstm', this run 'attention'" in err
    assert not (new / "run.json").exists()
    # The same model fits (another game, other learning settings may differ).
    same = tmp_path / "attention-run"
    save_checkpoint(str(same / "checkpoints"), build_agent_net(cfg, "attention", 7))
    spec = RunSpec.from_args("small", "attention", [SHAPE, "train.learning_rate=0.01"], env_id=ENV)
    assert spec.check_record(str(new), 7, str(same))["fine_tuned_from"] == str(same)


def test_a_root_of_another_kind_suggests_no_failing_command(tmp_path, capsys, classify_run):
    err = fails(capsys, "train", *SMALL, "--root-dir", classify_run["root"])
    assert "holds a classification run (run.json), not an RL training run" in err
    assert "--fine-tune-from" not in err
    rl_root = tmp_path / "rl"
    RunSpec.from_args("small", "attention", [SHAPE], env_id=ENV).write_or_check(str(rl_root), 7)
    err = fails(capsys, "classify", "train", "--dataset", "image_folder", "--manual-dir", classify_run["manual"],
                "--data-dir", classify_run["data"], "--root-dir", str(rl_root), "--steps", "1", "--no-progress")
    assert f"{rl_root} holds an RL training run (run.json), not a classification run; use a new --root-dir" in err
    assert "classify train" not in err and sorted(os.listdir(rl_root)) == ["run.json"]
    # Another model on an RL root: the message does not suggest fine-tuning from weights that do not fit.
    err = fails(capsys, "train", *SMALL, "--agent", "lstm", "--root-dir", str(rl_root))
    assert "agent: recorded 'attention', this run 'lstm'" in err
    assert "its weights do not fit this model, so --fine-tune-from cannot start from them" in err


def test_exported_signature_refuses_an_empty_batch(tmp_path):
    path = export_saved_model(build_agent_net(agent_config("small", {"observation_shape": (24, 24, 3)}),
                                              "attention", 4), str(tmp_path / "m"))
    loaded = tf.saved_model.load(path)
    state = loaded.signatures["initial_state"](batch_size=tf.constant(0))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"observation: expected a batch of B >= 1 rows"):
        loaded.signatures["serving_default"](
            observation=tf.zeros([0, 24, 24, 3], tf.uint8), prev_action=tf.zeros([0], tf.int32),
            prev_reward=tf.zeros([0]), first=tf.zeros([0], tf.bool), **state)


def test_evaluate_names_a_model_file_and_a_negative_seed_first(tmp_path, capsys):
    f = a_file(tmp_path, "model.pb")
    err = fails(capsys, "evaluate", "--model", str(f), "--env", ENV)
    assert f"--model {f} is a file; expected a SavedModel directory" in err and "does not exist" not in err
    err = fails(capsys, "evaluate", "--model", str(tmp_path / "missing"), "--env", ENV, "--seed", "-1")
    assert "--seed must be >= 0, got -1" in err    # named before the model is looked for
    err = fails(capsys, "evaluate", "--model", str(tmp_path / "missing"), "--env", ENV, "--noop-max", "-1")
    assert "--noop-max must be >= 0, got -1" in err


def test_classify_attention_writes_the_picture_it_names(tmp_path, capsys, classify_run):
    common = ["classify", "attention", "--root-dir", classify_run["root"], "--data-dir", classify_run["data"],
              "--manual-dir", classify_run["manual"], "--num-examples", "1"]
    directory = tmp_path / "pictures"
    directory.mkdir()
    err = fails(capsys, *common, "--out", str(directory))
    assert f"--out {directory} is a directory; expected a PNG file path" in err
    assert not any(tmp_path.glob("*.png")) and not any(directory.iterdir())
    assert main([*common, "--out", str(tmp_path / "picture")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["picture"] == str(tmp_path / "picture.png") and os.path.isfile(result["picture"])


# ---------------------------------------------------------------- 8: a field set twice
def test_a_field_set_twice_is_warned_about(capsys):
    assert main(["describe", "--preset", "small", "--num-actions", "3", "--json",
                 "--set", "model.num_heads=2", "--set", "model.num_heads=3"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["attention"]["num_heads"] == 3
    assert captured.err.strip() == "warning: model.num_heads is set twice (2, then 3): 3 is used"
    from s3ta_tf.config.overrides import split_sections
    lines = []
    grouped = split_sections({"model": agent_config("small")}, ["model.num_heads=2", "model.lstm_units=8",
                                                                "model.num_heads=3", "model.num_heads=4"],
                             warn=lines.append)
    assert grouped["model"] == ["lstm_units=8", "num_heads=4"]   # one value per field, the last
    assert lines == ["model.num_heads is set 3 times (2, 3, then 4): 4 is used"]
