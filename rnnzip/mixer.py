"""Context mixing: the network's frequencies refined by the frame's own statistics.

The network knows English in general; it does not know the file in front of it:
its names, its vocabulary, its line ends. This module learns those as a frame
is coded and mixes them into the network's prediction, in exact integer
arithmetic, so the encoder and the decoder compute the same frequencies on any
machine.

For every step of every segment:

- For each order ``k`` of the profile, the last ``k`` bytes of the segment
  (zeros before its start) are a context, hashed into a table of that order
  with a 16-bit check. A slot keeps up to ``symbols`` symbols that followed its
  context in this frame, with their counts (all halved when their total passes
  :data:`COUNT_LIMIT`, so the statistics follow the text).
- From the network's distribution ``r``, each order that has seen its context
  refines the estimate in turn, Witten-Bell style:
  ``p_k(s) = (c_k(s) + u_k p_{k-1}(s)) / (n_k + u_k)`` with ``n_k`` the
  context's total count and ``u_k`` its number of distinct symbols. Unrolled,
  ``p_K = lam_0 r + sum_k lam_k c_k / (n_k + u_k)``, where ``lam_k`` is the
  product of the escapes ``u_j / (n_j + u_j)`` of the orders above ``k``; this
  module computes it in that form, all orders at once.
- The final distribution is ``w p_K + (1 - w) r``, where the weight ``w`` is
  learned online, by gradient steps on the code length, separately for each
  longest order seen, count of its context, and whether that context has
  seen one symbol only (a deterministic context) or more.

Segments are coded side by side and share the tables: the statistics of step
``t`` are those of all segments' steps before ``t``. The rows of one step that
meet in a slot update it together: each symbol gains as many counts as rows
saw it, but of the symbols new to the slot only the first row's is taken in
(into the least counted entry); a row whose context differs from the first
row's in that slot (a hash collision) is not counted. Each frame starts with
empty tables.

Two profiles, each with a number that the archive header records: ``full``
(orders 2, 3, 4, 6 and 8, 12 symbols a context, 2**19 slots an order) and
``lean`` (orders 2, 4 and 6, 8 symbols, 2**18 slots: for a model that must
decode fast). Their constants were chosen on held-out text of the training
corpus (the last 3% of ``train/``), never on the benchmark files; README.md
has the numbers. Profiles 1 and 2 were the same mixer without the
deterministic-context weights, in development builds only; archives that
name them are refused (:data:`RETIRED_PROFILES`).

Exactness: counts, weights and the intermediate values are int64 numpy arrays;
every operation is an integer addition, multiplication, shift or floor
division, whose bounds are noted where they are taken. The frequencies handed
to the coder are float64 holding integers below 2**52, where float64
arithmetic (products, sums in any order) is exact.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ContextMixer", "FULL", "MIXER_VERSION", "Profile", "PROFILES",
           "RETIRED_PROFILES", "profile"]

MIXER_VERSION = 3


class Profile(NamedTuple):
    """A mixer's shape; ``number`` is what an archive header records."""

    number: int
    name: str
    orders: tuple  # context lengths in bytes, shortest first, at most 8
    symbols: int  # symbols kept per context
    slot_bits: int  # 2**slot_bits slots per order


PROFILES = {p.number: p for p in (
    Profile(3, "full", (2, 3, 4, 6, 8), 12, 19),
    Profile(4, "lean", (2, 4, 6), 8, 18),
)}
FULL = PROFILES[3]
RETIRED_PROFILES = (1, 2)  # development builds' mixer, before version 3

COUNT_LIMIT = 255  # a context's counts are halved when their total passes this
COUNT_BUCKETS = 8  # context totals 0..6 and 7 or more
WEIGHT_KEYS = 2 * COUNT_BUCKETS  # weights per order: totals, deterministic or not
W_ONE = 1 << 16  # weights are fractions of W_ONE
W_INIT = W_ONE // 2
W_MIN, W_MAX = W_ONE >> 10, W_ONE - (W_ONE >> 10)
LEARNING_RATE = 131  # about 0.002 of W_ONE per unit of gradient
P_FRAC = 20  # probabilities in the weight update, in units of 2**-20
E_FRAC = 16  # escapes and their products, in units of 2**-16
SYM_SHIFT = 16  # a slot entry is symbol << 16 | count
CNT_MASK = (1 << SYM_SHIFT) - 1

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_CHECK_SHIFT = np.uint64(16)
_CHECK_MASK = np.uint64(0xFFFF)
_EIGHT = np.uint64(8)


