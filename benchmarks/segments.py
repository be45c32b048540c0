"""Cold starts against speed: how many parallel segments a frame should have.

    python -m benchmarks.segments [--model NAME] [--counts 1,4,16,...] FILE

Each segment starts from the zero state and pays for it in bits; more
segments make each model call wider and faster. For every segment count this
prints the archive's bpc, the extra bits over the best count, and compress /
decompress throughput, so the defaults in codec.py rest on measurements.
"""

from __future__ import annotations

import argparse
import io
import os
import time

from rnnzip.container import read_archive, write_archive
from rnnzip.engines import load_engine

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "shared", "corpora", "bench", "alice29.txt")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=CORPUS)
    ap.add_argument("--model", default=None)
    ap.add_argument("--counts", default="1,4,8,16,37,64,128,256,512")
    args = ap.parse_args(argv)
    data = open(args.file, "rb").read()
    engine, name = load_engine(args.model, "numpy")
    rows = []
    for count in [int(c) for c in args.counts.split(",")]:
        out = io.BytesIO()
        t0 = time.perf_counter()
        info = write_archive(engine, name, io.BytesIO(data), out, num_segments=count)
        t_c = time.perf_counter() - t0
        restored = io.BytesIO()
        t0 = time.perf_counter()
        read_archive(io.BytesIO(out.getvalue()), restored, lambda *_: engine)
        t_d = time.perf_counter() - t0
        assert restored.getvalue() == data
        rows.append((count, len(data) // count, 8 * len(out.getvalue()) / len(data),
                     info.ideal_bits / len(data), len(data) / t_c / 1e3,
                     len(data) / t_d / 1e3))
    best = min(r[2] for r in rows)
    print(f"{os.path.basename(args.file)}, {len(data):,} bytes, model {name}")
    print("| segments | bytes each | archive bpc | vs best | ideal bpc | "
          "compress KB/s | decompress KB/s |")
    print("|---|---|---|---|---|---|---|")
    for count, each, bpc, ideal, kc, kd in rows:
        print(f"| {count} | {each:,} | {bpc:.4f} | +{100 * (bpc / best - 1):.2f}% | "
              f"{ideal:.4f} | {kc:.1f} | {kd:.1f} |")


if __name__ == "__main__":
    main()
