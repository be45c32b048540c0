"""The command line's compress, decompress, test and info, run as a user would."""

import os
import subprocess
import sys

import pytest

DATA = ("A line of text, ça va? Ελληνικά 中文 😀\r\n" * 20).encode()


@pytest.fixture
def run(cli_env, tiny_gru, tmp_path):
    """Run ``rnnzip ARGS`` in ``tmp_path``; return the completed process."""

    def run(*args, input=None, expect=None):
        proc = subprocess.run([sys.executable, "-m", "rnnzip.cli", *args],
                              input=input, capture_output=True, env=cli_env,
                              cwd=tmp_path, timeout=120)
        stderr = proc.stderr.decode("utf-8", errors="replace")
        assert "Traceback" not in stderr
        if expect is not None:
            assert proc.returncode == expect, stderr
        return proc

    return run


@pytest.fixture
def plain(tmp_path):
    """A file to compress."""
    path = tmp_path / "plain.txt"
    path.write_bytes(DATA)
    return path


def _err(proc):
    return proc.stderr.decode("utf-8")


def _listing(directory):
    return sorted(os.listdir(directory))


def test_compress_writes_archive_and_keeps_input(run, plain, tmp_path):
    proc = run("compress", "plain.txt", "-m", "tiny-gru", expect=0)
    assert proc.stdout == b""
    assert proc.stderr == b""  # silent on success
    assert plain.read_bytes() == DATA
    archive = tmp_path / "plain.txt.rnz"
    assert archive.read_bytes()[:8] == b"\x89RNZ\r\n\x1a\n"
    assert _listing(tmp_path) == ["plain.txt", "plain.txt.rnz"]

    # and back, once the original is gone
    plain.unlink()
    run("decompress", "plain.txt.rnz", expect=0)
    assert plain.read_bytes() == DATA
    assert archive.exists()


def test_decompress_refuses_to_overwrite_without_force(run, plain, tmp_path):
    run("compress", "plain.txt", "-m", "tiny-gru", expect=0)
    plain.write_bytes(b"precious")
    proc = run("decompress", "plain.txt.rnz", expect=1)
    assert _err(proc) == "rnnzip: error: plain.txt: already exists; use -f to " \
                         "overwrite\n"
    assert plain.read_bytes() == b"precious"
    assert _listing(tmp_path) == ["plain.txt", "plain.txt.rnz"]

    run("decompress", "-f", "plain.txt.rnz", expect=0)
    assert plain.read_bytes() == DATA


def test_compress_refuses_to_overwrite_without_force(run, plain, tmp_path):
    (tmp_path / "plain.txt.rnz").write_bytes(b"old archive")
    proc = run("compress", "plain.txt", "-m", "tiny-gru", expect=1)
    assert "already exists; use -f to overwrite" in _err(proc)
    assert (tmp_path / "plain.txt.rnz").read_bytes() == b"old archive"
    run("compress", "-f", "plain.txt", "-m", "tiny-gru", expect=0)
    assert (tmp_path / "plain.txt.rnz").read_bytes()[:4] == b"\x89RNZ"


def test_stdout_flag(run, plain, tmp_path):
    packed = run("compress", "-c", "plain.txt", "-m", "tiny-gru", expect=0).stdout
    assert packed[:8] == b"\x89RNZ\r\n\x1a\n"
    assert _listing(tmp_path) == ["plain.txt"]

    (tmp_path / "x.rnz").write_bytes(packed)
    proc = run("decompress", "-c", "x.rnz", expect=0)
    assert proc.stdout == DATA
    assert _listing(tmp_path) == ["plain.txt", "x.rnz"]


@pytest.mark.parametrize("args", [(), ("-",)])
def test_stdin_to_stdout(run, args):
    packed = run("compress", "-m", "tiny-gru", *args, input=DATA, expect=0).stdout
    assert packed[:4] == b"\x89RNZ"
    assert run("decompress", *args, input=packed, expect=0).stdout == DATA
    assert run("test", "-", input=packed, expect=0).stdout == b""


def test_output_option(run, plain, tmp_path):
    run("compress", "plain.txt", "-m", "tiny-gru", "-o", "packed.bin", expect=0)
    assert _listing(tmp_path) == ["packed.bin", "plain.txt"]
    run("decompress", "packed.bin", "-o", "restored.txt", expect=0)
    assert (tmp_path / "restored.txt").read_bytes() == DATA
    assert _listing(tmp_path) == ["packed.bin", "plain.txt", "restored.txt"]


