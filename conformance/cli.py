"""``lstm-conformance``: params, run, calibrate, report, gate, repro.

Each subcommand's implementation lives in its own module; this file only parses arguments.
Errors in user input exit 2 with one line naming the option and the allowed values.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main"]


def _params(args) -> int:
    from reference import CONVENTIONS, Config, layer_param_counts, model_param_counts, parse_model
    from reference.params import UnsupportedConvention

    if args.model:
        if not args.input_shape:
            raise ValueError("--model needs --input-shape T,D (e.g. 5,126)")
        shape = [int(s) for s in args.input_shape.split(",")]
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"--input-shape {args.input_shape!r}: expected TIMESTEPS,FEATURES, both >= 1")
        layers = parse_model(args.model)
        table = {conv: model_param_counts(layers, shape[1], conv, use_bias=not args.no_bias) for conv in CONVENTIONS
                 if conv in ("keras", "torch")}
        if args.json:
            print(json.dumps({conv: {"layers": [{"layer": n, "features": f, "params": c} for n, f, c in rows],
                                     "total": sum(c for *_, c in rows)} for conv, rows in table.items()}, indent=2))
            return 0
        print(f"input shape ({shape[0]}, {shape[1]})")
        print(f"{'layer':<14}{'output':>8}{'keras':>12}{'torch':>12}")
        for (name, feat, k), (_, _, t) in zip(table["keras"], table["torch"]):
            print(f"{name:<14}{feat:>8}{k:>12,}{t:>12,}")
        print(f"{'total':<14}{'':>8}{sum(r[2] for r in table['keras']):>12,}{sum(r[2] for r in table['torch']):>12,}")
        return 0
    if args.input_dim is None or args.units is None:
        raise ValueError("give --input-dim and --units (or --model with --input-shape)")
    cfg = Config(input_dim=args.input_dim, units=args.units, bidirectional=args.bidirectional,
                 num_layers=args.num_layers, proj_size=args.proj_size, use_bias=not args.no_bias,
                 peepholes=args.peepholes)
    result = {}
    for conv in CONVENTIONS:
        try:
            per_layer = layer_param_counts(cfg, conv)
            result[conv] = {"total": sum(per_layer), "per_layer": per_layer}
        except UnsupportedConvention as exc:
            result[conv] = {"total": None, "unsupported": str(exc)}
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "counts": result}, indent=2))
        return 0
    print(f"LSTM input_dim={cfg.input_dim} units={cfg.units} layers={cfg.num_layers} "
          f"bidirectional={cfg.bidirectional} proj_size={cfg.proj_size} bias={cfg.use_bias}")
    for conv, r in result.items():
        if r["total"] is None:
            print(f"  {conv:<6} n/a  ({r['unsupported']})")
        else:
            layers = "" if len(r["per_layer"]) == 1 else "  per layer: " + ", ".join(f"{n:,}" for n in r["per_layer"])
            print(f"  {conv:<6} {r['total']:>10,}{layers}")
    return 0


def _run(args, extra: list[str]) -> int:
    import pytest

    from pathlib import Path

    argv = [str(Path(__file__).resolve().parent), "-q", "--device", args.device, "--report-dir", args.report_dir,
            "--hypothesis-profile", args.profile, "-p", "conformance.plugin"]
    for b in args.backend or []:
        argv += ["--backend", b]
    if args.run_id:
        argv += ["--run-id", args.run_id]
    return int(pytest.main(argv + extra))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lstm-conformance", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    pp = sub.add_parser("params", help="parameter counts of an architecture under each convention")
    pp.add_argument("--input-dim", type=int)
    pp.add_argument("--units", type=int)
    pp.add_argument("--bidirectional", action="store_true")
    pp.add_argument("--num-layers", type=int, default=1)
    pp.add_argument("--proj-size", type=int, default=0)
    pp.add_argument("--peepholes", action="store_true")
    pp.add_argument("--no-bias", action="store_true")
    pp.add_argument("--model", help="a sequential stack, e.g. lstm:64,lstm:128,dense:5 (kinds: lstm, bilstm, dense)")
    pp.add_argument("--input-shape", help="TIMESTEPS,FEATURES of the model input, e.g. 5,126")
    pp.add_argument("--json", action="store_true")

    pr = sub.add_parser("run", help="run the conformance properties (wraps pytest; extra args go to pytest)")
    pr.add_argument("--backend", action="append", help="adapter (repeatable; default every installed one)")
    pr.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    pr.add_argument("--report-dir", default="reports")
    pr.add_argument("--run-id")
    pr.add_argument("--profile", choices=("dev", "ci", "thorough"), default="dev")

    pc = sub.add_parser("calibrate", help="error-ratio distribution on correct backends -> K and floor")
    pc.add_argument("--backend", action="append")
    pc.add_argument("--cases", type=int, default=2000)
    pc.add_argument("--seed", type=int, default=0)
    pc.add_argument("--json", metavar="FILE")

    prep = sub.add_parser("report", help="merge run directories into summary.json + index.html")
    prep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    prep.add_argument("--out", default="reports/latest")

    pg = sub.add_parser("gate", help="compare a run summary against a baseline; exit 1 on regression")
    pg.add_argument("--baseline", required=True)
    pg.add_argument("run")
    pg.add_argument("--ratio-factor", type=float, default=4.0)

    pre = sub.add_parser("repro", help="re-run a saved failing case (.npz) and print its disagreement")
    pre.add_argument("blob")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.cmd != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.cmd == "params":
            return _params(args)
        if args.cmd == "run":
            return _run(args, extra)
        if args.cmd == "calibrate":
            from .calibrate import main as calibrate
            return calibrate(args)
        if args.cmd == "report":
            from .report import main as report
            return report(args)
        if args.cmd == "gate":
            from .gate import main as gate
            return gate(args)
        if args.cmd == "repro":
            from .repro import main as repro
            return repro(args)
    except ValueError as exc:
        print(f"lstm-conformance {args.cmd}: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
