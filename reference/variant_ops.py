"""The operations the semantic variants are made of (reference/variants.py): transformations of a
reference call's inputs, weights or config, drivers around :func:`reference.lstm_forward`, and edits of
its outputs. None of them repeats the step math: each calls the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .forward import (LSTMResult, last_valid_index, lstm_forward,
                      normalise_initial_state, prepare_call, run_layers)
from .weights import GATES, LayerWeights, Weights

__all__ = ["Call", "Transform", "Runner", "Post", "round_mantissa"]


@dataclass(frozen=True)
class Call:
    """One reference call: what :func:`lstm_forward` receives (``dtype`` None = the config's)."""

    config: object
    weights: Weights
    x: np.ndarray
    mask: np.ndarray | None = None
    initial_state: list | None = None
    masked_output: str = "carry"
    last_output: str = "last-step"
    empty_rows: str = "keep-initial"
    dtype: str | None = None

    def run(self) -> LSTMResult:
        return lstm_forward(self.config, self.weights, self.x, mask=self.mask, initial_state=self.initial_state,
                            masked_output=self.masked_output, last_output=self.last_output,
                            empty_rows=self.empty_rows, dtype=self.dtype)

    @property
    def simple(self) -> bool:
        """One layer, one direction: where the per-step output variants apply."""
        return self.config.num_layers == 1 and not self.config.bidirectional


Transform = Callable[[Call], "Call | None"]
Runner = Callable[[Call], LSTMResult]
Post = Callable[[Call, LSTMResult], "LSTMResult | None"]



# ---- weights ---------------------------------------------------------------------------------------------
def _map(weights: Weights, fn: Callable[[LayerWeights], dict]) -> Weights:
    return Weights([[replace(lw, **fn(lw)) for lw in dirs] for dirs in weights.layers])


def _gate_order(tensor: str, perm: tuple[int, ...]) -> Transform:
    names = {"W": ("W",), "U": ("U",), "b": ("b", "b2"), "all": ("W", "U", "b", "b2")}[tensor]

    def t(call: Call):
        if tensor == "b" and not call.config.use_bias:
            return None
        return replace(call, weights=_map(call.weights, lambda lw: {
            k: getattr(lw, k)[list(perm)] for k in names if getattr(lw, k) is not None}))
    return t


def _bias(fn: Callable[[LayerWeights], dict], mode: str | None = None) -> Transform:
    def t(call: Call):
        if not call.config.use_bias or (mode and call.config.bias_mode != mode):
            return None
        return replace(call, weights=_map(call.weights, fn))
    return t


_F = GATES.index("f")


def _forget(lw: LayerWeights, value: float | None, add: bool) -> dict:
    b = np.array(lw.b, copy=True)
    b2 = None if lw.b2 is None else np.array(lw.b2, copy=True)
    if add:
        b[_F] += 1.0
    else:
        b[_F] = 0.0 if value is None else value
        if b2 is not None:
            b2[_F] = 0.0
    return {"b": b, "b2": b2}


def _config(**changes) -> Transform:
    """A config change; None when the config already has it or the change is invalid for it."""
    def t(call: Call):
        if all(getattr(call.config, k) == v for k, v in changes.items()):
            return None
        try:
            return replace(call, config=call.config.replace(**changes))
        except ValueError:
            return None
    return t


def _peephole_rows(perm: tuple[int, ...]) -> Transform:
    def t(call: Call):
        if not call.config.peepholes:
            return None
        return replace(call, weights=_map(call.weights, lambda lw: {"P": lw.P[list(perm)]}))
    return t


def round_mantissa(a, bits: int) -> np.ndarray:
    """``a`` rounded (to nearest) to ``bits`` explicit mantissa bits, float32 exponent range (TF32: 10,
    bfloat16: 7): what a reduced-precision matmul unit reads of its float32 operands."""
    u = np.asarray(a, np.float32).view(np.uint32)
    drop = np.uint32(23 - bits)
    half = np.uint32(1 << (23 - bits - 1))
    return ((u + half) >> drop << drop).view(np.float32).astype(np.float64)


def _operands(bits: int) -> Transform:
    def t(call: Call):
        if call.config.dtype == "float16":
            return None
        init = call.initial_state
        if init is not None:
            init = [[(round_mantissa(h, bits), round_mantissa(c, bits)) for h, c in d] for d in init]
        w = Weights.from_flat({k: round_mantissa(v, bits) for k, v in call.weights.flat().items()})
        return replace(call, weights=w, x=round_mantissa(call.x, bits), initial_state=init)
    return t


def _dtype(dtype: str, below: tuple[str, ...]) -> Transform:
    def t(call: Call):
        return replace(call, dtype=dtype) if call.config.dtype in below else None
    return t


def _switch(field: str, readings: tuple[str, ...], value: str) -> Transform:
    def t(call: Call):
        if getattr(call, field) == value or (field != "last_output" and call.mask is None):
            return None
        return replace(call, **{field: value}) if value in readings else None
    return t


# ---- outputs: single-direction sequences in processing order -----------------------------------------------
def _processing(call: Call) -> Call:
    """The same call with go_backwards folded into the input: its output sequence is in processing order."""
    if not call.config.go_backwards:
        return call
    return replace(call, config=call.config.replace(go_backwards=False), x=call.x[:, ::-1],
                   mask=None if call.mask is None else call.mask[:, ::-1])


def _h0(call: Call) -> np.ndarray:
    return np.zeros((call.x.shape[0], call.config.hidden_size)) if call.initial_state is None else (
        np.asarray(call.initial_state[0][0][0] if isinstance(call.initial_state, list) else call.initial_state[0]))


def _finish(call: Call, seq: np.ndarray, h, c, mask) -> LSTMResult:
    """An LSTMResult from a processing-order sequence, the output as the config asks (MASK-2 reading)."""
    if call.config.return_sequences:
        out = seq
    elif call.last_output == "last-valid" and mask is not None:
        out = np.where(mask.any(1)[:, None], seq[np.arange(len(seq)), last_valid_index(mask)], 0.0)
    else:
        out = seq[:, -1]
    return LSTMResult(output=out, h=[[h]], c=[[c]], sequences=[seq])


def _sequence_post(fn: Callable[[Call, np.ndarray, LSTMResult], np.ndarray | None], needs_mask: bool = True):
    """A post edit of the processing-order output sequence (one layer, one direction)."""
    def runner(call: Call) -> LSTMResult:
        p = _processing(call)
        res = replace(p, config=p.config.replace(return_sequences=True), last_output="last-step").run()
        seq = fn(p, res.sequences[0], res)
        if seq is None:
            seq = np.full_like(res.sequences[0], np.nan)  # marks "not applicable" for run_variants' caller
        return _finish(p, seq, res.h[0][0], res.c[0][0], p.mask)

    def transform(call: Call):
        return call if call.simple and (call.mask is not None or not needs_mask) else None
    return transform, runner


def _h0_before_first_valid(p: Call, seq, res):
    before = np.cumsum(p.mask, axis=1) == 0  # MASK-2: masked steps before the row's first valid one
    return np.where(before[..., None], _h0(p)[:, None, :], seq)


def _leftover(p: Call, seq, res):
    dt, x, mask = prepare_call(p.config, p.weights, p.x, p.mask, None, p.masked_output, "last-step",
                               p.empty_rows, p.dtype)
    tapes: list = []
    run_layers(p.config, p.weights.astype(dt), x, mask, normalise_initial_state(p.config, p.initial_state,
               x.shape[0], dt), p.masked_output, "last-step", p.empty_rows, tapes)
    fresh = np.stack([s.h for s in tapes[0][0].steps], axis=1)  # the step's h_t before MASK-1 kept the state
    return np.where(mask[..., None], seq, fresh)


def _masked_state_update(call: Call) -> LSTMResult:
    """MASK-1 departed from: masked steps update the state; the outputs are then masked as MASK-2 says."""
    p = _processing(call)
    res = replace(p, mask=None, config=p.config.replace(return_sequences=True)).run()
    y, mask = res.sequences[0], p.mask
    out, prev = np.empty_like(y), np.zeros_like(y[:, 0])
    for t in range(y.shape[1]):
        keep = prev if p.masked_output == "carry" else np.zeros_like(prev)
        out[:, t] = prev = np.where(mask[:, t, None], y[:, t], keep)
    return _finish(p, out, res.h[0][0], res.c[0][0], mask)


def _zeroed_by_input_order_mask(call: Call) -> LSTMResult:
    """MASK-2 departed from: under 'zero', a backwards-reading direction's outputs (in processing order) are
    zeroed by the mask in input order; the loop itself carries the previous output at masked steps."""
    cfg, m = call.config, call.mask[..., None]
    carry = replace(call, masked_output="carry", config=cfg.replace(return_sequences=True))
    if not cfg.bidirectional:
        res = carry.run()
        return _finish(call, np.where(m, res.sequences[0], 0.0), res.h[0][0], res.c[0][0], call.mask[:, ::-1])
    res = replace(carry, config=carry.config.replace(merge_mode="none")).run()
    yf, yb = res.output
    yf, yb = np.where(m, yf, 0.0), np.where(m, yb[:, ::-1], 0.0)[:, ::-1]
    merged = {"concat": lambda: np.concatenate([yf, yb], -1), "sum": lambda: yf + yb, "mul": lambda: yf * yb,
              "ave": lambda: (yf + yb) / 2, "none": lambda: (yf, yb)}[cfg.effective_merge_mode]()
    return LSTMResult(output=merged, h=res.h, c=res.c, sequences=[merged])


def _padded_end_states(call: Call, res: LSTMResult) -> LSTMResult:
    full = replace(call, mask=None).run()
    return LSTMResult(output=res.output, h=full.h, c=full.c, sequences=res.sequences)


def _skip_step(first: bool) -> Runner:
    """GATE-3 departed from: the loop skips the first (or last) processing step; the skipped position
    outputs h0 (first) or repeats the previous output (last); the final state is the last one computed."""
    def runner(call: Call) -> LSTMResult:
        p = _processing(call)
        keep = slice(1, None) if first else slice(None, -1)
        q = replace(p, x=p.x[:, keep], mask=None if p.mask is None else p.mask[:, keep],
                    config=p.config.replace(return_sequences=True), last_output="last-step")
        res = q.run()
        y = res.sequences[0]
        pad = _h0(p)[:, None, :] if first else y[:, -1:]
        seq = np.concatenate([pad, y] if first else [y, pad], axis=1)
        return _finish(p, seq, res.h[0][0], res.c[0][0], p.mask)
    return runner


def _state_reset(chunk: int) -> Runner:
    def runner(call: Call) -> LSTMResult:
        cfg = call.config.replace(return_sequences=True)
        parts, res = [], None
        for t0 in range(0, call.x.shape[1], chunk):
            sl = slice(t0, t0 + chunk)
            res = replace(call, config=cfg, x=call.x[:, sl], mask=None if call.mask is None else call.mask[:, sl],
                          initial_state=call.initial_state if t0 == 0 else None).run()
            parts.append(res.output)
        y = np.concatenate(parts, axis=1)
        return _finish(call, y, res.h[0][0], res.c[0][0], call.mask)
    return runner


def _needs(pred: Callable[[Call], bool]) -> Transform:
    return lambda call: call if pred(call) else None


def _go_backwards_original_order(call: Call, res: LSTMResult):
    if not (call.config.go_backwards and call.config.return_sequences):
        return None
    return replace(res, output=res.output[:, ::-1])


def _bidi_not_rereversed(call: Call) -> LSTMResult:
    """BIDI-1 departed from: the backward direction's sequence is merged in processing order."""
    cfg = call.config
    res = replace(call, config=cfg.replace(merge_mode="none", return_sequences=True)).run()
    yf, yb = res.output
    mode = cfg.effective_merge_mode
    yb = yb[:, ::-1]
    merged = {"concat": lambda: np.concatenate([yf, yb], -1), "sum": lambda: yf + yb, "mul": lambda: yf * yb,
              "ave": lambda: (yf + yb) / 2, "none": lambda: (yf, yb)}[mode]()
    return LSTMResult(output=merged, h=res.h, c=res.c, sequences=res.sequences)


def _swap_states(call: Call, res: LSTMResult):
    if call.config.proj_size:
        return None
    return LSTMResult(output=res.output, h=res.c, c=res.h, sequences=res.sequences)


def _swap_directions(call: Call, res: LSTMResult):
    if not call.config.bidirectional:
        return None
    return LSTMResult(output=res.output, h=[d[::-1] for d in res.h], c=[d[::-1] for d in res.c],
                      sequences=res.sequences)


