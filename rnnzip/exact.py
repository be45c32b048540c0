"""The exact coding model: integer weights, integer state, lookup tables.

Every value that influences a coding frequency is an integer and every
operation on it is exact, so numpy on any CPU and MXNet on a CPU or a GPU give
bit-identical frequencies (see DESIGN.md). The integers are held in float32
arrays, which is what BLAS and GPUs are fast at; every value, partial sums of
matrix products included, stays below 2**24 in magnitude, where float32
represents integers exactly and addition, subtraction and multiplication of
them are exact in any order. The rules, engine version 1:

* The state ``h`` is ``round(256 * h_float)`` clipped to [-255, 255]; an LSTM
  cell state ``c`` is ``256 * c_float`` clipped to [-C_MAX, C_MAX].
* Weights are integers with a power-of-two scale per output row, as large as
  keeps ``255 * sum(|w|)`` over the row (both matrices of a layer above the
  first) below 2**23; biases and the first layer's input table are clamped
  below 2**23. So a pre-activation, product plus bias, is below 2**24.
* Rescaling is a multiplication by a power of two followed by floor; where a
  product of gate and state is brought back to scale, by rounding
  (``floor((a + d/2) / d)``), so that no drift builds up over many steps.
* sigmoid, tanh and exp are tables indexed by integers; gates are in
  [0, 4096], fine enough for an update gate near 1 to keep its memory.
* The head's logits share one scale; ``freq = exp_table[max(l) - l]`` with
  ``l = floor(logit * out_fac)``, each >= 1, is what the range coder gets.

This module needs numpy only; it never imports MXNet.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["ENGINE_VERSION", "ExactModel", "load_exact", "save_exact", "START_SYMBOL"]

ENGINE_VERSION = 1
START_SYMBOL = 10  # the input before the first byte of a segment: '\n'
LUT_FRAC = 7  # pre-activations are looked up at a resolution of 1/128
LUT_LIMIT = 8 << LUT_FRAC  # and clamped to [-8, 8]
GATE_ONE = 1 << 12  # gates are round(4096 * sigmoid) in [0, 4096]
N_LIMIT = 1 << 11  # clamp of the GRU n gate's parts, in lookup units
EXP_FRAC = 6  # logit differences at a resolution of 1/64 nat
EXP_BITS = 16  # exp_table[0] is about 2**16
LOGIT_LIMIT = 1 << 22  # clamp of scaled logits, so differences stay exact
C_MAX = 7 << 8  # LSTM cell state clamp: |c| <= 7
ACC_LIMIT = (1 << 23) - 1  # bound of a matrix product and of a bias
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _clamp(a, limit):
    """Clip ``a`` to [-limit, limit] in place (np.clip is slower for this)."""
    np.maximum(a, -limit, out=a)
    np.minimum(a, limit, out=a)


def _round_div(a, d):
    """a = floor((a + d/2) / d) in place: rounding, so no drift builds up."""
    a += d // 2
    a *= 1 / d
    np.floor(a, out=a)


def _lookup(table, pre, out=None):
    """table[clamp(floor(pre))]: a nonlinearity at lookup resolution.

    ``pre`` is in lookup units already; with ``out=pre`` it is overwritten.
    """
    idx = np.floor(pre, out=out)
    _clamp(idx, LUT_LIMIT)
    idx += LUT_LIMIT
    return table[idx.astype(np.intp)]


class ExactModel:
    """An integer coding model held as numpy float32 arrays.

    ``begin_state(batch_size)`` gives the cold state; ``advance(x, state)``
    feeds one input symbol per row and returns the new state; ``freqs(h)``
    turns top-layer states into integer frequencies ``(rows, vocab_size)``.

    The stored arrays are the model and its identity. For speed this engine
    keeps states feature-major, ``(hidden, rows)``, so that every gate is a
    contiguous block, and it folds the per-column power-of-two factor that
    takes a pre-activation to lookup units into the weights and biases of that
    column: scaling by a power of two commutes with every float32 operation on
    these values, so ``(W * fac) @ h == (W @ h) * fac`` bit for bit and the
    frequencies are the ones the rules above define (the MXNet engine, which
    follows the rules literally, gives the same archives; the tests check it).
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
        self.sig, self.tanh = a["sigmoid_table"], a["tanh_table"]
        self.exp = a["exp_table"]
        self.layers = []
        for k in range(self.num_layers):
            p = f"l{k}_"
            fac = a[p + "fac"][:, None]
            self.layers.append({
                # layer 0: a (G*H, vocab) table, biases included; else (G*H, H)
                "x": np.ascontiguousarray(a[p + "x"].T * fac if k == 0
                                          else a[p + "x"] * fac),
                "h": np.ascontiguousarray(a[p + "h"] * fac),  # (G*H, H)
                "bx": a[p + "bx"][:, None] * fac, "bh": a[p + "bh"][:, None] * fac})
        self.out_w = np.ascontiguousarray((a["out_w"] * a["out_fac"]).T)  # (H, V)
        self.out_b = a["out_b"] * a["out_fac"]

    def begin_state(self, batch_size: int) -> list:
        shape = (self.num_hiddens, batch_size)
        n = 2 if self.cell == "lstm" else 1
        return [[np.zeros(shape, np.float32) for _ in range(n)]
                for _ in range(self.num_layers)]

    def advance(self, x, state):
        """Feed symbols ``x`` (rows,) and return the next state."""
        H = self.num_hiddens
        below = None
        new_state = []
        for k, layer in enumerate(self.layers):
            h = state[k][0]  # (H, rows)
            if k == 0:
                u = np.take(layer["x"], x, axis=1)  # (G*H, rows)
            else:
                u = layer["x"] @ below
                u += layer["bx"]
            v = layer["h"] @ h  # (G*H, rows), in lookup units
            if self.cell == "rnn":
                v += u
                new_state.append([_lookup(self.tanh, v, out=v)])
            elif self.cell == "gru":
                rz = v[:2 * H]
                rz += layer["bh"][:2 * H]
                rz += u[:2 * H]
                gates = _lookup(self.sig, rz, out=rz)
                r, z = gates[:H], gates[H:]
                # n = tanh(u_n + r * v_n), summed in lookup units
                vn = v[2 * H:]
                vn += layer["bh"][2 * H:]
                np.floor(vn, out=vn)
                _clamp(vn, N_LIMIT)
                vn *= r
                _round_div(vn, GATE_ONE)
                un = u[2 * H:]
                np.floor(un, out=un)
                _clamp(un, N_LIMIT)
                vn += un
                n = _lookup(self.tanh, vn, out=vn)
                # h' = n + z * (h - n)
                h = h - n
                h *= z
                _round_div(h, GATE_ONE)
                h += n
                new_state.append([h])
            else:
                v += u
                c = state[k][1]
                idx = np.floor(v, out=v)
                _clamp(idx, LUT_LIMIT)
                idx += LUT_LIMIT
                idx = idx.astype(np.intp)
                i = self.sig[idx[:H]]
                f = self.sig[idx[H:2 * H]]
                g = self.tanh[idx[2 * H:3 * H]]
                o = self.sig[idx[3 * H:]]
                c = f * c
                c += i * g
                _round_div(c, GATE_ONE)
                _clamp(c, C_MAX)
                h = _lookup(self.tanh, c * 2.0 ** (LUT_FRAC - 8))
                h *= o
                _round_div(h, GATE_ONE)
                new_state.append([h, c])
            below = new_state[-1][0]
        return new_state

    def top(self, state):
        return state[-1][0]

    def stack(self, tops):
        return np.concatenate(tops, axis=1)

    def freqs(self, h):
        """Integer frequencies (rows, vocab_size), each >= 1, from top states."""
        logits = h.T @ self.out_w  # scaled to 1/64 nat by the folded factor
        logits += self.out_b
        np.floor(logits, out=logits)
        _clamp(logits, LOGIT_LIMIT)
        d = np.subtract(logits.max(axis=1, keepdims=True), logits, out=logits)
        np.minimum(d, len(self.exp) - 1, out=d)
        return self.exp[d.astype(np.intp)]


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
    for key, arr in arrays.items():
        if arr.dtype != np.float32:
            raise ValueError(f"exact model {path!r}: array {key!r} is {arr.dtype}, "
                             f"not float32")
    return ExactModel(arrays, meta)
