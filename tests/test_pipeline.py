"""The network in a worker process: same bytes, clean exits, clear failures."""

import io
import os
import signal

import numpy as np
import pytest

import rnnzip
from rnnzip import codec, container, pipeline
from rnnzip.engines import load_engine
from rnnzip.errors import RnnzipError
from rnnzip.mixer import PROFILES


_WORDS = ("the time traveller for so it will be convenient to speak of him was "
          "expounding a recondite matter to us his grey eyes shone and twinkled "
          "and his usually pale face was flushed and animated").split()


def english_like(n, seed):
    """``n`` bytes of sentences from a small vocabulary."""
    rng = np.random.default_rng(seed)
    words = rng.choice(_WORDS, n // 3)
    return " ".join(words).encode("ascii")[:n]

pytestmark = pytest.mark.skipif(not pipeline.can_fork(), reason="needs os.fork")


def _frame(engine, data, segments, mix):
    seg_len, lengths, words, _ = codec.encode_frame(engine, data, segments, mix)
    return words, seg_len, lengths


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("share", [0, 3 / 16, 1])
def test_a_worker_decodes_the_same_bytes(make_model, cell, share, monkeypatch):
    make_model(cell, 1, 16, 3, f"tiny-{cell}-pipe")
    engine, _ = load_engine(f"tiny-{cell}-pipe", backend="numpy")
    data = english_like(6000, seed=4)
    monkeypatch.setattr(pipeline.NetworkWorker, "LOCAL_SHARE", share)
    for mix in (PROFILES[3], PROFILES[4], PROFILES[5], None):
        words, seg_len, lengths = _frame(engine, data, 37, mix)
        with pipeline.NetworkWorker(engine, 64) as worker:
            assert codec.decode_frame(engine, words, seg_len, lengths, mix,
                                      network=worker) == data
            # the same worker serves a second frame of another layout
            words2, seg_len2, lengths2 = _frame(engine, data[:999], 5, mix)
            assert codec.decode_frame(engine, words2, seg_len2, lengths2, mix,
                                      network=worker) == data[:999]


def test_the_worker_sees_each_step_as_the_local_network_does(tiny_gru):
    engine, _ = load_engine(tiny_gru, backend="numpy")
    rng = np.random.default_rng(0)
    local = pipeline.LocalNetwork(engine)
    with pipeline.NetworkWorker(engine, 40) as worker:
        for net in (local, worker):
            net.begin(33)
        for _ in range(20):
            x = rng.integers(0, 256, 33)
            local.submit(x)
            worker.submit(x)
            freqs, totals = worker.result()
            assert np.array_equal(freqs, local.result()[0])
            assert np.array_equal(totals, local.result()[0].sum(axis=1))


def test_archives_decode_the_same_with_and_without_a_worker(tiny_gru):
    data = english_like(30000, seed=9)
    engine, name = load_engine(tiny_gru, backend="numpy")
    packed = io.BytesIO()
    # several frames, mixed and not, and a stored one, in two members
    container.write_archive(engine, name, io.BytesIO(data), packed,
                            frame_size=12000, mix=True)
    container.write_archive(engine, name, io.BytesIO(data[:5000]), packed,
                            frame_size=3000, mix=False)
    container.write_archive(engine, name, io.BytesIO(os.urandom(700)), packed,
                            mix=True)
    outs = []
    for threads in (1, 2, 0):
        out = io.BytesIO()
        info = container.read_archive(io.BytesIO(packed.getvalue()), out,
                                      lambda *_: engine, threads=threads)
        outs.append(out.getvalue())
        assert info.members == 3
    assert outs[0] == outs[1] == outs[2]
    assert outs[0][:30000] == data and outs[0][30000:35000] == data[:5000]


def test_the_api_takes_threads(tiny_gru):
    data = english_like(4000, seed=2)
    packed = rnnzip.compress(data, model=tiny_gru, mix=True)
    assert rnnzip.decompress(packed, threads=2) == data
    with pytest.raises(ValueError, match="threads"):
        rnnzip.decompress(packed, threads=-1)


def test_a_failed_fork_decodes_in_one_process(tiny_gru, monkeypatch):
    data = english_like(4000, seed=5)
    packed = rnnzip.compress(data, model=tiny_gru, mix=True)

    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    monkeypatch.setattr(os, "fork", no_fork)
    assert rnnzip.decompress(packed, threads=2) == data
    if fds is not None:  # the worker's pipes were closed again
        assert len(os.listdir("/proc/self/fd")) == fds


def test_closing_reaps_the_worker_and_restores_the_cpus(tiny_gru):
    engine, _ = load_engine(tiny_gru, backend="numpy")
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    worker = pipeline.NetworkWorker(engine, 8)
    pid = worker.pid
    worker.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no such child
    if before is not None:
        assert os.sched_getaffinity(0) == before
    worker.close()  # twice is harmless


def test_a_dead_worker_is_an_error_not_a_hang(tiny_gru):
    engine, _ = load_engine(tiny_gru, backend="numpy")
    data = english_like(3000, seed=1)
    words, seg_len, lengths = _frame(engine, data, 8, PROFILES[4])
    worker = pipeline.NetworkWorker(engine, 8)
    try:
        os.kill(worker.pid, signal.SIGKILL)
        with pytest.raises(RnnzipError, match="worker process died"):
            codec.decode_frame(engine, words, seg_len, lengths, PROFILES[4],
                               network=worker)
    finally:
        worker.close()


def test_a_frame_wider_than_the_worker_is_refused(tiny_gru):
    engine, _ = load_engine(tiny_gru, backend="numpy")
    with pipeline.NetworkWorker(engine, 4) as worker:
        with pytest.raises(ValueError, match="up to 4"):
            worker.begin(5)


def test_the_coder_gets_rows_whatever_the_layout():
    # constriction reads an array's memory as rows whatever its strides say;
    # a transposed view must be coded as the distribution it shows
    rng = np.random.default_rng(3)
    freqs = np.asfortranarray(rng.integers(1, 1000, (6, 256)).astype(np.float32))
    symbols = rng.integers(0, 256, 6)
    probs = codec._coder_probs(freqs)
    assert probs.flags.c_contiguous and np.array_equal(probs, freqs)
    model = codec._entropy_model()
    coded = []
    for p in (probs, np.ascontiguousarray(freqs, np.float64)):
        encoder = codec.constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols.astype(np.int32), model, p)
        coded.append(encoder.get_compressed())
    assert np.array_equal(coded[0], coded[1])
