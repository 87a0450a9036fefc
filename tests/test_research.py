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
