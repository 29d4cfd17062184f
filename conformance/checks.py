"""The comparison and recording of one check: adapter vs reference, judged by the error model.

Properties (``conformance/test_*.py``) draw a :class:`~conformance.strategies.Case` and call one method of
the :class:`Checker` fixture; the checker runs the adapter and the reference, compares, writes one result
line and fails the test with a message naming the rules, the numbers and the repro command.

Hypothesis replays a failing example after shrinking it; only that final, minimal example is recorded as
*fail* (with a saved ``.npz`` repro blob), so a report lists minimal configs, not every shrink step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import reject
from hypothesis.control import current_build_context

from reference import Config, lstm_forward, output_shapes, param_count
from reference.params import UnsupportedConvention

from . import errors
from .adapters.base import Adapter, Output, Unsupported
from .recording import ResultWriter
from .strategies import Case, cases
from .xfails import case_facts

__all__ = ["Checker", "CheckFailure"]


class CheckFailure(AssertionError):
    pass


def _is_final() -> bool:
    try:
        return bool(current_build_context().is_final)
    except Exception:  # not inside a hypothesis test: every call is final
        return True


def _shape_of(obj):
    if isinstance(obj, (tuple, list)):
        return [_shape_of(o) for o in obj]
    return list(np.shape(obj))


@dataclass
class Checker:
    adapter: Adapter
    variant: str
    device: str
    writer: ResultWriter | None
    rules: tuple[str, ...]
    test_id: str
    expect_fail: str | None = None  # an xfail entry's reason: failures are recorded as xfail
    case_xfails: tuple = ()  # xfail entries with a WHEN: only the cases they describe are expected to fail

    # ---- helpers ----------------------------------------------------------------------------
    def cases(self, **kw):
        return cases(self.adapter, self.variant, self.device, **kw)

    def require(self, *options: str) -> None:
        """Skip (and record) when the adapter lacks an option this property needs."""
        missing = [o for o in options if o not in self.adapter.capabilities.options]
        if missing:
            reason = f"{self.adapter.name} does not support {', '.join(missing)}"
            self._record(property_="requirements", verdict="skip", message=reason)
            pytest.skip(reason)

    def _base(self) -> dict:
        a = self.adapter
        return {"adapter": a.name, "variant": self.variant, "framework": a.framework, "versions": a.versions(),
                "device": self.device, "rules": list(self.rules) + [r for r in a.exercises if r not in self.rules],
                "test": self.test_id}

    def _record(self, *, property_: str, verdict: str, message: str = "", case: Case | None = None,
                metrics: dict | None = None, kernel_path: str | None = None, precision: str | None = None,
                duration: float = 0.0, repro: str | None = None, config: dict | None = None) -> None:
        if self.writer is None:
            return
        rec = self._base()
        rec.update(property=property_, verdict=verdict, message=message, duration=round(duration, 6),
                   kernel_path=kernel_path, precision=precision, metrics=metrics or {}, repro=repro)
        if case is not None:
            # every check that runs a case exercises its two activation functions (ACT-*)
            acts = [a.rule for a in (case.config.act, case.config.recurrent_act) if a.rule not in rec["rules"]]
            rec["rules"] = rec["rules"] + sorted(set(acts))
            rec["config"] = case.describe()
            rec["dtype"] = case.config.dtype
            rec["seed"] = case.seed
        elif config is not None:
            rec["config"] = config
            rec["dtype"] = config.get("dtype")
        self.writer.record(rec)

    def _save_repro(self, case: Case, property_: str) -> str | None:
        if self.writer is None:
            return None
        arrays = case.arrays()
        digest = hashlib.sha1(b"".join(np.ascontiguousarray(v).tobytes() for v in arrays.values())).hexdigest()[:12]
        name = f"{self.adapter.name}-{self.variant}-{property_}-{digest}".replace(":", "_").replace("/", "_")
        path = self.writer.run_dir / "repro" / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"adapter": self.adapter.name, "variant": self.variant, "device": self.device,
                "property": property_, "rules": list(self.rules), "case": case.describe()}
        import json
        np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)
        return str(path.relative_to(self.writer.run_dir))

    def _verdict_fail(self) -> str:
        return "xfail" if self.expect_fail else "fail"

    def _case_xfail(self, case: Case | None):
        """The WHEN xfail entry describing ``case``, if any (conformance/xfails)."""
        if case is None or not self.case_xfails:
            return None
        facts = case_facts(case.describe(), self.variant)
        return next((e for e in self.case_xfails if e.matches_case(facts)), None)

    def _record_case_xfail(self, entry, case: Case, property_: str, message: str, t0: float, **kw) -> None:
        self._record(property_=property_, verdict="xfail", case=case, duration=time.perf_counter() - t0,
                     message=f"{entry.rule} [{entry.versions}] {entry.reason} ({entry.source}): {message}", **kw)

    def _guard(self, fn: Callable[[], Any], case: Case | None, property_: str, t0: float):
        """Run adapter code: Unsupported -> reject the draw; other exceptions -> crash (recorded when final)."""
        try:
            return fn()
        except Unsupported:
            reject()
        except Exception as exc:  # noqa: BLE001 - an adapter crash is a result, recorded then re-raised
            entry = self._case_xfail(case)
            if entry is not None:  # a known crash for this kind of case: recorded, the test goes on
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self._record_case_xfail(entry, case, property_, f"{self.adapter.name} raised {tb}", t0)
                reject()
            if _is_final():
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                repro = self._save_repro(case, property_) if case is not None else None
                self._record(property_=property_, verdict="crash" if not self.expect_fail else "xfail",
                             message=f"{self.adapter.name} raised {tb}", case=case, duration=time.perf_counter() - t0,
                             repro=repro)
            raise

    def _finish(self, *, property_: str, case: Case | None, ok: bool, message: str, metrics: dict, t0: float,
                kernel_path: str | None = None, precision: str | None = None, config: dict | None = None) -> None:
        duration = time.perf_counter() - t0
        if ok:
            self._record(property_=property_, verdict="pass", case=case, metrics=metrics, kernel_path=kernel_path,
                         precision=precision, duration=duration, config=config)
            return
        entry = self._case_xfail(case)
        if entry is not None:  # a known disagreement for this kind of case: recorded, the test goes on
            self._record_case_xfail(entry, case, property_, message, t0, metrics=metrics, kernel_path=kernel_path,
                                    precision=precision)
            return
        if not _is_final():
            raise CheckFailure(message)  # hypothesis is still shrinking: record only the minimal example
        repro = self._save_repro(case, property_) if case is not None else None
        self._record(property_=property_, verdict=self._verdict_fail(), message=message, case=case, metrics=metrics,
                     kernel_path=kernel_path, precision=precision, duration=duration, repro=repro, config=config)
        where = f"\n  repro: lstm-conformance repro {self.writer.run_dir / repro}" if repro and self.writer else ""
        raise CheckFailure(f"[{', '.join(self.rules)}] {self.adapter.name}:{self.variant} {property_}: {message}{where}")

    # ---- running both sides --------------------------------------------------------------------
    def reference(self, case: Case, x=None, mask="case", initial_state="case", dtype=None):
        return lstm_forward(case.config, case.weights, case.x if x is None else x,
                            mask=case.mask if isinstance(mask, str) else mask,
                            initial_state=case.initial_state if isinstance(initial_state, str) else initial_state,
                            masked_output=case.masked_output, dtype=dtype or "float64")

    def oracle(self, case: Case, x=None, mask="case", initial_state="case"):
        """The reference as the dtype under test sees the case (errors.oracle_reference, NUM-1)."""
        return errors.oracle_reference(case.config, case.weights, case.x if x is None else x,
                                       mask=case.mask if isinstance(mask, str) else mask,
                                       initial_state=case.initial_state if isinstance(initial_state, str) else initial_state,
                                       masked_output=case.masked_output, seed=case.seed)

    def run_adapter(self, case: Case, *, stateful: bool = False) -> tuple[Any, Output]:
        handle = self.adapter.build(case.config, case.weights, variant=self.variant, device=self.device,
                                    stateful=stateful)
        out = self.adapter.forward(handle, case.x, mask=case.mask, initial_state=case.initial_state,
                                   masked_output=case.masked_output)
        return handle, out

    def _judge(self, case: Case, impl_flat: np.ndarray, ref64_flat: np.ndarray, refdt_flat: np.ndarray) -> errors.Comparison:
        return errors.compare(impl_flat, ref64_flat, refdt_flat, case.config.dtype)

    @staticmethod
    def _metrics(cmp: errors.Comparison, **extra) -> dict:
        d = cmp.to_dict()
        d.update(extra)
        return d

    def _compare_outputs(self, case: Case, out: Output, ref64, refdt, *, states: bool = True):
        """Shape check first (a wrong shape is its own message), then the error model."""
        got_shapes = {"output": _shape_of(out.output)}
        want_shapes = {"output": _shape_of(ref64.output)}
        parts_impl, parts_64, parts_dt = [out.output], [ref64.output], [refdt.output]
        if states:
            got_shapes.update(h=_shape_of(out.h), c=_shape_of(out.c))
            want_shapes.update(h=_shape_of(ref64.h), c=_shape_of(ref64.c))
            parts_impl += [out.h, out.c]
            parts_64 += [ref64.h, ref64.c]
            parts_dt += [refdt.h, refdt.c]
        if got_shapes != want_shapes:
            return None, f"shapes differ: got {got_shapes}, reference {want_shapes}", {"shapes": got_shapes}
        cmp = self._judge(case, errors.flatten_outputs(parts_impl), errors.flatten_outputs(parts_64),
                          errors.flatten_outputs(parts_dt))
        msg = "" if cmp.passed else (
            f"ratio {cmp.ratio:.3g} > K={errors.K:g} (err_impl {cmp.err_impl:.3g}, err_oracle {cmp.err_oracle:.3g}, "
            f"floor {cmp.floor:.3g}){'; ' + cmp.note if cmp.note else ''}; case {case.describe()}")
        return cmp, msg, {"shapes": got_shapes}

    # ---- checks ----------------------------------------------------------------------------------
    def forward(self, case: Case, *, property_: str = "forward", states: bool = True) -> None:
        """Outputs and final (h, c) per layer and direction vs the reference (GATE-*, STATE-4 ...)."""
        t0 = time.perf_counter()
        _, out = self._guard(lambda: self.run_adapter(case), case, property_, t0)
        ref64 = self.reference(case)
        refdt = self.oracle(case)
        cmp, msg, extra = self._compare_outputs(case, out, ref64, refdt, states=states)
        metrics = self._metrics(cmp, **extra) if cmp else extra
        self._finish(property_=property_, case=case, ok=bool(cmp and cmp.passed), message=msg, metrics=metrics, t0=t0,
                     kernel_path=out.kernel_path, precision=out.precision)

    def shapes(self, case: Case) -> None:
        """SHAPE-*: the framework's output/state shapes equal reference.output_shapes (no math compared)."""
        t0 = time.perf_counter()
        _, out = self._guard(lambda: self.run_adapter(case), case, "shapes", t0)
        B, T = case.x.shape[:2]
        want = output_shapes(case.config, B, T)
        got = {"output": _shape_of(out.output), "h": _shape_of(out.h), "c": _shape_of(out.c)}
        exp = {"output": _shape_of_tuple(want["output"]), "h": _shape_of_tuple(want["h"]), "c": _shape_of_tuple(want["c"])}
        ok = got == exp
        self._finish(property_="shapes", case=case, ok=ok, message=f"got {got}, spec {exp}", metrics={"shapes": got},
                     t0=t0, kernel_path=out.kernel_path)

    def params(self, case: Case) -> None:
        """PARAM-*: the framework's own count equals the reference formula of its convention."""
        t0 = time.perf_counter()
        handle = self._guard(lambda: self.adapter.build(case.config, case.weights, variant=self.variant,
                                                        device=self.device), case, "params", t0)
        got = self._guard(lambda: int(self.adapter.param_count(handle)), case, "params", t0)
        convention = self.adapter.param_convention(case.config)
        try:
            want = param_count(case.config, convention)
        except UnsupportedConvention:
            reject()
        ok = got == want
        self._finish(property_="params", case=case, ok=ok,
                     message=f"framework reports {got} parameters, {convention} formula gives {want}",
                     metrics={"param_count": got, "param_expected": want, "convention": convention}, t0=t0)

    def continuation(self, case: Case, split: int, *, stateful: bool) -> None:
        """STATE-2/STATE-3: two calls (state carried explicitly, or kept by a stateful layer) equal one call
        on the joined sequence. Compares the second call's output and final states with the reference's
        run on the whole sequence. (With masks only the 'zero' rule continues exactly: a 'carry' output
        restarts from zeros at each call, MASK-2.)"""
        t0 = time.perf_counter()
        # the split point travels with the case description, so a repro blob can replay this exact check
        case = dataclasses.replace(case, extra={**case.extra, "split": split})
        cfg = case.config
        x1, x2 = case.x[:, :split], case.x[:, split:]
        m1 = m2 = None
        if case.mask is not None:
            m1, m2 = case.mask[:, :split], case.mask[:, split:]

        def run():
            handle = self.adapter.build(cfg, case.weights, variant=self.variant, device=self.device, stateful=stateful)
            first = self.adapter.forward(handle, x1, mask=m1, initial_state=case.initial_state,
                                         masked_output=case.masked_output)
            carried = None if stateful else [list(zip(hs, cs)) for hs, cs in zip(first.h, first.c)]
            return self.adapter.forward(handle, x2, mask=m2, initial_state=carried, masked_output=case.masked_output)

        out = self._guard(run, case, "continuation", t0)
        # The joined run: the reference over x1 then from its final state over x2 would restate the property;
        # instead the expectation is the reference over the whole sequence, second part only.
        whole64 = self.reference(case)
        wholedt = self.oracle(case)

        def second_part(res):
            o = res.output
            if cfg.return_sequences:
                o = o[:, split:]
            return type(res)(output=o, h=res.h, c=res.c)

        r64, rdt = second_part(whole64), second_part(wholedt)
        cmp, msg, extra = self._compare_outputs(case, out, r64, rdt)
        metrics = self._metrics(cmp, split=split, **extra) if cmp else extra
        self._finish(property_="stateful" if stateful else "continuation", case=case, ok=bool(cmp and cmp.passed),
                     message=msg, metrics=metrics, t0=t0, kernel_path=out.kernel_path, precision=out.precision)

    def defaults(self, config: Config) -> None:
        """DEF-1/DEF-2: a fresh framework layer's own initialisation and default activations."""
        t0 = time.perf_counter()
        weights, acts = self._guard(lambda: self.adapter.default_weights(config), None, "defaults", t0)
        problems = []
        if acts.get("activation") != "tanh":
            problems.append(f"default activation computes {acts.get('activation')}, spec DEF-2 says tanh")
        if acts.get("recurrent_activation") != "sigmoid":
            problems.append(f"default recurrent_activation computes {acts.get('recurrent_activation')}, spec DEF-2 says sigmoid")
        worst_orth = 0.0
        for l, dirs in enumerate(weights.layers):
            for d, lw in enumerate(dirs):
                if lw.b is not None:
                    b = lw.b + (lw.b2 if lw.b2 is not None else 0)
                    if not np.all(b[1] == 1.0):
                        problems.append(f"l{l} d{d}: forget-gate bias not exactly 1 (min {b[1].min()}, max {b[1].max()})")
                    others = np.abs(b[[0, 2, 3]]).max()
                    if others != 0:
                        problems.append(f"l{l} d{d}: non-forget biases not 0 (max |b| {others})")
                rk = lw.U.transpose(2, 0, 1).reshape(lw.U.shape[2], -1)  # Keras (h, 4u)
                gram = rk @ rk.T
                worst_orth = max(worst_orth, float(np.abs(gram - np.eye(gram.shape[0])).max()))
        if worst_orth > 1e-4:
            problems.append(f"recurrent kernel not orthogonal: max |K K^T - I| = {worst_orth:.3g}")
        self._finish(property_="defaults", case=None, ok=not problems, message="; ".join(problems),
                     metrics={"orthogonality_error": worst_orth, **acts}, t0=t0, config=config.to_dict())


def _shape_of_tuple(obj):
    if isinstance(obj, tuple) and all(isinstance(v, int) for v in obj):
        return list(obj)
    if isinstance(obj, (tuple, list)):
        return [_shape_of_tuple(o) for o in obj]
    return obj
