"""Decoding speed of the exact numpy engine by architecture.

Speed depends on the shape of a model, not on what it has learnt, so this
uses random weights quantized like a trained model. It times
``codec.decode_frame`` (the model, the head and the range decoder; no process
start, no container) on one frame of a text and prints KB/s per architecture.

    python -m benchmarks.engine_speed FILE [--arch gru:1:256 ...] [--repeat 3]

Run it on a quiet machine: it measures whatever the CPUs have to spare.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnnzip import codec, quantize

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
DEFAULT_ARCHS = ["rnn:1:256", "gru:1:128", "gru:1:160", "gru:1:192", "gru:1:256",
                 "lstm:1:192", "gru:1:512"]


def random_engine(cell: str, layers: int, hiddens: int, seed: int = 0):
    """An exact engine with random weights of the given shape."""
    rng = np.random.default_rng(seed)
    G, H, V = GATES[cell], hiddens, 256
    params = {}
    for k in range(layers):
        inputs = V if k == 0 else H
        params[f"l{k}_i2h_weight"] = rng.normal(0, 0.1, (G * H, inputs))
        params[f"l{k}_h2h_weight"] = rng.normal(0, 0.1, (G * H, H))
        params[f"l{k}_i2h_bias"] = rng.normal(0, 0.1, G * H)
        params[f"l{k}_h2h_bias"] = rng.normal(0, 0.1, G * H)
    params["dense_weight"] = rng.normal(0, 0.3, (V, H))
    params["dense_bias"] = rng.normal(0, 0.3, V)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    return quantize.quantize_params(params, cell, layers, hiddens, V, name="speed")


def decode_speed(engine, data: bytes, repeat: int) -> float:
    """Best-of-``repeat`` decoding speed of one frame, bytes per second."""
    segments = codec.choose_segments(len(data))
    seg_len, lengths, words, _ = codec.encode_frame(engine, data, segments)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = codec.decode_frame(engine, words, seg_len, lengths)
        best = min(best, time.perf_counter() - t)
    assert out == data, "round trip failed"
    return len(data) / best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--arch", action="append", help="cell:layers:hiddens")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=1 << 20, help="bytes of FILE")
    args = ap.parse_args(argv)
    with open(args.file, "rb") as f:
        data = f.read(args.limit)
    print(f"{args.file}: {len(data):,} bytes, "
          f"{codec.choose_segments(len(data))} segments")
    for arch in args.arch or DEFAULT_ARCHS:
        cell, layers, hiddens = arch.split(":")
        engine = random_engine(cell, int(layers), int(hiddens))
        speed = decode_speed(engine, data, args.repeat)
        print(f"{arch:12s} {speed / 1e3:8.1f} KB/s", flush=True)


if __name__ == "__main__":
    main()
