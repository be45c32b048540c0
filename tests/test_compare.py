"""The comparison benchmark: a --quick smoke run on two small files, and its parts."""

import csv
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # benchmarks/ is not installed with the package

from benchmarks import compare  # noqa: E402

TEXT = ("It was the best of times, it was the worst of times; ça va?\n" * 40).encode()
BINARY = bytes(range(256)) * 8


def _corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "small.txt").write_bytes(TEXT)
    (corpus / "bytes.bin").write_bytes(BINARY)
    return corpus


def _bin_with(tmp_path, programs):
    """A PATH directory holding only PROGRAMS: {name: real path or script}."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in programs.items():
        if target.startswith("#!"):
            (bin_dir / name).write_text(target)
            (bin_dir / name).chmod(0o755)
        else:
            (bin_dir / name).symlink_to(target)
    return str(bin_dir)


def _run(env, *args):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.compare", *args],
                          capture_output=True, env=env, cwd=ROOT, timeout=300,
                          check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_quick_run_writes_results_verifies_and_reports_missing(
        tmp_path, cli_env, tiny_gru):
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    gzip = shutil.which("gzip")
    env = dict(cli_env, PATH=_bin_with(tmp_path, {"gzip": gzip} if gzip else {}))
    code, stdout, stderr = _run(env, "--quick", "--corpus", str(corpus), "--out",
                                str(out), "--models", tiny_gru, "--contenders",
                                ",".join(compare.CLASSICAL))
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "## Summary over 1 text files" in stdout
    for name in ("results.csv", "results.json", "results.md", "chart.png"):
        assert (out / name).stat().st_size > 0

    # every contender has a row for every file, as measured or as missing
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (1 + len(compare.CLASSICAL))
    assert {r["file"] for r in rows} == {"small.txt", "bytes.bin"}
    measured = {"rnnzip tiny-gru"} | ({"gzip -9"} if gzip else set())
    for r in rows:
        assert " cores, " in r["machine"] and "rnnzip " in r["software"]
        if r["contender"] in measured:
            assert r["status"] == "measured"
            assert r["roundtrip_ok"] == "True"
            assert int(r["compressed_bytes"]) > 0
            assert float(r["decompress_MBps"]) > 0
            assert float(r["compress_peak_MiB"]) > 0
        else:
            assert r["status"] == "missing"
            assert "not found on PATH" in r["note"]
            assert r["roundtrip_ok"] == ""

    # the same in the JSON, with the machine and the versions
    results = json.loads((out / "results.json").read_text())
    assert all(r["roundtrip_ok"] for r in results["rows"]
               if r["status"] == "measured")
    assert results["machine"]["cores"] >= 1
    versions = results["machine"]["versions"]
    assert {"rnnzip", "mxnet", "numpy", "zstd --ultra -22"} <= set(versions)
    assert versions["zstd --ultra -22"] == "missing"
    assert results["settings"]["runs"] == 1
    assert results["summary"]["files"] == ["small.txt"]

    # and the reader is told, on stderr and in the report
    for label in ("bzip2 -9", "xz -9e", "zstd --ultra -22", "brotli -q 11",
                  "7-Zip PPMd o8"):
        assert f"missing: {label}:" in stderr
        assert f"- {label}: missing, " in (out / "results.md").read_text()


def test_failed_round_trip_and_failing_program_exit_nonzero(tmp_path, cli_env):
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    corrupts = (f"#!{sys.executable}\nimport sys\ndata = sys.stdin.buffer.read()\n"
                f"sys.stdout.buffer.write(data + (b'x' if '-d' in sys.argv else "
                f"b''))\n")
    crashes = f"#!{sys.executable}\nimport sys\nsys.exit(3)\n"
    env = dict(cli_env, PATH=_bin_with(tmp_path, {"gzip": corrupts,
                                                   "bzip2": crashes}))
    code, _, stderr = _run(env, "--quick", "--corpus", str(corpus), "--out",
                           str(out), "--models", "none", "--contenders", "gzip,bzip2")
    assert code == 1
    assert "ROUND TRIP FAILED: gzip -9 did not restore" in stderr
    assert "FAILED: bzip2 -9 on" in stderr

    # the results are written all the same, with the failures in them
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 4
    for r in rows:
        assert r["status"] == "failed"
        if r["contender"] == "gzip -9":
            assert r["roundtrip_ok"] is False
            assert r["compressed_bytes"] == r["bytes"]
        else:
            assert r["roundtrip_ok"] is None
            assert "exited with 3" in r["note"]
    assert "**gzip -9 FAILED on" in (out / "results.md").read_text()


def test_d2l_model_is_skipped_and_unknown_model_missing(
        tmp_path, model_root, write_model_dir):
    model_dir = model_root / "tiny-d2l-alphabet"
    write_model_dir(str(model_dir), "gru", 1, 8, 5, "tiny-d2l-alphabet")
    card = json.loads((model_dir / "card.json").read_text())
    card["alphabet"] = {"kind": "d2l", "vocab_size": 28}
    (model_dir / "card.json").write_text(json.dumps(card))

    contenders = compare.rnnzip_contenders(["tiny-d2l-alphabet", "no-such-model"],
                                           "auto", "auto")
    assert [(c.status, c.kind) for c in contenders] == [("skipped", "rnnzip"),
                                                        ("missing", "rnnzip")]
    assert "d2l" in contenders[0].note
    assert "not installed" in contenders[1].note


def test_model_variants_reach_the_commands(tiny_gru):
    plain, nomix_t1, bad = compare.rnnzip_contenders(
        [tiny_gru, f"{tiny_gru}+nomix+t1", f"{tiny_gru}+fast"], "auto", "auto")
    assert "--no-mix" not in plain.compress and "-T1" not in plain.decompress
    assert "--no-mix" in nomix_t1.compress and "-T1" in nomix_t1.decompress
    assert "-T1" not in nomix_t1.compress
    assert bad.status == "skipped" and "'fast'" in bad.note


def test_run_command_measures_the_child_not_the_benchmark(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(b"abc")
    keep = b"y" * (300 << 20)  # this process is large; the small child is not

    seconds, peak_kib, _ = compare.run_command(
        [sys.executable, "-S", "-c", "import sys; sys.stdout.write(sys.stdin.read())"],
        str(src), str(dst), str(tmp_path))
    assert dst.read_bytes() == b"abc"
    assert 0 < seconds < 30
    assert peak_kib < 100 << 10
    del keep

    # a child that takes 200 MiB is seen to
    _, peak_kib, _ = compare.run_command(
        [sys.executable, "-S", "-c", "x = b'z' * (200 << 20)"], str(src), str(dst),
        str(tmp_path))
    assert peak_kib > 200 << 10


def test_select_files_leaves_out_large_hidden_and_empty_files(tmp_path):
    for name, size in (("a.txt", 30), ("b", 20), ("c", 10), ("bible.txt", 5),
                       (".hidden", 1), ("empty", 0)):
        (tmp_path / name).write_bytes(b"x" * size)
    d = str(tmp_path)

    def names(files):
        return [os.path.basename(p) for p in files]

    assert names(compare.select_files([], [d], False, False)) == ["a.txt", "b", "c"]
    assert names(compare.select_files([], [d], True, False)) == ["a.txt", "b",
                                                                 "bible.txt", "c"]
    assert names(compare.select_files([], [d], False, True)) == ["c", "b"]
    assert compare.select_files(["z"], [d], False, True) == ["z"]


def test_is_text(tmp_path):
    path = tmp_path / "sample"
    for data, text in ((TEXT, True), (BINARY, False), (b"", False),
                       (b"tab\tand\r\nform\x0cfeed" * 50, True)):
        path.write_bytes(data)
        assert compare.is_text(str(path)) is text


def test_published_figures_only_for_the_canonical_files(tmp_path):
    fake = tmp_path / "alice29.txt"
    fake.write_bytes(b"not the real one")
    assert compare.published_rows([str(fake)]) == []

    fake.write_bytes(b"a" * 152089)
    rows = compare.published_rows([str(fake)])
    assert [(r["contender"], r["bits_per_byte"]) for r in rows] == [
        ("cmix v19", 1.645), ("ts_zip, 169M model, GPU", 1.142)]
    assert all(r["status"] == r["kind"] == "published" for r in rows)
    assert all(r["compressed_bytes"] is None and r["roundtrip_ok"] is None
               for r in rows)
    assert all("not measured here" in r["note"] for r in rows)
