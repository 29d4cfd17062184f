"""Semantic variants: named departures from the spec, each what a framework binding could compute instead.

A variant is *not* a second implementation: it transforms the reference's inputs, weights or config
(:class:`Call`), or wraps :func:`reference.lstm_forward` (a different driver of the same loop, an edit of
its outputs). Each names the rule it departs from (``rule``) and says in one line what it computes
(``reading``). ``lstm-conformance diagnose`` runs the reference under each variant, and pairs of them, to
name the one that reproduces a failing implementation (conformance/diagnosis/).

Families (``FAMILIES``): gate order per tensor (GATE-1), activation flavours (ACT-30) and role swaps
(GATE-2), forget-gate bias (GATE-1), one vs two biases (GATE-1), masked output and masked state (MASK-1..3),
direction (DIR-1, DIR-2, BIDI-1, BIDI-2), returned states (STATE-4, MASK-1), skipped steps (GATE-3),
peephole order (PEEP-1), clip readings (CLIP-1), input_forget readings (IFG-1), reduced precision (NUM-5).
Projection placement has no variant: every other placement of W_hr changes a shape, which the SHAPE
rules report without a diagnosis.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from .config import CLIP_READINGS, INPUT_FORGET_READINGS
from .forward import EMPTY_ROW_READINGS, LAST_OUTPUT_READINGS, LSTMResult
from .variant_ops import (  # the operations the catalogue is made of
    _bias, _bidi_not_rereversed, _config, _dtype, _forget, _gate_order,
    _go_backwards_original_order, _h0_before_first_valid, _leftover, _map, _masked_state_update, _needs,
    _operands, _padded_end_states, _peephole_rows, _sequence_post, _skip_step, _state_reset,
    _swap_directions, _swap_states, _switch, _zeroed_by_input_order_mask, Call, Post,
    Runner, Transform, round_mantissa,
)
from .weights import GATES

__all__ = ["Call", "Variant", "catalogue", "run_variants", "FAMILIES", "round_mantissa"]


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


# ---- the catalogue -------------------------------------------------------------------------------------------
_HARD_SIGMOIDS = ("hard_sigmoid_keras2", "hard_sigmoid_keras3", "onnx_hard_sigmoid", "sigmoid")


def _activation_variants():
    for role in ("activation", "recurrent_activation"):
        for new in _HARD_SIGMOIDS:
            def t(call: Call, role=role, new=new):
                if getattr(call.config, role) not in _HARD_SIGMOIDS:
                    return None
                return _config(**{role: new})(call)
            # ACT-30: a name maps to the function the framework really computes; another flavour under the
            # declared name breaks that mapping (GATE-2, which function has which role, still holds)
            yield Variant(f"{role}:{new}", "activation", "ACT-30",
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
    per_tensor: list[Variant] = []  # one tensor's blocks alone: 69 variants, run last
    for tensor in ("all", "W", "U", "b"):
        for p in perms:
            order = "".join(gates[k] for k in p)
            where = {"all": "W, U and the biases", "b": "the biases"}.get(tensor, tensor)
            (out if tensor == "all" else per_tensor).append(Variant(
                f"gate-order[{tensor}]:{order}", "gate-order", "GATE-1",
                f"the gate blocks of {where} read in order {order} (spec: {gates})", _gate_order(tensor, p)))
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
    out.append(Variant("masked-output:zeroed-by-input-order-mask", "masked-output", "MASK-2",
                       "under 'zero' a backwards direction's outputs are zeroed by the mask in input order",
                       _needs(lambda c: c.mask is not None and c.masked_output == "zero" and c.config.num_layers == 1
                              and (c.config.go_backwards or c.config.bidirectional and c.config.return_sequences)),
                       _zeroed_by_input_order_mask))
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
    return out + per_tensor


FAMILIES = tuple(dict.fromkeys(v.family for v in catalogue()))
