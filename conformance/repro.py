"""``lstm-conformance repro BLOB.npz``: re-run one saved failing case and print its disagreement.

A blob (written by ``checks.Checker._save_repro``) holds ``__meta__`` (JSON: adapter, variant, device,
property, rules, case description incl. config) and the case's arrays: weights ``w_l{l}_d{d}_{W,U,b,..}``,
``x``, optional ``mask`` and ``h0_l{l}_d{d}`` / ``c0_l{l}_d{d}``. The case is rebuilt exactly and run
through the same :class:`~conformance.checks.Checker` method that failed, so the repro judges it with the
same error model and the same message; nothing is written to any run directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
from hypothesis.errors import UnsatisfiedAssumption

from reference import Config, Weights

from . import errors
from .checks import Checker, CheckFailure
from .strategies import Case

__all__ = ["load_blob", "run_blob", "main"]

_CASE_FIELDS = ("mask", "masked_output", "seed", "weight_scale", "input_scale")


def load_blob(path: Path) -> tuple[dict, Case]:
    """(meta, Case) from a repro ``.npz``; ValueError naming what is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such repro blob")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip, pickle and npy errors differ across numpy versions
        raise ValueError(f"{path}: not a readable .npz ({exc})") from None
    if "__meta__" not in arrays or "x" not in arrays:
        raise ValueError(f"{path}: not a repro blob (needs __meta__ and x; has {sorted(arrays)})")
    meta = json.loads(str(arrays.pop("__meta__")))
    desc = dict(meta.get("case") or {})
    config = Config.from_dict(desc["config"])
    weights = Weights.from_flat({k[2:]: v for k, v in arrays.items() if k.startswith("w_")})
    init = None
    if any(k.startswith("h0_") for k in arrays):
        init = [[(arrays[f"h0_l{layer}_d{d}"], arrays[f"c0_l{layer}_d{d}"]) for d in range(config.num_directions)]
                for layer in range(config.num_layers)]
    known = {"config", "batch", "timesteps", "initial_state", *_CASE_FIELDS}
    case = Case(config=config, weights=weights, x=arrays["x"], mask=arrays.get("mask"),
                mask_kind=desc.get("mask", "none"), initial_state=init,
                masked_output=desc.get("masked_output", "carry"), seed=desc.get("seed", 0),
                weight_scale=desc.get("weight_scale", 1.0), input_scale=desc.get("input_scale", 1.0),
                extra={k: v for k, v in desc.items() if k not in known})
    return meta, case


class _Capture:
    """Stands in for the ResultWriter: keeps the one result the check records, writes nothing."""

    def __init__(self):
        self.records: list[dict] = []
        self.run_dir = None

    def record(self, rec: dict) -> None:
        self.records.append(rec)


class _ReproChecker(Checker):
    def _save_repro(self, case, property_):  # never write a new blob while replaying one
        return None


def _run_check(checker: Checker, case: Case, prop: str, split) -> None:
    """The Checker method the property called (property names as recorded by conformance/test_*.py)."""
    if prop == "shapes":
        checker.shapes(case)
    elif prop == "params":
        checker.params(case)
    elif prop in ("continuation", "stateful") and split:
        checker.continuation(case, int(split), stateful=prop == "stateful")
    else:
        checker.forward(case, property_=prop)


def run_blob(path: Path, out=None) -> int:
    """Re-run the blob's check; print the comparison. 0 when it now passes, 1 when it still fails."""
    from .adapters import load

    out = out or sys.stdout
    meta, case = load_blob(path)
    adapter = load(meta["adapter"])
    reason = adapter.unavailable_reason()
    if reason:
        raise ValueError(f"adapter {meta['adapter']!r} is not installed here: {reason}")
    prop = meta.get("property", "forward")
    capture = _Capture()
    checker = _ReproChecker(adapter=adapter, variant=meta.get("variant", "default"), device=meta.get("device", "cpu"),
                            writer=capture, rules=tuple(meta.get("rules") or ()), test_id=f"repro:{Path(path).name}")

    def p(*a) -> None:
        print(*a, file=out)

    p(f"repro {path}")
    p(f"  adapter  {adapter.name}:{checker.variant} on {checker.device}  {adapter.versions()}")
    p(f"  check    {prop}  rules {', '.join(checker.rules) or '-'}")
    p(f"  config   {json.dumps(case.config.to_dict(), sort_keys=True)}")
    p(f"  input    x{list(case.x.shape)} mask={case.mask_kind} masked_output={case.masked_output} "
      f"initial_state={case.initial_state is not None}")
    split = case.extra.get("split")
    reason = adapter.unsupported_reason(case.config, checker.variant, checker.device)
    if reason:
        p(f"  result   SKIP: {reason}")
        return 1
    try:
        with warnings.catch_warnings():
            # the check's reject() for an Unsupported case is meant for hypothesis; here it just ends the replay
            warnings.simplefilter("ignore")
            _run_check(checker, case, prop, split)
    except CheckFailure:
        pass  # the captured record holds the verdict and numbers
    except UnsatisfiedAssumption:
        p(f"  result   SKIP: {adapter.name} declares this case unsupported")
        return 1
    except Exception as exc:  # noqa: BLE001 - the checker recorded an adapter crash before re-raising it
        if not capture.records:
            p("  result   CRASH: " + "".join(traceback.format_exception_only(type(exc), exc)).strip())
            return 1
    rec = capture.records[-1] if capture.records else {"verdict": "crash", "message": "no result recorded"}
    m = rec.get("metrics") or {}
    if "ratio" in m or "err_impl" in m:
        def fmt(v) -> str:
            return "n/a (not finite)" if v is None else f"{v:.6g}"

        p(f"  error    err_impl {fmt(m.get('err_impl'))}  err_oracle {fmt(m.get('err_oracle'))}  "
          f"floor {fmt(m.get('floor'))}")
        p(f"  ratio    {fmt(m.get('ratio'))}  (K = {errors.K:g}; pass when ratio <= K)")
    elif "param_count" in m:
        p(f"  params   framework {m['param_count']}  reference ({m.get('convention')}) {m.get('param_expected')}")
    verdict = rec.get("verdict", "crash")
    p(f"  result   {verdict.upper()}" + (f": {rec['message']}" if rec.get("message") else ""))
    return 0 if verdict == "pass" else 1


def main(args) -> int:
    """CLI entry (``args.blob``); also accepts an argv list so a saved script can call ``main([blob])``."""
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="lstm-conformance repro")
        parser.add_argument("blob")
        args = parser.parse_args(list(args))
    try:
        return run_blob(Path(args.blob))
    except ValueError as exc:
        print(f"lstm-conformance repro: error: {exc}", file=sys.stderr)
        return 2
