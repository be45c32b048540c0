"""The ``rnnzip`` command line."""

from __future__ import annotations

import os
import sys
import tempfile
import time

import click

from ._version import __version__
from .errors import RnnzipError
from .modeldir import DEFAULT_MODEL

SUFFIX = ".rnz"
_LARGE = 1 << 20  # show a progress bar for inputs above this on a terminal


class _Group(click.Group):
    """Turn expected failures into one line on stderr and exit code 1."""

    def invoke(self, ctx):
        # CorpusError is a ValueError; numpy is not imported here, so that the
        # coding commands can still choose its threads (_one_blas_thread)
        try:
            return super().invoke(ctx)
        except (RnnzipError, ValueError, OSError) as exc:
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            click.echo(f"rnnzip: error: {where}{text}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("rnnzip: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             help=f"""Lossless compression with a character-level recurrent network.

A Gluon RNN, GRU or LSTM predicts each next byte and a range coder turns the
predictions into bits. The default model is {DEFAULT_MODEL!r} (a GRU of 256
units whose output layer learns the file as it goes, with context mixing: the
network's predictions refined by the file's own statistics; the best ratio,
about 50-85 KB/s); 'english-fast' (an RNN of 128 units with a leaner mixer)
decodes at about 200-300 KB/s, with more bits. Those speeds are
decompression of text files of 100 KB or more on two idle cores of the test
machine (they moved by a fifth from hour to hour), with the network in a
second process (the default, -T0); in one process (-T1) they are about three
quarters of that. The coding commands run one
OpenBLAS thread per process unless OPENBLAS_NUM_THREADS says otherwise.
`rnnzip models` lists the installed ones.

Known limits: compression runs at tens to hundreds of KB/s, far slower than
gzip or xz; an archive decodes only where the model that made it is
installed; models trained with --preset d2l cannot compress (they drop
punctuation and case).""")
@click.version_option(__version__, "-V", "--version", prog_name="rnnzip")
def main():
    pass


# -- compress / decompress ------------------------------------------------

