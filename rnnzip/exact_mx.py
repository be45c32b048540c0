"""The exact coding model on MXNet, on ``cpu()`` or ``gpu(N)``.

The same integer rules as :class:`rnnzip.exact.ExactModel`: matrix products
in float32 on integer values small enough to be exact, everything after them
in float64 holding integers (exact below 2**53), shifts as a multiplication by
a power of two followed by floor. The state stays on the device; only the
frequency table of each step comes back to the host.
"""

from __future__ import annotations

import numpy as np

from ._mx import mx
from .exact import C_MAX, LUT_FRAC, LUT_LIMIT, ExactModel

nd = mx.nd

__all__ = ["MXNetExactModel"]


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

        def f64(a):
            return nd.array(np.asarray(a, np.float64), ctx=ctx, dtype=np.float64)

        def f32(a):
            return nd.array(np.asarray(a, np.float32), ctx=ctx, dtype=np.float32)

        self.sig, self.tanh, self.exp = f64(exact.sig), f64(exact.tanh), f64(exact.exp)
        self.layers = []
        for k, layer in enumerate(exact.layers):
            rs, ls = layer["rs"], layer["ls"]
            self.layers.append({
                "x": f64(layer["x"]) if k == 0 else None,
                "wx_t": None if k == 0 else f32(layer["wx_t"]),
                "wh_t": f32(layer["wh_t"]),
                "bx": f64(layer["bx"]).reshape((1, -1)),
                "bh": f64(layer["bh"]).reshape((1, -1)),
                "rfac": f64(np.exp2(-rs.astype(np.float64))).reshape((1, -1)),
                "lfac": f64(np.exp2(ls.astype(np.float64))).reshape((1, -1))})
        self.out_w_t = f32(exact.out_w_t)
        self.out_b = f64(exact.out_b).reshape((1, -1))
        self.out_rfac = 2.0 ** -exact.out_rs
        self.out_lfac = 2.0 ** exact.out_ls
        self.exp_last = len(exact.exp) - 1

    def begin_state(self, batch_size: int) -> list:
        n = 2 if self.cell == "lstm" else 1
        return [[nd.zeros((batch_size, self.num_hiddens), ctx=self.ctx, dtype=np.float64)
                 for _ in range(n)] for _ in range(self.num_layers)]

    @staticmethod
    def _mm(h, w_t):
        return nd.dot(h.astype(np.float32), w_t).astype(np.float64)

    def _lut(self, table, pre, layer, lo, hi):
        idx = nd.floor(nd.broadcast_mul(pre, layer["rfac"][:, lo:hi]))
        idx = nd.broadcast_mul(idx, layer["lfac"][:, lo:hi])
        idx = nd.clip(idx, -LUT_LIMIT, LUT_LIMIT) + LUT_LIMIT
        return nd.take(table, idx)

    def advance(self, x, state):
        """Feed symbols ``x`` (rows,) and return the next state (on device)."""
        H = self.num_hiddens
        below = None
        new_state = []
        for k, layer in enumerate(self.layers):
            h = state[k][0]
            if k == 0:
                idx = nd.array(np.asarray(x), ctx=self.ctx, dtype=np.float64)
                u = nd.take(layer["x"], idx)  # (rows, G*H)
            else:
                u = nd.broadcast_add(self._mm(below, layer["wx_t"]), layer["bx"])
            v = self._mm(h, layer["wh_t"])
            if self.cell == "rnn":
                h = self._lut(self.tanh, u + v, layer, 0, H)
                cells = [h]
            elif self.cell == "gru":
                v = nd.broadcast_add(v, layer["bh"])
                gates = self._lut(self.sig, u[:, :2 * H] + v[:, :2 * H], layer, 0, 2 * H)
                r, z = gates[:, :H], gates[:, H:]
                pre_n = u[:, 2 * H:] + nd.floor(r * v[:, 2 * H:] / 256)
                n = self._lut(self.tanh, pre_n, layer, 2 * H, 3 * H)
                h = n + nd.floor(z * (h - n) / 256)
                cells = [h]
            else:
                pre = u + v
                c = state[k][1]
                i = self._lut(self.sig, pre[:, :H], layer, 0, H)
                f = self._lut(self.sig, pre[:, H:2 * H], layer, H, 2 * H)
                g = self._lut(self.tanh, pre[:, 2 * H:3 * H], layer, 2 * H, 3 * H)
                o = self._lut(self.sig, pre[:, 3 * H:], layer, 3 * H, 4 * H)
                c = nd.clip(nd.floor((f * c + i * g) / 256), -C_MAX, C_MAX)
                tc = nd.clip(nd.floor(c / 2 ** (8 - LUT_FRAC)), -LUT_LIMIT, LUT_LIMIT)
                h = nd.floor(o * nd.take(self.tanh, tc + LUT_LIMIT) / 256)
                cells = [h, c]
            new_state.append(cells)
            below = h
        return new_state

    def top(self, state):
        return state[-1][0]

    def stack(self, tops):
        return nd.concat(*tops, dim=0)

    def freqs(self, h) -> np.ndarray:
        """Integer frequencies (rows, vocab_size), copied to the host."""
        logits = nd.broadcast_add(self._mm(h, self.out_w_t), self.out_b)
        d = nd.broadcast_sub(nd.max(logits, axis=1, keepdims=True), logits)
        q = nd.floor(d * self.out_rfac) * self.out_lfac
        q = nd.minimum(q, self.exp_last)
        return nd.take(self.exp, q).asnumpy().astype(np.int64)
