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


def _lookup(table, pre, fac):
    """table[clip(floor(pre * fac))]: a nonlinearity at lookup resolution."""
    idx = np.multiply(pre, fac)
    np.floor(idx, out=idx)
    _clamp(idx, LUT_LIMIT)
    idx += LUT_LIMIT
    return table[idx.astype(np.intp)]


class ExactModel:
    """An integer coding model held as numpy float32 arrays.

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
        self.sig, self.tanh = a["sigmoid_table"], a["tanh_table"]
        self.exp = a["exp_table"]
        self.layers = []
        for k in range(self.num_layers):
            p = f"l{k}_"
            self.layers.append({
                "x": a[p + "x"],  # layer 0: (vocab, G*H) table; else (G*H, H)
                "wx_t": None if k == 0 else np.ascontiguousarray(a[p + "x"].T),
                "wh_t": np.ascontiguousarray(a[p + "h"].T),  # (H, G*H)
                "bx": a[p + "bx"], "bh": a[p + "bh"], "fac": a[p + "fac"]})
        self.out_w_t = np.ascontiguousarray(a["out_w"].T)  # (H, vocab)
        self.out_b = a["out_b"]
        self.out_fac = a["out_fac"]

    def begin_state(self, batch_size: int) -> list:
        shape = (batch_size, self.num_hiddens)
        n = 2 if self.cell == "lstm" else 1
        return [[np.zeros(shape, np.float32) for _ in range(n)]
                for _ in range(self.num_layers)]

    def advance(self, x, state):
        """Feed symbols ``x`` (rows,) and return the next state."""
        H = self.num_hiddens
        below = None
        new_state = []
        for k, layer in enumerate(self.layers):
            h, fac = state[k][0], layer["fac"]
            if k == 0:
                u = layer["x"][x]  # (rows, G*H), biases included
            else:
                u = below @ layer["wx_t"]
                u += layer["bx"]
            v = h @ layer["wh_t"]  # (rows, G*H)
            if self.cell == "rnn":
                v += u
                new_state.append([_lookup(self.tanh, v, fac)])
            elif self.cell == "gru":
                v += layer["bh"]
                rz = u[:, :2 * H] + v[:, :2 * H]
                gates = _lookup(self.sig, rz, fac[:2 * H])
                r, z = gates[:, :H], gates[:, H:]
                # n = tanh(u_n + r * v_n), summed in lookup units
                vn = np.floor(v[:, 2 * H:] * fac[2 * H:])
                _clamp(vn, N_LIMIT)
                vn *= r
                _round_div(vn, GATE_ONE)
                un = np.floor(u[:, 2 * H:] * fac[2 * H:])
                _clamp(un, N_LIMIT)
                vn += un
                n = _lookup(self.tanh, vn, 1.0)
                # h' = n + z * (h - n)
                h = h - n
                h *= z
                _round_div(h, GATE_ONE)
                h += n
                new_state.append([h])
            else:
                v += u
                c = state[k][1]
                i = _lookup(self.sig, v[:, :H], fac[:H])
                f = _lookup(self.sig, v[:, H:2 * H], fac[H:2 * H])
                g = _lookup(self.tanh, v[:, 2 * H:3 * H], fac[2 * H:3 * H])
                o = _lookup(self.sig, v[:, 3 * H:], fac[3 * H:])
                c = f * c
                c += i * g
                _round_div(c, GATE_ONE)
                _clamp(c, C_MAX)
                h = _lookup(self.tanh, c, 2.0 ** (LUT_FRAC - 8))
                h *= o
                _round_div(h, GATE_ONE)
                new_state.append([h, c])
            below = new_state[-1][0]
        return new_state

    def top(self, state):
        return state[-1][0]

    def stack(self, tops):
        return np.concatenate(tops)

    def freqs(self, h):
        """Integer frequencies (rows, vocab_size), each >= 1, from top states."""
        logits = h @ self.out_w_t
        logits += self.out_b
        logits *= self.out_fac
        np.floor(logits, out=logits)
        _clamp(logits, LOGIT_LIMIT)
        d = logits.max(axis=1, keepdims=True) - logits
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
