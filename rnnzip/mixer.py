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

Three profiles, each with a number that the archive header records: ``full``
(orders 2, 3, 4, 6 and 8, 12 symbols a context, 2**19 slots an order),
``lean`` (orders 2, 4 and 6, 8 symbols, 2**18 slots: for a model that must
decode fast) and ``adaptive``: the full mixer, fed by a network whose output
layer learns the frame as it is coded (:mod:`rnnzip.adapt`; the codec and
:mod:`rnnzip.pipeline` run that part, beside the network). Their constants
were chosen on held-out text of the training corpus (the last 3% of
``train/``), never on the benchmark files; README.md has the numbers.
Profiles 1 and 2 were the same mixer without the deterministic-context
weights, in development builds only; archives that name them are refused
(:data:`RETIRED_PROFILES`).

Exactness: counts and slot entries are int32, weights and the intermediate
values int64 numpy arrays; every operation is an integer addition,
multiplication, shift or floor division, whose bounds are noted where they are
taken. The network's row totals are float32 sums of integers whose partial
sums stay at most 2**24, exact in any order. The frequencies handed to the
coder are float64 holding integers below 2**52, where float64 arithmetic
(products, sums in any order) is exact.
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
    adapt: int = 0  # the network's head learns at rate 2**-adapt first (0: not)


