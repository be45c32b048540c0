"""The command line: help, version, train, generate and their errors."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from textgen import write_corpus

from rnnzip import __version__
from rnnzip.cli import main

COMMANDS = ["train", "generate", "quantize", "eval", "compress", "decompress", "info",
            "test", "models"]

# a byte model small enough to train in about a second
TINY = ["--cell", "gru", "--num-hiddens", "32", "--batch-size", "8",
        "--num-steps", "16", "--optimizer", "adam", "--lr", "0.01", "--epochs", "3",
        "--device", "cpu"]


def _run_cli(*args, cwd):
    """Run the installed command line in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "rnnzip.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    corpus = write_corpus(root / "corpus.txt")
    out_dir = str(root / "tiny")
    result = CliRunner().invoke(main, ["train", corpus, "-o", out_dir, *TINY])
    assert result.exit_code == 0, result.output
    return out_dir, result


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: main {command} ")
    # the first docstring line shows up as the summary
    assert len(result.stdout.splitlines()) > 3


def test_main_help_lists_every_command():
    result = CliRunner().invoke(main, ["-h"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f"  {command} " in result.stdout
    assert "Known limits" in result.stdout


def test_version():
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(main, [flag])
        assert result.exit_code == 0
        assert result.stdout == f"rnnzip, version {__version__}\n"


def test_version_and_help_in_a_subprocess(tmp_path):
    proc = _run_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"rnnzip, version {__version__}"
    assert proc.stderr == ""

    proc = _run_cli("train", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "--preset [d2l]" in proc.stdout


@pytest.mark.parametrize("content, message", [
    (None, "corpus file not found: 'corpus.txt'"),
    (b"", "the corpus is empty"),
], ids=["missing", "empty"])
def test_train_on_a_bad_corpus_fails_in_one_line(tmp_path, content, message):
    corpus = "corpus.txt"
    if content is not None:
        (tmp_path / corpus).write_bytes(content)
    proc = _run_cli("train", corpus, "-o", "out", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode in (1, 2)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rnnzip: error: ")
    assert message in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()


def test_train_on_a_bad_corpus_with_click_runner(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    runner = CliRunner()
    for name in ("missing.txt", "empty.txt"):
        result = runner.invoke(main, ["train", str(tmp_path / name), "-o",
                                      str(tmp_path / "out"), "--device", "cpu"])
        assert result.exit_code == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("rnnzip: error: ")


def test_train_without_output_is_a_usage_error(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    result = CliRunner().invoke(main, ["train", corpus])
    assert result.exit_code == 2
    assert "-o" in result.stderr


def test_train_writes_a_model_and_keeps_stdout_clean(tiny_model):
    out_dir, result = tiny_model
    # stdout is for data; progress and the summary go to stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["1/3", "2/3", "3/3"]
    assert lines[-1].startswith("perplexity ")
    assert lines[-1].endswith("tokens/sec on cpu(0)")

    with open(os.path.join(out_dir, "card.json")) as f:
        card = json.load(f)
    assert card["architecture"] == {"cell": "gru", "num_layers": 1,
                                    "num_hiddens": 32, "vocab_size": 256}
    assert card["hyperparameters"]["optimizer"] == "adam"
    assert card["epochs_run"] == 3
    assert os.path.exists(os.path.join(out_dir, "exact.npz"))


def test_generate_continues_the_prefix(tiny_model):
    out_dir, _ = tiny_model
    prefix = "the time "
    result = CliRunner().invoke(main, ["generate", out_dir, "--prefix", prefix,
                                       "-n", "20", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    # click.echo adds one newline; the text itself may hold newlines too
    assert result.stdout.endswith("\n")
    text = result.stdout[:-1]
    assert text.startswith(prefix)
    assert len(text) == len(prefix) + 20


def test_generate_samples_repeatably_with_a_seed(tiny_model):
    out_dir, _ = tiny_model
    args = ["generate", out_dir, "--prefix", "his ", "-n", "30",
            "--temperature", "1", "--seed", "7", "--device", "cpu"]
    first = CliRunner().invoke(main, args)
    again = CliRunner().invoke(main, args)
    assert first.exit_code == 0
    assert first.stdout == again.stdout
    assert first.stdout.startswith("his ")


def test_generate_in_a_subprocess(tiny_model, tmp_path):
    out_dir, _ = tiny_model
    proc = _run_cli("generate", out_dir, "--prefix", "the ", "-n", "5",
                    "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("the ")
    assert len(proc.stdout) == len("the ") + 5 + 1
    assert "Traceback" not in proc.stderr


def test_generate_from_a_missing_model_fails_in_one_line(tmp_path):
    proc = _run_cli("generate", str(tmp_path / "nothing"), "--device", "cpu",
                    cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "model directory not found" in lines[0]


def test_preset_d2l_sets_the_books_hyperparameters(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    out_dir = str(tmp_path / "d2l")
    result = CliRunner().invoke(main, [
        "train", corpus, "-o", out_dir, "--preset", "d2l", "--epochs", "2",
        "--max-tokens", "3000", "--num-hiddens", "16", "--device", "cpu"])
    assert result.exit_code == 0, result.output

    with open(os.path.join(out_dir, "card.json")) as f:
        card = json.load(f)

    # the book's character vocabulary: '<unk>', then lowercase letters and space
    alphabet = card["alphabet"]
    assert alphabet["kind"] == "d2l"
    assert alphabet["tokens"][0] == "<unk>"
    assert set(alphabet["tokens"][1:]) <= set("abcdefghijklmnopqrstuvwxyz ")
    assert alphabet["vocab_size"] == len(alphabet["tokens"])

    # the preset fills in the book's run; the given options override it
    hyper = card["hyperparameters"]
    assert hyper["preset"] == "d2l"
    assert hyper["cell"] == "rnn"
    assert hyper["num_layers"] == 1
    assert hyper["batch_size"] == 32
    assert hyper["num_steps"] == 35
    assert hyper["lr"] == 1
    assert hyper["optimizer"] == "sgd"
    assert hyper["clip"] == 1
    assert hyper["init_sigma"] == 0.01
    assert hyper["partition"] == "sequential"
    assert hyper["alphabet"] == "d2l"
    assert hyper["epochs"] == 2
    assert hyper["max_tokens"] == 3000
    assert hyper["num_hiddens"] == 16
    assert card["architecture"]["num_hiddens"] == 16
    assert card["split"]["train_symbols"] == 3000
    assert card["epochs_run"] == 2

    # generation speaks the model's own alphabet
    result = CliRunner().invoke(main, ["generate", out_dir, "-n", "10",
                                       "--device", "cpu"])
    assert result.exit_code == 0
    assert result.stdout.startswith("time traveller")
    assert len(result.stdout) == len("time traveller") + 10 + 1


def test_quantize_derives_the_same_exact_model_and_measures_its_loss(tiny_model,
                                                                     tmp_path):
    import shutil

    out_dir, _ = tiny_model
    copy = str(tmp_path / "copy")
    shutil.copytree(out_dir, copy)
    with open(os.path.join(copy, "card.json")) as f:
        before = json.load(f)["exact"]
    corpus = str(tmp_path / "corpus.txt")
    shutil.copy(os.path.join(os.path.dirname(out_dir), "corpus.txt"), corpus)

    result = CliRunner().invoke(main, ["quantize", copy, corpus])
    assert result.exit_code == 0, result.output
    with open(os.path.join(copy, "card.json")) as f:
        card = json.load(f)
    # plain rounding is deterministic: the same identity as training wrote
    assert card["exact"]["identity"] == before["identity"]
    assert card["exact"]["float_bpc"] == before["float_bpc"]
    assert card["exact"]["exact_bpc"] == before["exact_bpc"]
    assert "loss" in result.stderr and "held-out symbols" in result.stderr
    assert card["size_on_disk"] > os.path.getsize(os.path.join(copy, "exact.npz"))
