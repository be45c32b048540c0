"""Measure the coder: archive bpc against the exact and float models, speed.

    python -m benchmarks.coding [--model NAME] [--runs 3] [--json out.json] FILE...

With no FILE, The Time Machine and alice29.txt from ../shared/corpora are
used where that folder exists. For each file: the float Gluon model's bpc on
the same segments the codec uses, the exact model's ideal bpc, the archive's
bpc, the coder overhead (archive bits over the exact model's ideal bits,
headers included), and compress / decompress throughput (median of --runs) for
the numpy and MXNet-cpu back-ends, which must write identical archives.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from rnnzip.codec import choose_segments
from rnnzip.container import FRAME_SIZE, read_archive, write_archive
from rnnzip.engines import load_engine
from rnnzip.modeldir import find_model

HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA = os.path.join(HERE, "..", "..", "shared", "corpora")
DEFAULT_FILES = [os.path.join(CORPORA, "timemachine.txt"),
                 os.path.join(CORPORA, "bench", "alice29.txt")]


def _float_bpc(model_name: str, data: bytes) -> float:
    from rnnzip.quantize import float_bits
    from rnnzip.train import load_float_model

    model, _card, _alphabet, ctx = load_float_model(find_model(model_name), "cpu")
    symbols = np.frombuffer(data, np.uint8).astype(np.int64)
    bits = 0.0
    for i in range(0, len(symbols), FRAME_SIZE):
        frame = symbols[i:i + FRAME_SIZE]
        bits += float_bits(model, ctx, frame, choose_segments(len(frame)))
    return bits / len(symbols)


def _timed(fn, runs):
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure(path: str, model: str | None, runs: int, mxnet_runs: int) -> dict:
    data = open(path, "rb").read()
    n = len(data)
    row = {"file": os.path.basename(path), "bytes": n}
    archives = {}
    for backend, reps in (("numpy", runs), ("mxnet", mxnet_runs)):
        if reps == 0:
            continue
        engine, name = load_engine(model, backend, "cpu")

        def comp():
            out = io.BytesIO()
            info = write_archive(engine, name, io.BytesIO(data), out)
            return out.getvalue(), info

        t_c, (archive, info) = _timed(comp, reps)

        def decomp():
            out = io.BytesIO()
            read_archive(io.BytesIO(archive), out, lambda *_: engine)
            return out.getvalue()

        t_d, restored = _timed(decomp, reps)
        assert restored == data, f"round trip failed for {path} on {backend}"
        archives[backend] = archive
        row[f"{backend}_compress_kBps"] = n / t_c / 1000
        row[f"{backend}_decompress_kBps"] = n / t_d / 1000
        if backend == "numpy":
            row["model"] = name
            row["archive_bytes"] = len(archive)
            row["archive_bpc"] = 8 * len(archive) / n
            row["exact_bpc"] = info.ideal_bits / n
            row["coder_overhead"] = 8 * len(archive) / info.ideal_bits - 1
            row["segments"] = [f.segments for f in info.frames]
    if len(archives) == 2:
        row["backends_identical"] = archives["numpy"] == archives["mxnet"]
    row["float_bpc"] = _float_bpc(row["model"], data)
    row["quantization_loss"] = row["exact_bpc"] / row["float_bpc"] - 1
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--model", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mxnet-runs", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    files = args.files or [f for f in DEFAULT_FILES if os.path.exists(f)]
    if not files:
        sys.exit("no input files: name some, or provide ../shared/corpora")
    rows = [measure(f, args.model, args.runs, args.mxnet_runs) for f in files]
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}")
    print("| file | model | float bpc | exact bpc | archive bpc | coder overhead | "
          "numpy comp KB/s | numpy decomp KB/s | mxnet comp KB/s | "
          "mxnet decomp KB/s | identical |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['file']} | {r['model']} | {r['float_bpc']:.4f} | "
              f"{r['exact_bpc']:.4f} | {r['archive_bpc']:.4f} | "
              f"{100 * r['coder_overhead']:.3f}% | "
              f"{r['numpy_compress_kBps']:.1f} | {r['numpy_decompress_kBps']:.1f} | "
              f"{r.get('mxnet_compress_kBps', float('nan')):.1f} | "
              f"{r.get('mxnet_decompress_kBps', float('nan')):.1f} | "
              f"{r.get('backends_identical', '-')} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
