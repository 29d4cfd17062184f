"""``lstm-conformance``: the one command-line face (params, run, report, gate, repro, calibrate).

Each subcommand is a small function here that calls the module doing the work; argparse's
``set_defaults(func=...)`` picks it. Exit codes: 0 success, 1 checks failed or a regression, 2 a bad
input (one line naming it and what is allowed), 3 the environment (missing framework, unwritable folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_ENVIRONMENT"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3


# ---- params ------------------------------------------------------------------------------------------------
def _model_table(args) -> int:
    from reference import CONVENTIONS, model_param_counts, parse_model

    if not args.input_shape:
        raise ValueError("--model needs --input-shape T,D (e.g. 5,126)")
    try:
        shape = [int(s) for s in args.input_shape.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"--input-shape {args.input_shape!r}: expected TIMESTEPS,FEATURES, both integers >= 1")
    layers = parse_model(args.model)
    table = {conv: model_param_counts(layers, shape[1], conv, use_bias=not args.no_bias) for conv in CONVENTIONS
             if conv in ("keras", "torch")}
    if args.json:
        print(json.dumps({conv: {"layers": [{"layer": n, "features": f, "params": c} for n, f, c in rows],
                                 "total": sum(c for *_, c in rows)} for conv, rows in table.items()}, indent=2))
        return EXIT_OK
    print(f"input shape ({shape[0]}, {shape[1]})")
    print(f"{'layer':<14}{'output':>8}{'keras':>12}{'torch':>12}")
    for (name, feat, k), (_, _, t) in zip(table["keras"], table["torch"]):
        print(f"{name:<14}{feat:>8}{k:>12,}{t:>12,}")
    print(f"{'total':<14}{'':>8}{sum(r[2] for r in table['keras']):>12,}{sum(r[2] for r in table['torch']):>12,}")
    return EXIT_OK


def cmd_params(args) -> int:
    from reference import CONVENTIONS, Config, layer_param_counts
    from reference.params import UnsupportedConvention

    if args.model:
        return _model_table(args)
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
        return EXIT_OK
    print(f"LSTM input_dim={cfg.input_dim} units={cfg.units} layers={cfg.num_layers} "
          f"bidirectional={cfg.bidirectional} proj_size={cfg.proj_size} bias={cfg.use_bias}")
    for conv, r in result.items():
        if r["total"] is None:
            print(f"  {conv:<6} n/a  ({r['unsupported']})")
        else:
            layers = "" if len(r["per_layer"]) == 1 else "  per layer: " + ", ".join(f"{n:,}" for n in r["per_layer"])
            print(f"  {conv:<6} {r['total']:>10,}{layers}")
    return EXIT_OK


# ---- run / report / gate / repro / calibrate -------------------------------------------------------------
def cmd_run(args, extra: list[str]) -> int:
    import pytest

    from .adapters import all_names
    from .harness.results import validate_run_id

    for b in args.backend or []:
        if b not in all_names():
            raise ValueError(f"--backend {b!r} is not a known adapter; allowed: {', '.join(all_names())}")
    if args.run_id:
        validate_run_id(args.run_id)
    # the plugin comes in through its pytest11 entry point (or conformance/conftest.py in a source tree)
    argv = [str(Path(__file__).resolve().parent / "properties"), "-q", "--device", args.device,
            "--report-dir", args.report_dir, "--hypothesis-profile", args.profile]
    for b in args.backend or []:
        argv += ["--backend", b]
    if args.run_id:
        argv += ["--run-id", args.run_id]
    return int(pytest.main(argv + extra))


def cmd_report(args) -> int:
    from .report import run_report

    # each RUN_DIR is a run folder or a folder of them (e.g. reports/); prints the page size and run problems
    return run_report([Path(p) for p in args.runs], Path(args.out))


def cmd_gate(args) -> int:
    from .report.gate import run_gate

    return run_gate(Path(args.baseline), Path(args.run), ratio_factor=args.ratio_factor)


def cmd_repro(args) -> int:
    from .harness.repro import replay

    return replay(Path(args.blob))


def cmd_calibrate(args) -> int:
    from .calibration import merge, run_calibration

    if args.merge:
        merge([Path(p) for p in args.merge], out=sys.stdout)
        return EXIT_OK
    return run_calibration(args.backend, args.cases, args.seed, Path(args.json) if args.json else None)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line naming the problem (and where --help is), not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lstm-conformance", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    pp = sub.add_parser("params", help="parameter counts of an architecture under each convention")
    pp.add_argument("--input-dim", type=_positive)
    pp.add_argument("--units", type=_positive)
    pp.add_argument("--bidirectional", action="store_true")
    pp.add_argument("--num-layers", type=_positive, default=1)
    pp.add_argument("--proj-size", type=int, default=0)
    pp.add_argument("--peepholes", action="store_true")
    pp.add_argument("--no-bias", action="store_true")
    pp.add_argument("--model", help="a sequential stack, e.g. lstm:64,lstm:128,dense:5 (kinds: lstm, bilstm, dense)")
    pp.add_argument("--input-shape", help="TIMESTEPS,FEATURES of the model input, e.g. 5,126")
    pp.add_argument("--json", action="store_true")
    pp.set_defaults(func=cmd_params)

    pr = sub.add_parser("run", help="run the conformance properties (wraps pytest; extra args go to pytest)")
    pr.add_argument("--backend", action="append", help="adapter (repeatable; default every installed one)")
    pr.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    pr.add_argument("--report-dir", default="reports")
    pr.add_argument("--run-id")
    pr.add_argument("--profile", choices=("dev", "ci", "thorough"), default="dev")
    pr.set_defaults(func=cmd_run, takes_extra=True)

    prep = sub.add_parser("report", help="merge run folders into summary.json + index.html")
    prep.add_argument("runs", nargs="+", metavar="RUN_DIR", help="a run folder, or a folder of them (e.g. reports)")
    prep.add_argument("--out", default="reports/latest")
    prep.set_defaults(func=cmd_report)

    pg = sub.add_parser("gate", help="compare a run summary against a baseline; exit 1 on regression")
    pg.add_argument("--baseline", required=True)
    pg.add_argument("run")
    pg.add_argument("--ratio-factor", type=float, default=4.0)
    pg.set_defaults(func=cmd_gate)

    pre = sub.add_parser("repro", help="re-run a saved failing case (.npz) and print its disagreement")
    pre.add_argument("blob")
    pre.set_defaults(func=cmd_repro)

    pc = sub.add_parser("calibrate", help="error-ratio distribution on correct backends -> K and floor")
    pc.add_argument("--backend", action="append")
    pc.add_argument("--cases", type=_positive, default=2000)
    pc.add_argument("--seed", type=int, default=0)
    pc.add_argument("--json", metavar="FILE", help="write the measurements here (checked before the run starts)")
    pc.add_argument("--merge", nargs="+", metavar="FILE", help="merge calibration JSON files instead of measuring")
    pc.set_defaults(func=cmd_calibrate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra) if getattr(args, "takes_extra", False) else args.func(args)
    except ValueError as exc:
        print(f"lstm-conformance {args.cmd}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"lstm-conformance {args.cmd}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_ENVIRONMENT


if __name__ == "__main__":
    sys.exit(main())
