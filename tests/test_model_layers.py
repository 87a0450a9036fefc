"""Layer-level maths of S3TA against explicit numpy computations."""
import numpy as np
import pytest
import tensorflow as tf

from s3ta_tf.layers import FourierSpatialBasis, L2KeyAttention, SpatialAttention, fourier_basis
from s3ta_tf.layers.convlstm import ConvLSTMCell


def test_basis_values_and_channels():
    h, w, F = 27, 20, 4
    s = fourier_basis(h, w, F)
    assert s.shape == (h, w, 64)
    rng = np.random.default_rng(0)
    fns = lambda n: [lambda i, u=u: np.cos(np.pi * u * i / n) for u in range(1, F + 1)] + \
                    [lambda i, u=u: np.sin(np.pi * u * i / n) for u in range(1, F + 1)]
    fr, fc = fns(h), fns(w)
    for _ in range(50):
        i, j, a, b = rng.integers(h), rng.integers(w), rng.integers(2 * F), rng.integers(2 * F)
        assert s[i, j, a * 2 * F + b] == pytest.approx(fr[a](i) * fc[b](j), abs=1e-6)
    # channel (cos u=1 rows) x (cos u=1 cols) at the origin is 1; sines vanish at 0
    assert s[0, 0, 0] == pytest.approx(1.0)
    assert np.allclose(s[0, :, F * 2 * F:], 0.0, atol=1e-6)


def test_basis_layer_fixed_or_learnable_and_config_round_trip():
    fixed = FourierSpatialBasis(27, 20, 4)
    assert np.allclose(fixed(None).numpy(), fourier_basis(27, 20, 4))
    assert fixed.trainable_weights == [] and len(fixed.non_trainable_weights) == 1
    learn = FourierSpatialBasis(27, 20, 4, learnable=True)
    learn(None)
    assert len(learn.trainable_weights) == 1
    clone = FourierSpatialBasis.from_config(learn.get_config())
    assert clone.learnable and clone.channels == 64


def _random_attention_inputs(b=2, n=3, h=5, w=4, ck=3, cv=6, cs=4, seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(b, h, w, ck + cv)).astype(np.float32)
    basis = rng.normal(size=(h, w, cs)).astype(np.float32)
    queries = rng.normal(size=(b, n, ck + cs)).astype(np.float32)
    return feats, basis, queries


def test_attention_maps_sum_to_one_and_answers_are_the_weighted_sum():
    feats, basis, queries = _random_attention_inputs()
    out = SpatialAttention(key_channels=3)(feats, basis, queries)
    att = out["attention"].numpy()
    assert att.shape == (2, 3, 5, 4)
    assert np.allclose(att.sum(axis=(2, 3)), 1.0, atol=1e-5)
    vs = np.concatenate([feats[..., 3:], np.broadcast_to(basis, (2,) + basis.shape)], -1)
    for b in range(2):
        for n in range(3):
            expect = sum(att[b, n, i, j] * vs[b, i, j] for i in range(5) for j in range(4))
            assert np.allclose(out["answers"].numpy()[b, n], expect, atol=1e-5)


def test_what_plus_where_are_the_logits_and_match_the_dot_products():
    feats, basis, queries = _random_attention_inputs(seed=1)
    out = SpatialAttention(key_channels=3)(feats, basis, queries)
    what, where = out["what"].numpy(), out["where"].numpy()
    expect_what = np.einsum("bijc,bnc->bnij", feats[..., :3], queries[..., :3])
    expect_where = np.einsum("ijc,bnc->bnij", basis, queries[..., 3:])
    assert np.allclose(what, expect_what, atol=1e-5) and np.allclose(where, expect_where, atol=1e-5)
    logits = (what + where).reshape(2, 3, -1)
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    assert np.allclose(out["attention"].numpy().reshape(2, 3, -1), soft, atol=1e-5)


def test_query_with_zero_spatial_part_is_all_what():
    feats, basis, queries = _random_attention_inputs(seed=2)
    queries[..., 3:] = 0.0
    out = SpatialAttention(key_channels=3)(feats, basis, queries)
    assert np.allclose(out["where"].numpy(), 0.0)
    assert np.abs(out["what"].numpy()).max() > 0.1


