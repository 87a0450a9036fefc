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
