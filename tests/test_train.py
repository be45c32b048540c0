"""Training runs, checkpoints and resuming, and model directories."""

import hashlib
import json
import math
import os

import click
import numpy as np
import pytest
from textgen import write_corpus

from rnnzip import modeldir, train as train_module
from rnnzip.data import Alphabet
from rnnzip.errors import ModelError
from rnnzip.model import param_arrays
from rnnzip.train import TrainConfig, evaluate_perplexity, load_float_model, train


def _tiny_config(**overrides):
    # a GRU of 32 on ~5 KB trains in well under a second per epoch
    values = dict(cell="gru", num_hiddens=32, batch_size=8, num_steps=16, lr=0.01,
                  optimizer="adam", epochs=3, log_every=1, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run shared by the card tests: (corpus path, model dir, card)."""
    root = tmp_path_factory.mktemp("trained")
    corpus = write_corpus(root / "corpus.txt")
    out_dir = str(root / "model")
    card = train([corpus], out_dir, _tiny_config(epochs=4), device="cpu")
    return corpus, out_dir, card


def test_training_lowers_validation_perplexity(trained):
    _, _, card = trained
    history = card["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]

    # log_every=1 measures validation perplexity after every epoch
    valid = [h["valid_perplexity"] for h in history]
    assert all(v is not None and v > 1 for v in valid)
    assert valid[-1] < valid[0]

    # a byte model that learned nothing would sit near 256
    assert valid[-1] < 40
    assert history[-1]["train_perplexity"] < history[0]["train_perplexity"]


def test_card_fields(trained):
    corpus, out_dir, card = trained
    assert card["format_version"] == modeldir.CARD_FORMAT
    assert card["name"] == "model"
    assert card["architecture"] == {"cell": "gru", "num_layers": 1,
                                    "num_hiddens": 32, "vocab_size": 256}
    assert card["alphabet"] == {"kind": "bytes", "vocab_size": 256}

    # the corpus is named with its size and hash, so a model can be traced
    with open(corpus, "rb") as f:
        raw = f.read()
    assert card["corpus"] == [{"path": "corpus.txt", "bytes": len(raw),
                               "sha256": hashlib.sha256(raw).hexdigest()}]
    assert card["split"]["train_symbols"] + card["split"]["valid_symbols"] == len(raw)
    assert card["split"]["valid_symbols"] == int(len(raw) * 0.1)

    hyper = card["hyperparameters"]
    assert hyper["cell"] == "gru"
    assert hyper["num_hiddens"] == 32
    assert hyper["batch_size"] == 8
    assert hyper["num_steps"] == 16
    assert hyper["optimizer"] == "adam"
    assert hyper["lr"] == 0.01
    assert hyper["epochs"] == 4
    assert "extra" not in hyper

    assert card["epochs_run"] == 4
    assert card["train_perplexity"] == card["history"][-1]["train_perplexity"]
    assert card["valid_perplexity"] == card["history"][-1]["valid_perplexity"]
    assert card["train_bpc"] == pytest.approx(math.log2(card["train_perplexity"]))
    assert card["valid_bpc"] == pytest.approx(math.log2(card["valid_perplexity"]))
    assert card["tokens_per_sec"] > 0
    assert card["device"] == "cpu(0)"
    assert card["date"][:2] == "20" and "T" in card["date"]

    # GRU: 3 gates of (input + hidden) weights and two biases, then the head
    gru = 3 * 32 * (256 + 32) + 2 * 3 * 32
    assert card["num_params"] == gru + 256 * 32 + 256
    params = os.path.join(out_dir, modeldir.PARAMS_NAME)
    assert card["params_sha256"] == modeldir.file_sha256(params)

    exact = card["exact"]
    assert len(exact["identity"]) == 64
    int(exact["identity"], 16)
    assert exact["sha256"] == modeldir.file_sha256(
        os.path.join(out_dir, modeldir.EXACT_NAME))
    # the exact integer model costs little against the float one
    assert exact["float_bpc"] > 0
    assert exact["exact_bpc"] == pytest.approx(exact["float_bpc"], rel=0.05)


def test_card_on_disk_is_the_returned_card(trained):
    _, out_dir, card = trained
    assert modeldir.read_card(out_dir) == card


def test_loaded_model_reproduces_the_card_perplexity(trained):
    corpus, out_dir, card = trained
    model, loaded_card, alphabet, ctx = load_float_model(out_dir, device="cpu")
    assert loaded_card == card
    assert alphabet.kind == "bytes"

    # the validation part is the tail of the corpus symbols
    with open(corpus, "rb") as f:
        symbols = Alphabet("bytes").encode(f.read())
    valid = symbols[-card["split"]["valid_symbols"]:]
    ppl = evaluate_perplexity(model, valid, ctx)
    assert ppl == pytest.approx(card["valid_perplexity"], rel=1e-4)


def test_card_round_trip(tmp_path):
    card = {"format_version": modeldir.CARD_FORMAT, "name": "x",
            "architecture": {"cell": "lstm", "num_layers": 2, "num_hiddens": 8,
                             "vocab_size": 256},
            "alphabet": {"kind": "bytes", "vocab_size": 256},
            "valid_bpc": 2.25, "history": [{"epoch": 1, "valid_perplexity": None}],
            "note": "caf\u00e9"}
    modeldir.write_card(str(tmp_path), card)
    assert modeldir.read_card(str(tmp_path)) == card
    # the atomic write leaves no temporary file behind
    assert os.listdir(tmp_path) == [modeldir.CARD_NAME]


def test_read_card_refuses_other_format_versions(tmp_path):
    card = {"format_version": modeldir.CARD_FORMAT + 1, "architecture": {},
            "alphabet": {}}
    modeldir.write_card(str(tmp_path), card)
    with pytest.raises(ModelError, match="format version"):
        modeldir.read_card(str(tmp_path))


def test_read_card_refuses_broken_json(tmp_path):
    (tmp_path / modeldir.CARD_NAME).write_text("{not json")
    with pytest.raises(ModelError, match="cannot read model card"):
        modeldir.read_card(str(tmp_path))


def _copy_model(src, dst):
    os.makedirs(dst)
    for name in (modeldir.CARD_NAME, modeldir.PARAMS_NAME):
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        with open(os.path.join(dst, name), "wb") as f:
            f.write(data)
    return str(dst)


def test_altered_weights_are_refused(trained, tmp_path):
    _, out_dir, _ = trained
    model_dir = _copy_model(out_dir, tmp_path / "altered")
    with open(os.path.join(model_dir, modeldir.PARAMS_NAME), "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="sha256") as excinfo:
        load_float_model(model_dir, device="cpu")
    assert "do not match the model card" in str(excinfo.value)


def test_missing_weights_are_refused(trained, tmp_path):
    _, out_dir, _ = trained
    model_dir = _copy_model(out_dir, tmp_path / "noweights")
    os.remove(os.path.join(model_dir, modeldir.PARAMS_NAME))
    with pytest.raises(ModelError, match="lacks its weights"):
        load_float_model(model_dir, device="cpu")


def test_a_directory_without_a_card_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no card.json"):
        load_float_model(str(tmp_path), device="cpu")
    with pytest.raises(ModelError, match="not found"):
        load_float_model(str(tmp_path / "absent"), device="cpu")


def test_a_corpus_too_small_for_one_batch_is_refused(tmp_path):
    corpus = tmp_path / "small.txt"
    corpus.write_bytes(b"time traveller " * 4)
    with pytest.raises(click.ClickException, match="corpus too small"):
        train([str(corpus)], str(tmp_path / "out"), _tiny_config(), device="cpu")


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    with pytest.raises(click.ClickException, match="nothing to resume"):
        train([corpus], str(tmp_path / "out"), _tiny_config(), device="cpu",
              resume=True)


def test_interrupted_run_resumes_where_its_checkpoint_left_off(tmp_path,
                                                               monkeypatch):
    corpus = write_corpus(tmp_path / "corpus.txt")
    # a checkpoint after every batch; Adam and carried state must both survive
    cfg = _tiny_config(epochs=3, checkpoint_seconds=0)

    # the run nobody interrupts is the reference
    reference = train([corpus], str(tmp_path / "reference"), cfg, device="cpu",
                      quantize=False)
    num_batches = reference["split"]["train_symbols"] // (8 * 16)

    # _detach runs once per batch after an epoch's first: stop in epoch 2
    calls = []
    real_detach = train_module._detach

    def interrupting_detach(state):
        calls.append(1)
        if len(calls) == num_batches + 5:
            raise KeyboardInterrupt
        return real_detach(state)

    monkeypatch.setattr(train_module, "_detach", interrupting_detach)
    out_dir = str(tmp_path / "interrupted")
    with pytest.raises(KeyboardInterrupt):
        train([corpus], out_dir, cfg, device="cpu", quantize=False)
    monkeypatch.setattr(train_module, "_detach", real_detach)

    # the checkpoint sits in the middle of epoch 2, with epoch 1 in its history
    assert not os.path.exists(os.path.join(out_dir, modeldir.CARD_NAME))
    with open(os.path.join(out_dir, "checkpoint", "meta.json")) as f:
        meta = json.load(f)
    assert meta["epoch"] == 2
    assert 0 < meta["batch"] < num_batches
    assert [h["epoch"] for h in meta["history"]] == [1]

    # the configuration comes from the checkpoint, whatever the caller passes
    card = train([corpus], out_dir, _tiny_config(epochs=1, lr=5.0), device="cpu",
                 resume=True, quantize=False)
    assert card["epochs_run"] == 3
    assert card["hyperparameters"] == reference["hyperparameters"]
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3]
    assert [h["tokens"] for h in card["history"]] == [
        h["tokens"] for h in reference["history"]]

    # picking up mid-epoch gives the run that was never stopped
    for got, want in zip(card["history"], reference["history"]):
        assert got["train_perplexity"] == pytest.approx(want["train_perplexity"],
                                                        rel=1e-5)
        assert got["valid_perplexity"] == pytest.approx(want["valid_perplexity"],
                                                        rel=1e-5)
    resumed, _, _, _ = load_float_model(out_dir, device="cpu")
    uninterrupted, _, _, _ = load_float_model(str(tmp_path / "reference"),
                                              device="cpu")
    got, want = param_arrays(resumed), param_arrays(uninterrupted)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)


def test_resuming_a_finished_run_trains_no_further_unless_asked(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    out_dir = str(tmp_path / "model")
    first = train([corpus], out_dir, _tiny_config(epochs=2), device="cpu",
                  quantize=False)

    # the configuration comes from the checkpoint: a finished run stays as it was
    card = train([corpus], out_dir, _tiny_config(epochs=4), device="cpu",
                 resume=True, quantize=False)
    assert card["epochs_run"] == 2
    assert card["history"] == first["history"]
    assert card["params_sha256"] == first["params_sha256"]
    assert card["tokens_per_sec"] > 0

    # epochs= raises the number of epochs and continues the same history
    card = train([corpus], out_dir, _tiny_config(), device="cpu", resume=True,
                 quantize=False, epochs=3)
    assert card["epochs_run"] == 3
    assert card["hyperparameters"]["epochs"] == 3
    assert card["history"][:2] == first["history"]
    assert card["params_sha256"] != first["params_sha256"]


def test_init_from_starts_at_the_base_weights(trained, tmp_path):
    corpus, base_dir, base_card = trained
    # with a learning rate of 0 the weights stay where they started
    card = train([corpus], str(tmp_path / "next"),
                 _tiny_config(epochs=1, lr=0.0, init_from=base_dir), device="cpu")
    base, _, _, _ = load_float_model(base_dir, device="cpu")
    model, _, _, _ = load_float_model(str(tmp_path / "next"), device="cpu")
    want, got = param_arrays(base), param_arrays(model)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])
    assert card["initialized_from"]["params_sha256"] == base_card["params_sha256"]
    assert card["initialized_from"]["epochs_run"] == 4
    assert card["hyperparameters"]["init_from"] == base_dir
    # and so its validation perplexity is the base model's
    assert card["valid_perplexity"] == pytest.approx(base_card["valid_perplexity"],
                                                     rel=1e-5)

    # with a learning rate the run goes on from there
    card = train([corpus], str(tmp_path / "more"),
                 _tiny_config(epochs=1, init_from=base_dir), device="cpu")
    assert card["valid_perplexity"] < base_card["history"][0]["valid_perplexity"]


def test_init_from_a_different_architecture_is_refused(trained, tmp_path):
    corpus, base_dir, _ = trained
    with pytest.raises(click.ClickException, match="gru 1 x 32"):
        train([corpus], str(tmp_path / "next"),
              _tiny_config(num_hiddens=16, init_from=base_dir), device="cpu")
