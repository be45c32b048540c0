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
(alice29.txt and xargs.1 by default, the two smallest of a --corpus DIR) as a
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
QUICK = ("alice29.txt", "xargs.1")

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

# Runs one command and reports its exit status, wall time, peak resident memory
# and CPU time. It is spawned from this small process, not from the benchmark,
# because Linux counts the resident size of the parent at exec time in the
# child's peak (ru_maxrss): from here that floor is about 8 MiB.
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


def _shell(argv: list, src: str, dst: str) -> str:
    """ARGV as a shell line, programs by name, files as SRC and DST."""
    words = [os.path.basename(argv[0])]
    words += [{"{in}": src, "{out}": dst}.get(a, a) for a in argv[1:]]
    words += [] if "{in}" in argv else ["<", src]
    words += [] if "{out}" in argv else [">", dst]
    return " ".join(words)


def _first_line(argv: list) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, check=False)
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
    argv = [{"{in}": src, "{out}": dst}.get(a, a) for a in argv]
    wrapper = [sys.executable, "-I", "-S", "-c", _WRAPPER, report, *argv]
    with open(os.devnull if named_in else src, "rb") as stdin, \
            open(os.devnull if named_out else dst, "wb") as stdout, \
            open(errors, "wb") as stderr:
        done = subprocess.run(wrapper, stdin=stdin, stdout=stdout, stderr=stderr,
                              check=False)
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
    paths = [os.path.join(directory, n) for n in names if large or n not in LARGE]
    return [p for p in paths if os.path.isfile(p) and os.path.getsize(p) > 0]


