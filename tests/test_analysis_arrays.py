"""Analyses on plain arrays and hand-built models whose answers are known (no TensorFlow)."""
import json
import os

import numpy as np
import pytest

from analysis_fixtures import BrightAttention, RegionPolicy
from pipelines.analysis import faithfulness as fa
from pipelines.analysis import geometry, novel_state, overlay, saliency, video, what_where
from pipelines.analysis.rollout import StepContext, replay
from pipelines.analysis.weight_distribution import mass_along_axes, plot_weight_distribution

RNG = np.random.default_rng(0)


def textured(h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- overlays

@pytest.mark.parametrize("frame_hw, feature_hw, cell", [((210, 160), (27, 20), (5, 7)),
                                                        ((210, 160), (27, 20), (26, 19)),
                                                        ((64, 64), (8, 8), (0, 3))])
def test_overlay_of_one_hot_attention_peaks_in_that_cell(frame_hw, feature_hw, cell):
    attention = np.zeros((2,) + feature_hw, np.float32)
    attention[0][cell] = 1.0
    attention[1][0, 0] = 1.0
    frame = textured(*frame_hw)
    out = overlay.overlay_heads(frame, attention, alpha=0.6)
    assert out.shape == (2,) + frame_hw + (3,) and out.dtype == np.uint8
    brightness = out[0].astype(int).sum(-1)
    y, x = np.unravel_index(np.argmax(brightness), frame_hw)
    assert geometry.cell_of_pixel(y, x, frame_hw, feature_hw) == cell
    y0, x0, y1, x1 = geometry.cell_box(*cell, frame_hw, feature_hw)
    # the forced cell is, on average, brighter than any pixel away from it
    far = np.ones(frame_hw, bool)
    far[max(0, y0 - 16):y1 + 16, max(0, x0 - 16):x1 + 16] = False
    assert brightness[y0:y1, x0:x1].mean() > brightness[far].max()


def test_overlay_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"attention must be \[N, h, w\]"):
        overlay.overlay_heads(textured(), np.ones((8, 8)))
    with pytest.raises(ValueError, match=r"frame must be \[H, W, 3\]"):
        overlay.overlay_heads(np.zeros((64, 64)), np.ones((1, 8, 8)))


def test_upsample_keeps_constant_maps_and_cell_boxes_tile_the_frame():
    up = geometry.upsample(np.full((3, 27, 20), 0.25), (210, 160))
    np.testing.assert_allclose(up, 0.25, rtol=1e-6)
    cover = np.zeros((210, 160), int)
    for i in range(27):
        for j in range(20):
            y0, x0, y1, x1 = geometry.cell_box(i, j, (210, 160), (27, 20))
            cover[y0:y1, x0:x1] += 1
            assert geometry.cell_of_pixel(y0, x0, (210, 160), (27, 20)) == (i, j)
    assert (cover == 1).all()


# ---------------------------------------------------------------- what / where

def test_what_where_colours_and_zero_where_is_all_what():
    what = np.abs(RNG.normal(size=(2, 6, 5))).astype(np.float32) + 0.1
    where = np.zeros_like(what)
    att = np.full_like(what, 1 / 30)
    d, c = what_where.what_where_contrast(what, where, att)
    np.testing.assert_allclose(d, np.clip(what, -np.log(10), np.log(10)))
    assert (what_where.what_share(what, where) == 1).all()
    rgb = what_where.contrast_image(c, att, (60, 50))
    assert (rgb[..., 0] > rgb[..., 2]).all() and (rgb[..., 0] >= rgb[..., 1]).all()   # red side: "what"
    # the mirror case: no content part at all -> blue, share 0
    d2, c2 = what_where.what_where_contrast(np.zeros_like(what), what, att)
    assert (what_where.what_share(np.zeros_like(what), what) == 0).all()
    rgb2 = what_where.contrast_image(c2, att, (60, 50))
    assert (rgb2[..., 2] > rgb2[..., 0]).all() and (rgb2[..., 2] >= rgb2[..., 1]).all()   # blue: "where"
    ends = what_where.blue_white_red(np.array([-1.0, 0.0, 1.0]))
    assert ends.tolist() == [[43, 87, 215], [255, 255, 255], [215, 25, 28]]


