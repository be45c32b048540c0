"""Training, after Dive into Deep Learning's "Concise Implementation of RNNs".

SGD (or Adam) on the softmax cross-entropy, gradients clipped to a global norm,
sequential minibatches whose state is carried and detached between batches (or
random ones with a fresh state each), perplexity and tokens/s reported.
Checkpoints are written as training goes, and ``resume=True`` continues a run.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field

import click
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd

from . import modeldir
from ._version import __version__
from .data import Alphabet, read_corpus, seq_data_iter_random, seq_data_iter_sequential
from .data import sha256_file
from .model import ModelConfig, RNNModel, device_name, get_device

__all__ = ["TrainConfig", "train", "evaluate_perplexity", "load_float_model",
           "D2L_PRESET"]

CHECKPOINT_DIR = "checkpoint"


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run."""

    cell: str = "gru"
    num_layers: int = 1
    num_hiddens: int = 256
    batch_size: int = 32
    num_steps: int = 35
    lr: float = 1.0
    optimizer: str = "sgd"
    clip: float = 1.0
    epochs: int = 10
    partition: str = "sequential"
    valid_frac: float = 0.1
    max_tokens: int = 0
    alphabet: str = "bytes"
    init_sigma: float = 0.0
    lr_decay: float = 1.0
    seed: int = 0
    checkpoint_seconds: float = 300.0
    init_from: str | None = None  # a model directory whose weights start the run
    log_every: int = 1
    preset: str | None = None
    extra: dict = field(default_factory=dict)


# The book's run (d2l 9.6, MXNet): RNN(256) with a Dense head on the first
# 10,000 preprocessed characters, batch 32, 35 steps, Normal(0.01) weights,
# SGD with lr 1, gradients clipped to norm 1, 500 epochs, sequential batches.
D2L_PRESET = dict(cell="rnn", num_layers=1, num_hiddens=256, batch_size=32,
                  num_steps=35, lr=1.0, optimizer="sgd", clip=1.0, epochs=500,
                  partition="sequential", max_tokens=10000, alphabet="d2l",
                  init_sigma=0.01, log_every=10, preset="d2l")


def _log(msg: str) -> None:
    click.echo(msg, err=True)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        pass


