"""Shared fixtures: tiny fixed-seed byte models, made without MXNet or a corpus.

The models are random, not trained, but their weights are large enough that
their predictions are far from uniform. They live in one directory that is put
on ``RNNZIP_MODEL_PATH``, so the library and the command line (also in a
subprocess) find them by name and by identity.
"""

import os

import numpy as np
import pytest

from rnnzip import exact, modeldir, quantize

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
VOCAB_SIZE = 256


def random_params(cell, num_layers, num_hiddens, seed, std=0.5):
    """Float parameters in the shapes of ``rnnzip.model.param_arrays``."""
    rng = np.random.default_rng(seed)
    G, H = GATES[cell], num_hiddens
    params = {}
    for k in range(num_layers):
        inputs = VOCAB_SIZE if k == 0 else H
        params[f"l{k}_i2h_weight"] = rng.normal(0, std, (G * H, inputs))
        params[f"l{k}_h2h_weight"] = rng.normal(0, std, (G * H, H))
        params[f"l{k}_i2h_bias"] = rng.normal(0, std, G * H)
        params[f"l{k}_h2h_bias"] = rng.normal(0, std, G * H)
    params["dense_weight"] = rng.normal(0, std, (VOCAB_SIZE, H))
    params["dense_bias"] = rng.normal(0, std, VOCAB_SIZE)
    return {k: v.astype(np.float32) for k, v in params.items()}


def write_model_dir(model_dir, cell, num_layers, num_hiddens, seed, name):
    """Quantize random parameters and write a complete model directory."""
    params = random_params(cell, num_layers, num_hiddens, seed)
    engine = quantize.quantize_params(params, cell, num_layers, num_hiddens,
                                      VOCAB_SIZE, name=name)
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, modeldir.EXACT_NAME)
    identity = exact.save_exact(path, engine.arrays, engine.meta)
    card = {
        "format_version": modeldir.CARD_FORMAT,
        "name": name,
        "architecture": {"cell": cell, "num_layers": num_layers,
                         "num_hiddens": num_hiddens, "vocab_size": VOCAB_SIZE},
        "alphabet": {"kind": "bytes", "vocab_size": VOCAB_SIZE},
        "exact": {"engine_version": exact.ENGINE_VERSION, "identity": identity,
                  "sha256": modeldir.file_sha256(path),
                  "bytes": os.path.getsize(path)},
    }
    modeldir.write_card(model_dir, card)
    return identity


@pytest.fixture(scope="session")
def model_root(tmp_path_factory):
    """The directory holding every test model, first on RNNZIP_MODEL_PATH."""
    root = tmp_path_factory.mktemp("models")
    old = os.environ.get("RNNZIP_MODEL_PATH")
    os.environ["RNNZIP_MODEL_PATH"] = str(root)
    yield root
    if old is None:
        os.environ.pop("RNNZIP_MODEL_PATH", None)
    else:
        os.environ["RNNZIP_MODEL_PATH"] = old


@pytest.fixture(scope="session")
def make_model(model_root):
    """Factory: (cell, layers, hiddens, seed, name) -> model directory.

    The same arguments give the same directory; the name defaults to one made
    from the arguments.
    """
    made = {}

    def make(cell="gru", layers=1, hiddens=16, seed=0, name=None):
        name = name or f"tiny-{cell}-{layers}x{hiddens}-s{seed}"
        key = (cell, layers, hiddens, seed, name)
        if key not in made:
            model_dir = model_root / name
            assert not model_dir.exists(), f"model name {name!r} used twice"
            write_model_dir(str(model_dir), cell, layers, hiddens, seed, name)
            made[key] = model_dir
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_gru(make_model):
    """Name of a one-layer GRU with 16 hidden units, seed 0."""
    make_model("gru", 1, 16, 0, "tiny-gru")
    return "tiny-gru"


@pytest.fixture(scope="session")
def tiny_models(make_model, tiny_gru):
    """Names of tiny models covering every cell and a 2-layer stack."""
    make_model("rnn", 1, 16, 1, "tiny-rnn")
    make_model("lstm", 1, 16, 2, "tiny-lstm")
    make_model("gru", 2, 24, 3, "tiny-gru2")
    return {"gru": tiny_gru, "rnn": "tiny-rnn", "lstm": "tiny-lstm",
            "gru2": "tiny-gru2"}


@pytest.fixture(scope="session", name="write_model_dir")
def _write_model_dir():
    """The function that writes a model directory, for models off the path."""
    return write_model_dir


@pytest.fixture(scope="session")
def cli_env(model_root):
    """Environment for a subprocess that runs the command line."""
    env = dict(os.environ)
    env["RNNZIP_MODEL_PATH"] = str(model_root)
    env.pop("PYTHONSTARTUP", None)
    return env