def test_what_where_contrast_clips_and_weights_by_attention():
    what = np.array([[[10.0, -10.0, 1.0]]])
    where = np.array([[[0.0, 0.0, 0.5]]])
    att = np.array([[[0.5, 0.25, 0.25]]])
    d, c = what_where.what_where_contrast(what, where, att)
    np.testing.assert_allclose(d, [[[np.log(10), -np.log(10), 0.5]]], rtol=1e-6)
    np.testing.assert_allclose(c, d * att)
    with pytest.raises(ValueError, match="same shape"):
        what_where.what_where_contrast(what, where[..., :2], att)


# ---------------------------------------------------------------- weight distribution

def test_mass_along_axes_and_plot(tmp_path):
    att = np.zeros((4, 3, 27, 20), np.float32)
    att[:, 0, 5, 7] = 1.0
    att[:, 1, :, 2] = 1 / 27
    att[:, 2] = 1 / 540
    along_x, along_y = mass_along_axes(att)
    assert along_x.shape == (4, 3, 20) and along_y.shape == (4, 3, 27)
    assert along_x[0, 0, 7] == 1 and along_y[0, 0, 5] == 1 and along_x[0, 0].sum() == 1
    np.testing.assert_allclose(along_x[0, 1, 2], 1.0, rtol=1e-6)
    np.testing.assert_allclose(along_y[0, 1], 1 / 27, rtol=1e-5)
    np.testing.assert_allclose(along_x[0, 2], 1 / 20, rtol=1e-5)
    path = plot_weight_distribution(att, str(tmp_path / "wd.png"))
    from PIL import Image
    with Image.open(path) as im:
        assert im.size[0] > 400 and im.size[1] > 400


# ---------------------------------------------------------------- saliency

def test_blur_and_mask_match_scipy():
    from scipy import ndimage   # the reference implementation Greydanus et al. used
    frame = textured(50, 40)
    np.testing.assert_allclose(saliency.gaussian_blur(frame, 3.0),
                               ndimage.gaussian_filter(frame.astype(np.float32), (3, 3, 0)), atol=1e-3)
    delta = np.zeros((60, 70))          # Greydanus' mask: a blurred delta, scaled to peak 1
    delta[30, 25] = 1
    ref = ndimage.gaussian_filter(delta, 5.0)
    np.testing.assert_allclose(saliency.gaussian_mask((60, 70), (30, 25), 5.0), ref / ref.max(), atol=1e-6)


def warmed_context(model, frames):
    run = replay(model, frames, keep_contexts=[len(frames) - 1])
    return run.contexts[len(frames) - 1]


def test_saliency_of_a_one_region_policy_is_zero_elsewhere():
    model = RegionPolicy()
    frames = np.stack([textured(seed=s) for s in range(6)])
    ctx = warmed_context(model, frames)
    assert ctx.state["count"][0, 0] == 5                       # the warm-up reached the state
    sal = saliency.saliency_maps(saliency.recurrent_evaluator(model, ctx), frames[-1], stride=2,
                                 batch_size=50)
    y0, x0, y1, x1 = model.box
    reach = saliency.TRUNCATE * 5.0                            # the mask's support: 4 sigma
    ys, xs = sal.ys[:, None], sal.xs[None, :]
    touches = (ys >= y0 - reach) & (ys <= y1 - 1 + reach) & (xs >= x0 - reach) & (xs <= x1 - 1 + reach)
    inside = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
    for s in (sal.policy, sal.value):
        assert (s[~touches] == 0).all()
        assert (s[inside] > 0).all()
    assert (~touches).sum() > 100