def test_l2_key_attention_is_softmax_of_key_norms():
    feats, basis, _ = _random_attention_inputs(seed=3)
    out = L2KeyAttention(key_channels=3)(feats, basis)
    norms = np.linalg.norm(feats[..., :3], axis=-1).reshape(2, -1)
    soft = np.exp(norms - norms.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    assert out["attention"].shape == (2, 1, 5, 4)
    assert np.allclose(out["attention"].numpy().reshape(2, -1), soft, atol=1e-5)


def test_convlstm_cell_matches_explicit_equations_and_advances_state():
    cell = ConvLSTMCell(filters=4, kernel_size=3)
    x = tf.random.normal([2, 6, 5, 3], seed=4)
    h0 = tf.random.normal([2, 6, 5, 4], seed=5)
    c0 = tf.random.normal([2, 6, 5, 4], seed=6)
    h1, (h1b, c1) = cell(x, (h0, c0))
    gates = (tf.nn.conv2d(x, cell.input_kernel, 1, "SAME") + tf.nn.conv2d(h0, cell.recurrent_kernel, 1, "SAME")
             + cell.bias)
    i, f, g, o = tf.split(gates, 4, -1)
    c_ref = tf.sigmoid(f + 1.0) * c0 + tf.sigmoid(i) * tf.tanh(g)
    assert np.allclose(c1, c_ref, atol=1e-5)
    assert np.allclose(h1, tf.sigmoid(o) * tf.tanh(c_ref), atol=1e-5)
    h2, _ = cell(x, (h1, c1))
    assert not np.allclose(h2, h1, atol=1e-3)  # the state advances: same input, new output
    assert ConvLSTMCell.from_config(cell.get_config()).filters == 4


def test_lstm_input_norm_makes_the_cell_blind_to_the_input_scale():
    from s3ta_tf.layers.lstm import LSTMCell
    x = tf.random.normal([3, 12], seed=1)
    state = (tf.zeros([3, 5]), tf.zeros([3, 5]))
    normed = LSTMCell(5, input_norm=True)
    h1, _ = normed(x, state)
    h100, _ = normed(100.0 * x, state)
    np.testing.assert_allclose(h1.numpy(), h100.numpy(), atol=1e-4)    # scale removed
    plain = LSTMCell(5)
    p1, (_, c1) = plain(x, state)
    p100, (_, c100) = plain(100.0 * x, state)
    assert np.abs(p1.numpy() - p100.numpy()).max() > 0.05              # without: gates saturate
    assert np.abs(c100.numpy()).mean() > np.abs(c1.numpy()).mean()      # saturated gates: |c| grows
    assert LSTMCell.from_config(normed.get_config()).input_norm


def test_layer_normalised_convlstm_follows_the_frame_after_a_long_constant_input():
    """The failure it fixes (docs/LEARNING.md §9): a plain ConvLSTM fed a nearly constant
    background for hundreds of steps integrates it until tanh(c) saturates, and h stops
    following the frame. With ``layer_norm`` h = σ(o)·tanh(LN(c)): the equations hold, the input
    term's scale is removed, and a changed frame still changes h after 300 constant steps."""
    tf.random.set_seed(3)
    cell = ConvLSTMCell(filters=4, kernel_size=3, layer_norm=True)
    x = tf.random.normal([2, 6, 5, 3], seed=4)
    h0 = tf.random.normal([2, 6, 5, 4], seed=5)
    c0 = tf.random.normal([2, 6, 5, 4], seed=6)
    h1, (_, c1) = cell(x, (h0, c0))
    ln = lambda t, eps=1e-5: (t - tf.reduce_mean(t, -1, keepdims=True)) / tf.sqrt(
        tf.math.reduce_variance(t, -1, keepdims=True) + eps)
    gates = (ln(tf.nn.conv2d(x, cell.input_kernel, 1, "SAME")) + ln(tf.nn.conv2d(h0, cell.recurrent_kernel, 1, "SAME"))
             + cell.bias)
    i, f, g, o = tf.split(gates, 4, -1)
    c_ref = tf.sigmoid(f + 1.0) * c0 + tf.sigmoid(i) * tf.tanh(g)
    np.testing.assert_allclose(c1.numpy(), c_ref.numpy(), atol=1e-4)
    np.testing.assert_allclose(h1.numpy(), (tf.sigmoid(o) * tf.tanh(ln(c_ref))).numpy(), atol=1e-4)
    h100, _ = cell(100.0 * x, (h0, c0))
    np.testing.assert_allclose(h1.numpy(), h100.numpy(), atol=1e-3)     # input scale removed
    assert ConvLSTMCell.from_config(cell.get_config()).layer_norm

    # 300 steps of one background frame, with a forget gate near 1 (where training drifts):
    # both cells integrate it (|c| grows to ~100), but only the plain one's tanh saturates.
    background = 3.0 + 0.1 * tf.random.normal([1, 6, 5, 3], seed=7)
    saturated = {}
    for norm in (False, True):
        tf.keras.utils.set_random_seed(11)   # the same kernels whichever tests ran before in this process
        c = ConvLSTMCell(filters=4, kernel_size=3, layer_norm=norm)
        state = (tf.zeros([1, 6, 5, 4]), tf.zeros([1, 6, 5, 4]))
        c(background, state)
        c.bias.assign(tf.concat([3.0 * tf.ones(4), 5.0 * tf.ones(4), tf.zeros(8)], 0))
        for _ in range(300):
            _, state = c(background, state)
        cell_state = state[1]
        assert float(tf.reduce_mean(tf.abs(cell_state))) > 20.0
        squashed = tf.tanh(c.norms["c"](cell_state) if norm else cell_state)
        saturated[norm] = float(tf.reduce_mean(tf.cast(tf.abs(squashed) > 0.99, tf.float32)))
    assert saturated[False] > 0.8 and saturated[True] == 0.0, saturated
