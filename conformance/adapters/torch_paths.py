"""The paths the torch adapter's variants call ``nn.LSTM`` by: ``batch_first`` / ``time_major`` /
``cudnn`` (:func:`run_batched`, packed sequences for lengths), ``unbatched`` (:func:`run_unbatched`), and the
other paths to the same LSTM: ``jit-script``, ``jit-trace``, ``compile`` and ``cell-loop``.

Imported when a torch check runs (it imports torch at module level: TorchScript compiles :class:`StateCall`
from this file's source). A scripted ``nn.LSTM`` alone has no Python-callable ``forward``
(torch 2.13: its overloads ``forward__0`` / ``forward__1`` are dispatched by the calling script), so both
paths wrap it the way users deploy it, in a module whose ``forward`` calls it:

- ``jit-script``: ``torch.jit.script(StateCall(lstm))``;
- ``jit-trace``: ``torch.jit.trace(StateCall(lstm), example)`` with an example of *another* shape than the
  checks use (batch 1, 2 steps), so every check also asks whether the traced graph holds for other batch
  sizes and lengths (the dynamic axes of an exported graph). One trace with an initial state and one without;
- ``compile``: ``torch.compile(StateCall(lstm))`` (default backend, inductor: needs a C++ compiler). Measured
  here (torch 2.13.0, 2 shared cores): ~29 s for the first call of a new structure, 0.6-0.9 s for a new shape
  after that, so the variant runs only with ``LSTM_CONFORMANCE_SLOW_VARIANTS=1``;
- ``cell-loop``: ``nn.LSTMCell`` per layer and direction, stepped over time in Python as users write a
  custom loop (:func:`run_cells`), the cells holding the ``nn.LSTM``'s own parameters.

All share the LSTM's parameters (the adapter copies each case's weights into them), so the same module
serves every case of one structure. On these paths lengths are not packed: each row runs as its own batch-1
call on its first ``length`` steps (:func:`run_rows`), which a scripted or traced module takes like any input.
torch 2.13 warns that ``torch.jit.script`` / ``trace`` are deprecated; the warning is silenced here.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch

__all__ = ["StateCall", "compile_path", "run_batched", "run_rows", "run_cells", "run_path", "run_unbatched"]


class StateCall(torch.nn.Module):
    """``lstm(x)`` or ``lstm(x, (h0, c0))``: the call a deployed model makes, as one TorchScript method."""

    def __init__(self, lstm: torch.nn.LSTM) -> None:
        super().__init__()
        self.lstm = lstm

    def forward(self, x: torch.Tensor, h0: Optional[torch.Tensor] = None, c0: Optional[torch.Tensor] = None):
        if h0 is None or c0 is None:
            return self.lstm(x)
        return self.lstm(x, (h0, c0))


def run_batched(module, x: torch.Tensor, lengths, state, *, time_major: bool):
    """(y (B, T, D*H), h_n, c_n) of one ``module`` call on the batch, packed by ``lengths`` when given."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T = x.shape[1]
    inp = x.transpose(0, 1) if time_major else x
    if lengths is not None:
        # enforce_sorted=False: torch sorts by length and permutes h0/h_n back to the caller's order.
        inp = pack_padded_sequence(inp, torch.as_tensor(lengths, dtype=torch.int64), batch_first=not time_major,
                                   enforce_sorted=False)
    y, (hn, cn) = module(inp, state)
    if lengths is not None:
        # total_length: keep T steps even when every sequence is shorter than the padded input.
        y, _ = pad_packed_sequence(y, batch_first=not time_major, total_length=T)
    if time_major:
        y = y.transpose(0, 1)
    return y, hn, cn


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


def _cells(lstm: torch.nn.LSTM) -> list[list[torch.nn.LSTMCell]]:
    """Per layer and direction an nn.LSTMCell whose parameters *are* the LSTM's (weight_ih_l{k}[_reverse], ...)."""
    out = []
    for layer in range(lstm.num_layers):
        dirs = []
        for suffix in ("", "_reverse")[:2 if lstm.bidirectional else 1]:
            inp = lstm.input_size if layer == 0 else lstm.hidden_size * (2 if lstm.bidirectional else 1)
            p = getattr(lstm, f"weight_ih_l{layer}{suffix}")
            cell = torch.nn.LSTMCell(inp, lstm.hidden_size, bias=lstm.bias, device=p.device, dtype=p.dtype)
            for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if lstm.bias else ()):
                setattr(cell, name, getattr(lstm, f"{name}_l{layer}{suffix}"))
            dirs.append(cell)
        out.append(dirs)
    return out


