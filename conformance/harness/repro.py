"""Repro blobs: one failing case saved as ``.npz`` and replayed by ``lstm-conformance repro BLOB.npz``.

A blob holds ``__meta__`` (JSON: adapter, variant, device, check kind, property, rules, the case
description incl. config) and the case's arrays: weights ``w_l{l}_d{d}_{W,U,b,..}``, ``x``, optional
``mask`` and ``h0_l{l}_d{d}`` / ``c0_l{l}_d{d}``. Replaying rebuilds the case exactly and runs the same
check through :class:`~conformance.harness.judge.Checker`, so it is judged with the same error model and
message; nothing is written to any run directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reference import Config, Weights

from . import errors
from .results import CheckKind, Result, Verdict

if TYPE_CHECKING:
    from .judge import Target
    from .strategies import Case

__all__ = ["save_blob", "load_blob", "replay"]

_CASE_FIELDS = ("mask", "masked_output", "seed", "weight_scale", "input_scale", "regime", "last_output")


def save_blob(run_dir: Path, *, target: Target, kind: CheckKind, property: str, rules, case: Case) -> str:
    """Write the case's blob under ``run_dir/repro/``; returns its path relative to ``run_dir``."""
    arrays = case.arrays()
    digest = hashlib.sha1(b"".join(np.ascontiguousarray(v).tobytes() for v in arrays.values())).hexdigest()[:12]
    name = f"{target.adapter.name}-{target.variant}-{property}-{digest}".replace(":", "_").replace("/", "_")
    path = Path(run_dir) / "repro" / f"{name}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"adapter": target.adapter.name, "variant": target.variant, "device": target.device,
            "check": kind.value, "property": property, "rules": list(rules), "case": case.describe()}
    np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)
    return str(path.relative_to(run_dir))


def keep_artifacts(run_dir: Path, blob: str, files) -> list[str]:
    """Copy the files a failing call ran (Adapter.artifacts: an exported graph) beside its blob, named
    ``<blob stem>.<file name>``; returns their paths relative to ``run_dir``."""
    kept = []
    for f in files:
        dest = Path(run_dir) / Path(blob).with_name(f"{Path(blob).stem}.{Path(f).name}")
        shutil.copyfile(f, dest)
        kept.append(str(dest.relative_to(run_dir)))
    return kept


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive; ValueError saying why it is not one (wrong format, truncated, damaged)."""
    try:
        z = np.load(path, allow_pickle=False)
    except Exception:  # noqa: BLE001 - numpy's errors for a non-archive (EOF, BadZipFile, "pickled data") say little
        raise ValueError(f"{path}: not a repro blob (not a readable .npz archive; blobs are written as "
                         "reports/<run>/repro/*.npz)") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a repro blob (a single .npy array, not an .npz archive)")  # noqa: TRY004
    try:
        with z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - a damaged member: zlib, CRC or header errors
        raise ValueError(f"{path}: damaged .npz archive ({str(exc) or type(exc).__name__})") from None


def load_blob(path: Path) -> tuple[dict, Case]:
    """(meta, Case) from a repro ``.npz``; ValueError naming what is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such repro blob" + (" (a folder)" if path.is_dir() else ""))
    arrays = _read_npz(path)
    if "__meta__" not in arrays:
        raise ValueError(f"{path}: not a repro blob (no __meta__ entry; not written by lstm-conformance)")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
        desc = dict(meta["case"])
        config = Config.from_dict(desc["config"])
        if not any(k.startswith("w_") for k in arrays):
            raise ValueError("no weights (w_l0_d0_W, ...)")
        weights = Weights.from_flat({k[2:]: v for k, v in arrays.items() if k.startswith("w_")})
        weights.check(config)
        init = None
        if any(k.startswith("h0_") for k in arrays):
            init = [[(arrays[f"h0_l{layer}_d{d}"], arrays[f"c0_l{layer}_d{d}"]) for d in range(config.num_directions)]
                    for layer in range(config.num_layers)]
        x = arrays["x"]
        if x.ndim != 3 or x.shape[2] != config.input_dim:
            raise ValueError(f"x has shape {list(x.shape)}, expected [batch, timesteps, {config.input_dim}]")
        meta["adapter"] = str(meta["adapter"])
        _kind(meta)  # a check kind this version knows
    except Exception as exc:  # noqa: BLE001 - JSON, key, config and shape errors all mean "not a readable blob"
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        if isinstance(exc, json.JSONDecodeError):
            reason = f"__meta__ is not JSON: {reason}"
        raise ValueError(f"{path}: not a readable repro blob ({reason})") from None
    from .strategies import Case  # imports hypothesis: only once the blob is known to be sound

    known = {"config", "batch", "timesteps", "initial_state", *_CASE_FIELDS}
    case = Case(config=config, weights=weights, x=x, mask=arrays.get("mask"), mask_kind=desc.get("mask", "none"),
                initial_state=init, masked_output=desc.get("masked_output", "carry"), seed=desc.get("seed", 0),
                weight_scale=desc.get("weight_scale", 1.0), input_scale=desc.get("input_scale", 1.0),
                regime=desc.get("regime", "typical"), last_output=desc.get("last_output", "last-step"),
                extra={k: v for k, v in desc.items() if k not in known})
    return meta, case


