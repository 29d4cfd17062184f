"""Running and judging one check: the adapter against the reference, by the error model (NUM-1).

The pure part (``run_adapter``, ``reference``, ``oracle``, ``judge_*``) runs a case and returns a
:class:`Judgement`; calibration uses it directly. The :class:`Checker` (the ``check`` fixture of the
properties) adds what a pytest run needs around it: the crash guard, known findings (xfails), repro
blobs and one :class:`~conformance.harness.results.Result` per check.

Hypothesis replays a failing example after shrinking it; only that final, minimal example is recorded as
*fail* (with a saved ``.npz`` repro blob), so a report lists minimal configs, not every shrink step.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import pytest
from hypothesis import reject
from hypothesis.control import current_build_context

from reference import Config, default_init_problems, lstm_forward, output_shapes, param_count
from reference.params import UnsupportedConvention

from ..adapters.base import Adapter, Output, Unsupported
from . import errors
from .attribution import implicate
from .repro import save_blob
from .results import CheckKind, Result, Verdict
from .strategies import Case, cases
from .xfails import XfailEntry, case_facts

__all__ = ["Checker", "CheckFailure", "Judgement", "Target", "run_adapter", "reference", "oracle", "judge_outputs",
           "judge_forward", "judge_shapes", "judge_params", "judge_continuation", "judge_defaults", "judge_precision"]


class CheckFailure(AssertionError):
    pass


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


def reference(case: Case, dtype: str = "float64"):
    return lstm_forward(case.config, case.weights, case.x, mask=case.mask, initial_state=case.initial_state,
                        masked_output=case.masked_output, dtype=dtype)


def oracle(case: Case):
    """The reference as the dtype under test sees the case (errors.oracle_reference, NUM-1)."""
    return errors.oracle_reference(case.config, case.weights, case.x, mask=case.mask,
                                   initial_state=case.initial_state, masked_output=case.masked_output, seed=case.seed)


def oracles(case: Case) -> list:
    """Equally valid roundings of the case (errors.oracle_references, NUM-1 v2): the error model's bar."""
    return errors.oracle_references(case.config, case.weights, case.x, mask=case.mask,
                                    initial_state=case.initial_state, masked_output=case.masked_output,
                                    seed=case.seed)


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
    if cmp.inconclusive:
        return Judgement(False, cmp.inconclusive, metrics, inconclusive=cmp.inconclusive, **paths)
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


#: NUM-5: effective mantissa bits a correct layer keeps on a well-conditioned case (TYPICAL regime, T <= 16),
#: at the output scale; calibrated on the numpy, torch and onnxruntime backends (spec/numerics.md). A float32
#: layer computing in float16 keeps ~10, in bfloat16 ~8, with TF32 matmuls ~11; float64 computed in float32 ~23.
MIN_EFFECTIVE_BITS = {"float16": 8.0, "float32": 17.0, "float64": 44.0}


def judge_precision(target: Target, case: Case) -> Judgement:
    """NUM-5: the layer computes in the dtype it declares: it returns that dtype and keeps at least
    MIN_EFFECTIVE_BITS[dtype] effective mantissa bits on a well-conditioned case."""
    _, out = run_adapter(target, case)
    dtype = case.config.dtype
    returned = sorted({str(np.asarray(a).dtype) for a in errors.iter_arrays([out.output, out.h, out.c])
                       if np.issubdtype(np.asarray(a).dtype, np.floating)})
    j = judge_outputs(case, out, reference(case), oracles(case))
    if j.inconclusive:
        return j
    bits, need = j.metrics.get("bits"), MIN_EFFECTIVE_BITS[dtype]
    problems = []
    if returned and returned != [dtype]:
        problems.append(f"returns {'/'.join(returned)} arrays for a {dtype} layer")
    if bits is None or bits < need:
        problems.append(f"keeps {0.0 if bits is None else bits:.1f} effective mantissa bits on a well-conditioned "
                        f"{dtype} case, a {dtype} computation keeps >= {need:g} (the reference: "
                        f"{j.metrics.get('oracle_bits') or 0:.1f})")
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


# ---- the check fixture -----------------------------------------------------------------------------------
class Sink(Protocol):
    """Where results go: a ResultWriter during a run, a list while replaying a repro blob."""

    run_dir: Any

    def record(self, result: Result) -> None: ...


def _is_final() -> bool:
    try:
        return bool(current_build_context().is_final)
    except Exception:  # not inside a hypothesis test: every call is final
        return True


