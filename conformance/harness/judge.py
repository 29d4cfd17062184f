"""Running and judging one check: the adapter against the reference, by the error model (NUM-1).

Each ``judge_*`` function runs a case and returns a :class:`Judgement` (ok, message, numbers, implicated
rules); calibration and the detection meta test use them directly. :mod:`.checker` wraps them into the
``check`` fixture of the properties (crash guard, findings, repro blobs, one Result per check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference import Config, default_init_problems, lstm_forward, output_shapes, param_count
from reference.params import UnsupportedConvention

from ..adapters.base import Adapter, Output, Unsupported
from . import errors
from .attribution import implicate
from .memo import ReferenceMemo, case_key
from .strategies import Case

__all__ = ["Judgement", "Target", "run_adapter", "reference", "oracle", "judge_outputs",
           "judge_forward", "judge_shapes", "judge_params", "judge_continuation", "judge_defaults", "judge_precision"]


@dataclass(frozen=True)
class Target:
    """What is checked: one adapter, one of its kernel-path variants, on one device."""

    adapter: Adapter
    variant: str = "default"
    device: str = "cpu"


@dataclass
class Judgement:
    """A comparison's outcome: ``ok``, a message naming the values when not, the numbers, and the
    framework's own kernel path / matmul precision when it told them."""

    ok: bool
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    kernel_path: str | None = None
    precision: str | None = None
    inconclusive: str = ""  # why the case proves nothing either way (then ``ok`` is False and means nothing)
    implicated: list[str] = field(default_factory=list)  # the rules a failure points at


# ---- running both sides -------------------------------------------------------------------------------
def run_adapter(target: Target, case: Case, *, stateful: bool = False) -> tuple[Any, Output]:
    handle = target.adapter.build(case.config, case.weights, variant=target.variant, device=target.device,
                                  stateful=stateful)
    out = target.adapter.forward(handle, case.x, mask=case.mask, initial_state=case.initial_state,
                                 masked_output=case.masked_output)
    return handle, out


_MEMO = ReferenceMemo()


def reference(case: Case, dtype: str = "float64"):
    return _MEMO.get(case_key(case, f"reference-{dtype}"), lambda: lstm_forward(
        case.config, case.weights, case.x, mask=case.mask, initial_state=case.initial_state,
        masked_output=case.masked_output, last_output=case.last_output, dtype=dtype))


def oracle(case: Case):
    """The reference as the dtype under test sees the case (errors.oracle_reference, NUM-1)."""
    return errors.oracle_reference(case.config, case.weights, case.x, mask=case.mask,
                                   initial_state=case.initial_state, masked_output=case.masked_output, seed=case.seed,
                                   last_output=case.last_output)


def oracles(case: Case) -> list:
    """Equally valid roundings of the case (errors.oracle_references, NUM-1 v2): the error model's bar."""
    return _MEMO.get(case_key(case, "oracles"), lambda: errors.oracle_references(
        case.config, case.weights, case.x, mask=case.mask, initial_state=case.initial_state,
        masked_output=case.masked_output, seed=case.seed, last_output=case.last_output))


def _shape_of(obj):
    if isinstance(obj, (tuple, list)) and not all(isinstance(v, int) for v in obj):
        return [_shape_of(o) for o in obj]
    if isinstance(obj, tuple):  # a shape from reference.output_shapes
        return list(obj)
    return list(np.shape(obj))


