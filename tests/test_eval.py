"""`rnnzip eval`: figures measured on the same bytes, which add up; pictures."""

import gzip
import json
import math
import os
import random
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from click.testing import CliRunner

from rnnzip import evaluate as evaluate_module
from rnnzip.cli import main
from rnnzip.data import d2l_preprocess
from rnnzip.evalreport import format_report
from rnnzip.evaluate import evaluate, evaluate_files

_WORDS = ("the time traveller for so it will be convenient to speak of him was "
          "expounding a recondite matter to us his grey eyes shone and twinkled "
          "and his usually pale face was flushed and animated").split()

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser",
                                           "google-chrome") if shutil.which(n)), None)


def _text(num_lines, seed):
    """English-like text: a small vocabulary in random sentences."""
    rng = random.Random(seed)
    lines = []
    for _ in range(num_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 10))]
        lines.append(" ".join(words).capitalize() + rng.choice(".,;!?"))
    return ("\n".join(lines) + "\n").encode("ascii")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny trained models with float parameters: {"bytes": dir, "d2l": dir}."""
    from rnnzip.train import TrainConfig, train

    root = tmp_path_factory.mktemp("eval-models")
    corpus = root / "corpus.txt"
    corpus.write_bytes(_text(120, seed=1))
    out = {}
    for alphabet in ("bytes", "d2l"):
        cfg = TrainConfig(cell="gru", num_hiddens=16, batch_size=8, num_steps=16,
                          lr=0.01, optimizer="adam", epochs=1, seed=0,
                          alphabet=alphabet)
        out[alphabet] = str(root / alphabet)
        train([str(corpus)], out[alphabet], cfg, device="cpu")
    return out


@pytest.fixture
def files(tmp_path):
    """Inputs: a text of several segments, a short one, empty, one byte, binary."""
    rng = np.random.default_rng(0)
    paths = {
        "text": _text(450, seed=2),  # about 20 KB: 4 segments
        "short": _text(20, seed=3),
        "empty": b"",
        "one": b"x",
        "binary": bytes(range(256)) + rng.integers(0, 256, 2000, np.uint8).tobytes(),
    }
    for name, data in paths.items():
        (tmp_path / name).write_bytes(data)
    return {name: str(tmp_path / name) for name in paths}


def _eval_cli(*args):
    """Run `rnnzip eval ARGS` in this process; return the result."""
    result = CliRunner().invoke(main, ["eval", *args], catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result


def _parts_bits(archive):
    return sum(part["bits"] for part in archive["parts"].values())


# -- the figures -------------------------------------------------------------

def test_float_bpc_is_log2_perplexity(trained, files):
    report = evaluate([files["text"], files["short"]], trained["bytes"])
    for entry in report["files"] + [report["total"]]:
        fl = entry["float"]
        assert math.isclose(fl["bpc"], math.log2(fl["perplexity"]), rel_tol=1e-12)
        assert math.isclose(fl["cross_entropy"], math.log(fl["perplexity"]),
                            rel_tol=1e-12)
        assert math.isclose(fl["bits"], fl["bpc"] * entry["symbols"], rel_tol=1e-12)

        # the exact model's loss against the float model on the same bytes
        ex = entry["exact"]
        assert math.isclose(ex["quantization_loss"], ex["bpc"] / fl["bpc"] - 1,
                            rel_tol=1e-9)
        assert abs(ex["quantization_loss"]) < 0.05


def test_archive_parts_add_up_to_its_size(tiny_gru, files):
    report = evaluate(list(files.values()), tiny_gru, classical=False)
    for entry in report["files"] + [report["total"]]:
        archive = entry["archive"]
        assert math.isclose(_parts_bits(archive), 8 * archive["bytes"],
                            rel_tol=1e-12, abs_tol=1e-6)
        assert archive["bits"] == 8 * archive["bytes"]

    # the model's part is the exact model's bits less the cold starts
    text = report["files"][0]
    assert text["archive"]["segments"] == 4
    assert not text["archive"]["cold_start_estimated"]
    assert text["archive"]["cold_start_measured_on"] == text["bytes"]
    parts = text["archive"]["parts"]
    assert math.isclose(parts["model"]["bits"] + parts["cold_start"]["bits"],
                        text["exact"]["bits"], rel_tol=1e-12)
    assert parts["headers"]["bits"] > 0

    # one segment has no cold start to pay for
    short = report["files"][1]
    assert short["archive"]["segments"] == 1
    assert short["archive"]["parts"]["cold_start"]["bits"] == 0


def test_archive_bpc_is_what_compress_writes(tiny_gru, files, tmp_path):
    for segments in (None, "3"):
        extra = ["--segments", segments] if segments else []
        out = tmp_path / "text.rnz"
        result = CliRunner().invoke(main, ["compress", "-f", "-m", tiny_gru, *extra,
                                           "-o", str(out), files["text"]])
        assert result.exit_code == 0, result.output
        result = _eval_cli(files["text"], "-m", tiny_gru, "--json",
                           "--no-classical", *extra)
        archive = json.loads(result.stdout)["files"][0]["archive"]
        size = out.stat().st_size
        assert archive["bytes"] == size
        assert archive["bpc"] == 8 * size / os.path.getsize(files["text"])
        assert archive["segments"] == int(segments or 4)


def test_cold_start_estimated_past_the_warm_limit(tiny_gru, files, monkeypatch):
    exact = evaluate([files["text"]], tiny_gru, classical=False)["files"][0]
    monkeypatch.setattr(evaluate_module, "WARM_LIMIT", 12000)
    estimate = evaluate([files["text"]], tiny_gru, classical=False)["files"][0]
    archive = estimate["archive"]
    assert archive["cold_start_estimated"]
    assert archive["cold_start_measured_on"] == 12000
    assert archive["bytes"] == exact["archive"]["bytes"]
    assert math.isclose(_parts_bits(archive), 8 * archive["bytes"], rel_tol=1e-12)

    # two of three segment starts measured, the third estimated from them
    cold = exact["archive"]["parts"]["cold_start"]["bits"]
    guess = archive["parts"]["cold_start"]["bits"]
    assert abs(guess - cold) <= 0.5 * abs(cold) + 8


def test_per_character_bits_are_what_the_archive_pays(tiny_gru, files):
    result = evaluate_files([files["text"], files["binary"]], tiny_gru,
                            detail=True, classical=False, num_segments=5)
    for entry, detail in zip(result.report["files"], result.details):
        assert len(detail.bits) == entry["bytes"]
        assert math.isclose(detail.bits.sum(), entry["exact"]["bits"],
                            rel_tol=1e-9)
        assert np.allclose(np.exp2(-detail.bits)[detail.top[:, 0] == detail.symbols],
                           detail.top_p[:, 0][detail.top[:, 0] == detail.symbols],
                           rtol=1e-5)
        assert np.all(np.diff(detail.top_p, axis=1) <= 0)


def test_model_cost(tiny_gru, trained, files):
    report = evaluate([files["text"], files["short"]], trained["bytes"])
    model = report["model"]
    assert model["num_params"] == 3 * 16 * (256 + 16 + 2) + 256 * 16 + 256
    assert model["float_params_bytes"] == os.path.getsize(
        os.path.join(trained["bytes"], "params.params"))
    assert 0 < model["exact_xz_bytes"] < model["exact_bytes"] * 2

    # the model is sent once with all the files
    total = report["total"]
    assert total["with_model"]["bits"] == (total["archive"]["bits"]
                                           + 8 * model["exact_xz_bytes"])
    assert total["archive"]["bytes"] == sum(e["archive"]["bytes"]
                                            for e in report["files"])
    assert total["with_model"]["bpc"] == total["with_model"]["bits"] / total["bytes"]

    # a model without float parameters reports none, and says why
    report = evaluate([files["short"]], tiny_gru, classical=False)
    assert report["model"]["float_params_bytes"] is None
    assert report["files"][0]["float"] is None
    assert any("params.params" in note for note in report["notes"])


def test_classical_compressors_on_the_same_bytes(tiny_gru, files, monkeypatch):
    report = evaluate([files["text"]], tiny_gru)
    entry = report["files"][0]
    data = open(files["text"], "rb").read()
    gz = entry["classical"]["gzip"]
    assert gz["bytes"] == len(gzip.compress(data, 9, mtime=0))
    assert gz["bpc"] == 8 * gz["bytes"] / len(data)
    assert set(entry["classical"]) == {"gzip", "bzip2", "xz", "zstd", "brotli",
                                       "ppmd"}

    # missing programs are named, not fatal
    monkeypatch.setattr(shutil, "which", lambda name: None)
    report = evaluate([files["text"]], tiny_gru)
    classical = report["files"][0]["classical"]
    assert report["compressors_not_found"] == ["7z", "brotli", "zstd"]
    assert classical["zstd"]["bytes"] is None
    assert classical["zstd"]["note"] == "not installed"
    assert classical["xz"]["bytes"] > 0
    assert "not installed: 7z, brotli, zstd" in format_report(report)


# -- the command line ---------------------------------------------------------

def _numbers(value, found):
    """Every number in a JSON value, those inside its strings included."""
    if isinstance(value, bool) or value is None:
        return found
    if isinstance(value, (int, float)):
        found.append(value)
    elif isinstance(value, str):
        found.extend(float(t) for t in re.findall(r"-?\d+(?:\.\d+)?", value))
    elif isinstance(value, dict):
        for key, item in value.items():
            _numbers(item, found)
            if key == "quantization_loss" and item is not None:
                found.append(100 * item)  # the table shows a percentage
    else:
        for item in value:
            _numbers(item, found)
    return found


def test_json_carries_every_figure_of_the_table(trained, files):
    args = [files["text"], files["short"], "-m", trained["bytes"]]
    table = _eval_cli(*args)
    assert table.exit_code == 0
    report = json.loads(_eval_cli(*args, "--json").stdout)
    assert report["format"] == 1
    assert set(report) == {"format", "rnnzip_version", "model", "files", "total",
                           "compressors_not_found", "notes"}
    assert table.stderr == ""  # silent on success

    candidates = _numbers(report, [])
    tokens = re.findall(r"-?\d[\d,]*(?:\.\d+)?", table.stdout)
    assert len(tokens) > 60
    for token in tokens:
        plain = token.replace(",", "")
        decimals = len(plain.partition(".")[2])
        assert any(f"{c:.{decimals}f}" == plain or f"{c:.{decimals}f}" == "-" + plain
                   for c in candidates), f"{token!r} of the table is not in the JSON"
    for label in ("float model", "exact coding model", "archive", "cold starts",
                  "range coder overhead", "headers and checksums", "gzip -9",
                  "xz -9e", "archive + model", "perplexity", "total:"):
        assert label in table.stdout


def test_plot_and_html_are_written(trained, files, tmp_path):
    png, svg, page = tmp_path / "bits.png", tmp_path / "bits.svg", tmp_path / "b.html"
    result = _eval_cli(files["text"], files["binary"], "-m", trained["bytes"],
                       "--plot", str(png), "--html", str(page), "--no-classical")
    assert result.exit_code == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = _eval_cli(files["text"], "-m", trained["bytes"], "--plot", str(svg),
                       "--window", "50", "--json")
    assert result.exit_code == 0, result.stderr
    assert b"<svg" in svg.read_bytes()[:1000]
    assert b"window 50" in svg.read_bytes()
    json.loads(result.stdout)  # pictures do not touch standard output

    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # self-contained: nothing to fetch
    assert not re.search(r"https?://|<link|\ssrc=", html)
    assert html.count('<pre class="text"') == 2


def test_plot_suffix_is_checked_first(tiny_gru, files):
    result = CliRunner().invoke(main, ["eval", files["short"], "-m", tiny_gru,
                                       "--plot", "bits.pdf"])
    assert result.exit_code == 2
    assert "--plot" in result.stderr and ".png or .svg" in result.stderr


@pytest.mark.parametrize("name", ["empty", "one", "binary"])
def test_small_and_binary_inputs_give_sensible_reports(trained, files, tmp_path,
                                                       name):
    page, png = tmp_path / "p.html", tmp_path / "p.png"
    result = _eval_cli(files[name], "-m", trained["bytes"], "--json",
                       "--html", str(page), "--plot", str(png))
    assert result.exit_code == 0, result.stderr
    entry = json.loads(result.stdout)["files"][0]
    archive = entry["archive"]
    assert math.isclose(_parts_bits(archive), 8 * archive["bytes"], abs_tol=1e-6)
    if name == "empty":
        assert entry["float"] is None
        assert entry["exact"]["bpc"] is None and archive["bpc"] is None
        assert entry["classical"]["gzip"]["bpc"] is None
    else:
        assert math.isfinite(entry["float"]["perplexity"])
        assert math.isfinite(entry["exact"]["bpc"]) and archive["bpc"] > 0
    assert page.stat().st_size > 0 and png.stat().st_size > 0

    # and as a table
    table = _eval_cli(files[name], "-m", trained["bytes"], "--no-classical")
    assert table.exit_code == 0 and "archive" in table.stdout


def test_missing_input_is_one_line_error(tiny_gru, tmp_path):
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "nope"), "-m",
                                       tiny_gru])
    assert result.exit_code == 1
    assert result.stderr.startswith("rnnzip: error:")
    assert len(result.stderr.strip().splitlines()) == 1


# -- a model with a preprocessing ----------------------------------------------

def test_preprocessed_model_is_evaluated_on_its_text(trained, files):
    report = evaluate([files["text"]], trained["d2l"])
    entry = report["files"][0]
    text = d2l_preprocess(open(files["text"], "rb").read())
    assert entry["preprocessed"] and report["model"]["alphabet"] == "d2l"
    assert entry["symbols"] == len(text) < entry["bytes"]
    assert entry["archive"] is None and entry["with_model"] is None
    assert math.isclose(entry["float"]["bpc"], math.log2(entry["float"]["perplexity"]))
    assert entry["exact"]["bpc"] > 0

    # the classical compressors see the same preprocessed text
    gz = entry["classical"]["gzip"]
    assert gz["bytes"] == len(gzip.compress(text.encode(), 9, mtime=0))
    assert any("preprocessed" in note for note in report["notes"])
    assert "PREPROCESSED" in format_report(report)


def test_compress_refuses_a_preprocessed_model(trained, files, tmp_path):
    result = CliRunner().invoke(main, ["compress", "-m", trained["d2l"], "-o",
                                       str(tmp_path / "x.rnz"), files["short"]])
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "preprocessed text" in message and "cannot restore" in message
    assert not (tmp_path / "x.rnz").exists()


# -- the page in a browser ----------------------------------------------------

def _chromium(page, *args):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             *args, page], capture_output=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_html_renders_in_headless_chromium(trained, files, tmp_path):
    page = tmp_path / "bits.html"
    result = _eval_cli(files["short"], files["binary"], "-m", trained["bytes"],
                       "--html", str(page), "--no-classical")
    assert result.exit_code == 0
    proc = _chromium(page.as_uri() + "#c7", "--dump-dom")
    log = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, log
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", log), log
    dom = proc.stdout.decode("utf-8")
    assert 'data-rendered="ok"' in dom

    # a span per character, and the linked character described at the bottom
    units = sum(len(open(files[n], "rb").read().decode("utf-8", "surrogateescape"))
                for n in ("short", "binary"))
    legend = 12
    spans = re.findall(r'<span class="c\d+(?: sp| nl)?(?: mark)?"', dom)
    assert len(spans) == units + legend
    assert re.search(r'<div id="info">\S+ +p [\d.e+-]+, [\d.]+ bits +guesses ', dom)

    shot = tmp_path / "shot.png"
    proc = _chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=1000,800")
    assert proc.returncode == 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("RNNZIP_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, os.path.join(keep, "eval-html.png"))


def test_per_character_bits_follow_the_frames(tiny_gru, monkeypatch):
    from rnnzip.engines import load_engine
    from rnnzip.quantize import exact_bits

    # frames of a large input, made small: each is coded on its own
    engine, _ = load_engine(tiny_gru)
    symbols = np.frombuffer(_text(300, seed=4), np.uint8).astype(np.int64)
    monkeypatch.setattr(evaluate_module, "FRAME_SIZE", 5000)
    frames = evaluate_module._frames(len(symbols), 2, engine)
    assert len(frames) > 2
    bits, _, _ = evaluate_module._exact_detail(engine, symbols, frames, 256)
    for start, end, asked, _, _ in frames:
        assert math.isclose(bits[start:end].sum(),
                            exact_bits(engine, symbols[start:end], asked),
                            rel_tol=1e-9)


def test_a_card_sets_the_segment_size_of_compress_and_eval(make_model, files,
                                                          tmp_path):
    from rnnzip import modeldir

    model_dir = make_model("rnn", 1, 16, 7, "tiny-rnn-short-segments")
    card = modeldir.read_card(str(model_dir))
    card["coding"] = {"min_segment": 1024}
    modeldir.write_card(str(model_dir), card)
    size = os.path.getsize(files["text"])
    assert size // 4096 == 4  # the default would take 4 segments

    out = tmp_path / "text.rnz"
    result = CliRunner().invoke(main, ["compress", "-f", "-m", str(model_dir),
                                       "-o", str(out), files["text"]])
    assert result.exit_code == 0, result.output
    report = evaluate([files["text"]], str(model_dir), classical=False)
    archive = report["files"][0]["archive"]
    assert archive["segments"] == size // 1024
    assert archive["bytes"] == out.stat().st_size
    result = CliRunner().invoke(main, ["decompress", "-c", str(out)])
    with open(files["text"], "rb") as f:
        assert result.stdout_bytes == f.read()


def test_a_bad_segment_size_on_a_card_is_refused(make_model, files):
    from rnnzip import modeldir

    model_dir = make_model("rnn", 1, 16, 8, "tiny-rnn-bad-segments")
    card = modeldir.read_card(str(model_dir))
    card["coding"] = {"min_segment": 0}
    modeldir.write_card(str(model_dir), card)
    result = CliRunner().invoke(main, ["compress", "-c", "-m", str(model_dir),
                                       files["text"]])
    assert result.exit_code != 0
    assert "coding.min_segment" in result.output


def test_mixing_is_a_part_of_its_own(tiny_gru, files, tmp_path, write_model_dir):
    # the same tiny network, its card asking for context mixing: the exact
    # figures are the network's, the mixing part is what mixing saved
    mixed_dir = tmp_path / "tiny-gru-mixed"
    write_model_dir(str(mixed_dir), "gru", 1, 16, 0, "tiny-gru-mixed")
    card = json.loads((mixed_dir / "card.json").read_text())
    card["coding"] = {"mix": True}
    (mixed_dir / "card.json").write_text(json.dumps(card))
    plain = evaluate([files["text"]], tiny_gru, classical=False)["files"][0]
    mixed = evaluate([files["text"]], str(mixed_dir), classical=False)["files"][0]
    assert mixed["archive"]["mix"] and not plain["archive"]["mix"]
    assert mixed["exact"]["bits"] == plain["exact"]["bits"]
    assert plain["archive"]["parts"]["mixing"]["bits"] == 0
    saved = mixed["archive"]["parts"]["mixing"]["bits"]
    assert saved < 0
    assert math.isclose(_parts_bits(mixed["archive"]), 8 * mixed["archive"]["bytes"],
                        rel_tol=1e-12, abs_tol=1e-6)
    assert mixed["archive"]["bytes"] < plain["archive"]["bytes"]
