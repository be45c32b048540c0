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
import datetime
import filecmp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

from .compare_contenders import (CLASSICAL, Contender, classical_contenders,
                                 rnnzip_contenders)
from .compare_report import FIELDS, _summary_md, summarize, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA = os.path.join(HERE, "..", "..", "shared", "corpora")
CANTERBURY = ("alice29.txt", "asyoulik.txt", "cp.html", "fields.c", "grammar.lsp",
              "kennedy.xls", "lcet10.txt", "plrabn12.txt", "ptt5", "sum", "xargs.1")
CALGARY = ("book1", "book2", "paper1", "news")
LARGE = ("bible.txt", "world192.txt", "E.coli")
EXTRA = ("timemachine.txt", "tinyshakespeare.txt")
QUICK = ("alice29.txt", "xargs.1")

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


class _Failed(Exception):
    pass


def _shell(argv: list, src: str, dst: str) -> str:
    """ARGV as a shell line, programs by name, files as SRC and DST."""
    words = [os.path.basename(argv[0])]
    words += [{"{in}": src, "{out}": dst}.get(a, a) for a in argv[1:]]
    words += [] if "{in}" in argv else ["<", src]
    words += [] if "{out}" in argv else [">", dst]
    return " ".join(words)


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
