"""Round trips through the library, and encoder against decoder frequencies."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnzip
from rnnzip import codec, container, engines

TEXTS = {
    "latin": "Ça m'a coûté très cher, señor Müller; naïve façade, Øresund.",
    "greek": "Η Ελληνική γλώσσα: αβγδεζηθ ΑΒΓΔ, ώρα, ἄνθρωπος.",
    "cyrillic": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "cjk": "時間旅行者は言った。日本語と中文と한국어の混在テキスト。",
    "emoji": "rnnzip 🗜️📦✅ — 👩‍💻 coded 🧪 at 🕰️ speed 🚀🌍",
}
CELLS = ["gru", "rnn", "lstm", "gru2"]


def _roundtrip(data, model):
    packed = rnnzip.compress(data, model=model)
    assert packed[:8] == container.MAGIC
    assert rnnzip.decompress(packed) == data
    return packed


@pytest.mark.parametrize("cell", CELLS)
def test_empty_input(tiny_models, cell):
    packed = _roundtrip(b"", tiny_models[cell])
    info = container.read_archive(io.BytesIO(packed), io.BytesIO(), None,
                                  info_only=True)
    assert info.frames == []
    assert info.original_size == 0


@pytest.mark.parametrize("cell", CELLS)
def test_one_byte(tiny_models, cell):
    for value in (0, 10, 97, 255):
        _roundtrip(bytes([value]), tiny_models[cell])


@pytest.mark.parametrize("cell", CELLS)
def test_every_byte_value(tiny_models, cell):
    data = bytes(range(256)) + bytes(range(255, -1, -1))
    _roundtrip(data, tiny_models[cell])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("script", sorted(TEXTS))
def test_utf8_text(tiny_models, cell, script):
    data = TEXTS[script].encode("utf-8")
    assert len(data) > len(TEXTS[script])  # really multi-byte
    _roundtrip(data, tiny_models[cell])


@pytest.mark.parametrize("cell", CELLS)
def test_crlf_text(tiny_models, cell):
    data = b"line one\r\nline two\r\n\r\nlast line, no newline\r\r\n\n"
    _roundtrip(data, tiny_models[cell])


@settings(max_examples=15, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes(tiny_gru, data):
    _roundtrip(data, tiny_gru)


def test_repetitive_text_compresses_below_its_size(tiny_gru):
    # a random model is no predictor, but the format's overhead is bounded
    data = b"abc" * 400
    packed = _roundtrip(data, tiny_gru)
    assert len(packed) < 2 * len(data)


@pytest.mark.parametrize("cell", CELLS)
def test_several_frames_and_segments(tiny_models, cell):
    engine, name = engines.load_engine(tiny_models[cell])
    rng = np.random.default_rng(7)
    data = (" ".join(TEXTS.values()).encode() * 3)[:900]
    data += rng.integers(0, 256, 211, dtype=np.uint8).tobytes()
    out = io.BytesIO()
    info = container.write_archive(engine, name, io.BytesIO(data), out,
                                   frame_size=256, num_segments=3,
                                   store_incompressible=False)
    packed = out.getvalue()

    # 1111 bytes in frames of 256: four full frames and one of 87 bytes
    assert [f.length for f in info.frames] == [256, 256, 256, 256, 87]
    assert len(info.frames) > 1
    assert all(f.segments == 3 for f in info.frames)
    assert info.frames[0].seg_len == 86  # 86 + 86 + 84: the last is shorter
    assert info.archive_size == len(packed)
    assert info.original_size == len(data)

    # the library and the container reader both restore it
    assert rnnzip.decompress(packed) == data
    sink = io.BytesIO()
    read = container.read_archive(io.BytesIO(packed), sink,
                                  lambda n, i: engines.resolve_engine(n, i))
    assert sink.getvalue() == data
    assert read.frame_size == 256
    assert [f.segments for f in read.frames] == [3] * 5
    assert read.archive_size == len(packed)


def test_frames_are_independent_of_each_other(tiny_gru):
    # the same bytes in the same frame position code to the same words
    engine, name = engines.load_engine(tiny_gru)
    block = b"0123456789abcdef" * 4
    out = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(block * 3), out,
                            frame_size=len(block), store_incompressible=False)
    one = io.BytesIO()
    container.write_archive(engine, name, io.BytesIO(block), one,
                            frame_size=len(block), store_incompressible=False)
    header = len(container.MAGIC) + 2 + 32 + 1 + len(name) + 4 + 4
    trailer = 1 + 4 + 8 + 4 + 4
    frame = one.getvalue()[header:-trailer]
    assert frame[:1] == b"F"
    assert out.getvalue().count(frame) == 3


LAYOUTS = [(1, 1), (5, 1), (130, 1), (10, 4), (145, 2), (320, 3), (500, 7),
           (200, 200), (700, 2)]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("n, num_segments", LAYOUTS)
def test_encoder_and_decoder_frequencies_agree(tiny_models, cell, n, num_segments):
    engine, _ = engines.load_engine(tiny_models[cell])
    rng = np.random.default_rng(n)
    symbols = rng.integers(0, 256, n)
    seg_len, lengths = codec.segment_layout(n, num_segments)
    assert sum(lengths) == n
    assert lengths[-1] <= seg_len

    chunks = list(codec.frame_frequencies(engine, symbols, seg_len, lengths))
    targets = np.concatenate([t for t, _ in chunks])
    freqs = np.concatenate([f for _, f in chunks])
    stepwise = codec.frequencies_stepwise(engine, symbols, seg_len, lengths)

    assert freqs.shape == (n, 256)
    assert stepwise.shape == (n, 256)
    assert np.array_equal(freqs, stepwise)
    assert freqs.min() >= 1

    # coding order is step major, segment minor
    grid = np.zeros(seg_len * len(lengths), dtype=np.int64)
    grid[:n] = symbols
    grid = grid.reshape(len(lengths), seg_len)
    order = [grid[s, t] for t in range(seg_len) for s in range(len(lengths))
             if t < lengths[s]]
    assert np.array_equal(targets, order)


def test_layout_with_a_short_last_segment():
    assert codec.segment_layout(10, 4) == (3, [3, 3, 3, 1])
    assert codec.segment_layout(320, 3) == (107, [107, 107, 106])
    assert codec.segment_layout(0, 3) == (0, [])
    assert codec.segment_layout(2, 5) == (1, [1, 1])


def test_model_predictions_are_not_uniform(tiny_models):
    for name in tiny_models.values():
        engine, _ = engines.load_engine(name)
        state = engine.advance(np.array([10, 65, 200]), engine.begin_state(3))
        freqs = engine.freqs(engine.top(state))
        assert freqs.max() > 10 * freqs.min()
        assert not np.array_equal(freqs[0], freqs[1])
