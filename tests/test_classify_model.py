"""The S3TA classifier, its baselines, the ResNet v2 cores and the classification config."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipelines.classify.config import classify_config
from s3ta_tf.models.classifier import build_classifier
from s3ta_tf.models.resnet_v2 import resnet34_v2


@pytest.fixture(scope="module")
def small():
    return classify_config("small")


def test_presets_hold_the_spec_numbers():
    im = classify_config("imagenet")
    assert im.model.core == "resnet50v2" and im.model.convlstm_channels == 0
    assert im.model.policy_hidden == (2048, 2048, 2048)
    assert im.model.query_hidden == (1024, 512, 256, 128)
    t = im.train
    assert (t.momentum, t.batch_size, t.weight_decay) == (0.9, 1024, 1e-4)
    assert t.lr_boundaries == (100_000, 150_000, 175_000) and t.lr_decay == 0.1
    assert t.base_learning_rate(4) == 0.1 and t.base_learning_rate(1) == 0.1
    assert t.base_learning_rate(8) == 0.01
    assert [t.seq_len_at(s, 8) for s in (0, 99_999, 100_000)] == [4, 4, 8]
    assert t.seq_len_at(0, 4) == 4 and t.seq_len_at(0, 1) == 1
    k = classify_config("kinetics")
    assert k.model.core == "resnet34v2" and k.model.convlstm_channels == 256
    assert k.model.policy_hidden == (1024,) * 3 and k.model.query_hidden == (512, 256, 128)
    assert k.data.num_frames == 32 and k.train.batch_size == 240
    assert k.train.learning_rate == 1e-2 and k.train.lr_boundaries == (150_000, 200_000)


def test_overrides_by_section_and_errors():
    cfg = classify_config("small", ["model.num_heads=3", "train.batch_size=16"], seq_len=6)
    assert cfg.model.num_heads == 3 and cfg.train.batch_size == 16 and cfg.seq_len == 6
    with pytest.raises(ValueError, match="ambiguous|in no section"):
        classify_config("small", ["nonsense=1"])
    with pytest.raises(ValueError, match="unknown section 'optim'"):
        classify_config("small", ["optim.lr=1"])
    with pytest.raises(ValueError, match="unknown classify preset"):
        classify_config("paper")
    with pytest.raises(ValueError, match="model.core"):
        classify_config("small", ["model.core=vgg"])


def test_s3ta_outputs_and_accumulation(small):
    model = build_classifier(small.model, 7, 32, seq_len=4)
    x = tf.random.stateless_uniform([3, 32, 32, 3], seed=[1, 2])
    out = model(x, seq_len=4)
    h, w = model.feature_shape
    assert out["logits"].shape == (3, 7) and out["step_logits"].shape == (3, 4, 7)
    for k in ("attention", "what", "where"):
        assert out[k].shape == (3, 4, small.model.num_heads, h, w)
        assert out[k].dtype == tf.float32
    np.testing.assert_allclose(tf.reduce_sum(out["attention"], [-2, -1]).numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["step_logits"][:, -1].numpy(), out["logits"].numpy())
    # Queries are fed the previous accumulated logits, so attention changes between steps
    # although the image is the same every step.
    assert float(tf.reduce_max(tf.abs(out["attention"][:, 0] - out["attention"][:, 1]))) > 1e-6
    # Fewer steps is a prefix of more steps (the same image each step, no hidden state).
    out2 = model(x, seq_len=2)
    np.testing.assert_allclose(out2["logits"].numpy(), out["step_logits"][:, 1].numpy(),
                               rtol=1e-5, atol=1e-5)


def test_s3ta_video_with_convlstm():
    cfg = classify_config("small", ["model.convlstm_channels=12", "model.key_channels=4"])
    model = build_classifier(cfg.model, 5, 32, video=True)
    assert model.convlstm is not None and model.convlstm.filters == 12
    v = tf.random.stateless_uniform([2, 3, 32, 32, 3], seed=[3, 4])
    out = model(v)
    assert out["step_logits"].shape == (2, 3, 5)
    assert out["attention"].shape == (2, 3, cfg.model.num_heads, *model.feature_shape)
    # Recurrence: the same frame repeated gives different logits increments per step.
    same = tf.repeat(v[:, :1], 3, axis=1)
    inc = np.diff(model(same)["step_logits"].numpy(), axis=1)
    assert np.abs(inc[:, 0] - inc[:, 1]).max() > 1e-6


def test_baselines(small):
    plain = build_classifier(small.model, 6, 32, variant="resnet")
    rec = build_classifier(small.model, 6, 32, variant="recurrent-resnet", seq_len=3)
    x = tf.random.stateless_uniform([2, 32, 32, 3], seed=[5, 6])
    assert plain(x)["logits"].shape == (2, 6)
    out = rec(x)
    assert out["step_logits"].shape == (2, 3, 6)
    assert rec.feedback.units == 32 * 32                       # logits -> an S×S tensor
    inc = np.diff(np.concatenate([np.zeros((2, 1, 6)), out["step_logits"].numpy()], 1), axis=1)
    assert np.abs(inc[:, 0] - inc[:, 1]).max() > 1e-6         # step 2 saw the feedback
    with pytest.raises(ValueError, match="unknown classifier variant"):
        build_classifier(small.model, 6, 32, variant="vgg")


def test_bad_inputs_name_the_expected_form(small):
    model = build_classifier(small.model, 4, 32)
    with pytest.raises(ValueError, match=r"images: expected float32/uint8 \[\?, 32, 32, 3\]"):
        model(tf.zeros([2, 16, 16, 3]))
    with pytest.raises(ValueError, match="images: expected"):
        model(tf.zeros([2, 32, 32, 3], tf.int64))


def test_resnet34_v2_structure():
    core = resnet34_v2()
    convs = [l for l in core.layers if isinstance(l, tf.keras.layers.Conv2D)]
    k3 = [l for l in convs if l.kernel_size == (3, 3)]
    assert len(k3) == 2 * (3 + 4 + 6 + 3)                       # 32 conv layers in blocks
    assert [l.kernel_size for l in convs].count((7, 7)) == 1     # + stem = 33, + fc = 34
    assert core.compute_output_shape((1, 224, 224, 3)) == (1, 7, 7, 512)
    bns = [l for l in core.layers if isinstance(l, tf.keras.layers.BatchNormalization)]
    assert bns[-1].name == "post_bn"                            # pre-activation: final BN-ReLU


def test_bfloat16_runs_with_float32_outputs(small):
    cfg = classify_config("small", ["model.precision=bfloat16"])
    model = build_classifier(cfg.model, 4, 32)
    out = model(tf.random.uniform([2, 32, 32, 3]))
    assert out["logits"].dtype == tf.float32 and out["attention"].dtype == tf.float32
    assert model.core.layers[1].compute_dtype == "bfloat16"
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)


def test_paper_sized_models_build():
    im = classify_config("imagenet")
    model = build_classifier(im.model, 1000, 224, seq_len=8)
    assert model.core.name == "resnet50v2" and model.core_channels == 2048
    assert model.feature_shape == (7, 7) and model.convlstm is None
    assert [d.units for d in model.policy_core.dense] == [2048, 2048, 2048]
    assert [d.units for d in model.query_network.mlp.dense] == [1024, 512, 256, 128, 4 * 128]
    k = classify_config("kinetics")
    video = build_classifier(k.model, 600, 224, video=True, seq_len=32)
    assert video.core.name == "resnet34v2" and video.convlstm.filters == 256
    assert video.feature_shape == (7, 7)
    assert [d.units for d in video.policy_core.dense] == [1024, 1024, 1024]


def test_imagenet_first_lr_step_is_the_curriculum_switch():
    """SPEC §4: the x0.1 step at 1e5 coincides with the switch from T = 4 to T = 8, so the
    preset's first boundary is its curriculum length, and the preset's T is one the curriculum
    applies to (longer than the curriculum's T)."""
    cfg = classify_config("imagenet")
    t = cfg.train
    assert t.curriculum_steps > 0 and t.lr_boundaries[0] == t.curriculum_steps == 100_000
    assert cfg.seq_len > t.curriculum_seq_len == 4 and cfg.seq_len >= t.long_seq_len
    assert t.seq_len_at(t.lr_boundaries[0] - 1, cfg.seq_len) == t.curriculum_seq_len
    assert t.seq_len_at(t.lr_boundaries[0], cfg.seq_len) == cfg.seq_len
    # the rate before the step is T = 4's, after it T = 8's: one x lr_decay step
    assert t.base_learning_rate(t.curriculum_seq_len) * t.lr_decay == pytest.approx(t.base_learning_rate(cfg.seq_len))


def test_imagenet_schedule_starts_at_0_1_and_steps_with_the_switch_to_t8():
    from pipelines.classify.train import learning_rate_schedule
    cfg = classify_config("imagenet")
    t = cfg.train
    lr = learning_rate_schedule(t, cfg.seq_len)
    value = lambda step: float(lr(step))  # noqa: E731 (the schedule is called with updates done)
    assert t.seq_len_at(0, 8) == 4 and t.seq_len_at(99_999, 8) == 4 and t.seq_len_at(100_000, 8) == 8
    assert value(0) == pytest.approx(0.1) and value(99_999) == pytest.approx(0.1)
    assert value(100_000) == pytest.approx(0.01)          # the same step as T = 8
    assert value(149_999) == pytest.approx(0.01) and value(150_000) == pytest.approx(1e-3)
    assert value(175_000) == pytest.approx(1e-4)
    # A run at T = 8 from the start (no curriculum) uses 0.01, SPEC §4's rate for T = 8.
    import dataclasses
    flat = dataclasses.replace(t, curriculum_steps=0)
    assert float(learning_rate_schedule(flat, 8)(0)) == pytest.approx(0.01)
    assert float(learning_rate_schedule(t, 4)(0)) == pytest.approx(0.1)
