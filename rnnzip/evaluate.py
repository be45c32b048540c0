"""Evaluate a model on files: bits per character, perplexity, and every cost.

Every figure is measured on the same symbols: a file's bytes, or for a model
with a preprocessing (the book's ``d2l`` alphabet) its preprocessed text.

* float model: the Gluon model's cross-entropy (nats per character),
  perplexity and bpc = log2(perplexity);
* exact model: the ideal bits of the integer coding model; float and exact
  figures use the archive's segment layout (each segment starts cold), so the
  two differ by quantization alone;
* archive: what ``rnnzip compress`` writes, its bits in four ``parts``:
  ``model``, the exact model's ideal bits as if every frame were one segment;
  ``cold_start``, what starting the other parallel segments cold costs;
  ``coder_overhead``, the range coder's payload less the ideal bits (it can
  be a little below zero: the coder rounds the probabilities it is given);
  ``headers``, headers and checksums. They add up to the archive's size.
* the model's own cost: the exact weights, each array in its smallest integer
  type, compressed with xz -9e, added to the archive (``with_model``), since a
  receiver needs the compressor too; across several files it is paid once;
* classical compressors on the same bytes.

The cold-start cost is measured: the exact model runs over the first frame's
first ``WARM_LIMIT`` symbols as one segment (step by step, the slowest part
of an evaluation), against the archive's layout on the same symbols. When
that covers the whole file it is exact; otherwise the cost per cold segment
start found there is applied to every segment start of the file, and the
report says it was estimated.

The entries of the report (the model, the figures, the classical compressors
and the total) are built in :mod:`rnnzip.evalentries`; the table that
``rnnzip eval`` prints and the plot are drawn by :mod:`rnnzip.evalreport`.
"""

from __future__ import annotations

import io
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import modeldir
from ._version import __version__
from .codec import (MIN_SEGMENT, frame_frequencies, ideal_bits, model_segments,
                    segment_layout)
from .container import FRAME_SIZE, write_archive
from .data import Alphabet, d2l_preprocess
from .errors import RnnzipError
from .evalentries import (_archive_entry, _classical, _exact_entry, _float_entry,
                          _model_entry, _rate, _total)
from .exact import load_exact

__all__ = ["evaluate", "evaluate_files", "Evaluation", "FileDetail", "REPORT_FORMAT",
           "WARM_LIMIT"]

REPORT_FORMAT = 1
WARM_LIMIT = 1 << 18  # symbols coded as one segment to measure the cold start
TOP_GUESSES = 3


@dataclass
class FileDetail:
    """Per-character figures of one file, for the plot and the HTML view.

    ``bits[i]`` is what the exact model (in the archive's layout) spends on
    symbol ``i``; ``top``/``top_p`` hold its likeliest symbols before it.
    """

    path: str
    raw: bytes
    symbols: np.ndarray
    bits: np.ndarray
    top: np.ndarray
    top_p: np.ndarray
    entry: dict = field(default_factory=dict)


@dataclass
class Evaluation:
    report: dict
    details: list


def _frames(n: int, num_segments: int | None, engine):
    """The archive's frames: (start, end, segments asked, seg_len, lengths)."""
    out = []
    for start in range(0, n, FRAME_SIZE):
        end = min(n, start + FRAME_SIZE)
        asked = num_segments or model_segments(engine, end - start)
        seg_len, lengths = segment_layout(end - start, asked)
        out.append((start, end, asked, seg_len, lengths))
    return out


def _coding_positions(seg_len: int, lengths: list) -> np.ndarray:
    """Positions in a frame in the order the codec codes them."""
    steps = np.arange(seg_len)[:, None]
    pos = np.arange(len(lengths))[None, :] * seg_len + steps  # (seg_len, segments)
    return pos[steps < np.asarray(lengths)[None, :]]


