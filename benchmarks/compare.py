"""Compare rnnzip with the compressors users would pick instead, side by side.

    python -m benchmarks.compare [--corpus DIR]... [FILE...] [--out DIR]
        [--quick] [--large] [--runs N] [--models NAME,...] [--contenders NAME,...]

Contenders: every installed rnnzip model with a byte alphabet, each through
the real ``rnnzip`` command line, and gzip -9, bzip2 -9, xz -9e, zstd --ultra
-22, brotli -q 11 and 7-Zip PPMd (order 8, 256 MiB) through their own
programs. A program that is not installed is reported as missing, never
dropped; a model with the d2l alphabet is reported as skipped (it cannot code
arbitrary bytes). On Debian or Ubuntu the programs come from
``apt-get install gzip bzip2 xz-utils zstd brotli p7zip-full``.

Files: every file of each --corpus DIR and each FILE named. With neither,
the Canterbury and Calgary files of ../shared/corpora/bench plus
timemachine.txt and tinyshakespeare.txt, when that folder exists. The
Canterbury large files (bible.txt, world192.txt, E.coli: 11 MB) are left
out of every directory unless --large is given, because rnnzip codes tens to
hundreds of KB/s per model. --quick runs each contender once on two files
(alice29.txt and paper1 by default, the two smallest of a --corpus DIR) as a
smoke test of a minute or two; the full run is for the README.

For each file and contender: compressed bytes, bits per byte, compress and
decompress wall time and throughput of the original bytes (the median of
--runs runs, interleaved between contenders so that machine drift hits all
alike), CPU time, the peak resident memory of the process, and a check that
the decompressed file is byte-identical to the input. A failed round trip or
a failing command is reported loudly and makes the exit status 1. Each run is
a separate process, so start-up (rnnzip loading Python, numpy and its model)
is part of its time. Peak memory comes from the process's own rusage, taken
by a small Python wrapper; values at that wrapper's floor (about 8 MiB, kept
in results.json) mean "at most this".

Writes to --out: results.csv and results.json (every measurement, the
machine and every version), results.md (a table per file, a summary table
and published figures of cmix v19 and ts_zip, marked as such) and chart.png
(bits per byte against decompression speed, one point per contender over
the text files; needs matplotlib).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import filecmp
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA = os.path.join(HERE, "..", "..", "shared", "corpora")
CANTERBURY = ("alice29.txt", "asyoulik.txt", "cp.html", "fields.c", "grammar.lsp",
              "kennedy.xls", "lcet10.txt", "plrabn12.txt", "ptt5", "sum", "xargs.1")
CALGARY = ("book1", "book2", "paper1", "news")
LARGE = ("bible.txt", "world192.txt", "E.coli")
EXTRA = ("timemachine.txt", "tinyshakespeare.txt")
QUICK = ("alice29.txt", "paper1")

# name: (label, programs tried in order, compress args, decompress args,
#        archive suffix, version args, Debian package). "{in}" and "{out}" stand
# for the input and output files; without them the command reads standard
# input and writes standard output.
CLASSICAL = {
    "gzip": ("gzip -9", ("gzip",), ["-9", "-c"], ["-d", "-c"], ".gz",
             ["--version"], "gzip"),
    "bzip2": ("bzip2 -9", ("bzip2",), ["-9", "-c"], ["-d", "-c"], ".bz2",
              ["--help"], "bzip2"),
    "xz": ("xz -9e", ("xz",), ["-9e", "-T1", "-c"], ["-d", "-c"], ".xz",
           ["--version"], "xz-utils"),
    "zstd": ("zstd --ultra -22", ("zstd",), ["--ultra", "-22", "-q", "-c"],
             ["-d", "-q", "-c"], ".zst", ["--version"], "zstd"),
    "brotli": ("brotli -q 11", ("brotli",), ["-q", "11", "-c"], ["-d", "-c"], ".br",
               ["--version"], "brotli"),
    "ppmd": ("7-Zip PPMd o8", ("7z", "7zz", "7za"),
             ["a", "-t7z", "-m0=PPMd:o=8:mem=256m", "-mx=9", "-si", "-bd", "-bso0",
              "-bsp0", "-y", "{out}"],
             ["e", "-so", "-bd", "{in}"], ".7z", [], "p7zip-full"),
}

# (label, file, its size, bits per byte, source): figures from the authors,
# shown beside ours for the same files, never measured here.
PUBLISHED = [
    ("cmix v19", "alice29.txt", 152089, 1.645, "cmix author, byronknoll.com/cmix"),
    ("cmix v19", "book1", 768771, 1.816, "cmix author, byronknoll.com/cmix"),
    ("ts_zip, 169M model, GPU", "alice29.txt", 152089, 1.142,
     "ts_zip author, bellard.org/ts_zip"),
    ("ts_zip, 169M model, GPU", "book1", 768771, 1.431,
     "ts_zip author, bellard.org/ts_zip"),
]

FIELDS = ["file", "bytes", "text", "contender", "kind", "status", "compressed_bytes",
          "bits_per_byte", "compress_s", "decompress_s", "compress_MBps",
          "decompress_MBps", "compress_cpu_s", "decompress_cpu_s",
          "compress_peak_MiB", "decompress_peak_MiB", "roundtrip_ok", "runs",
          "compress_runs_s", "decompress_runs_s", "version", "command", "note"]

# Runs one command, times it and reports its own rusage: a child spawned by
# this small process, not by the benchmark, whose memory the kernel would
# otherwise count as the child's peak.
_WRAPPER = """\
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
_, status, ru = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(report, "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {seconds!r} {ru.ru_maxrss} "
            f"{ru.ru_utime + ru.ru_stime!r}")
