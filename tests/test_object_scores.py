"""Object-level attention scores (pipelines/analysis/object_scores.py): known answers on real Pong
(object boxes from the emulator's RAM through OCAtari), the arrays' rules, and the messages for
games it cannot read."""
import json
import subprocess
import sys

import numpy as np
import pytest

from pipelines.analysis import object_scores as obj
from pipelines.analysis.rollout import run_agent
from pipelines.cli import main
from agents.environments import make_environment

GRID = (16, 16)


class BallBump:
    """A stepper over Pong (64x64 frames, 16x16 maps) whose heads are: 0, a bump centred on the
    true ball (read from the RAM by ``reader``, the same frame's); 1, uniform; 2, one fixed cell;
    3, a bump on the true paddle (the agent's, right-hand side)."""
    variant = "ball-bump"
    observation_shape = (64, 64, 3)
    num_actions = 6
    num_heads = 4
    feature_shape = GRID

    def __init__(self, reader, fixed_cell=(5, 5)):
        self.reader, self.fixed_cell = reader, fixed_cell
        rows, cols = np.mgrid[0:GRID[0], 0:GRID[1]]
        self._rc = rows + 0.5, cols + 0.5

    def initial_state(self, batch_size):
        return {}

    def _bump(self, box):
        if box is None:
            return np.full(GRID, 1.0 / np.prod(GRID))
        x, y, w, h = box
        cy, cx = (y + h / 2) * GRID[0] / 210, (x + w / 2) * GRID[1] / 160
        d2 = (self._rc[0] - cy) ** 2 + (self._rc[1] - cx) ** 2
        m = np.exp(-d2 / (2 * 0.5 ** 2))
        return m / m.sum()

    def step(self, observation, prev_action, prev_reward, state, first=None):
        boxes = self.reader.last
        heads = np.stack([self._bump(boxes["Ball"][0] if boxes["Ball"] else None),
                          np.full(GRID, 1.0 / np.prod(GRID)),
                          np.eye(1, np.prod(GRID), self.fixed_cell[0] * GRID[1] + self.fixed_cell[1]).reshape(GRID),
                          self._bump(boxes["Player"][0] if boxes["Player"] else None)])[None]
        logits = np.zeros((1, self.num_actions), np.float32)
        return ({"logits": logits, "value": np.zeros(1, np.float32), "attention": heads.astype(np.float32),
                 "what": np.log(heads + 1e-9).astype(np.float32), "where": np.zeros_like(heads, np.float32)}, {})


class Remembering(obj.RamObjects):
    """The RAM reader, keeping its last read for the stepper (which sees the same frame)."""
    def read(self, first):
        self.last = super().read(first)
        return self.last


@pytest.fixture(scope="module")
def pong_rollout():
    env = make_environment("ALE/Pong-v5", seed=1, observation_shape=(64, 64, 3))
    reader = Remembering(env)
    stepper = BallBump(reader)
    rollout = run_agent(stepper, env, 500, policy="sample", seed=1, progress=False, objects=reader)
    env.close()
    return rollout, reader


def test_known_answers_on_real_pong(pong_rollout):
    rollout, reader = pong_rollout
    assert reader.categories == ["Player", "Ball", "Enemy"]
    analysis = obj.score_rollout(rollout, reader.categories, reader.screen_hw, radius=1)
    ball, player = analysis.summary["attention"]["Ball"], analysis.summary["attention"]["Player"]
    assert ball["steps"] > 300
    # head 0 follows the ball: nearly every top cell within one cell of it, lift far above 1
    assert ball["hit_rate"][0] > 0.95 and ball["lift"][0] > 20 > 1.5 > ball["lift"][1]
    assert ball["hit_rate"][0] > ball["chance"] + 0.5
    # the uniform head: exactly an even spread
    assert ball["lift"][1] == pytest.approx(1.0) and player["lift"][1] == pytest.approx(1.0)
    # the paddle head is on the paddle, not the ball
    assert player["hit_rate"][3] > 0.95 and player["lift"][3] > 3 and ball["hit_rate"][3] < 0.5
    # a head fixed on the ball's mean cell scores the chance rate exactly; any fixed head at most
    # the best-fixed rate
    ci, cj = ball["mean_cell"]
    fixed = np.zeros_like(rollout.attention[:, :1])
    fixed[:, 0, ci, cj] = 1.0
    track = next(t for t in analysis.tracks if t.category == "Ball")
    assert obj.object_scores(fixed, track)["hit_rate"][0] == pytest.approx(ball["chance"])
    assert ball["hit_rate"][2] <= ball["best_fixed"] and ball["chance"] <= ball["best_fixed"]
    # "what" of head 0 is the log of its attention: the same scores; "where" is flat: lift 1
    assert analysis.summary["what"]["Ball"]["hit_rate"][0] == pytest.approx(ball["hit_rate"][0])
    assert analysis.summary["where"]["Ball"]["lift"][0] == pytest.approx(1.0)
    # the trip-wire table: every head has a row, the bins count the steps with the ball
    table = analysis.summary["entropy_by_ball_height"]
    assert len(table["entropy"]) == 4 and sum(table["count"]) == ball["steps"]
    assert table["entropy"][1][int(np.argmax(table["count"]))] == pytest.approx(np.log(256))