# ---- judging -------------------------------------------------------------------------------------------
def judge_outputs(case: Case, out: Output, ref64, refdt, *, states: bool = True, **extra) -> Judgement:
    """Shapes first (a wrong shape is its own message), then the error model over output (and states).
    ``refdt`` is one oracle result or a list of them (equally valid roundings, NUM-1 v2)."""
    refs = refdt if isinstance(refdt, list) else [refdt]
    got = {"output": _shape_of(out.output)}
    want = {"output": _shape_of(ref64.output)}
    if states:
        got.update(h=_shape_of(out.h), c=_shape_of(out.c))
        want.update(h=_shape_of(ref64.h), c=_shape_of(ref64.c))
    paths = dict(kernel_path=out.kernel_path, precision=out.precision)
    if got != want:
        return Judgement(False, f"shapes differ: got {got}, reference {want}", {"shapes": got, **extra},
                         implicated=_shape_rules(case, got, want), **paths)

    def flat(res):
        return errors.flatten_outputs([res.output, res.h, res.c] if states else [res.output])

    cmp = errors.compare(flat(out), flat(ref64), [flat(r) for r in refs], case.config.dtype)
    metrics = {**cmp.to_dict(), "shapes": got, **extra}
    if cmp.inconclusive:  # the rule that made it inconclusive (NUM-2 range, NUM-6 conditioning)
        return Judgement(False, cmp.inconclusive, metrics, inconclusive=cmp.inconclusive,
                         implicated=[cmp.inconclusive.split(":")[0]], **paths)
    if cmp.passed:
        return Judgement(True, "", metrics, **paths)
    rules, where = implicate(case, out if states else _output_only(out), ref64 if states else _output_only(ref64),
                             cmp)
    metrics["where"] = where
    at = ", ".join(f"{k} {v}" for k, v in where.items() if v is not None)
    message = (f"ratio {cmp.ratio:.3g} > K={errors.K:g} (err_impl {cmp.err_impl:.3g}, err_oracle {cmp.err_oracle:.3g}, "
               f"floor {cmp.floor:.3g}, {cmp.bits:.1f} effective bits){'; ' + cmp.note if cmp.note else ''}"
               f"{'; worst at ' + at if at else ''}; case {case.brief()}")
    return Judgement(False, message, metrics, implicated=rules, **paths)


def _output_only(res):
    return type(res)(output=res.output, h=[], c=[])


def _shape_rules(case: Case, got: dict, want: dict) -> list[str]:
    cfg = case.config
    rules = []
    if got.get("output") != want.get("output"):
        rules.append("SHAPE-2" if cfg.return_sequences else "SHAPE-3")
        if cfg.bidirectional:
            rules.append("SHAPE-5")
    if got.get("h") != want.get("h") or got.get("c") != want.get("c"):
        rules.append("SHAPE-4")
    if cfg.proj_size:
        rules.append("SHAPE-6")
    return rules


def judge_forward(target: Target, case: Case, *, states: bool = True) -> Judgement:
    """Outputs and final (h, c) per layer and direction vs the reference."""
    _, out = run_adapter(target, case)
    return judge_outputs(case, out, reference(case), oracles(case), states=states)


def judge_shapes(target: Target, case: Case) -> Judgement:
    """SHAPE-*: the framework's output/state shapes equal reference.output_shapes (no values compared)."""
    _, out = run_adapter(target, case)
    B, T = case.x.shape[:2]
    spec = output_shapes(case.config, B, T)
    got = {k: _shape_of(getattr(out, k)) for k in ("output", "h", "c")}
    want = {k: _shape_of(spec[k]) for k in ("output", "h", "c")}
    return Judgement(got == want, f"got {got}, spec {want}", {"shapes": got}, kernel_path=out.kernel_path,
                     implicated=_shape_rules(case, got, want))


def judge_params(target: Target, case: Case) -> Judgement:
    """PARAM-*: the framework's own count equals the reference formula of its convention."""
    a = target.adapter
    handle = a.build(case.config, case.weights, variant=target.variant, device=target.device)
    got = int(a.param_count(handle))
    convention = a.param_convention(case.config)
    try:
        want = param_count(case.config, convention)
    except UnsupportedConvention as exc:
        raise Unsupported(str(exc)) from None
    stacked = case.config.num_layers > 1 or case.config.bidirectional
    rule = _PARAM_RULE.get(convention, "PARAM-1")
    return Judgement(got == want, f"framework reports {got} parameters, {convention} formula gives {want}",
                     {"param_count": got, "param_expected": want, "convention": convention},
                     implicated=[rule, "PARAM-5"] if stacked else [rule])


