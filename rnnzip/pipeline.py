"""The decoder's network on a second core, beside the mixer and the coder.

Decoding is a chain: the network's step ``t + 1`` needs the byte that step
``t`` decoded. But the context mixer's work for a step is mostly lookups and
learning that do not need the network (:meth:`ContextMixer.update` of step
``t``, :meth:`ContextMixer.prepare` of step ``t + 1``), so a worker process
can run the network's step ``t + 1`` while the main process does them. The
frequencies are the same integers either way, so the archive and the output
do not depend on whether a worker ran.

The worker is a child made with ``os.fork`` that inherits the loaded exact
model; it talks to the main process over two pipes, one byte or one command
a step, and hands over inputs and frequencies in shared memory. The
frequencies are double-buffered: the mixer still reads step ``t``'s while the
worker writes step ``t + 1``'s. The main process runs the network of the
first few rows itself (:attr:`NetworkWorker.LOCAL_SHARE`), in the time it
would otherwise wait. The worker exits when the main process closes the
pipes, and so also when the main process dies.
"""

from __future__ import annotations

import mmap
import os
import struct

import numpy as np

from .adapt import SYMBOLS, HeadAdapter
from .errors import RnnzipError

__all__ = ["LocalNetwork", "NetworkWorker", "can_fork", "head_step",
           "make_adapter", "network_step", "usable_cpus"]

_COMMAND = struct.Struct("<cIII")  # op, first row, rows, active rows (or adapt)
_BEGIN, _STEP, _QUIT, _LEARNT = b"B", b"S", b"Q", b"L"
_OK, _FAILED = b"K", b"E"


def can_fork() -> bool:
    """Whether this platform has ``os.fork`` (POSIX)."""
    return hasattr(os, "fork")


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def network_step(engine, state, x, adapter=None, active=0):
    """The network's next step: (state, frequencies (rows, vocab)).

    With ``adapter`` (an :class:`rnnzip.adapt.HeadAdapter`), which first learns
    that ``x`` is what the rows it adapted last turned out to be, the first
    ``active`` rows' frequencies are adapted; the others are not used.
    """
    if adapter is not None and adapter.pending:
        adapter.learn(x[:adapter.pending])
    state = engine.advance(x, state)
    return state, head_step(engine, engine.top(state), adapter, active)


def head_step(engine, top, adapter=None, active=0):
    """Frequencies (rows, vocab) of one step's top state, adapted as
    :func:`network_step` says."""
    if adapter is None:
        return engine.freqs(top)
    rows = engine.rows(top)
    freqs = engine.freqs(top, adapter.correction(rows[:active], len(rows)))
    adapter.observe(freqs[:active])
    return freqs


def make_adapter(engine, rate: int, weights=None):
    """A :class:`HeadAdapter` for ``engine`` learning at ``2**-rate`` (None for
    rate 0), its weights in ``weights`` if given."""
    return HeadAdapter(engine.num_hiddens, rate, weights) if rate else None


class LocalNetwork:
    """The network in this process: each step is computed when it is submitted."""

    def __init__(self, engine):
        self.engine = engine
        self.state = self.freqs = self.adapter = None

    def begin(self, rows: int, adapt: int = 0) -> None:
        """Start a frame of ``rows`` segments; ``adapt``: the profile's rate."""
        self.state = self.engine.begin_state(rows)
        self.adapter = make_adapter(self.engine, adapt)

    def submit(self, x: np.ndarray, active: int = 0) -> None:
        """Start the step with inputs ``x``, of which ``active`` rows are coded."""
        self.state, self.freqs = network_step(self.engine, self.state, x,
                                              self.adapter, active)

    def result(self):
        """(freqs, row totals or None) of the step last submitted."""
        return self.freqs, None


