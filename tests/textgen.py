"""Small English-like corpora that tests write for themselves."""

import random

_WORDS = ("the time traveller for so it will be convenient to speak of him was "
          "expounding a recondite matter to us his grey eyes shone and twinkled "
          "and his usually pale face was flushed and animated").split()


def write_corpus(path, num_lines=120, seed=1):
    """Write English-like text: a small vocabulary in random sentences."""
    rng = random.Random(seed)
    lines = []
    for _ in range(num_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 10))]
        lines.append(" ".join(words).capitalize() + rng.choice(".,;!?"))
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return str(path)
