"""The numpy and MXNet back-ends give identical frequencies and archives."""

import io
import itertools
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnnzip
from rnnzip import codec, container, engines
from rnnzip.mixer import PROFILES

CELLS = ["gru", "rnn", "lstm", "gru2"]
DATA = ("Time traveller, said the Psychologist: «Ελληνικά» 中文 😀\r\n" * 4).encode()


def _mxnet():
    return pytest.importorskip("mxnet")


def _num_gpus():
    mx = _mxnet()
    try:
        return mx.context.num_gpus()
    except Exception:
        return 0


def _engines(name, ctx):
    from rnnzip.exact_mx import MXNetExactModel

    engine, model_name = engines.load_engine(name, backend="numpy")
    return engine, MXNetExactModel(engine, ctx), model_name


def _archive(engine, name, data, **kwargs):
    out = io.BytesIO()
    # keep frames coded even where the tiny model expands them
    kwargs.setdefault("store_incompressible", False)
    container.write_archive(engine, name, io.BytesIO(data), out, **kwargs)
    return out.getvalue()


def _decode(engine, packed):
    out = io.BytesIO()
    container.read_archive(io.BytesIO(packed), out, lambda n, i: engine)
    return out.getvalue()


def _check_backends_agree(name, ctx):
    np_engine, mx_engine, model_name = _engines(name, ctx)
    assert mx_engine.identity == np_engine.identity

    # identical frequencies, many steps per call and one step at a time
    symbols = np.frombuffer(DATA, dtype=np.uint8).astype(np.int64)
    seg_len, lengths = codec.segment_layout(len(symbols), 5)
    assert lengths[-1] < seg_len
    for view, mix in itertools.product(
            (codec.frequencies_stepwise, _frame_freqs),
            (False, True, PROFILES[5])):  # 5 adapts the network's head
        want = view(np_engine, symbols, seg_len, lengths, mix=mix)
        got = view(mx_engine, symbols, seg_len, lengths, mix=mix)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)

    # byte-identical archives, each decoded by the other back-end, with and
    # without context mixing
    for kwargs in ({"num_segments": 4}, {"frame_size": 100, "num_segments": 3},
                   {"num_segments": 4, "mix": True}):
        a = _archive(np_engine, model_name, DATA, **kwargs)
        b = _archive(mx_engine, model_name, DATA, **kwargs)
        assert a == b
        assert _decode(mx_engine, a) == DATA
        assert _decode(np_engine, b) == DATA


def _frame_freqs(engine, symbols, seg_len, lengths, mix=False):
    return np.concatenate([f for _, f in codec.frame_frequencies(
        engine, symbols, seg_len, lengths, mix)])


@pytest.mark.parametrize("cell", CELLS)
def test_numpy_and_mxnet_cpu_agree(tiny_models, cell):
    mx = _mxnet()
    _check_backends_agree(tiny_models[cell], mx.cpu())


@pytest.mark.parametrize("cell", CELLS)
def test_numpy_and_mxnet_gpu_agree(tiny_models, cell):
    if _num_gpus() == 0:
        pytest.skip("MXNet sees no GPU")
    mx = _mxnet()
    _check_backends_agree(tiny_models[cell], mx.gpu(0))


@pytest.mark.parametrize("cell", CELLS)
def test_extended_tables_equal_clamped_lookups(tiny_models, cell, monkeypatch):
    # the numpy engine serves bounded indices from extended tables; with them
    # turned off it clamps every index at run time, as the rules say
    from rnnzip import exact

    fast, _ = engines.load_engine(tiny_models[cell], backend="numpy")
    tables = [t for layer in fast.layers for t in layer.values()
              if isinstance(t, exact._Table)]
    assert tables and not any(t.clamp for t in tables)
    assert not fast.exp_clamp
    monkeypatch.setattr(exact, "EXTEND_LIMIT", 0)
    slow = exact.ExactModel(fast.arrays, fast.meta)
    assert all(t.clamp for layer in slow.layers for t in layer.values()
               if isinstance(t, exact._Table))
    assert slow.exp_clamp
    symbols = np.frombuffer(DATA, dtype=np.uint8).astype(np.int64)
    seg_len, lengths = codec.segment_layout(len(symbols), 5)
    want = codec.frequencies_stepwise(slow, symbols, seg_len, lengths)
    got = codec.frequencies_stepwise(fast, symbols, seg_len, lengths)
    assert np.array_equal(got, want)


def test_library_backend_option(tiny_gru):
    _mxnet()
    a = rnnzip.compress(DATA, model=tiny_gru, backend="numpy")
    b = rnnzip.compress(DATA, model=tiny_gru, backend="mxnet", device="cpu")
    assert a == b
    assert rnnzip.decompress(a, backend="mxnet", device="cpu") == DATA
    assert rnnzip.decompress(b, backend="numpy") == DATA
    assert rnnzip.decompress(b) == DATA


def test_unknown_backend_is_refused(tiny_gru):
    with pytest.raises(ValueError, match="backend must be one of"):
        rnnzip.compress(DATA, model=tiny_gru, backend="torch")


def test_numpy_backend_never_imports_mxnet(tiny_gru, cli_env):
    code = textwrap.dedent(f"""
        import sys
        import rnnzip
        data = "numpy only, ça va? 中文".encode() * 20
        packed = rnnzip.compress(data, model={tiny_gru!r})
        assert rnnzip.decompress(packed) == data
        packed = rnnzip.compress(data, model={tiny_gru!r}, backend="numpy")
        assert rnnzip.decompress(packed, backend="numpy") == data
        assert "mxnet" not in sys.modules, "mxnet was imported"
        print("ok", len(packed))
    """)
    run = subprocess.run([sys.executable, "-c", code], env=cli_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok ")


def test_cli_numpy_backend_never_imports_mxnet(tiny_gru, cli_env, tmp_path):
    # run the command line in-process in a fresh interpreter, then look
    code = textwrap.dedent(f"""
        import sys
        from rnnzip import cli
        for argv in (["compress", "-f", {str(tmp_path / "a")!r}, "-m",
                      {tiny_gru!r}],
                     ["decompress", "-f", {str(tmp_path / "a.rnz")!r}]):
            try:
                cli.main(argv)
            except SystemExit as exc:
                assert exc.code in (0, None), exc.code
        assert "mxnet" not in sys.modules, "mxnet was imported"
        print("ok")
    """)
    (tmp_path / "a").write_bytes(b"hello, numpy " * 30)
    run = subprocess.run([sys.executable, "-c", code], env=cli_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "ok\n"
    assert (tmp_path / "a").read_bytes() == b"hello, numpy " * 30