"""


@dataclass
class Contender:
    name: str
    label: str
    kind: str
    compress: list = field(default_factory=list)
    decompress: list = field(default_factory=list)
    suffix: str = ""
    version: str = ""
    status: str = "ready"
    note: str = ""


class _Failed(Exception):
    pass


def _first_line(argv: list) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        line = line.strip(" *")
        if line:
            return line.split(" : ")[0][:80]
    return ""


def classical_contenders(names: list) -> list:
    """Build the classical contenders named, missing ones marked as such."""
    out = []
    for name in names:
        label, programs, comp, decomp, suffix, version_args, package = CLASSICAL[name]
        path = next(filter(None, map(shutil.which, programs)), None)
        if path is None:
            out.append(Contender(name, label, "classical", status="missing",
                                 note=f"{' / '.join(programs)} not found on PATH "
                                      f"(Debian/Ubuntu package {package})"))
            continue
        out.append(Contender(name, label, "classical", [path, *comp],
                             [path, *decomp], suffix,
                             _first_line([path, *version_args])))
    return out


def _rnnzip_command() -> list:
    script = os.path.join(os.path.dirname(sys.executable), "rnnzip")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "rnnzip.cli"]


def rnnzip_contenders(names: list | None, backend: str, device: str) -> list:
    """Build a contender per rnnzip model: all installed ones, or those named."""
    from rnnzip import __version__
    from rnnzip.errors import RnnzipError
    from rnnzip.modeldir import list_models, read_card

    installed = dict(list_models())
    command = _rnnzip_command()
    options = ["--backend", backend, "--device", device]
    out = []
    for name in sorted(installed) if names is None else names:
        c = Contender(name, f"rnnzip {name}", "rnnzip", suffix=".rnz")
        out.append(c)
        if name not in installed:
            c.status = "missing"
            c.note = "model not installed; `rnnzip models` lists the installed ones"
            continue
        try:
            card = read_card(installed[name])
        except RnnzipError as exc:
            c.status, c.note = "skipped", f"unreadable model card: {exc}"
            continue
        kind = card["alphabet"]["kind"]
        if kind != "bytes":
            c.status = "skipped"
            c.note = f"alphabet {kind!r} cannot code arbitrary bytes (--preset d2l)"
            continue
        arch = card["architecture"]
        identity = card.get("exact", {}).get("identity", "")
        c.version = (f"rnnzip {__version__}, {arch['cell']} {arch['num_layers']}x"
                     f"{arch['num_hiddens']}, model {identity[:12]}")
        c.compress = [*command, "compress", "-c", "-m", name, *options, "{in}"]
        c.decompress = [*command, "decompress", "-c", *options, "{in}"]
    return out


def run_command(argv: list, src: str, dst: str, work: str) -> tuple:
    """Run ARGV from SRC to DST once; return (seconds, peak KiB, CPU seconds)."""
    report, errors = os.path.join(work, "report"), os.path.join(work, "stderr")
    named_in, named_out = "{in}" in argv, "{out}" in argv
    argv = [src if a == "{in}" else dst if a == "{out}" else a for a in argv]
    wrapper = [sys.executable, "-I", "-S", "-c", _WRAPPER, report, *argv]
    with open(os.devnull if named_in else src, "rb") as stdin, \
            open(os.devnull if named_out else dst, "wb") as stdout, \
            open(errors, "wb") as stderr:
        done = subprocess.run(wrapper, stdin=stdin, stdout=stdout, stderr=stderr)
    with open(errors, "rb") as f:
        tail = f.read()[-600:].decode("utf-8", "replace").strip()
    try:
        with open(report) as f:
            code, seconds, peak, cpu = f.read().split()
        os.remove(report)
    except (OSError, ValueError):
        raise _Failed(f"could not run {argv[0]} (wrapper exit {done.returncode}): "
                      f"{tail}") from None
    if int(code) != 0:
        raise _Failed(f"{os.path.basename(argv[0])} exited with {code}: {tail}")
    peak = int(peak) / 1024 if sys.platform == "darwin" else int(peak)
    return float(seconds), peak, float(cpu)


def _corpus_files(directory: str, large: bool) -> list:
    names = sorted(n for n in os.listdir(directory) if not n.startswith("."))
    return [os.path.join(directory, n) for n in names
            if os.path.isfile(os.path.join(directory, n)) and (large or n not in LARGE)]


def select_files(files: list, corpora: list, large: bool, quick: bool) -> list:
    """The files to measure, in order; see the module's docstring."""
    if files:
        return list(files)
    if corpora:
        chosen = [p for d in corpora for p in _corpus_files(d, large)]
        return sorted(chosen, key=os.path.getsize)[:2] if quick else chosen
    bench = os.path.join(CORPORA, "bench")
    if not os.path.isdir(bench):
        return []
    names = QUICK if quick else CANTERBURY + CALGARY + (LARGE if large else ())
    chosen = [os.path.join(bench, n) for n in names]
    if not quick:
        chosen += [os.path.join(CORPORA, n) for n in EXTRA]
    return [os.path.normpath(p) for p in chosen if os.path.isfile(p)]


