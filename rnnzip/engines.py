"""Find a model and load its exact coding model on a back-end.

Back-ends: ``numpy`` (any CPU, never imports MXNet) and ``mxnet`` (MXNet on
``cpu()`` or ``gpu(N)``). Both give identical frequencies, so an archive made
by one decodes with the other. ``auto`` picks numpy on a CPU, where it was
measured faster at every batch size, and MXNet when the device is a GPU.
"""

from __future__ import annotations

import functools
import os

from . import mixer, modeldir
from .codec import MIN_SEGMENT
from .errors import ModelError, RnnzipError
from .exact import load_exact

__all__ = ["BACKENDS", "load_engine", "resolve_engine"]

BACKENDS = ("auto", "numpy", "mxnet")


def _pick_backend(backend: str, device: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if backend != "auto":
        return backend
    return "mxnet" if (device or "auto").startswith("gpu") else "numpy"


@functools.lru_cache(maxsize=8)
def _load(model_dir: str, backend: str, device: str):
    card = modeldir.read_card(model_dir)
    name = card.get("name") or os.path.basename(os.path.normpath(model_dir))
    if not card["alphabet"].get("kind") == "bytes":
        raise ModelError(
            f"model {name!r} works on preprocessed text ({card['alphabet'].get('kind')}"
            f" alphabet) and cannot restore the original bytes; compress with a "
            f"byte-level model such as the default")
    exact = card.get("exact") or {}
    path = modeldir.check_file_hash(model_dir, modeldir.EXACT_NAME, exact.get("sha256"))
    engine = load_exact(path)
    if exact.get("identity") and exact["identity"] != engine.identity:
        raise ModelError(f"exact model in {model_dir!r} has identity "
                         f"{engine.identity[:16]}..., its card says "
                         f"{exact['identity'][:16]}...")
    min_segment = (card.get("coding") or {}).get("min_segment", MIN_SEGMENT)
    if not isinstance(min_segment, int) or min_segment < 1:
        raise ModelError(f"model {name!r}: coding.min_segment on its card must be a "
                         f"positive integer, not {min_segment!r}")
    mix = (card.get("coding") or {}).get("mix", False)
    try:
        # true: the full profile; a name: that profile; false: no mixing
        profile = mixer.profile("full" if mix is True else mix) if mix else None
    except ValueError:
        profile = None
    if not (mix is False or profile):
        raise ModelError(f"model {name!r}: coding.mix on its card must be true, "
                         f"false or a profile name ("
                         f"{', '.join(p.name for p in mixer.PROFILES.values())}), "
                         f"not {mix!r}")
    if backend == "mxnet":
        from .exact_mx import MXNetExactModel
        from .model import get_device

        engine = MXNetExactModel(engine, get_device(device))
    engine.min_segment = min_segment
    engine.mix = profile is not None
    engine.mix_profile = profile
    return engine, name


def load_engine(model: str | None = None, backend: str = "auto",
                device: str = "auto"):
    """Return (engine, name) for a model name or directory (None: the default)."""
    model_dir = os.path.abspath(modeldir.find_model(model))
    return _load(model_dir, _pick_backend(backend, device), device)


def resolve_engine(name: str, identity: str, backend: str = "auto",
                   device: str = "auto"):
    """The engine whose identity an archive records, found by name or identity."""
    candidates = []
    try:
        candidates.append(os.path.abspath(modeldir.find_model(name)))
    except ModelError:
        pass
    candidates += [os.path.abspath(d) for _, d in modeldir.list_models()]
    for model_dir in candidates:
        try:
            card = modeldir.read_card(model_dir)
        except ModelError:
            continue
        if (card.get("exact") or {}).get("identity") == identity:
            return _load(model_dir, _pick_backend(backend, device), device)[0]
    raise RnnzipError(
        f"the archive was made with model {name!r} (identity {identity[:16]}...), "
        f"which is not installed; looked in {', '.join(modeldir.search_path())}; "
        f"install that model or set RNNZIP_MODEL_PATH to its parent directory")
