"""The network's output layer, learning the frame as it is coded.

The network was trained on other books; a frame has its own names, words and
style. This module adds a correction ``D @ h`` to the network's logits, where
``h`` is the top layer's state and ``D`` starts at zero in every frame and
takes one gradient step on the code length after every coding step (dynamic
evaluation of the head, the only layer whose gradient needs no backpropagation
through time). In floating point it would be

    p = softmax(logits + D h),    D -= eta (p - onehot(y)) h^T

with ``h`` in [-1, 1] and ``eta = 2**-shift``, for the logits of
:data:`SYMBOLS` (the others keep theirs). Here it is exact integer arithmetic,
so that the encoder and the decoder compute the same frequencies on any
machine:

- ``A`` holds ``D`` in units of ``eta / 2**24`` nat. After a step it changes
  by ``-G @ H``, with ``H`` the exact state (``256 h``, integers in
  [-255, 255]) and ``G = floor(2**16 F / T) - 2**16 onehot(y)`` from the
  step's frequencies ``F`` and their total ``T``; then it is clamped to
  ``+-limit``, where ``limit * 255 * hidden < 2**53``.
- The correction, in the logits' unit of 1/64 nat, is
  ``floor(A H / 2**(26 + shift))`` clamped to ``+-2**22``; the exact model
  adds it to its integer logits before it takes their exp
  (:meth:`rnnzip.exact.ExactModel.freqs`).

The adapter learns only while at least half of the frame's bytes so far are
:data:`SYMBOLS` (text): on a binary file the network is far off, the mixer's
counts carry the coding, and a head that learned the few text bytes there
pulled the mixer's weights toward the network. On ptt5, the Canterbury fax
image (2% text bytes), learning cost +19% bits over the full profile without
that rule in the ideal count at 3 KiB segments and +21% through the command
line (the first measurement of this profile on the benchmark files: 2.534
bits per byte against 2.093 for the full profile at the same segments);
learning only from text rows made it worse (+32% in the ideal count); with
the rule it codes as the full profile does.

Products and sums are of integers held in float64 below 2**53, which are exact
in any order (so BLAS may sum as it likes); the quotient in ``G`` is exact
after floor (see :meth:`HeadAdapter.learn`). The rows of a step learn together:
their gradients are summed into one step.

On held-out training text (the last 3% of ``train/``, three pieces of
300,000 bytes), with the full mixer after it and ``english``'s 4 KiB segments,
a float prototype of this rule coded 1.8079 bpc without adaptation and 1.7929,
1.7917, 1.7911, 1.7916 and 1.7934 with eta 0.0002, 0.0003, 0.0005, 0.0007 and
0.001; 2**-11 (0.00049) was taken. README.md has the measurements.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HeadAdapter", "SYMBOLS"]

G_ONE = 1 << 16  # probabilities in the gradient, in units of 2**-16
A_FRAC = 26  # A H / 2**(26 + shift) is the correction in 1/64 nat
STATE_MAX = 255  # |H| of an exact state
CORRECTION_LIMIT = 1 << 22  # |correction|, so that logits plus it stay exact
#: the symbols whose logits learn: tab, line feed, carriage return and the
#: printable ASCII characters
SYMBOLS = np.r_[9, 10, 13, 32:127].astype(np.intp)
# a symbol's column in G; the one past the last for symbols that do not learn
_COLUMN = np.full(256, len(SYMBOLS), np.intp)
_COLUMN[SYMBOLS] = np.arange(len(SYMBOLS))


class HeadAdapter:
    """The learned correction of one frame's logits; see the module docstring.

    Each step: :meth:`correction` for the states of the rows being coded,
    :meth:`observe` the frequencies the model then gave them, and, once the
    symbols are known, :meth:`learn`.
    """

    def __init__(self, hidden: int, shift: int, A=None):
        """``A``: where to keep the correction's weights, (len(SYMBOLS),
        hidden) float64 (shared memory, for rnnzip.pipeline); it is zeroed."""
        self.scale = 2.0 ** -(A_FRAC + shift)  # a power of two: exact
        # |A| * 255 * hidden < 2**53: the products A H are exact in float64
        self.limit = float((2 ** 53 - 1) // (STATE_MAX * hidden))
        if A is None:
            A = np.empty((len(SYMBOLS), hidden), np.float64)
        A[:] = 0
        self.A = A
        self._H = self._F = None
        self.pending = 0  # rows observed and not yet learnt from
        self.seen = self.text = 0  # bytes learnt from, and of them in SYMBOLS

    def correction(self, h, rows: int) -> np.ndarray:
        """The correction of :data:`SYMBOLS`' logits, ``(len(SYMBOLS), rows)``
        float32 integers, for states ``h`` of the first rows (zero for the
        rest)."""
        H = self._H = np.asarray(h, np.float64)  # (active, hidden), |.| <= 255
        d = np.zeros((len(SYMBOLS), rows), np.float64)
        part = d[:, :len(H)]
        np.matmul(self.A, H.T, out=part)  # |.| < 2**53: exact
        part *= self.scale
        np.floor(part, out=part)
        np.minimum(part, CORRECTION_LIMIT, out=part)
        np.maximum(part, -CORRECTION_LIMIT, out=part)
        return d.astype(np.float32)

    def observe(self, freqs, h=None) -> None:
        """The frequencies (active rows, 256) the corrected model gave; ``h``,
        their states, if :meth:`correction` did not see them here."""
        if h is not None:
            self._H = np.asarray(h, np.float64)
        self._F = freqs
        self.pending = len(freqs)

    def learn(self, symbols) -> None:
        """One gradient step on the code length of the rows observed."""
        H, F = self._H, np.asarray(self._F, np.float64)
        self._H = self._F = None
        self.pending = 0
        m = len(H)
        column = _COLUMN[np.asarray(symbols, np.intp)]
        self.seen += m
        self.text += int(np.count_nonzero(column < len(SYMBOLS)))
        if 2 * self.text < self.seen:  # not text: learn nothing
            return
        total = np.einsum("iv->i", F)  # integers < 2**24: exact
        # floor(2**16 F / T): a quotient of integers below 2**32 and 2**24 that
        # is not an integer lies at least 2**-40 (relatively) below the next
        # one, far more than float64's rounding of it, so floor gives the exact
        # one. A last column takes the target of rows whose symbol does not learn
        G = np.zeros((m, len(SYMBOLS) + 1), np.float64)
        np.multiply(F[:, SYMBOLS], G_ONE, out=G[:, :-1])
        G[:, :-1] /= total[:, None]
        np.floor(G, out=G)
        G[np.arange(m), column] -= G_ONE
        # summed over rows, G (|.| <= 2**16) times H (<= 255): < 2**32 for 256 rows
        self.A -= G[:, :-1].T @ H
        np.minimum(self.A, self.limit, out=self.A)
        np.maximum(self.A, -self.limit, out=self.A)
