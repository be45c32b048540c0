"""The entries of the report ``rnnzip eval`` writes, for :mod:`rnnzip.evaluate`.

Each entry is a JSON-ready dict: the model with its own cost (the exact
weights compressed with xz -9e), the float, exact and archive figures of a
file, the classical compressors on the same bytes, and the total over all
files, in which the model is paid once.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import math
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np

from . import modeldir

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


def _rate(bits, n):
    return None if bits is None or not n else bits / n


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


_PARTS = ("model", "cold_start", "mixing", "coder_overhead", "headers")


def _archive_entry(info, frames, cold_bits, measured_on, estimated, seconds,
                   network_bits):
    """The archive and its parts; ``network_bits``: the exact network's ideal
    bits on the archive's layout, before any context mixing."""
    n = info.original_size
    ideal = info.ideal_bits
    parts = {"model": network_bits - cold_bits, "cold_start": cold_bits,
             "mixing": ideal - network_bits,
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
        "mix": info.mix,
        "mixer": info.mixer.name if info.mix else None,
        "seconds": round(seconds, 4),
    }


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