def _exact_detail(engine, symbols, frames, vocab_size):
    """Bits and top guesses of the exact model for every symbol."""
    n = len(symbols)
    k = min(TOP_GUESSES, vocab_size)
    bits = np.zeros(n, np.float64)
    top = np.zeros((n, k), np.uint16)
    top_p = np.zeros((n, k), np.float32)
    for start, end, _, seg_len, lengths in frames:
        frame = symbols[start:end]
        order = _coding_positions(seg_len, lengths) + start
        done = 0
        for targets, freqs in frame_frequencies(engine, frame, seg_len, lengths):
            pos = order[done:done + len(targets)]
            done += len(targets)
            if not np.array_equal(symbols[pos], targets):
                raise RuntimeError("internal error: the codec's coding order "
                                   "changed; rnnzip.evaluate must follow it")
            freqs = np.asarray(freqs, np.float64)
            totals = freqs.sum(axis=1)
            rows = np.arange(len(targets))
            bits[pos] = np.log2(totals) - np.log2(freqs[rows, targets])
            best = np.argpartition(-freqs, k - 1, axis=1)[:, :k]
            order_k = np.argsort(-freqs[rows[:, None], best], axis=1, kind="stable")
            best = best[rows[:, None], order_k]
            top[pos] = best
            top_p[pos] = freqs[rows[:, None], best] / totals[:, None]
    return bits, top, top_p


def _network_bits(engine, frame, seg_len, lengths) -> float:
    """Ideal bits of the exact network alone on one frame's layout."""
    return float(sum(ideal_bits(t, f) for t, f in
                     frame_frequencies(engine, frame, seg_len, lengths)))


def _warm_bits(engine, symbols) -> float:
    """Ideal bits of the exact model on ``symbols`` as one segment."""
    if not len(symbols):
        return 0.0
    from .quantize import exact_bits

    return exact_bits(engine, symbols, num_segments=1)


def _load_model(model, backend, device):
    """Find a model; return (dir, card, alphabet, exact numpy model, engine)."""
    model_dir = os.path.abspath(modeldir.find_model(model))
    card = modeldir.read_card(model_dir)
    alphabet = Alphabet.from_json(card["alphabet"])
    exact = card.get("exact") or {}
    path = modeldir.check_file_hash(model_dir, modeldir.EXACT_NAME, exact.get("sha256"))
    numpy_model = load_exact(path)
    if alphabet.lossless:
        from .engines import load_engine

        engine, _ = load_engine(model_dir, backend, device)
    else:
        # no archive: the engines refuse this model for compression, rightly
        engine = numpy_model
        if backend == "mxnet" or (backend == "auto" and device.startswith("gpu")):
            from .exact_mx import MXNetExactModel
            from .model import get_device

            engine = MXNetExactModel(numpy_model, get_device(device))
    return model_dir, card, alphabet, numpy_model, engine


def _load_float(model_dir, device, notes):
    """The Gluon model and its context, or None with a note saying why."""
    if not os.path.exists(os.path.join(model_dir, modeldir.PARAMS_NAME)):
        notes.append(f"no float figures: the model directory has no "
                     f"{modeldir.PARAMS_NAME} (float parameters)")
        return None
    try:
        from .train import load_float_model
    except ImportError as exc:
        notes.append(f"no float figures: MXNet cannot be imported ({exc})")
        return None
    model, _, _, ctx = load_float_model(model_dir, device=device)
    return model, ctx


def _float_bits(float_model, symbols, frames) -> float:
    from .quantize import float_bits

    model, ctx = float_model
    return sum(float_bits(model, ctx, symbols[start:end], num_segments=asked)
               for start, end, asked, _, _ in frames)


class _Counter:
    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)
        return len(data)


def _warm_limit(frame) -> int:
    """Symbols of a frame measured as one segment: enough for a segment start."""
    start, end, _, seg_len, _ = frame
    return min(end - start, max(WARM_LIMIT, seg_len + MIN_SEGMENT))


