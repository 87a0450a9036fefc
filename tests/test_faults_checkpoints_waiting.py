"""Faults a long run meets for real (issue 21, items 1, 2 and 7): a damaged latest checkpoint,
a learner waiting for a replay server it cannot reach, and Ctrl-C. Real checkpoints written by
the learner, real Reverb, real processes where a signal or the launcher is involved (the small
MiniGrid run of tests/test_services_faults.py). The table of these cases is docs/BAD_INPUT.md."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from cli_fixtures import fails
import tensorflow as tf

from agents.impala.builder import RunSpec
from pipelines.cli import main
from s3ta_tf.atomic_io import read_json_or_none
from test_services_faults import MODEL_SET, TRAIN_SET, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "MiniGrid-Empty-5x5-v0"
AGENT = "feedforward"   # the cheapest to trace and export: these faults are the pipeline's, not the model's
RUN_ARGS = ["--env", ENV, "--preset", "small", "--agent", AGENT,
            *sum((["--set", s] for s in MODEL_SET + TRAIN_SET), [])]
MARK = 0.5   # checkpoint ckpt-N holds MARK + N in every entry of the network's first variable


def start(*argv, out):
    """``s3ta argv`` as a process, its output (stdout and stderr) to the file ``out``."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    with open(out, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *argv], cwd=ROOT, env=env,
                                stdout=f, stderr=subprocess.STDOUT)


def text(path) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------- 1: damaged checkpoints
@pytest.fixture(scope="module")
def run_template(tmp_path_factory):
    """A run root as the learner leaves it: run.json and three checkpoints (ckpt-1..3, the
    learner's default of 3 kept), each telling its number in the first variable."""
    from pipelines.rl.learner import Learner
    from pipelines.rl.lifecycle import StopFlag

    root = str(tmp_path_factory.mktemp("template") / "run")
    spec = RunSpec.from_args("small", AGENT, MODEL_SET + TRAIN_SET, env_id=ENV)
    learner = Learner(spec, "localhost:1", root, StopFlag())
    first = learner.network.model.variables[0]
    for step in (1, 2, 3):
        first.assign(tf.fill(first.shape, MARK + step))
        learner.agent.train_step_counter.assign(step)
        learner.save_checkpoint()
    return root


def cut_index(directory, n):
    path = os.path.join(directory, f"ckpt-{n}.index")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def cut_data(directory, n):
    path = os.path.join(directory, f"ckpt-{n}.data-00000-of-00001")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def corrupt_data(directory, n):
    """Flips one byte in every KiB of the data file (every weight of any size is hit), keeping its size."""
    path = os.path.join(directory, f"ckpt-{n}.data-00000-of-00001")
    data = bytearray(open(path, "rb").read())
    for i in range(0, len(data), 1024):
        data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))


def delete(directory, n):
    for name in os.listdir(directory):
        if name.startswith(f"ckpt-{n}."):
            os.remove(os.path.join(directory, name))


DAMAGE = {"index-cut-short": (cut_index, "ckpt-3.index is damaged"),
          "data-cut-short": (cut_data, "ckpt-3.data-00000-of-00001 is cut short"),
          "data-corrupted": (corrupt_data, "ckpt-3.data-00000-of-00001 is damaged (TensorBundle"),
          "files-deleted": (delete, "ckpt-3.index is missing")}


def damaged_run(run_template, tmp_path, kind, numbers=(3,)):
    root = str(tmp_path / "run")
    shutil.copytree(run_template, root)
    for n in numbers:
        DAMAGE[kind][0](os.path.join(root, "checkpoints"), n)
    return root


def first_variable_marks(saved_model_dir) -> set:
    """The MARK + N values found as the whole content of a variable of an export."""
    prefix = os.path.join(saved_model_dir, "variables", "variables")
    marks = set()
    for name, shape in tf.train.list_variables(prefix):
        value = tf.train.load_variable(prefix, name)
        if np.size(value) > 1 and np.issubdtype(np.asarray(value).dtype, np.floating):
            flat = np.ravel(value)
            if np.all(flat == flat[0]) and float(flat[0]) - MARK in (1.0, 2.0, 3.0):
                marks.add(float(flat[0]))
    return marks


