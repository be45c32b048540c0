"""Text generation from a float model: the book's ``predict_ch8``."""

from __future__ import annotations

import numpy as np
from mxnet import nd

from .train import load_float_model

__all__ = ["predict"]


def predict(model_dir: str, prefix: str, num_preds: int, temperature: float = 0.0,
            seed: int = 0, device: str = "auto") -> str:
    """Warm the state up on ``prefix``, then extend it by ``num_preds`` symbols.

    With ``temperature`` 0 each step takes the likeliest symbol (greedy, as in
    the book); above 0 it samples from the softmax at that temperature.
    """
    model, _card, alphabet, ctx = load_float_model(model_dir, device)
    rng = np.random.default_rng(seed)
    symbols = list(alphabet.encode_text(prefix)) or [0]
    state = model.begin_state(batch_size=1, ctx=ctx)
    out = list(symbols)
    for s in symbols[:-1]:  # warm-up period
        _, state = model(nd.array([[s]], ctx=ctx), state)
    for _ in range(num_preds):
        y, state = model(nd.array([[out[-1]]], ctx=ctx), state)
        logits = y.asnumpy()[0].astype(np.float64)
        if temperature > 0:
            p = np.exp((logits - logits.max()) / temperature)
            out.append(int(rng.choice(len(p), p=p / p.sum())))
        else:
            out.append(int(logits.argmax()))
    return alphabet.decode(out)
