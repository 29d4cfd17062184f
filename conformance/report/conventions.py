"""The conventions table, measured: for each backend, which reading it follows for every convention the
spec leaves to frameworks (spec/README.md "Readings"), with the evidence.

Evidence of two kinds, both from the records of a run:
- a *pass* of a value check whose case used the convention: the backend computes the reading the case was
  judged under (a masked case judged with masked_output 'zero' that passes: the backend outputs zeros);
- a fail or xfail whose diagnosis (conformance/diagnosis) names a variant of that convention with
  confidence: the backend follows the variant's reading instead.
A backend's reading is the one diagnosed most often, else the one passed most often (a pass is weaker
evidence: the readings may coincide on its case, as with a clip that never binds); every reading seen is
listed with its counts, so a backend that follows two readings on different paths (Keras variants) shows both.
"""

from __future__ import annotations

from typing import Callable

from ..harness.results import CheckKind, Result, Verdict

__all__ = ["CONVENTIONS", "build_conventions", "conventions_markdown"]

_VALUE_CHECKS = (CheckKind.FORWARD, CheckKind.CONTINUATION, CheckKind.STATEFUL, CheckKind.PRECISION)
_HARD = ("hard_sigmoid_keras2", "hard_sigmoid_keras3", "onnx_hard_sigmoid")


def _masked(d: dict) -> bool:
    return d.get("mask", "none") != "none"


def _hard_sigmoid(d: dict, cfg: dict) -> str | None:
    names = [cfg.get(k) for k in ("recurrent_activation", "activation") if cfg.get(k) in _HARD]
    return names[0] if names else None


#: (convention, rule, reading of a passing case or None when the case does not use it, variant prefix -> reading)
CONVENTIONS: list[tuple[str, str, Callable[[dict, dict], str | None], dict[str, str]]] = [
    ("hard_sigmoid flavour", "ACT-3/ACT-4", _hard_sigmoid,
     {"recurrent_activation:hard_sigmoid_keras2": "hard_sigmoid_keras2",
      "recurrent_activation:hard_sigmoid_keras3": "hard_sigmoid_keras3",
      "recurrent_activation:onnx_hard_sigmoid": "onnx_hard_sigmoid"}),
    ("masked output", "MASK-2", lambda d, c: d.get("masked_output") if _masked(d) and c.get("return_sequences")
     else None, {"masked-output:carry": "carry", "masked-output:zero": "zero",
                 "masked-output:h0-before-first-valid": "h0 before the first valid step",
                 "masked-output:leftover": "the step's own h_t"}),
    # under 'carry' the two readings coincide: only a 'zero' case tells them apart
    ("last output of a masked row", "MASK-2", lambda d, c: d.get("last_output") if _masked(d) and not
     c.get("return_sequences") and d.get("masked_output") == "zero" else None, {"last-output:last-step": "last-step", "last-output:last-valid": "last-valid"}),
    ("masked state", "MASK-1", lambda d, c: "keep" if _masked(d) else None,
     {"masked-state:update": "update", "final-state:padded-end": "final state at the padded end"}),
    ("length-0 rows", "MASK-3", lambda d, c: None,
     {"empty-rows:keep-initial": "keep-initial", "empty-rows:zero-state": "zero-state"}),
    ("go_backwards output order", "DIR-2", lambda d, c: "processing order" if c.get("go_backwards") and
     c.get("return_sequences") else None, {"go-backwards:original-order": "original order"}),
    ("bidirectional backward order", "BIDI-1", lambda d, c: "original order" if c.get("bidirectional") and
     c.get("return_sequences") else None, {"bidirectional:backward-not-re-reversed": "processing order"}),
    ("bias convention", "GATE-1", lambda d, c: ("two biases, summed" if c.get("bias_mode") == "double" else "one bias")
     if c.get("use_bias") else None, {"bias:second-ignored": "second bias ignored", "bias:ignored": "bias ignored",
                                      "bias:second-doubled": "second bias doubled", "bias:doubled": "bias doubled",
                                      "forget-bias:": "forget-gate bias altered"}),
    ("gate order", "GATE-1", lambda d, c: "i, f, c, o", {"gate-order[": "another gate order"}),
    ("cell clip", "CLIP-1", lambda d, c: c.get("clip_reading") if c.get("cell_clip") else None,
     {"clip:gate-inputs-and-cell": "gate-inputs-and-cell", "clip:gate-inputs": "gate-inputs",
      "clip:ignored": "ignored"}),
    ("input_forget", "IFG-1", lambda d, c: c.get("input_forget_reading") if c.get("input_forget") else None,
     {"input-forget:f-from-i": "f-from-i", "input-forget:i-from-f": "i-from-f", "input-forget:ignored": "ignored"}),
    ("peephole order", "PEEP-1", lambda d, c: "i, o, f" if c.get("peepholes") else None,
     {"peephole-rows:": "another row order", "peepholes:ignored": "ignored"}),
    ("returned state order", "STATE-4", lambda d, c: "[h, c]" if c.get("return_state") else None,
     {"states:h-c-swapped": "[c, h]", "states:directions-swapped": "directions swapped"}),
    ("precision of the declared dtype", "NUM-5", lambda d, c: f"computes in {c.get('dtype')}",
     {"compute:float16": "computes in float16 (declared wider)", "compute:float32": "a float64 layer computes in float32",
      "operands:bfloat16": "bfloat16 operands", "operands:tf32": "TF32 operands"}),
]