def _progressbar(length, label):
    """A progress bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        return _NoBar()
    return click.progressbar(length=length, file=sys.stderr, label=label,
                             item_show_func=lambda s: s)


def _detach(state):
    return [s.detach() for s in state]


def evaluate_perplexity(model, symbols, ctx, batch_size=32, num_steps=256) -> float:
    """Perplexity of the float model on a sequence, as rows carried in state.

    The sequence is cut into ``batch_size`` contiguous rows that start from a
    cold state, so a short evaluation pays a little for that start.
    """
    symbols = np.asarray(symbols)
    if len(symbols) < 2:
        return float("nan")
    batch_size = max(1, min(batch_size, (len(symbols) - 1) // 2))
    row = (len(symbols) - 1) // batch_size
    X = symbols[:batch_size * row].reshape(batch_size, row)
    Y = symbols[1:batch_size * row + 1].reshape(batch_size, row)
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    state = model.begin_state(batch_size=batch_size, ctx=ctx)
    total, count = 0.0, 0
    for i in range(0, row, num_steps):
        x = nd.array(X[:, i:i + num_steps], ctx=ctx)
        y = nd.array(Y[:, i:i + num_steps].T.reshape(-1), ctx=ctx)
        out, state = model(x, state)
        total += float(loss(out, y).sum().asscalar())
        count += y.size
    return math.exp(total / count)


def _build_model(cfg: TrainConfig, vocab_size: int, ctx):
    model = RNNModel(ModelConfig(cfg.cell, cfg.num_layers, cfg.num_hiddens, vocab_size))
    initializer = init.Normal(cfg.init_sigma) if cfg.init_sigma > 0 else init.Xavier()
    model.initialize(initializer, ctx=ctx)
    return model


def _make_trainer(model, cfg: TrainConfig):
    params = {"learning_rate": cfg.lr}
    return gluon.Trainer(model.collect_params(), cfg.optimizer, params)


def _split(symbols: np.ndarray, cfg: TrainConfig):
    n_valid = int(len(symbols) * cfg.valid_frac)
    train_part = symbols[:len(symbols) - n_valid]
    valid_part = symbols[len(symbols) - n_valid:]
    if cfg.max_tokens:
        train_part = train_part[:cfg.max_tokens]
    return train_part, valid_part


def _save_checkpoint(out_dir, model, trainer, meta, state):
    ckpt = os.path.join(out_dir, CHECKPOINT_DIR)
    tmp = ckpt + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    model.save_parameters(os.path.join(tmp, "params.params"))
    trainer.save_states(os.path.join(tmp, "trainer.states"))
    if state is not None:
        nd.save(os.path.join(tmp, "state.nd"), list(state))
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f)
    # swap directories so an interruption leaves the old or the new checkpoint
    old = ckpt + ".old"
    if os.path.exists(ckpt):
        os.replace(ckpt, old)
    os.replace(tmp, ckpt)
    if os.path.exists(old):
        for name in os.listdir(old):
            os.remove(os.path.join(old, name))
        os.rmdir(old)


def _plot(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(epochs, [h["train_perplexity"] for h in history], label="train")
    valid = [(h["epoch"], h["valid_perplexity"]) for h in history
             if h.get("valid_perplexity") is not None]
    if valid:
        ax.plot(*zip(*valid), label="validation", linestyle="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train(corpus_paths, out_dir, cfg: TrainConfig, device="auto", resume=False,
          plot=None, quantize=True, epochs: int | None = None) -> dict:
    """Train a model on a corpus and write its directory; return the card.

    With ``resume``, continue from ``out_dir/checkpoint`` (written at least
    every ``cfg.checkpoint_seconds`` seconds and after the last epoch),
    losing at most one interval of work; the configuration is the
    checkpoint's, except that ``epochs`` may raise the number of epochs.
    """
    ckpt_dir = os.path.join(out_dir, CHECKPOINT_DIR)
    meta = None
    if resume:
        if not os.path.exists(os.path.join(ckpt_dir, "meta.json")):
            raise click.ClickException(
                f"nothing to resume: no checkpoint in {out_dir!r}")
        with open(os.path.join(ckpt_dir, "meta.json")) as f:
            meta = json.load(f)
        cfg = TrainConfig(**meta["config"])
        if epochs:
            cfg.epochs = epochs

    files, raw = read_corpus(corpus_paths)
    if cfg.alphabet == "d2l":
        from .data import d2l_preprocess
        alphabet = Alphabet.d2l_from_text(d2l_preprocess(raw))
        if meta:
            alphabet = Alphabet.from_json(meta["alphabet"])
    else:
        alphabet = Alphabet("bytes")
    symbols = alphabet.encode(raw)
    train_part, valid_part = _split(symbols, cfg)
    if len(train_part) < cfg.batch_size * cfg.num_steps + 1:
        raise click.ClickException(
            f"corpus too small: {len(train_part)} training symbols, need more than "
            f"batch_size * num_steps = {cfg.batch_size * cfg.num_steps}")

    ctx = get_device(device)
    mx.random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = _build_model(cfg, alphabet.vocab_size, ctx)
    base = None
    if cfg.init_from and not meta:
        base = _init_from(model, cfg, alphabet, ctx)
    elif meta:
        base = meta.get("initialized_from")
    trainer = _make_trainer(model, cfg)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    history, start_epoch, skip_batches, elapsed = [], 1, 0, 0.0
    carried = None
    sums = [0.0, 0]
    if meta:
        model.load_parameters(os.path.join(ckpt_dir, "params.params"), ctx=ctx)
        trainer.load_states(os.path.join(ckpt_dir, "trainer.states"))
        history = meta["history"]
        start_epoch, skip_batches = meta["epoch"], meta["batch"]
        elapsed, sums = meta["elapsed"], meta["sums"]
        if os.path.exists(os.path.join(ckpt_dir, "state.nd")):
            carried = [s.as_in_context(ctx) for s in
                       nd.load(os.path.join(ckpt_dir, "state.nd"))]
        _log(f"resuming {out_dir} at epoch {start_epoch}, batch {skip_batches}")

    def checkpoint(epoch, batch, state):
        _save_checkpoint(out_dir, model, trainer, {
            "config": asdict(cfg), "alphabet": alphabet.to_json(), "epoch": epoch,
            "batch": batch, "history": history, "elapsed": elapsed,
            "sums": sums, "initialized_from": base}, state)

    os.makedirs(out_dir, exist_ok=True)
    tokens_per_sec = sum(h["tokens"] for h in history) / max(elapsed, 1e-9)
    last_ckpt = time.time()
    num_batches = (len(train_part) - 1) // (cfg.batch_size * cfg.num_steps)
    for epoch in range(start_epoch, cfg.epochs + 1):
        rng = random.Random(cfg.seed * 1_000_003 + epoch)
        make_iter = (seq_data_iter_sequential if cfg.partition == "sequential"
                     else seq_data_iter_random)
        lr = cfg.lr * cfg.lr_decay ** (epoch - 1)
        trainer.set_learning_rate(lr)
        state = carried if skip_batches else None
        carried = None
        if not skip_batches:
            sums = [0.0, 0]
        t0 = time.time()
        batches = enumerate(make_iter(train_part, cfg.batch_size, cfg.num_steps, rng))
        seen, bar_t0 = 0, time.time()
        with _progressbar(num_batches, f"epoch {epoch}/{cfg.epochs}") as bar:
            for i, (X, Y) in batches:
                if i < skip_batches:
                    continue
                if state is None or cfg.partition == "random":
                    state = model.begin_state(batch_size=X.shape[0], ctx=ctx)
                else:
                    state = _detach(state)
                x = nd.array(X, ctx=ctx)
                y = nd.array(Y.T.reshape(-1), ctx=ctx)
                with autograd.record():
                    out, state = model(x, state)
                    loss = loss_fn(out, y).mean()
                loss.backward()
                grads = [p.grad(ctx) for p in model.collect_params().values()]
                gluon.utils.clip_global_norm(grads, cfg.clip)
                trainer.step(1)
                sums[0] += float(loss.asscalar()) * y.size
                sums[1] += y.size
                seen += y.size
                rate = seen / max(time.time() - bar_t0, 1e-9)
                bar.update(1, f"ppl {math.exp(sums[0] / sums[1]):.2f}  "
                              f"{rate:,.0f} tokens/s")
                if time.time() - last_ckpt > cfg.checkpoint_seconds:
                    elapsed += time.time() - t0
                    t0 = time.time()
                    checkpoint(epoch, i + 1, state)
                    last_ckpt = time.time()
                    done = sum(h["tokens"] for h in history) + sums[1]
                    _log(f"epoch {epoch:4d} batch {i + 1}/{num_batches}  train ppl "
                         f"{math.exp(sums[0] / sums[1]):8.3f}  "
                         f"{done / max(elapsed, 1e-9):,.0f} tokens/s  checkpoint")
        skip_batches = 0
        elapsed += time.time() - t0
        train_ppl = math.exp(sums[0] / max(sums[1], 1))
        done_tokens = sum(h["tokens"] for h in history) + sums[1]
        tokens_per_sec = done_tokens / max(elapsed, 1e-9)
        entry = {"epoch": epoch, "train_perplexity": train_ppl, "tokens": sums[1],
                 "lr": lr, "valid_perplexity": None}
        is_log = epoch % cfg.log_every == 0 or epoch == cfg.epochs
        if is_log and len(valid_part) > 1:
            entry["valid_perplexity"] = evaluate_perplexity(model, valid_part, ctx)
        history.append(entry)
        if is_log:
            valid = entry["valid_perplexity"]
            vtext = (f"  valid ppl {valid:8.3f} bpc {math.log2(valid):.4f}"
                     if valid else "")
            _log(f"epoch {epoch:4d}/{cfg.epochs}  train ppl {train_ppl:8.3f} "
                 f"bpc {math.log2(train_ppl):.4f}{vtext}  "
                 f"{tokens_per_sec:,.0f} tokens/s  {device_name(ctx)}")
        if time.time() - last_ckpt > cfg.checkpoint_seconds or epoch == cfg.epochs:
            checkpoint(epoch + 1, 0, None)
            last_ckpt = time.time()
        if plot:
            _plot(history, plot)

    final = history[-1]
    valid_ppl = final.get("valid_perplexity")
    _log(f"perplexity {final['train_perplexity']:.1f}, {tokens_per_sec:.0f} "
         f"tokens/sec on {device_name(ctx)}")

    # the finished model: parameters, card, and the exact coding model
    params_path = os.path.join(out_dir, modeldir.PARAMS_NAME)
    model.save_parameters(params_path)
    num_params = int(sum(p.data().size for p in model.collect_params().values()))
    card = {
        "format_version": modeldir.CARD_FORMAT,
        "name": os.path.basename(os.path.normpath(out_dir)),
        "rnnzip_version": __version__,
        "architecture": {"cell": cfg.cell, "num_layers": cfg.num_layers,
                         "num_hiddens": cfg.num_hiddens,
                         "vocab_size": alphabet.vocab_size},
        "alphabet": alphabet.to_json(),
        "corpus": [{"path": os.path.basename(p), "bytes": os.path.getsize(p),
                    "sha256": sha256_file(p)} for p in files],
        "split": {"train_symbols": int(len(train_part)),
                  "valid_symbols": int(len(valid_part)),
                  "valid": "the last valid_frac of the corpus symbols"},
        "hyperparameters": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "epochs_run": final["epoch"],
        "train_perplexity": final["train_perplexity"],
        "train_bpc": math.log2(final["train_perplexity"]),
        "valid_perplexity": valid_ppl,
        "valid_bpc": math.log2(valid_ppl) if valid_ppl else None,
        "tokens_per_sec": round(tokens_per_sec, 1),
        "training_seconds": round(elapsed, 1),
        "device": device_name(ctx),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "num_params": num_params,
        "params_sha256": modeldir.file_sha256(params_path),
        "history": history,
    }
    if base:
        card["initialized_from"] = base
    modeldir.write_card(out_dir, card)
    if quantize:
        from .quantize import quantize_model_dir
        card = quantize_model_dir(out_dir, valid_symbols=valid_part)
    return card


def _init_from(model, cfg: TrainConfig, alphabet, ctx) -> dict:
    """Copy a finished model's weights into ``model``; return its provenance.

    The optimizer starts fresh; the learning rate schedule is this run's.
    """
    _, card, base_alphabet, _ = load_float_model(cfg.init_from, device="cpu")
    arch = card["architecture"]
    want = {"cell": cfg.cell, "num_layers": cfg.num_layers,
            "num_hiddens": cfg.num_hiddens, "vocab_size": alphabet.vocab_size}
    if arch != want or base_alphabet.to_json() != alphabet.to_json():
        raise click.ClickException(
            f"--init-from {cfg.init_from!r} is a {arch['cell']} "
            f"{arch['num_layers']} x {arch['num_hiddens']} over "
            f"{base_alphabet.to_json()['kind']}; this run trains a {cfg.cell} "
            f"{cfg.num_layers} x {cfg.num_hiddens} over {alphabet.to_json()['kind']}")
    # the file load_float_model checked against the card's hash
    model.load_parameters(os.path.join(cfg.init_from, modeldir.PARAMS_NAME), ctx=ctx)
    keys = ("name", "params_sha256", "epochs_run", "training_seconds", "valid_bpc",
            "initialized_from")
    return {k: card[k] for k in keys if k in card}


def load_float_model(model_dir: str, device="auto"):
    """Load the float Gluon model of a directory after checking its card."""
    card = modeldir.read_card(model_dir)
    path = modeldir.check_file_hash(model_dir, modeldir.PARAMS_NAME,
                                    card.get("params_sha256"))
    arch = card["architecture"]
    ctx = get_device(device)
    model = RNNModel(ModelConfig(arch["cell"], arch["num_layers"], arch["num_hiddens"],
                                 arch["vocab_size"]))
    try:
        model.load_parameters(path, ctx=ctx)
    except (AssertionError, mx.MXNetError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
        raise modeldir.ModelError(
            f"weights in {model_dir!r} do not fit the architecture on its card "
            f"{arch!r}: {first}") from None
    return model, card, Alphabet.from_json(card["alphabet"]), ctx