class NetworkWorker:
    """The network of a numpy exact model in a forked worker process.

    The same interface as :class:`LocalNetwork`: :meth:`begin` a frame of
    ``rows`` segments, :meth:`submit` each step's inputs, then :meth:`result`
    waits for that step's frequencies (valid until the next step's result)
    and their row totals. Use it as a context manager, or :meth:`close` it.
    """

    #: the share of a frame's rows whose network this process runs itself, in
    #: the time it would otherwise wait. Decoding alice29.txt on 2 CPUs
    #: (2026-12-04, KB/s, three runs each): english-fast 255-265 at 0,
    #: 267-289 at 1/8, 279-284 at 3/16, 250-265 at 1/4; english (2 KiB
    #: segments) 64-65 at 0, 72-75 at 1/8, 75-76 at 1/4, 65-66 at 3/8. An hour
    #: later, the machine slower: english-fast 245-260 at 1/16, 235-254 at
    #: 1/8, 235-246 at 3/16. The best share moves with the machine; 1/8 is
    #: never far from it.
    LOCAL_SHARE = 1 / 8

    def __init__(self, engine, max_rows: int):
        if not can_fork():
            raise RnnzipError("a network worker needs os.fork, which this "
                              "platform lacks")
        self.engine, self.max_rows = engine, max_rows
        V, H = engine.vocab_size, engine.num_hiddens
        sizes = [8 * max_rows, 2 * 4 * max_rows * V, 2 * 8 * max_rows,
                 2 * 4 * max_rows * H, 8 * len(SYMBOLS) * H]
        self._shared = mmap.mmap(-1, sum(sizes))  # anonymous: shared with the child
        buf, offset, views = memoryview(self._shared), 0, []
        for size in sizes:
            views.append(np.frombuffer(buf[offset:offset + size], np.uint8))
            offset += size
        self._x = views[0].view(np.int64)
        self._freqs = views[1].view(np.float32).reshape(2, max_rows, V)
        self._totals = views[2].view(np.int64).reshape(2, max_rows)
        # an adapting frame: the worker's top states, and the adapter's weights,
        # which this process learns and the worker reads
        self._states = views[3].view(np.float32).reshape(2, max_rows, H)
        self._weights = views[4].view(np.float64).reshape(len(SYMBOLS), H)
        self._adapter, self._active = None, 0
        to_child, self._command = os.pipe()
        self._reply, from_child = os.pipe()
        self._rows = self._first = self._parity = 0
        self._pending = False
        self._state = None
        try:
            self.pid = os.fork()
        except OSError:
            for fd in (to_child, self._command, self._reply, from_child):
                os.close(fd)
            self.pid = None
            raise
        if self.pid == 0:  # the worker: it never returns from here
            status = 1
            try:
                os.close(self._command)
                os.close(self._reply)
                _pin(last=True)
                status = self._serve(to_child, from_child)
            finally:
                os._exit(status)
        os.close(to_child)
        os.close(from_child)
        self._affinity = _pin(last=False)

    # -- the worker's side ----------------------------------------------

    def _serve(self, commands: int, replies: int) -> int:
        engine, state, parity, adapter = self.engine, None, 0, None
        while True:
            raw = _read_exactly(commands, _COMMAND.size)
            if len(raw) < _COMMAND.size:
                return 0  # the main process closed the pipe (or died)
            op, first, rows, active = _COMMAND.unpack(raw)
            if op == _QUIT:
                return 0
            if op == _BEGIN:
                state, parity = engine.begin_state(rows - first), 0
                adapter = make_adapter(engine, active, self._weights)
                continue
            try:
                state = self._step(state, parity, first, rows, adapter, active,
                                   commands)
                reply = _OK
            except Exception:  # noqa: BLE001 - reported to the main process
                reply = _FAILED
            parity ^= 1
            os.write(replies, reply)
            if reply == _FAILED:
                return 1

    def _step(self, state, parity, first, rows, adapter=None, active=0,
              commands=None):
        """Advance rows ``first:rows`` into the shared buffers of ``parity``.

        With ``adapter``, the main process learns from the last step while
        this one advances the network, and says on ``commands`` when it has.
        """
        engine = self.engine
        state = engine.advance(self._x[first:rows].copy(), state)
        top = engine.top(state)
        if adapter is None:
            freqs = engine.freqs(top)
        else:
            if adapter.pending:
                op = _read_exactly(commands, _COMMAND.size)[:1]
                if op != _LEARNT:
                    raise RnnzipError(f"expected the adapter's step, got {op!r}")
            states = self._states[parity, :rows]
            states[:] = engine.rows(top)
            freqs = engine.freqs(top, adapter.correction(states[:active], rows))
            adapter.pending = active  # what the main process learns next
        self._freqs[parity, first:rows] = freqs
        self._totals[parity, first:rows] = np.einsum("iv->i", freqs)
        return state

    # -- the main process's side ----------------------------------------

    def begin(self, rows: int, adapt: int = 0) -> None:
        """Start a frame of ``rows`` segments; ``adapt``: the profile's rate.

        A frame whose network's head adapts runs all its rows in the worker,
        which corrects their logits with the adapter's weights; those live in
        shared memory, and this process learns them from the last step while
        the worker advances the network, then tells the worker it is done.
        (Rows run here as well were tried: with 3 or 6 of 49 rows of
        ``english`` here, alice29.txt decoded at 41-43 and 39 KB/s, against
        44-47 with none, 2026-12-04.)
        """
        if not 0 < rows <= self.max_rows:
            raise ValueError(f"a frame of {rows} segments; this worker takes up "
                             f"to {self.max_rows}")
        self._drain()
        self._rows, self._parity = rows, 0
        self._first = 0 if adapt else int(rows * self.LOCAL_SHARE)
        self._state = self.engine.begin_state(self._first) if self._first else None
        self._adapter = make_adapter(self.engine, adapt, self._weights)
        self._send(_BEGIN, rows, adapt)

    def submit(self, x: np.ndarray, active: int = 0) -> None:
        """Start the step with inputs ``x``, of which ``active`` rows are
        coded; the first rows run here, now. In an adapting frame this
        process learns from ``x`` meanwhile (the worker waits for that only
        once it has advanced the network)."""
        self._drain()
        self._x[:self._rows] = x
        self._send(_STEP, self._rows, active)
        self._pending = True
        adapter, self._active = self._adapter, active
        if adapter is not None and adapter.pending:
            adapter.learn(x[:adapter.pending])
            self._send(_LEARNT, 0)
        if self._first:
            self._state = self._step(self._state, self._parity, 0, self._first)

    def result(self):
        reply = _read_exactly(self._reply, 1)
        self._pending = False
        if reply != _OK:
            raise RnnzipError("the network worker process failed" if reply else
                              "the network worker process died")
        p, self._parity = self._parity, self._parity ^ 1
        if self._adapter is not None:  # to learn from at the next submit
            self._adapter.observe(self._freqs[p, :self._active],
                                  self._states[p, :self._active])
        return self._freqs[p, :self._rows], self._totals[p, :self._rows]

    def _drain(self) -> None:
        if self._pending:  # a step whose result nobody took
            self.result()

    def _send(self, op: bytes, rows: int, active: int = 0) -> None:
        try:
            os.write(self._command, _COMMAND.pack(op, self._first, rows, active))
        except BrokenPipeError:
            raise RnnzipError("the network worker process died") from None

    def close(self) -> None:
        if self.pid is None:
            return
        try:
            os.write(self._command, _COMMAND.pack(_QUIT, 0, 0, 0))
        except OSError:
            pass
        os.close(self._command)
        os.close(self._reply)
        os.waitpid(self.pid, 0)
        self.pid = None
        if self._affinity:
            try:
                os.sched_setaffinity(0, self._affinity)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _pin(last: bool):
    """Keep the worker on the last allowed CPU and this process off it.

    Left to itself the scheduler often ran both on one CPU, taking turns:
    alice29.txt decoded at 188 KB/s with english-fast, against 276 KB/s
    pinned (2 CPUs, 2026-12-04). Returns the CPUs allowed before, to restore
    (None where nothing changed).
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        os.sched_setaffinity(0, {cpus[-1]} if last else set(cpus[:-1]))
        return set(cpus)
    except (AttributeError, OSError):
        return None


def _read_exactly(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            break
        data += chunk
    return data
