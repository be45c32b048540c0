"""The coder loop: an exact model drives constriction's queue range coder.

A frame of bytes is cut into ``num_segments`` contiguous segments coded side
by side: step ``t`` of every segment still running is one row of one model
call, and the rows are coded in order (step major, segment minor) into a
single stream. Each segment starts cold, from the zero state and the input
``START_SYMBOL``. The encoder knows every input, so it runs the recurrence
first and the output head over many steps at once; the decoder must go step
by step. The frequencies are integers, so both see the same ones.
"""

from __future__ import annotations

import constriction
import numpy as np

from .exact import START_SYMBOL
from .mixer import FULL, ContextMixer
from .pipeline import LocalNetwork, head_step, make_adapter, network_step

__all__ = ["segment_layout", "choose_segments", "model_segments", "encode_frame",
           "decode_frame", "ideal_bits", "MIN_SEGMENT", "MAX_SEGMENTS"]

# Measured on alice29.txt with a GRU-256 (benchmarks/segments.py, README): each
# cold start costs bits, +0.27% at 4 KiB segments, +0.52% at 2 KiB, +1.1% at 1 KiB
MIN_SEGMENT = 4096  # bytes: shorter segments pay too much for their cold start
MAX_SEGMENTS = 256  # rows per model call
HEAD_CHUNK = 64  # steps whose head the encoder computes in one call


def _entropy_model():
    # perfect=False, on both sides: fast, and the same quantization everywhere
    return constriction.stream.model.Categorical(perfect=False)


def _coder_probs(freqs) -> np.ndarray:
    """Frequencies as the coder must get them: C-contiguous float64.

    constriction reads the array's memory as rows, whatever its strides say,
    so a transposed view would be coded as another distribution.
    """
    return np.ascontiguousarray(freqs, np.float64)


