"""``s3ta analyze`` end to end on a real ALE game, bad input, and the report in headless Chromium."""
import json
import re
import numpy as np
import pytest
from PIL import Image

from analysis_fixtures import BrightAttention
from pipelines.analysis import novel_state
from pipelines.analysis import report as rp
from pipelines.analysis import video
from pipelines.analysis.rollout import make_analysis_environment
from pipelines.cli import main
from s3ta_tf import agent_config, build_agent_net
from s3ta_tf.checkpoints import save_checkpoint
from s3ta_tf.export import export_saved_model


def network_references(page: str) -> list:
    """Every "http" left once the embedded base64 payloads (which can spell "http" by chance)
    and the http-equiv attribute are removed: anything a viewer would fetch from a network."""
    text = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "data:", page).replace("http-equiv", "")
    return [text[max(0, m.start() - 40):m.end() + 40] for m in re.finditer("http", text)]

ENV = "ALE/MsPacman-v5"     # minimal action set: 9 actions, 210x160 frames


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Small-preset attention agent and feed-forward baseline at the full 210x160 Atari size
    (SavedModels), and two mismatched agents (checkpoint directories)."""
    root = tmp_path_factory.mktemp("analysis_models")
    cfg = agent_config("small", {"observation_shape": (210, 160, 3)})
    paths = {}
    for variant in ("attention", "feedforward"):
        paths[variant] = export_saved_model(build_agent_net(cfg, variant, 9), str(root / variant))
    # checkpoint directories (run.json + TF checkpoint) for the mismatch cases
    for name, model in (("small64", build_agent_net(agent_config("small"), "attention", 9)),
                        ("pong", build_agent_net(cfg, "attention", 6))):
        save_checkpoint(str(root / name), model)
        paths[name] = str(root / name)
    return paths


def analyze(*args):
    return main(["analyze", "--quiet", *args])


@pytest.mark.slow
def test_analyze_writes_every_output_and_the_report_renders(exported, tmp_path, capfd):
    out = tmp_path / "out"
    code = analyze("--model", exported["attention"], "--baseline-model", exported["feedforward"], "--env", ENV,
                   "--steps", "24", "--out", str(out), "--preset", "small", "--set", "analysis.saliency_warmup=14",
                   "--set", "analysis.saliency_stride=10", "--probe-time", "16", "--probe-position", "120,60")
    assert code == 0
    progress_lines = [line for line in capfd.readouterr().err.splitlines() if "ETA" in line]
    assert progress_lines == []                     # --quiet: no progress lines, saliency's included
    for name in ("overlays.mp4", "overlays.gif", "what_where.mp4", "what_where.gif", "weight_distribution.png",
                 "saliency_t14.png", "saliency_t14.npz", "novel_state.png", "novel_state.mp4", "summary.json",
                 "rollout.npz", "report.html"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    overlays = video.read_video(str(out / "overlays.mp4"))
    # caption strip + frame + one row per head (2 heads in the small preset), one video frame per step
    assert overlays.shape == (24, video.CAPTION_HEIGHT + 3 * 210, 160, 3)
    rollout = np.load(out / "rollout.npz")
    assert rollout["frames"].shape == (24, 210, 160, 3) and rollout["attention"].shape == (24, 2, 27, 20)
    # one overlay video per episode (SPEC §3), together covering every step
    episodes = summary["episodes"]
    assert sum(e["steps"] for e in episodes) == 24 and episodes[0]["first_step"] == 0
    for e in episodes:
        frames = video.read_video(str(out / f"overlays_episode{e['episode']:03d}.mp4"))
        assert frames.shape[0] == e["steps"] and (out / f"overlays_episode{e['episode']:03d}.gif").exists()
    # the video's frame row is the observation (up to H.264 loss)
    assert np.abs(overlays[5, video.CAPTION_HEIGHT:video.CAPTION_HEIGHT + 210].astype(int)
                  - rollout["frames"][5]).mean() < 8
    sal = np.load(out / "saliency_t14.npz")
    assert sal["agent_policy"].shape == (21, 16) and sal["baseline_value"].shape == (21, 16)
    faith = summary["saliency"]["14"]["faithfulness_policy"]
    assert len(faith["spearman"]) == 2 and len(faith["top_k_mass"]) == 2
    probe = summary["novel_state"]
    assert probe["box"] == [120, 60, 130, 68] and probe["during"]["steps"] == 5
    # same seed and no sprite yet: the probe run repeats the control exactly before t0
    assert probe["before"]["action_agreement"] == 1.0
    assert probe["before"]["mass_probe"] == pytest.approx(probe["before"]["mass_control"])
    page = (out / "report.html").read_text()
    assert network_references(page) == []                           # nothing fetched from a network
    assert "<caption>Summary</caption>" in page and "Spearman" in page and "sprite detected per head" in page
    # MsPacman's objects from RAM (OCAtari): the player and the ghosts get per-head scores
    objects = summary["objects"]
    assert {"Player", "Ghost"} <= set(objects["categories"]) and len(objects["attention"]["Player"]["lift"]) == 2
    assert (out / "object_mass.png").stat().st_size > 0
    assert (out / "object_lag.png").stat().st_size > 0
    states = rp.media_states(rp.render_dom(str(out / "report.html")))
    # every picture and video of the page loads in a real browser, the lag plot among them
    assert "object_lag.png" in states and len(states) == 10 and set(states.values()) == {"loaded"}, states


def test_closed_loop_probe_in_a_real_game_detects_the_sprite():
    """A hand-built model that attends bright cells, playing Pong: the white sprite spliced into
    the upper half takes its attention (from the white walls) and changes its action while
    shown; before it, probe and control agree."""
    model = BrightAttention(frame_hw=(210, 160), feature_hw=(27, 20), num_heads=1, beta=200.0, num_actions=6)
    sprite = np.full((16, 16, 3), 255, np.uint8)
    make_env = lambda: make_analysis_environment("ALE/Pong-v5", model, seed=3)   # noqa: E731
    result, probe_run = novel_state.probe_in_environment(model, make_env, 30, sprite, (50, 70), t0=12,
                                                         duration=8, policy="greedy", progress=False)
    s = result.summary()
    assert s["detected_by_head"] == [True]
    assert s["during"]["mass_probe"][0] > 0.9 > 0.1 > s["during"]["mass_control"][0]
    assert s["before"]["action_agreement"] == 1.0 and s["during"]["action_agreement"] == 0.0
    assert (probe_run.frames[12:20, 50:66, 70:86] == 255).all()            # pixels only...
    assert not (probe_run.frames[:12, 50:66, 70:86] == 255).all()


def test_report_check_notices_broken_media(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (4, 20, 16, 3), dtype=np.uint8)
    good = video.write_mp4(str(tmp_path / "good.mp4"), frames, 4)
    gif = video.write_gif(str(tmp_path / "good.gif"), frames, 4)
    Image.fromarray(frames[0]).save(tmp_path / "good.png")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    page = rp.Report("check").media(good).media(gif).media(str(tmp_path / "good.png"))
    page.media(str(tmp_path / "broken.mp4")).media(str(tmp_path / "broken.png"))
    page.table(["a", "b"], [["x", 0.5]])
    html_path = page.write(str(tmp_path / "r.html"))
    text = open(html_path).read()
    assert network_references(text) == []                        # self-contained: no network reference
    states = rp.media_states(rp.render_dom(html_path))
    assert states == {"good.mp4": "loaded", "good.gif": "loaded", "good.png": "loaded",
                      "broken.mp4": "error", "broken.png": "error"}


@pytest.mark.parametrize("args, message", [
    (["--model", "/nonexistent/model"], "model directory '/nonexistent/model' does not exist"),
    (["--env", "ALE/NoSuchGame-v5"], "unknown environment id 'ALE/NoSuchGame-v5'"),
    (["--model", "{small64}"], "gives observations of shape (210, 160, 3) but the model expects (64, 64, 3)"),
    (["--model", "{pong}"], "has 9 actions but the model has 6"),
    (["--saliency-frames", "3"], "saliency frames [3] must lie in [saliency_warmup=201"),
    (["--probe-position", "300,10"], "lies outside the 210x160 frame"),
    (["--probe-time", "7"], "probe_time=7 must be within the 3 analysed steps"),
    (["--sprite", "/nonexistent/fish.png"], "sprite image '/nonexistent/fish.png' does not exist"),
    (["--set", "analysis.saliency_stride=0"], "saliency_stride must be >= 1"),
])
def test_bad_input_gets_a_clear_error(exported, tmp_path, capsys, args, message):
    base = {"--model": exported["attention"], "--env": ENV}
    args = [a.format(**exported) for a in args]
    for flag, value in base.items():
        if flag not in args:
            args += [flag, value]
    with pytest.raises(SystemExit) as exc:
        analyze(*args, "--steps", "3", "--out", str(tmp_path / "o"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_describes_analyze(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--model", "--env", "--steps", "--out", "--baseline-model", "--saliency-frames", "--sprite"):
        assert flag in text


@pytest.mark.slow
def test_one_overlay_video_per_episode_when_several_episodes_end(tmp_path):
    """MiniGrid-Empty-5x5 ends an episode at the goal or after 100 steps, so 210 steps of an
    untrained (near-random) agent hold at least two finished episodes: each gets its own overlay
    video (MP4 and GIF) with one frame per step of that episode, and together they cover the run."""
    cfg = agent_config("small", {"observation_shape": (40, 40, 3)})     # MiniGrid 5x5: 40x40 pixels
    model_dir = str(tmp_path / "model")       # a checkpoint directory: no SavedModel tracing
    save_checkpoint(model_dir, build_agent_net(cfg, "attention", 7))
    out = tmp_path / "out"
    steps = 210
    assert analyze("--model", model_dir, "--env", "MiniGrid-Empty-5x5-v0", "--steps", str(steps),
                   "--out", str(out), "--preset", "small", "--set", f"analysis.saliency_warmup={steps}",
                   "--probe-position", "4,4") == 0
    summary = json.loads((out / "summary.json").read_text())
    episodes = summary["episodes"]
    assert len(episodes) >= 3, summary["episode_starts"]     # >= 2 finished, then the cut-off one
    assert [e["first_step"] for e in episodes] == [0] + [s for s in summary["episode_starts"] if s > 0]
    assert sum(e["steps"] for e in episodes) == steps
    written = sorted(p.name for p in out.glob("overlays_episode*.mp4"))
    assert written == [f"overlays_episode{k:03d}.mp4" for k in range(len(episodes))]
    whole = video.read_video(str(out / "overlays.mp4"))
    for e in episodes:
        name = f"overlays_episode{e['episode']:03d}"
        frames = video.read_video(str(out / f"{name}.mp4"))
        assert frames.shape == (e["steps"],) + whole.shape[1:], name
        with Image.open(out / f"{name}.gif") as gif:
            # small preset: gif_max_frames=60, so longer episodes are evenly subsampled
            assert gif.n_frames == len(range(0, e["steps"], -(-e["steps"] // 60))), name
        # the episode's video is the whole run's frames a..b (up to H.264 loss)
        a = e["first_step"]
        assert np.abs(frames[0].astype(int) - whole[a].astype(int)).mean() < 8, name
    files = summary["files"]["overlays_per_episode"]
    assert len(files) == len(episodes)


def test_analyze_sticky_actions_flag_reaches_the_environment_and_the_config():
    """--sticky-actions (= analysis.sticky_actions) gives the rollout ALE's p = 0.25 repeat, as a
    model trained with train.sticky_actions=true saw it; other games refuse it by name."""
    import argparse
    from types import SimpleNamespace
    from pipelines.commands import analyze as analyze_command
    parser = argparse.ArgumentParser()
    analyze_command.register(parser.add_subparsers())
    args = parser.parse_args(["analyze", "--model", "m", "--out", "o", "--sticky-actions"])
    assert analyze_command.config_from_args(args).sticky_actions is True
    plain = parser.parse_args(["analyze", "--model", "m", "--out", "o"])
    assert analyze_command.config_from_args(plain).sticky_actions is False
    stepper = SimpleNamespace(observation_shape=(64, 64, 3), num_actions=6)
    for sticky, p in ((True, 0.25), (False, 0.0)):
        env = make_analysis_environment("ALE/Pong-v5", stepper, 0, resize=True, sticky_actions=sticky)
        assert env.gym_env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(p)
        env.close()
    with pytest.raises(ValueError, match="sticky"):
        make_analysis_environment("MiniGrid-Empty-5x5-v0", SimpleNamespace(observation_shape=(64, 64, 3),
                                  num_actions=7), 0, resize=True, sticky_actions=True)