def is_text(path: str) -> bool:
    """Whether fewer than 1 in 1000 of the first MiB are control bytes."""
    with open(path, "rb") as f:
        sample = f.read(1 << 20)
    control = sum(sample.count(b) for b in [*range(9), *range(14, 32), 127])
    return len(sample) > 0 and control * 1000 < len(sample)


def _measure_once(c: Contender, i: int, src: str, work: str) -> dict:
    archive = os.path.join(work, f"archive-{i}{c.suffix}")
    restored = os.path.join(work, f"restored-{i}")
    for path in (archive, restored):
        if os.path.exists(path):
            os.remove(path)
    comp = run_command(c.compress, src, archive, work)
    size = os.path.getsize(archive)
    decomp = run_command(c.decompress, archive, restored, work)
    ok = filecmp.cmp(src, restored, shallow=False)
    os.remove(archive)
    os.remove(restored)
    return {"size": size, "compress": comp, "decompress": decomp, "ok": ok}


def _row(path: str, c: Contender, text: bool) -> dict:
    row = dict.fromkeys(FIELDS)
    row.update(file=os.path.basename(path), bytes=os.path.getsize(path), text=text,
               contender=c.label, kind=c.kind, status=c.status, version=c.version,
               command=" ".join(os.path.basename(a) if a.startswith("/") else a
                                for a in c.compress) or None,
               note=c.note or None)
    return row


def _finish(row: dict, runs: list) -> None:
    """Fill ROW from a list of single runs (median times, max peaks)."""
    n = row["bytes"]
    row["runs"] = len(runs)
    row["compressed_bytes"] = runs[0]["size"]
    row["bits_per_byte"] = 8 * runs[0]["size"] / n if n else None
    if len({r["size"] for r in runs}) > 1:
        row["note"] = "archive size varied between runs"
    for step in ("compress", "decompress"):
        times = [r[step][0] for r in runs]
        row[f"{step}_runs_s"] = times
        row[f"{step}_s"] = statistics.median(times)
        row[f"{step}_MBps"] = n / 1e6 / max(row[f"{step}_s"], 1e-9)
        row[f"{step}_cpu_s"] = statistics.median(r[step][2] for r in runs)
        row[f"{step}_peak_MiB"] = max(r[step][1] for r in runs) / 1024
    row["roundtrip_ok"] = all(r["ok"] for r in runs)
    row["status"] = "measured" if row["roundtrip_ok"] else "failed"