def test_a_head_that_trails_the_ball_is_found_at_its_lag(pong_rollout):
    """Head 0 of the stepper, delayed by 3 steps within each episode, is a head that looks where
    the ball was 3 steps before: its best lag is -3, where it scores what head 0 scores at 0."""
    rollout, reader = pong_rollout
    analysis = obj.score_rollout(rollout, reader.categories, reader.screen_hw, radius=1, max_lag=5)
    ball = next(t for t in analysis.tracks if t.category == "Ball")
    bump = rollout.attention[:, :1].astype(np.float64)
    episode = np.cumsum(rollout.firsts)
    delayed = np.full_like(bump, 1.0 / bump[0, 0].size)           # uniform until 3 steps are seen
    delayed[3:] = np.where((episode[3:] == episode[:-3])[:, None, None, None], bump[:-3], delayed[3:])
    lagged = obj.object_scores_by_lag(np.concatenate([bump, delayed], 1), ball, range(-5, 6), rollout.firsts)
    assert lagged["best_lag"] == [0, -3]
    # at its lag the delayed head scores what the bump scores at 0 (the first 3 steps of each
    # episode, where it has no past to show, drop out: close, not equal)
    at_zero = obj.object_scores(bump, ball)
    assert lagged["best_hit_rate"][1] == pytest.approx(at_zero["hit_rate"][0], abs=0.03)
    assert lagged["best_lift"][1] == pytest.approx(at_zero["lift"][0], rel=0.05) and lagged["best_lift"][1] > 20
    # at lag 0 the trailing head scores like a loose tracker: a tenth of the lift, far fewer hits
    assert lagged["lift"][1][5] < lagged["best_lift"][1] / 10 and lagged["hit_rate"][1][5] < 0.6
    # the rollout's own lag table: the ball head is best at 0, the uniform head is 1 at every lag
    by_lag = analysis.summary["by_lag"]["attention"]["Ball"]
    assert by_lag["lags"] == list(range(-5, 6)) and by_lag["best_lag"][0] == 0
    assert by_lag["lift"][1] == pytest.approx([1.0] * 11)


