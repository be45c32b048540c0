"""rnnzip: a lossless compressor driven by a character-level recurrent network.

The interface follows the standard library's compression modules::

    >>> import rnnzip
    >>> packed = rnnzip.compress(b"time traveller " * 20)
    >>> rnnzip.decompress(packed) == b"time traveller " * 20
    True

Training and float evaluation need MXNet; compressing and decompressing with
the numpy back-end (the default on a CPU) do not import it.
"""

import sys as _sys

if not ((3, 9) <= _sys.version_info[:2] <= (3, 11)):
    raise ImportError(
        f"rnnzip supports Python 3.9 to 3.11 (MXNet 1.9.1 needs them); this is "
        f"Python {_sys.version_info[0]}.{_sys.version_info[1]}")

import io as _io

from ._version import __version__
from .errors import ModelError, RnnzipError

__all__ = ["compress", "decompress", "RnnzipError", "ModelError", "__version__"]


def compress(data: bytes, model: str = None, *, backend: str = "auto",
             device: str = "auto", mix: bool = None) -> bytes:
    """Compress ``data`` and return the ``.rnz`` archive as bytes.

    ``model`` is a model name or directory; the default is the shipped default
    model. ``backend`` is ``auto``, ``numpy`` or ``mxnet``; ``device`` is
    ``auto``, ``cpu``, ``gpu`` or ``gpu:N`` (used by the MXNet back-end).
    ``mix`` turns context mixing (the network's predictions refined by the
    statistics of ``data`` itself) on or off; ``None`` takes the model's choice.
    """
    from .container import write_archive
    from .engines import load_engine

    engine, name = load_engine(model, backend, device)
    out = _io.BytesIO()
    write_archive(engine, name, _io.BytesIO(memoryview(data).tobytes()), out,
                  mix=mix)
    return out.getvalue()


def decompress(data: bytes, *, backend: str = "auto", device: str = "auto",
               threads: int = 1) -> bytes:
    """Decompress a ``.rnz`` archive and return the original bytes.

    The archive names its model, which must be installed. Raises
    :class:`RnnzipError` for anything that is not an intact archive.
    ``threads=2`` (or 0, one per CPU) runs the network of a context-mixed
    archive in a forked second process beside the mixer, about 1.4 times
    as fast on two idle cores; the output is the same.
    """
    from .container import read_archive
    from .engines import resolve_engine

    out = _io.BytesIO()
    read_archive(_io.BytesIO(memoryview(data).tobytes()), out,
                 lambda name, identity: resolve_engine(name, identity, backend, device),
                 threads=threads)
    return out.getvalue()