def choose_segments(n: int, min_segment: int = MIN_SEGMENT,
                    max_segments: int = MAX_SEGMENTS) -> int:
    """Number of parallel segments for a frame of ``n`` bytes."""
    return max(1, min(max_segments, n // max(1, min_segment)))


def model_segments(engine, n: int) -> int:
    """Segments for a frame of ``n`` bytes under ``engine``'s own segment size.

    A model's card may set ``coding.min_segment``: a model with a short memory
    pays less for each cold start, so it can take shorter, more segments and
    decode faster (benchmarks/segments.py measures the trade).
    """
    return choose_segments(n, getattr(engine, "min_segment", MIN_SEGMENT))


def segment_layout(n: int, num_segments: int) -> tuple[int, list[int]]:
    """Return the segment length and the length of every segment.

    Every segment has ``seg_len`` bytes but the last, which has the rest; the
    number of segments may come out lower than asked, never higher.
    """
    if n == 0:
        return 0, []
    num_segments = max(1, min(num_segments, n))
    seg_len = -(-n // num_segments)
    count = -(-n // seg_len)
    lengths = [seg_len] * (count - 1) + [n - seg_len * (count - 1)]
    return seg_len, lengths


def _grid(symbols: np.ndarray, seg_len: int, lengths: list[int]):
    """Symbols as (num_steps, segments), padded with zeros, and the inputs."""
    grid = np.zeros((len(lengths), seg_len), dtype=np.int64)
    flat = grid.reshape(-1)
    flat[:len(symbols)] = symbols
    grid = grid.T  # (num_steps, segments)
    inputs = np.empty_like(grid)
    inputs[0] = START_SYMBOL
    inputs[1:] = grid[:-1]
    return grid, inputs


def _active(t: int, lengths: list[int]) -> int:
    """How many segments (a prefix) still run at step ``t``."""
    # all segments but the last have the same, longest length
    return len(lengths) if t < lengths[-1] else len(lengths) - 1


def frame_frequencies(engine, symbols: np.ndarray, seg_len: int, lengths: list[int],
                      mix=None):
    """Yield (targets, freqs) in coding order, many steps per call (encoder).

    With ``mix``, a :class:`rnnzip.mixer.Profile`, the network's frequencies
    go through a :class:`ContextMixer` step by step, as the decoder will see
    them (float64 then, integers all the same).
    """
    grid, inputs = _grid(symbols, seg_len, lengths)
    state = engine.begin_state(len(lengths))
    mixer = _mixer(len(lengths), mix)
    adapter = _adapter(engine, mix)
    for t0 in range(0, seg_len, HEAD_CHUNK):
        t1 = min(seg_len, t0 + HEAD_CHUNK)
        tops = []
        for t in range(t0, t1):
            state = engine.advance(inputs[t], state)
            tops.append(engine.top(state))
        targets = grid[t0:t1]
        if adapter is None:  # ((t1-t0) * segments, vocab)
            freqs = engine.freqs(engine.stack(tops))
        else:  # step by step: each step learns from the one before
            freqs = []
            for i, top in enumerate(tops):
                m = _active(t0 + i, lengths)
                freqs.append(head_step(engine, top, adapter, m))
                adapter.learn(targets[i, :m])
            freqs = np.concatenate(freqs)
        freqs = freqs.reshape(t1 - t0, len(lengths), -1)
        if mixer is not None:
            freqs = _mix_steps(mixer, freqs, targets, t0, lengths)
        if t1 <= lengths[-1] or len(lengths) == 1:
            yield targets.reshape(-1), freqs.reshape(-1, freqs.shape[-1])
        else:
            # drop the rows of the short last segment once it has ended
            keep = np.ones((t1 - t0, len(lengths)), dtype=bool)
            keep[max(0, lengths[-1] - t0):, -1] = False
            yield targets[keep], freqs[keep]


def _mixer(rows: int, mix):
    """A mixer for ``mix``: a profile, True for the full one, or None / False."""
    if not mix:
        return None
    return ContextMixer(rows, FULL if mix is True else mix)


def _adapt(mix) -> int:
    """The rate at which ``mix`` adapts the network's head (0: it does not)."""
    return mix.adapt if mix and mix is not True else 0


def _adapter(engine, mix):
    """A :class:`HeadAdapter` for a frame whose profile ``mix`` adapts, or None."""
    return make_adapter(engine, _adapt(mix))


def _mix_steps(mixer, freqs, targets, t0, lengths):
    """Run a chunk of steps through the mixer; rows past their end get ones."""
    out = np.ones(freqs.shape, np.float64)
    for i in range(len(freqs)):
        m = _active(t0 + i, lengths)
        out[i, :m] = mixer.predict(freqs[i, :m])
        mixer.update(targets[i, :m])
    return out


def ideal_bits(targets: np.ndarray, freqs: np.ndarray) -> float:
    """Bits an ideal coder spends on ``targets`` under integer ``freqs``."""
    totals = freqs.sum(axis=1, dtype=np.float64)
    picked = freqs[np.arange(len(targets)), targets].astype(np.float64)
    return float(np.sum(np.log2(totals) - np.log2(picked)))


def encode_frame(engine, data: bytes, num_segments: int, mix=None):
    """Compress one frame; return (seg_len, lengths, words, ideal_bits)."""
    symbols = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    seg_len, lengths = segment_layout(len(symbols), num_segments)
    encoder = constriction.stream.queue.RangeEncoder()
    entropy_model = _entropy_model()
    bits = 0.0
    for targets, freqs in frame_frequencies(engine, symbols, seg_len, lengths, mix):
        encoder.encode(targets.astype(np.int32), entropy_model,
                       _coder_probs(freqs))
        bits += ideal_bits(targets, freqs)
    return seg_len, lengths, encoder.get_compressed(), bits


def decode_frame(engine, words: np.ndarray, seg_len: int, lengths: list[int],
                 mix=None, network=None) -> bytes:
    """Decompress one frame coded by :func:`encode_frame` with the same ``mix``.

    ``network``, a :class:`rnnzip.pipeline.NetworkWorker` for ``engine``, runs
    the network's next step while this process mixes and learns; without it
    the network runs here. The output is the same.
    """
    if not lengths:
        return b""
    decoder = constriction.stream.queue.RangeDecoder(words)
    entropy_model = _entropy_model()
    rows = len(lengths)
    grid = np.zeros((seg_len, rows), dtype=np.int64)
    mixer = _mixer(rows, mix)
    net = network or LocalNetwork(engine)
    net.begin(rows, _adapt(mix))
    net.submit(np.full(rows, START_SYMBOL, dtype=np.int64), _active(0, lengths))
    for t in range(seg_len):
        m = _active(t, lengths)
        if mixer is not None:
            mixer.prepare(m)  # while the network computes this step
        freqs, totals = net.result()  # (segments, vocab)
        if mixer is None:
            freqs = freqs[:m]
        else:
            freqs = mixer.finish(freqs[:m], None if totals is None else totals[:m])
        x = grid[t]
        x[:m] = decoder.decode(entropy_model, _coder_probs(freqs))
        if t + 1 < seg_len:  # the next step, while the mixer learns from this one
            net.submit(x, _active(t + 1, lengths))
        if mixer is not None:
            mixer.update(x[:m])
    out = grid.T.reshape(-1)[:sum(lengths)]
    return out.astype(np.uint8).tobytes()


def frequencies_stepwise(engine, symbols, seg_len, lengths, mix=None):
    """The decoder's view: frequencies computed one step at a time (tests)."""
    grid, inputs = _grid(np.asarray(symbols, dtype=np.int64), seg_len, lengths)
    state = engine.begin_state(len(lengths))
    mixer = _mixer(len(lengths), mix)
    adapter = _adapter(engine, mix)
    out = []
    for t in range(seg_len):
        m = _active(t, lengths)
        state, freqs = network_step(engine, state, inputs[t], adapter, m)
        freqs = freqs[:m]
        if mixer is not None:
            freqs = mixer.predict(freqs)
            mixer.update(grid[t, :m])
        out.append(freqs)
    return np.concatenate(out)
