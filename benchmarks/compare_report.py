"""The results of ``python -m benchmarks.compare``: summary, tables and chart.

The rows of the measurements are summarized per contender and written into
the --out folder: results.csv and results.json (every measurement, the
machine and every version), results.md (a table per file, a summary table
and the published figures, marked as such) and chart.png (bits per byte
against decompression speed; needs matplotlib).
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics

FIELDS = ["file", "bytes", "text", "contender", "kind", "status", "compressed_bytes",
          "bits_per_byte", "compress_s", "decompress_s", "compress_MBps",
          "decompress_MBps", "compress_cpu_s", "decompress_cpu_s",
          "compress_peak_MiB", "decompress_peak_MiB", "roundtrip_ok", "runs",
          "compress_runs_s", "decompress_runs_s", "version", "command", "note"]


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
            # all the bytes over all the time: what a large job sees
            compress_total_MBps=sum(sizes.values()) / 1e6
            / max(sum(r["compress_s"] for r in good), 1e-9),
            decompress_total_MBps=sum(sizes.values()) / 1e6
            / max(sum(r["decompress_s"] for r in good), 1e-9),
            compress_peak_MiB=max(r["compress_peak_MiB"] for r in good),
            decompress_peak_MiB=max(r["decompress_peak_MiB"] for r in good))
    return {"scope": scope, "files": sorted(sizes), "bytes": sum(sizes.values()),
            "contenders": contenders}


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
              "geometric means over the files, and (total) all the bytes over all "
              "the time. Memory: the largest over the files."),
             "", *_head("bpb", "bpb, all files", *_COLUMNS[:2],
                        "compress MB/s, total", "decompress MB/s, total",
                        *_COLUMNS[2:])]
    for s in summary["contenders"]:
        if "bits_per_byte" not in s:
            lines.append(f"| {s['contender']} | {s['status']} | | | | | | | |")
            continue
        lines.append(
            f"| {s['contender']} | {s['bits_per_byte']:.3f} | "
            f"{s['all_files_bits_per_byte']:.3f} | {_speed(s['compress_MBps'])} | "
            f"{_speed(s['decompress_MBps'])} | "
            f"{_speed(s['compress_total_MBps'])} | "
            f"{_speed(s['decompress_total_MBps'])} | "
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
    points.sort(key=lambda s: s["decompress_total_MBps"])
    for i, s in enumerate(points):
        rnn = s["kind"] == "rnnzip"
        label = "rnnzip models" if rnn else "other compressors"
        ax.scatter(s["decompress_total_MBps"], s["bits_per_byte"], s=40,
                   marker="o" if rnn else "s", color="tab:red" if rnn else "tab:blue",
                   label=None if label in seen else label)
        seen.add(label)
        ax.annotate(s["contender"], (s["decompress_total_MBps"], s["bits_per_byte"]),
                    textcoords="offset points", fontsize=8,
                    xytext=(5, 4 if i % 2 else -11))  # neighbours apart
    ax.set_xscale("log")
    ax.set_xlabel("decompression speed, MB/s (all bytes over all time, log scale)")
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