def test_saliency_batches_match_one_by_one_and_use_the_replicated_state():
    model = RegionPolicy()
    frames = np.stack([textured(seed=s) for s in range(4)])
    ctx = warmed_context(model, frames)
    evaluate = saliency.recurrent_evaluator(model, ctx)
    a = saliency.saliency_maps(evaluate, frames[-1], stride=4, batch_size=1)
    b = saliency.saliency_maps(evaluate, frames[-1], stride=4, batch_size=37)
    np.testing.assert_array_equal(a.policy, b.policy)
    np.testing.assert_array_equal(a.value, b.value)
    # a fresh state gives different logits than the warmed one
    fresh = StepContext(model.initial_state(1), 0, 0.0, True)
    assert not np.allclose(saliency.recurrent_evaluator(model, fresh)(frames[-1:])[0], evaluate(frames[-1:])[0])
    assert a.policy.shape == (16, 16) and (a.ys == np.arange(0, 64, 4)).all()


def test_saliency_grid_is_42_by_32_at_stride_5_on_atari_frames():
    ys, xs = saliency.grid_centres((210, 160), 5)
    assert (len(ys), len(xs)) == (42, 32)


def test_saliency_rejects_non_uint8_frames():
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        saliency.saliency_maps(lambda x: (np.zeros((len(x), 2)), np.zeros(len(x))), np.zeros((8, 8, 3)))


# ---------------------------------------------------------------- faithfulness

def test_rank_correlation_and_top_k():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert fa.rank_correlation(a, a * 10) == pytest.approx(1.0)
    assert fa.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert fa.rank_correlation(np.array([1.0, 1.0, 2.0]), np.array([0.0, 0.0, 5.0])) == pytest.approx(1.0)
    assert np.isnan(fa.rank_correlation(a, np.ones(4)))
    assert fa.top_k_mass(a, np.array([0.0, 0.0, 1.0, 3.0]), 1) == pytest.approx(0.75)
    assert np.isnan(fa.top_k_mass(a, np.zeros(4), 1))


def test_faithfulness_separates_the_head_that_looks_at_what_matters():
    model = RegionPolicy()
    frames = np.stack([textured(seed=s) for s in range(3)])
    ctx = warmed_context(model, frames)
    sal = saliency.saliency_maps(saliency.recurrent_evaluator(model, ctx), frames[-1], stride=4)
    scores = fa.faithfulness_scores(model.attention, sal.policy, sal.ys, sal.xs, (64, 64), top_k_fraction=4 / 64)
    assert scores["k"] == 4 and scores["chance"] == pytest.approx(4 / 64)
    assert scores["top_k_mass"][0] > 0.3 > 0.01 > scores["top_k_mass"][1]
    assert scores["spearman"][0] > 0.3 > 0.1 > scores["spearman"][1]


# ---------------------------------------------------------------- novel-state probe

def test_splice_pastes_only_opaque_pixels_and_clips_at_the_border():
    frame = np.zeros((20, 20, 3), np.uint8)
    sprite = novel_state.default_sprite(6, 4)
    out = novel_state.splice(frame, sprite, (2, 3))
    opaque = sprite[..., 3] == 255
    np.testing.assert_array_equal(out[2:8, 3:7][opaque], sprite[..., :3][opaque])
    assert (out[2:8, 3:7][~opaque] == 0).all() and out[:2].sum() == 0 and frame.sum() == 0
    assert novel_state.sprite_box(sprite, (17, 18), (20, 20)) == (17, 18, 20, 20)
    with pytest.raises(ValueError, match="outside"):
        novel_state.splice(frame, sprite, (25, 0))


def test_region_mass_counts_the_attention_on_a_box():
    att = np.zeros((1, 8, 8), np.float32)
    att[0, 2, 3] = 0.75
    att[0, 7, 7] = 0.25
    assert novel_state.region_mass(att, (16, 24, 24, 32), (64, 64))[0] == pytest.approx(0.75)
    assert novel_state.region_mass(att, (16, 24, 20, 32), (64, 64))[0] == pytest.approx(0.375)