def measure_all(files: list, contenders: list, runs: int, log) -> list:
    """Measure every ready contender on every file, interleaved over runs."""
    texts = {p: is_text(p) for p in files}
    rows = {(p, c.label): _row(p, c, texts[p]) for p in files for c in contenders}
    done = {key: [] for key in rows}
    with tempfile.TemporaryDirectory(prefix="rnnzip-compare-") as work:
        for rep in range(runs):
            for path in files:
                for i, c in enumerate(contenders):
                    row = rows[path, c.label]
                    if c.status != "ready" or row["status"] == "failed":
                        continue
                    try:
                        one = _measure_once(c, i, path, work)
                    except _Failed as exc:
                        row["status"], row["note"] = "failed", str(exc)
                        log(f"FAILED: {c.label} on {path}: {exc}")
                        continue
                    done[path, c.label].append(one)
                    n = row["bytes"] or 1
                    log(f"run {rep + 1}/{runs}  {row['file']:<20} {c.label:<24} "
                        f"{8 * one['size'] / n:6.3f} bpb  comp "
                        f"{n / 1e6 / one['compress'][0]:9.3f} MB/s  decomp "
                        f"{n / 1e6 / one['decompress'][0]:9.3f} MB/s")
                    if not one["ok"]:
                        row["status"] = "failed"
                        log(f"ROUND TRIP FAILED: {c.label} did not restore {path}")
    for key, row in rows.items():
        if done[key]:
            failed, note = row["status"] == "failed", row["note"]
            _finish(row, done[key])
            if failed:
                row["status"], row["note"] = "failed", note
    return list(rows.values())


def published_rows(files: list) -> list:
    """Rows of published figures for the files that are the canonical ones."""
    sizes = {os.path.basename(p): os.path.getsize(p) for p in files}
    rows = []
    for label, name, size, bpb, source in PUBLISHED:
        if sizes.get(name) == size:
            row = dict.fromkeys(FIELDS)
            row.update(file=name, bytes=size, text=True, contender=label,
                       kind="published", status="published", bits_per_byte=bpb,
                       note=f"published by {source}; not measured here")
            rows.append(row)
    return rows


def _geomean(values: list) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def summarize(rows: list) -> tuple:
    """Per contender: totals over the text files (all files if none is text)."""
    measured = [r for r in rows if r["kind"] != "published"]
    scope = "text" if any(r["text"] for r in measured) else "all"
    files = {r["file"] for r in measured if r["text"] or scope == "all"}
    summary = []
    for label in dict.fromkeys(r["contender"] for r in measured):
        mine = [r for r in measured if r["contender"] == label]
        good = [r for r in mine if r["status"] == "measured" and r["file"] in files]
        entry = {"contender": label, "kind": mine[0]["kind"], "files": len(good),
                 "status": mine[0]["status"] if not good else "measured",
                 "note": mine[0]["note"]}
        if len(good) == len(files) and good:
            total = sum(r["bytes"] for r in good)
            everything = [r for r in mine if r["status"] == "measured"]
            entry.update(
                bits_per_byte=8 * sum(r["compressed_bytes"] for r in good) / total,
                all_files_bits_per_byte=8 * sum(r["compressed_bytes"]
                                                for r in everything)
                / sum(r["bytes"] for r in everything),
                compress_MBps=_geomean([r["compress_MBps"] for r in good]),
                decompress_MBps=_geomean([r["decompress_MBps"] for r in good]),
                compress_peak_MiB=max(r["compress_peak_MiB"] for r in good),
                decompress_peak_MiB=max(r["decompress_peak_MiB"] for r in good))
        elif good or any(r["status"] == "failed" for r in mine):
            entry["status"] = "incomplete"
        summary.append(entry)
    return scope, sorted(files), summary


def machine_info(contenders: list) -> dict:
    """CPU, cores, memory, operating system and every version that matters."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version()}
    for package in ("rnnzip", "mxnet", "numpy", "constriction", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions.update({c.label: c.version or c.status for c in contenders})
    info = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"), "versions": versions}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = os.getloadavg()[0]
    true = shutil.which("true")
    if true:
        with tempfile.TemporaryDirectory() as work:
            src = os.path.join(work, "empty")
            open(src, "wb").close()
            info["memory_floor_MiB"] = run_command([true], src, os.devnull, work)[1] / 1024
    return info