def _cold_start(engine, symbols, frames, frame_bits, detail_bits):
    """(cold-start bits, symbols measured on, estimated) for the archive layout."""
    starts = sum(len(f[4]) - 1 for f in frames)
    if starts == 0:
        return 0.0, 0, False
    start, end, _, seg_len, lengths = frames[0]
    limit = _warm_limit(frames[0])
    warm = _warm_bits(engine, symbols[start:start + limit])
    if limit == end - start:
        layout = frame_bits[0]
    else:
        layout = float(detail_bits[start:start + limit].sum())
    if limit == len(symbols):
        return layout - warm, limit, False
    sampled = min(len(lengths) - 1, (limit - 1) // seg_len)
    per_start = (layout - warm) / sampled if sampled else 0.0
    return per_start * starts, limit, True


def _evaluate_one(path, raw, model_bits_cost, ctx):
    alphabet, engine, name = ctx["alphabet"], ctx["engine"], ctx["name"]
    symbols = alphabet.encode(raw).astype(np.int64)
    n = len(symbols)
    text = raw if alphabet.lossless else d2l_preprocess(raw).encode("utf-8")
    frames = _frames(n, ctx["num_segments"], engine)
    say = ctx["say"]

    # the archive itself, exactly as `rnnzip compress` writes it
    info = None
    if alphabet.lossless:
        t0 = time.perf_counter()
        sink = _Counter()
        info = write_archive(engine, name, io.BytesIO(raw), sink,
                             num_segments=ctx["num_segments"])
        seconds = time.perf_counter() - t0
        layout = [(f.length, f.seg_len, f.segments) for f in info.frames]
        if sink.size != info.archive_size or layout != [
                (e - s, seg_len, len(lengths)) for s, e, _, seg_len, lengths in frames]:
            raise RuntimeError("internal error: the archive's frames changed; "
                               "rnnzip.evaluate must follow them")
        say(f"{path}: archive {info.archive_size:,} bytes in {seconds:.1f} s")

    # per-character bits, where the pictures, a preprocessed text or a
    # prefix-only cold-start measurement need them
    prefix_only = (info is not None and sum(len(f[4]) - 1 for f in frames) > 0
                   and _warm_limit(frames[0]) < frames[0][1] - frames[0][0])
    detail = None
    if ctx["detail"] or info is None or prefix_only:
        t0 = time.perf_counter()
        detail = _exact_detail(engine, symbols, frames, alphabet.vocab_size)
        say(f"{path}: per-character bits in {time.perf_counter() - t0:.1f} s")

    # float and exact figures on the same symbols and layout
    float_bits = None
    if ctx["float_model"] is not None and n:
        t0 = time.perf_counter()
        float_bits = _float_bits(ctx["float_model"], symbols, frames)
        say(f"{path}: float model in {time.perf_counter() - t0:.1f} s")
    float_entry = _float_entry(float_bits, n)
    if info is None:
        exact_bits = float(detail[0].sum())
    elif info.mix:
        # the network alone, on the same layout; mixing is a part of its own
        net_frames = [_network_bits(engine, symbols[s:e], seg_len, lengths)
                      for s, e, _, seg_len, lengths in frames]
        exact_bits = float(sum(net_frames))
    else:
        net_frames = [f.ideal_bits for f in info.frames]
        exact_bits = info.ideal_bits

    archive = with_model = None
    if info is not None:
        t0 = time.perf_counter()
        cold, measured_on, estimated = _cold_start(
            engine, symbols, frames, net_frames, None if detail is None else detail[0])
        say(f"{path}: cold starts in {time.perf_counter() - t0:.1f} s")
        archive = _archive_entry(info, frames, cold, measured_on, estimated, seconds,
                                 exact_bits)
        total = 8 * info.archive_size + model_bits_cost
        with_model = {"bits": total, "bpc": _rate(total, n)}

    entry = {
        "path": path,
        "bytes": len(raw),
        "symbols": n,
        "preprocessed": not alphabet.lossless,
        "float": float_entry,
        "exact": _exact_entry(exact_bits, n, float_entry),
        "archive": archive,
        "with_model": with_model,
        "classical": _classical(text, n) if ctx["classical"] else {},
    }
    if detail is None:
        file_detail = None
    else:
        file_detail = FileDetail(path, raw, symbols, *detail, entry=entry)
    return entry, file_detail


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    if os.path.isdir(path):
        raise RnnzipError(f"{path}: is a directory")
    with open(path, "rb") as f:
        return f.read()


def evaluate_files(paths, model: str | None = None, *, backend: str = "auto",
                   device: str = "auto", num_segments: int | None = None,
                   detail: bool = False, classical: bool = True,
                   float_model: bool = True, verbose: bool = False) -> Evaluation:
    """Evaluate ``model`` on the files ``paths``; keep per-character detail.

    Like :func:`evaluate`; with ``detail`` the result's ``details`` hold a
    :class:`FileDetail` per file for :func:`rnnzip.evalreport.write_plot` and
    :func:`rnnzip.htmlview.write_html`.
    """
    paths = list(paths)
    if not paths:
        raise ValueError("no files to evaluate")

    def say(msg):
        if verbose:
            print(f"rnnzip: {msg}", file=sys.stderr)

    model_dir, card, alphabet, numpy_model, engine = _load_model(model, backend,
                                                                  device)
    model_entry = _model_entry(model_dir, card, alphabet, numpy_model)
    notes = []
    if not alphabet.lossless:
        notes.append(f"the model works on preprocessed text "
                     f"({model_entry['preprocessing']}); every figure is measured "
                     f"on the preprocessed text, classical compressors included, "
                     f"and there is no archive: compress refuses this model, which "
                     f"cannot restore the original bytes")
    loaded = _load_float(model_dir, device, notes) if float_model else None
    ctx = {"alphabet": alphabet, "engine": engine, "name": model_entry["name"],
           "num_segments": num_segments, "detail": detail, "classical": classical,
           "float_model": loaded, "say": say}
    model_bits_cost = 8 * model_entry["exact_xz_bytes"]

    entries, details = [], []
    for path in paths:
        entry, file_detail = _evaluate_one(path, _read(path), model_bits_cost, ctx)
        entries.append(entry)
        details.append(file_detail)
    missing = sorted({e["classical"][k]["setting"].split()[0] for e in entries
                      for k in e["classical"]
                      if e["classical"][k]["note"] == "not installed"})
    if any(e["archive"] and e["archive"]["cold_start_estimated"] for e in entries):
        notes.append(f"cold-start cost estimated from the first {WARM_LIMIT:,} "
                     f"symbols of the file, applied to every segment start")
    report = {
        "format": REPORT_FORMAT,
        "rnnzip_version": __version__,
        "model": model_entry,
        "files": entries,
        "total": _total(entries, model_bits_cost),
        "compressors_not_found": missing,
        "notes": notes,
    }
    return Evaluation(report, details)


def evaluate(paths, model: str | None = None, *, backend: str = "auto",
             device: str = "auto", num_segments: int | None = None,
             classical: bool = True, float_model: bool = True) -> dict:
    """Measure what ``model`` does on the files ``paths``; return the report.

    ``model`` is a model name or directory (None: the default model);
    ``backend``, ``device`` and ``num_segments`` are those of ``compress``,
    whose archive the report measures. ``classical`` runs gzip, bzip2, xz
    and, where installed, zstd, brotli and 7-Zip's PPMd; ``float_model``
    loads the Gluon model (MXNet) for cross-entropy and perplexity. The
    report is a JSON-ready dict whose keys the README documents.
    """
    return evaluate_files(paths, model, backend=backend, device=device,
                          num_segments=num_segments, classical=classical,
                          float_model=float_model).report
