"""The report of ``rnnzip eval`` for people: the text table and the plot.

:func:`format_report` turns the dict of :func:`rnnzip.evaluate.evaluate` into
the table ``rnnzip eval`` prints; :func:`write_plot` draws the bits per
character of each file (the ``details`` of :func:`rnnzip.evaluate.evaluate_files`)
into a PNG or SVG file, with matplotlib.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import RnnzipError

__all__ = ["format_report", "write_plot", "default_window", "PLOT_SUFFIXES"]


# -- the table ---------------------------------------------------------------

def _f(value, fmt="{:.4f}"):
    return "-" if value is None else fmt.format(value)


def _file_lines(entry, model) -> list:
    n = entry["symbols"]
    unit = "preprocessed characters" if entry["preprocessed"] else "bytes"
    name = entry["path"] if entry["path"] is not None else "total"
    lines = [f"{name}: {entry['bytes']:,} bytes"
             + (f", {n:,} {unit} evaluated" if entry["preprocessed"] else "")]
    row = "  {:<28} {:>14} {:>11}  {}".format
    lines.append(row("", "bits", "bpc", ""))
    fl = entry["float"]
    if fl:
        lines.append(row("float model", f"{fl['bits']:,.0f}", _f(fl["bpc"]),
                         f"perplexity {fl['perplexity']:.4f}, cross-entropy "
                         f"{fl['cross_entropy']:.4f} nats"))
    else:
        lines.append(row("float model", "-", "-",
                         "nothing to measure" if not n else "not measured"))
    ex = entry["exact"]
    loss = ex["quantization_loss"]
    lines.append(row("exact coding model", f"{ex['bits']:,.0f}", _f(ex["bpc"]),
                     "" if loss is None else
                     f"quantization loss {100 * loss:+.2f}%"))
    ar = entry["archive"]
    if ar:
        est = "estimated" if ar["cold_start_estimated"] else ""
        lines.append(row("archive", f"{ar['bits']:,}", _f(ar["bpc"]),
                         f"{ar['bytes']:,} bytes, {ar['frames']} frame(s), "
                         f"{ar['segments']} segment(s)"))
        for label, key, note in (("  model, warm", "model", ""),
                                 ("  cold starts of segments", "cold_start", est),
                                 ("  context mixing", "mixing",
                                  "on" if ar.get("mix") else "off"),
                                 ("  range coder overhead", "coder_overhead", ""),
                                 ("  headers and checksums", "headers", "")):
            part = ar["parts"][key]
            lines.append(row(label, f"{part['bits']:,.0f}", _f(part["bpc"]), note))
        wm = entry["with_model"]
        lines.append(row("archive + model (xz)", f"{wm['bits']:,.0f}",
                         _f(wm["bpc"]), f"the exact weights, "
                         f"{model['exact_xz_bytes']:,} bytes with xz, sent along"))
    else:
        lines.append(row("archive", "-", "-", "none: the model cannot restore "
                                                "the original bytes"))
    for c in entry["classical"].values():
        if c["bytes"] is None:
            lines.append(row(c["setting"], "-", "-", c["note"] or ""))
        else:
            lines.append(row(c["setting"], f"{c['bits']:,}", _f(c["bpc"]),
                             f"{c['bytes']:,} bytes"))
    return [line.rstrip() for line in lines]


def format_report(report: dict) -> str:
    """The report as the human-readable table ``rnnzip eval`` prints."""
    m = report["model"]
    float_size = (f"{m['float_params_bytes']:,} bytes" if m["float_params_bytes"]
                  is not None else "not present")
    lines = [f"model {m['name']}: {m['cell']} {m['num_layers']}x{m['num_hiddens']}, "
             f"{m['alphabet']} alphabet of {m['vocab_size']}, "
             f"{m['num_params']:,} parameters",
             f"  float parameters {float_size}; exact weights "
             f"{m['exact_bytes']:,} bytes, {m['exact_xz_bytes']:,} with xz -9e"]
    if m["alphabet"] != "bytes":
        lines.append(f"  PREPROCESSED: the text is evaluated after the model's "
                     f"preprocessing ({m['preprocessing']}), not as its bytes")
    lines.append("")
    for entry in report["files"]:
        lines += _file_lines(entry, m) + [""]
    if len(report["files"]) > 1:
        lines += _file_lines(report["total"], m) + [""]
    if report["compressors_not_found"]:
        lines.append("not installed: " + ", ".join(report["compressors_not_found"]))
    for note in report["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip() + "\n"


# -- the plot ----------------------------------------------------------------

PLOT_SUFFIXES = (".png", ".svg")


def default_window(n: int) -> int:
    """Moving-average window of the plot: about 1% of the text, 1 to 1,000."""
    return max(1, min(1000, n // 100))


def _moving_average(bits, window):
    csum = np.concatenate([[0.0], np.cumsum(bits)])
    avg = (csum[window:] - csum[:-window]) / window
    x = np.arange(len(avg)) + (window - 1) / 2
    step = max(1, len(avg) // 20000)
    return x[::step], avg[::step]


def write_plot(path: str, details, window: int | None = None) -> None:
    """Draw bits per character along each file into ``path`` (PNG or SVG)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in PLOT_SUFFIXES:
        raise ValueError(f"plot file {path!r} must end in .png or .svg")
    try:
        import matplotlib
    except ImportError:
        raise RnnzipError("--plot needs matplotlib: pip install 'rnnzip[plot]'") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(len(details), 1, squeeze=False,
                             figsize=(10, 3.2 * len(details) + 0.6))
    for ax, d in zip(axes[:, 0], details):
        n = len(d.bits)
        unit = "preprocessed character" if d.entry.get("preprocessed") else "byte"
        name = os.path.basename(d.path) if d.path != "-" else "standard input"
        ax.set_title(f"{name}: bits per {unit}, exact coding model", fontsize=10)
        ax.set_xlabel(f"{unit} position")
        ax.set_ylabel("bits")
        ax.grid(True, alpha=0.3)
        if n == 0:
            ax.text(0.5, 0.5, "empty file", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        w = min(window or default_window(n), n)
        x, avg = _moving_average(d.bits, w)
        ax.plot(x, avg, lw=0.9, color="C0",
                label=f"moving average, window {w:,}" if w > 1 else "per character")
        mean = float(d.bits.mean())
        ax.axhline(mean, color="C3", lw=1.4, label=f"mean {mean:.3f} bpc")
        looks = zip(("C1", "C2", "C4", "C5", "C6", "C8"),
                    ((0, (5, 2)), (0, (1, 1)), (0, (3, 1, 1, 1)), (0, (6, 3)),
                     (0, (2, 2)), (0, (4, 1, 1, 1, 1, 1))))
        for c, (colour, style) in zip(d.entry.get("classical", {}).values(), looks):
            if c["bpc"] is not None:
                ax.axhline(c["bpc"], color=colour, lw=1, ls=style,
                           label=f"{c['setting']} {c['bpc']:.3f}")
        ax.set_xlim(0, max(n - 1, 1))
        ax.xaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylim(bottom=0)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
                  frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
