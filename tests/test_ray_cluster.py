"""`s3ta train --ray` on a real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`:
a head node with the custom resource `learner_node`, a worker node with `actor_node`): the
services are placed by their resource requests, a killed actor is restarted by Ray while the
learner goes on, actors are added and removed while it runs (`s3ta actors`), a killed learner
resumes from its checkpoint, Ctrl-C stops the whole run after a final checkpoint. The slow tests
run in order on one run; bad input is refused in one line, in-process, without a cluster."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pipelines.cli import main
from test_services_faults import MODEL_SET, ROOT, TRAIN_SET, Run, alive, wait_until

ENV = "MiniGrid-Empty-5x5-v0"
SMALL_RUN = ["--env", ENV, "--preset", "small"] + sum((["--set", s] for s in MODEL_SET + TRAIN_SET), [])


# ------------------------------------------------------------------ bad input: one line, exit 2
@pytest.mark.parametrize("argv, message", [
    (["train", "--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: no Ray cluster answers there"),
    (["train", "--ray", "head-node"], "--ray head-node: expected HOST:PORT of the cluster's head node"),
    (["train", "--ray-actor-cpus", "2"], "--ray-actor-cpus needs --ray ADDRESS"),
    (["train", "--ray", "127.0.0.1:1", "--ray-actor-resources", "actor_node"],
     "--ray-actor-resources 'actor_node': expected NAME=AMOUNT items"),
    (["train", "--ray", "127.0.0.1:1", "--ray-learner-resources", "GPU=1"], "custom names only"),
    (["train", "--ray", "127.0.0.1:1", "--ray-learner-cpus", "0"], "--ray-learner-cpus must be > 0, got 0"),
    (["actors", "--ray", "127.0.0.1:1", "--add", "2"], "--ray 127.0.0.1:1: no Ray cluster answers there"),
    (["actors", "--ray", "127.0.0.1:1", "--remove", "0"], "--remove must be >= 1, got 0"),
])
def test_bad_ray_input_is_refused_in_one_line(argv, message, tmp_path, capsys):
    root = tmp_path / "run"
    extra = SMALL_RUN if argv[0] == "train" else []
    with pytest.raises(SystemExit) as stopped:
        main(argv + extra + ["--root-dir", str(root)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not root.exists()   # refused before the run's root is made


@pytest.fixture
def keep_signal_handlers():
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():   # (s3ta train installs its Ctrl-C handler)
        signal.signal(sig, handler)


class FailingLauncher:
    """A RayLauncher that records its arguments and fails as a replay server that does not start."""
    seen = {}

    def __init__(self, root_dir, run_args, num_actors, max_frames, placement, **settings):
        FailingLauncher.seen = dict(run_args=run_args, **settings)
        raise RuntimeError("the replay server did not start on 10.0.0.9 (its Ray actor died):\nlog tail line")


def test_a_ray_run_that_fails_ends_in_one_line_with_the_resolved_precision(tmp_path, capsys, monkeypatch,
                                                                           keep_signal_handlers):
    import pipelines.rl.ray_launcher as ray_launcher
    import pipelines.rl.ray_placement as ray_placement

    monkeypatch.setattr(ray_placement, "check_reachable", lambda address: None)
    monkeypatch.setattr(ray_launcher, "RayLauncher", FailingLauncher)
    with pytest.raises(SystemExit) as stopped:   # the --replay-port range is checked with --ray too
        main(["train", *SMALL_RUN, "--root-dir", str(tmp_path / "r"), "--ray", "10.0.0.9:6379",
              "--replay-port", "70000"])
    assert stopped.value.code == 2 and "--replay-port must be in [1, 65535], got 70000" in capsys.readouterr().err
    code = main(["train", *SMALL_RUN, "--root-dir", str(tmp_path / "r"), "--ray", "10.0.0.9:6379",
                 "--precision", "auto"])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.out + out.err
    assert out.out.strip().splitlines()[-1].endswith(
        "train: failed: the replay server did not start on 10.0.0.9 (its Ray actor died):")
    run_args = FailingLauncher.seen["run_args"]
    assert run_args[run_args.index("--precision") + 1] in ("float32", "bfloat16")   # resolved once, not 'auto'


def test_s3ta_actors_ends_in_one_line_when_ray_fails(monkeypatch, capsys):
    import ray

    import pipelines.rl.ray_launcher as ray_launcher

    def scale_actors(*args):
        raise ray.exceptions.GetTimeoutError("Get timed out: some object(s) not ready.")
    monkeypatch.setattr(ray_launcher, "scale_actors", scale_actors)
    assert main(["actors", "--ray", "10.0.0.9:6379", "--root-dir", "/tmp/x", "--add", "1"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].endswith("actors: failed: Get timed out: some object(s) not ready."), out


def test_a_host_killed_or_never_created_is_waited_for_not_at_all():
    from pipelines.rl.ray_launcher import RayLauncher, RemoteService

    started = time.time()
    assert RemoteService("actor-9", create=None).wait(60) is None and time.time() - started < 5
    launcher = object.__new__(RayLauncher)
    launcher.actors = []
    assert launcher._scale(0) == (True, "no change (0 actors)")


@pytest.mark.parametrize("argv, what", [
    (["train", "--ray", "127.0.0.1:1", *SMALL_RUN], "--ray needs Ray"),
    (["actors", "--ray", "127.0.0.1:1", "--add", "1"], "s3ta actors needs Ray"),
    (["pbt", "--env", ENV, "--preset", "small", "--max-frames", "100"], "s3ta pbt needs Ray"),
])
def test_a_command_that_needs_ray_says_so_when_it_is_not_installed(argv, what, tmp_path, capsys, monkeypatch):
    """Ray is an optional extra (not in the runtime image): without it, one line naming the extra."""
    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` raises ImportError, as when not installed
    with pytest.raises(SystemExit) as stopped:
        main(argv + ["--root-dir", str(tmp_path / "run")])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert what in err and "pip install 's3ta-tf[pbt]'" in err and len(err.splitlines()) == 1, err


# ------------------------------------------------------------------ one run on a two-node cluster
class RayRun(Run):
    """``s3ta train --ray`` of the small MiniGrid run: the learner asks for ``learner_node``,
    the actors for ``actor_node``."""
    STOP_SECS = 120
    RESTART_SECS = 90
    RESUME_SECS = 150

    def __init__(self, root_dir, address):
        self.address = address
        super().__init__(root_dir, ["--ray", address, "--ray-learner-resources", "learner_node=1",
                                    "--ray-actor-resources", "actor_node=1"])

    def actors(self, *args):
        """``s3ta actors`` on this run: (exit code, output)."""
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", "actors", "--ray", self.address,
                               "--root-dir", self.root, *args], cwd=ROOT, env=self.environ(),
                              capture_output=True, text=True, timeout=180)
        return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def cluster():
    from pipelines.rl.ray_launcher import local_cluster

    with local_cluster([{"num_cpus": 2, "resources": {"learner_node": 1}},
                        {"num_cpus": 4, "resources": {"actor_node": 4}}]) as (address, node_ids):
        yield address, node_ids


@pytest.fixture(scope="module")
def run(cluster, tmp_path_factory):
    r = RayRun(tmp_path_factory.mktemp("ray-run"), cluster[0])
    try:
        r.wait_steps(3, timeout=240)
        yield r
    finally:
        r.stop()


@pytest.mark.slow
def test_learner_and_replay_on_the_head_actors_on_the_worker(run, cluster):
    head, worker = cluster[1]
    record = run.record()
    services = record["services"]
    assert services["replay"]["node_id"] == services["learner"]["node_id"] == head
    assert services["actor-0"]["node_id"] == services["actor-1"]["node_id"] == worker
    assert all(s["sees_root"] for s in services.values())
    # The learner and the actors are given the replay's node address, not localhost.
    host, port = record["replay_address"].rsplit(":", 1)
    assert host == services["replay"]["node_ip"] and host not in ("localhost", "127.0.0.1") and int(port) > 0
    assert f"--replay-address {record['replay_address']}" in " ".join(
        open(f"/proc/{services['learner']['pid']}/cmdline").read().split("\0"))
    assert record["ray"]["placement"]["actor_resources"] == {"actor_node": 1.0}
    assert record["ray"]["placement"]["learner_resources"] == {"learner_node": 1.0}


@pytest.mark.slow
def test_killed_actor_is_restarted_by_ray_and_training_goes_on(run, cluster):
    before = run.services()
    old = before["actor-0"]["pid"]
    os.kill(old, signal.SIGKILL)
    step_at_kill = run.train_step()
    restarted = run.restarted("actor-0", 1, old)
    assert alive(restarted["pid"]) and restarted["node_id"] == cluster[1][1]
    assert run.services()["learner"]["pid"] == before["learner"]["pid"]   # the learner never stopped
    run.wait_steps(step_at_kill + 3)
    assert "ray: actor-0 exited with code -9; its Ray actor exits so that Ray restarts it" in run.log("actor-0")
    run.frames_at_actor_kill = run.actor_frames(0)   # the next test sees the restarted actor act


@pytest.mark.slow
def test_actors_are_added_and_removed_while_the_learner_goes_on(run, cluster):
    learner = run.services()["learner"]["pid"]
    code, out = run.actors("--add", "1")
    assert code == 0 and "added actor-2 (now 3 actors" in out, out
    added = wait_until(lambda: run.services().get("actor-2", {}).get("pid") and run.services()["actor-2"],
                       60, "actor-2 in launcher.json")
    assert added["node_id"] == cluster[1][1]
    wait_until(lambda: run.actor_frames(2) > 0, 150, "actor-2 to act")
    wait_until(lambda: run.actor_frames(0) > getattr(run, "frames_at_actor_kill", 0), 60,
               "the actor Ray restarted to act")
    code, out = run.actors("--remove", "1")
    assert code == 0 and "removed actor-2 (now 2 actors)" in out, out
    assert "actor-2" not in run.services() and not alive(added["pid"])
    code, out = run.actors("--remove", "2")
    assert code == 1 and "a run keeps at least one" in out, out
    # The worker has room for 4 actors: actor-4 is never placed, and removing it takes no stop timeout.
    code, out = run.actors("--add", "3")
    assert code == 0 and "(now 5 actors" in out, out
    started = time.time()
    code, out = run.actors("--remove", "3")
    assert code == 0 and "removed actor-2, actor-3, actor-4 (now 2 actors)" in out and time.time() - started < 45, out
    code, out = run.actors()
    assert code == 0 and re.search(r"actor-1 +node ", out), out
    assert run.services()["learner"]["pid"] == learner


@pytest.mark.slow
def test_a_second_run_on_the_same_root_is_refused(run, capsys, keep_signal_handlers):
    with pytest.raises(SystemExit) as stopped:
        main(["train", *SMALL_RUN, "--root-dir", run.root, "--ray", run.address])
    assert stopped.value.code == 2
    assert "a run on this root is already running on the Ray cluster" in capsys.readouterr().err
    assert run.proc.poll() is None and run.record()["launcher_pid"] == run.proc.pid


@pytest.mark.slow
def test_killed_learner_resumes_from_its_checkpoint(run):
    old = run.services()["learner"]["pid"]
    run.wait_steps(run.train_step() + 2)   # at least one checkpoint since the last restart
    os.kill(old, signal.SIGKILL)
    run.learner_resumed(old)


@pytest.mark.slow
def test_ctrl_c_stops_the_whole_run_after_a_final_checkpoint(run):
    pids = [s["pid"] for s in run.services().values()]
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(120) == 130
    wait_until(lambda: not any(alive(p) for p in pids), 30, "every service to end")
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(os.path.join(run.root, "checkpoints"))
    assert latest is not None and int(latest.rsplit("-", 1)[1]) == run.train_step()
    last = open(os.path.join(run.root, "launcher.out")).read().strip().splitlines()[-1]
    assert "train: stopped by SIGINT after" in last and f"kept: checkpoint {latest}" in last
