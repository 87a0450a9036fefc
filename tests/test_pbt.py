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
from pipelines.rl.learner_log import Progress

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
    assert fitness(Progress(mean_return=0.9), ENV) == pytest.approx(0.9)
    assert fitness(Progress(mean_return=None), ENV) < -1e8
    assert fitness(Progress(mean_return=21.0), "ALE/Pong-v5") == 100.0                  # capped
    assert fitness(Progress(mean_return=-20.7), "ALE/Pong-v5") == pytest.approx(0.0, abs=1e-6)
    assert fitness(Progress(mean_return=1.0, human_normalized={"capped_mean": 42.0}),
                   "ALE/Pong-v5,ALE/Breakout-v5") == 42.0


# ------------------------------------------------------------------ a member's learner, for real
ACTIONS = 7   # MiniGrid
HYPER = {"learning_rate": 3.3e-4, "entropy_cost": 0.02, "epsilon": 1e-3, "gradient_clip": 7.0}


def _member_spec(hyper, optimizer="adam", *extra, index=0):
    """The RunSpec a member's ``s3ta train`` builds from its command line."""
    from pipelines.pbt.member import member_command

    run = {"env": ENV, "preset": "small", "agent": "attention", "actors": 1, "seed": 0,
           "optimizer": optimizer, "overrides": MODEL + TRAIN + [f"train.optimizer={optimizer}", *extra]}
    cmd = member_command(run, hyper, index, "unused-root", 1000)
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    return RunSpec.from_args("small", "attention", sets + ["train.max_frames=1000"], env_id=ENV)


def _steps(spec, network, rng):
    """One trajectory's per-step fields (random frames, actions and rewards), as an actor writes them."""
    from tf_agents.trajectories import time_step as ts

    T = spec.train.unroll_length
    return [{"step_type": np.int32(ts.StepType.FIRST if t == 0 else ts.StepType.MID),
             "observation": rng.integers(0, 256, spec.agent.observation_shape, dtype=np.uint8),
             "prev_action": np.int32(rng.integers(ACTIONS)), "prev_reward": np.float32(rng.normal()),
             "action": np.int32(rng.integers(ACTIONS)), "behaviour_logits": np.zeros(ACTIONS, np.float32),
             "reward": np.float32(rng.choice([-1.0, 1.0])), "discount": np.float32(1),
             "policy_version": np.int64(0), "episode_return": np.float32(0), "frames": np.int32(1),
             "level": np.int32(0)} for t in range(T + 1)]


def _write_trajectories(address, spec, network, count, seed):
    import reverb
    from agents.impala.replay import WindowWriter

    rng = np.random.default_rng(seed)
    state = {k: v.numpy()[0] for k, v in network.model.initial_state(1).items()}
    for _ in range(count):
        writer = WindowWriter.open(reverb.Client(address), spec.train.unroll_length)
        for step in _steps(spec, network, rng):
            writer.append(step, state)
        writer.flush(timeout_ms=10000, pending=0)
        writer.close()


def _experience(spec, network, batch, seed):
    """A fixed learner batch ``[batch, T + 1, ...]`` of :func:`_steps` trajectories."""
    from agents.impala.replay import Experience

    rng = np.random.default_rng(seed)
    trajectories = [_steps(spec, network, rng) for _ in range(batch)]
    fields = {k: tf.constant(np.stack([np.stack([s[k] for s in tr]) for tr in trajectories]))
              for k in trajectories[0][0]}
    return Experience(initial_state=network.model.initial_state(batch), **fields)


@pytest.fixture()
def replay():
    from agents.impala.config import ReplaySettings
    from pipelines.rl.replay import start_server

    server = start_server(0, ReplaySettings(16))
    yield f"localhost:{server.port}"
    server.stop()


@pytest.fixture()
def no_export(monkeypatch):
    from pipelines.rl.learner import Learner
    monkeypatch.setattr(Learner, "export", lambda self: None)   # SavedModels: not what these tests are about


