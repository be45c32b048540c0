"""The Gluon character model, devices and the d2l data pipeline."""

import random

import numpy as np
import pytest
from mxnet import init, nd

from rnnzip import data
from rnnzip._mx import mx
from rnnzip.data import Alphabet, seq_data_iter_sequential
from rnnzip.model import ModelConfig, RNNModel, get_device


def _model(cell, num_layers=1, num_hiddens=256, vocab_size=256, ctx=None):
    model = RNNModel(ModelConfig(cell, num_layers, num_hiddens, vocab_size))
    model.initialize(init.Normal(0.01), ctx=ctx or mx.cpu())
    return model


def test_rnn_state_and_output_shapes_as_in_the_book():
    model = _model("rnn")

    # the book: one state of shape (num_layers, batch, num_hiddens)
    state = model.begin_state(batch_size=1)
    assert isinstance(state, list)
    assert len(state) == 1
    assert state[0].shape == (1, 1, 256)

    # the book feeds (batch, num_steps) and gets (num_steps * batch, vocab)
    batch_size, num_steps = 2, 35
    X = nd.array(np.arange(batch_size * num_steps).reshape(batch_size, num_steps))
    state = model.begin_state(batch_size=batch_size)
    Y, new_state = model(X, state)
    assert Y.shape == (num_steps * batch_size, 256)
    assert len(new_state) == 1
    assert new_state[0].shape == (1, batch_size, 256)


@pytest.mark.parametrize("cell, num_states", [("rnn", 1), ("gru", 1), ("lstm", 2)])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_every_cell_and_depth_has_the_right_shapes(cell, num_states, num_layers):
    batch_size, num_steps, num_hiddens, vocab_size = 3, 5, 8, 28
    model = _model(cell, num_layers, num_hiddens, vocab_size)

    # an LSTM carries a hidden and a memory cell state
    state = model.begin_state(batch_size=batch_size)
    assert len(state) == num_states
    for s in state:
        assert s.shape == (num_layers, batch_size, num_hiddens)

    X = nd.array(np.random.RandomState(0).randint(0, vocab_size,
                                                  (batch_size, num_steps)))
    Y, new_state = model(X, state)
    assert Y.shape == (num_steps * batch_size, vocab_size)
    assert [s.shape for s in new_state] == [s.shape for s in state]


def test_output_rows_are_time_major():
    # row t * batch + b belongs to step t of sequence b: feeding one sequence
    # alone must reproduce its rows of a batched pass
    model = _model("gru", num_hiddens=16, vocab_size=10)
    X = nd.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    Y, _ = model(X, model.begin_state(batch_size=2))
    Y0, _ = model(X[0:1], model.begin_state(batch_size=1))
    np.testing.assert_allclose(Y.asnumpy()[0::2], Y0.asnumpy(), rtol=1e-5,
                               atol=1e-6)


def test_model_config_rejects_unknown_cell_and_bad_sizes():
    with pytest.raises(ValueError, match="cell"):
        ModelConfig("transformer", 1, 8, 8)
    with pytest.raises(ValueError):
        ModelConfig("gru", 0, 8, 8)
    with pytest.raises(ValueError):
        ModelConfig("gru", 1, 8, 1)


def test_get_device_cpu_and_bad_names():
    assert get_device("cpu") == mx.cpu()
    assert get_device(" CPU ") == mx.cpu()
    with pytest.raises(ValueError, match="bogus"):
        get_device("bogus")
    with pytest.raises(ValueError):
        get_device("gpu:x")


@pytest.mark.skipif(mx.context.num_gpus() > 0, reason="this machine has a GPU")
def test_get_device_gpu_without_a_gpu_says_so():
    assert get_device("auto") == mx.cpu()
    with pytest.raises(ValueError, match="not available"):
        get_device("gpu")


@pytest.mark.skipif(mx.context.num_gpus() == 0, reason="MXNet sees no GPU")
def test_forward_pass_on_gpu_matches_cpu():
    ctx = get_device("gpu")
    assert ctx.device_type == "gpu"
    model = _model("lstm", num_hiddens=16, vocab_size=20, ctx=ctx)
    X = nd.array([[1, 2, 3], [4, 5, 6]], ctx=ctx)
    Y, state = model(X, model.begin_state(batch_size=2, ctx=ctx))
    assert Y.shape == (6, 20)
    assert Y.context == ctx
    assert state[0].context == ctx

    # the same weights on the CPU give the same outputs
    model.reset_ctx(mx.cpu())
    Y_cpu, _ = model(X.as_in_context(mx.cpu()), model.begin_state(batch_size=2))
    np.testing.assert_allclose(Y.asnumpy(), Y_cpu.asnumpy(), rtol=1e-4, atol=1e-5)


def test_d2l_preprocess():
    raw = (b"The Time-Machine, by H. G. Wells [1898]\n"
           b"\n"
           b"  I.  Hello,   World!!  \n"
           b"it's 42\n")
    # non-letter runs become one space, lines are stripped and lowercased,
    # then joined with no separator at all (as the book's tokenize('char'))
    expected = "the time machine by h g wells" + "" + "i hello world" + "it s"
    assert data.d2l_preprocess(raw) == expected


def test_d2l_alphabet_puts_unk_first_then_falling_frequency():
    text = "eeeee tttt aa o"  # e 5, t 4, space 3, a 2, o 1
    alphabet = Alphabet.d2l_from_text(text)
    assert alphabet.kind == "d2l"
    assert alphabet.tokens == ["<unk>", "e", "t", " ", "a", "o"]
    assert alphabet.vocab_size == 6
    assert not alphabet.lossless

    # known characters map to their index, unknown ones to '<unk>'
    assert list(alphabet.encode_text("tea?")) == [2, 1, 4, 0]
    assert alphabet.decode([2, 1, 4]) == "tea"


def test_d2l_alphabet_json_round_trip():
    alphabet = Alphabet.d2l_from_text("hello world")
    again = Alphabet.from_json(alphabet.to_json())
    assert again.kind == "d2l"
    assert again.tokens == alphabet.tokens
    raw = b"Hello, World!"
    assert list(again.encode(raw)) == list(alphabet.encode(raw))


def test_seq_data_iter_sequential_shifts_and_continues_rows():
    # with symbols equal to their positions, every relation is arithmetic
    corpus = list(range(1000))
    batch_size, num_steps = 4, 7
    batches = list(seq_data_iter_sequential(corpus, batch_size, num_steps,
                                            random.Random(3)))
    assert len(batches) > 2
    for X, Y in batches:
        assert X.shape == (batch_size, num_steps)
        assert Y.shape == (batch_size, num_steps)
        assert (Y == X + 1).all()
        # within a row the symbols are consecutive
        assert (np.diff(X, axis=1) == 1).all()

    # each row of a batch continues the same row of the batch before it
    for (X0, _), (X1, _) in zip(batches, batches[1:]):
        assert (X1[:, 0] == X0[:, -1] + 1).all()

    # the random offset of an epoch lies in [0, num_steps]
    assert 0 <= batches[0][0][0, 0] <= num_steps
