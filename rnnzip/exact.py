"""The exact coding model: integer weights, integer state, lookup tables.

Every value that influences a coding frequency is an integer and every
operation on it is exact, so numpy on any CPU and MXNet on a CPU or a GPU give
bit-identical frequencies (see DESIGN.md). The rules, engine version 1:

* The state ``h`` is ``round(256 * h_float)`` clipped to [-255, 255]; an LSTM
  cell state ``c`` is ``round(256 * c_float)`` clipped to [-C_MAX, C_MAX].
* Weights are integers with a power-of-two scale per output row, ``|w| <=
  w_max`` where ``num_hiddens * w_max * 255 < 2**24``: a float32 matrix product
  of such arrays is exact in any summation order. Everything after the product
  is int64 (numpy) or float64 holding integers below 2**53 (MXNet).
* Rescaling is a multiplication by a power of two followed by floor.
* sigmoid, tanh and exp are tables indexed by integers; gates are in [0, 256].
* The head's logits share one scale; ``freq = exp_table[(max - logit) >> s]``,
  each >= 1, is what the range coder gets.

This module needs numpy only; it never imports MXNet.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["ENGINE_VERSION", "ExactModel", "load_exact", "START_SYMBOL"]

ENGINE_VERSION = 1
START_SYMBOL = 10  # the input before the first byte of a segment: '\n'
LUT_FRAC = 7  # pre-activations are looked up at a resolution of 1/128
LUT_LIMIT = 8 << LUT_FRAC  # and clamped to [-8, 8]
EXP_FRAC = 6  # logit differences at a resolution of 1/64 nat
EXP_BITS = 16  # exp_table[0] is about 2**16
C_MAX = 16 << 8  # LSTM cell state clamp: |c| <= 16
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _shift(a, rshift, lshift):
    """Multiply an int64 array by 2**(lshift - rshift), rounding down."""
    return np.left_shift(np.right_shift(a, rshift), lshift)


class ExactModel:
    """An integer coding model held as numpy arrays.

    ``begin_state(batch_size)`` gives the cold state; ``advance(x, state)``
    feeds one input symbol per row and returns the new state; ``freqs(h)``
    turns top-layer states into integer frequencies ``(rows, vocab_size)``.
    """

    def __init__(self, arrays: dict, meta: dict):
        self.arrays = arrays
        self.meta = meta
        self.cell = meta["cell"]
        self.num_layers = meta["num_layers"]
        self.num_hiddens = meta["num_hiddens"]
        self.vocab_size = meta["vocab_size"]
        self.identity = model_identity(arrays, meta)
        a = arrays
        self.sig = a["sigmoid_table"]
        self.tanh = a["tanh_table"]
        self.exp = a["exp_table"]
        self.layers = []
        for k in range(self.num_layers):
            p = f"l{k}_"
            self.layers.append({
                "x": a[p + "x"],  # layer 0: (vocab, G*H) table; else (G*H, H)
                "wh_t": np.ascontiguousarray(a[p + "h"].T),  # (H, G*H) float32
                "wx_t": None if k == 0 else np.ascontiguousarray(a[p + "x"].T),
                "bx": a[p + "bx"], "bh": a[p + "bh"],
                "rs": a[p + "rshift"], "ls": a[p + "lshift"]})
        self.out_w_t = np.ascontiguousarray(a["out_w"].T)  # (H, vocab) float32
        self.out_b = a["out_b"]
        self.out_rs, self.out_ls = int(a["out_rshift"]), int(a["out_lshift"])

    def begin_state(self, batch_size: int) -> list:
        shape = (batch_size, self.num_hiddens)
        n = 2 if self.cell == "lstm" else 1
        return [[np.zeros(shape, np.int64) for _ in range(n)]
                for _ in range(self.num_layers)]

    def advance(self, x, state):
        """Feed symbols ``x`` (rows,) and return the next state."""
        H = self.num_hiddens
        below = None
        new_state = []
        for k, layer in enumerate(self.layers):
            h = state[k][0]
            if k == 0:
                u = layer["x"][x]  # (rows, G*H) int64, biases included
            else:
                u = (below.astype(np.float32) @ layer["wx_t"]).astype(np.int64)
                u += layer["bx"]
            v = (h.astype(np.float32) @ layer["wh_t"]).astype(np.int64)
            if self.cell == "rnn":
                h = self._lut_part(self.tanh, u + v, layer, 0, H)
                cells = [h]
            elif self.cell == "gru":
                v += layer["bh"]
                rz = u[:, :2 * H] + v[:, :2 * H]
                gates = self._lut_part(self.sig, rz, layer, 0, 2 * H)
                r, z = gates[:, :H], gates[:, H:]
                pre_n = u[:, 2 * H:] + ((r * v[:, 2 * H:]) >> 8)
                n = self._lut_part(self.tanh, pre_n, layer, 2 * H, 3 * H)
                h = n + ((z * (h - n)) >> 8)
                cells = [h]
            else:
                pre = u + v
                c = state[k][1]
                i = self._lut_part(self.sig, pre[:, :H], layer, 0, H)
                f = self._lut_part(self.sig, pre[:, H:2 * H], layer, H, 2 * H)
                g = self._lut_part(self.tanh, pre[:, 2 * H:3 * H], layer, 2 * H, 3 * H)
                o = self._lut_part(self.sig, pre[:, 3 * H:], layer, 3 * H, 4 * H)
                c = (f * c + i * g) >> 8
                np.clip(c, -C_MAX, C_MAX, out=c)
                tc = np.clip(c >> (8 - LUT_FRAC), -LUT_LIMIT, LUT_LIMIT)
                h = (o * self.tanh[tc + LUT_LIMIT]) >> 8
                cells = [h, c]
            new_state.append(cells)
            below = h
        return new_state

    def _lut_part(self, table, pre, layer, lo, hi):
        idx = _shift(pre, layer["rs"][lo:hi], layer["ls"][lo:hi])
        np.clip(idx, -LUT_LIMIT, LUT_LIMIT, out=idx)
        return table[idx + LUT_LIMIT]

    def freqs(self, h):
        """Integer frequencies (rows, vocab_size), each >= 1, from top states."""
        logits = (h.astype(np.float32) @ self.out_w_t).astype(np.int64)
        logits += self.out_b
        d = logits.max(axis=1, keepdims=True) - logits
        q = _shift(d, self.out_rs, self.out_ls)
        np.minimum(q, len(self.exp) - 1, out=q)
        return self.exp[q]

    def top(self, state):
        return state[-1][0]

    def stack(self, tops):
        return np.concatenate(tops)


def model_identity(arrays: dict, meta: dict) -> str:
    """sha256 of the engine version, the model's shape and its exact arrays."""
    h = hashlib.sha256()
    h.update(f"rnnzip-exact-engine-{ENGINE_VERSION}\n".encode())
    h.update(json.dumps({k: meta[k] for k in sorted(meta) if k != "name"},
                        sort_keys=True).encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{arr.dtype.str}:{arr.shape}\n".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def save_exact(path: str, arrays: dict, meta: dict) -> str:
    """Write an exact model as an ``.npz``; return its identity."""
    payload = dict(arrays)
    payload["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(),
                                    dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez_compressed(f, **payload)
    return model_identity(arrays, meta)


def load_exact(path: str) -> ExactModel:
    """Load an exact model written by :func:`save_exact`."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(bytes(z["meta"]).decode())
    if meta.get("engine_version") != ENGINE_VERSION:
        raise ValueError(f"exact model {path!r} is for engine version "
                         f"{meta.get('engine_version')!r}; this rnnzip runs version "
                         f"{ENGINE_VERSION}")
    return ExactModel(arrays, meta)
