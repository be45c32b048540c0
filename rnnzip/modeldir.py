"""Model directories: a JSON model card beside the weights.

A model directory holds

* ``card.json``: what the model is, how it was trained and how well it does;
* ``params.params``: the Gluon parameters of the float model (training and
  float evaluation);
* ``exact.npz``: the integer coding model derived from them (compression).

Reading a card and the exact model needs numpy only, never MXNet.
"""

from __future__ import annotations

import hashlib
import json
import os

from .errors import ModelError

__all__ = ["CARD_NAME", "PARAMS_NAME", "EXACT_NAME", "CARD_FORMAT", "ModelError",
           "read_card", "write_card", "check_file_hash", "find_model", "search_path"]

CARD_NAME = "card.json"
PARAMS_NAME = "params.params"
EXACT_NAME = "exact.npz"
CARD_FORMAT = 1
DEFAULT_MODEL = "english"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_card(model_dir: str, card: dict) -> None:
    """Write ``card.json`` atomically, so a crash never leaves half a card."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, CARD_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def read_card(model_dir: str) -> dict:
    """Read and sanity-check a model card."""
    path = os.path.join(model_dir, CARD_NAME)
    if not os.path.isdir(model_dir):
        raise ModelError(f"model directory not found: {model_dir!r}")
    if not os.path.exists(path):
        raise ModelError(f"{model_dir!r} is not a model directory: no {CARD_NAME}")
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model card {path!r}: {exc}") from None
    version = card.get("format_version") if isinstance(card, dict) else None
    if version != CARD_FORMAT:
        raise ModelError(f"model card {path!r} has format version {version!r}; "
                         f"this rnnzip reads version {CARD_FORMAT}")
    for key in ("architecture", "alphabet"):
        if key not in card:
            raise ModelError(f"model card {path!r} lacks {key!r}")
    return card


def check_file_hash(model_dir: str, name: str, expected: str | None) -> str:
    """Return the path of a weights file after checking its sha256."""
    path = os.path.join(model_dir, name)
    if not os.path.exists(path):
        raise ModelError(f"model {model_dir!r} lacks its weights file {name!r}")
    if expected is None:
        raise ModelError(f"model card in {model_dir!r} records no sha256 for {name!r}")
    actual = file_sha256(path)
    if actual != expected:
        raise ModelError(
            f"weights {path!r} do not match the model card: sha256 {actual[:16]}..., "
            f"card says {expected[:16]}...; the directory was changed or mixed up, "
            f"retrain or restore it")
    return path


def search_path() -> list[str]:
    """Directories searched for a model given by name, in order."""
    dirs = []
    env = os.environ.get("RNNZIP_MODEL_PATH")
    if env:
        dirs.extend(p for p in env.split(os.pathsep) if p)
    dirs.append(os.path.join(os.path.expanduser("~"), ".local", "share", "rnnzip",
                             "models"))
    dirs.append(os.path.normpath(os.path.join(os.path.dirname(__file__), "..",
                                              "models")))
    try:
        from . import models as _shipped
        shipped = os.path.dirname(os.path.abspath(_shipped.__file__))
        if shipped not in dirs:
            dirs.append(shipped)
    except ImportError:
        pass
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def find_model(name_or_dir: str | None = None) -> str:
    """Return the directory of a model given by name or path."""
    name = name_or_dir or DEFAULT_MODEL
    if os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
        if os.path.isdir(name):
            return name
        raise ModelError(f"model directory not found: {name!r}")
    for d in search_path():
        candidate = os.path.join(d, name)
        if os.path.exists(os.path.join(candidate, CARD_NAME)):
            return candidate
    if os.path.isdir(name) and os.path.exists(os.path.join(name, CARD_NAME)):
        return name
    raise ModelError(f"model {name!r} is not installed; looked in "
                     f"{', '.join(search_path())}")


def list_models() -> list[tuple[str, str]]:
    """Installed models as (name, directory), first one found per name."""
    found = {}
    for d in search_path():
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            full = os.path.join(d, name)
            if name not in found and os.path.exists(os.path.join(full, CARD_NAME)):
                found[name] = full
    return sorted(found.items())
