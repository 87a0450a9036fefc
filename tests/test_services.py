"""The training services' parts against a real Reverb server on localhost: the trajectory
layout, the variables channel, a real actor process, the learner's step (one update and its
metrics) and its non-finite guard."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from agents.impala.replay import experience_spec
from pipelines.errors import DivergenceError
from pipelines.rl.learner import Learner
from pipelines.rl.lifecycle import StopFlag
from pipelines.rl.replay import start_server
from agents.impala.builder import RunSpec
from agents.impala.config import ReplaySettings
from agents.impala.replay import TRAJECTORY_TABLE, WindowWriter, make_dataset
from agents.impala.variables import assign_variables, pull_variables, push_variables

reverb = pytest.importorskip("reverb")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = "MiniGrid-Empty-5x5-v0"
MODEL_SET = ["model.observation_shape=24,24,3", "model.convlstm_channels=16", "model.query_hidden=16",
             "model.answer_hidden=32", "model.lstm_units=16", "model.head_hidden=16"]


def tiny_spec(*train_set) -> RunSpec:
    return RunSpec.from_args("small", "attention", MODEL_SET + ["train.unroll_length=5", "train.batch_size=2",
                                                                "train.queue_size=16", *train_set], env_id=ENV)


@pytest.fixture()
def server():
    s = start_server(0, ReplaySettings(16))
    yield s
    s.stop()


def test_windows_overlap_by_the_bootstrap_step_and_store_the_first_state(server):
    address = f"localhost:{server.port}"
    Spec = collections.namedtuple("Spec", ["x", "initial_state"])
    spec = Spec(x=tf.TensorSpec((), tf.int32), initial_state={"h": tf.TensorSpec((2,), tf.float32)})
    writer = WindowWriter.open(reverb.Client(address), unroll_length=3)
    completed = [writer.append({"x": np.int32(t)}, {"h": np.full(2, t, np.float32)}) for t in range(10)]
    writer.flush(timeout_ms=5000, pending=0)
    # Items complete at steps 3, 6 and 9 (windows 0-3, 3-6, 6-9); step 9's window is not done.
    assert [t for t, done in enumerate(completed) if done] == [3, 6, 9]
    batch = next(iter(make_dataset(address, spec, sequence_length=4, batch_size=3)))
    np.testing.assert_array_equal(batch.x.numpy(), [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    np.testing.assert_array_equal(batch.initial_state["h"].numpy(), [[0, 0], [3, 3], [6, 6]])
    writer.close()


def test_step_records_have_the_fields_and_dtypes_of_the_experience_spec():
    """What the actor stores of one batched step (agents.impala.replay.step_records, from a real
    policy step on a real environment group) is every per-step field of experience_spec, in its
    dtype and shape."""
    from tf_agents.specs import tensor_spec
    from agents.environments import PyEnvGroup
    from agents.impala.policies import ActorCriticPolicy
    from agents.impala.replay import per_step_fields, step_records

    spec = tiny_spec()
    group = PyEnvGroup([spec.make_environment(seed, 0) for seed in (1, 2)])
    network = spec.build_network(group.num_actions)
    observation = tensor_spec.BoundedTensorSpec(spec.agent.observation_shape, tf.uint8, 0, 255, "observation")
    policy = ActorCriticPolicy(ts.time_step_spec(observation),
                               tensor_spec.BoundedTensorSpec((), tf.int32, 0, group.num_actions - 1), network)
    time_step = group.reset()
    step = policy.action(tf.nest.map_structure(tf.convert_to_tensor, time_step), policy.get_initial_state(2))
    group.send(step.action.numpy())
    outcome, frames = group.recv()
    info = tf.nest.map_structure(np.asarray, step.info)
    records = step_records(time_step, info, step.action.numpy(), outcome, frames, 3, np.zeros(2, np.float32), 0)
    experience = experience_spec(network)
    assert len(records) == 2
    for record in records:
        assert sorted(record) == sorted(per_step_fields(experience))
        for name, value in record.items():
            field = getattr(experience, name)
            assert (value.dtype, value.shape) == (field.dtype.as_numpy_dtype, tuple(field.shape)), name
    group.close()


def test_batch_reader_keeps_items_across_waits_and_stops_on_request(server):
    """Items arriving in bursts with gaps longer than the reader's wait are all delivered (a
    batched tf.data pipeline would drop the partial batch at each timeout)."""
    import threading
    import time

    from agents.impala.replay import BatchReader

    address = f"localhost:{server.port}"
    Spec = collections.namedtuple("Spec", ["x", "initial_state"])
    spec = Spec(x=tf.TensorSpec((), tf.int32), initial_state={"h": tf.TensorSpec((2,), tf.float32)})
    writer = WindowWriter.open(reverb.Client(address), unroll_length=1)

    def produce():
        for t in range(5):
            writer.append({"x": np.int32(t)}, {"h": np.full(2, t, np.float32)})
            writer.flush(timeout_ms=5000, pending=0)
            time.sleep(0.5)  # > the reader's 100 ms wait

    producer = threading.Thread(target=produce)
    producer.start()
    reader = BatchReader(address, spec, sequence_length=2, batch_size=2, timeout_ms=100)
    batches = [reader.next_batch(lambda: False) for _ in range(2)]
    producer.join()
    np.testing.assert_array_equal(np.concatenate([b.x.numpy() for b in batches]),
                                  [[0, 1], [1, 2], [2, 3], [3, 4]])
    assert reader.next_batch(lambda: True) is None  # a stop request while waiting
    writer.close()


def test_replay_reuse_samples_each_trajectory_k_times_and_counts_its_frames_once():
    """train.replay_reuse = 3 on a real Reverb server: a trajectory reaches the learner up to 3
    times, flagged as a first use exactly once, so frames and finished episodes are counted once;
    the sample-to-insert ratio holds the writer back while the learner is behind, so ~3 samples
    are drawn per trajectory written."""
    import threading

    from agents.impala.replay import BatchReader
    from pipelines.rl.learner import consumed_frames, finished_episode_returns

    reuse, batch_size, batches = 3, 2, 12
    server = start_server(0, ReplaySettings(8, reuse=reuse, min_size=batch_size))
    address = f"localhost:{server.port}"
    Spec = collections.namedtuple("Spec", ["x", "frames", "step_type", "episode_return", "level",
                                           "initial_state"])
    scalar = lambda dtype: tf.TensorSpec((), dtype)
    spec = Spec(x=scalar(tf.int32), frames=scalar(tf.int32), step_type=scalar(tf.int32),
                episode_return=scalar(tf.float32), level=scalar(tf.int32),
                initial_state={"h": tf.TensorSpec((1,), tf.float32)})
    writer = WindowWriter.open(reverb.Client(address), unroll_length=1)
    done = threading.Event()

    def produce():   # windows of 2 steps without end; every 4th step ends an episode
        t = 0
        try:
            while not done.is_set():
                writer.append({"x": np.int32(t), "frames": np.int32(4),
                               "step_type": np.int32(ts.StepType.LAST if t % 4 == 3 else ts.StepType.MID),
                               "episode_return": np.float32(t), "level": np.int32(0)},
                              {"h": np.full(1, t, np.float32)})
                t += 1
        except Exception:   # the server stops under a blocked writer at the end of the test
            pass

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        reader = BatchReader(address, spec, 2, batch_size, timeout_ms=200, with_first_use=True)
        uses, firsts = collections.Counter(), collections.Counter()
        frames, returns = 0, []
        for _ in range(batches):
            batch, first_use = reader.next_batch(lambda: False)
            first_use = first_use.numpy()
            for x, first in zip(batch.x.numpy()[:, 0].tolist(), first_use.tolist()):
                uses[x] += 1
                firsts[x] += int(first)
            frames += consumed_frames(batch, 1, first_use)
            returns += [value for _, value in finished_episode_returns(batch, 1, first_use)]
        done.set()
        assert max(uses.values()) == reuse and all(n <= reuse for n in uses.values()), uses
        assert all(firsts[x] == 1 for x in uses), (uses, firsts)   # one first use per trajectory
        assert frames == 4 * len(uses)                             # each one's frames counted once
        assert sorted(returns) == sorted(float(x) for x in uses if x % 4 == 3)
        # The ratio: 24 samples came from at most 24 / 3 + the writer's allowance ahead (6 / 3).
        assert len(uses) <= batches * batch_size // reuse + 2 * batch_size, uses
    finally:
        done.set()
        server.stop()


def test_replay_reuse_is_checked_where_it_is_set():
    from agents.impala.replay import make_tables
    with pytest.raises(ValueError, match=r"train.queue_size \(16\) must be >= 2 x train.batch_size \(16\) "
                                         r"with train.replay_reuse=2"):
        tiny_spec("train.replay_reuse=2", "train.batch_size=16", "train.queue_size=16")
    with pytest.raises(ValueError, match="train.replay_reuse must be >= 1, got 0"):
        tiny_spec("train.replay_reuse=0")
    with pytest.raises(ValueError, match=r"queue_size \(4\) must be >= 2 x min_size \(4\) with reuse=2"):
        make_tables(ReplaySettings(4, reuse=2, min_size=4))
    with pytest.raises(ValueError, match=r"--queue-size \(4\) must be >= 2 x --min-size \(4\) with --reuse=2"):
        ReplaySettings(4, reuse=2, min_size=4).check(ReplaySettings.FLAGS)
    # A reused run's replay server gets the table from the launcher's command line.
    from pipelines.rl.launcher import Launcher
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        launcher = Launcher(root, [], 1, 100, replay=ReplaySettings(32, reuse=4, min_size=8), progress=False)
        assert launcher.replay.argv[-6:] == ["--queue-size", "32", "--reuse", "4", "--min-size", "8"]
        launcher._reservation.release()


def test_variables_channel(server):
    client = reverb.Client(f"localhost:{server.port}")
    assert pull_variables(client) is None  # nothing pushed yet: actors keep their weights
    values = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(4, np.float32)]
    push_variables(client, 7, values)
    push_variables(client, 8, [v * 2 for v in values])  # replaces the previous push
    version, pulled = pull_variables(client)
    assert version == 8
    variables = [tf.Variable(tf.zeros((2, 3))), tf.Variable(tf.zeros(4))]
    assign_variables(variables, pulled)
    np.testing.assert_array_equal(variables[0].numpy(), values[0] * 2)
    with pytest.raises(ValueError, match="shape"):
        assign_variables([tf.Variable(tf.zeros((3, 2))), variables[1]], pulled)
    with pytest.raises(ValueError, match="pushed 2 variables"):
        assign_variables(variables[:1], pulled)


def _cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def continuing_windows(batch) -> int:
    """How many windows of ``batch`` end with the step another window begins with."""
    obs = batch.observation.numpy()
    n = len(obs)
    return sum(any(np.array_equal(obs[i, -1], obs[j, 0]) for j in range(n) if j != i) for i in range(n))


def assert_unroll_reproduces_behaviour_logits(network, batch) -> None:
    """The learner's unroll of the stored windows, from their stored recurrent state, gives the
    logits the actor acted with."""
    inputs = {"observation": batch.observation, "prev_action": batch.prev_action,
              "prev_reward": batch.prev_reward}
    out, _ = network(inputs, step_type=batch.step_type, network_state=batch.initial_state)
    np.testing.assert_allclose(out["logits"].numpy(), batch.behaviour_logits.numpy(), atol=1e-4)


@pytest.mark.slow
def test_actor_process_writes_trajectories_the_learner_can_replay(server, tmp_path):
    """A real `s3ta actor` on MiniGrid: its trajectories overlap by one step, start from the
    stored recurrent state, and the learner's unroll of them (with the variables the actor
    pulled) reproduces the behaviour logits."""
    address = f"localhost:{server.port}"
    spec = tiny_spec()
    network = spec.build_network(7)
    push_variables(reverb.Client(address), 7, [v.numpy() for v in network.variables])
    # --precision float32: the learner side here is float32, and 'auto' picks bfloat16 on CPUs with
    # native bf16 (AVX-512 BF16, AMX), whose logits differ by ~1e-3 from float32's.
    result = _cli("actor", "--env", ENV, "--preset", "small", *sum((["--set", s] for s in MODEL_SET), []),
                  "--precision", "float32",
                  "--set", "train.unroll_length=5", "--replay-address", address, "--root-dir",
                  str(tmp_path), "--actor-id", "0", "--num-envs", "2", "--max-steps", "31")
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.localhost_client().server_info()[TRAJECTORY_TABLE].current_size == 12  # 6 per env
    batch = next(iter(make_dataset(address, experience_spec(network), 6, batch_size=12)))
    assert np.all(batch.policy_version.numpy() == 7)
    first_steps = batch.step_type.numpy()[:, 0] == ts.StepType.FIRST
    assert first_steps.sum() >= 2  # the two environments' first windows
    assert continuing_windows(batch) >= 10  # every window but each env's last continues into the next one
    assert_unroll_reproduces_behaviour_logits(network, batch)
    lines = (tmp_path / "actors" / "actor-0.json").read_text()
    # 2 envs x 31 steps, 1 frame per MiniGrid step, except the step after an episode's LAST
    # step, which resets without an emulator frame (the windows hold every step exactly once
    # outside position 0, the bootstrap step they share with the previous window).
    resets = int(np.sum(batch.step_type.numpy()[:, 1:] == ts.StepType.LAST))
    assert json.loads(lines)["frames"] == 62 - resets


def _write_trajectory(client, spec: RunSpec, network, reward_value: float, episode_return=None):
    """One trajectory of ``unroll_length + 1`` steps; with ``episode_return``, an episode
    ends at its third step with that return."""
    T = spec.train.unroll_length
    writer = WindowWriter.open(client, T)
    state = {k: v.numpy()[0] for k, v in network.model.initial_state(1).items()}
    for t in range(T + 1):
        last = episode_return is not None and t == 2
        writer.append({
            "step_type": np.int32(ts.StepType.FIRST if t == 0 else ts.StepType.LAST if last else ts.StepType.MID),
            "observation": np.zeros(spec.agent.observation_shape, np.uint8),
            "prev_action": np.int32(0), "prev_reward": np.float32(0), "action": np.int32(t % 7),
            "behaviour_logits": np.zeros(7, np.float32), "reward": np.float32(reward_value),
            "discount": np.float32(0 if last else 1), "policy_version": np.int64(0),
            "episode_return": np.float32(episode_return if last else 0),
            "frames": np.int32(1), "level": np.int32(0),
        }, state)
    writer.flush(timeout_ms=5000, pending=0)
    writer.close()


@pytest.mark.slow
def test_learner_skips_a_non_finite_update_and_never_checkpoints_it(server, tmp_path, capsys):
    address = f"localhost:{server.port}"
    spec = tiny_spec("train.summary_interval=1")
    client = reverb.Client(address)
    learner = Learner(spec, address, str(tmp_path), StopFlag())
    for reward in (np.nan, 1.0, 1.0, 1.0):  # batch 1 holds a NaN reward, batch 2 does not
        _write_trajectory(client, spec, learner.network, reward)
    assert learner.run(max_steps=2) == 0
    assert "update skipped" in capsys.readouterr().out
    assert int(learner.agent.nonfinite_updates.numpy()) == 1 and learner.train_step == 1
    assert learner.variables_finite()
    # The checkpoint holds the finite weights, step 1, and the resumed learner continues there.
    resumed = Learner(spec, address, str(tmp_path), StopFlag())
    assert resumed.train_step == 1 and int(resumed.agent.nonfinite_updates.numpy()) == 1
    for a, b in zip(resumed.network.variables, learner.network.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    progress = json.loads((tmp_path / "learner.json").read_text())
    assert progress["train_step"] == 1 and progress["nonfinite_updates"] == 1
    config = json.loads((tmp_path / "run.json").read_text())
    assert config["variant"] == "attention" and config["num_actions"] == 7
    with pytest.raises(ValueError, match="holds another run"):
        Learner(RunSpec.from_args("small", "lstm", MODEL_SET + ["train.unroll_length=5"], env_id=ENV),
                address, str(tmp_path), StopFlag())


def test_learner_step_returns_the_metrics_of_one_update_and_the_logger_writes_them(server, tmp_path):
    """``Learner.step`` on one batch read from a real Reverb server: the update's loss terms and
    diagnostics, the counts and the recent returns, every value a finite number; the logger
    writes each of them as a TensorBoard scalar (the record's own fields aside) and the record
    the launcher reads."""
    from agents.impala.replay import BatchReader
    from pipelines.evaluation.curves import summary_records
    from pipelines.rl.learner_log import NOT_SUMMARISED, read_progress

    address = f"localhost:{server.port}"
    spec = tiny_spec()
    learner = Learner(spec, address, str(tmp_path), StopFlag())
    client = reverb.Client(address)
    for value in (0.5, 1.5):
        _write_trajectory(client, spec, learner.network, 0.1, episode_return=value)
    reader = BatchReader(address, experience_spec(learner.network), spec.train.sequence_length,
                         spec.train.batch_size, timeout_ms=5000, with_first_use=True)
    batch, first_use = reader.next_batch(lambda: False)
    metrics = learner.step(batch, first_use.numpy())

    parts = {f"gradient_norm/{p}" for p in ("vision_core", "query_network", "answer_processor",
                                            "policy_core", "heads")}
    assert set(metrics) == {
        "loss/total", "loss/policy_gradient", "loss/baseline", "loss/entropy", "policy/entropy",
        "policy/mean_log_rho", "policy/lag", "learning_rate", "gradient_norm", "attention/entropy",
        "train_step", "frames", "max_frames", "frames_per_second", "nonfinite_updates", "batch_wait_fraction",
        "mean_return", "episodes", "episode_return"} | parts
    assert all(isinstance(v, (int, float)) and np.isfinite(v) for v in metrics.values()), metrics
    assert metrics["train_step"] == learner.train_step == 1 and metrics["nonfinite_updates"] == 0
    assert metrics["frames"] == 2 * spec.train.unroll_length and metrics["policy/lag"] == 0.0
    assert metrics["episodes"] == 2 and metrics["mean_return"] == metrics["episode_return"] == 1.0
    assert metrics["learning_rate"] == pytest.approx(spec.train.learning_rate)

    learner.logger.write_summaries(metrics)
    learner.logger.write_record(metrics)
    written = summary_records(str(tmp_path / "summaries" / "learner"))
    assert len(written) == 1 and set(written[0]) == set(metrics) - NOT_SUMMARISED | {"step"}
    assert written[0]["step"] == 1 and written[0]["loss/total"] == pytest.approx(metrics["loss/total"])
    progress = read_progress(str(tmp_path))
    assert (progress.train_step, progress.frames, progress.episodes, progress.mean_return) == (1, 10, 2, 1.0)


def test_learner_waiting_for_data_stops_on_request(server, tmp_path):
    """With an empty queue (no actors) a stop request still ends the learner promptly; it
    checkpoints its (initial) weights as step 0, so a restart keeps what actors already have."""
    import threading
    import time

    stop = StopFlag()
    learner = Learner(tiny_spec(), f"localhost:{server.port}", str(tmp_path), stop)
    threading.Timer(1.0, stop.set).start()
    start = time.time()
    assert learner.run() == 0
    assert time.time() - start < 15
    assert learner.train_step == 0 and learner.manager.latest_checkpoint.endswith("ckpt-0")


@pytest.mark.parametrize("command", ["replay", "actor", "learner", "train"])
def test_service_commands_have_help(command, capsys):
    from pipelines.cli import main

    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"s3ta {command}" in out and "--" in out
    if command != "replay":
        assert "S3TA_REPLAY_ADDRESS" in out or command == "train"


def test_bad_run_flags_are_reported_before_anything_starts(capsys, tmp_path):
    from pipelines.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--env", ENV, "--preset", "small", "--set", "train.batch_size=zero",
              "--root-dir", str(tmp_path)])
    assert e.value.code == 2
    assert "batch_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--env", ENV, "--preset", "small", "--set", "train.queue_size=4",
              "--root-dir", str(tmp_path)])
    assert "queue_size (4) must be >= train.batch_size" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # nothing was started


def test_prefetching_reader_delivers_every_trajectory_exactly_once(server):
    from agents.impala.replay import BatchReader, PrefetchingReader

    address = f"localhost:{server.port}"
    spec = tiny_spec()
    network = spec.build_network(7)
    client = reverb.Client(address)
    reader = PrefetchingReader(BatchReader(address, experience_spec(network), 6, batch_size=2, timeout_ms=100),
                               depth=2)
    seen = []
    try:
        for burst in range(3):  # bursts separated by waits longer than the reader's timeout
            for i in range(4):
                _write_trajectory(client, spec, network, float(burst * 4 + i))
            for _ in range(2):
                batch = reader.next_batch(lambda: False)
                seen += batch.reward.numpy()[:, 0].tolist()
        assert reader.next_batch(lambda: True) is None  # nothing queued, a stop request: None
    finally:
        assert reader.close() == 0
    assert sorted(seen) == [float(i) for i in range(12)]


def test_learner_stops_a_run_whose_updates_stay_non_finite(server, tmp_path, monkeypatch):
    import pipelines.rl.learner as learner_module

    monkeypatch.setattr(learner_module, "MAX_CONSECUTIVE_NONFINITE", 3)
    address = f"localhost:{server.port}"
    spec = tiny_spec()
    client = reverb.Client(address)
    learner = Learner(spec, address, str(tmp_path), StopFlag())
    for reward in (1.0, 1.0) + (np.nan,) * 6:  # one good batch, then three non-finite ones
        _write_trajectory(client, spec, learner.network, reward)
    with pytest.raises(DivergenceError, match="Experience.reward") as e:
        learner.run(max_steps=10)
    assert "3 consecutive updates" in str(e.value) and "last good checkpoint" in str(e.value)
    assert learner.train_step == 1 and int(learner.agent.nonfinite_updates.numpy()) == 3
    assert learner.manager.latest_checkpoint.endswith("ckpt-1") and learner.variables_finite()


def test_fine_tune_from_starts_a_new_run_from_another_runs_weights(server, tmp_path):
    address = f"localhost:{server.port}"
    first = Learner(tiny_spec(), address, str(tmp_path / "a"), StopFlag())
    for v in first.network.model.trainable_variables:
        v.assign(tf.random.normal(v.shape))
    first.save_checkpoint()
    other_env = RunSpec.from_args("small", "attention", MODEL_SET + ["train.unroll_length=5", "train.batch_size=2",
                                                                   "train.queue_size=16"],
                                  env_id="MiniGrid-Empty-6x6-v0")
    tuned = Learner(other_env, address, str(tmp_path / "b"), StopFlag(), fine_tune_from=str(tmp_path / "a"))
    for a, b in zip(tuned.network.model.variables, first.network.model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert tuned.train_step == 0   # the weights only: a new run starts at step 0
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["fine_tuned_from"] == str(tmp_path / "a") and record["env_id"] == "MiniGrid-Empty-6x6-v0"


@pytest.mark.slow
def test_multi_level_batch_holds_trajectories_of_every_level(server, tmp_path, capsys):
    """Two actor processes of a two-level run: actor i plays level i mod 2; one learner batch
    holds both levels' trajectories, and the learner counts returns per level."""
    from pipelines.rl.learner import finished_episode_returns
    address = f"localhost:{server.port}"
    levels = "MiniGrid-Empty-5x5-v0,MiniGrid-Empty-6x6-v0"
    spec = RunSpec.from_args("small", "attention", MODEL_SET + ["train.unroll_length=5"], env_id=levels)
    assert spec.levels == ("MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-6x6-v0") and spec.check_levels() == 7
    network = spec.build_network(7)
    push_variables(reverb.Client(address), 1, [v.numpy() for v in network.variables])
    procs = [subprocess.Popen([sys.executable, "-m", "pipelines.cli", "actor", "--env", levels, "--preset", "small",
                               *sum((["--set", s] for s in MODEL_SET), []), "--set", "train.unroll_length=5",
                               "--replay-address", address, "--actor-id", str(i), "--num-envs", "1",
                               "--max-steps", "26"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (0, 1)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert "level 0 of 2" in outs[0] and "MiniGrid-Empty-6x6-v0" in outs[1] and "level 1 of 2" in outs[1]
    items = server.localhost_client().server_info()[TRAJECTORY_TABLE].current_size
    assert items >= 4, outs     # each actor wrote its windows of 6 steps
    batch = next(iter(make_dataset(address, experience_spec(network), 6, batch_size=items, timeout_ms=30000)))
    levels_seen = batch.level.numpy()
    assert set(levels_seen[:, 0].tolist()) == {0, 1}
    assert all(len(set(row)) == 1 for row in levels_seen.tolist())   # a trajectory stays on its level
    for level, value in finished_episode_returns(batch, 5):
        assert level in (0, 1) and isinstance(value, float)


def test_multi_level_atari_uses_the_full_action_set_and_mismatched_levels_are_refused():
    spec = RunSpec.from_args("small", "attention", [], env_id="ALE/Pong-v5,ALE/Breakout-v5")
    assert spec.train.full_action_space and "train.full_action_space=true" in spec.overrides
    assert spec.check_levels() == 18
    mixed = RunSpec.from_args("small", "attention", ["model.observation_shape=24,24,3"],
                              env_id="MiniGrid-Empty-5x5-v0,ALE/Pong-v5")
    with pytest.raises(ValueError, match="must share action counts; got MiniGrid-Empty-5x5-v0: 7, ALE/Pong-v5: 6"):
        mixed.check_levels()