def _exception_line(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


@dataclass(repr=False)
class Checker:
    """The ``check`` fixture: one method per kind of check, each recording one result."""

    target: Target
    sink: Sink | None
    rules: tuple[str, ...]
    test_id: str
    property: str
    expect_fail: XfailEntry | None = None  # the whole test is a known finding
    case_xfails: tuple[XfailEntry, ...] = ()  # findings that cover only the cases they describe
    save_repros: bool = True

    def __repr__(self) -> str:  # hypothesis prints the fixture in falsifying examples: keep it one word
        return f"check[{self.adapter.name}:{self.variant}]"

    adapter = property(lambda self: self.target.adapter)
    variant = property(lambda self: self.target.variant)
    device = property(lambda self: self.target.device)

    # ---- what a property calls ---------------------------------------------------------------------
    def cases(self, **kw):
        return cases(self.adapter, self.variant, self.device, **kw)

    def require(self, *options: str) -> None:
        """Skip (and record) when the adapter lacks an option this property needs."""
        missing = [o for o in options if o not in self.adapter.capabilities.options]
        if missing:
            reason = f"{self.adapter.name} does not support {', '.join(missing)}"
            self._record(self._result(CheckKind.REQUIREMENTS, Verdict.SKIP, message=reason))
            pytest.skip(reason)

    def forward(self, case: Case, *, states: bool = True) -> None:
        self._check(CheckKind.FORWARD, case, lambda: judge_forward(self.target, case, states=states))

    def shapes(self, case: Case) -> None:
        self._check(CheckKind.SHAPES, case, lambda: judge_shapes(self.target, case))

    def params(self, case: Case) -> None:
        self._check(CheckKind.PARAMS, case, lambda: judge_params(self.target, case))

    def continuation(self, case: Case, split: int, *, stateful: bool) -> None:
        # the split point travels with the case description, so a repro blob replays this exact check
        case = dataclasses.replace(case, extra={**case.extra, "split": split})
        kind = CheckKind.STATEFUL if stateful else CheckKind.CONTINUATION
        self._check(kind, case, lambda: judge_continuation(self.target, case, split, stateful=stateful))

    def precision(self, case: Case) -> None:
        self._check(CheckKind.PRECISION, case, lambda: judge_precision(self.target, case))

    def defaults(self, config: Config) -> None:
        self._check(CheckKind.DEFAULTS, None, lambda: judge_defaults(self.target, config), config=config.to_dict())

    # ---- recording ------------------------------------------------------------------------------------
    def _result(self, kind: CheckKind, verdict: Verdict, *, case: Case | None = None, config: dict | None = None,
                judgement: Judgement | None = None, message: str = "", duration: float = 0.0,
                repro: str | None = None, finding: XfailEntry | None = None) -> Result:
        a = self.adapter
        rules = list(self.rules) + [r for r in a.exercises if r not in self.rules]
        res = Result(adapter=a.name, verdict=verdict, property=self.property, check=kind, test=self.test_id,
                     variant=self.variant, framework=a.framework, versions=a.versions(), device=self.device,
                     rules=rules, message=message, duration=round(duration, 6), repro=repro, config=config,
                     dtype=(config or {}).get("dtype"))
        if judgement is not None:
            res.metrics, res.kernel_path, res.precision = judgement.metrics, judgement.kernel_path, judgement.precision
            if verdict is not Verdict.PASS:
                res.implicated = list(judgement.implicated)
        if finding is not None:  # a known finding names its rule
            res.implicated = [finding.rule]
        if case is not None:
            # every check that runs a case exercises its two activation functions (ACT-*)
            acts = {act.rule for act in (case.config.act, case.config.recurrent_act)} - set(res.rules)
            res.rules += sorted(acts)
            res.config, res.dtype, res.seed = case.describe(), case.config.dtype, case.seed
        return res

    def _record(self, result: Result) -> None:
        if self.sink is not None:
            self.sink.record(result)

    def _case_xfail(self, case: Case | None) -> XfailEntry | None:
        if case is None or not self.case_xfails:
            return None
        facts = case_facts(case.describe(), self.variant)
        return next((e for e in self.case_xfails if e.matches_case(facts)), None)

    def _blob(self, case: Case | None, kind: CheckKind) -> str | None:
        if case is None or self.sink is None or not self.save_repros or self.sink.run_dir is None:
            return None
        return save_blob(self.sink.run_dir, target=self.target, kind=kind, property=self.property,
                         rules=self.rules, case=case)

    def _check(self, kind: CheckKind, case: Case | None, judge: Callable[[], Judgement], *,
               config: dict | None = None) -> None:
        """Run ``judge`` and record its verdict. Unsupported -> reject the draw; an adapter exception is a
        crash (recorded when final, then re-raised); a known finding is recorded as xfail."""
        t0 = time.perf_counter()
        record = lambda verdict, **kw: self._record(self._result(  # noqa: E731
            kind, verdict, case=case, config=config, duration=time.perf_counter() - t0, **kw))
        try:
            j = judge()
        except Unsupported:
            reject()
        except Exception as exc:  # noqa: BLE001 - an adapter crash is a result, recorded then re-raised
            message = f"{self.adapter.name} raised {_exception_line(exc)}"
            entry = self._case_xfail(case)
            if entry is not None:  # a known crash for this kind of case: recorded, the test goes on
                record(Verdict.XFAIL, message=f"{entry.describe()}: {message}", finding=entry)
                reject()
            if _is_final():
                verdict = Verdict.XFAIL if self.expect_fail else Verdict.CRASH
                record(verdict, message=message, repro=self._blob(case, kind), finding=self.expect_fail)
            raise
        if j.ok:
            record(Verdict.PASS, judgement=j)
            return
        if j.inconclusive:  # proves nothing either way: counted and shown, never a pass or a fail
            record(Verdict.INCONCLUSIVE, judgement=j, message=j.inconclusive)
            return
        entry = self._case_xfail(case)
        if entry is not None:  # a known disagreement for this kind of case: recorded, the test goes on
            record(Verdict.XFAIL, judgement=j, message=f"{entry.describe()}: {j.message}", finding=entry)
            return
        if not _is_final():
            raise CheckFailure(j.message)  # hypothesis is still shrinking: record only the minimal example
        repro = self._blob(case, kind)
        record(Verdict.XFAIL if self.expect_fail else Verdict.FAIL, judgement=j, message=j.message, repro=repro,
               finding=self.expect_fail)
        where = f"\n  repro: lstm-conformance repro {self.sink.run_dir / repro}" if repro else ""
        named = j.implicated or list(self.rules)
        raise CheckFailure(f"[{', '.join(named)}] {self.adapter.name}:{self.variant} {self.property}: "
                           f"{j.message}{where}")
