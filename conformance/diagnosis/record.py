"""Diagnosis of recorded checks: the call-out the ``check`` fixture makes for every fail and xfail, the
implementation's outputs kept in the repro blob, and parameter-count readings.

A blob written before outputs were kept has no ``out_*`` arrays: ``lstm-conformance diagnose`` then runs
its adapter again (when installed here). The outputs are stored as ``out_output`` (``out_output_0``,
``out_output_1`` for merge_mode 'none'), ``out_h_l{l}_d{d}`` and ``out_c_l{l}_d{d}``.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from reference import CONVENTIONS, LSTMResult, param_count

from ..harness.results import CheckKind
from .engine import DEFAULT_BUDGET_S, Diagnosis, diagnose

__all__ = ["attach_diagnosis", "diagnose_check", "store_outputs", "load_outputs", "params_diagnosis",
           "budget_s", "XFAIL_DIAGNOSES_PER_FINDING"]

#: xfails of one finding in one test that get a full diagnosis (the rest say they were not diagnosed)
XFAIL_DIAGNOSES_PER_FINDING = 3
_xfail_counts: dict[tuple, int] = {}


def budget_s() -> float:
    """CPU-seconds budget of one diagnosis: ``LSTM_DIAGNOSE_BUDGET_S`` (0 turns diagnosis off)."""
    try:
        return float(os.environ.get("LSTM_DIAGNOSE_BUDGET_S", DEFAULT_BUDGET_S))
    except ValueError:
        return DEFAULT_BUDGET_S


# ---- the implementation's outputs in a blob ---------------------------------------------------------------
def store_outputs(path: Path, out) -> None:
    """Add the implementation's outputs to the blob at ``path`` (rewritten with its other arrays)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("out_")}
    outputs = out.output if isinstance(out.output, (tuple, list)) else None
    if outputs is None:
        arrays["out_output"] = np.asarray(out.output)
    else:
        for d, o in enumerate(outputs):
            arrays[f"out_output_{d}"] = np.asarray(o)
    for name in ("h", "c"):
        for layer, dirs in enumerate(getattr(out, name) or []):
            for d, a in enumerate(dirs):
                arrays[f"out_{name}_l{layer}_d{d}"] = np.asarray(a)
    np.savez(path, **arrays)


def load_outputs(path: Path) -> LSTMResult | None:
    """The implementation's outputs kept in the blob, or None for a blob written without them."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k.startswith("out_")}
    if not arrays:
        return None
    output = arrays.get("out_output")
    if output is None:
        output = tuple(arrays[f"out_output_{d}"] for d in range(2) if f"out_output_{d}" in arrays)

    def states(name: str) -> list[list[np.ndarray]]:
        out, layer = [], 0
        while f"out_{name}_l{layer}_d0" in arrays:
            out.append([arrays[f"out_{name}_l{layer}_d{d}"] for d in range(2) if f"out_{name}_l{layer}_d{d}" in arrays])
            layer += 1
        return out

    return LSTMResult(output=output, h=states("h"), c=states("c"))


# ---- diagnosing one check ---------------------------------------------------------------------------------
def _second_part(split: int, return_sequences: bool):
    def view(res):
        return type(res)(output=res.output[:, split:] if return_sequences else res.output, h=res.h, c=res.c)
    return view


def implementation_output(target, kind: CheckKind, case):
    """(outputs, view) of the adapter on the case as the check ran it; ``view`` maps a reference result to
    what was compared. None for a check kind with no value comparison."""
    from ..harness.judge import run_adapter

    if kind in (CheckKind.FORWARD, CheckKind.PRECISION):
        return run_adapter(target, case)[1], None
    split = case.extra.get("split")
    if kind in (CheckKind.CONTINUATION, CheckKind.STATEFUL) and split:
        split, cfg, a = int(split), case.config, target.adapter
        stateful = kind is CheckKind.STATEFUL
        m1 = m2 = None
        if case.mask is not None:
            m1, m2 = case.mask[:, :split], case.mask[:, split:]
        handle = a.build(cfg, case.weights, variant=target.variant, device=target.device, stateful=stateful)
        first = a.forward(handle, case.x[:, :split], mask=m1, initial_state=case.initial_state,
                          masked_output=case.masked_output)
        carried = None if stateful else [list(zip(hs, cs)) for hs, cs in zip(first.h, first.c)]
        out = a.forward(handle, case.x[:, split:], mask=m2, initial_state=carried, masked_output=case.masked_output)
        return out, _second_part(split, cfg.return_sequences)
    return None


def diagnose_check(kind: CheckKind, case, out, metrics: dict | None = None, *, budget: float | None = None,
                   view=None, memo: bool = False) -> Diagnosis:
    """The diagnosis of one check's outputs (or, for a parameter count, of its numbers)."""
    budget = budget_s() if budget is None else budget
    if kind is CheckKind.PARAMS:
        return params_diagnosis(case.config, (metrics or {}).get("param_count"), (metrics or {}).get("convention"))
    if out is None:
        return Diagnosis("not-diagnosed", message=f"a {kind.value} check compares no values", budget_s=budget)
    if view is None and kind in (CheckKind.CONTINUATION, CheckKind.STATEFUL) and case.extra.get("split"):
        view = _second_part(int(case.extra["split"]), case.config.return_sequences)
    if memo:  # the check's own reference and oracles, memoised by the judge
        from ..harness.judge import oracles, reference

        return diagnose(case, out, view=view, budget_s=budget, oracles=oracles(case), spec=reference(case),
                        precision=kind is CheckKind.PRECISION)
    return diagnose(case, out, view=view, budget_s=budget, precision=kind is CheckKind.PRECISION)


