"""benchmarks.learning_curve: train's recipe, held-out bpc every few batches."""

import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks import learning_curve  # noqa: E402
from rnnzip.train import TrainConfig  # noqa: E402


def test_curve_reports_every_n_batches_and_learns(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"the time traveller came back. " * 400)  # 12,000 bytes
    cfg = TrainConfig(cell="gru", num_hiddens=16, batch_size=4, num_steps=20,
                      lr=0.02, optimizer="adam", valid_frac=0.1, seed=3)
    rows = list(learning_curve.curve([str(corpus)], cfg, every=20, valid_bytes=600))
    # 10,800 training bytes in rows of 4 x 20: 134 or 135 batches, a line per 20
    assert [r[0] for r in rows] == [20, 40, 60, 80, 100, 120]
    for _, train_bpc, held_out, norm, largest in rows:
        assert all(math.isfinite(v) and v > 0 for v in (train_bpc, held_out, norm,
                                                        largest))
    # a repeated line is learnt: far below a byte's 8 bits, and better at the end
    assert rows[-1][2] < 3.0 and rows[-1][2] < rows[0][2]
    assert rows[-1][1] < rows[0][1]


def test_main_prints_a_table(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"abcabcabd " * 600)
    learning_curve.main([str(corpus), "--num-hiddens", "8", "--batch-size", "4",
                         "--num-steps", "10", "--max-tokens", "2000", "--every",
                         "10", "--valid-bytes", "300", "--valid-frac", "0.1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| batches | bytes | train bpc | held-out bpc")
    body = [line.split("|")[1:-1] for line in lines[2:]]
    assert [int(b[0]) for b in body] == [10, 20, 30, 40]  # 2,000 bytes: 49 batches
    assert all(int(b[1].replace(",", "")) == 40 * int(b[0]) for b in body)