def test_shifting_a_track_never_crosses_an_episode():
    T, h, w = 8, 2, 2
    masks = np.zeros((T, h, w), bool)
    masks[np.arange(T), 0, np.arange(T) % 2] = True
    track = obj.ObjectTrack("Ball", masks, np.ones(T, bool), np.zeros((T, 2)), np.arange(T, dtype=float))
    firsts = np.zeros(T, bool)
    firsts[[0, 5]] = True                                      # episodes: steps 0-4, 5-7
    late = obj.shift_track(track, 2, firsts)                   # step t holds step t + 2
    assert late.present.tolist() == [True, True, True, False, False, True, False, False]
    assert late.heights[:3].tolist() == [2, 3, 4] and late.heights[5] == 7
    early = obj.shift_track(track, -1, firsts)
    assert early.present.tolist() == [False, True, True, True, True, False, True, True]
    with pytest.raises(ValueError, match="at least one lag"):
        obj.object_scores_by_lag(np.ones((T, 1, h, w)) / 4, track, [])
    # a uniform head has no best lag (lift 1 everywhere); a head on the object at every step and
    # lag ties at every lag, and the tie goes to the nearest lag; the terminal says both
    uniform = np.ones((T, h, w)) / 4
    steady = obj.ObjectTrack("Ball", np.broadcast_to(masks[:1], masks.shape).copy(), np.ones(T, bool),
                             np.zeros((T, 2)), np.zeros(T))                # the object parked on one cell
    parked = np.stack([uniform, steady.masks / 1.0], 1)                     # head 1 on that cell
    s = obj.object_scores_by_lag(parked, steady, [-2, -1, 1, 2], firsts)
    assert s["best_lag"] == [None, -1] and np.isnan(s["best_lift"][0]) and s["best_lift"][1] == pytest.approx(4.0)
    lines = obj.lag_lines({"by_lag": {"attention": {"Ball": s}}})
    assert lines == ["head 0  Ball: lift <= 1 at every lag", "head 1  Ball: lag -1 lift 4.00, hit 1.00"]
    # a head on the alternating object, scored at lags -3 and -2 only: best at -2, the range's edge
    following = np.stack([uniform, masks / 1.0], 1)
    edge = obj.object_scores_by_lag(following, track, [-3, -2], firsts)
    assert edge["best_lag"] == [None, -2] and edge["lift"][1][0] == 0.0
    assert "lag -2 (edge of the range) lift 4.00" in obj.lag_lines({"by_lag": {"attention": {"Ball": edge}}})[1]
    rows = obj.lag_rows({"by_lag": {"attention": {"Ball": edge}}})
    assert rows[0][3] is None and np.isnan(rows[0][6])                     # no lag 0 scored: NaN there


def test_ocatari_ball_matches_the_balls_pixels_on_real_frames():
    """The ball's box from RAM against the ball found in the pixels: white pixels in the court
    that changed since the previous frame (one emulator frame apart, so nothing is max-pooled)."""
    env = make_environment("ALE/Pong-v5", seed=0, frame_skip=1, noop_max=0)
    reader = obj.RamObjects(env)
    rng = np.random.default_rng(0)
    env.reset()
    prev, first, errors = env.render().copy(), True, []
    for _ in range(700):
        ball = reader.read(first)["Ball"]
        first = False
        frame = env.render()
        moved = np.any(frame != prev, axis=-1) & np.all(np.abs(frame.astype(int) - 236) < 10, axis=-1)
        moved[:34], moved[194:] = False, False            # the walls and the score
        ys, xs = np.nonzero(moved)
        if len(ys) and ball:
            errors.append((abs(xs.min() - ball[0][0]), abs(ys.min() - ball[0][1])))
        prev = frame.copy()
        if env.step(np.int32(rng.integers(6))).is_last():
            env.reset()
            first = True
    env.close()
    errors = np.array(errors)
    assert len(errors) > 300
    assert np.mean(np.all(errors <= 2, axis=1)) > 0.98 and np.median(errors) == 0


def test_scores_on_arrays():
    T, h, w = 6, 4, 4
    masks = np.zeros((T, h, w), bool)
    masks[:, 1, 2] = True
    masks[3] = False                                           # off screen at step 3
    centres = np.where(masks.any(axis=(1, 2))[:, None], [1.0, 2.0], np.nan)
    track = obj.ObjectTrack("Ball", masks, masks.any(axis=(1, 2)), centres, np.full(T, 50.0))
    on = np.zeros((T, 2, h, w))
    on[:, 0, 1, 2] = 1.0                                       # head 0 on it
    on[:, 1, 3, 0] = 1.0                                       # head 1 two cells away
    s = obj.object_scores(on, track, radius=1)
    assert s["steps"] == 5 and s["area"] == pytest.approx(1 / 16)
    assert s["lift"] == pytest.approx([16.0, 0.0]) and s["hit_rate"] == [1.0, 0.0]
    assert s["chance"] == 1.0 and s["mean_cell"] == [1, 2] and np.isnan(s["series"][0, 3])
    assert obj.object_scores(on, track, radius=2)["hit_rate"] == [1.0, 1.0]
    # never on screen: NaN scores, no division by zero
    gone = obj.ObjectTrack("Ball", np.zeros_like(masks), np.zeros(T, bool), np.full((T, 2), np.nan), np.full(T, np.nan))
    assert obj.object_scores(on, gone)["steps"] == 0 and np.isnan(obj.object_scores(on, gone)["lift"][0])
    with pytest.raises(ValueError, match="differ in shape"):
        obj.object_scores(on[:, :, :3], track)
    # a box maps onto every cell it touches, and at least one
    assert obj.box_cells((0, 0, 1, 1), (210, 160), (16, 16)) == (slice(0, 1), slice(0, 1))
    assert obj.box_cells((140, 100, 4, 15), (210, 160), (16, 16)) == (slice(7, 9), slice(14, 15))
    assert obj.dilate(masks[:1], 1)[0].sum() == 9
    # saliency samples pooled onto the grid sum to 1
    pooled = obj.pool_to_grid(np.ones((13, 13)), np.arange(0, 64, 5), np.arange(0, 64, 5), (64, 64), (8, 8))
    assert pooled.shape == (8, 8) and pooled.sum() == pytest.approx(1.0)


