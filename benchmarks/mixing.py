"""Context mixing profiles against speed, measured on held-out training text.

    python -m benchmarks.mixing [--model NAME] [--profiles none,full,lean]
        [--min-segments 4096,...] [--corpus DIR] [--speed-file FILE]

The mixer's constants must not be tuned on the benchmark files, so this codes
held-out text of the training corpus instead: the last 3% of the corpus, as
``rnnzip train --valid-frac 0.03`` holds it out, in pieces of 300,000 bytes.
For every segment size (the model card's ``coding.min_segment``) and profile
it prints the bits an ideal coder spends (the network's exact frequencies,
mixed or not; for a profile that adapts the network's head, the seconds
include the network's), then the throughput of the real encoder and decoder on
``--speed-file`` (speed only: its bits are not reported, so nothing is chosen
on them). The network's frequencies of a piece are computed once per segment
size and shared by the profiles.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from rnnzip import codec, mixer
from rnnzip.data import read_corpus
from rnnzip.engines import load_engine

HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA = os.path.join(HERE, "..", "..", "shared", "corpora")
PIECE = 300_000


def held_out_pieces(corpus: str, frac: float = 0.03, pieces: int = 3) -> list:
    """The first ``pieces`` pieces of ``PIECE`` bytes of the corpus's held-out tail."""
    _, raw = read_corpus([corpus])
    tail = raw[len(raw) - int(len(raw) * frac):]
    return [tail[i * PIECE:(i + 1) * PIECE] for i in range(pieces)]


def network_steps(engine, data: bytes, min_segment: int):
    """The network's frequencies step by step, the targets and the layout."""
    symbols = np.frombuffer(data, np.uint8).astype(np.int64)
    seg_len, lengths = codec.segment_layout(
        len(symbols), codec.choose_segments(len(symbols), min_segment))
    stepwise = codec.frequencies_stepwise(engine, symbols, seg_len, lengths)
    grid, _ = codec._grid(symbols, seg_len, lengths)  # (steps, segments)
    return stepwise, grid, lengths


def ideal_bits(stepwise, grid, lengths, profile) -> tuple[float, float]:
    """Bits of an ideal coder with ``profile`` (None: the network alone), and
    the seconds the mixer took."""
    mix = mixer.ContextMixer(len(lengths), profile) if profile else None
    bits, seconds, row = 0.0, 0.0, 0
    for t in range(grid.shape[0]):
        m = codec._active(t, lengths)
        freqs, targets = stepwise[row:row + m], grid[t, :m]
        row += m
        if mix is not None:
            t0 = time.perf_counter()
            freqs = mix.predict(freqs)
            mix.update(targets)
            seconds += time.perf_counter() - t0
        bits += codec.ideal_bits(targets, freqs)
    return bits, seconds


def adaptive_bits(engine, data: bytes, min_segment: int,
                  profile) -> tuple[float, float]:
    """Bits and seconds of an ideal coder with a profile that adapts the
    network's head: the network runs again, step by step, as the decoder's."""
    symbols = np.frombuffer(data, np.uint8).astype(np.int64)
    seg_len, lengths = codec.segment_layout(
        len(symbols), codec.choose_segments(len(symbols), min_segment))
    t0 = time.perf_counter()
    freqs = codec.frequencies_stepwise(engine, symbols, seg_len, lengths, profile)
    seconds = time.perf_counter() - t0
    grid, _ = codec._grid(symbols, seg_len, lengths)
    targets = np.concatenate([grid[t, :codec._active(t, lengths)]
                              for t in range(seg_len)])
    return codec.ideal_bits(targets, freqs), seconds


def speed(engine, data: bytes, min_segment: int, profile) -> tuple[float, float]:
    """Encoder and decoder throughput in KB/s on ``data`` (one frame)."""
    segments = codec.choose_segments(len(data), min_segment)
    t0 = time.perf_counter()
    seg_len, lengths, words, _ = codec.encode_frame(engine, data, segments, profile)
    t_c = time.perf_counter() - t0
    t0 = time.perf_counter()
    restored = codec.decode_frame(engine, words, seg_len, lengths, profile)
    t_d = time.perf_counter() - t0
    assert restored == data
    return len(data) / t_c / 1e3, len(data) / t_d / 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--profiles", default="none,full,lean")
    ap.add_argument("--min-segments", default=None,
                    help="comma-separated; default: the model card's")
    ap.add_argument("--corpus", default=os.path.join(CORPORA, "train"))
    ap.add_argument("--speed-file", default=os.path.join(CORPORA, "bench",
                                                         "alice29.txt"))
    args = ap.parse_args(argv)
    engine, name = load_engine(args.model, "numpy")
    profiles = [None if p == "none" else mixer.profile(p)
                for p in args.profiles.split(",")]
    sizes = ([int(s) for s in args.min_segments.split(",")] if args.min_segments
             else [engine.min_segment])
    pieces = held_out_pieces(args.corpus)
    with open(args.speed_file, "rb") as f:
        speed_data = f.read()[:1 << 20]
    n = sum(len(p) for p in pieces)
    print(f"model {name}; held-out: {len(pieces)} x {PIECE:,} bytes of "
          f"{args.corpus}; speed on {os.path.basename(args.speed_file)}")
    print("| segment bytes | mixing | held-out bpc | mixer s | compress KB/s | "
          "decompress KB/s |")
    print("|---|---|---:|---:|---:|---:|")
    for size in sizes:
        steps = [network_steps(engine, p, size) for p in pieces]
        for profile in profiles:
            bits = seconds = 0.0
            for piece, (stepwise, grid, lengths) in zip(pieces, steps):
                b, s = (adaptive_bits(engine, piece, size, profile)
                        if profile and profile.adapt else
                        ideal_bits(stepwise, grid, lengths, profile))
                bits, seconds = bits + b, seconds + s
            kc, kd = speed(engine, speed_data, size, profile)
            print(f"| {size:,} | {profile.name if profile else 'none'} | "
                  f"{bits / n:.4f} | {seconds:.2f} | {kc:.0f} | {kd:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
