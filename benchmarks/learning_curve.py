"""Held-out bits per character along training, batch by batch.

    python -m benchmarks.learning_curve CORPUS... [--cell gru] [--num-hiddens N]
        [--lr X] [--clip X] [--max-tokens N] [--every N] [--valid-bytes N]

``rnnzip train`` reports validation once per epoch; an epoch of the whole
corpus takes most of an hour here, and what goes wrong in a run often shows
long before its end. This runs ``rnnzip train``'s recipe (the same model,
initialisation, optimizer, clipping, sequential batches with the state carried
and detached; one epoch, no learning-rate decay) and every ``--every`` batches
prints the mean training bpc since the last line, the bpc of the first
``--valid-bytes`` of the held-out tail (the same tail as ``--valid-frac``
holds out), the gradients' global norm before clipping and the largest weight.
Nothing is written but those lines; no model is kept.

It showed why a GRU of 512 units trained worse than one of 256 (README.md,
"Model size"): at lr 0.003 its held-out bpc stops falling after about 4 MB
while its training loss goes on down; at 0.0007 it keeps improving.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import numpy as np

from rnnzip._mx import mx  # sets MXNet's environment up before mxnet loads
from mxnet import autograd, gluon, nd
from rnnzip.data import read_corpus, seq_data_iter_sequential
from rnnzip.model import get_device
from rnnzip.train import (TrainConfig, _build_model, _make_trainer, _split,
                          evaluate_perplexity)


def curve(corpus, cfg: TrainConfig, every: int, valid_bytes: int, device="cpu"):
    """Yield (batches, train bpc, held-out bpc, gradient norm, largest |w|)."""
    _, raw = read_corpus(corpus)
    symbols = np.frombuffer(raw, np.uint8).astype(np.int64)
    train_part, valid_part = _split(symbols, cfg)
    valid_part = valid_part[:valid_bytes]
    ctx = get_device(device)
    mx.random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = _build_model(cfg, 256, ctx)
    trainer = _make_trainer(model, cfg)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    params = list(model.collect_params().values())
    state, total, count = None, 0.0, 0
    batches = seq_data_iter_sequential(train_part, cfg.batch_size, cfg.num_steps,
                                       random.Random(cfg.seed))
    for i, (X, Y) in enumerate(batches, 1):
        state = (model.begin_state(batch_size=X.shape[0], ctx=ctx) if state is None
                 else [s.detach() for s in state])
        x, y = nd.array(X, ctx=ctx), nd.array(Y.T.reshape(-1), ctx=ctx)
        with autograd.record():
            out, state = model(x, state)
            loss = loss_fn(out, y).mean()
        loss.backward()
        norm = gluon.utils.clip_global_norm([p.grad(ctx) for p in params], cfg.clip)
        trainer.step(1)
        total += float(loss.asscalar())
        count += 1
        if i % every == 0:
            held_out = math.log2(evaluate_perplexity(model, valid_part, ctx))
            largest = max(float(p.data().abs().max().asscalar()) for p in params)
            yield i, total / count / math.log(2), held_out, float(norm), largest
            total, count = 0.0, 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="+")
    ap.add_argument("--cell", default="gru", choices=("rnn", "gru", "lstm"))
    ap.add_argument("--num-hiddens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--num-steps", type=int, default=100)
    ap.add_argument("--optimizer", default="adam", choices=("sgd", "adam"))
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--valid-frac", type=float, default=0.03)
    ap.add_argument("--max-tokens", type=int, default=3_000_000)
    ap.add_argument("--every", type=int, default=100, help="batches between lines")
    ap.add_argument("--valid-bytes", type=int, default=64_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    cfg = TrainConfig(cell=args.cell, num_hiddens=args.num_hiddens,
                      batch_size=args.batch_size, num_steps=args.num_steps,
                      lr=args.lr, optimizer=args.optimizer, clip=args.clip,
                      epochs=1, valid_frac=args.valid_frac,
                      max_tokens=args.max_tokens, seed=args.seed)
    print(f"| batches | bytes | train bpc | held-out bpc | gradient norm | "
          f"largest weight | seconds |  ({args.cell} {args.num_hiddens}, "
          f"{args.optimizer} lr {args.lr}, clip {args.clip})")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    t0 = time.time()
    for i, train_bpc, held_out, norm, largest in curve(
            args.corpus, cfg, args.every, args.valid_bytes, args.device):
        print(f"| {i} | {i * cfg.batch_size * cfg.num_steps:,} | {train_bpc:.3f} | "
              f"{held_out:.3f} | {norm:.2f} | {largest:.2f} | "
              f"{time.time() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