def attach_diagnosis(target, kind: CheckKind, case, judgement, sink=None, repro: str | None = None,
                     finding=None) -> None:
    """Diagnose a failed or known-failing check in place: ``judgement.metrics['diagnosis']`` and, when the
    diagnosis is confident, its rules as ``judgement.implicated``. Never raises: a diagnosis that
    cannot run says why. The implementation's outputs go into the repro blob when there is one."""
    budget = budget_s()
    if case is None or budget <= 0:
        return
    t0 = time.perf_counter()
    try:
        if finding is not None:  # a known finding recurs on many cases: the first few are diagnosed
            key = (target.adapter.name, target.variant, getattr(finding, "source", str(finding)))
            _xfail_counts[key] = _xfail_counts.get(key, 0) + 1
            if _xfail_counts[key] > XFAIL_DIAGNOSES_PER_FINDING:
                judgement.metrics["diagnosis"] = Diagnosis(
                    "not-diagnosed", budget_s=budget, message=f"this finding's first {XFAIL_DIAGNOSES_PER_FINDING}"
                    " cases in the run carry its diagnosis").to_dict()
                return
        got = None if kind is CheckKind.PARAMS else implementation_output(target, kind, case)
        out, view = got if got else (None, None)
        if out is not None and repro and sink is not None and getattr(sink, "run_dir", None) is not None:
            store_outputs(Path(sink.run_dir) / repro, out)
        diag = diagnose_check(kind, case, out, judgement.metrics, budget=budget, view=view, memo=True)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must never turn a finding into a crash
        diag = Diagnosis("not-diagnosed", budget_s=budget, message=f"diagnosis failed: {type(exc).__name__}: {exc}")
    diag.elapsed_s = time.perf_counter() - t0
    judgement.metrics["diagnosis"] = diag.to_dict()
    if diag.confident and diag.rules:
        # the one departure that reproduces the implementation's output within the error model explains the
        # whole disagreement: its rules are the ones broken, not every rule the property exercises
        judgement.implicated = list(diag.rules)


# ---- parameter counts ---------------------------------------------------------------------------------------
def params_diagnosis(config, got, convention: str | None = None) -> Diagnosis:
    """PARAM-*: which counting reading gives the framework's number (another convention's formula, a bias
    left out of the count). Readings of the framework's declared ``convention`` come first: where several
    readings give the same number, one of the declared convention is the explanation, the others its aliases."""
    if got is None:
        return Diagnosis("not-diagnosed", message="the record holds no parameter count")
    bias = config.units * 4 * config.num_directions * config.num_layers if config.use_bias else 0
    readings: dict[str, tuple[int, str]] = {}
    for conv in CONVENTIONS:
        try:
            n = param_count(config, conv)
        except Exception:  # noqa: BLE001 - a convention that cannot count this config
            continue
        rule = _PARAM_RULE[conv]
        readings[f"params:{conv}-formula"] = (n, rule)
        if bias and conv in ("torch", "onnx"):
            readings[f"params:{conv}-second-bias-uncounted"] = (n - bias, rule)
        if bias:
            readings[f"params:{conv}-bias-uncounted"] = (n - (2 if conv in ("torch", "onnx") else 1) * bias, rule)
    hits = [name for name, (n, _) in readings.items() if n == got]
    own = [h for h in hits if h.startswith(f"params:{convention}-")]
    if len(own) == 1:  # the same number under another convention's formula is an alias of it
        hits = own + [h for h in hits if h not in own]
        diag = Diagnosis("explained", variants=own, aliases=[hits[1:]], rules=[readings[own[0]][1]], confident=True,
                         tried=len(readings), applicable=len(readings))
    else:
        diag = Diagnosis("explained" if len(hits) == 1 else ("ambiguous" if hits else "unexplained"), variants=hits,
                         rules=list(dict.fromkeys(readings[h][1] for h in hits)), confident=len(hits) == 1,
                         tried=len(readings), applicable=len(readings))
    diag.message = "" if hits else f"no counting reading gives {got}"
    return replace(diag, readings=[f"the framework counts {got}: {h}" for h in hits])


_PARAM_RULE = {"keras": "PARAM-1", "torch": "PARAM-2", "onnx": "PARAM-3", "flax": "PARAM-4"}