def test_a_member_trains_with_its_perturbed_learning_rate_not_an_annealed_one(tmp_path, replay, no_export):
    """The `small` preset anneals the rate by frames / max_frames, and a member's segment is an
    `s3ta train --max-frames <segment end>`: its learner must use the member's (evolved) rate
    throughout, also near the segment's end, even if the user asked for annealing."""
    from pipelines.rl.learner import Learner
    from pipelines.rl.lifecycle import StopFlag
    from pipelines.evaluation.curves import summary_records

    assert RunSpec.from_args("small", "attention", MODEL, env_id=ENV).train.anneal_learning_rate
    spec = _member_spec(HYPER, "adam", "train.anneal_learning_rate=true", "train.summary_interval=1")
    assert not spec.train.anneal_learning_rate and spec.train.learning_rate == HYPER["learning_rate"]
    learner = Learner(spec, replay, str(tmp_path), StopFlag())
    learner.frames.assign(900)   # 90% of the segment: an annealed rate would be 0.1 x
    _write_trajectories(replay, spec, learner.network, spec.train.batch_size, seed=0)
    assert learner.run(max_steps=1) == 0 and learner.train_step == 1
    assert float(learner.agent.learning_rate.numpy()) == pytest.approx(HYPER["learning_rate"])
    logged = [r["learning_rate"] for r in summary_records(str(tmp_path / "summaries" / "learner"))
              if "learning_rate" in r]
    assert logged == [pytest.approx(HYPER["learning_rate"])]
    recorded = json.loads((tmp_path / "run.json").read_text())
    train = recorded["train_config"]
    assert train["anneal_learning_rate"] is False and train["learning_rate"] == HYPER["learning_rate"]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_after_an_exploit_the_loser_holds_the_winners_weights_and_optimiser_slots(tmp_path, replay, no_export,
                                                                                  optimizer):
    """A donor learner makes real updates (from trajectories on a Reverb server) and
    checkpoints; the loser, with a state of its own, adopts the donor's checkpoint and a learner
    restarted on the loser's root (with the loser's explored hyperparameters) holds exactly the
    donor's weights, optimiser slots and step/frame counters, and the loser's learning rate."""
    from pipelines.rl.learner import Learner
    from pipelines.rl.lifecycle import StopFlag

    donor_root, loser_root = tmp_path / "donor", tmp_path / "loser"
    explored = dict(HYPER, learning_rate=HYPER["learning_rate"] * 0.8, gradient_clip=5.0)
    donor = Learner(_member_spec(HYPER, optimizer, index=0), replay, str(donor_root), StopFlag())
    _write_trajectories(replay, donor.spec, donor.network, 2 * donor.spec.train.batch_size, seed=1)
    assert donor.run(max_steps=2) == 0 and donor.train_step == 2
    loser_spec = _member_spec(explored, optimizer, index=1)
    loser = Learner(loser_spec, replay, str(loser_root), StopFlag())
    _write_trajectories(replay, loser_spec, loser.network, loser_spec.train.batch_size, seed=2)
    assert loser.run(max_steps=1) == 0 and loser.train_step == 1   # its own state, to be replaced
    assert not np.array_equal(loser.network.model.trainable_variables[0].numpy(),
                              donor.network.model.trainable_variables[0].numpy())

    source = tf.train.latest_checkpoint(str(donor_root / "checkpoints"))
    adopt_checkpoint(str(donor_root), str(loser_root))
    index = (loser_root / "checkpoints" / "checkpoint").read_text()
    assert str(donor_root) not in index   # the copy points at its own files
    (loser_root / "run.json").unlink()    # as train_member does: the hyperparameters changed
    restored = Learner(loser_spec, replay, str(loser_root), StopFlag())

    assert restored.train_step == donor.train_step == 2
    assert int(restored.frames.numpy()) == int(donor.frames.numpy()) == 2 * donor.spec.train.batch_size * 5
    assert float(restored.agent.learning_rate.numpy()) == pytest.approx(explored["learning_rate"])
    # Everything the restored learner holds equals the donor's checkpoint, key by key.
    written = restored.checkpoint.write(str(tmp_path / "restored" / "state"))
    keys = {n for n, _ in tf.train.list_variables(source) if n.endswith("VARIABLE_VALUE")} - {
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE"}
    assert keys == {n for n, _ in tf.train.list_variables(written) if n.endswith("VARIABLE_VALUE")} - {
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE"}
    slot_keys = [k for k in keys if ".OPTIMIZER_SLOT/" in k]
    assert {k.split(".OPTIMIZER_SLOT/optimizer/")[1].split("/")[0] for k in slot_keys} == (
        {"m", "v"} if optimizer == "adam" else {"rms", "momentum"})
    for key in sorted(keys):
        np.testing.assert_array_equal(tf.train.load_variable(written, key), tf.train.load_variable(source, key),
                                      err_msg=key)
    # ... and the slots are the donor's, non-trivial ones (two updates moved them off their start).
    opt, donor_opt = restored.agent.optimizer, donor.agent.optimizer
    moved = False
    for a, b in zip(restored.network.model.trainable_variables, donor.network.model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        for name in opt.get_slot_names():
            slot = opt.get_slot(a, name).numpy()
            np.testing.assert_array_equal(slot, donor_opt.get_slot(b, name).numpy())
            start = donor.spec.train.rmsprop_initial_mean_square if name == "rms" else 0.0
            moved |= name in ("m", "v", "rms") and bool(np.any(slot != start))
    assert moved
    if optimizer == "adam":
        for a, b in zip(opt._get_beta_accumulators(), donor_opt._get_beta_accumulators()):  # pylint: disable=protected-access
            assert float(a.numpy()) == float(b.numpy()) < 1.0


def _member_agent(network, env, hyper, optimizer="rmsprop"):
    from agents.impala.learning import VTraceAgent
    from tf_agents.specs import tensor_spec

    spec = _member_spec(hyper, optimizer)
    return VTraceAgent(tensor_spec.from_spec(env.time_step_spec()), tensor_spec.from_spec(env.action_spec()),
                       network, spec.train), spec


def test_a_members_entropy_cost_and_gradient_clip_reach_the_loss_and_the_update():
    """The loss of one fixed batch at two members' entropy costs differs by exactly the entropy
    term times the difference; a member's gradient clip bounds the gradient the optimiser gets."""
    spec = _member_spec(HYPER)
    env = spec.make_environment(seed=0)
    tf.random.set_seed(0)
    network = spec.build_network(ACTIONS)
    batch = _experience(spec, network, spec.train.batch_size, seed=3)
    low, _ = _member_agent(network, env, dict(HYPER, entropy_cost=1e-3))
    high, _ = _member_agent(network, env, dict(HYPER, entropy_cost=4e-2))
    a, b = low.loss(batch), high.loss(batch)
    for term in ("policy_gradient", "baseline", "entropy"):   # the same batch and weights
        assert float(a.extra[term]) == pytest.approx(float(b.extra[term]), rel=1e-6)
    entropy = float(a.extra["entropy"])
    assert entropy < 0
    assert float(b.loss) - float(a.loss) == pytest.approx((4e-2 - 1e-3) * entropy, rel=1e-4)
    for cost, info in ((1e-3, a), (4e-2, b)):
        expected = (float(info.extra["policy_gradient"]) + spec.train.baseline_cost * float(info.extra["baseline"])
                    + cost * entropy)
        assert float(info.loss) == pytest.approx(expected, rel=1e-5)

    # The gradient the optimiser receives: clipped to the member's threshold (global norm).
    for clip in (1.0, 1e4):
        agent, member = _member_agent(network, env, dict(HYPER, gradient_clip=clip))
        assert member.train.gradient_clip == clip and member.train.gradient_clip_mode == "global_norm"
        received, apply = [], agent.optimizer.apply_gradients

        def capture(pairs, *args, apply=apply, **kwargs):
            pairs = list(pairs)
            received.append(float(tf.linalg.global_norm([g for g, _ in pairs])))
            return apply(pairs, *args, **kwargs)

        agent.optimizer.apply_gradients = capture
        info = agent.train(batch)
        raw = float(info.extra.gradient_norm)
        assert bool(info.extra.applied) and raw > 1.0, raw
        assert received == [pytest.approx(min(raw, clip), rel=1e-5)]
    env.close()


# ------------------------------------------------------------------ multi-level members, ports, plots
def test_a_multi_level_member_has_an_actor_per_level_and_train_warns_below_that(tmp_path, monkeypatch, capsys):
    from pipelines.pbt.config import pbt_config
    from pipelines.pbt.run import member_run

    levels = "MiniGrid-Empty-5x5-v0,MiniGrid-Empty-6x6-v0,MiniGrid-Empty-8x8-v0"
    spec = RunSpec.from_args("small", "attention", MODEL, env_id=levels)
    assert member_run(spec, pbt_config("small"), str(tmp_path), 1000, [])["actors"] == 3
    assert member_run(spec, pbt_config("small", ["actors_per_member=4"]), str(tmp_path), 1000, [])["actors"] == 4
    single = RunSpec.from_args("small", "attention", MODEL, env_id=ENV)
    assert member_run(single, pbt_config("small"), str(tmp_path), 1000, [])["actors"] == 1
    # A user's annealing is replaced in every member, with a warning.
    member_run(single, pbt_config("small"), str(tmp_path), 1000, ["train.anneal_learning_rate=true"])
    assert "anneal_learning_rate" in capsys.readouterr().err

    import pipelines.commands.train as train_command
    from pipelines.cli import main

    def stop_here(*args, **kwargs):
        raise ValueError("stopped before anything starts")

    monkeypatch.setattr(train_command, "preflight", stop_here)
    for actors, warned in (("2", True), ("3", False)):
        with pytest.raises(SystemExit):
            main(["train", "--env", levels, "--preset", "small", "--actors", actors, "--root-dir", str(tmp_path)])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("warning: --actors")]
        assert len(lines) == int(warned), err
        if warned:
            assert "only MiniGrid-Empty-5x5-v0, MiniGrid-Empty-6x6-v0 will be played" in lines[0]
            assert "use --actors 3" in lines[0]


@pytest.mark.slow
def test_two_members_get_distinct_replay_ports_even_when_the_kernel_offers_one_twice(tmp_path, monkeypatch):
    """Two members' launchers started together can be offered the same free port (it is free
    until someone binds it, and two Reverb servers do not refuse to share one): the second one
    must reserve another port, and a reservation ends with its launcher."""
    import socket
    import pipelines.rl.launcher as launcher_module
    from pipelines.rl.launcher import Launcher, free_port

    port = free_port()
    offers = iter([port, port, port])
    monkeypatch.setattr(launcher_module, "free_port", lambda: next(offers, None) or free_port())
    first = Launcher(str(tmp_path / "m0"), ["--env", ENV], 1, 100)
    second = Launcher(str(tmp_path / "m1"), ["--env", ENV], 1, 100)
    assert first.port == port and second.port != port
    assert f"localhost:{second.port}" in second.learner.argv and f"localhost:{second.port}" in second.actors[0].argv
    with pytest.raises(ValueError, match="in use by another s3ta run"):
        Launcher(str(tmp_path / "m2"), ["--env", ENV], 1, 100, replay_port=port)
    first._reservation.release()
    second._reservation.release()
    Launcher(str(tmp_path / "m2"), ["--env", ENV], 1, 100, replay_port=port)._reservation.release()

    # A port taken by another program after the pick: the replay server is started on a new one.
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        offers = iter([busy])
        monkeypatch.setattr(launcher_module, "free_port", lambda: next(offers, None) or free_port())
        os.makedirs(tmp_path / "m3")
        launcher = Launcher(str(tmp_path / "m3"), ["--env", ENV], 1, 100)
        assert launcher.port == busy
        try:
            launcher._start_replay()
            assert launcher.port != busy and launcher.replay.poll() is None
            assert f"localhost:{launcher.port}" in launcher.learner.argv
            assert json.loads((tmp_path / "m3" / "launcher.json").read_text())["replay_address"] == launcher.address
        finally:
            launcher._shutdown()


def test_plot_draws_a_pbt_member_against_frames_and_a_multi_level_run_by_its_capped_mean_hns(tmp_path):
    """After an exploit a member's train step jumps back to the donor's: its earlier points
    with the same steps are kept (points in the order written, against frames). A multi-level
    run's human-normalised curve is its logged capped mean."""
    from pipelines.evaluation.curves import CAPPED_MEAN_TAG, load_curve, write_curve_csv

    def segment(root, env_id, points, hns=None):
        os.makedirs(root / "summaries" / "learner", exist_ok=True)
        (root / "run.json").write_text(json.dumps({"kind": "rl", "env_id": env_id, "variant": "attention"}))
        writer = tf.summary.create_file_writer(str(root / "summaries" / "learner"))   # one learner process
        with writer.as_default():
            for i, (step, frames, ret) in enumerate(points):
                tf.summary.scalar("frames", frames, step=step)
                tf.summary.scalar("episode_return", ret, step=step)
                if hns is not None:
                    tf.summary.scalar(CAPPED_MEAN_TAG, hns[i], step=step)
        writer.close()

    member = tmp_path / "member"
    segment(member, ENV, [(10, 1000, 0.1), (20, 2000, 0.2), (30, 3000, 0.3)])
    segment(member, ENV, [(15, 3100, 0.6), (25, 4000, 0.7)])   # adopted a donor at step 12
    curve = load_curve(str(member))
    np.testing.assert_array_equal(curve["frames"], [1000, 2000, 3000, 3100, 4000])
    np.testing.assert_allclose(curve["return"], [0.1, 0.2, 0.3, 0.6, 0.7], rtol=1e-6)
    assert curve["steps"] == [10, 20, 30, 15, 25] and curve["hns"] is None
    write_curve_csv(str(member), str(tmp_path / "member.csv"))
    assert len((tmp_path / "member.csv").read_text().splitlines()) == 6

    multi = tmp_path / "multi"
    segment(multi, "ALE/Pong-v5,ALE/Breakout-v5", [(1, 100, -20.0), (2, 200, -5.0)], hns=[1.5, 12.0])
    curve = load_curve(str(multi))
    np.testing.assert_allclose(curve["hns"], [1.5, 12.0], rtol=1e-6)
    np.testing.assert_array_equal(curve["frames"], [100, 200])


def test_s3ta_pbt_exits_0_only_when_every_member_finished():
    """The end-to-end test below has a failed member (exit 1); the clean case is this rule."""
    from pipelines.commands.pbt import exit_status
    finished = {"status": "finished", "frames": 8000}
    assert exit_status({"members": {"a": finished, "b": finished}}) == 0
    failed = {"status": "error: member b: 's3ta train' exited with code 1 (log: x)", "frames": 0}
    assert exit_status({"members": {"a": finished, "b": failed}}) == 1


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_population_evolves_records_its_lineage_and_goes_on_past_a_member_that_crashes(tmp_path):
    """A population of three: one member's 's3ta train' is stopped from outside at its start
    (SIGTERM to its launcher, as an operator or an out-of-memory killer would); it ends with an
    error in lineage.json and the exit status, and the two others train to the end, the worse
    copying the better at the synchronous boundary without waiting for the failed one."""
    import signal
    import time

    root = tmp_path / "pbt"
    # Two segments a member (an exploit needs a boundary after the burn-in), as short as lets
    # every member finish episodes before each boundary: each segment is a fresh `s3ta train`.
    FRAMES, SEGMENTS = 4000, ["pbt.interval_frames=2000", "pbt.ready_frames=2000"]
    args = ["pbt", "--pbt-preset", "small", "--population", "3", "--env", ENV, "--preset", "small",
            "--root-dir", str(root), "--max-frames", str(FRAMES),
            *sum((["--set", s] for s in MODEL + TRAIN + SEGMENTS), [])]
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
    output, _ = proc.communicate(timeout=1400)
    assert victim is not None, output[-3000:]
    assert proc.returncode == 1, output[-3000:]
    assert victim in output and "error" in output
    lineage = json.loads((root / "lineage.json").read_text())
    members = lineage["members"]
    assert len(members) == 3
    assert members[victim]["status"].startswith("error"), members[victim]["status"]
    assert "exited with code" in members[victim]["status"]
    survivors = {name: m for name, m in members.items() if name != victim}
    for m in survivors.values():
        assert m["status"] == "finished" and m["frames"] >= FRAMES and len(m["segments"]) >= 1, m
        for s in m["segments"]:
            for name, (low, high) in HYPERPARAMETERS.items():
                assert low <= s["hyperparameters"][name] <= high
    # After the burn-in the worse survivor copied the better one: the exploit is recorded with
    # the hyperparameters before and after.
    assert lineage["exploits"], lineage
    e = lineage["exploits"][0]
    assert e["member"] in survivors and e["copied"] in survivors and e["member"] != e["copied"]
    assert set(e["after"]) == set(HYPERPARAMETERS)
    # The member really went on from the copied state: its learner resumed at the donor's frames.
    logs = (root / "members" / e["member"] / "logs" / "learner.log").read_text()
    assert f"{e['at_frames']} frames" in logs, logs[-2000:]
    assert (root / "hyperparameters.png").stat().st_size > 0
    # Every member trained with learning-rate annealing off (PBT evolves the rate), recorded.
    for name in survivors:
        record = json.loads((root / "members" / name / "member.json").read_text())
        assert record["forced_overrides"] == ["train.anneal_learning_rate=false"]
        run_record = json.loads((root / "members" / name / "run.json").read_text())
        assert run_record["train_config"]["anneal_learning_rate"] is False
