"""Corpora, alphabets and minibatch iterators for training.

Two ways of turning a file into symbols:

* ``bytes``: every byte is a symbol (vocab_size 256). This is what a compressor
  needs, since any file can be restored from its bytes.
* ``d2l``: the preprocessing of Dive into Deep Learning, chapter 8: every run of
  non-letters in a line becomes one space, lines are stripped, lowercased and
  joined with no separator; characters are tokens and the vocabulary is
  ``<unk>`` followed by the characters sorted by frequency (28 for The Time
  Machine). It loses information, so such a model cannot compress files.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import re

import numpy as np

__all__ = ["Alphabet", "CorpusError", "read_corpus", "seq_data_iter_sequential",
           "seq_data_iter_random", "sha256_file"]


class CorpusError(ValueError):
    """A corpus file is missing, unreadable or empty."""


class Alphabet:
    """Map between a model's symbols and text.

    ``kind`` is ``"bytes"`` (256 symbols, lossless) or ``"d2l"`` (the book's
    character vocabulary, ``tokens`` lists it in index order).
    """

    def __init__(self, kind: str, tokens: list[str] | None = None):
        if kind == "bytes":
            tokens = None
        elif kind == "d2l":
            if not tokens:
                raise ValueError("a d2l alphabet needs its token list")
            self._index = {t: i for i, t in enumerate(tokens)}
        else:
            raise ValueError(f"unknown alphabet kind {kind!r}")
        self.kind = kind
        self.tokens = tokens

    @property
    def vocab_size(self) -> int:
        return 256 if self.kind == "bytes" else len(self.tokens)

    @property
    def lossless(self) -> bool:
        return self.kind == "bytes"

    def encode(self, raw: bytes) -> np.ndarray:
        """Turn the raw bytes of a file into symbol indices."""
        if self.kind == "bytes":
            return np.frombuffer(raw, dtype=np.uint8).astype(np.int32)
        text = d2l_preprocess(raw)
        return np.array([self._index.get(ch, 0) for ch in text], dtype=np.int32)

    def encode_text(self, text: str) -> np.ndarray:
        """Turn a prompt (already in the model's own form) into indices."""
        if self.kind == "bytes":
            return self.encode(text.encode("utf-8"))
        return np.array([self._index.get(ch, 0) for ch in text], dtype=np.int32)

    def decode(self, symbols) -> str:
        if self.kind == "bytes":
            return bytes(int(s) for s in symbols).decode("utf-8", errors="replace")
        return "".join(self.tokens[int(s)] for s in symbols)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "vocab_size": self.vocab_size}
        if self.kind == "d2l":
            out["tokens"] = self.tokens
            out["preprocessing"] = ("d2l: non-letters to one space, stripped, "
                                    "lowercased, lines joined")
        return out

    @classmethod
    def from_json(cls, obj: dict) -> "Alphabet":
        return cls(obj["kind"], obj.get("tokens"))

    @classmethod
    def d2l_from_text(cls, text: str) -> "Alphabet":
        # as d2l.Vocab: '<unk>' first, then tokens by falling frequency
        counts = collections.Counter(text)
        ordered = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
        return cls("d2l", ["<unk>"] + [tok for tok, _ in ordered])


def d2l_preprocess(raw: bytes) -> str:
    """Apply the book's ``read_time_machine`` and join its lines."""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    return "".join(re.sub("[^A-Za-z]+", " ", line).strip().lower()
                   for line in lines)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def list_corpus_files(paths) -> list[str]:
    """Expand directories into their files, sorted, so runs are repeatable."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in sorted(os.walk(path)):
                files.extend(os.path.join(root, n) for n in sorted(names))
        elif os.path.exists(path):
            files.append(path)
        else:
            raise CorpusError(f"corpus file not found: {path!r}")
    if not files:
        raise CorpusError(f"no corpus files in {list(paths)!r}")
    return files


def read_corpus(paths) -> tuple[list[str], bytes]:
    """Read and concatenate corpus files; refuse an empty corpus."""
    files = list_corpus_files(paths)
    chunks = []
    for path in files:
        try:
            with open(path, "rb") as f:
                chunks.append(f.read())
        except OSError as exc:
            raise CorpusError(f"cannot read corpus file {path!r}: "
                              f"{exc.strerror}") from None
    raw = b"".join(chunks)
    if not raw:
        raise CorpusError(f"the corpus is empty: {files!r}")
    return files, raw


def seq_data_iter_random(corpus, batch_size, num_steps, rng: random.Random):
    """Yield minibatches of random, non-overlapping subsequences (d2l 8.3)."""
    corpus = corpus[rng.randint(0, num_steps - 1):]
    num_subseqs = (len(corpus) - 1) // num_steps
    starts = list(range(0, num_subseqs * num_steps, num_steps))
    rng.shuffle(starts)
    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        idx = starts[i:i + batch_size]
        X = np.stack([corpus[j:j + num_steps] for j in idx])
        Y = np.stack([corpus[j + 1:j + 1 + num_steps] for j in idx])
        yield X, Y


def seq_data_iter_sequential(corpus, batch_size, num_steps, rng: random.Random):
    """Yield minibatches whose rows continue across batches (d2l 8.3).

    A random offset in ``[0, num_steps]`` starts each epoch, as in the book.
    """
    offset = rng.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = np.asarray(corpus[offset:offset + num_tokens]).reshape(batch_size, -1)
    Ys = np.asarray(corpus[offset + 1:offset + 1 + num_tokens]).reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        yield Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]
