"""Fault tolerance of a real `s3ta train` run (replay, learner and two actors as processes on
localhost): a killed actor is restarted while the learner goes on, a killed learner resumes
from its checkpoint, a killed replay server is restarted and both sides reconnect, and
Ctrl-C stops everything cleanly after a final checkpoint. The tests run in order on one run."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from s3ta_tf.atomic_io import read_json_or_none

pytestmark = pytest.mark.slow   # see setup.cfg's markers: `make test-fast` leaves it out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_SET = ["model.observation_shape=24,24,3", "model.convlstm_channels=16", "model.query_hidden=16",
             "model.answer_hidden=32", "model.lstm_units=16", "model.head_hidden=16"]
TRAIN_SET = ["train.unroll_length=5", "train.batch_size=2", "train.queue_size=8", "train.envs_per_actor=2",
             "train.checkpoint_interval_secs=1", "train.summary_interval=1", "train.variable_pull_interval=5"]


def wait_until(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Run:
    """``s3ta train`` of the small MiniGrid run with two actors (``extra``: more flags), read
    through the files it writes."""
    STOP_SECS = 90        # for the final checkpoint after SIGINT
    RESTART_SECS = 60     # for a killed service to come back
    RESUME_SECS = 120     # for a restarted learner to resume, and to train 3 steps on

    def __init__(self, root_dir, extra=()):
        self.root = str(root_dir)
        args = ["--env", "MiniGrid-Empty-5x5-v0", "--preset", "small", "--root-dir", self.root,
                "--actors", "2", "--max-frames", str(10 ** 9), *extra]
        args += sum((["--set", s] for s in MODEL_SET), []) + sum((["--set", s] for s in TRAIN_SET), [])
        self.out = open(os.path.join(self.root, "launcher.out"), "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "train", *args], cwd=ROOT,
                                     env=self.environ(), stdout=self.out, stderr=subprocess.STDOUT)

    @staticmethod
    def environ():
        return dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")

    def record(self):
        return read_json_or_none(os.path.join(self.root, "launcher.json")) or {"services": {}}

    def services(self):
        return self.record()["services"]

    def train_step(self):
        progress = read_json_or_none(os.path.join(self.root, "learner.json"))
        return progress["train_step"] if progress else 0

    def actor_frames(self, index):
        status = read_json_or_none(os.path.join(self.root, "actors", f"actor-{index}.json"))
        return status["frames"] if status else 0

    def log(self, name):
        with open(os.path.join(self.root, "logs", f"{name}.log"), errors="replace") as f:
            return f.read()

    def wait_steps(self, minimum, timeout=180):
        return wait_until(lambda: self.train_step() >= minimum and self.train_step(), timeout,
                          f"train step {minimum} (at {self.train_step()})")

    def restarted(self, name, restarts, old_pid, timeout=None):
        def check():
            s = self.services().get(name, {})
            return s.get("restarts") == restarts and s.get("pid") not in (None, old_pid) and s
        return wait_until(check, timeout or self.RESTART_SECS, f"{name} restarted")

    def learner_resumed(self, old_pid):
        """After the learner (``old_pid``) was killed: it comes back, resumes from its newest
        checkpoint (at train step >= 3) and trains on to a checkpoint 3 steps past it."""
        self.restarted("learner", 1, old_pid)
        found = wait_until(lambda: re.search(r"resumed from \S+ckpt-(\d+) at train step (\d+)", self.log("learner")),
                           self.RESUME_SECS, "the learner to resume")
        checkpoint, resumed = int(found.group(1)), int(found.group(2))
        assert checkpoint == resumed >= 3
        wait_until(lambda: any(int(step) >= resumed + 3 for step in
                               re.findall(r"checkpoints/ckpt-(\d+)", self.log("learner").split(found.group(0))[-1])),
                   self.RESUME_SECS, f"the resumed learner to reach train step {resumed + 3}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(self.STOP_SECS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    r = Run(tmp_path_factory.mktemp("faults"))
    try:
        r.wait_steps(3)
        yield r
    finally:
        r.stop()


def test_killed_actor_is_restarted_while_the_learner_goes_on(run):
    before = run.services()
    old = before["actor-0"]["pid"]
    os.kill(old, signal.SIGKILL)
    step_at_kill = run.train_step()
    restarted = run.restarted("actor-0", 1, old)
    assert alive(restarted["pid"])
    # The learner never stopped (same process) and kept training on actor-1's trajectories.
    assert run.services()["learner"]["pid"] == before["learner"]["pid"]
    run.wait_steps(step_at_kill + 3)
    assert run.services()["learner"]["restarts"] == 0


def test_killed_learner_resumes_from_its_checkpoint(run):
    old = run.services()["learner"]["pid"]
    run.wait_steps(run.train_step() + 2)  # at least one checkpoint after the last restart
    os.kill(old, signal.SIGKILL)
    run.learner_resumed(old)


def test_restarted_replay_server_reconnects_actors_and_learner(run):
    before = run.services()
    old = before["replay"]["pid"]
    os.kill(old, signal.SIGKILL)
    run.restarted("replay", 1, old)
    step_at_restart = run.train_step()
    frames_at_restart = [run.actor_frames(i) for i in range(2)]
    # Training goes on only if the learner reads again and the actors write again (actors
    # block on a full queue, so their frame counts only grow while the learner consumes).
    run.wait_steps(step_at_restart + 5, timeout=180)
    for i in range(2):
        wait_until(lambda: run.actor_frames(i) > frames_at_restart[i] + 100, 120, f"actor {i} to go on")
    after = run.services()
    for name in ("learner", "actor-0", "actor-1"):
        assert after[name] == before[name], name


def test_ctrl_c_stops_every_service_after_a_final_checkpoint(run):
    pids = [s["pid"] for s in run.services().values()]
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(90) == 130   # 128 + SIGINT, as for any command stopped by Ctrl-C
    assert not any(alive(p) for p in pids)
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(os.path.join(run.root, "checkpoints"))
    assert latest is not None and int(latest.rsplit("-", 1)[1]) == run.train_step()
    # A clean stop exports the newest weights, and the last line points only at what exists.
    export = os.path.join(run.root, "export", "latest")
    assert os.path.exists(os.path.join(export, "saved_model.pb"))
    last = open(os.path.join(run.root, "launcher.out")).read().strip().splitlines()[-1]
    assert "train: stopped by SIGINT after" in last and f"kept: checkpoint {latest}" in last
    assert f"SavedModel {export}" in last