def test_rm_removes_input_after_success(run, plain, tmp_path):
    run("compress", "--rm", "plain.txt", "-m", "tiny-gru", expect=0)
    assert _listing(tmp_path) == ["plain.txt.rnz"]
    run("decompress", "--rm", "plain.txt.rnz", expect=0)
    assert _listing(tmp_path) == ["plain.txt"]
    assert plain.read_bytes() == DATA


def test_rm_keeps_input_after_failure(run, plain, tmp_path):
    (tmp_path / "bad.rnz").write_bytes(b"\x89RNZ\r\n\x1a\n" + bytes(60))
    run("decompress", "--rm", "bad.rnz", expect=1)
    assert _listing(tmp_path) == ["bad.rnz", "plain.txt"]


def test_output_with_two_inputs_is_a_usage_error(run, plain, tmp_path):
    (tmp_path / "other.txt").write_bytes(b"other")
    proc = run("compress", "plain.txt", "other.txt", "-o", "out.rnz",
               "-m", "tiny-gru", expect=2)
    assert "-o/--output takes a single input file" in _err(proc)
    assert "Usage:" in _err(proc)
    assert _listing(tmp_path) == ["other.txt", "plain.txt"]


def test_several_inputs(run, plain, tmp_path):
    (tmp_path / "other.txt").write_bytes(b"other bytes\n")
    run("compress", "plain.txt", "other.txt", "-m", "tiny-gru", expect=0)
    plain.unlink()
    (tmp_path / "other.txt").unlink()
    run("decompress", "plain.txt.rnz", "other.txt.rnz", expect=0)
    assert plain.read_bytes() == DATA
    assert (tmp_path / "other.txt").read_bytes() == b"other bytes\n"