class _Capture:
    """Stands in for the ResultWriter: keeps the results the check records, writes nothing."""

    run_dir = None

    def __init__(self):
        self.records: list[Result] = []

    def record(self, result: Result) -> None:
        self.records.append(result)


def _kind(meta: dict) -> CheckKind:
    if "check" in meta:
        try:
            return CheckKind(meta["check"])
        except ValueError:
            raise ValueError(f"unknown check {meta['check']!r}; known: {', '.join(k.value for k in CheckKind)}") from None
    # blobs written before the check kind was recorded name only the property
    return Result.from_dict({"adapter": "-", "verdict": "pass", "property": meta.get("property", "forward")}).check


def replay(path: Path, out=None, records: list | None = None) -> int:
    """Re-run the blob's check and print the comparison: 0 when it now passes, 1 when it does not.
    ValueError for a damaged blob; ImportError when its adapter is unknown or not installed here.
    ``records``, when given, receives the Result the replay recorded (``bisect`` reads it per release)."""
    meta, case = load_blob(path)  # first: a damaged blob is refused before the checker's imports

    from hypothesis.errors import UnsatisfiedAssumption

    from ..adapters import all_names, load
    from .checker import Checker, CheckFailure
    from .judge import Target

    out = out or sys.stdout
    if meta["adapter"] not in all_names():
        raise ImportError(f"{path}: written by adapter {meta['adapter']!r}, which is not known here "
                          f"(known: {', '.join(all_names())})")
    adapter = load(meta["adapter"])
    reason = adapter.unavailable_reason()
    if reason:
        raise ImportError(f"{path}: adapter {meta['adapter']!r} is not installed here ({reason})")
    kind = _kind(meta)
    capture = _Capture()
    if records is not None:
        capture.records = records
    target = Target(adapter, meta.get("variant", "default"), meta.get("device", "cpu"))
    checker = Checker(target=target, sink=capture, rules=tuple(meta.get("rules") or ()),
                      test_id=f"repro:{Path(path).name}", property=meta.get("property", kind.value), save_repros=False)

    def p(*a) -> None:
        print(*a, file=out)

    p(f"repro {path}")
    p(f"  adapter  {adapter.name}:{target.variant} on {target.device}  {adapter.versions()}")
    p(f"  check    {checker.property} ({kind.value})  rules {', '.join(checker.rules) or '-'}")
    p(f"  config   {json.dumps(case.config.to_dict(), sort_keys=True)}")
    p(f"  input    x{list(case.x.shape)} mask={case.mask_kind} masked_output={case.masked_output} "
      f"initial_state={case.initial_state is not None}")
    reason = adapter.unsupported_reason(case.config, target.variant, target.device)
    if reason:
        p(f"  result   SKIP: {reason}")
        return 1
    split = case.extra.get("split")
    try:
        with warnings.catch_warnings():
            # the check's reject() for an Unsupported case is meant for hypothesis; here it just ends the replay
            warnings.simplefilter("ignore")
            if kind is CheckKind.SHAPES:
                checker.shapes(case)
            elif kind is CheckKind.PARAMS:
                checker.params(case)
            elif kind is CheckKind.PRECISION:
                checker.precision(case)
            elif kind is CheckKind.GRADIENT:
                checker.gradients(case)  # a chained check (GRAD-3) carries its split in the case
            elif kind is CheckKind.TRAINING:
                checker.training(case)  # the TRAIN check and its rates travel in the case
            elif kind in (CheckKind.CONTINUATION, CheckKind.STATEFUL) and split:
                checker.continuation(case, int(split), stateful=kind is CheckKind.STATEFUL)
            else:
                checker.forward(case)
    except CheckFailure:
        pass  # the captured record holds the verdict and numbers
    except UnsatisfiedAssumption:
        p(f"  result   SKIP: {adapter.name} declares this case unsupported")
        return 1
    except Exception:  # noqa: BLE001 - the checker recorded the adapter crash before re-raising it
        pass
    rec = capture.records[-1] if capture.records else None
    if rec is None:
        p("  result   CRASH: no result recorded")
        return 1
    m = rec.metrics
    if "ratio" in m or "err_impl" in m:
        def fmt(v) -> str:
            return "n/a (not finite)" if v is None else f"{v:.6g}"

        p(f"  error    err_impl {fmt(m.get('err_impl'))}  err_oracle {fmt(m.get('err_oracle'))}  "
          f"floor {fmt(m.get('floor'))}")
        p(f"  ratio    {fmt(m.get('ratio'))}  (K = {errors.K:g}; pass when ratio <= K)")
        for name, t in sorted((m.get("tensors") or {}).items()):  # a gradient check: every tensor's ratio
            p(f"    {name:<12} ratio {fmt(t.get('ratio'))}  err_impl {fmt(t.get('err_impl'))}  "
              f"err_oracle {fmt(t.get('err_oracle'))}")
    elif "param_count" in m:
        p(f"  params   framework {m['param_count']}  reference ({m.get('convention')}) {m.get('param_expected')}")
    p(f"  result   {rec.verdict.value.upper()}" + (f": {rec.message}" if rec.message else ""))
    return 0 if rec.verdict is Verdict.PASS else 1
