"""Recurrent layers with PyTorch's API: ``RNN``, ``LSTM``, ``GRU`` (multi-layer,
``batch_first``, bidirectional, dropout between layers, LSTM projections) and the
single-step cells ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Parameters are named, shaped, ordered and initialised as PyTorch's
(``weight_ih_l{k}[_reverse]`` …, all uniform in ±1/√hidden_size), so a state_dict moves
between the two. The input projection of a whole sequence is one GEMM per layer and
direction; each time step adds one ``h · W_hhᵀ`` GEMM and the gate arithmetic, all
through the compiler (under ``lucid.compile`` the loop unrolls into one graph).

>>> import lucid
>>> lstm = LSTM(input_size=3, hidden_size=4, num_layers=2, batch_first=True)
>>> out, (h, c) = lstm(lucid.zeros(5, 7, 3))      # batch 5, 7 time steps
>>> out.shape, h.shape, c.shape
((5, 7, 4), (2, 5, 4), (2, 5, 4))
"""
from __future__ import annotations

import math
import warnings

from .. import random
from ..creation import get_default_dtype
from ..functional_core import stack
from . import functional as F
from .module import Module
from .parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _uniform(shape, bound, dtype):
    return Parameter(random.generator().uniform(-bound, bound, shape).astype(dtype))


def _dtype_name(dtype) -> str:
    return str(get_default_dtype() if dtype is None else dtype).replace("lucid.", "")


# ------------------------------------------------------------------ one time step
def _rnn_step(mode, x_gates, h, w_hh, b_hh, c=None, w_hr=None):
    """One step from the input's gate pre-activations ``x_gates`` (x·W_ihᵀ + b_ih) and
    the previous state: ``(h', c')`` (c' None except for LSTM)."""
    gh = F.linear(h, w_hh, b_hh)
    if mode == "RNN_TANH":
        return (x_gates + gh).tanh(), None
    if mode == "RNN_RELU":
        return (x_gates + gh).relu(), None
    if mode == "LSTM":
        gates = x_gates + gh
        n = gates.shape[-1] // 4
        i, f = gates[..., :n].sigmoid(), gates[..., n:2 * n].sigmoid()
        g, o = gates[..., 2 * n:3 * n].tanh(), gates[..., 3 * n:].sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        return (h if w_hr is None else F.linear(h, w_hr)), c
    n = x_gates.shape[-1] // 3                                  # GRU
    r = (x_gates[..., :n] + gh[..., :n]).sigmoid()
    z = (x_gates[..., n:2 * n] + gh[..., n:2 * n]).sigmoid()
    cand = (x_gates[..., 2 * n:] + r * gh[..., 2 * n:]).tanh()
    return (1 - z) * cand + z * h, None


