"""The contenders of ``python -m benchmarks.compare``: rnnzip models and the rest.

Each contender is a :class:`Contender`: how to compress and decompress a file
with it, its version, and whether it is ready to run or, with a note saying
why, missing or skipped. The classical compressors run through their own
programs, the rnnzip models through the real ``rnnzip`` command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

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
    """Build a contender per rnnzip model: all installed ones, or those named.

    A name may end in ``+mix`` or ``+nomix``: the model with context mixing
    forced on or off (``--mix``, ``--no-mix``) instead of as its card says;
    and in ``+t1``: decompressed in one process (``-T1``), without the
    network worker of the default.
    """
    from rnnzip import __version__
    from rnnzip.errors import RnnzipError
    from rnnzip.modeldir import list_models, read_card

    installed = dict(list_models())
    command = _rnnzip_command()
    options = ["--backend", backend, "--device", device]
    out = []
    for label in sorted(installed) if names is None else names:
        name, *variants = label.split("+")
        flags = {"mix": ("--mix", None), "nomix": ("--no-mix", None),
                 "t1": (None, "-T1")}
        unknown = [v for v in variants if v not in flags]
        mix = [flags[v][0] for v in variants if v in flags and flags[v][0]]
        threads = [flags[v][1] for v in variants if v in flags and flags[v][1]]
        c = Contender(label, f"rnnzip {label}", "rnnzip", suffix=".rnz")
        if unknown:
            out.append(c)
            c.status, c.note = "skipped", (f"unknown variant {unknown[0]!r}: "
                                           f"+mix, +nomix or +t1")
            continue
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
        c.compress = [*command, "compress", "-c", "-m", name, *mix, *options, "{in}"]
        c.decompress = [*command, "decompress", "-c", *threads, *options, "{in}"]
    return out