def _reading_of_variant(prefixes: dict[str, str], names: list[str]) -> str | None:
    for name in names:
        for part in name.split(" + "):
            for prefix, reading in prefixes.items():
                if part.startswith(prefix):
                    return reading
    return None


def build_conventions(records: list[Result]) -> dict:
    """{"backends": [...], "rows": [{"convention", "rule", "cells": {backend: {"reading", "evidence"}}}]}."""
    counts: dict[tuple[str, str], dict[str, dict[str, int]]] = {}  # (convention, backend) -> reading -> kind -> n
    backends: list[str] = []
    for rec in records:
        if rec.check not in _VALUE_CHECKS or not isinstance(rec.config, dict) or "config" not in rec.config:
            continue
        desc, cfg = rec.config, rec.config["config"]
        backend = rec.adapter
        diag = rec.metrics.get("diagnosis") if rec.verdict in (Verdict.FAIL, Verdict.XFAIL) else None
        for name, _, of_pass, prefixes in CONVENTIONS:
            reading, kind = None, None
            if rec.verdict is Verdict.PASS:
                reading, kind = of_pass(desc, cfg), "pass"
            elif diag and diag.get("confident"):
                reading, kind = _reading_of_variant(prefixes, diag.get("variants") or []), "diagnosed"
            if reading is None:
                continue
            if backend not in backends:
                backends.append(backend)
            cell = counts.setdefault((name, backend), {}).setdefault(reading, {"pass": 0, "diagnosed": 0})
            cell[kind] += 1
    rows = []
    for name, rule, _, _ in CONVENTIONS:
        cells = {}
        for backend in backends:
            seen = counts.get((name, backend))
            if not seen:
                continue
            # a diagnosis is specific evidence; a pass may come from a case where the readings coincide (a
            # clip that never binds), so a reading diagnosed comes first
            ranked = sorted(seen.items(), key=lambda kv: (-kv[1]["diagnosed"], -kv[1]["pass"]))
            cells[backend] = {"reading": ranked[0][0], "evidence": [
                {"reading": r, "pass": n["pass"], "diagnosed": n["diagnosed"]} for r, n in ranked]}
        rows.append({"convention": name, "rule": rule, "cells": cells})
    return {"backends": backends, "rows": rows}


def _cell_text(cell: dict | None) -> str:
    if not cell:
        return "—"
    parts = []
    for e in cell["evidence"]:
        n = [f"{e['pass']} pass" if e["pass"] else "", f"{e['diagnosed']} diagnosed" if e["diagnosed"] else ""]
        parts.append(f"{e['reading']} ({', '.join(x for x in n if x)})")
    return "; ".join(parts)


def conventions_markdown(table: dict) -> str:
    """The table as Markdown (spec/README.md "Conventions, measured" is this output)."""
    head = "| convention | rule | " + " | ".join(table["backends"]) + " |"
    lines = [head, "|" + "---|" * (2 + len(table["backends"]))]
    for row in table["rows"]:
        if not row["cells"]:
            continue
        lines.append(f"| {row['convention']} | {row['rule']} | "
                     + " | ".join(_cell_text(row["cells"].get(b)) for b in table["backends"]) + " |")
    return "\n".join(lines) + "\n"
