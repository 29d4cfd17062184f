"""Semantic variants: named departures from the spec, each what a framework binding could compute instead.

A variant is *not* a second implementation: it transforms the reference's inputs, weights or config
(:class:`Call`), or wraps :func:`reference.lstm_forward` (a different driver of the same loop, an edit of
its outputs). Each names the rule it departs from (``rule``) and says in one line what it computes
(``reading``). ``lstm-conformance diagnose`` runs the reference under each variant, and pairs of them, to
name the one that reproduces a failing implementation (conformance/diagnosis/).

Families (``FAMILIES``): gate order per tensor (GATE-1), activation flavours and role swaps (GATE-2,
ACT-*), forget-gate bias (GATE-1), one vs two biases (GATE-1), masked output and masked state (MASK-1..3),
direction (DIR-1, DIR-2, BIDI-1, BIDI-2), returned states (STATE-4, MASK-1), skipped steps (GATE-3),
peephole order (PEEP-1), clip readings (CLIP-1), input_forget readings (IFG-1), reduced precision (NUM-5).
Projection placement has no variant: every other placement of W_hr changes a shape, which the SHAPE
rules report without a diagnosis.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .config import CLIP_READINGS, INPUT_FORGET_READINGS
from .forward import (EMPTY_ROW_READINGS, LAST_OUTPUT_READINGS, LSTMResult, last_valid_index, lstm_forward,
                      prepare_call, run_layers, normalise_initial_state)
from .weights import GATES, LayerWeights, Weights

__all__ = ["Call", "Variant", "catalogue", "run_variants", "FAMILIES", "round_mantissa"]


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


@dataclass(frozen=True)
class Variant:
    """A named reading: ``transform`` the call (None: does not apply to it), run it (``runner``, default
    :meth:`Call.run`), edit the result (``post``). ``precision`` marks a reduced-precision variant."""

    name: str
    family: str
    rule: str
    reading: str
    transform: Transform | None = None
    runner: Runner | None = None
    post: Post | None = None
    precision: bool = False


def run_variants(variants, call: Call) -> LSTMResult | None:
    """The reference under one variant or a composition (applied in order); None when one does not apply."""
    runners = [v.runner for v in variants if v.runner is not None]
    if len(runners) > 1:
        return None  # two drivers of the loop do not compose
    for v in variants:
        if v.transform is not None:
            call = v.transform(call)
            if call is None:
                return None
    with np.errstate(all="ignore"):
        try:
            res = runners[0](call) if runners else call.run()
        except ValueError:  # the variant made a call the reference refuses: it does not apply to this case
            return None
        for v in variants:
            if v.post is not None:
                res = v.post(call, res)
                if res is None:
                    return None
    return res


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


# ---- the catalogue -------------------------------------------------------------------------------------------
_HARD_SIGMOIDS = ("hard_sigmoid_keras2", "hard_sigmoid_keras3", "onnx_hard_sigmoid", "sigmoid")


def _activation_variants():
    for role in ("activation", "recurrent_activation"):
        for new in _HARD_SIGMOIDS:
            def t(call: Call, role=role, new=new):
                if getattr(call.config, role) not in _HARD_SIGMOIDS:
                    return None
                return _config(**{role: new})(call)
            yield Variant(f"{role}:{new}", "activation", "GATE-2",
                          f"{role} computed as {new} where a hard_sigmoid/sigmoid flavour is declared", t)

    def swap(call: Call):
        cfg = call.config
        return _config(activation=cfg.recurrent_activation, recurrent_activation=cfg.activation)(call)
    yield Variant("activation-roles-swapped", "activation", "GATE-2",
                  "activation used for the gates i, f, o and recurrent_activation for g and h", swap)


def catalogue() -> list[Variant]:
    """Every variant, cheap and common ones first (diagnosis runs them in this order within its budget)."""
    out: list[Variant] = []
    gates = "".join(GATES)
    perms = [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)]
    for tensor in ("all", "W", "U", "b"):
        for p in perms:
            order = "".join(gates[k] for k in p)
            where = {"all": "W, U and the biases", "b": "the biases"}.get(tensor, tensor)
            out.append(Variant(f"gate-order[{tensor}]:{order}", "gate-order", "GATE-1",
                               f"the gate blocks of {where} read in order {order} (spec: {gates})",
                               _gate_order(tensor, p)))
    out += list(_activation_variants())
    out += [
        Variant("forget-bias:+1-added", "forget-bias", "GATE-1", "1 added to the forget-gate bias at run time",
                _bias(lambda lw: _forget(lw, None, True))),
        Variant("forget-bias:set-to-1", "forget-bias", "GATE-1", "the forget-gate bias replaced by 1",
                _bias(lambda lw: _forget(lw, 1.0, False))),
        Variant("forget-bias:missing", "forget-bias", "GATE-1", "the forget-gate bias chunk dropped (zero)",
                _bias(lambda lw: _forget(lw, None, False))),
        Variant("bias:second-ignored", "bias", "GATE-1", "of two biases only the first is added",
                _bias(lambda lw: {"b2": np.zeros_like(lw.b2)}, "double")),
        Variant("bias:second-doubled", "bias", "GATE-1", "the second bias added twice",
                _bias(lambda lw: {"b2": 2 * lw.b2}, "double")),
        Variant("bias:first-ignored", "bias", "GATE-1", "of two biases only the second is added",
                _bias(lambda lw: {"b": np.zeros_like(lw.b)}, "double")),
        Variant("bias:ignored", "bias", "GATE-1", "the (single) bias not added",
                _bias(lambda lw: {"b": np.zeros_like(lw.b)}, "single")),
        Variant("bias:doubled", "bias", "GATE-1", "the (single) bias added twice (counted as two biases)",
                _bias(lambda lw: {"b": 2 * lw.b}, "single")),
    ]
    for value in ("carry", "zero"):
        out.append(Variant(f"masked-output:{value}", "masked-output", "MASK-2",
                           f"masked steps output {'the previous output' if value == 'carry' else 'zeros'}",
                           _switch("masked_output", ("carry", "zero"), value)))
    t, r = _sequence_post(_h0_before_first_valid)
    out.append(Variant("masked-output:h0-before-first-valid", "masked-output", "MASK-2",
                       "masked steps before a row's first valid step output h0 (not zeros)", t, r))
    t, r = _sequence_post(_leftover)
    out.append(Variant("masked-output:leftover", "masked-output", "MASK-2",
                       "masked steps output the step's own h_t (computed, not masked), the state kept", t, r))
    out += [
        Variant("masked-state:update", "masked-state", "MASK-1",
                "masked steps update the state (outputs masked afterwards)",
                _needs(lambda c: c.simple and c.mask is not None), _masked_state_update),
        Variant("final-state:padded-end", "returned-states", "MASK-1",
                "final (h, c) taken after the last padded step", _needs(lambda c: c.mask is not None),
                post=_padded_end_states),
    ]
    for reading in LAST_OUTPUT_READINGS:
        out.append(Variant(f"last-output:{reading}", "masked-output", "MASK-2", f"the last output read '{reading}'",
                           _switch("last_output", LAST_OUTPUT_READINGS, reading)))
    for reading in EMPTY_ROW_READINGS:
        out.append(Variant(f"empty-rows:{reading}", "length-0-rows", "MASK-3",
                           f"a row with no valid step ends in the '{reading}' state",
                           _switch("empty_rows", EMPTY_ROW_READINGS, reading)))
    out += [
        Variant("go-backwards:original-order", "direction", "DIR-2",
                "go_backwards output returned in original time order", post=_go_backwards_original_order),
        Variant("go-backwards:ignored", "direction", "DIR-1", "go_backwards ignored (input read forwards)",
                _config(go_backwards=False)),
        Variant("bidirectional:backward-not-re-reversed", "direction", "BIDI-1",
                "the backward sequence merged in processing order",
                _needs(lambda c: c.config.bidirectional and c.config.num_layers == 1 and c.config.return_sequences),
                _bidi_not_rereversed),
        Variant("states:h-c-swapped", "returned-states", "STATE-4", "final h and c returned in each other's place",
                post=_swap_states),
        Variant("states:directions-swapped", "returned-states", "STATE-4",
                "forward and backward final states returned in each other's place", post=_swap_directions),
    ]
    for mode in ("sum", "mul", "ave"):
        out.append(Variant(f"merge:as-{mode}", "direction", "BIDI-2", f"the directions merged by {mode}",
                           lambda c, mode=mode: _config(merge_mode=mode)(c) if c.config.effective_merge_mode in (
                               "sum", "mul", "ave") else None))
    out += [
        Variant("steps:first-skipped", "steps", "GATE-3", "the first processing step skipped (its output h0)",
                _needs(lambda c: c.simple and c.x.shape[1] > 1), _skip_step(True)),
        Variant("steps:last-skipped", "steps", "GATE-3", "the last processing step skipped (its output repeated)",
                _needs(lambda c: c.simple and c.x.shape[1] > 1), _skip_step(False)),
        Variant("steps:state-reset-every-64", "steps", "GATE-3", "the state restarts from zeros every 64 steps",
                _needs(lambda c: c.simple and not c.config.go_backwards and c.x.shape[1] > 64), _state_reset(64)),
    ]
    for p in itertools.permutations(range(3)):
        if p != (0, 1, 2):
            order = "".join("iof"[k] for k in p)
            out.append(Variant(f"peephole-rows:{order}", "peepholes", "PEEP-1",
                               f"peephole rows read as {order} (spec: iof)", _peephole_rows(p)))
    out.append(Variant("peepholes:ignored", "peepholes", "PEEP-1", "peephole terms not added",
                       lambda c: replace(c, weights=_map(c.weights, lambda lw: {"P": None})) if c.config.peepholes
                       else None))
    for reading in CLIP_READINGS:
        out.append(Variant(f"clip:{reading}", "clip", "CLIP-1", f"cell_clip read as '{reading}'",
                           lambda c, r=reading: _config(clip_reading=r)(c) if c.config.cell_clip else None))
    out.append(Variant("clip:ignored", "clip", "CLIP-1", "cell_clip ignored", _config(cell_clip=None)))
    for reading in INPUT_FORGET_READINGS:
        out.append(Variant(f"input-forget:{reading}", "input-forget", "IFG-1", f"input_forget read as '{reading}'",
                           lambda c, r=reading: _config(input_forget_reading=r)(c) if c.config.input_forget else None))
    out.append(Variant("input-forget:ignored", "input-forget", "IFG-1", "input_forget ignored",
                       _config(input_forget=False)))
    out += [
        Variant("compute:float16", "precision", "NUM-5", "computed in float16", _dtype("float16", ("float32", "float64")),
                precision=True),
        Variant("compute:float32", "precision", "NUM-5", "computed in float32", _dtype("float32", ("float64",)),
                precision=True),
        Variant("operands:bfloat16", "precision", "NUM-5", "inputs, weights and initial state rounded to bfloat16",
                _operands(7), precision=True),
        Variant("operands:tf32", "precision", "NUM-5", "inputs, weights and initial state rounded to TF32",
                _operands(10), precision=True),
    ]
    return out


FAMILIES = tuple(dict.fromkeys(v.family for v in catalogue()))
