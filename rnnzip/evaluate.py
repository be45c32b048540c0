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
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from . import modeldir
from ._version import __version__
from .codec import MIN_SEGMENT, choose_segments, frame_frequencies, segment_layout
from .container import FRAME_SIZE, write_archive
from .data import Alphabet, d2l_preprocess
from .errors import RnnzipError
from .exact import load_exact

__all__ = ["evaluate", "evaluate_files", "Evaluation", "FileDetail", "format_report",
           "write_plot", "default_window", "PLOT_SUFFIXES", "REPORT_FORMAT",
           "WARM_LIMIT"]

REPORT_FORMAT = 1
WARM_LIMIT = 1 << 18  # symbols coded as one segment to measure the cold start
TOP_GUESSES = 3
_XZ = 9 | lzma.PRESET_EXTREME

# key, what a user would type, and how (a function, or an external program)
_CLASSICAL = [
    ("gzip", "gzip -9", lambda d: gzip.compress(d, 9, mtime=0)),
    ("bzip2", "bzip2 -9", lambda d: bz2.compress(d, 9)),
    ("xz", "xz -9e", lambda d: lzma.compress(d, preset=_XZ)),
    ("zstd", "zstd --ultra -22", ["zstd", "-q", "--ultra", "-22", "-c"]),
    ("brotli", "brotli -q 11", ["brotli", "-q", "11", "-c"]),
    ("ppmd", "7z PPMd o=8 mem=256m", ["7z", "a", "-t7z", "-m0=PPMd:o=8:mem=256m",
                                      "-mx=9", "-bd", "-y"]),
]


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


def _rate(bits, n):
    return None if bits is None or not n else bits / n


def _frames(n: int, num_segments: int | None):
    """The archive's frames: (start, end, segments asked, seg_len, lengths)."""
    out = []
    for start in range(0, n, FRAME_SIZE):
        end = min(n, start + FRAME_SIZE)
        asked = num_segments or choose_segments(end - start)
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


def _warm_bits(engine, symbols) -> float:
    """Ideal bits of the exact model on ``symbols`` as one segment."""
    if not len(symbols):
        return 0.0
    from .quantize import exact_bits

    return exact_bits(engine, symbols, num_segments=1)


def _count_params(arch: dict) -> int:
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[arch["cell"]]
    H, V = arch["num_hiddens"], arch["vocab_size"]
    count = 0
    for k in range(arch["num_layers"]):
        inputs = V if k == 0 else H
        count += gates * H * (inputs + H + 2)
    return count + V * H + V


def _packed_exact(model) -> bytes:
    """The exact model's arrays, each in the smallest integer type that holds it."""
    chunks = [json.dumps(model.meta, sort_keys=True).encode() + b"\n"]
    for key in sorted(model.arrays):
        arr = np.asarray(model.arrays[key])
        if np.all(np.floor(arr) == arr):
            for dtype in (np.int8, np.int16, np.int32):
                info = np.iinfo(dtype)
                if arr.size == 0 or (arr.min() >= info.min and arr.max() <= info.max):
                    arr = arr.astype(dtype)
                    break
        chunks.append(f"{key} {arr.dtype.str} {arr.shape}\n".encode())
        chunks.append(np.ascontiguousarray(arr).tobytes())
    return b"".join(chunks)


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


def _model_entry(model_dir, card, alphabet, numpy_model) -> dict:
    arch = card["architecture"]
    params = os.path.join(model_dir, modeldir.PARAMS_NAME)
    return {
        "name": card.get("name") or os.path.basename(model_dir),
        "path": model_dir,
        "identity": numpy_model.identity,
        "cell": arch["cell"],
        "num_layers": arch["num_layers"],
        "num_hiddens": arch["num_hiddens"],
        "vocab_size": arch["vocab_size"],
        "alphabet": alphabet.kind,
        "preprocessing": card["alphabet"].get("preprocessing") or (
            None if alphabet.lossless else alphabet.kind),
        "num_params": int(card.get("num_params") or _count_params(arch)),
        "float_params_bytes": os.path.getsize(params) if os.path.exists(params)
        else None,
        "exact_bytes": os.path.getsize(os.path.join(model_dir, modeldir.EXACT_NAME)),
        "exact_xz_bytes": len(lzma.compress(_packed_exact(numpy_model), preset=_XZ)),
    }


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


