"""The float character model: one-hot inputs, a recurrent layer, a Dense head.

This module imports MXNet; compression with the numpy back-end never loads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ._mx import mx
from mxnet import gluon, nd
from mxnet.gluon import nn, rnn

__all__ = ["ModelConfig", "RNNModel", "get_device", "CELLS"]

CELLS = ("rnn", "gru", "lstm")


@dataclass
class ModelConfig:
    """Architecture of a character model."""

    cell: str = "gru"
    num_layers: int = 1
    num_hiddens: int = 256
    vocab_size: int = 256

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, not {self.cell!r}")
        if self.num_layers < 1 or self.num_hiddens < 1 or self.vocab_size < 2:
            raise ValueError(f"bad model size: {asdict(self)!r}")


class RNNModel(gluon.Block):
    """The book's ``RNNModel``: one-hot inputs, an RNN layer, a Dense head."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        layer = {"rnn": lambda: rnn.RNN(config.num_hiddens, config.num_layers,
                                        activation="tanh"),
                 "gru": lambda: rnn.GRU(config.num_hiddens, config.num_layers),
                 "lstm": lambda: rnn.LSTM(config.num_hiddens, config.num_layers)}
        with self.name_scope():
            self.rnn = layer[config.cell]()
            self.dense = nn.Dense(config.vocab_size, flatten=False)
        self.vocab_size = config.vocab_size

    def forward(self, inputs, state):
        # inputs: (batch, num_steps) integer symbols
        X = nd.one_hot(inputs.T, self.vocab_size)  # (num_steps, batch, vocab)
        Y, state = self.rnn(X, state)  # (num_steps, batch, num_hiddens)
        output = self.dense(Y.reshape((-1, Y.shape[-1])))
        return output, state  # (num_steps * batch, vocab)

    def begin_state(self, batch_size=1, ctx=None):
        return self.rnn.begin_state(batch_size=batch_size, ctx=ctx or mx.cpu())


def get_device(spec: str = "auto") -> mx.Context:
    """Turn ``auto``, ``cpu``, ``gpu`` or ``gpu:N`` into an MXNet context."""
    spec = (spec or "auto").strip().lower()
    num_gpus = mx.context.num_gpus()
    if spec == "auto":
        return mx.gpu(0) if num_gpus > 0 else mx.cpu()
    if spec == "cpu":
        return mx.cpu()
    if spec == "gpu" or spec.startswith("gpu:"):
        index = int(spec[4:]) if spec.startswith("gpu:") and spec[4:].isdigit() else 0
        if spec.startswith("gpu:") and not spec[4:].isdigit():
            raise ValueError(f"bad device {spec!r}: use auto, cpu, gpu or gpu:N")
        if index >= num_gpus:
            raise ValueError(f"device {spec!r} is not available: MXNet sees "
                             f"{num_gpus} GPU(s); use --device cpu")
        return mx.gpu(index)
    raise ValueError(f"bad device {spec!r}: use auto, cpu, gpu or gpu:N")


def device_name(ctx: mx.Context) -> str:
    return f"{ctx.device_type}({ctx.device_id})"


def param_arrays(model: RNNModel) -> dict:
    """The model's parameters as numpy arrays, keyed by structural name.

    Keys do not depend on Gluon's name prefixes: ``l0_i2h_weight``, ...,
    ``dense_weight``, ``dense_bias``.
    """
    out = {}
    for name, p in model.rnn.collect_params().items():
        key = name[name.index("l", len(model.rnn.prefix)):] if name.startswith(
            model.rnn.prefix) else name
        out[key] = p.data().asnumpy()
    out["dense_weight"] = model.dense.weight.data().asnumpy()
    out["dense_bias"] = model.dense.bias.data().asnumpy()
    return out
