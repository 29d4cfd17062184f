"""The ``check`` fixture: one method per kind of check, each judging a case (:mod:`.judge`) and recording
one :class:`~conformance.harness.results.Result`, with the crash guard, known findings (xfails) and repro
blobs around it.

Hypothesis replays a failing example after shrinking it; only that final, minimal example is recorded as
*fail* (with a saved ``.npz`` repro blob), so a report lists minimal configs, not every shrink step.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import pytest
from hypothesis import reject
from hypothesis.control import current_build_context

from reference import Config

from ..adapters.base import Unsupported
from .gradient_judge import judge_gradients
from .training_judge import MASK_READINGS, judge_training
from .judge import (Judgement, Target, judge_continuation, judge_defaults, judge_forward, judge_params,
                    judge_precision, judge_shapes)
from .repro import keep_artifacts, save_blob
from .results import CheckKind, Result, Verdict
from .strategies import Case, cases
from .xfails import XfailEntry, case_facts

__all__ = ["Checker", "CheckFailure", "Sink"]


class CheckFailure(AssertionError):
    pass


#: a test stops (pytest skip, with the finding named) once this many cases in a row, from its first, were one
#: known crash: drawing on would record hundreds more of the same crash (e.g. every Bidirectional case on a
#: release whose Bidirectional cannot be called) while hypothesis looks for a case that does not crash
KNOWN_CRASH_STOP = 5


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
    """The framework's own exception, type and first line of its message. Not the last line of
    format_exception_only: notes added to an exception (JAX's traceback-filtering note) come after it."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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
    #: per finding (entry.source): how many cases it describes passed / failed as known, so a finding whose
    #: cases all pass now is reported as *fixed here* (plugin terminal summary and run.json)
    finding_stats: dict | None = None
    #: how the failure being replayed was shrunk (set by the plugin before hypothesis' final call): the time
    #: bound, shrink steps run and whether the bound stopped them; added to the failing record's metrics
    shrink: dict | None = None
    #: known crashes recorded by this test and checks that ended any other way (pass, fail, inconclusive,
    #: a known disagreement): a test whose every case is a known crash stops after KNOWN_CRASH_STOP of them
    known_crashes: int = 0
    other_outcomes: int = 0

    def __repr__(self) -> str:  # hypothesis prints the fixture in falsifying examples: keep it one word
        return f"check[{self.adapter.name}:{self.variant}]"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis' pretty printer looks for this first
        printer.text(repr(self))

    adapter = property(lambda self: self.target.adapter)
    variant = property(lambda self: self.target.variant)
    device = property(lambda self: self.target.device)

    # ---- what a property calls ---------------------------------------------------------------------
    def cases(self, **kw):
        return cases(self.adapter, self.variant, self.device, **kw)

    def require(self, *options: str) -> None:
        """Skip (and record) when the adapter lacks an option this property needs."""
        missing = [o for o in options if o not in self.adapter.variant_options(self.variant)]
        if missing:  # named with the variant only where the adapter's other variants have the option
            who = self.adapter.name + ("" if any(o not in self.adapter.capabilities.options for o in missing)
                                       else f":{self.variant}")
            reason = f"{who} does not support {', '.join(missing)}"
            self._record(self._result(CheckKind.REQUIREMENTS, Verdict.SKIP, message=reason))
            pytest.skip(reason)

    def require_gradients(self) -> None:
        """Skip (and record) when the adapter computes no gradients on this variant (an inference runtime):
        asked with the simplest config it runs; a reason that depends on the case rejects that case only."""
        caps = self.adapter.capabilities
        probe = Config(input_dim=1, units=1, dtype=caps.dtypes[0])
        reason = self.adapter.gradient_unsupported_reason(probe, self.variant, self.device)
        if reason:
            self._record(self._result(CheckKind.GRADIENT, Verdict.SKIP, message=reason))
            pytest.skip(reason)

    def require_param_count(self) -> None:
        """Skip (and record) when the adapter reports no parameter count on this variant at all (an exported
        loop graph whose constants include the exporter's own), instead of refusing every draw."""
        reason = self.adapter.param_count_unsupported_reason(self.variant)
        if reason:
            self._record(self._result(CheckKind.PARAMS, Verdict.SKIP, message=reason))
            pytest.skip(reason)

    def gradients(self, case: Case, *, training: bool = False) -> None:
        """GRAD-1/GRAD-2 (and GRAD-3 with ``split``: chained calls): the adapter's gradients of the case's loss."""
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self._check(CheckKind.GRADIENT, case, lambda: judge_gradients(self.target, case, training=training))

    def require_dropout(self, *, mask_reading: bool = False) -> None:
        """Skip (and record) when the adapter has no dropout options on this variant (TRAIN-*), or, with
        ``mask_reading``, no text on how its dropout masks are shared across timesteps (TRAIN-4)."""
        caps = self.adapter.capabilities
        probe = Config(input_dim=1, units=1, dtype=caps.dtypes[0])
        reason = self.adapter.dropout_unsupported_reason(probe, self.variant, self.device)
        if not reason and mask_reading and self.adapter.framework not in MASK_READINGS:
            reason = f"{self.adapter.name}: no text on how its dropout masks are shared across timesteps (TRAIN-4)"
        if reason:
            self._record(self._result(CheckKind.TRAINING, Verdict.SKIP, message=reason))
            pytest.skip(reason)

    def dropout_inference(self, case: Case, *, dropout: float, recurrent_dropout: float) -> None:
        """TRAIN-1: a layer built with dropout, called in inference mode, is the reference (twice, identically)."""
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self.training(case, "inference", dropout=dropout, recurrent_dropout=recurrent_dropout)

    def training_at_rate_zero(self, case: Case) -> None:
        """TRAIN-2: a training-mode call with both rates 0 is the reference."""
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self.training(case, "rate-zero")

    def training_runs(self, case: Case, *, dropout: float, recurrent_dropout: float) -> None:
        """TRAIN-3: training-mode forward and gradient calls run; dropout acts where the text puts it."""
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self.training(case, "runs", dropout=dropout, recurrent_dropout=recurrent_dropout)

    def dropout_mask_sharing(self, case: Case, *, dropout: float, recurrent_dropout: float) -> None:
        """TRAIN-4: one dropout mask per sequence, read off a training-mode gradient's zero columns."""
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self.training(case, "mask-sharing", dropout=dropout, recurrent_dropout=recurrent_dropout)

    def training(self, case: Case, which: str | None = None, **rates: float) -> None:
        """The TRAIN check ``which`` (training_judge.TRAIN_CHECKS); its parameters go into the case description,
        so a repro blob replays it (repro calls this with the case alone)."""
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        extra = {**case.extra, **rates} if which is None else {**case.extra, "train_check": which, **rates}
        case = dataclasses.replace(case, extra=extra)
        self._check(CheckKind.TRAINING, case, lambda: judge_training(self.target, case))

    def chained_gradients(self, case: Case, split: int) -> None:
        """GRAD-3: gradients of two calls chained through the carried state equal one call's."""
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        case = dataclasses.replace(case, extra={**case.extra, "split": split})
        self._check(CheckKind.GRADIENT, case, lambda: judge_gradients(self.target, case))

    def forward(self, case: Case, *, states: bool = True) -> None:
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self._check(CheckKind.FORWARD, case, lambda: judge_forward(self.target, case, states=states))

    def shapes(self, case: Case) -> None:
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self._check(CheckKind.SHAPES, case, lambda: judge_shapes(self.target, case))

    def params(self, case: Case) -> None:
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self._check(CheckKind.PARAMS, case, lambda: judge_params(self.target, case))

    def continuation(self, case: Case, split: int, *, stateful: bool) -> None:
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        # the split point travels with the case description, so a repro blob replays this exact check
        case = dataclasses.replace(case, extra={**case.extra, "split": split})
        kind = CheckKind.STATEFUL if stateful else CheckKind.CONTINUATION
        self._check(kind, case, lambda: judge_continuation(self.target, case, split, stateful=stateful))

    def precision(self, case: Case) -> None:
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self._check(CheckKind.PRECISION, case, lambda: judge_precision(self.target, case))

    def defaults(self, config: Config) -> None:
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        self._check(CheckKind.DEFAULTS, None, lambda: judge_defaults(self.target, config), config=config.to_dict())

    # ---- recording ------------------------------------------------------------------------------------
    def _result(self, kind: CheckKind, verdict: Verdict, *, case: Case | None = None, config: dict | None = None,
                judgement: Judgement | None = None, message: str = "", duration: float = 0.0,
                repro: str | None = None, finding: XfailEntry | None = None, traceback: str | None = None) -> Result:
        a = self.adapter
        rules = list(self.rules) + [r for r in a.exercises if r not in self.rules]
        res = Result(adapter=a.name, verdict=verdict, property=self.property, check=kind, test=self.test_id,
                     variant=self.variant, framework=a.framework, versions=a.versions(), device=self.device,
                     rules=rules, message=message, duration=round(duration, 6), repro=repro, config=config,
                     dtype=(config or {}).get("dtype"), traceback=traceback)
        if judgement is not None:
            res.metrics, res.kernel_path, res.precision = judgement.metrics, judgement.kernel_path, judgement.precision
            if verdict is not Verdict.PASS:
                res.implicated = list(judgement.implicated)
        if finding is not None:  # a known finding names its rule
            res.implicated = [finding.rule]
        if self.shrink is not None and (verdict in (Verdict.FAIL, Verdict.CRASH) or
                                        (verdict is Verdict.XFAIL and self.expect_fail is not None)):
            res.metrics = {**res.metrics, "shrink": dict(self.shrink)}
        if case is not None:
            # every check that runs a case exercises its two activation functions (ACT-*)
            acts = {act.rule for act in (case.config.act, case.config.recurrent_act)} - set(res.rules)
            res.rules += sorted(acts)
            res.config, res.dtype, res.seed = case.describe(), case.config.dtype, case.seed
        return res

    def _record(self, result: Result) -> None:
        if self.sink is not None:
            self.sink.record(result)

    def _count_finding(self, case: Case | None, outcome: str, entry: XfailEntry | None = None) -> None:
        entry = entry or self._case_xfail(case)
        if entry is not None and self.finding_stats is not None:
            stats = self.finding_stats.setdefault(entry.source, {"rule": entry.rule, "versions": entry.versions,
                                                                 "pass": 0, "xfail": 0})
            stats[outcome] += 1

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
        __tracebackhide__ = True  # a failure shows the property's line and the message, not the harness
        t0 = time.perf_counter()
        known = f"{self.expect_fail.describe()}: " if self.expect_fail else ""  # the whole test is a finding
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
                self._count_finding(case, "xfail", entry)
                self.known_crashes += 1
                if self.known_crashes >= KNOWN_CRASH_STOP and not self.other_outcomes:
                    pytest.skip(f"stopped after {self.known_crashes} cases, each the known crash "
                                f"{entry.describe()} (no case of this test ran without it)")
                reject()
            if _is_final():
                verdict = Verdict.XFAIL if self.expect_fail else Verdict.CRASH
                record(verdict, message=known + message, repro=self._blob(case, kind), finding=self.expect_fail,
                       traceback="".join(traceback.format_exception(exc)))
            raise
        self.other_outcomes += 1  # the call ran: a pass, a fail or a known disagreement, not a known crash
        if j.ok:
            record(Verdict.PASS, judgement=j)
            self._count_finding(case, "pass")
            return
        if j.inconclusive:  # proves nothing either way: counted and shown, never a pass or a fail
            record(Verdict.INCONCLUSIVE, judgement=j, message=j.inconclusive)
            return
        entry = self._case_xfail(case)
        if entry is not None:  # a known disagreement for this kind of case: recorded, the test goes on
            _diagnose(self, kind, case, j, None, entry)
            record(Verdict.XFAIL, judgement=j, message=f"{entry.describe()}: {j.message}", finding=entry)
            self._count_finding(case, "xfail", entry)
            return
        if not _is_final():
            raise CheckFailure(j.message)  # hypothesis is still shrinking: record only the minimal example
        repro = self._blob(case, kind)
        if repro:  # before the diagnosis runs the adapter again: the files of this (the final) call
            keep_artifacts(self.sink.run_dir, repro, self.adapter.artifacts())
        _diagnose(self, kind, case, j, repro, self.expect_fail)
        record(Verdict.XFAIL if self.expect_fail else Verdict.FAIL, judgement=j, message=known + j.message,
               repro=repro, finding=self.expect_fail)
        where = f"\n  repro: lstm-conformance repro {self.sink.run_dir / repro}" if repro else ""
        diag = (j.metrics or {}).get("diagnosis")
        if diag:
            from ..diagnosis.engine import Diagnosis

            where += f"\n  diagnosis: {Diagnosis(**diag).summary()}" + "".join(f"\n    {r}" for r in diag["readings"])
        named = j.implicated or list(self.rules)
        raise CheckFailure(f"[{', '.join(named)}] {self.adapter.name}:{self.variant} {self.property}: "
                           f"{j.message}{where}")


def _diagnose(checker: Checker, kind: CheckKind, case: Case | None, j: Judgement, repro: str | None,
              finding: XfailEntry | None) -> None:
    """The diagnosis call-out (conformance/diagnosis): which semantic variant reproduces this failure."""
    from ..diagnosis.record import attach_diagnosis

    attach_diagnosis(checker.target, kind, case, j, checker.sink, repro, finding)