def _one_blas_thread():
    """One OpenBLAS thread per process, unless the user set it.

    The coding commands' matrix products are small; a second thread never
    paid on an idle machine, and beside a busy core it slowed decoding badly:
    english-fast decoded alice29.txt in 0.71 s with one thread and 0.73 s
    with the default on an idle machine, in 0.95-1.1 s and 2.1-4.3 s beside
    a busy core (2 CPUs, 2026-12-04). OpenBLAS reads the setting when numpy
    loads, so this must run before anything imports numpy.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _common_coding_options(f):
    f = click.option("--backend", type=click.Choice(["auto", "numpy", "mxnet"]),
                     default="auto", show_default=True,
                     help="Exact-model back-end; auto is numpy on a CPU, MXNet on a "
                          "GPU. Both write identical archives.")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, gpu or gpu:N (MXNet back-end).")(f)
    f = click.option("-v", "--verbose", is_flag=True,
                     help="Print sizes, bits per character and speed to stderr.")(f)
    f = click.option("-f", "--force", is_flag=True,
                     help="Overwrite existing output files; write an archive to a "
                          "terminal.")(f)
    f = click.option("-o", "--output", type=click.Path(dir_okay=False),
                     help="Output file (a single input only).")(f)
    f = click.option("-k", "--keep", is_flag=True,
                     help="Keep the input files (the default).")(f)
    f = click.option("--rm", "remove", is_flag=True,
                     help="Remove each input after a verified success.")(f)
    f = click.option("-c", "--stdout", "to_stdout", is_flag=True,
                     help="Write to standard output, keep the input.")(f)
    f = click.argument("files", nargs=-1, type=click.Path(allow_dash=True))(f)
    return f


def _stdin():
    return sys.stdin.buffer


def _stdout():
    return sys.stdout.buffer


class _AtomicOutput:
    """A temporary file beside the target, renamed into place on success."""

    def __init__(self, target: str, force: bool):
        self.target = target
        if os.path.lexists(target) and not force:
            raise RnnzipError(f"{target}: already exists; use -f to overwrite")
        directory = os.path.dirname(os.path.abspath(target))
        fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.",
                                        suffix=".tmp", dir=directory)
        self.file = os.fdopen(fd, "wb")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.file.closed:
            self.file.close()
        if exc_type is not None and os.path.exists(self.tmp):
            os.remove(self.tmp)
        return False

    def commit(self, like: str | None = None):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if like:
            try:
                os.chmod(self.tmp, os.stat(like).st_mode & 0o7777)
            except OSError:
                pass
        os.replace(self.tmp, self.target)


def _progress(total: int, label: str):
    """A progress callback: a bar on a terminal for large inputs, else nothing."""
    if total < _LARGE or not sys.stderr.isatty():
        return None, None
    bar = click.progressbar(length=total, label=label, file=sys.stderr)
    bar.__enter__()
    return bar.update, bar


def _report(name, in_size, out_size, seconds, compressing, bits=None):
    original = in_size if compressing else out_size
    packed = out_size if compressing else in_size
    bpc = 8 * packed / original if original else 0.0
    speed = original / max(seconds, 1e-9) / 1000
    extra = f", ideal {bits / original:.4f}" if bits and original else ""
    click.echo(f"{name}: {original:,} <-> {packed:,} bytes, {bpc:.4f} bpc{extra}, "
               f"{speed:,.1f} KB/s", err=True)


def _plan(files, to_stdout, output, make_name):
    """Pair each input with its output: None means standard output."""
    files = list(files) or ["-"]
    if output and len(files) > 1:
        raise click.UsageError("-o/--output takes a single input file")
    if output and to_stdout:
        raise click.UsageError("-o/--output and -c/--stdout exclude each other")
    plan = []
    for path in files:
        if path == "-" or to_stdout:
            plan.append((path, output))
        else:
            plan.append((path, output or make_name(path)))
    return plan


def _open_input(path):
    if path == "-":
        return _stdin(), None
    if os.path.isdir(path):
        raise RnnzipError(f"{path}: is a directory")
    return open(path, "rb"), os.path.getsize(path)


def _convert(src, dst, force, label, run, check=None):
    """Run ``run(stream, sink, progress)`` from SRC into DST (None: stdout).

    A file output goes through a temporary file, renamed into place only
    after ``check(tmp_path, info)`` passed; returns what ``run`` returned.
    """
    stream, size = _open_input(src)
    update, bar = _progress(size or 0, f"{label} {src}")
    try:
        if dst is None:
            info = run(stream, _stdout(), update)
            _stdout().flush()
        else:
            with _AtomicOutput(dst, force) as out:
                info = run(stream, out.file, update)
                if check:
                    out.file.flush()
                    check(out.tmp, info)
                out.commit(like=None if src == "-" else src)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        if src != "-":
            stream.close()
    return info


def _run_all(plan, one):
    failed = False
    for src, dst in plan:
        try:
            one(src, dst)
        except RnnzipError as exc:
            click.echo(f"rnnzip: error: {exc}", err=True)
            failed = True
        except OSError as exc:
            where = exc.filename or src
            click.echo(f"rnnzip: error: {where}: {exc.strerror or exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@main.command()
@_common_coding_options
@click.option("-m", "--model", default=None,
              help=f"Model name or directory [default: {DEFAULT_MODEL}].")
@click.option("--segments", type=click.IntRange(1, 4096), default=None,
              help="Parallel segments per frame (default: from the frame size).")
@click.option("--mix/--no-mix", default=None,
              help="Mix the network's predictions with the statistics of the file "
                   "itself (fewer bits, about half the speed) [default: as the "
                   "model's card says; on for english].")
def compress(files, to_stdout, remove, keep, output, force, verbose, device, backend,
             model, segments, mix):
    """Compress FILES into FILE.rnz (standard input to output with none or -).

    Inputs are kept unless --rm is given; existing outputs are never
    overwritten without -f.
    """
    _one_blas_thread()
    from .container import write_archive
    from .engines import load_engine

    if remove and keep:
        raise click.UsageError("--rm and -k/--keep exclude each other")
    plan = _plan(files, to_stdout, output, lambda p: p + SUFFIX)
    engine, name = load_engine(model, backend, device)

    def one(src, dst):
        if src != "-" and src.endswith(SUFFIX) and dst and not output:
            raise RnnzipError(f"{src}: already has the {SUFFIX} suffix, left alone")
        if dst is None and sys.stdout.isatty() and not force:
            raise RnnzipError("refusing to write an archive to a terminal; "
                              "redirect standard output or use -f")

        def run(stream, sink, update):
            return write_archive(engine, name, stream, sink, num_segments=segments,
                                 progress=update, mix=mix)

        def check(tmp, info):
            if remove and src != "-":
                _verify(tmp, info.crc, engine)

        t0 = time.time()
        info = _convert(src, dst, force, "compressing", run, check)
        if remove and src != "-" and dst is not None:
            os.remove(src)
        if verbose:
            _report(src, info.original_size, info.archive_size, time.time() - t0, True,
                    info.ideal_bits)

    _run_all(plan, one)


class _Null:
    def write(self, data):
        return len(data)


def _verify(archive_path: str, crc: int, engine):
    """Decode a just-written archive and check it restores the input."""
    from .container import read_archive

    with open(archive_path, "rb") as f:
        info = read_archive(f, _Null(), lambda *_: engine)
    if info.crc != crc:
        raise RnnzipError(f"verification of {archive_path} failed; input kept")


def _strip_suffix(path: str) -> str:
    if not path.endswith(SUFFIX) or len(path) == len(SUFFIX):
        raise RnnzipError(f"{path}: unknown suffix, expected {SUFFIX}; use -o "
                          f"to name the output")
    return path[:-len(SUFFIX)]


_MODEL_HINT = ("Model name or directory to decode with, when the archive's model "
               "is not installed where rnnzip looks; its identity must match.")


def _resolver(model, backend, device):
    from .engines import load_engine, resolve_engine

    def resolve(name, identity):
        if model is None:
            return resolve_engine(name, identity, backend, device)
        engine, given = load_engine(model, backend, device)
        if engine.identity != identity:
            raise RnnzipError(f"model {given!r} has identity {engine.identity[:16]}..."
                              f", the archive needs {name!r} ({identity[:16]}...)")
        return engine

    return resolve


_THREADS_HELP = ("Processes to decode with: 2 or more runs the network of a "
                 "context-mixed archive in a second process beside the mixer, on "
                 "another CPU (1.4 to 1.5 times as fast on two idle cores); 1 stays "
                 "in one process; 0 picks 2 where there are two CPUs. The output "
                 "is the same.")


def _threads_option(f):
    return click.option("-T", "--threads", type=click.IntRange(0, None), default=0,
                        show_default=True, help=_THREADS_HELP)(f)


@main.command()
@_common_coding_options
@click.option("-m", "--model", default=None, help=_MODEL_HINT)
@_threads_option
def decompress(files, to_stdout, remove, keep, output, force, verbose, device,
               backend, model, threads):
    """Decompress FILE.rnz into FILE (standard input to output with none or -).

    The archive names its model, which must be installed (or given with -m).
    A file output appears only once every checksum has matched; on standard
    output each frame is written once its own checksum has matched, and a
    later failure still exits 1. Archives written one after another decode
    to the concatenation of their contents.
    """
    _one_blas_thread()
    from .container import read_archive

    if remove and keep:
        raise click.UsageError("--rm and -k/--keep exclude each other")
    plan = _plan(files, to_stdout, output, _strip_suffix)
    resolve = _resolver(model, backend, device)

    def one(src, dst):
        t0 = time.time()
        info = _convert(src, dst, force, "decompressing",
                        lambda stream, sink, update: read_archive(
                            stream, sink, resolve, progress=update,
                            threads=threads))
        if remove and src != "-" and dst is not None:
            os.remove(src)
        if verbose:
            _report(src, info.archive_size, info.original_size, time.time() - t0,
                    False)

    _run_all(plan, one)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--backend", type=click.Choice(["auto", "numpy", "mxnet"]),
              default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("-m", "--model", default=None, help=_MODEL_HINT)
@click.option("-v", "--verbose", is_flag=True, help="Say OK for each good archive.")
@_threads_option
def test(files, backend, device, model, verbose, threads):
    """Decode each FILES archive and verify it, writing nothing."""
    _one_blas_thread()
    from .container import read_archive

    resolve = _resolver(model, backend, device)

    def one(src, _):
        stream, _size = _open_input(src)
        try:
            read_archive(stream, _Null(), resolve, threads=threads)
        finally:
            if src != "-":
                stream.close()
        if verbose:
            click.echo(f"{src}: OK", err=True)

    _run_all([(f, None) for f in files], one)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
def info(files):
    """Show the model, sizes, frames and bits per character of FILES archives."""
    from .container import read_archive
    from .engines import resolve_engine

    def one(src, _):
        stream, _size = _open_input(src)
        try:
            info = read_archive(stream, _Null(), None, info_only=True)
        finally:
            if src != "-":
                stream.close()
        try:
            resolve_engine(info.model_name, info.identity.hex())
            installed = "installed"
        except RnnzipError:
            installed = "NOT installed"
        bpc = 8 * info.archive_size / info.original_size if info.original_size else 0
        segs = sorted({f.segments for f in info.frames})
        click.echo(f"{src}\n"
                   f"  model        {info.model_name} ({installed})\n"
                   f"  identity     {info.identity.hex()}\n"
                   f"  format       version {info.version}, context mixing "
                   f"{f'on ({info.mixer.name} profile)' if info.mix else 'off'}\n"
                   f"  original     {info.original_size:,} bytes, crc32 "
                   f"{'-' if info.crc is None else format(info.crc, '08x')}\n"
                   f"  archive      {info.archive_size:,} bytes "
                   f"({info.header_bytes:,} of headers)\n"
                   f"  members      {info.members}\n"
                   f"  frames       {len(info.frames)} of up to {info.frame_size:,} "
                   f"bytes, segments per frame {segs}\n"
                   f"  bpc          {bpc:.4f}")

    _run_all([(f, None) for f in files], one)


@main.command()
def models():
    """List the installed models and where they are."""
    from .modeldir import list_models, read_card

    for name, path in list_models():
        card = read_card(path)
        arch = card["architecture"]
        bpc = card.get("valid_bpc")
        mark = " (default)" if name == DEFAULT_MODEL else ""
        click.echo(f"{name}{mark}\t{arch['cell']} {arch['num_layers']}x"
                   f"{arch['num_hiddens']}\t{card['alphabet']['kind']}\t"
                   f"valid bpc {bpc:.3f}\t{path}" if bpc else f"{name}\t{path}")


# -- training and generation ----------------------------------------------

@main.command()
@click.argument("corpus", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(),
              help="Model directory to write.")
@click.option("--preset", type=click.Choice(["d2l"]), default=None,
              help="d2l: the book's run (RNN 256 on the first 10,000 preprocessed "
                   "characters, 500 epochs); other options override it.")
@click.option("--cell", type=click.Choice(["rnn", "gru", "lstm"]), default=None,
              help="Recurrent cell [default: gru].")
@click.option("--num-layers", type=click.IntRange(1, 8), default=None,
              help="[default: 1]")
@click.option("--num-hiddens", type=click.IntRange(1, 4096), default=None,
              help="[default: 256]")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="[default: 32]")
@click.option("--num-steps", type=click.IntRange(1), default=None, help="[default: 35]")
@click.option("--lr", type=float, default=None, help="Learning rate [default: 1].")
@click.option("--lr-decay", type=float, default=None,
              help="Multiply the learning rate by this each epoch [default: 1].")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None,
              help="[default: sgd, as in the book]")
@click.option("--clip", type=float, default=None,
              help="Gradient clipping norm [default: 1].")
@click.option("--epochs", type=click.IntRange(1), default=None, help="[default: 10]")
@click.option("--partition", type=click.Choice(["sequential", "random"]), default=None,
              help="Minibatch partitioning; sequential carries the state, detached "
                   "between batches [default: sequential].")
@click.option("--valid-frac", type=click.FloatRange(0, 0.5), default=None,
              help="Tail of the corpus held out for validation [default: 0.1].")
@click.option("--max-tokens", type=click.IntRange(0), default=None,
              help="Train on the first N symbols only (0: all).")
@click.option("--seed", type=int, default=None, help="[default: 0]")
@click.option("--checkpoint-seconds", type=float, default=None,
              help="Write a checkpoint at least this often [default: 300].")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False),
              default=None,
              help="Start from the weights of this model directory (same cell, "
                   "layers, size and alphabet) with a fresh optimizer: to train a "
                   "finished model further on a new schedule.")
@click.option("--resume", is_flag=True,
              help="Continue from OUTPUT/checkpoint with its settings; --epochs may "
                   "raise the number of epochs.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Save the perplexity curve (PNG or SVG).")
@click.option("--device", default="auto", show_default=True,
              help="auto, cpu, gpu or gpu:N.")
def train(corpus, out_dir, preset, resume, plot, device, **options):
    """Train a character model on CORPUS files or directories.

    Prints one line per epoch on stderr and closes with the book's summary
    line, `perplexity P, N tokens/sec on DEVICE`. Writes OUTPUT/card.json,
    the Gluon parameters and the exact coding model.
    """
    from dataclasses import fields

    from .train import D2L_PRESET, TrainConfig
    from .train import train as run_training

    values = dict(D2L_PRESET) if preset == "d2l" else {}
    values.update({k: v for k, v in options.items() if v is not None})
    names = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in values.items() if k in names})
    run_training(corpus, out_dir, cfg, device=device, resume=resume, plot=plot,
                 epochs=options["epochs"] if resume else None)


@main.command()
@click.argument("model_dir", type=click.Path())
@click.argument("corpus", nargs=-1, type=click.Path())
def quantize(model_dir, corpus):
    """Derive MODEL_DIR's exact coding model again from its float weights.

    With CORPUS (the files it was trained on), the quantization loss is
    measured on the same held-out tail that training used and recorded on the
    card next to the float model's bpc.
    """
    from .data import Alphabet, read_corpus
    from .modeldir import read_card
    from .quantize import quantize_model_dir

    valid = None
    if corpus:
        card = read_card(model_dir)
        alphabet = Alphabet.from_json(card["alphabet"])
        symbols = alphabet.encode(read_corpus(corpus)[1])
        frac = card["hyperparameters"].get("valid_frac", 0.1)
        valid = symbols[len(symbols) - int(len(symbols) * frac):]
    card = quantize_model_dir(model_dir, valid_symbols=valid)
    exact = card["exact"]
    click.echo(f"{model_dir}: exact model {exact['identity'][:16]}..., "
               f"{exact['bytes']:,} bytes", err=True)
    if "float_bpc" in exact:
        click.echo(f"float bpc {exact['float_bpc']:.4f}, exact bpc "
                   f"{exact['exact_bpc']:.4f}, loss "
                   f"{100 * exact['quantization_loss']:+.3f}% on "
                   f"{exact['measured_on_symbols']:,} held-out symbols", err=True)


@main.command()
@click.argument("model_dir", type=click.Path())
@click.option("--prefix", default="time traveller", show_default=True)
@click.option("-n", "--num-preds", type=click.IntRange(0), default=50,
              show_default=True, help="Characters to generate.")
@click.option("--temperature", type=click.FloatRange(0), default=0.0,
              help="0 picks the likeliest character (the book); above 0 samples.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
def generate(model_dir, prefix, num_preds, temperature, seed, device):
    """Continue PREFIX with the model in MODEL_DIR (the book's predict_ch8)."""
    from .generate import predict

    click.echo(predict(model_dir, prefix, num_preds, temperature, seed, device))


@main.command("eval")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-m", "--model", default=None,
              help=f"Model name or directory [default: {DEFAULT_MODEL}].")