def select_files(files: list, corpora: list, large: bool, quick: bool) -> list:
    """The files to measure, in order; see the module's docstring."""
    if files:
        return list(dict.fromkeys(files))
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
               command=c.compress and (_shell(c.compress, "FILE", "ARCHIVE") + "; "
                                       + _shell(c.decompress, "ARCHIVE", "FILE")),
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
                    log(f"run {rep + 1}/{runs}  {row['file']:<20} {c.label:<26} "
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


def summarize(rows: list) -> dict:
    """Per contender: totals over the text files (all files if none is text)."""
    measured = [r for r in rows if r["kind"] != "published"]
    scope = "text" if any(r["text"] for r in measured) else "all"
    sizes = {r["file"]: r["bytes"] for r in measured if r["text"] or scope == "all"}
    contenders = []
    for label in dict.fromkeys(r["contender"] for r in measured):
        mine = [r for r in measured if r["contender"] == label]
        good = [r for r in mine if r["status"] == "measured" and r["file"] in sizes]
        entry = {"contender": label, "kind": mine[0]["kind"], "files": len(good),
                 "status": mine[0]["status"], "note": mine[0]["note"]}
        contenders.append(entry)
        if mine[0]["status"] in ("missing", "skipped"):
            continue
        if len(good) < len(sizes):
            entry["status"] = "incomplete"
            continue
        everything = [r for r in mine if r["status"] == "measured"]
        entry.update(
            status="measured",
            bits_per_byte=8 * sum(r["compressed_bytes"] for r in good)
            / sum(sizes.values()),
            all_files_bits_per_byte=8 * sum(r["compressed_bytes"] for r in everything)
            / sum(r["bytes"] for r in everything),
            compress_MBps=_geomean([r["compress_MBps"] for r in good]),
            decompress_MBps=_geomean([r["decompress_MBps"] for r in good]),
            compress_peak_MiB=max(r["compress_peak_MiB"] for r in good),
            decompress_peak_MiB=max(r["decompress_peak_MiB"] for r in good))
    return {"scope": scope, "files": sorted(sizes), "bytes": sum(sizes.values()),
            "contenders": contenders}


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
            peak = run_command([true], src, os.devnull, work)[1]
            info["memory_floor_MiB"] = peak / 1024
    return info


def _speed(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _mem(x, floor) -> str:
    if x is None:
        return "-"
    return f"≤{floor:.0f}" if floor and x <= floor * 1.02 else f"{x:.0f}"


_COLUMNS = ("compress MB/s", "decompress MB/s", "peak MiB, compress",
            "peak MiB, decompress")


def _head(*columns) -> list:
    """A markdown table's two head lines: contender first, numbers right."""
    align = ["---:" if "round" not in c else "---" for c in columns]
    return [f"| contender | {' | '.join(columns)} |", f"|---|{'|'.join(align)}|"]


def _summary_md(summary: dict, floor) -> list:
    lines = [(f"## Summary over {len(summary['files'])} {summary['scope']} files "
              f"({summary['bytes']:,} bytes)"), "",
             ("bpb: total compressed bits over total original bytes. Speeds: "
              "geometric means over the files. Memory: the largest over the files."),
             "", *_head("bpb", "bpb, all files", *_COLUMNS)]
    for s in summary["contenders"]:
        if "bits_per_byte" not in s:
            lines.append(f"| {s['contender']} | {s['status']} | | | | | |")
            continue
        lines.append(
            f"| {s['contender']} | {s['bits_per_byte']:.3f} | "
            f"{s['all_files_bits_per_byte']:.3f} | {_speed(s['compress_MBps'])} | "
            f"{_speed(s['decompress_MBps'])} | "
            f"{_mem(s['compress_peak_MiB'], floor)} | "
            f"{_mem(s['decompress_peak_MiB'], floor)} |")
    return lines


def _file_md(rows: list, floor) -> list:
    kind = "text" if rows[0]["text"] else "binary"
    lines = [f"## {rows[0]['file']} ({rows[0]['bytes']:,} bytes, {kind})", "",
             *_head("bytes", "bpb", *_COLUMNS, "round trip")]
    for r in rows:
        if r["kind"] == "published":
            lines.append(f"| *{r['contender']} (published)* | - | "
                         f"*{r['bits_per_byte']:.3f}* | - | - | - | - | "
                         f"not measured here |")
        elif r["compressed_bytes"] is None:
            lines.append(f"| {r['contender']} | {r['status']} | | | | | | |")
        else:
            check = "ok" if r["roundtrip_ok"] else "**FAILED**"
            lines.append(
                f"| {r['contender']} | {r['compressed_bytes']:,} | "
                f"{r['bits_per_byte']:.3f} | {_speed(r['compress_MBps'])} | "
                f"{_speed(r['decompress_MBps'])} | "
                f"{_mem(r['compress_peak_MiB'], floor)} | "
                f"{_mem(r['decompress_peak_MiB'], floor)} | {check} |")
    return lines


def _markdown(rows: list, summary: dict, machine: dict, settings: dict) -> str:
    floor = machine.get("memory_floor_MiB")
    lines = [
        "# rnnzip against other compressors", "",
        (f"Measured by `{settings['command']}` on {machine['date']}: "
         f"{machine['cpu']}, {machine['cores']} cores, {machine['platform']}."),
        ("bpb is bits per byte of the compressed file (smaller is better). Speeds "
         "are MB/s of the original (10^6 bytes per second), the median of the "
         f"runs (runs: {settings['runs']}), each run a separate process, start-up "
         "included. Peak memory is the process's largest resident set in MiB "
         f"(≤{floor or 0:.0f}: at most the measuring wrapper's floor)."), "",
        *_summary_md(summary, floor)]
    published = [r for r in rows if r["kind"] == "published"]
    if published:
        lines += ["", "## Published figures, not measured here", "",
                  "| contender | file | bpb | source |", "|---|---|---:|---|"]
        lines += [f"| {r['contender']} | {r['file']} | {r['bits_per_byte']:.3f} | "
                  f"{r['note']} |" for r in published]
    for name in dict.fromkeys(r["file"] for r in rows if r["kind"] != "published"):
        lines += ["", *_file_md([r for r in rows if r["file"] == name], floor)]
    notes = [s for s in summary["contenders"] if s["status"] in ("missing", "skipped")]
    failed = [r for r in rows if r["status"] == "failed"]
    if notes or failed:
        lines += ["", "## Not measured or failed", ""]
        lines += [f"- {s['contender']}: {s['status']}, {s['note']}" for s in notes]
        lines += [f"- **{r['contender']} FAILED on {r['file']}**: "
                  f"{r['note'] or 'the round trip did not restore the file'}"
                  for r in failed]
    lines += ["", "## Machine and versions", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine.items() if k != "versions"]
    lines += [f"| {k} | {v} |" for k, v in machine["versions"].items()]
    return "\n".join(lines) + "\n"


def write_chart(path: str, summary: dict) -> bool:
    """Plot bits per byte against decompression speed; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    seen = set()
    points = [s for s in summary["contenders"] if "bits_per_byte" in s]
    points.sort(key=lambda s: s["decompress_MBps"])
    for i, s in enumerate(points):
        rnn = s["kind"] == "rnnzip"
        label = "rnnzip models" if rnn else "other compressors"
        ax.scatter(s["decompress_MBps"], s["bits_per_byte"], s=40,
                   marker="o" if rnn else "s", color="tab:red" if rnn else "tab:blue",
                   label=None if label in seen else label)
        seen.add(label)
        ax.annotate(s["contender"], (s["decompress_MBps"], s["bits_per_byte"]),
                    textcoords="offset points", fontsize=8,
                    xytext=(5, 4 if i % 2 else -11))  # neighbours apart
    ax.set_xscale("log")
    ax.set_xlabel("decompression speed, MB/s (geometric mean, log scale)")
    ax.set_ylabel("bits per byte (total)")
    ax.set_title(f"Ratio against decompression speed, {len(summary['files'])} "
                 f"{summary['scope']} files")
    ax.grid(True, which="both", alpha=0.3)
    if seen:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_results(out: str, rows: list, summary: dict, machine: dict,
                  settings: dict) -> list:
    """Write results.csv, results.json, results.md and chart.png into OUT."""
    os.makedirs(out, exist_ok=True)
    written = [os.path.join(out, n) for n in ("results.csv", "results.json",
                                              "results.md")]
    # the CSV repeats the machine on each row, so that every row stands alone
    versions = machine["versions"]
    where = {"machine": f"{machine['cpu']}, {machine['cores']} cores, "
                        f"{machine['platform']}, {machine['date']}",
             "software": ", ".join(f"{k} {versions[k]}" for k in
                                   ("python", "rnnzip", "mxnet", "numpy",
                                    "constriction"))}
    with open(written[0], "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS + list(where))
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: " ".join(f"{t:.6f}" for t in v)
                                if isinstance(v, list) else v
                                for k, v in row.items()}, **where})
    with open(written[1], "w") as f:
        json.dump({"machine": machine, "settings": settings, "summary": summary,
                   "rows": rows}, f, indent=1)
        f.write("\n")
    with open(written[2], "w") as f:
        f.write(_markdown(rows, summary, machine, settings))
    chart = os.path.join(out, "chart.png")
    if write_chart(chart, summary):
        written.append(chart)
    return written


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _names(text: str | None) -> list | None:
    if text is None:
        return None
    names = [] if text == "none" else [n for n in text.split(",") if n]
    return list(dict.fromkeys(names))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.compare",
                                 description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", metavar="FILE", help="files to measure")
    ap.add_argument("--corpus", action="append", default=[], metavar="DIR",
                    help="measure every file of DIR (may be repeated)")
    ap.add_argument("--out", default="compare-results", metavar="DIR",
                    help="where the results go [default: %(default)s]")
    ap.add_argument("--quick", action="store_true",
                    help="two files, one run: a smoke test")
    ap.add_argument("--large", action="store_true",
                    help="include bible.txt, world192.txt and E.coli")
    ap.add_argument("--runs", type=int, default=None, metavar="N",
                    help="runs per file and contender [default: 3, 1 with --quick]")
    ap.add_argument("--models", metavar="NAME,...",
                    help="rnnzip models [default: every installed one; none: no "
                         "rnnzip]")
    ap.add_argument("--contenders", metavar="NAME,...", default=",".join(CLASSICAL),
                    help="other compressors, from %(default)s, or none")
    ap.add_argument("--backend", choices=["auto", "numpy", "mxnet"], default="auto",
                    help="rnnzip's --backend [default: auto]")
    ap.add_argument("--device", default="auto", help="rnnzip's --device")
    args = ap.parse_args(argv)

    # check the arguments before any long work
    classical = _names(args.contenders)
    unknown = [n for n in classical if n not in CLASSICAL]
    if unknown:
        ap.error(f"unknown contender {unknown[0]!r}; choose from "
                 f"{', '.join(CLASSICAL)} or none")
    runs = args.runs or (1 if args.quick else 3)
    if runs < 1:
        ap.error(f"--runs must be at least 1, not {runs}")
    for directory in args.corpus:
        if not os.path.isdir(directory):
            ap.error(f"--corpus {directory!r} is not a directory")
    files = select_files(args.files, args.corpus, args.large, args.quick)
    if not files:
        ap.error("no input files: name FILEs or a --corpus DIR (the default, "
                 f"{os.path.normpath(CORPORA)}/bench, was not found)")
    for path in files:
        if not os.path.isfile(path):
            ap.error(f"{path!r} is not a file")
    for path in [p for p in files if os.path.getsize(p) == 0]:
        _log(f"skipped: {path}: empty, there is nothing to compress")
        files.remove(path)
    if not files:
        ap.error("every input file is empty")

    # contenders, with a note for each one that cannot run
    contenders = (rnnzip_contenders(_names(args.models), args.backend, args.device)
                  + classical_contenders(classical))
    for c in contenders:
        if c.status != "ready":
            _log(f"{c.status}: {c.label}: {c.note}")
    machine = machine_info(contenders)
    settings = {"command": " ".join(["python -m benchmarks.compare",
                                     *(sys.argv[1:] if argv is None else argv)]),
                "runs": runs, "quick": args.quick, "large": args.large,
                "backend": args.backend, "device": args.device,
                "files": [{"path": p, "bytes": os.path.getsize(p)} for p in files]}

    # measure, add the published figures, summarize and write
    rows = measure_all(files, contenders, runs, _log) + published_rows(files)
    summary = summarize(rows)
    written = write_results(args.out, rows, summary, machine, settings)
    if not any(p.endswith(".png") for p in written):
        _log("note: matplotlib is not installed (pip install -e '.[plot]'); "
             "no chart")
    _log(f"wrote {', '.join(written)}")
    print("\n".join(_summary_md(summary, machine.get("memory_floor_MiB"))))

    failed = [r for r in rows if r["status"] == "failed"]
    for r in failed:
        _log(f"FAILED: {r['contender']} on {r['file']}: "
             f"{r['note'] or 'the decompressed file differs from the input'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
