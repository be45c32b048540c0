"""The exact coding model on MXNet, on ``cpu()`` or ``gpu(N)``.

The same integer rules as :class:`rnnzip.exact.ExactModel`, in the same
float32 arithmetic on integers below 2**24 (exact in any order); rescaling is
a multiplication by a power of two followed by floor. Tensor cores are off
(see ``_mx``), so GPU products are plain float32 too. The state stays on the
device; only the frequency table of each step comes back to the host.
"""

from __future__ import annotations

import numpy as np

from ._mx import mx
from .adapt import SYMBOLS
from .exact import (C_MAX, GATE_ONE, LOGIT_LIMIT, LUT_FRAC, LUT_LIMIT, N_LIMIT,
                    ExactModel)

nd = mx.nd

__all__ = ["MXNetExactModel"]


def _round_div(a, d):
    """floor((a + d/2) / d), as exact.py rounds."""
    return nd.floor((a + d // 2) * (1 / d))


class MXNetExactModel:
    """An :class:`ExactModel` whose arithmetic runs in MXNet on ``ctx``."""

    def __init__(self, exact: ExactModel, ctx):
        self.ctx = ctx
        self.cell = exact.cell
        self.num_layers = exact.num_layers
        self.num_hiddens = exact.num_hiddens
        self.vocab_size = exact.vocab_size
        self.identity = exact.identity
        self.meta = exact.meta

        def dev(a, row=False):
            arr = nd.array(np.asarray(a, np.float32), ctx=ctx, dtype=np.float32)
            return arr.reshape((1, -1)) if row else arr

        a = exact.arrays
        self.sig, self.tanh = dev(a["sigmoid_table"]), dev(a["tanh_table"])
        self.exp = dev(a["exp_table"])
        # the stored arrays as the rules state them, not the numpy engine's
        # folded copies and extended tables: two formulations that must agree
        self.layers = [{
            "x": dev(a[f"l{k}_x"]) if k == 0 else None,
            "wx_t": None if k == 0 else dev(a[f"l{k}_x"].T),
            "wh_t": dev(a[f"l{k}_h"].T),
            "bx": dev(a[f"l{k}_bx"], row=True), "bh": dev(a[f"l{k}_bh"], row=True),
            "fac": dev(a[f"l{k}_fac"], row=True)} for k in range(self.num_layers)]
        self.out_w_t = dev(a["out_w"].T)
        self.out_b = dev(a["out_b"], row=True)
        self.out_fac = float(a["out_fac"])
        self.exp_last = len(a["exp_table"]) - 1

    def begin_state(self, batch_size: int) -> list:
        n = 2 if self.cell == "lstm" else 1
        shape = (batch_size, self.num_hiddens)
        return [[nd.zeros(shape, ctx=self.ctx, dtype=np.float32) for _ in range(n)]
                for _ in range(self.num_layers)]

    def _lookup(self, table, pre, fac):
        idx = nd.floor(nd.broadcast_mul(pre, fac) if not isinstance(fac, float)
                       else pre * fac)
        return nd.take(table, nd.clip(idx, -LUT_LIMIT, LUT_LIMIT) + LUT_LIMIT)

    def advance(self, x, state):
        """Feed symbols ``x`` (rows,) and return the next state (on device)."""
        H = self.num_hiddens
        below = None
        new_state = []
        for k, layer in enumerate(self.layers):
            h, fac = state[k][0], layer["fac"]
            if k == 0:
                idx = nd.array(np.asarray(x), ctx=self.ctx, dtype=np.float32)
                u = nd.take(layer["x"], idx)  # (rows, G*H)
            else:
                u = nd.broadcast_add(nd.dot(below, layer["wx_t"]), layer["bx"])
            v = nd.dot(h, layer["wh_t"])
            if self.cell == "rnn":
                new_state.append([self._lookup(self.tanh, v + u, fac)])
            elif self.cell == "gru":
                v = nd.broadcast_add(v, layer["bh"])
                gates = self._lookup(self.sig, u[:, :2 * H] + v[:, :2 * H],
                                     fac[:, :2 * H])
                r, z = gates[:, :H], gates[:, H:]
                vn = nd.floor(nd.broadcast_mul(v[:, 2 * H:], fac[:, 2 * H:]))
                vn = _round_div(nd.clip(vn, -N_LIMIT, N_LIMIT) * r, GATE_ONE)
                un = nd.floor(nd.broadcast_mul(u[:, 2 * H:], fac[:, 2 * H:]))
                n = self._lookup(self.tanh, vn + nd.clip(un, -N_LIMIT, N_LIMIT), 1.0)
                new_state.append([n + _round_div((h - n) * z, GATE_ONE)])
            else:
                pre = v + u
                c = state[k][1]
                i = self._lookup(self.sig, pre[:, :H], fac[:, :H])
                f = self._lookup(self.sig, pre[:, H:2 * H], fac[:, H:2 * H])
                g = self._lookup(self.tanh, pre[:, 2 * H:3 * H], fac[:, 2 * H:3 * H])
                o = self._lookup(self.sig, pre[:, 3 * H:], fac[:, 3 * H:])
                c = nd.clip(_round_div(f * c + i * g, GATE_ONE), -C_MAX, C_MAX)
                th = self._lookup(self.tanh, c, 2.0 ** (LUT_FRAC - 8))
                new_state.append([_round_div(th * o, GATE_ONE), c])
            below = new_state[-1][0]
        return new_state

    def top(self, state):
        return state[-1][0]

    def rows(self, top) -> np.ndarray:
        """A top state as a numpy (rows, hidden) array, copied to the host."""
        return top.asnumpy()

    def stack(self, tops):
        return nd.concat(*tops, dim=0)

    def freqs(self, h, correction=None) -> np.ndarray:
        """Integer frequencies (rows, vocab_size), copied to the host;
        ``correction`` as :meth:`ExactModel.freqs` takes it."""
        logits = nd.broadcast_add(nd.dot(h, self.out_w_t), self.out_b)
        logits = nd.clip(nd.floor(logits * self.out_fac), -LOGIT_LIMIT, LOGIT_LIMIT)
        if correction is not None:
            full = np.zeros((correction.shape[1], self.vocab_size), np.float32)
            full[:, SYMBOLS] = correction.T
            logits = logits + nd.array(full, ctx=self.ctx, dtype=np.float32)
        d = nd.broadcast_sub(nd.max(logits, axis=1, keepdims=True), logits)
        return nd.take(self.exp, nd.minimum(d, self.exp_last)).asnumpy()