class RNNBase(Module):
    """What ``RNN``, ``LSTM`` and ``GRU`` share: parameters, checks, the layer loop."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be a positive integer, got {num_layers!r}")
        if isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability "
                             "of an element being zeroed")
        if proj_size < 0 or (proj_size and mode != "LSTM"):
            raise ValueError("proj_size should be a positive integer or zero to disable projections"
                             if proj_size < 0 else "proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size and proj_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so non-zero "
                          f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}")
        self.mode, self.input_size, self.hidden_size = mode, int(input_size), int(hidden_size)
        self.num_layers, self.bias, self.batch_first = num_layers, bool(bias), bool(batch_first)
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bool(bidirectional), int(proj_size)
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        dirs = 2 if bidirectional else 1
        bound = 1.0 / math.sqrt(hidden_size)
        dt = _dtype_name(dtype)
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else real_hidden * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (gate_size, layer_in)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for pname, shape in shapes:
                    setattr(self, pname + sfx, _uniform(shape, bound, dt))
                    self._flat_weights_names.append(pname + sfx)

    def _weights(self, layer: int, d: int):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        get = lambda n: getattr(self, n + sfx, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    def _check_input(self, x):
        name = type(self).__name__
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {x.ndim}D instead")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {x.shape[-1]}")

    def _state(self, hx, batch, size, unbatched, x, what="hidden"):
        dirs = 2 if self.bidirectional else 1
        expected = (self.num_layers * dirs, batch, size)
        if hx is None:
            from ..creation import zeros
            return zeros(*expected, dtype=x.dtype)
        want = expected[::2] if unbatched else expected
        if tuple(hx.shape) != want:
            raise RuntimeError(f"Expected {what} size {want}, got {list(hx.shape)}")
        return hx.unsqueeze(1) if unbatched else hx

    def forward(self, input, hx=None):  # noqa: A002 - PyTorch's name
        self._check_input(input)
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        steps, batch = x.shape[0], x.shape[1]
        real_hidden = self.proj_size or self.hidden_size
        lstm = self.mode == "LSTM"
        if lstm:
            h0, c0 = (None, None) if hx is None else hx
            h0 = self._state(h0, batch, real_hidden, unbatched, x)
            c0 = self._state(c0, batch, self.hidden_size, unbatched, x, "cell")
        else:
            h0, c0 = self._state(hx, batch, real_hidden, unbatched, x), None
        dirs = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, d)
                k = layer * dirs + d
                xg = F.linear(x.reshape(steps * batch, x.shape[2]), w_ih, b_ih).reshape(steps, batch, -1)
                h, c = h0[k], (c0[k] if lstm else None)
                seq = [None] * steps
                for t in (range(steps - 1, -1, -1) if d else range(steps)):
                    h, c = _rnn_step(self.mode, xg[t], h, w_hh, b_hh, c, w_hr)
                    seq[t] = h
                outs.append(stack(seq) if steps else x.new_zeros(0, batch, real_hidden))
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if dirs == 1 else _cat_last(outs)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        out = x.squeeze(1) if unbatched else (x.transpose(0, 1) if self.batch_first else x)
        h_n = stack(h_n)
        if unbatched:
            h_n = h_n.squeeze(1)
        if not lstm:
            return out, h_n
        c_n = stack(c_n)
        return out, (h_n, c_n.squeeze(1) if unbatched else c_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def _cat_last(parts):
    from ..functional_core import cat
    return cat(parts, dim=-1)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)`` (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory; ``forward(input, (h_0, c_0))`` → ``output, (h_n, c_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit (PyTorch's gate equations: the reset gate scales ``h W_hnᵀ + b_hn``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)


# ------------------------------------------------------------------ cells
class RNNCellBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, device=None, dtype=None):
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = mode, int(input_size), int(hidden_size), bool(bias)
        gate_size = _GATES[mode] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        dt = _dtype_name(dtype)
        self.weight_ih = _uniform((gate_size, input_size), bound, dt)
        self.weight_hh = _uniform((gate_size, hidden_size), bound, dt)
        if bias:
            self.bias_ih = _uniform((gate_size,), bound, dt)
            self.bias_hh = _uniform((gate_size,), bound, dt)
        else:
            self.bias_ih = self.bias_hh = None

    def _prepare(self, input, hx, what="hidden"):
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} expected {self.input_size}")
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            from ..creation import zeros
            return x, zeros(x.shape[0], self.hidden_size, dtype=x.dtype), unbatched
        h = hx.unsqueeze(0) if unbatched else hx
        if tuple(h.shape) != (x.shape[0], self.hidden_size):
            raise RuntimeError(f"{what} has inconsistent hidden_size or batch: got {list(hx.shape)}, "
                               f"expected {[x.shape[0], self.hidden_size][unbatched:]}")
        return x, h, unbatched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):  # noqa: A002
        x, h, unbatched = self._prepare(input, hx)
        h, _ = _rnn_step(self.mode, F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h.squeeze(0) if unbatched else h


class LSTMCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):  # noqa: A002
        h0, c0 = (None, None) if hx is None else hx
        x, h, unbatched = self._prepare(input, h0)
        _, c, _ = self._prepare(input, c0, "cell")
        h, c = _rnn_step("LSTM", F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh, c)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):  # noqa: A002
        x, h, unbatched = self._prepare(input, hx)
        h, _ = _rnn_step("GRU", F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h.squeeze(0) if unbatched else h