@pytest.mark.parametrize("damage", ["flip", "truncate", "trailing"])
def test_corrupt_archive_leaves_no_output(run, plain, tmp_path, damage):
    run("compress", "plain.txt", "-m", "tiny-gru", expect=0)
    plain.unlink()
    archive = tmp_path / "plain.txt.rnz"
    packed = archive.read_bytes()
    if damage == "flip":
        packed = packed[:-40] + bytes([packed[-40] ^ 0x10]) + packed[-39:]
        message = "checksum mismatch"
    elif damage == "truncate":
        packed = packed[:len(packed) // 2]
        message = "truncated archive"
    else:
        packed += b"\n"
        message = "trailing data after the end of the archive"
    archive.write_bytes(packed)

    proc = run("decompress", "plain.txt.rnz", expect=1)
    err = _err(proc)
    assert err.startswith("rnnzip: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert _listing(tmp_path) == ["plain.txt.rnz"]  # no output, no temporary

    # an existing output stays as it was, even with -f
    plain.write_bytes(b"keep me")
    run("decompress", "-f", "plain.txt.rnz", expect=1)
    assert plain.read_bytes() == b"keep me"
    assert _listing(tmp_path) == ["plain.txt", "plain.txt.rnz"]

    run("test", "plain.txt.rnz", expect=1)


def test_decompress_needs_the_suffix(run, plain, tmp_path):
    proc = run("decompress", "plain.txt", expect=1)
    assert _err(proc) == ("rnnzip: error: plain.txt: unknown suffix, expected .rnz;"
                          " use -o to name the output\n")
    assert _listing(tmp_path) == ["plain.txt"]


def test_compress_leaves_archives_alone(run, plain, tmp_path):
    run("compress", "plain.txt", "-m", "tiny-gru", expect=0)
    proc = run("compress", "plain.txt.rnz", "-m", "tiny-gru", expect=1)
    assert "already has the .rnz suffix" in _err(proc)
    assert _listing(tmp_path) == ["plain.txt", "plain.txt.rnz"]


def test_test_command(run, plain, tmp_path):
    run("compress", "plain.txt", "-m", "tiny-gru", expect=0)
    proc = run("test", "plain.txt.rnz", expect=0)
    assert proc.stdout == b"" and proc.stderr == b""
    proc = run("test", "-v", "plain.txt.rnz", expect=0)
    assert _err(proc) == "plain.txt.rnz: OK\n"

    # a bad archive fails, a good one beside it is still checked
    (tmp_path / "bad.rnz").write_bytes(b"not an archive at all")
    proc = run("test", "-v", "bad.rnz", "plain.txt.rnz", expect=1)
    assert _err(proc) == ("rnnzip: error: not an rnnzip archive (its first bytes "
                          "are not the rnnzip magic bytes)\nplain.txt.rnz: OK\n")
    assert _listing(tmp_path) == ["bad.rnz", "plain.txt", "plain.txt.rnz"]


def test_info_command(run, plain, tmp_path, tiny_gru):
    run("compress", "plain.txt", "-m", "tiny-gru", expect=0)
    size = (tmp_path / "plain.txt.rnz").stat().st_size
    out = run("info", "plain.txt.rnz", expect=0).stdout.decode()
    lines = [line.split(None, 1) for line in out.splitlines()[1:]]
    fields = dict(lines)
    assert out.splitlines()[0] == "plain.txt.rnz"
    assert fields["model"] == "tiny-gru (installed)"
    assert fields["original"].startswith(f"{len(DATA):,} bytes, crc32 ")
    assert fields["archive"].startswith(f"{size:,} bytes (")
    assert fields["bpc"] == f"{8 * size / len(DATA):.4f}"
    assert fields["format"] == "version 1, context mixing off"
    assert len(fields["identity"]) == 64


def test_mix_option_reaches_the_archive(run, plain, tmp_path):
    run("compress", "--mix", "-o", "mixed.rnz", "plain.txt", "-m", "tiny-gru",
        expect=0)
    run("compress", "--no-mix", "-o", "plain.rnz", "plain.txt", "-m", "tiny-gru",
        expect=0)
    for name, state in (("mixed.rnz", "on (full profile)"), ("plain.rnz", "off")):
        out = run("info", name, expect=0).stdout.decode()
        assert f"version 1, context mixing {state}" in out
        restored = run("decompress", "-c", name, expect=0).stdout
        assert restored == (tmp_path / "plain.txt").read_bytes()
    assert ((tmp_path / "mixed.rnz").read_bytes()
            != (tmp_path / "plain.rnz").read_bytes())


def test_threads_option_decodes_the_same(run, plain, tmp_path):
    run("compress", "--mix", "plain.txt", "-m", "tiny-gru", expect=0)
    outs = [run("decompress", "-c", f"-T{n}", "plain.txt.rnz", expect=0).stdout
            for n in (1, 2, 0)]
    assert outs[0] == outs[1] == outs[2] == DATA
    run("test", "-T", "2", "plain.txt.rnz", expect=0)
    proc = run("decompress", "-c", "-T", "-1", "plain.txt.rnz", expect=2)
    assert "-T" in _err(proc) or "--threads" in _err(proc)


def test_verbose_reports_sizes_on_stderr(run, plain):
    proc = run("compress", "-v", "plain.txt", "-m", "tiny-gru", expect=0)
    err = _err(proc)
    assert err.startswith(f"plain.txt: {len(DATA):,} <-> ")
    assert " bpc, ideal " in err and err.endswith(" KB/s\n")
    assert proc.stdout == b""


def test_missing_input_file(run, tmp_path):
    proc = run("compress", "missing.txt", "-m", "tiny-gru", expect=1)
    assert _err(proc) == "rnnzip: error: missing.txt: No such file or directory\n"
    assert _listing(tmp_path) == []
    proc = run("decompress", "missing.rnz", expect=1)
    assert _err(proc) == "rnnzip: error: missing.rnz: No such file or directory\n"


def test_unknown_model_for_compress(run, plain, tmp_path):
    proc = run("compress", "plain.txt", "-m", "no-such-model", expect=1)
    err = _err(proc)
    assert err.startswith("rnnzip: error: model 'no-such-model' is not installed; "
                          "looked in ")
    assert err.count("\n") == 1
    assert _listing(tmp_path) == ["plain.txt"]


def test_archive_of_a_model_not_installed(run, plain, tmp_path, write_model_dir):
    model_dir = tmp_path / "elsewhere" / "gone-model"
    identity = write_model_dir(str(model_dir), "gru", 1, 16, 77, "gone-model")
    run("compress", "plain.txt", "-m", str(model_dir), expect=0)
    plain.unlink()
    proc = run("decompress", "plain.txt.rnz", expect=1)
    err = _err(proc)
    assert err.startswith("rnnzip: error: the archive was made with model "
                          f"'gone-model' (identity {identity[:16]}...), which is "
                          "not installed; looked in ")
    assert not plain.exists()
    out = run("info", "plain.txt.rnz", expect=0).stdout.decode()
    assert "gone-model (NOT installed)" in out
