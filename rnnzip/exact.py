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

from .adapt import SYMBOLS

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


_STATE_MAX = 255  # |h| of the exact state
EXTEND_LIMIT = 1 << 18  # largest index bound served by an extended table


class _Table:
    """A lookup table indexed by floor(pre), with the clamp built in.

    ``table[clamp(floor(pre), -limit, limit) + limit]`` is the rule. When the
    weights bound |pre| by ``bound``, an extended copy holding the clamped
    entries for every index in [-bound, bound] gives the same values without
    clamping at run time; otherwise (or with ``bound=None``) it clamps.
    """

    def __init__(self, table, limit, bound=None):
        self.limit = limit
        self.clamp = bound is None or bound > EXTEND_LIMIT
        if self.clamp:
            self.table, self.offset = table, limit
        else:
            self.offset = bound = int(bound)
            idx = np.clip(np.arange(-bound, bound + 1), -limit, limit) + limit
            self.table = table[idx]

    def __call__(self, pre, out=None):
        """Entries for floor(pre); ``out=pre`` overwrites ``pre``."""
        idx = np.floor(pre, out=out)
        if self.clamp:
            _clamp(idx, self.limit)
        idx += self.offset
        return self.table[idx.astype(np.intp)]


def _bound(*terms):
    """An integer bound from float64 column bounds, with a margin."""
    return int(np.ceil(np.max(np.sum(terms, axis=0)))) + 2


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
        H, L = self.num_hiddens, LUT_LIMIT
        self.layers = []
        for k in range(self.num_layers):
            p = f"l{k}_"
            fac = a[p + "fac"][:, None]
            layer = {
                # layer 0: a (vocab, G*H) table, biases included; else (G*H, H)
                "x": a[p + "x"] * fac.T if k == 0 else a[p + "x"] * fac,
                "h": np.ascontiguousarray(a[p + "h"] * fac),  # (G*H, H)
                "bx": a[p + "bx"][:, None] * fac, "bh": a[p + "bh"][:, None] * fac}
            # bounds of |pre-activation| per column, in lookup units
            f64 = {key: np.abs(layer[key].astype(np.float64)) for key in layer}
            u_max = (f64["x"].max(axis=0) if k == 0 else
                     _STATE_MAX * f64["x"].sum(axis=1) + f64["bx"][:, 0])
            pre = _STATE_MAX * f64["h"].sum(axis=1) + u_max
            if self.cell == "gru":
                pre = (pre + f64["bh"][:, 0])[:2 * H]
                layer["sig"] = _Table(self.sig, L, _bound(pre))
                layer["tanh"] = _Table(self.tanh, L, 2 * N_LIMIT + 1)
                if k == 0:  # the input table takes in what depends on x alone:
                    # the r and z gates' recurrent biases (a sum of three
                    # exact terms, in any order) and the n gate's floor and clamp
                    x = layer["x"].copy()
                    x[:, :2 * H] += layer["bh"][:2 * H, 0]
                    np.floor(x[:, 2 * H:], out=x[:, 2 * H:])
                    _clamp(x[:, 2 * H:], N_LIMIT)
                    layer["x"] = x
            else:  # rnn, lstm: one index for every gate
                layer["sig"] = _Table(self.sig, L, _bound(pre))
                layer["tanh"] = _Table(self.tanh, L, _bound(pre))
                layer["cell"] = _Table(self.tanh, L, C_MAX >> (8 - LUT_FRAC))
            self.layers.append(layer)
        # the head vocab-major, (V, H) and (V, 1): a row's maximum logit is then
        # an elementwise maximum over the vocabulary, which is fast
        self.out_w = np.ascontiguousarray(a["out_w"] * a["out_fac"])  # (V, H)
        self.out_b = (a["out_b"] * a["out_fac"])[:, None]
        # logits within LOGIT_LIMIT need no clamp; differences within the
        # extended exp table need no minimum
        logit_max = _bound(
            _STATE_MAX * np.abs(self.out_w.astype(np.float64)).sum(axis=1)
            + np.abs(self.out_b[:, 0].astype(np.float64)))
        self.clamp_logits = logit_max > LOGIT_LIMIT
        exp = self.exp_table = a["exp_table"]
        self.exp_last = len(exp) - 1
        self.exp_clamp = self.clamp_logits or 2 * logit_max > EXTEND_LIMIT
        self.exp = exp if self.exp_clamp else exp[
            np.minimum(np.arange(2 * logit_max + 1), self.exp_last)]

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
                u = layer["x"][x].T  # (G*H, rows), gathered as rows
            else:
                u = layer["x"] @ below
                u += layer["bx"]
            v = layer["h"] @ h  # (G*H, rows), in lookup units
            if self.cell == "rnn":
                v += u
                new_state.append([layer["tanh"](v, out=v)])
            elif self.cell == "gru":
                rz = v[:2 * H]
                if k:  # layer 0's input table holds these biases
                    rz += layer["bh"][:2 * H]
                rz += u[:2 * H]
                gates = layer["sig"](rz, out=rz)
                r, z = gates[:H], gates[H:]
                # n = tanh(u_n + r * v_n), summed in lookup units
                vn = v[2 * H:]
                vn += layer["bh"][2 * H:]
                np.floor(vn, out=vn)
                _clamp(vn, N_LIMIT)
                vn *= r
                _round_div(vn, GATE_ONE)
                un = u[2 * H:]
                if k:  # layer 0's input table is floored and clamped
                    np.floor(un, out=un)
                    _clamp(un, N_LIMIT)
                vn += un
                n = layer["tanh"](vn, out=vn)
                # h' = n + z * (h - n)
                h = h - n
                h *= z
                _round_div(h, GATE_ONE)
                h += n
                new_state.append([h])
            else:
                v += u
                c = state[k][1]
                sig, tanh = layer["sig"], layer["tanh"]  # same offset
                idx = np.floor(v, out=v)
                if sig.clamp:
                    _clamp(idx, LUT_LIMIT)
                idx += sig.offset
                idx = idx.astype(np.intp)
                i = sig.table[idx[:H]]
                f = sig.table[idx[H:2 * H]]
                g = tanh.table[idx[2 * H:3 * H]]
                o = sig.table[idx[3 * H:]]
                c = f * c
                c += i * g
                _round_div(c, GATE_ONE)
                _clamp(c, C_MAX)
                h = layer["cell"](c * 2.0 ** (LUT_FRAC - 8))
                h *= o
                _round_div(h, GATE_ONE)
                new_state.append([h, c])
            below = new_state[-1][0]
        return new_state

    def top(self, state):
        return state[-1][0]

    def rows(self, top) -> np.ndarray:
        """A top state as a numpy (rows, hidden) array (a view here)."""
        return top.T

    def stack(self, tops):
        return np.concatenate(tops, axis=1)

    def freqs(self, h, correction=None):
        """Integer frequencies (rows, vocab_size), each >= 1, from top states.

        ``correction``: integers (len(adapt.SYMBOLS), rows), |.| <= 2**22,
        added to those symbols' logits (rnnzip.adapt).
        """
        logits = self.out_w @ h  # (V, rows), scaled to 1/64 nat by the folded factor
        logits += self.out_b
        np.floor(logits, out=logits)
        if self.clamp_logits:
            _clamp(logits, LOGIT_LIMIT)
        exp, clamp = self.exp, self.exp_clamp
        if correction is not None:  # |logits| <= 2**23: still exact
            logits[SYMBOLS] += correction
            exp, clamp = self.exp_table, True
        d = np.subtract(np.maximum.reduce(logits, axis=0), logits, out=logits)
        if clamp:
            np.minimum(d, self.exp_last, out=d)
        return exp[d.T.astype(np.intp, order="C")]


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
