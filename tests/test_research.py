"""Smoke tests of the research scripts (research/README.md): each runs at tiny sizes and reports
what it promises."""
import json
import os
import sys
import pytest

pytestmark = pytest.mark.slow   # see setup.cfg's markers: `make test-fast` leaves it out

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "research"))


def test_supervised_attention_reports_accuracy_and_object_scores(tmp_path, capsys):
    import supervised_attention
    out = tmp_path / "probe.json"
    result = supervised_attention.main(["--preset", "atari-cpu", "--updates", "2", "--envs", "2", "--frames", "60",
                                        "--unroll", "4", "--batch", "2", "--out", str(out)])
    assert json.loads(out.read_text())["grid"] == [8, 8] == result["grid"]
    assert 0.0 <= result["held_out_accuracy"] <= 1.0 and 0.0 < result["majority_rate"] <= 1.0
    for category in ("Ball", "Player", "Enemy"):
        assert len(result["attention"][category]["lift"]) == 4
    printed = capsys.readouterr().out
    assert "held-out accuracy" in printed and printed.count("Ball: lift") == 4
    # the label rule: a ball above the paddle's centre asks for UP, below for DOWN, level NOOP
    paddle = [(140.0, 100.0, 4.0, 15.0)]
    label = supervised_attention.tracking_label
    assert label({"Ball": [(70.0, 80.0, 2.0, 4.0)], "Player": paddle}, 4) == supervised_attention.UP
    assert label({"Ball": [(70.0, 120.0, 2.0, 4.0)], "Player": paddle}, 4) == supervised_attention.DOWN
    assert label({"Ball": [(70.0, 104.0, 2.0, 4.0)], "Player": paddle}, 4) == supervised_attention.NOOP
    assert label({"Ball": [], "Player": paddle}, 4) == supervised_attention.NOOP


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained attention agent of the small preset (64x64 input), saved with its record."""
    from s3ta_tf import agent_config, build_agent_net
    from s3ta_tf.checkpoints import save_checkpoint
    directory = tmp_path_factory.mktemp("probe") / "checkpoints"
    save_checkpoint(str(directory), build_agent_net(agent_config("small"), "attention", 6))
    return str(directory)


def test_ball_side_probe_reports_a_curve_per_variant(tmp_path):
    import ball_side_probe
    assert [ball_side_probe.label(ram) for ram in ({54: 0, 51: 50}, {54: 40, 51: 50}, {54: 58, 51: 50},
                                                    {54: 80, 51: 50})] == [-1, 0, 1, 2]
    out = tmp_path / "probe.json"
    result = ball_side_probe.main(["--steps", "2", "--batch", "2", "--length", "4", "--eval-every", "1",
                                   "--collect-steps", "16", "--envs", "1", "--test-envs", "1",
                                   "--variants", "feedforward", "tiny=attention:model.num_heads=2", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result)) and 0.0 < result["majority_accuracy"] <= 1.0
    assert result["variants"]["tiny"]["overrides"] == ["model.num_heads=2"]
    for variant in result["variants"].values():
        assert [step for step, _ in variant["curve"]] == [1, 2]


def test_convlstm_probe_compares_trained_and_fresh(tiny_checkpoint, capsys):
    import convlstm_probe
    report = convlstm_probe.main([tiny_checkpoint, "ALE/Pong-v5", "--steps", "12"])
    assert set(report) == {"trained", "init"}
    assert report["trained"]["torso"] and 0.0 <= report["init"]["h_saturated"] <= 1.0
    assert capsys.readouterr().out.count("attention std over time") == 2


def test_saturation_probe_measures_the_policy_side(tiny_checkpoint, capsys):
    import saturation_probe
    report = saturation_probe.main([tiny_checkpoint, "--steps", "8"])
    assert report["variant"] == "attention" and 0 <= report["heads_dead"] <= report["heads_units"]
    assert "answers_dead" in report and "value: mean" in capsys.readouterr().out


def test_demo_probe_describes_policy_and_heads(tmp_path):
    import demo_probe
    from s3ta_tf import agent_config, build_agent_net
    from s3ta_tf.checkpoints import save_checkpoint
    directory = str(tmp_path / "checkpoints")
    save_checkpoint(directory, build_agent_net(agent_config("small", ["observation_shape=40,40,3"]), "attention", 7))
    result = demo_probe.main([directory, "--episodes", "1"])[directory]
    assert len(result["episode_lengths"]) == 1 and abs(sum(result["policy_mean"]) - 1.0) < 1e-4
    assert len(result["distinct_cells"]) == agent_config("small").num_heads


def test_learner_profile_reports_op_times_and_the_xla_comparison(tmp_path, capsys):
    import learner_profile
    out = tmp_path / "profile.json"
    result = learner_profile.main(["--preset", "small", "--batch", "1", "--unroll", "2", "--reps", "1",
                                   "--top", "40", "--seconds", "0.2", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    prof = result["profile"]
    assert prof["wall_ms_per_update"] > 0 and prof["ops_per_update"] > 50 and 10 < len(prof["top"]) <= 40
    # the real update's convolutions and their gradients show up among the ops, not the pool's wrappers
    ops = {row["op"] for row in prof["top"]}
    assert not ops & set(learner_profile.WRAPPERS)
    assert any("Conv2D" in op for op in ops)
    for mode in ("graph", "xla"):
        assert result["xla"][mode]["learner_samples_per_s"] > 0 and result["xla"][mode]["actor_batch16_ms"] > 0
    assert "ms/update" in capsys.readouterr().out


def test_learner_profile_layernorm_mode_restores_keras(tmp_path):
    import learner_profile
    from keras.src.layers.normalization import layer_normalization
    before = layer_normalization.LayerNormalization._fused_can_be_used
    result = learner_profile.main(["--preset", "atari-cpu", "--batch", "1", "--unroll", "2", "--mode", "layernorm",
                                   "--seconds", "0.2"])
    runs = result["layernorm"]
    assert len(runs["fused_ms_per_update"]) == 2 == len(runs["unfused_ms_per_update"])
    assert min(runs["fused_ms_per_update"] + runs["unfused_ms_per_update"]) > 0
    assert layer_normalization.LayerNormalization._fused_can_be_used is before
