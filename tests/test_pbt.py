"""Population-based training on the real parts: Ray (local), Reverb on localhost, MiniGrid."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from agents.impala.builder import RunSpec
from pipelines.pbt.config import HYPERPARAMETERS, clip_to_bounds, train_overrides
from pipelines.pbt.member import adopt_checkpoint, fitness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "MiniGrid-Empty-5x5-v0"
MODEL = ["model.observation_shape=24,24,3", "model.convlstm_channels=16", "model.query_hidden=16",
         "model.answer_hidden=32", "model.lstm_units=16", "model.head_hidden=16"]
TRAIN = ["train.unroll_length=5", "train.batch_size=4", "train.queue_size=16", "train.envs_per_actor=4"]


def test_explore_stays_in_bounds_and_reaches_the_run_config():
    wild = {"learning_rate": 10.0, "entropy_cost": 1e-9, "epsilon": 5.0, "gradient_clip": 0.01}
    clipped = clip_to_bounds(wild)
    for name, (low, high) in HYPERPARAMETERS.items():
        assert low <= clipped[name] <= high
    hyper = {"learning_rate": 3e-4, "entropy_cost": 0.02, "epsilon": 1e-3, "gradient_clip": 7.0}
    for optimizer, field in (("adam", "adam_epsilon"), ("rmsprop", "rmsprop_epsilon")):
        spec = RunSpec.from_args("small", "attention", [f"train.optimizer={optimizer}"]
                                 + train_overrides(hyper, optimizer), env_id=ENV)
        t = spec.train
        assert (t.learning_rate, t.entropy_cost, getattr(t, field), t.gradient_clip) == (3e-4, 0.02, 1e-3, 7.0)


def test_a_members_hyperparameters_reach_the_optimiser():
    from agents.impala.learning import VTraceAgent
    from tf_agents.specs import tensor_spec
    hyper = {"learning_rate": 3e-4, "entropy_cost": 0.02, "epsilon": 1e-3, "gradient_clip": 7.0}
    spec = RunSpec.from_args("small", "attention", MODEL + ["train.optimizer=rmsprop"]
                             + train_overrides(hyper, "rmsprop"), env_id=ENV)
    env = spec.make_environment(seed=0)
    agent = VTraceAgent(tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()),
                        spec.build_network(env.num_actions), spec.train)
    assert float(agent.learning_rate) == pytest.approx(3e-4)
    assert agent.optimizer._epsilon == pytest.approx(1e-3)
    assert agent._config.entropy_cost == 0.02 and agent._config.gradient_clip == 7.0


def test_fitness_is_capped_hns_for_atari_and_the_mean_return_otherwise():
    assert fitness({"mean_return": 0.9}, ENV) == pytest.approx(0.9)
    assert fitness({"mean_return": None}, ENV) < -1e8
    assert fitness({"mean_return": 21.0}, "ALE/Pong-v5") == 100.0                  # capped
    assert fitness({"mean_return": -20.7}, "ALE/Pong-v5") == pytest.approx(0.0, abs=1e-6)
    assert fitness({"mean_return": 1.0, "human_normalized": {"capped_mean": 42.0}},
                   "ALE/Pong-v5,ALE/Breakout-v5") == 42.0


def test_after_an_exploit_the_loser_holds_the_winners_weights_and_optimiser_slots(tmp_path):
    """A donor learner trains a step against a real Reverb server and checkpoints; the loser
    adopts the checkpoint, and a learner started on the loser's root restores exactly it."""
    from agents.impala.replay import WindowWriter
    from pipelines.rl.learner import Learner
    from pipelines.rl.lifecycle import StopFlag
    from pipelines.rl.replay import start_server

    server = start_server(0, queue_size=16)
    address = f"localhost:{server.port}"
    spec = RunSpec.from_args("small", "attention", MODEL + TRAIN[:2] + ["train.batch_size=2"], env_id=ENV)
    donor = Learner(spec, address, str(tmp_path / "donor"), StopFlag())
    for v in donor.network.model.trainable_variables:
        v.assign(tf.random.normal(v.shape, seed=1))
    donor.save_checkpoint()
    source = tf.train.latest_checkpoint(str(tmp_path / "donor" / "checkpoints"))
    adopt_checkpoint(str(tmp_path / "donor"), str(tmp_path / "loser"))
    index = (tmp_path / "loser" / "checkpoints" / "checkpoint").read_text()
    assert str(tmp_path / "donor") not in index   # the copy points at its own files
    loser = Learner(spec, address, str(tmp_path / "loser"), StopFlag())
    assert loser.train_step == donor.train_step
    for name, _ in tf.train.list_variables(source):
        if name.startswith(("model/", "optimizer/")) and name.endswith("VARIABLE_VALUE"):
            np.testing.assert_array_equal(
                tf.train.load_variable(source, name),
                tf.train.load_variable(tf.train.latest_checkpoint(str(tmp_path / "loser" / "checkpoints")), name))
    for a, b in zip(loser.network.model.variables, donor.network.model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    server.stop()
    del WindowWriter


@pytest.mark.timeout(1500)
def test_a_population_of_two_evolves_and_records_its_lineage(tmp_path):
    root = tmp_path / "pbt"
    args = ["pbt", "--pbt-preset", "small", "--env", ENV, "--preset", "small", "--root-dir", str(root),
            "--max-frames", "12000", *sum((["--set", s] for s in MODEL + TRAIN), [])]
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=1400, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lineage = json.loads((root / "lineage.json").read_text())
    members = lineage["members"]
    assert len(members) == 2 and all(m["status"] == "finished" for m in members.values())
    for m in members.values():
        assert m["frames"] >= 12000 and len(m["segments"]) >= 1
        for s in m["segments"]:
            for name, (low, high) in HYPERPARAMETERS.items():
                assert low <= s["hyperparameters"][name] <= high
    # After the burn-in the worse member copied the better one: the exploit is recorded with the
    # hyperparameters before and after.
    assert lineage["exploits"], lineage
    e = lineage["exploits"][0]
    assert e["member"] in members and e["copied"] in members and e["member"] != e["copied"]
    assert set(e["after"]) == set(HYPERPARAMETERS)
    # The member really went on from the copied state: its learner resumed at the donor's frames.
    logs = (root / "members" / e["member"] / "logs" / "learner.log").read_text()
    assert f"{e['at_frames']} frames" in logs, logs[-2000:]
    assert (root / "hyperparameters.png").stat().st_size > 0


@pytest.mark.timeout(900)
def test_a_member_that_crashes_is_reported_and_the_population_goes_on(tmp_path):
    """One member's 's3ta train' is stopped from outside (SIGTERM to its launcher, as an operator
    or an out-of-memory killer would): that member ends with an error in lineage.json and the
    exit status, and the other member still trains to the end."""
    import signal
    import time

    root = tmp_path / "pbt"
    args = ["pbt", "--pbt-preset", "small", "--env", ENV, "--preset", "small", "--root-dir", str(root),
            "--max-frames", "8000", *sum((["--set", s] for s in MODEL + TRAIN), [])]
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    victim, deadline = None, time.time() + 600
    while victim is None and time.time() < deadline and proc.poll() is None:
        for path in sorted((root / "members").glob("*/launcher.json")) if (root / "members").exists() else []:
            try:
                record = json.loads(path.read_text())
            except ValueError:      # being written
                continue
            if record.get("services", {}).get("learner", {}).get("pid"):
                victim = path.parent.name
                os.kill(record["launcher_pid"], signal.SIGTERM)
                break
        time.sleep(0.5)
    output, _ = proc.communicate(timeout=800)
    assert victim is not None, output[-3000:]
    assert proc.returncode == 1, output[-3000:]
    members = json.loads((root / "lineage.json").read_text())["members"]
    assert members[victim]["status"].startswith("error"), members[victim]["status"]
    assert "exited with code" in members[victim]["status"]
    (survivor,) = [m for name, m in members.items() if name != victim]
    assert survivor["status"] == "finished" and survivor["frames"] >= 8000
    assert victim in output and "error" in output