def profile(key) -> Profile:
    """The profile for a number or a name; ValueError for any other."""
    for p in PROFILES.values():
        if key in (p.number, p.name):
            return p
    names = ", ".join(p.name for p in PROFILES.values())
    raise ValueError(f"unknown context mixing profile {key!r} (known: {names})")


class ContextMixer:
    """The adaptive half of a frame's coding model; one per frame.

    Call :meth:`predict` with the network's frequencies of the rows that are
    running at this step (a prefix of the segments), then :meth:`update` with
    the symbols those rows turned out to be.
    """

    def __init__(self, rows: int, shape: Profile = FULL):
        self.profile = shape
        K = self.K = len(shape.orders)
        self.S = shape.symbols
        self._tags = np.array([k << 56 for k in shape.orders], np.uint64)
        self._masks = np.array([(1 << (8 * k)) - 1 for k in shape.orders], np.uint64)
        bits = shape.slot_bits
        self._shift = np.uint64(64 - bits)
        # the orders' tables side by side: order j's slots start at j << bits
        self._base = np.arange(K, dtype=np.intp) << bits
        # check 0 marks an empty slot; a used slot holds its 16-bit check + 1
        self.check = np.zeros(K << bits, np.int32)
        self.table = np.zeros((K << bits, self.S), np.int32)  # count 0: empty
        self.weights = np.full((K + 1) * WEIGHT_KEYS, W_INIT, np.int64)
        self.history = np.zeros(rows, np.uint64)  # the last 8 bytes of each row
        self._row_base = np.arange(rows, dtype=np.intp) * 256
        self._ones = np.ones(256, np.float32)
        self._step = None

    def predict(self, freqs: np.ndarray) -> np.ndarray:
        """Mixed frequencies (rows, vocab), float64 integers >= 1, from the
        network's (rows, vocab).

        ``freqs`` are the exact model's: integers in [1, 2**16], so a row's
        total is at most 2**24 (and float32 sums of them are exact).
        """
        F = np.asarray(freqs, dtype=np.float32)
        m, V = F.shape
        K = self.K
        Tr = (F @ self._ones[:V]).astype(np.int64)
        h = ((self.history[:m, None] & self._masks) + self._tags) * _GOLDEN  # mod 2**64
        slots = (h >> self._shift).astype(np.intp) + self._base  # (m, K)
        checks = ((h >> _CHECK_SHIFT) & _CHECK_MASK).astype(np.int32) + 1
        hit = np.take(self.check, slots) == checks
        packed = np.take(self.table, slots, axis=0)  # (m, K, S)
        packed *= hit[..., None]  # another context's slot counts as empty
        c = (packed & CNT_MASK).astype(np.int64)  # at rest a slot's total <= 255
        n = c.sum(axis=2)  # (m, K)
        u = np.count_nonzero(c, axis=2)
        seen = n > 0
        d = n + u + ~seen  # n + u <= 263 where seen, 1 where not
        escape = np.where(seen, (u << E_FRAC) // d, 1 << E_FRAC)  # <= 2**16
        lam = np.empty((m, K + 1), np.int64)
        L = np.full(m, 1 << E_FRAC, np.int64)
        for k in range(K - 1, -1, -1):
            lam[:, k + 1] = L
            L = (L * escape[:, k]) >> E_FRAC  # < 2**32 before the shift
        lam[:, 0] = L
        # the refined estimate a F + s_val, in units of Z <= 2**32: totals telescope
        a = (lam[:, 0] << 16) // Tr
        s_val = (c * ((lam[:, 1:] << 16) // d)[..., None]).reshape(m, -1)
        s_sym = (packed >> SYM_SHIFT).reshape(m, -1)
        Z = a * Tr + s_val.sum(axis=1)
        longest = K - np.argmax(seen[:, ::-1], axis=1)
        longest[~seen.any(axis=1)] = 0
        at = (np.arange(m), np.maximum(longest - 1, 0))
        n_longest = n[at] * (longest > 0)
        key = (longest * WEIGHT_KEYS + 2 * np.minimum(n_longest, COUNT_BUCKETS - 1)
               + (u[at] == 1))  # a deterministic context
        wc = self.weights[key]
        # w (a F + s) / Z + (1 - w) F / Tr, times Z Tr W_ONE / 2**22:
        # wc Tr a <= 2**48, (W_ONE - wc) Z <= 2**48, so 2**15 <= coef < 2**27
        coef = (wc * Tr * a + (W_ONE - wc) * Z) >> 22
        sparse = (((wc * Tr) >> 12)[:, None] * s_val) >> 10  # < 2**28 * 2**32 / 2**10
        # a row: F coef < 2**43 each, 2**51 in all; sparse 2**50 in all
        mixed = np.bincount((self._row_base[:m, None] + s_sym).reshape(-1),
                            weights=sparse.reshape(-1), minlength=m * V)
        mixed = mixed.reshape(m, V)
        mixed += F * coef[:, None].astype(np.float64)
        self._step = (F, Tr, a, Z, s_sym, s_val, key, coef, sparse, slots, checks,
                      packed)
        return mixed

    def update(self, symbols: np.ndarray) -> None:
        """Learn from the symbols of the rows :meth:`predict` was given."""
        (F, Tr, a, Z, s_sym, s_val, key, coef, sparse, slots, checks,
         packed) = self._step
        self._step = None
        y = np.asarray(symbols, dtype=np.int64)
        m = len(y)
        is_y = s_sym == y[:, None]
        Fy = F[np.arange(m), y].astype(np.int64)
        # the weight follows the gradient of the code length: (p_c - p_r) / p_mix
        pc = ((a * Fy + (s_val * is_y).sum(axis=1)) << P_FRAC) // Z
        pr = (Fy << P_FRAC) // Tr
        total = coef * Tr + sparse.sum(axis=1)  # the row's mixed total, >= 2**23
        mixed_y = Fy * coef + (sparse * is_y).sum(axis=1)  # < 2**52
        pm = np.maximum(1, (mixed_y << 10) // (total >> (P_FRAC - 10)))
        delta = ((pc - pr) * LEARNING_RATE) // pm  # |delta| < 2**29
        self.weights += np.bincount(key, weights=delta, minlength=len(self.weights)
                                    ).astype(np.int64)  # sums < 2**37: exact
        np.maximum(self.weights, W_MIN, out=self.weights)
        np.minimum(self.weights, W_MAX, out=self.weights)
        self._count(slots.reshape(-1), checks.reshape(-1), np.repeat(y, self.K),
                    packed.reshape(-1, self.S), is_y.reshape(-1, self.S))
        self.history[:m] = (self.history[:m] << _EIGHT) | y.astype(np.uint64)

    def _count(self, slot, check, y, packed, is_y):
        """Count each entry's ``y`` in its slot, as the module docstring says.

        ``packed`` and ``is_y`` are the slots as :meth:`predict` saw them
        (empty where the check differed) and where ``y`` sits in them.
        """
        S, E = self.S, len(slot)
        # entries sorted by slot, then by row: keys are unique, so any sort will do
        bits = max(1, E.bit_length())
        key = np.sort((slot << bits) + np.arange(E))
        order = key & ((1 << bits) - 1)
        slot = key >> bits
        first = np.empty(E, bool)
        first[0] = True
        np.not_equal(slot[1:], slot[:-1], out=first[1:])
        group = np.cumsum(first) - 1
        g_slot, g_check = slot[first], check[order[first]]
        y, packed, is_y = y[order], packed[order], is_y[order]
        counted = check[order] == g_check[group]
        found = is_y & ((packed & CNT_MASK) > 0)
        pos = found.argmax(axis=1)
        found = found.any(axis=1)
        G = len(g_slot)
        rows = packed[first]  # (G, S)
        inc = counted & found
        rows += np.bincount(group[inc] * S + pos[inc], minlength=G * S
                            ).reshape(G, S).astype(np.int32)
        new = np.flatnonzero(counted & ~found)
        if len(new):
            g_new = group[new]
            lead = np.empty(len(new), bool)
            lead[0] = True
            np.not_equal(g_new[1:], g_new[:-1], out=lead[1:])
            g_lead, y_lead = g_new[lead], y[new[lead]]
            # the first row's new symbol, counted as often as rows saw it,
            # takes the least counted entry (an empty one first; the first of ties)
            lead_y = np.full(G, -1, np.int64)
            lead_y[g_lead] = y_lead
            same = y[new] == lead_y[g_new]
            times = np.bincount(g_new[same], minlength=G)[g_lead]
            pos = (rows[g_lead] & CNT_MASK).argmin(axis=1)
            rows[g_lead, pos] = (y_lead << SYM_SHIFT) + times
        full = (rows & CNT_MASK).sum(axis=1) > COUNT_LIMIT
        if full.any():
            r = rows[full]
            rows[full] = (r & ~CNT_MASK) | ((r & CNT_MASK) >> 1)
        self.table[g_slot] = rows
        self.check[g_slot] = g_check