_PARAM_RULE = {"keras": "PARAM-1", "torch": "PARAM-2", "onnx": "PARAM-3", "flax": "PARAM-4"}


def judge_continuation(target: Target, case: Case, split: int, *, stateful: bool) -> Judgement:
    """STATE-2/STATE-3: two calls (state carried explicitly, or kept by a stateful layer) equal one call on
    the joined sequence: the second call against the reference over the whole sequence, second part only
    (running the reference in two parts would restate the property instead of checking it)."""
    cfg, a = case.config, target.adapter
    x1, x2 = case.x[:, :split], case.x[:, split:]
    m1 = m2 = None
    if case.mask is not None:
        m1, m2 = case.mask[:, :split], case.mask[:, split:]
    handle = a.build(cfg, case.weights, variant=target.variant, device=target.device, stateful=stateful)
    first = a.forward(handle, x1, mask=m1, initial_state=case.initial_state, masked_output=case.masked_output)
    carried = None if stateful else [list(zip(hs, cs)) for hs, cs in zip(first.h, first.c)]
    out = a.forward(handle, x2, mask=m2, initial_state=carried, masked_output=case.masked_output)

    def second_part(res):
        return type(res)(output=res.output[:, split:] if cfg.return_sequences else res.output, h=res.h, c=res.c)

    return judge_outputs(case, out, second_part(reference(case)), [second_part(r) for r in oracles(case)],
                         split=split)


#: NUM-5: a layer computes in its declared dtype when it keeps within this many effective mantissa bits of
#: the reference's own (its equally valid roundings) on a well-conditioned case. Calibrated on the numpy, torch
#: and onnxruntime backends (2,000 cases: the correct gap is at most 1.2 bits, spec/numerics.md); a float32
#: layer computing in float16 loses ~12 bits, with TF32-rounded operands ~8, float64 computed in float32 ~29.
PRECISION_BAND_BITS = 4.0


def judge_precision(target: Target, case: Case) -> Judgement:
    """NUM-5: the layer computes in the dtype it declares: it returns that dtype and keeps within
    PRECISION_BAND_BITS of the reference's effective mantissa bits on a well-conditioned case."""
    _, out = run_adapter(target, case)
    dtype = case.config.dtype
    returned = sorted({str(np.asarray(a).dtype) for a in errors.iter_arrays([out.output, out.h, out.c])
                       if np.issubdtype(np.asarray(a).dtype, np.floating)})
    j = judge_outputs(case, out, reference(case), oracles(case))
    if j.inconclusive:
        return j
    bits, own = j.metrics.get("bits"), j.metrics.get("oracle_bits")
    need = None if own is None else own - PRECISION_BAND_BITS
    problems = []
    if returned and returned != [dtype]:
        problems.append(f"returns {'/'.join(returned)} arrays for a {dtype} layer")
    if bits is None or need is None or bits < need:
        problems.append(f"keeps {bits or 0.0:.1f} effective mantissa bits where the {dtype} reference keeps "
                        f"{own or 0.0:.1f} (a {dtype} computation stays within {PRECISION_BAND_BITS:g})")
    metrics = {**j.metrics, "returned_dtypes": returned, "min_bits": need}
    return Judgement(not problems, "; ".join(problems) + (f"; case {case.brief()}" if problems else ""), metrics,
                     kernel_path=j.kernel_path, precision=j.precision, implicated=["NUM-5"] if problems else [])


def judge_defaults(target: Target, config: Config) -> Judgement:
    """DEF-1/DEF-2: a fresh framework layer's own initialisation and default activations."""
    weights, acts = target.adapter.default_weights(config)
    problems, worst_orth = default_init_problems(weights, acts)
    implicated = ["DEF-2"] if any("activation" in p for p in problems) else []
    if any("activation" not in p for p in problems):
        implicated.insert(0, "DEF-1")
    return Judgement(not problems, "; ".join(problems), {"orthogonality_error": worst_orth, **acts},
                     implicated=implicated)