@pytest.mark.parametrize("kind", DAMAGE)
def test_export_and_evaluate_skip_a_damaged_latest_checkpoint(run_template, tmp_path, capsys, kind):
    root = damaged_run(run_template, tmp_path, kind)
    checkpoints = os.path.join(root, "checkpoints")
    out = str(tmp_path / "export")
    assert main(["export", "--checkpoint", checkpoints, "--out", out]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert DAMAGE[kind][1] in err and f"using {os.path.join(checkpoints, 'ckpt-2')}" in err
    assert first_variable_marks(out) == {MARK + 2}   # the weights of ckpt-2, the newest that reads
    assert main(["evaluate", "--model", root, "--episodes", "1", "--num-envs", "1"]) == 0
    err = capsys.readouterr().err
    assert DAMAGE[kind][1] in err and "ckpt-2" in err and "Traceback" not in err, err


def test_a_run_root_given_as_a_relative_path_finds_its_checkpoints(run_template, tmp_path, monkeypatch):
    """``--root-dir runs/x`` (relative, as users type it): the checkpoint state file's names are
    found where they are, not joined to the directory twice."""
    from s3ta_tf.checkpoints import checkpoint_paths, newest_readable_checkpoint

    shutil.copytree(run_template, str(tmp_path / "runs" / "x"))
    monkeypatch.chdir(tmp_path)
    relative = os.path.join("runs", "x", "checkpoints")
    assert checkpoint_paths(relative) == [os.path.join(relative, f"ckpt-{n}") for n in (3, 2, 1)]
    assert newest_readable_checkpoint(relative) == os.path.join(relative, "ckpt-3")


def test_learner_resumes_from_the_newest_checkpoint_that_reads(run_template, tmp_path, capsys):
    from pipelines.rl.learner import Learner
    from pipelines.rl.lifecycle import StopFlag

    spec = RunSpec.from_args("small", AGENT, MODEL_SET + TRAIN_SET, env_id=ENV)
    for kind in DAMAGE:
        root = damaged_run(run_template, tmp_path / kind, kind)
        learner = Learner(spec, "localhost:1", root, StopFlag())
        out = capsys.readouterr().out
        assert learner.train_step == 2, out
        assert np.all(learner.network.model.variables[0].numpy() == MARK + 2)
        assert DAMAGE[kind][1] in out and "resumed from" in out and "ckpt-2 at train step 2" in out


def test_no_readable_checkpoint_is_refused_in_one_line(run_template, tmp_path, capsys):
    root = damaged_run(run_template, tmp_path, "files-deleted", numbers=(3,))
    checkpoints = os.path.join(root, "checkpoints")
    cut_index(checkpoints, 2)
    cut_data(checkpoints, 1)
    for argv in (["export", "--checkpoint", checkpoints, "--out", str(tmp_path / "e")],
                 ["evaluate", "--model", root, "--episodes", "1"],
                 ["train", *RUN_ARGS, "--root-dir", root, "--actors", "1"]):
        err = fails(capsys, *argv)
        assert f"no checkpoint in {checkpoints} can be read" in err, err
        for why in ("ckpt-3.index is missing", "ckpt-2.index is damaged",
                    "ckpt-1.data-00000-of-00001 is cut short"):
            assert why in err, err
    assert not (tmp_path / "e").exists()
    assert not os.path.exists(os.path.join(root, "logs"))   # train refused before any service started


# ---------------------------------------------------------------- 2: waiting for replay
MALFORMED = ["localhost:abc", "localhost", "localhost:", ":8000", "localhost:0", "localhost:70000",
             "local host:8000"]


@pytest.mark.parametrize("command", ["learner", "actor"])
def test_a_malformed_replay_address_is_refused(tmp_path, capsys, command):
    root = tmp_path / "run"
    for address in MALFORMED:
        err = fails(capsys, command, *RUN_ARGS, "--root-dir", str(root), "--replay-address", address)
        assert f"--replay-address {address!r}" in err and "expected host:port" in err, err
    assert not root.exists()   # refused before anything was written


@pytest.mark.slow
def test_learner_waiting_for_replay_logs_each_retry_and_stops_on_sigterm_and_sigint(tmp_path):
    """One learner per signal, started together (they share their start-up time)."""
    procs, outs = {}, {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        outs[sig] = str(tmp_path / f"{sig.name}.out")
        procs[sig] = start("learner", *RUN_ARGS, "--root-dir", str(tmp_path / sig.name),
                           "--replay-address", "localhost:1", out=outs[sig])
    try:
        for sig, proc in procs.items():
            wait_until(lambda: text(outs[sig]).count("retrying in") >= 2 or proc.poll() is not None, 180,
                       f"two logged retries ({sig.name})")
            assert proc.poll() is None, text(outs[sig])[-3000:]
        for sig, proc in procs.items():
            proc.send_signal(sig)
        for sig, proc in procs.items():
            assert proc.wait(30) == 0, text(outs[sig])[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for sig, out in outs.items():
        assert "learner: connecting to replay at localhost:1 failed" in text(out)
        assert "Traceback" not in text(out) and f"learner: stopped at train step 0, 0 frames ({sig.name})" in text(out)


# ---------------------------------------------------------------- 7: Ctrl-C of s3ta train
def services(root):
    return (read_json_or_none(os.path.join(root, "launcher.json")) or {"services": {}})["services"]


def last_line(path) -> str:
    return text(path).strip().splitlines()[-1]


def interrupt_when(proc, ready, what: str, out: str, timeout: float) -> None:
    """Waits for ``ready()`` (or the process's end), Ctrl-Cs ``proc`` and checks it exits 130;
    kills it if anything fails on the way."""
    try:
        wait_until(lambda: ready() or proc.poll() is not None, timeout, what)
        assert proc.poll() is None, text(out)[-3000:]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 130, text(out)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_ctrl_c_before_the_first_update_says_what_was_kept(tmp_path):
    root = str(tmp_path / "run")
    out = str(tmp_path / "train.out")
    proc = start("train", *RUN_ARGS, "--root-dir", root, "--actors", "1", "--max-frames", str(10 ** 9), out=out)
    interrupt_when(proc, lambda: services(root).get("learner", {}).get("pid"), "the learner to start", out, 180)
    line = last_line(out)
    assert "train: stopped by SIGINT before the first update" in line, text(out)[-3000:]
    latest = tf.train.latest_checkpoint(os.path.join(root, "checkpoints"))
    if latest is None:   # the learner was stopped while it started
        assert "nothing was saved" in line
    else:                # it had started: its initial weights, checkpointed as step 0
        assert latest.endswith("ckpt-0") and f"checkpoint {latest} (train step 0" in line
    assert "reached" not in line and "Traceback" not in text(out)


@pytest.mark.slow
def test_train_resumes_past_a_damaged_checkpoint_and_ctrl_c_says_what_was_kept(run_template, tmp_path):
    root = damaged_run(run_template, tmp_path, "index-cut-short")
    out = str(tmp_path / "train.out")
    proc = start("train", *RUN_ARGS, "--root-dir", root, "--actors", "1", "--max-frames", str(10 ** 9), out=out)

    def step():
        return (read_json_or_none(os.path.join(root, "learner.json")) or {}).get("train_step", 0)

    interrupt_when(proc, lambda: step() >= 4, "two updates after the resume", out, 240)
    launcher_out, learner_log = text(out), text(os.path.join(root, "logs", "learner.log"))
    assert "train: checkpoint ckpt-3 skipped (ckpt-3.index is damaged" in launcher_out, launcher_out[-3000:]
    assert re.search(r"resumed from \S+ckpt-2 at train step 2\b", learner_log), learner_log[-3000:]
    assert services(root)["learner"]["restarts"] == 0 and "Traceback" not in learner_log
    latest = tf.train.latest_checkpoint(os.path.join(root, "checkpoints"))
    reached = int(latest.rsplit("-", 1)[1])
    assert reached >= 4
    line = last_line(out)
    assert line.split("] ", 1)[1].startswith("train: stopped by SIGINT after "), line
    assert f"kept: checkpoint {latest} (train step {reached})" in line and "reached" not in line
    assert f"SavedModel {os.path.join(root, 'export', 'latest')}" in line


def test_a_service_that_keeps_failing_just_after_its_start_stops_the_run_with_its_log(tmp_path):
    """The launchers' (local and Ray) rule for a service that exits again and again: each quick
    exit (within QUICK_FAILURE_SECS of its start) counts, a later one resets the count, and one
    more than MAX_QUICK_FAILURES in a row stops the run with the service's last log lines."""
    from pipelines.rl.launcher import MAX_QUICK_FAILURES, Service, count_exit

    service = Service("actor-0", ["true"], str(tmp_path / "actor-0.log"))
    (tmp_path / "actor-0.log").write_text("ValueError: the emulator's ROM is missing\n")
    for _ in range(MAX_QUICK_FAILURES):
        count_exit(service, quick=True)
    count_exit(service, quick=False)          # it ran a while: the count starts again
    assert service.quick_failures == 0
    for _ in range(MAX_QUICK_FAILURES):
        count_exit(service, quick=True)
    with pytest.raises(RuntimeError, match=f"actor-0 exited {MAX_QUICK_FAILURES + 1} times in a row") as e:
        count_exit(service, quick=True)
    assert "the emulator's ROM is missing" in str(e.value)
