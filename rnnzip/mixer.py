"""Context mixing: the network's frequencies refined by the frame's own statistics.

The network knows English in general; it does not know the file in front of it:
its names, its vocabulary, its line ends. This module learns those as a frame
is coded and mixes them into the network's prediction, in exact integer
arithmetic, so the encoder and the decoder compute the same frequencies on any
machine.

For every step of every segment:

- For each order ``k`` in :data:`ORDERS`, the last ``k`` bytes of the segment
  are a context, hashed into a table of that order with a 16-bit check. A slot
  keeps up to :data:`SLOT_SYMBOLS` symbols that followed its context in this
  frame, with their counts (all halved when they pass :data:`COUNT_LIMIT`, so
  the statistics follow the text).
- From the network's distribution ``r``, each order that has seen its context
  refines the estimate in turn, Witten-Bell style:
  ``p_k(s) = (c_k(s) + u_k p_{k-1}(s)) / (n_k + u_k)`` with ``n_k`` the
  context's total count and ``u_k`` its number of distinct symbols.
- The final distribution is ``w p_K + (1 - w) r``, where the weight ``w`` is
  learned online, by gradient steps on the code length, separately for each
  longest order seen and count of its context.

Segments are coded side by side and share the tables: the statistics of step
``t`` are those of all segments' steps before ``t``, updated after each step in
row order (rows that fall in the same slot are applied one after another, in
passes). Each frame starts with empty tables.

The constants were chosen on held-out text of the training corpus (the last
3% of ``train/``), never on the benchmark files; README.md has the numbers.

Exactness: counts, weights and frequencies are int64 numpy arrays; every
operation is an integer addition, multiplication, shift or floor division,
whose bounds are noted where they are taken. The frequencies handed to the
coder stay below 2**52, so their float64 form is exact.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ContextMixer", "MIXER_VERSION", "ORDERS"]

MIXER_VERSION = 1
ORDERS = (2, 3, 4, 6, 8)  # context lengths in bytes, shortest first
SLOT_BITS = 18  # 2**18 slots per order
SLOT_SYMBOLS = 8  # symbols kept per context
COUNT_LIMIT = 255  # a context's counts are halved when their total passes this
COUNT_BUCKETS = 8  # weights per order: context totals 0..6 and 7 or more
W_ONE = 1 << 16  # weights are fractions of W_ONE
W_INIT = W_ONE // 2
W_MIN, W_MAX = W_ONE >> 10, W_ONE - (W_ONE >> 10)
LEARNING_RATE = 262  # about 0.004 of W_ONE per unit of gradient
P_FRAC = 20  # probabilities in the weight update, in units of 2**-20
_SCALE = 32  # the refined estimate's total is at most 2**32

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ORDER_TAGS = [np.uint64(k << 56) for k in ORDERS]
_MASKS = [np.uint64((1 << (8 * k)) - 1) for k in ORDERS]
_SLOT_SHIFT = np.uint64(64 - SLOT_BITS)
_CHECK_SHIFT = np.uint64(16)
_CHECK_MASK = np.uint64(0xFFFF)
_EIGHT = np.uint64(8)


class ContextMixer:
    """The adaptive half of a frame's coding model; one per frame.

    Call :meth:`predict` with the network's frequencies of the rows that are
    running at this step (a prefix of the segments), then :meth:`update` with
    the symbols those rows turned out to be.
    """

    def __init__(self, rows: int):
        # the orders' tables side by side: order j's slots start at j << SLOT_BITS
        n_slots = len(ORDERS) << SLOT_BITS
        # check 0 marks an empty slot; a used slot holds its 16-bit check + 1
        self.check = np.zeros(n_slots, np.int32)
        self.syms = np.zeros((n_slots, SLOT_SYMBOLS), np.int16)
        self.cnts = np.zeros((n_slots, SLOT_SYMBOLS), np.int32)
        self.weights = np.full((len(ORDERS) + 1) * COUNT_BUCKETS, W_INIT, np.int64)
        self.history = np.zeros(rows, np.uint64)  # the last 8 bytes of each row
        self.t = 0
        self._step = None

    def _slots(self, m: int):
        """Slots and checks (m, orders) of the contexts of the first ``m`` rows."""
        hist = self.history[:m]
        usable = sum(1 for k in ORDERS if k <= self.t)
        slots = np.empty((m, usable), np.intp)
        checks = np.empty((m, usable), np.int32)
        for j in range(usable):
            h = ((hist & _MASKS[j]) + _ORDER_TAGS[j]) * _GOLDEN  # wraps mod 2**64
            slots[:, j] = (h >> _SLOT_SHIFT).astype(np.intp) + (j << SLOT_BITS)
            checks[:, j] = ((h >> _CHECK_SHIFT) & _CHECK_MASK).astype(np.int32) + 1
        return slots, checks

    def predict(self, freqs: np.ndarray) -> np.ndarray:
        """Mixed integer frequencies (rows, vocab) from the network's (rows, vocab).

        ``freqs`` are the exact model's: integers in [1, 2**16], so a row's
        total is at most 2**24.
        """
        F = np.asarray(freqs).astype(np.int64)
        m = len(F)
        rows = np.arange(m)
        Tr = F.sum(axis=1)
        # the refined estimate is a * F + (sparse counts), with total Z <= 2**32
        a = (np.int64(1) << _SCALE) // Tr
        Z = a * Tr
        slots, checks = self._slots(m)
        usable = slots.shape[1]
        hit = self.check[slots] == checks  # (m, orders)
        counts = self.cnts[slots].astype(np.int64)  # (m, orders, SLOT_SYMBOLS)
        counts[~hit] = 0
        totals = counts.sum(axis=2)
        distinct = np.count_nonzero(counts, axis=2)
        s_sym = self.syms[slots].reshape(m, -1).astype(np.intp)
        s_val = np.zeros((m, SLOT_SYMBOLS * usable), np.int64)
        longest = np.zeros(m, np.int64)
        n_longest = np.zeros(m, np.int64)
        for j in range(usable):
            c, n, u = counts[:, j], totals[:, j], distinct[:, j]
            seen = n > 0
            den = np.where(seen, n + u, 1)
            w = np.where(seen, u, 1)
            lo, hi = SLOT_SYMBOLS * j, SLOT_SYMBOLS * (j + 1)
            # p_k = (c + u p_{k-1}) / (n + u), in units of Z: totals never grow
            a = (w * a) // den
            s_val[:, :lo] = (w[:, None] * s_val[:, :lo]) // den[:, None]
            s_val[:, lo:hi] = (c * Z[:, None]) // den[:, None]  # c*Z < 2**41
            Z = a * Tr + s_val.sum(axis=1)
            longest[seen] = j + 1
            n_longest[seen] = n[seen]
        key = longest * COUNT_BUCKETS + np.minimum(n_longest, COUNT_BUCKETS - 1)
        wc = self.weights[key]
        # w (a F + s) / Z + (1 - w) F / Tr, times Z Tr W_ONE / 2**22:
        # wc Tr a <= 2**48, (W_ONE - wc) Z <= 2**48, so coef < 2**27
        coef = (wc * Tr * a + (W_ONE - wc) * Z) >> 22
        sparse = (((wc * Tr) >> 12)[:, None] * s_val) >> 10  # < 2**28 * 2**32
        mixed = F * coef[:, None]  # < 2**43
        np.add.at(mixed, (np.repeat(rows, s_sym.shape[1]), s_sym.reshape(-1)),
                  sparse.reshape(-1))
        self._step = (F, Tr, a, Z, s_sym, s_val, key, mixed, slots, checks)
        return mixed  # every entry >= coef >= 1; a row's total < 2**52

    def update(self, symbols: np.ndarray) -> None:
        """Learn from the symbols of the rows :meth:`predict` was given."""
        F, Tr, a, Z, s_sym, s_val, key, mixed, slots, checks = self._step
        self._step = None
        y = np.asarray(symbols, dtype=np.int64)
        m = len(y)
        rows = np.arange(m)
        # the weight follows the gradient of the code length: (p_c - p_r) / p_mix
        p_refined = a * F[rows, y] + (s_val * (s_sym == y[:, None])).sum(axis=1)
        pc = (p_refined << P_FRAC) // Z  # p_refined <= 2**32
        pr = (F[rows, y] << P_FRAC) // Tr
        total = mixed.sum(axis=1)  # about 2**26 Tr >= 2**33
        pm = np.maximum(1, (mixed[rows, y] << 10) // (total >> (P_FRAC - 10)))
        delta = ((pc - pr) * LEARNING_RATE) // pm
        np.add.at(self.weights, key, delta)
        np.clip(self.weights, W_MIN, W_MAX, out=self.weights)
        if slots.shape[1]:
            self._count(slots.reshape(-1), checks.reshape(-1),
                        np.repeat(y, slots.shape[1]))
        self.history[:m] = (self.history[:m] << _EIGHT) | y.astype(np.uint64)
        self.t += 1

    def _count(self, slot, check, y):
        """Count each ``y`` in its slot; entries for the same slot in turn."""
        pending = np.arange(len(y))
        while len(pending):
            _, first = np.unique(slot[pending], return_index=True)
            idx = pending[first]
            pending = np.delete(pending, first)
            sl, yy = slot[idx], y[idx]
            hit = self.check[sl] == check[idx]
            # a new context, or another one with this slot: start it afresh
            miss = sl[~hit]
            self.check[miss] = check[idx][~hit]
            self.cnts[miss] = 0
            self.syms[miss, 0] = yy[~hit]
            self.cnts[miss, 0] = 1
            sl, yy = sl[hit], yy[hit]
            if not len(sl):
                continue
            syms, cnts = self.syms[sl], self.cnts[sl]
            match = (syms == yy[:, None]) & (cnts > 0)
            found = match.any(axis=1)
            # the symbol's own entry, else the least counted (the first of ties)
            pos = np.where(found, match.argmax(axis=1), cnts.argmin(axis=1))
            r = np.arange(len(sl))
            cnts[r, pos] = np.where(found, cnts[r, pos] + 1, 1)
            syms[r, pos] = yy
            full = cnts.sum(axis=1) > COUNT_LIMIT
            cnts[full] >>= 1
            self.syms[sl], self.cnts[sl] = syms, cnts