PROFILES = {p.number: p for p in (
    Profile(3, "full", (2, 3, 4, 6, 8), 12, 19),
    Profile(4, "lean", (2, 4, 6), 8, 18),
    Profile(5, "adaptive", (2, 3, 4, 6, 8), 12, 19, adapt=11),
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
        S = self.S = shape.symbols
        self._tags = np.array([[k << 56] for k in shape.orders], np.uint64)
        self._masks = np.array([[(1 << (8 * k)) - 1] for k in shape.orders],
                               np.uint64)
        bits = shape.slot_bits
        self._shift = np.uint64(64 - bits)
        # the orders' tables side by side: order j's slots start at j << bits
        self._base = (np.arange(K, dtype=np.intp) << bits)[:, None]
        # check 0 marks an empty slot; a used slot holds its 16-bit check + 1
        self.check = np.zeros(K << bits, np.int32)
        self.table = np.zeros((K << bits, S), np.int32)  # count 0: empty
        self.weights = np.full((K + 1) * WEIGHT_KEYS, W_INIT, np.int64)
        self.history = np.zeros(rows, np.uint64)  # the last 8 bytes of each row
        self._row_base = np.arange(rows, dtype=np.intp) * 256
        self._rows = np.arange(rows, dtype=np.intp)
        self._entries = np.arange(K * rows, dtype=np.intp)
        # a weight key's part for a seen order: its order, above all lower orders'
        self._key_order = np.arange(1, K + 1, dtype=np.int64)[:, None] * WEIGHT_KEYS
        # y << 16 | 1: where a slot entry holds y with a count of at least 1
        self._y_entry = (np.arange(256, dtype=np.int32) << SYM_SHIFT) + 1
        self._step = None
        self._context = None

    def _slot_rows(self):
        """The table seen as one item a slot, for whole-slot gathers and stores."""
        return self.table.view(np.dtype((np.void, 4 * self.S))).reshape(-1)

    def predict(self, freqs: np.ndarray) -> np.ndarray:
        """Mixed frequencies (rows, vocab), float64 integers >= 1, from the
        network's (rows, vocab).

        ``freqs`` are the exact model's: integers in [1, 2**16], so a row's
        total is at most 2**24 (and float32 sums of them are exact). The same
        as :meth:`prepare` for ``len(freqs)`` rows, then :meth:`finish`.
        """
        self.prepare(len(freqs))
        return self.finish(freqs)

    def prepare(self, m: int) -> None:
        """Look up the contexts of the first ``m`` rows for this step.

        This half of :meth:`predict` does not need the network's frequencies,
        so it can run while they are computed (rnnzip.pipeline does that).
        """
        K, S = self.K, self.S
        # the contexts' slots and checks, order-major: (K, m)
        h = ((self.history[:m] & self._masks) + self._tags) * _GOLDEN  # mod 2**64
        slots = (h >> self._shift).astype(np.intp) + self._base
        checks = ((h >> _CHECK_SHIFT) & _CHECK_MASK).astype(np.int32) + 1
        hit = np.take(self.check, slots) == checks
        packed = np.take(self._slot_rows(), slots).view(np.int32).reshape(K, m, S)
        packed *= hit[..., None]  # another context's slot counts as empty
        c = packed & CNT_MASK  # at rest a slot's total <= 255
        n = np.einsum("kms->km", c).astype(np.int64)  # (K, m)
        u = np.einsum("kms->km", (c != 0).view(np.int8)).astype(np.int64)
        seen = n > 0
        # u = 0 exactly where unseen: there d = 1 and the escape is 1
        ue = np.maximum(u, 1)
        d = n + ue  # n + u <= 263 where seen, 1 where not
        escape = (ue << E_FRAC) // d  # <= 2**16
        lam = np.empty((K + 1, m), np.int64)
        lam[K] = 1 << E_FRAC
        for k in range(K - 1, -1, -1):
            np.multiply(lam[k + 1], escape[k], out=lam[k])  # < 2**32
            np.right_shift(lam[k], E_FRAC, out=lam[k])
        # order k's entries hold s = c f_k, which sum to n_k f_k
        f = (lam[1:] << 16) // d  # (K, m)
        fn = np.einsum("km,km->m", f, n)
        # the weight's key: the longest seen order's, which outranks all lower ones
        key = (np.minimum(n, COUNT_BUCKETS - 1) << 1) + (u == 1)  # a deterministic
        key += self._key_order * seen  # context; unseen orders give 0
        key = key.max(axis=0)
        # where each entry's count goes in the flat (m, vocab) result; entries
        # with no count go past its end, so that no two entries of one order
        # share a place (a slot holds a symbol in one counted entry at most)
        at = (packed >> SYM_SHIFT) + self._row_base[:m, None]
        at[c == 0] = m * 256
        self._context = (m, lam[0], f, fn, key, c, at, slots, checks, packed)

    def finish(self, freqs: np.ndarray, totals: np.ndarray | None = None) -> np.ndarray:
        """The mixed frequencies of the rows :meth:`prepare` looked up.

        ``totals``, if given, are the row sums of ``freqs`` as int64 (computed
        elsewhere, as ``np.einsum("iv->i", freqs)``).
        """
        m, lam0, f, fn, key, c, at, slots, checks, packed = self._context
        self._context = None
        F = np.asarray(freqs, dtype=np.float32)
        if F.shape != (m, 256):
            raise ValueError(f"the mixer prepared {m} rows of 256 symbols, got "
                             f"frequencies of shape {F.shape}")
        Tr = (np.einsum("iv->i", F).astype(np.int64) if totals is None
              else totals)  # float32 sums <= 2**24: exact
        # the refined estimate a F + s, in units of Z <= 2**32: totals telescope
        a = (lam0 << 16) // Tr
        Z = a * Tr + fn
        wc = self.weights[key]
        # w (a F + s) / Z + (1 - w) F / Tr, times Z Tr W_ONE / 2**22:
        # wc Tr a <= 2**48, (W_ONE - wc) Z <= 2**48, so 2**15 <= coef < 2**27
        wt = wc * Tr
        coef = (wt * a + (W_ONE - wc) * Z) >> 22
        # sparse = (wt >> 12) s >> 10 < 2**28 * 2**32 / 2**10; (wt >> 12) f_k is at
        # most (wt >> 12) s where c >= 1 and below 2**28 * 2**32 where c = 0
        fw = (wt >> 12) * f  # (K, m)
        sparse = (c * fw[..., None]) >> 10  # (K, m, S)
        # a row: F coef < 2**43 each, 2**51 in all; sparse 2**50 in all. The
        # result is C-contiguous, as the coder reads it, whatever F's layout
        flat = np.empty(m * 256 + 1, np.float64)
        flat[-1] = 0.0  # the place of entries with no count: never read, but not NaN
        mixed = flat[:-1].reshape(m, 256)
        np.multiply(F, coef.astype(np.float64)[:, None], out=mixed)
        for k in range(self.K):
            flat[at[k]] += sparse[k]  # distinct places within an order
        self._step = (F, Tr, a, f, Z, fw, key, coef, sparse, slots, checks, packed)
        return mixed

    def update(self, symbols: np.ndarray) -> None:
        """Learn from the symbols of the rows :meth:`predict` was given."""
        F, Tr, a, f, Z, fw, key, coef, sparse, slots, checks, packed = self._step
        self._step = None
        y = np.asarray(symbols, dtype=np.int64)
        m = len(y)
        K, S = self.K, self.S
        Fy = F[self._rows[:m], y].astype(np.int64)

        # where y sits in each slot with a count >= 1: in one entry at most, since
        # a slot takes a symbol in only where none of its counted entries holds it
        is_y = (packed - self._y_entry[y][:, None]).view(np.uint32) < CNT_MASK
        pos = is_y.argmax(axis=2).reshape(-1)  # (K m)
        at = self._entries[:K * m] * S + pos
        found = is_y.reshape(-1)[at]
        cy = ((packed.reshape(-1)[at] & CNT_MASK) * found).reshape(K, m)

        # the weight follows the gradient of the code length: (p_c - p_r) / p_mix
        pc = ((a * Fy + np.einsum("km,km->m", f, cy)) << P_FRAC) // Z
        pr = (Fy << P_FRAC) // Tr
        # the row's mixed total, >= 2**23
        total = coef * Tr + np.einsum("kms->m", sparse)
        mixed_y = Fy * coef + ((cy * fw) >> 10).sum(axis=0)  # < 2**52
        pm = np.maximum(1, (mixed_y << 10) // (total >> (P_FRAC - 10)))
        delta = ((pc - pr) * LEARNING_RATE) // pm  # |delta| < 2**29
        self.weights += np.bincount(key, weights=delta, minlength=len(self.weights)
                                    ).astype(np.int64)  # sums < 2**37: exact
        np.maximum(self.weights, W_MIN, out=self.weights)
        np.minimum(self.weights, W_MAX, out=self.weights)
        self._count(slots.reshape(-1), checks.reshape(-1), y,
                    packed.reshape(-1, S), found, pos)
        self.history[:m] = (self.history[:m] << _EIGHT) | y.astype(np.uint64)

    def _count(self, slot, check, y, packed, found, pos):
        """Count each entry's symbol in its slot, as the module docstring says.

        Entries are order-major (entry ``k m + i`` is row ``i``'s order ``k``) and
        ``y`` is by row. ``packed`` is the slots as :meth:`predict` saw them
        (empty where the check differed); ``found`` says whether the entry's
        symbol is counted there, and ``pos`` where.
        """
        S, E, m = self.S, len(slot), len(y)
        # entries sorted by slot, then by row: keys are unique, so any sort will do
        bits = max(1, E.bit_length())
        key = np.sort((slot << bits) + self._entries[:E])
        order = key & ((1 << bits) - 1)
        slot = key >> bits
        first = np.empty(E, bool)
        first[0] = True
        np.not_equal(slot[1:], slot[:-1], out=first[1:])
        group = np.cumsum(first) - 1
        lead = order[first]
        g_slot, g_check = slot[first], check[lead]
        G = len(lead)
        rows = packed[lead]  # (G, S)
        counted = check[order] == g_check[group]
        found = found[order]
        inc = np.where(counted & found, group * S + pos[order], G * S)
        rows += np.bincount(inc, minlength=G * S + 1)[:-1].reshape(G, S)
        new = np.flatnonzero(counted > found)  # counted, not found
        if len(new):
            g_new = group[new]
            y_new = y[order[new] % m]
            lead = np.empty(len(new), bool)
            lead[0] = True
            np.not_equal(g_new[1:], g_new[:-1], out=lead[1:])
            g_lead, y_lead = g_new[lead], y_new[lead]
            # the first row's new symbol, counted as often as rows saw it,
            # takes the least counted entry (an empty one first; the first of ties)
            which = np.cumsum(lead) - 1
            same = y_new == y_lead[which]
            times = np.bincount(which[same], minlength=len(g_lead))
            at = (rows[g_lead] & CNT_MASK).argmin(axis=1)
            rows[g_lead, at] = (y_lead << SYM_SHIFT) + times
        # a slot's counts sum below 2**16, so the packed sum carries none into
        # the symbols' bits (and stays below 2**31)
        full = (np.einsum("gs->g", rows) & CNT_MASK) > COUNT_LIMIT
        if full.any():
            r = rows[full]
            rows[full] = (r & ~CNT_MASK) | ((r & CNT_MASK) >> 1)
        self._slot_rows()[g_slot] = rows.view(self._slot_rows().dtype).reshape(-1)
        self.check[g_slot] = g_check