def test_entropy_falls_as_the_ball_descends():
    T, h, w = 200, 8, 8
    heights = np.linspace(40, 190, T)
    maps = np.zeros((T, 1, h, w))
    for t, y in enumerate(heights):                            # spread high up, sharp low down
        logits = -((np.arange(h * w) - 20.0) ** 2) * (y / 190.0) ** 3
        maps[t, 0] = (np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()).reshape(h, w)
    table = obj.entropy_by_height(maps, heights, np.arange(0, 211, 15))
    assert table["spearman"][0] < -0.9 and table["steps"] == T
    row = [v for v in table["entropy"][0] if v == v]
    assert row[0] > row[-1] and table["max_entropy"] == pytest.approx(np.log(64))


def test_games_without_objects_get_one_clear_message():
    env = make_environment("MiniGrid-Empty-5x5-v0", seed=0)
    with pytest.raises(obj.ObjectsUnavailable, match="need an ALE game"):
        obj.RamObjects(env)
    env.close()
    env = make_environment("ALE/Surround-v5", seed=0)
    with pytest.raises(obj.ObjectsUnavailable, match="OCAtari has no RAM object map for 'ALE/Surround-v5'.*pong"):
        obj.RamObjects(env)
    env.close()
    assert obj.ocatari_game("ALE/SpaceInvaders-v5") == "spaceinvaders" and "breakout" in obj.known_games()


def test_runtime_imports_do_not_pull_ocatari():
    """The image installs the runtime set only: importing the analysis must not need OCAtari or
    its OpenCV / scikit-image / pygame."""
    code = ("import sys; import pipelines.cli, pipelines.analysis.pipeline, pipelines.analysis.object_scores; "
            "print(sorted(m for m in ('ocatari', 'cv2', 'skimage', 'pygame') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_analyze_prints_and_records_the_object_table(tmp_path, capsys):
    """`s3ta analyze` on the committed Pong agent: a line per head in the terminal, the scores in
    summary.json, the plots and the table in the report."""
    out = tmp_path / "out"
    code = main(["analyze", "--quiet", "--model", "results/pong-attention/model", "--env", "ALE/Pong-v5",
                 "--steps", "40", "--out", str(out), "--preset", "small", "--set", "analysis.saliency_warmup=30",
                 "--probe-time", "32", "--resize-observations"])
    assert code == 0
    printed = capsys.readouterr().out
    lines = [ln for ln in printed.splitlines() if ln.strip().startswith("head ")]
    assert len(lines) == 8 and all("Ball: " in ln and "Player: " in ln and "Enemy: " in ln for ln in lines)
    assert "best lag per head" in printed and all("lag " in ln for ln in lines[4:])
    summary = json.loads((out / "summary.json").read_text())
    objects = summary["objects"]
    assert objects["categories"] == ["Player", "Ball", "Enemy"] and objects["grid"] == [8, 8]
    for kind in ("attention", "what", "where"):
        assert len(objects[kind]["Ball"]["lift"]) == 4
    sal = objects["saliency"]
    assert set(sal) == {"attention (same frames)", "agent policy saliency", "agent value saliency"}
    assert objects["saliency_frames"] == [30] and sal["agent policy saliency"]["Player"]["steps"] in (0, 1)
    assert (out / "object_mass.png").stat().st_size > 0 and (out / "objects.npz").stat().st_size > 0
    page = (out / "report.html").read_text()
    assert "Objects: which head looks at what" in page and "hit rate" in page and "best lag" in page
    by_lag = objects["by_lag"]["attention"]["Ball"]
    assert by_lag["lags"] == list(range(-8, 9)) and len(by_lag["lift"]) == 4 and len(by_lag["lift"][0]) == 17
    assert (out / "object_lag.png").stat().st_size > 0