@click.option("--segments", type=click.IntRange(1, 4096), default=None,
              help="Parallel segments per frame, as for compress.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report as JSON (keys in the README).")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Draw bits per character along each file (PNG or SVG).")
@click.option("--window", type=click.IntRange(1), default=None,
              help="Moving-average window of the plot, in characters "
                   "[default: 1% of the file, at most 1,000].")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write the text with every character shaded by its bits, as "
                   "one self-contained HTML page.")
@click.option("--no-classical", is_flag=True,
              help="Skip gzip, bzip2, xz, zstd, brotli and 7-Zip.")
@click.option("--no-float", is_flag=True,
              help="Skip the float Gluon model (and MXNet).")
@click.option("--backend", type=click.Choice(["auto", "numpy", "mxnet"]),
              default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Print timings to stderr.")
def eval_command(files, model, segments, as_json, plot, window, html_path,
                 no_classical, no_float, backend, device, verbose):
    """Measure bits per character of FILES against perplexity, and every cost.

    For the float Gluon model: cross-entropy, perplexity and bpc =
    log2(perplexity). For the exact coding model: bpc on the same bytes.
    For the archive compress writes: its size split into the model's bits,
    the cold starts of parallel segments, the coder's overhead and the
    headers, which add up exactly. Then the model's own size, the archive
    plus the model's xz-compressed weights, and classical compressors on
    the same bytes. A model with a preprocessing (--preset d2l) is measured
    on its preprocessed text, without an archive.

    Known limits: each file is read into memory; measuring the cold starts
    runs the model step by step over up to 256 KiB, the slowest part; past
    that, their cost is estimated from those first 256 KiB.
    """
    import json

    from .evalreport import PLOT_SUFFIXES, format_report, write_plot
    from .evaluate import evaluate_files

    if plot and not plot.lower().endswith(PLOT_SUFFIXES):
        raise click.BadParameter("must end in .png or .svg", param_hint="--plot")
    result = evaluate_files(files, model, backend=backend, device=device,
                            num_segments=segments, detail=bool(plot or html_path),
                            classical=not no_classical, float_model=not no_float,
                            verbose=verbose)
    if plot:
        write_plot(plot, result.details, window)
    if html_path:
        from .htmlview import write_html

        write_html(html_path, result.report, result.details)
    if as_json:
        click.echo(json.dumps(result.report, indent=2))
    else:
        click.echo(format_report(result.report), nl=False)


if __name__ == "__main__":
    main()
