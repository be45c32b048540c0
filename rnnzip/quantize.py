"""Derive the exact coding model from a float model, and measure its loss.

The rules the integers follow are in :mod:`rnnzip.exact`. Quantization here
is plain rounding with a power-of-two scale per output row; its cost in bits
is measured on held-out text against the float model on the same segments.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import modeldir
from .exact import (ACC_LIMIT, ENGINE_VERSION, EXP_BITS, EXP_FRAC, GATE_ONE, GATES,
                    LUT_FRAC,
                    LUT_LIMIT, ExactModel, save_exact)

__all__ = ["quantize_params", "quantize_model_dir", "float_bits", "exact_bits"]

MEASURE_LIMIT = 300_000  # held-out symbols used to measure the quantization loss
_E_RANGE = (-8, 24)  # allowed power-of-two exponents of the weight scales
_STATE_MAX = 255  # |h| of the exact state


def _row_exponents(mats, rows_share=False):
    """Largest power-of-two scale per row that keeps its products exact.

    A row's product with any state is at most ``sum |w| * 255``; keeping that
    below 2**23 (``ACC_LIMIT``) keeps every partial sum, in any order, and
    the bias added to it below 2**24, where float32 holds integers exactly.
    The bound is the row's L1 norm, not its length times its largest weight,
    which leaves two to three more bits for the weights of a trained row.
    With ``rows_share`` all rows get the scale of the worst one (the head,
    whose logits must share one scale).
    """
    l1 = np.sum([np.abs(a).sum(axis=1) for a in mats], axis=0)
    if rows_share:
        l1 = np.full_like(l1, l1.max())
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(ACC_LIMIT / (_STATE_MAX * np.where(l1 > 0, l1, 1e-30))))
    e = np.clip(e, *_E_RANGE).astype(np.int64)
    # rounding can push a row just over the bound: step its scale down
    while True:
        q = sum(np.abs(np.round(a * np.exp2(e)[:, None])).sum(axis=1) for a in mats)
        if rows_share:
            q = np.full_like(q, q.max())
        over = q * _STATE_MAX > ACC_LIMIT
        if not over.any():
            return e
        e[over] -= 1


def _ints(a, scale_exp, limit):
    """round(a * 2**scale_exp), clamped to [-limit, limit], as float32."""
    q = np.round(np.asarray(a, np.float64) * np.exp2(scale_exp))
    return np.clip(q, -limit, limit).astype(np.float32)


def tables() -> dict:
    p = (np.arange(-LUT_LIMIT, LUT_LIMIT + 1) + 0.5) / (1 << LUT_FRAC)
    q = (np.arange(12 << EXP_FRAC) + 0.5) / (1 << EXP_FRAC)
    return {
        "sigmoid_table": np.round(GATE_ONE / (1 + np.exp(-p))).astype(np.float32),
        "tanh_table": np.clip(np.round(256 * np.tanh(p)), -255, 255).astype(
            np.float32),
        "exp_table": np.maximum(1, np.round(2.0**EXP_BITS * np.exp(-q))).astype(
            np.float32),
    }


def quantize_params(params: dict, cell: str, num_layers: int, num_hiddens: int,
                    vocab_size: int, name: str = "") -> ExactModel:
    """Turn float parameters (see ``model.param_arrays``) into an exact model."""
    G, H = GATES[cell], num_hiddens
    arrays = tables()
    for k in range(num_layers):
        wx = params[f"l{k}_i2h_weight"].astype(np.float64)  # (G*H, inputs)
        wh = params[f"l{k}_h2h_weight"].astype(np.float64)  # (G*H, H)
        b_ih = params[f"l{k}_i2h_bias"].astype(np.float64)
        b_hh = params[f"l{k}_h2h_bias"].astype(np.float64)
        bx, bh = b_ih + b_hh, np.zeros(G * H)
        if cell == "gru":
            # the n gate adds its h2h bias inside r * (W_hn h + b_hn)
            bx[2 * H:] = b_ih[2 * H:]
            bh[2 * H:] = b_hh[2 * H:]
        # above the first layer both products add up in one pre-activation
        e = _row_exponents([wh] if k == 0 else [wh, wx])
        S = e + 8  # scale of the pre-activations: weights times the state's 256
        p = f"l{k}_"
        arrays[p + "h"] = _ints(wh, e[:, None], ACC_LIMIT)
        if k == 0:
            arrays[p + "x"] = _ints(wx.T + bx, S, ACC_LIMIT)  # (vocab, G*H)
            arrays[p + "bx"] = np.zeros(G * H, np.float32)
        else:
            arrays[p + "x"] = _ints(wx, e[:, None], ACC_LIMIT)
            arrays[p + "bx"] = _ints(bx, S, ACC_LIMIT)
        arrays[p + "bh"] = _ints(bh, S, ACC_LIMIT)
        arrays[p + "fac"] = np.exp2(LUT_FRAC - S).astype(np.float32)

    wo = params["dense_weight"].astype(np.float64)  # (vocab, H)
    e_o = int(_row_exponents([wo], rows_share=True)[0])
    arrays["out_w"] = _ints(wo, e_o, ACC_LIMIT)
    arrays["out_b"] = _ints(params["dense_bias"], e_o + 8, ACC_LIMIT)
    arrays["out_fac"] = np.array(2.0 ** (EXP_FRAC - e_o - 8), np.float32)
    meta = {"engine_version": ENGINE_VERSION, "cell": cell, "num_layers": num_layers,
            "num_hiddens": num_hiddens, "vocab_size": vocab_size, "name": name}
    return ExactModel(arrays, meta)


def exact_bits(engine, symbols, num_segments=None) -> float:
    """Ideal bits of the exact model on ``symbols``, coded as the codec does."""
    from .codec import choose_segments, frame_frequencies, ideal_bits, segment_layout

    symbols = np.asarray(symbols, dtype=np.int64)
    if num_segments is None:
        num_segments = choose_segments(len(symbols))
    seg_len, lengths = segment_layout(len(symbols), num_segments)
    return sum(ideal_bits(t, f)
               for t, f in frame_frequencies(engine, symbols, seg_len, lengths))


def float_bits(model, ctx, symbols, num_segments=None, chunk=256) -> float:
    """Bits of the float Gluon model on the same segments and cold starts."""
    from mxnet import nd

    from .codec import _grid, choose_segments, segment_layout

    symbols = np.asarray(symbols, dtype=np.int64)
    if num_segments is None:
        num_segments = choose_segments(len(symbols))
    seg_len, lengths = segment_layout(len(symbols), num_segments)
    grid, inputs = _grid(symbols, seg_len, lengths)  # (num_steps, segments)
    keep = np.arange(seg_len)[:, None] < np.array(lengths)[None, :]
    state = model.begin_state(batch_size=len(lengths), ctx=ctx)
    nats = 0.0
    for t0 in range(0, seg_len, chunk):
        x = nd.array(inputs[t0:t0 + chunk].T, ctx=ctx)
        out, state = model(x, state)  # (steps * segments, vocab)
        logp = nd.log_softmax(out).asnumpy().astype(np.float64)
        tgt = grid[t0:t0 + chunk].reshape(-1)
        picked = logp[np.arange(len(tgt)), tgt]
        nats -= picked[keep[t0:t0 + chunk].reshape(-1)].sum()
    return nats / math.log(2)


def quantize_model_dir(model_dir: str, valid_symbols=None) -> dict:
    """Write ``exact.npz`` for a trained model and record its loss on the card."""
    from .model import param_arrays
    from .train import load_float_model

    model, card, alphabet, ctx = load_float_model(model_dir, device="cpu")
    arch = card["architecture"]
    engine = quantize_params(param_arrays(model), arch["cell"], arch["num_layers"],
                             arch["num_hiddens"], arch["vocab_size"],
                             name=card.get("name", ""))
    path = os.path.join(model_dir, modeldir.EXACT_NAME)
    identity = save_exact(path, engine.arrays, engine.meta)
    exact = {"engine_version": ENGINE_VERSION, "identity": identity,
             "sha256": modeldir.file_sha256(path),
             "bytes": os.path.getsize(path)}
    if valid_symbols is not None and len(valid_symbols) > 1:
        sample = np.asarray(valid_symbols[:MEASURE_LIMIT], dtype=np.int64)
        fb = float_bits(model, ctx, sample) / len(sample)
        eb = exact_bits(engine, sample) / len(sample)
        exact.update({"measured_on_symbols": int(len(sample)),
                      "float_bpc": round(fb, 5), "exact_bpc": round(eb, 5),
                      "quantization_loss": round(eb / fb - 1, 5)})
    card["exact"] = exact
    card["size_on_disk"] = sum(
        os.path.getsize(os.path.join(model_dir, name))
        for name in (modeldir.PARAMS_NAME, modeldir.EXACT_NAME, modeldir.CARD_NAME))
    modeldir.write_card(model_dir, card)
    return card