def _seven_zip():
    for name in ("7z", "7za", "7zz"):
        if shutil.which(name):
            return name
    return None


def _run_classical(key, how, data: bytes):
    """Compressed size of ``data``; raise FileNotFoundError when not installed."""
    if callable(how):
        return len(how(data))
    if key == "ppmd":
        program = _seven_zip()
        if program is None:
            raise FileNotFoundError(how[0])
        with tempfile.TemporaryDirectory(prefix="rnnzip-eval-") as tmp:
            with open(os.path.join(tmp, "data"), "wb") as f:
                f.write(data)
            subprocess.run([program] + how[1:] + ["out.7z", "data"], cwd=tmp,
                           check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
            return os.path.getsize(os.path.join(tmp, "out.7z"))
    if shutil.which(how[0]) is None:
        raise FileNotFoundError(how[0])
    done = subprocess.run(how, input=data, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    return len(done.stdout)


def _classical(data: bytes, n: int) -> dict:
    out = {}
    for key, setting, how in _CLASSICAL:
        entry = {"setting": setting, "bytes": None, "bits": None, "bpc": None,
                 "seconds": None, "note": None}
        t0 = time.perf_counter()
        try:
            size = _run_classical(key, how, data)
        except FileNotFoundError:
            entry["note"] = "not installed"
        except subprocess.CalledProcessError as exc:
            why = exc.stderr.decode(errors="replace").strip().splitlines()
            entry["note"] = f"failed: {why[-1] if why else exc.returncode}"
        else:
            entry.update(bytes=size, bits=8 * size, bpc=_rate(8 * size, n),
                         seconds=round(time.perf_counter() - t0, 4))
        out[key] = entry
    return out


def _float_entry(bits, n):
    if bits is None or not n:
        return None
    nats = bits * math.log(2) / n
    return {"bits": bits, "cross_entropy": nats, "perplexity": math.exp(nats),
            "bpc": bits / n}


def _exact_entry(bits, n, float_entry):
    bpc = _rate(bits, n)
    loss = None
    if float_entry and bpc is not None and float_entry["bpc"] > 0:
        loss = bpc / float_entry["bpc"] - 1
    return {"bits": bits, "bpc": bpc, "quantization_loss": loss}


_PARTS = ("model", "cold_start", "coder_overhead", "headers")


def _archive_entry(info, frames, cold_bits, measured_on, estimated, seconds):
    n = info.original_size
    ideal = info.ideal_bits
    parts = {"model": ideal - cold_bits, "cold_start": cold_bits,
             "coder_overhead": 8 * info.coder_bytes - ideal,
             "headers": 8 * info.header_bytes}
    return {
        "bytes": info.archive_size,
        "bits": 8 * info.archive_size,
        "bpc": _rate(8 * info.archive_size, n),
        "frames": len(frames),
        "segments": sum(len(f[4]) for f in frames),
        "parts": {k: {"bits": v, "bpc": _rate(v, n)} for k, v in parts.items()},
        "cold_start_measured_on": measured_on,
        "cold_start_estimated": estimated,
        "seconds": round(seconds, 4),
    }


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
    frames = _frames(n, ctx["num_segments"])
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
    exact_bits = info.ideal_bits if info is not None else float(detail[0].sum())

    archive = with_model = None
    if info is not None:
        t0 = time.perf_counter()
        frame_bits = [f.ideal_bits for f in info.frames]
        cold, measured_on, estimated = _cold_start(
            engine, symbols, frames, frame_bits, None if detail is None else detail[0])
        say(f"{path}: cold starts in {time.perf_counter() - t0:.1f} s")
        archive = _archive_entry(info, frames, cold, measured_on, estimated, seconds)
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


def _sum(values):
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def _total(entries, model_bits_cost) -> dict:
    """The files together; the model is sent once."""
    n = sum(e["symbols"] for e in entries)
    # an empty file has no float figures and costs nothing
    float_bits = _sum(e["float"] and e["float"]["bits"] for e in entries
                      if e["symbols"])
    float_entry = _float_entry(float_bits, n)
    archive = with_model = None
    if all(e["archive"] for e in entries):
        archive = {"bytes": sum(e["archive"]["bytes"] for e in entries)}
        archive["bits"] = 8 * archive["bytes"]
        archive["bpc"] = _rate(archive["bits"], n)
        for key in ("frames", "segments"):
            archive[key] = sum(e["archive"][key] for e in entries)
        archive["parts"] = {}
        for key in _PARTS:
            bits = sum(e["archive"]["parts"][key]["bits"] for e in entries)
            archive["parts"][key] = {"bits": bits, "bpc": _rate(bits, n)}
        archive["cold_start_measured_on"] = sum(e["archive"]["cold_start_measured_on"]
                                                for e in entries)
        archive["cold_start_estimated"] = any(e["archive"]["cold_start_estimated"]
                                              for e in entries)
        archive["seconds"] = round(sum(e["archive"]["seconds"] for e in entries), 4)
        bits = archive["bits"] + model_bits_cost
        with_model = {"bits": bits, "bpc": _rate(bits, n)}
    classical = {}
    for key, setting, _ in _CLASSICAL:
        if not all(key in e["classical"] for e in entries):
            continue
        size = _sum(e["classical"][key]["bytes"] for e in entries)
        notes = {e["classical"][key]["note"] for e in entries} - {None}
        seconds = _sum(e["classical"][key]["seconds"] for e in entries)
        classical[key] = {
            "setting": setting, "bytes": size,
            "bits": 8 * size if size is not None else None,
            "bpc": _rate(8 * size, n) if size is not None else None,
            "seconds": seconds if seconds is None else round(seconds, 4),
            "note": "; ".join(sorted(notes)) or None}
    return {
        "path": None,
        "bytes": sum(e["bytes"] for e in entries),
        "symbols": n,
        "preprocessed": any(e["preprocessed"] for e in entries),
        "float": float_entry,
        "exact": _exact_entry(sum(e["exact"]["bits"] for e in entries), n,
                              float_entry),
        "archive": archive,
        "with_model": with_model,
        "classical": classical,
    }


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
    :class:`FileDetail` per file for :func:`write_plot` and
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


# -- the table ---------------------------------------------------------------

def _f(value, fmt="{:.4f}"):
    return "-" if value is None else fmt.format(value)


def _file_lines(entry, model) -> list:
    n = entry["symbols"]
    unit = "preprocessed characters" if entry["preprocessed"] else "bytes"
    name = entry["path"] if entry["path"] is not None else "total"
    lines = [f"{name}: {entry['bytes']:,} bytes"
             + (f", {n:,} {unit} evaluated" if entry["preprocessed"] else "")]
    row = "  {:<28} {:>14} {:>11}  {}".format
    lines.append(row("", "bits", "bpc", ""))
    fl = entry["float"]
    if fl:
        lines.append(row("float model", f"{fl['bits']:,.0f}", _f(fl["bpc"]),
                         f"perplexity {fl['perplexity']:.4f}, cross-entropy "
                         f"{fl['cross_entropy']:.4f} nats"))
    else:
        lines.append(row("float model", "-", "-",
                         "nothing to measure" if not n else "not measured"))
    ex = entry["exact"]
    loss = ex["quantization_loss"]
    lines.append(row("exact coding model", f"{ex['bits']:,.0f}", _f(ex["bpc"]),
                     "" if loss is None else
                     f"quantization loss {100 * loss:+.2f}%"))
    ar = entry["archive"]
    if ar:
        est = "estimated" if ar["cold_start_estimated"] else ""
        lines.append(row("archive", f"{ar['bits']:,}", _f(ar["bpc"]),
                         f"{ar['bytes']:,} bytes, {ar['frames']} frame(s), "
                         f"{ar['segments']} segment(s)"))
        for label, key, note in (("  model, warm", "model", ""),
                                 ("  cold starts of segments", "cold_start", est),
                                 ("  range coder overhead", "coder_overhead", ""),
                                 ("  headers and checksums", "headers", "")):
            part = ar["parts"][key]
            lines.append(row(label, f"{part['bits']:,.0f}", _f(part["bpc"]), note))
        wm = entry["with_model"]
        lines.append(row("archive + model (xz)", f"{wm['bits']:,.0f}",
                         _f(wm["bpc"]), f"the exact weights, "
                         f"{model['exact_xz_bytes']:,} bytes with xz, sent along"))
    else:
        lines.append(row("archive", "-", "-", "none: the model cannot restore "
                                                "the original bytes"))
    for c in entry["classical"].values():
        if c["bytes"] is None:
            lines.append(row(c["setting"], "-", "-", c["note"] or ""))
        else:
            lines.append(row(c["setting"], f"{c['bits']:,}", _f(c["bpc"]),
                             f"{c['bytes']:,} bytes"))
    return [line.rstrip() for line in lines]


def format_report(report: dict) -> str:
    """The report as the human-readable table ``rnnzip eval`` prints."""
    m = report["model"]
    float_size = (f"{m['float_params_bytes']:,} bytes" if m["float_params_bytes"]
                  is not None else "not present")
    lines = [f"model {m['name']}: {m['cell']} {m['num_layers']}x{m['num_hiddens']}, "
             f"{m['alphabet']} alphabet of {m['vocab_size']}, "
             f"{m['num_params']:,} parameters",
             f"  float parameters {float_size}; exact weights "
             f"{m['exact_bytes']:,} bytes, {m['exact_xz_bytes']:,} with xz -9e"]
    if m["alphabet"] != "bytes":
        lines.append(f"  PREPROCESSED: the text is evaluated after the model's "
                     f"preprocessing ({m['preprocessing']}), not as its bytes")
    lines.append("")
    for entry in report["files"]:
        lines += _file_lines(entry, m) + [""]
    if len(report["files"]) > 1:
        lines += _file_lines(report["total"], m) + [""]
    if report["compressors_not_found"]:
        lines.append("not installed: " + ", ".join(report["compressors_not_found"]))
    for note in report["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip() + "\n"


# -- the plot ----------------------------------------------------------------

PLOT_SUFFIXES = (".png", ".svg")


def default_window(n: int) -> int:
    """Moving-average window of the plot: about 1% of the text, 1 to 1,000."""
    return max(1, min(1000, n // 100))


def _moving_average(bits, window):
    csum = np.concatenate([[0.0], np.cumsum(bits)])
    avg = (csum[window:] - csum[:-window]) / window
    x = np.arange(len(avg)) + (window - 1) / 2
    step = max(1, len(avg) // 20000)
    return x[::step], avg[::step]


def write_plot(path: str, details, window: int | None = None) -> None:
    """Draw bits per character along each file into ``path`` (PNG or SVG)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in PLOT_SUFFIXES:
        raise ValueError(f"plot file {path!r} must end in .png or .svg")
    try:
        import matplotlib
    except ImportError:
        raise RnnzipError("--plot needs matplotlib: pip install 'rnnzip[plot]'") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(len(details), 1, squeeze=False,
                             figsize=(10, 3.2 * len(details) + 0.6))
    for ax, d in zip(axes[:, 0], details):
        n = len(d.bits)
        unit = "preprocessed character" if d.entry.get("preprocessed") else "byte"
        name = os.path.basename(d.path) if d.path != "-" else "standard input"
        ax.set_title(f"{name}: bits per {unit}, exact coding model", fontsize=10)
        ax.set_xlabel(f"{unit} position")
        ax.set_ylabel("bits")
        ax.grid(True, alpha=0.3)
        if n == 0:
            ax.text(0.5, 0.5, "empty file", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        w = min(window or default_window(n), n)
        x, avg = _moving_average(d.bits, w)
        ax.plot(x, avg, lw=0.9, color="C0",
                label=f"moving average, window {w:,}" if w > 1 else "per character")
        mean = float(d.bits.mean())
        ax.axhline(mean, color="C3", lw=1.4, label=f"mean {mean:.3f} bpc")
        looks = zip(("C1", "C2", "C4", "C5", "C6", "C8"),
                    ((0, (5, 2)), (0, (1, 1)), (0, (3, 1, 1, 1)), (0, (6, 3)),
                     (0, (2, 2)), (0, (4, 1, 1, 1, 1, 1))))
        for c, (colour, style) in zip(d.entry.get("classical", {}).values(), looks):
            if c["bpc"] is not None:
                ax.axhline(c["bpc"], color=colour, lw=1, ls=style,
                           label=f"{c['setting']} {c['bpc']:.3f}")
        ax.set_xlim(0, max(n - 1, 1))
        ax.xaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylim(bottom=0)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
                  frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