def test_probe_detects_a_sprite_the_model_attends_to(tmp_path):
    model = BrightAttention()
    frames = np.random.default_rng(1).integers(0, 20, (30, 64, 64, 3), dtype=np.uint8)
    sprite = np.full((8, 8, 3), 255, np.uint8)
    result = novel_state.probe_on_frames(model, frames, sprite, (40, 16), t0=12, duration=6)
    s = result.summary()
    assert s["box"] == [40, 16, 48, 24]
    assert all(s["detected_by_head"])
    for head in range(2):
        assert s["during"]["mass_probe"][head] > 0.9
        assert s["before"]["mass_probe"][head] < 0.05 and s["after"]["mass_probe"][head] < 0.05
        assert s["during"]["mass_control"][head] < 0.05
    assert s["before"]["action_agreement"] == 1.0 and s["after"]["action_agreement"] == 1.0
    assert s["during"]["actions_probe"] == [0] * 6 and s["during"]["actions_control"] == [1] * 6
    path = novel_state.plot_probe(result, str(tmp_path / "probe.png"))
    assert os.path.getsize(path) > 10_000
    json.dumps(s)   # the summary is JSON-ready


# ---------------------------------------------------------------- videos

def test_mp4_and_gif_round_trip(tmp_path):
    frames = np.zeros((6, 33, 21, 3), np.uint8)
    for t in range(6):
        frames[t, :, :, t % 3] = 40 * t + 30
    mp4 = video.read_video(video.write_mp4(str(tmp_path / "a.mp4"), frames, fps=5))
    gif = video.read_video(video.write_gif(str(tmp_path / "a.gif"), frames, fps=5))
    assert mp4.shape == (6, 34, 22, 3) and gif.shape == (6, 33, 21, 3)
    for t in range(6):
        assert np.abs(mp4[t, :33, :21].astype(int) - frames[t]).mean() < 6
        assert np.abs(gif[t].astype(int) - frames[t]).max() <= 8
    sub = video.read_video(video.write_gif(str(tmp_path / "b.gif"), frames, fps=5, max_frames=3))
    assert len(sub) == 3


def test_panel_stacks_frame_and_heads_with_caption():
    frame = textured(20, 16)
    rows = np.zeros((3, 20, 16, 3), np.uint8)
    p = video.panel(frame, rows, "t=1", ["h0", "h1", "h2"], scale=2)
    k = video.readable_scale(20, 2)  # a 20-pixel frame is upscaled past scale 2 to be readable
    assert k == 8 and k * 20 >= video.MIN_READABLE_HEIGHT
    assert p.shape == (video.CAPTION_HEIGHT + 4 * 20 * k, 16 * k, 3)
    np.testing.assert_array_equal(p[video.CAPTION_HEIGHT:video.CAPTION_HEIGHT + 20 * k:k, ::k], frame)
    big = video.panel(textured(200, 16), np.zeros((1, 200, 16, 3), np.uint8), "", None, scale=2)
    assert big.shape == (video.CAPTION_HEIGHT + 2 * 400, 32, 3)  # large frames keep the asked scale
    assert p[:video.CAPTION_HEIGHT].max() > 0           # caption text drawn


def test_episode_segments_split_a_run_at_every_episode_start():
    from pipelines.analysis.rollout import episode_segments
    firsts = np.array([1, 0, 0, 1, 0, 1, 0, 0, 0], bool)
    assert episode_segments(firsts) == [(0, 3), (3, 5), (5, 9)]
    assert episode_segments(np.zeros(4, bool)) == [(0, 4)]          # the run's first step starts one
    assert episode_segments(np.array([0, 0, 1], bool)) == [(0, 2), (2, 3)]
