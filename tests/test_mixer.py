"""Context mixing: exact, the same for encoder and decoder, and worth its cost."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnzip
from rnnzip import codec, container, engines, mixer

TEXT = ("The Time Traveller (for so it will be convenient to speak of him) was "
        "expounding a recondite matter to us.\r\n").encode() * 12


def _archive(engine, name, data, **kwargs):
    out = io.BytesIO()
    kwargs.setdefault("store_incompressible", False)
    info = container.write_archive(engine, name, io.BytesIO(data), out, **kwargs)
    return out.getvalue(), info


def test_encoder_and_decoder_see_the_same_mixed_frequencies(tiny_gru):
    engine, _ = engines.load_engine(tiny_gru)
    symbols = np.frombuffer(TEXT, dtype=np.uint8).astype(np.int64)
    seg_len, lengths = codec.segment_layout(len(symbols), 7)
    assert lengths[-1] < seg_len  # a short last segment drops out early
    chunked = np.concatenate([f for _, f in codec.frame_frequencies(
        engine, symbols, seg_len, lengths, mix=True)])
    stepwise = codec.frequencies_stepwise(engine, symbols, seg_len, lengths, mix=True)
    plain = codec.frequencies_stepwise(engine, symbols, seg_len, lengths)
    assert chunked.dtype == np.float64 and np.array_equal(chunked, np.floor(chunked))
    assert np.array_equal(chunked, stepwise)
    assert chunked.shape == plain.shape
    assert chunked.min() >= 1
    assert not np.array_equal(chunked, plain)


@pytest.mark.parametrize("data", [
    b"", b"x", bytes(range(256)) * 3, TEXT,
    np.random.default_rng(5).integers(0, 256, 3000, np.uint8).tobytes(),
], ids=["empty", "one", "every-byte", "text", "random"])
@pytest.mark.parametrize("kwargs", [{}, {"num_segments": 5},
                                    {"frame_size": 500, "num_segments": 3}])
def test_round_trip_with_mixing(tiny_gru, data, kwargs):
    engine, name = engines.load_engine(tiny_gru)
    packed, info = _archive(engine, name, data, mix=True, **kwargs)
    assert info.mix
    assert rnnzip.decompress(packed) == data


def test_mixing_learns_what_the_network_cannot_know(tiny_gru):
    # a random 200-byte line repeated: the tiny random network cannot predict
    # it; the frame's own statistics can, once the line has been seen
    line = np.random.default_rng(7).integers(0, 256, 200, np.uint8).tobytes()
    data = line * 30
    engine, name = engines.load_engine(tiny_gru)
    plain, _ = _archive(engine, name, data, mix=False, num_segments=1)
    mixed, _ = _archive(engine, name, data, mix=True, num_segments=1)
    assert len(plain) > 0.9 * len(data)
    assert len(mixed) < 0.15 * len(plain)
    assert rnnzip.decompress(mixed) == data


def test_segments_share_what_they_learn(tiny_gru):
    # two segments in lockstep, the second holding the first's random block
    # rotated by half: each half is seen by one segment 200 steps before the
    # other needs it, so together they cost about half of two separate frames
    engine, name = engines.load_engine(tiny_gru)
    block = np.random.default_rng(8).integers(0, 256, 400, np.uint8).tobytes()
    data = block + block[200:] + block[:200]
    alone, _ = _archive(engine, name, block, mix=True, num_segments=1)
    shared, _ = _archive(engine, name, data, mix=True, num_segments=2)
    assert len(shared) < 0.7 * 2 * len(alone)
    assert rnnzip.decompress(shared) == data


def test_the_header_records_mixing(tiny_gru):
    engine, name = engines.load_engine(tiny_gru)
    mixed, _ = _archive(engine, name, TEXT, mix=True)
    plain, _ = _archive(engine, name, TEXT, mix=False)
    flags = len(container.MAGIC) + 1
    assert mixed[flags] == container.FLAG_MIX and plain[flags] == 0
    assert container.read_archive(io.BytesIO(mixed), io.BytesIO(), None,
                                  info_only=True).mix


def test_the_model_card_chooses_and_the_caller_overrides(tiny_gru, make_model):
    engine, name = engines.load_engine(tiny_gru)
    assert engine.mix is False  # the tiny models' cards say nothing
    assert not _archive(engine, name, TEXT)[1].mix
    assert _archive(engine, name, TEXT, mix=True)[1].mix
    default = rnnzip.compress(TEXT, model=tiny_gru)
    forced = rnnzip.compress(TEXT, model=tiny_gru, mix=True)
    assert default[9] == 0 and forced[9] == container.FLAG_MIX
    assert rnnzip.decompress(forced) == TEXT


def test_rows_that_meet_in_a_slot_count_together():
    # every row starts with the same (empty) history, so at the first step all
    # rows share each order's slot: the first row's new symbol is counted once
    # per row that saw it, another new symbol is left out
    m = mixer.ContextMixer(4, mixer.profile("lean"))
    K = len(m.profile.orders)
    m.predict(np.ones((4, 256), np.float32))
    m.update(np.array([65, 66, 65, 65]))
    used = m.table[m.table != 0]
    assert sorted(used.tolist()) == [(65 << mixer.SYM_SHIFT) + 3] * K
    assert np.count_nonzero(m.check) == K
    # the next step, all rows in one context again: the same rule
    m.history[:] = np.uint64(65)
    m.predict(np.ones((4, 256), np.float32))
    m.update(np.array([70, 70, 71, 70]))
    entries = m.table[m.table != 0].tolist()
    assert entries.count((70 << mixer.SYM_SHIFT) + 3) == K
    assert not any(e >> mixer.SYM_SHIFT == 71 for e in entries)
    # that context once more: a symbol it holds gains a count per row, and
    # the one new symbol comes in beside it
    m.history[:] = np.uint64(65)
    m.predict(np.ones((4, 256), np.float32))
    m.update(np.array([70, 72, 70, 70]))
    entries = m.table[m.table != 0].tolist()
    assert entries.count((70 << mixer.SYM_SHIFT) + 6) == K
    assert entries.count((72 << mixer.SYM_SHIFT) + 1) == K
    assert len(entries) == 3 * K


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_frequencies_stay_exact_at_the_extremes(data):
    # network frequencies anywhere in the exact model's range [1, 2**16], and
    # symbols that agree or disagree with them: every mixed frequency is an
    # integer >= 1 and every row's total is exact in float64
    rows = data.draw(st.integers(1, 6))
    shape = data.draw(st.sampled_from(list(mixer.PROFILES.values())))
    m = mixer.ContextMixer(rows, shape)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    pattern = rng.integers(0, 256, 9)
    for t in range(40):
        kind = data.draw(st.sampled_from(["flat", "peaked", "extreme"]))
        if kind == "flat":
            freqs = rng.integers(1, 3, (rows, 256))
        elif kind == "peaked":
            freqs = np.ones((rows, 256), np.int64)
            freqs[:, rng.integers(0, 256)] = 1 << 16
        else:
            freqs = np.full((rows, 256), 1 << 16, np.int64)
        out = m.predict(freqs.astype(np.float32))
        assert out.dtype == np.float64 and out.shape == (rows, 256)
        assert np.array_equal(out, np.floor(out)) and out.min() >= 1
        # the row totals, summed exactly as integers, stay where float64 is exact
        assert int(out.astype(np.int64).sum(axis=1).max()) < 2**52
        symbols = np.full(rows, pattern[t % len(pattern)]) if t % 3 else \
            rng.integers(0, 256, rows)
        m.update(symbols)
    assert (mixer.W_MIN <= m.weights).all() and (m.weights <= mixer.W_MAX).all()


def test_the_shipped_default_mixes_and_gains(model_root):
    # the default model's card turns mixing on; on English it must pay off
    engine, name = engines.load_engine(None)
    assert name == "english" and engine.mix is True
    fast, _ = engines.load_engine("english-fast")
    assert fast.mix is True and fast.mix_profile.name == "lean"
    text = TEXT * 4
    mixed = rnnzip.compress(text)
    plain = rnnzip.compress(text, mix=False)
    assert mixed[len(container.MAGIC) + 1] == container.FLAG_MIX
    assert len(mixed) < 0.8 * len(plain)
    assert rnnzip.decompress(mixed) == text


def _key_after(symbols):
    """The weight key of a one-row mixer whose context has seen ``symbols``."""
    m = mixer.ContextMixer(1, mixer.profile("lean"))
    for s in symbols:
        m.history[:] = np.uint64(0x41424344)
        m.predict(np.ones((1, 256), np.float32))
        m.update(np.array([s]))
    m.history[:] = np.uint64(0x41424344)
    m.predict(np.ones((1, 256), np.float32))
    return int(m._step[6][0])


def test_deterministic_contexts_learn_their_own_weight():
    # the same longest order and count, one symbol against two: two weights
    K = len(mixer.profile("lean").orders)
    one, two = _key_after([65, 65]), _key_after([65, 66])
    assert one == K * mixer.WEIGHT_KEYS + 2 * 2 + 1
    assert two == one - 1


def test_shipped_models_code_their_cards_segments(model_root):
    # the segment sizes the cards chose for speed reach the archive's frames,
    # and each card's mixing profile its header
    for name, size, shape in (("english", 3072, "adaptive"),
                              ("english-fast", 512, "lean")):
        engine, _ = engines.load_engine(name)
        assert engine.min_segment == size
        data = (TEXT * (3 * size // len(TEXT) + 1))[:3 * size + 7]
        info = container.read_archive(io.BytesIO(rnnzip.compress(data, model=name)),
                                      io.BytesIO(), engines.resolve_engine,
                                      info_only=True)
        assert [f.segments for f in info.frames] == [3]
        assert info.mixer.name == shape
