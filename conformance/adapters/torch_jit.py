"""TorchScript and compiled paths of ``nn.LSTM``: the torch adapter's ``jit-script``, ``jit-trace`` and
``compile`` variants.

Imported only when one of those variants runs (it imports torch at module level: TorchScript compiles
:class:`StateCall` from this file's source). A scripted ``nn.LSTM`` alone has no Python-callable ``forward``
(torch 2.13: its overloads ``forward__0`` / ``forward__1`` are dispatched by the calling script), so both
paths wrap it the way users deploy it, in a module whose ``forward`` calls it:

- ``jit-script``: ``torch.jit.script(StateCall(lstm))``;
- ``jit-trace``: ``torch.jit.trace(StateCall(lstm), example)`` with an example of *another* shape than the
  checks use (batch 1, 2 steps), so every check also asks whether the traced graph holds for other batch
  sizes and lengths (the dynamic axes of an exported graph). One trace with an initial state and one without;
- ``compile``: ``torch.compile(StateCall(lstm))`` (default backend, inductor: needs a C++ compiler). Measured
  here (torch 2.13.0, 2 shared cores): ~29 s for the first call of a new structure, 0.6-0.9 s for a new shape
  after that, so the variant runs only with ``LSTM_CONFORMANCE_SLOW_VARIANTS=1``.

Both share the LSTM's parameters (the adapter copies each case's weights into them), so the same module
serves every case of one structure. Lengths are not packed: each row runs as its own batch-1 call on its
first ``length`` steps (:func:`run_rows`), which a scripted or traced module takes like any input.
torch 2.13 warns that ``torch.jit.script`` / ``trace`` are deprecated; the warning is silenced here.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch

__all__ = ["StateCall", "compile_path", "run_rows", "JIT_VARIANTS"]

JIT_VARIANTS = ("jit-script", "jit-trace", "compile")


class StateCall(torch.nn.Module):
    """``lstm(x)`` or ``lstm(x, (h0, c0))``: the call a deployed model makes, as one TorchScript method."""

    def __init__(self, lstm: torch.nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x: torch.Tensor, h0: Optional[torch.Tensor] = None, c0: Optional[torch.Tensor] = None):
        if h0 is None or c0 is None:
            return self.lstm(x)
        return self.lstm(x, (h0, c0))


def compile_path(variant: str, lstm: torch.nn.LSTM, with_state: bool):
    """The scripted or traced callable ``f(x[, h0, c0]) -> (y, (h_n, c_n))`` of a batch-first ``lstm``."""
    wrapper = StateCall(lstm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13: "torch.jit.script/trace is deprecated"
        if variant == "jit-script":
            return torch.jit.script(wrapper)
        if variant == "compile":
            return torch.compile(wrapper)
        p = next(lstm.parameters())
        x = torch.zeros((1, 2, lstm.input_size), dtype=p.dtype, device=p.device)
        if not with_state:
            return torch.jit.trace(wrapper, (x,))
        layers = lstm.num_layers * (2 if lstm.bidirectional else 1)
        h0 = torch.zeros((layers, 1, lstm.proj_size or lstm.hidden_size), dtype=p.dtype, device=p.device)
        c0 = torch.zeros((layers, 1, lstm.hidden_size), dtype=p.dtype, device=p.device)
        return torch.jit.trace(wrapper, (x, h0, c0))


def run_rows(call, x: torch.Tensor, lengths, state):
    """(y (B, T, D*H), h_n, c_n): the whole batch in one call, or with ``lengths`` one batch-1 call per row on
    its first ``length`` steps, the rest of its output zeros (MASK-2 'zero', as pad_packed_sequence gives)."""
    if lengths is None:
        y, (hn, cn) = call(x) if state is None else call(x, state[0], state[1])
        return y, hn, cn
    B, T, _ = x.shape
    ys, hs, cs = [], [], []
    for b in range(B):
        n = int(lengths[b])
        row = x[b:b + 1, :n]
        y, (hn, cn) = call(row) if state is None else call(row, state[0][:, b:b + 1], state[1][:, b:b + 1])
        if n < T:
            y = torch.cat([y, y.new_zeros((1, T - n, y.shape[2]))], dim=1)
        ys.append(y)
        hs.append(hn)
        cs.append(cn)
    return torch.cat(ys), torch.cat(hs, dim=1), torch.cat(cs, dim=1)