def _reverse_valid(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Each row's first n[b] steps in reverse order, the padded steps after them left in place."""
    T = x.shape[1]
    t = torch.arange(T, device=x.device)
    idx = torch.where(t[None, :] < n[:, None], n[:, None] - 1 - t[None, :], t[None, :])  # (B, T)
    return torch.gather(x, 1, idx[:, :, None].expand(-1, -1, x.shape[2]))


def run_cells(cells, x: torch.Tensor, lengths, state):
    """(y (B, T, D*H), h_n, c_n) of a custom loop over nn.LSTMCell: each layer and direction steps over a row's
    valid steps only (the backward direction from the row's last valid step), keeps its state past them and
    outputs zeros there (MASK-2 'zero', as pad_packed_sequence gives); layer k > 0 reads the concatenation."""
    B, T, _ = x.shape
    n = torch.full((B,), T, device=x.device) if lengths is None else torch.as_tensor(lengths, device=x.device)
    valid = (torch.arange(T, device=x.device)[None, :] < n[:, None])[:, :, None]  # (B, T, 1)
    hs, cs, inp = [], [], x
    for layer, dirs in enumerate(cells):
        outs = []
        for d, cell in enumerate(dirs):
            k = layer * len(dirs) + d
            h = x.new_zeros((B, cell.hidden_size)) if state is None else state[0][k]
            c = x.new_zeros((B, cell.hidden_size)) if state is None else state[1][k]
            seq = _reverse_valid(inp, n) if d == 1 else inp
            ys = []
            for t in range(T):
                h_new, c_new = cell(seq[:, t], (h, c))
                if lengths is None:  # every step valid: the plain loop a user writes
                    h, c = h_new, c_new
                    ys.append(h_new)
                    continue
                h, c = torch.where(valid[:, t], h_new, h), torch.where(valid[:, t], c_new, c)
                ys.append(torch.where(valid[:, t], h_new, torch.zeros_like(h_new)))
            y = torch.stack(ys, dim=1)
            outs.append(_reverse_valid(y, n) if d == 1 else y)
            hs.append(h)
            cs.append(c)
        inp = torch.cat(outs, dim=2)
    return inp, torch.stack(hs), torch.stack(cs)


def run_path(variant: str, lstm: torch.nn.LSTM, cache: dict, x: torch.Tensor, lengths, state):
    """(y, h_n, c_n) of ``lstm`` through the variant's path; ``cache`` keeps the compiled callables or cells."""
    if variant == "cell-loop":
        if "cells" not in cache:
            cache["cells"] = _cells(lstm)
        return run_cells(cache["cells"], x, lengths, state)  # nn.LSTMCell has no dropout (declared)
    # a trace fixes whether a state is passed; a trace and a script both fix the training flag (dropout on/off)
    # they were made with, so a handle called in both modes (inference, then training) gets one of each
    key = (state is not None and variant == "jit-trace", lstm.training)
    if key not in cache:
        cache[key] = compile_path(variant, lstm, key[0])
    return run_rows(cache[key], x, lengths, state)


def run_unbatched(module, x, lengths, state):
    """One unbatched ``(T_b, d)`` call per row (h0 ``(D*L, H)``); a right-padded row is its first
    ``length`` steps, the rest of its output zeros, as pad_packed_sequence gives (MASK-2 'zero')."""
    B, T, _ = x.shape
    ys, hs, cs = [], [], []
    for b in range(B):
        n = T if lengths is None else int(lengths[b])
        y, (hn, cn) = module(x[b, :n], None if state is None else (state[0][:, b], state[1][:, b]))
        if n < T:
            y = torch.cat([y, y.new_zeros((T - n, y.shape[1]))])
        ys.append(y)
        hs.append(hn)
        cs.append(cn)
    return torch.stack(ys), torch.stack(hs, dim=1), torch.stack(cs, dim=1)
