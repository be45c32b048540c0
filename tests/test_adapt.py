"""The adapting head: exact integers at its bounds, learning that pays, the
same archives everywhere."""

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnzip
from rnnzip import adapt, codec, container
from rnnzip.engines import load_engine
from rnnzip.mixer import PROFILES

ADAPTIVE = PROFILES[5]


def _exact_correction(A, H, shift):
    """floor(A H / 2**(26 + shift)) in Python integers, clamped."""
    out = []
    for row in H.astype(np.int64).tolist():
        col = []
        for a in A.astype(np.int64).tolist():
            v = sum(x * y for x, y in zip(a, row)) >> (adapt.A_FRAC + shift)
            col.append(max(-adapt.CORRECTION_LIMIT, min(adapt.CORRECTION_LIMIT, v)))
        out.append(col)
    return np.array(out, np.int64).T


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.sampled_from([8, 11, 14]))
def test_the_correction_is_exact_at_the_weights_limit(rows, seed, shift):
    # weights at +-limit and states at +-255: the largest sums there can be,
    # and float64 still gives the integer result
    hidden = 40
    rng = np.random.default_rng(seed)
    a = adapt.HeadAdapter(hidden, shift)
    a.A[:] = rng.choice([-a.limit, a.limit, 0.0], a.A.shape)
    H = rng.choice([-255, 255, 0, 1], (rows, hidden)).astype(np.float32)
    got = a.correction(H, rows + 2)
    assert got.dtype == np.float32 and got.shape == (len(adapt.SYMBOLS), rows + 2)
    assert np.array_equal(got[:, :rows], _exact_correction(a.A, H, shift))
    assert not got[:, rows:].any()  # rows past the active ones are not corrected
    assert a.limit * 255 * hidden < 2**53


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_learning_keeps_the_weights_integer_and_bounded(rows, seed):
    rng = np.random.default_rng(seed)
    a = adapt.HeadAdapter(16, 11)
    for step in range(30):
        H = rng.choice([-255, 255], (rows, 16)).astype(np.float32)
        a.correction(H, rows)
        kind = step % 3  # flat, peaked and extreme frequencies
        F = (rng.integers(1, 3, (rows, 256)) if kind == 0 else
             np.full((rows, 256), 1 << 16) if kind == 1 else
             np.where(np.arange(256) == 65, 1 << 16, 1) + np.zeros((rows, 1), int))
        a.observe(F.astype(np.float32))
        a.learn(rng.integers(0, 256, rows))
        assert np.array_equal(a.A, np.floor(a.A))
        assert np.abs(a.A).max() <= a.limit
        assert a.pending == 0


def test_the_gradient_quotient_is_the_integer_floor():
    # floor(2**16 F / T) in float64 against integer division, where the
    # quotient is closest to an integer from below
    F = np.array([[1, 65535, 65536, 3, 7] + [1] * 251], np.float64)
    total = F.sum()
    a = adapt.HeadAdapter(4, 11)
    a.correction(np.zeros((1, 4), np.float32), 1)
    a.observe(F)
    G = F[:, adapt.SYMBOLS] * adapt.G_ONE / total
    want = (F[:, adapt.SYMBOLS].astype(np.int64) << 16) // int(total)
    assert np.array_equal(np.floor(G), want)
    a.learn(np.array([0]))  # a symbol that does not learn: no column moves for it


def test_learning_makes_an_unusual_text_cheaper(tiny_gru):
    # the head learns the frame: random letters of a four-letter alphabet,
    # which the context mixer can only count, cost fewer bits with adaptation
    engine, _ = load_engine(tiny_gru, backend="numpy")
    rng = np.random.default_rng(5)
    symbols = rng.choice(np.frombuffer(b"qzxj", np.uint8), 6000).astype(np.int64)
    seg_len, lengths = codec.segment_layout(len(symbols), 3)
    plain = ADAPTIVE._replace(adapt=0)

    def bits(profile):
        freqs = codec.frequencies_stepwise(engine, symbols, seg_len, lengths, profile)
        grid, _ = codec._grid(symbols, seg_len, lengths)
        targets = np.concatenate([grid[t, :codec._active(t, lengths)]
                                  for t in range(seg_len)])
        return codec.ideal_bits(targets, freqs)

    assert bits(ADAPTIVE) < 0.998 * bits(plain)


def test_adaptive_archives_round_trip_in_every_decoder(tiny_gru):
    # the encoder's batch, the decoder in one process and with the worker:
    # several frames, each starting its weights from zero
    engine, name = load_engine(tiny_gru, backend="numpy")
    data = (b"It was the best of times, it was the worst of times. " * 200)[:9000]
    engine_mix = engine.mix_profile
    try:
        engine.mix_profile = ADAPTIVE
        packed = io.BytesIO()
        container.write_archive(engine, name, io.BytesIO(data), packed,
                                frame_size=4000, num_segments=5, mix=True,
                                store_incompressible=False)
    finally:
        engine.mix_profile = engine_mix
    archive = packed.getvalue()
    assert archive[len(container.MAGIC) + 1] == container.FLAG_MIX
    for threads in (1, 2):
        assert rnnzip.decompress(archive, threads=threads) == data


def test_the_correction_follows_the_gradient():
    # a state that keeps preceding "e": the correction of "e" grows and is the
    # largest, those of the other symbols fall
    a = adapt.HeadAdapter(8, 11)
    H = np.array([[255, -255, 128, 0, 7, -3, 255, 100]], np.float32)
    flat = np.ones((1, 256), np.float32) * 256
    col = int(np.flatnonzero(adapt.SYMBOLS == ord("e"))[0])
    last = None
    for _ in range(40):
        c = a.correction(H, 1)[:, 0]
        a.observe(flat)
        a.learn(np.array([ord("e")]))
        last = c
    assert last[col] > 0 and last[col] == last.max()
    assert (np.delete(last, col) <= 0).all() and (np.delete(last, col) < 0).any()


def test_a_binary_frame_codes_as_without_adaptation(tiny_gru):
    # mostly bytes outside the text symbols: the adapter never learns, so the
    # adaptive profile gives the full profile's frequencies exactly
    engine, _ = load_engine(tiny_gru, backend="numpy")
    rng = np.random.default_rng(11)
    symbols = rng.integers(128, 256, 3000)
    symbols[rng.random(3000) < 0.2] = ord("a")  # a fifth text bytes
    seg_len, lengths = codec.segment_layout(len(symbols), 4)
    symbols[::seg_len] = 200  # the first step's too: a minority from the start
    full = codec.frequencies_stepwise(engine, symbols, seg_len, lengths, PROFILES[3])
    adaptive = codec.frequencies_stepwise(engine, symbols, seg_len, lengths, ADAPTIVE)
    assert np.array_equal(full, adaptive)
    # and text learns from its first step on
    a = adapt.HeadAdapter(4, 11)
    a.correction(np.full((2, 4), 255, np.float32), 2)
    a.observe(np.ones((2, 256)))
    a.learn(np.array([ord("a"), 200]))  # half text: it learns
    assert a.A.any()
