"""``lstm-conformance``: the one command-line face (params, run, report, gate, repro, diagnose, ...).

Each subcommand is a small function here that calls the module doing the work; argparse's
``set_defaults(func=...)`` picks it. Every refused input is one line on stderr naming it and what is
allowed, never a traceback. Exit codes (the same for every subcommand):

- 0  success
- 1  checks failed or a regression (``run``: a check failed, or none ran; ``gate``: a regression;
     ``repro``: the case still fails; ``bisect``: a release did not install or run; ``calibrate``: a backend
     crashed)
- 2  usage or bad input: unknown option or backend, a size outside its bounds (``params``: sizes
     1..MAX_SIZE = 2**20, layers 1..MAX_LAYERS = 1024, proj_size 0 or 1..units-1; ``calibrate``:
     cases 1..1,000,000), a malformed ``--model``, a missing or damaged run, summary or repro blob;
     pytest's own usage errors in ``run`` (its exit 4)
- 3  environment: a requested backend (or the one a repro blob names) not installed here, ``--device gpu``
     where no selected backend sees a GPU, a missing optional dependency, an output path that cannot
     be written (read-only, a file where a folder belongs or the reverse); checked before any long work
- 130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from reference.params import MAX_MODEL_LAYERS as MAX_LAYERS
from reference.params import MAX_MODEL_UNITS as MAX_SIZE

MAX_CASES = 1_000_000  #: calibrate --cases bound (calibrate.MAX_CASES; importing it would pull in hypothesis)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_ENVIRONMENT", "EXIT_INTERRUPTED",
           "MAX_SIZE", "MAX_LAYERS"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


# ---- params ------------------------------------------------------------------------------------------------
def _model_table(args) -> int:
    from reference import CONVENTIONS, model_param_counts, parse_model

    if not args.input_shape:
        raise ValueError("--model needs --input-shape T,D (e.g. 5,126)")
    try:
        shape = [int(s) for s in args.input_shape.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 2 or not all(1 <= n <= MAX_SIZE for n in shape):
        raise ValueError(f"--input-shape {args.input_shape!r}: expected TIMESTEPS,FEATURES, both integers in "
                         f"1..{MAX_SIZE:,}")
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

    single = {"--input-dim": args.input_dim, "--units": args.units, "--num-layers": args.num_layers,
              "--proj-size": args.proj_size, "--bidirectional": args.bidirectional or None,
              "--peepholes": args.peepholes or None}
    if args.model is not None:
        given = [opt for opt, v in single.items() if v is not None]
        if given:  # nothing is accepted and ignored
            raise ValueError(f"--model describes the whole stack; drop {', '.join(given)} (or drop --model)")
        return _model_table(args)
    if args.input_shape is not None:
        raise ValueError("--input-shape goes with --model; for one LSTM give --input-dim and --units")
    if args.input_dim is None or args.units is None:
        raise ValueError("give --input-dim and --units (or --model with --input-shape)")
    cfg = Config(input_dim=args.input_dim, units=args.units, bidirectional=args.bidirectional,
                 num_layers=args.num_layers or 1, proj_size=args.proj_size or 0, use_bias=not args.no_bias,
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
class _HeldStderr:
    """sys.stderr while pytest starts: its own usage errors (a usage dump over several lines) are held back
    and become one line; from pytest_configure on (the plugin's checks included) text passes straight on."""

    def __init__(self, real):
        self.real, self.held, self.passing = real, [], False

    def write(self, text: str) -> int:
        if self.passing:
            return self.real.write(text)
        self.held.append(text)
        return len(text)

    def __getattr__(self, name):  # flush, isatty, fileno, encoding: the real stream's
        return getattr(self.real, name)

    def pytest_configure(self, config) -> None:
        self.passing = True
        self.real.write("".join(self.held))
        self.held.clear()

    def usage_line(self) -> str | None:
        """The one line of a held pytest usage error (``...: error: MESSAGE``), if that is what was held."""
        for line in "".join(self.held).splitlines():
            if ": error: " in line:
                return line.split(": error: ", 1)[1].strip()
        return None


#: pytest's exit codes -> ours: 2 interrupted, 3 internal error (a dump: kept), 4 usage, 5 nothing ran
_PYTEST_EXIT = {2: EXIT_INTERRUPTED, 4: EXIT_USAGE, 5: EXIT_FAILED}


def cmd_run(args, extra: list[str]) -> int:
    import pytest

    from .adapters import all_names
    from .harness.results import validate_run_id

    for b in args.backend or []:
        if b not in all_names():
            raise ValueError(f"--backend {b!r} is not a known adapter; allowed: {', '.join(all_names())}")
    if args.run_id:
        validate_run_id(args.run_id)
    # the plugin comes in through its pytest11 entry point (or conformance/conftest.py in a source tree); it
    # stops with exit 3 for a backend not installed, --device gpu without a GPU or an unwritable --report-dir
    argv = [str(Path(__file__).resolve().parent / "properties"), "-q", "--device", args.device,
            "--report-dir", args.report_dir, "--hypothesis-profile", args.profile]
    for b in args.backend or []:
        argv += ["--backend", b]
    if args.run_id:
        argv += ["--run-id", args.run_id]
    held = _HeldStderr(sys.stderr)
    sys.stderr = held
    try:
        code = int(pytest.main(argv + extra, plugins=[held]))
    finally:
        sys.stderr = held.real
    if held.held:
        line = held.usage_line() if code == 4 else None
        if line is None:
            sys.stderr.write("".join(held.held))
        else:
            raise ValueError(f"{line} (arguments after the run options go to pytest; see pytest --help)")
    return _PYTEST_EXIT.get(code, code)


def cmd_report(args) -> int:
    from .harness.files import check_writable
    from .report import run_report

    check_writable(Path(args.out), what="--out", folder=True)  # before reading every run
    # each RUN_DIR is a run folder or a folder of them (e.g. reports/); prints the page size and run problems
    with _inputs_are_files():
        return run_report([Path(p) for p in args.runs], Path(args.out))


def cmd_gate(args) -> int:
    from .report.gate import run_gate

    with _inputs_are_files():
        return run_gate(Path(args.baseline), Path(args.run), ratio_factor=args.ratio_factor)


def cmd_repro(args) -> int:
    from .harness.repro import replay

    with _inputs_are_files():
        return replay(Path(args.blob))


def cmd_diagnose(args) -> int:
    from .diagnosis.command import run_diagnose

    with _inputs_are_files():
        return run_diagnose(Path(args.blob), budget=args.budget, as_json=args.json)


def cmd_calibrate(args) -> int:
    from .calibration import merge, run_calibration

    if args.merge:
        with _inputs_are_files():
            merge([Path(p) for p in args.merge], out=sys.stdout)
        return EXIT_OK
    _require_installed(args.backend or [])
    return run_calibration(args.backend, args.cases, args.seed, Path(args.json) if args.json else None)


def cmd_false_alarms(args, extra: list[str]) -> int:
    from .calibration import run_false_alarms

    (_require_installed if args.seeds or args.thorough_runs else _require_known)([args.backend])  # a tally runs none
    return run_false_alarms(args.backend, args.seeds, Path(args.report_dir), thorough=args.thorough_runs,
                            extra=extra, previous=args.include_previous)


def cmd_bisect(args) -> int:
    from .versions.bisect import run_bisect
    from .versions.specs import parse_pins

    _require_known([args.backend])
    with_pins = [pin for text in args.with_ or [] for pin in parse_pins(text, source="--with")]
    with _inputs_are_files():
        return run_bisect(Path(args.blob), args.backend, args.versions, with_pins=with_pins,
                          cache=Path(args.cache) if args.cache else None, exhaustive=args.all,
                          json_out=Path(args.json) if args.json else None)


def cmd_convert(args) -> int:
    from .convert import run_convert
    return run_convert(args)


def _require_known(names: list[str]) -> None:
    from .adapters import all_names

    for name in names:
        if name not in all_names():
            raise ValueError(f"--backend {name!r} is not a known adapter; allowed: {', '.join(all_names())}")


def _require_installed(names: list[str]) -> None:
    """ImportError (exit 3) for an explicitly requested backend whose framework is not installed here."""
    from .adapters import load

    _require_known(names)
    for name in names:
        if reason := load(name).cannot_run_reason():
            raise ImportError(f"--backend {name} is not installed here ({reason}); run it where its framework is "
                              f"installed (e.g. tox -e {name})")


@contextmanager
def _inputs_are_files():
    """While reading inputs, a folder where a file belongs (or a file inside a path) is a bad input (exit 2)
    rather than the environment."""
    try:
        yield
    except IsADirectoryError as exc:
        raise ValueError(f"{exc.filename}: is a folder; expected a file") from None
    except NotADirectoryError as exc:
        raise ValueError(f"{exc.filename}: part of this path is a file, not a folder") from None


def _bounded(lo: int, hi: int):
    """argparse type: an integer in lo..hi, one line naming the value and the bounds otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer (allowed {lo:,}..{hi:,})") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value:,} is outside {lo:,}..{hi:,}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line naming the problem (and where --help is), not a usage dump."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lstm-conformance", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    pp = sub.add_parser("params", help="parameter counts of an architecture under each convention")
    size = _bounded(1, MAX_SIZE)
    pp.add_argument("--input-dim", type=size, help=f"1..{MAX_SIZE:,}")
    pp.add_argument("--units", type=size, help=f"1..{MAX_SIZE:,}")
    pp.add_argument("--bidirectional", action="store_true")
    pp.add_argument("--num-layers", type=_bounded(1, MAX_LAYERS), help=f"1..{MAX_LAYERS} (default 1)")
    pp.add_argument("--proj-size", type=_bounded(0, MAX_SIZE), help="0 (none, the default) or 1..units-1")
    pp.add_argument("--peepholes", action="store_true")
    pp.add_argument("--no-bias", action="store_true")
    pp.add_argument("--model", help=f"a sequential stack, e.g. lstm:64,lstm:128,dense:5 (kinds: lstm, bilstm, dense; "
                    f"units 1..{MAX_SIZE:,}; at most {MAX_LAYERS} layers)")
    pp.add_argument("--input-shape", help=f"TIMESTEPS,FEATURES of the model input, e.g. 5,126 (each 1..{MAX_SIZE:,})")
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

    from .diagnosis.command import add_parser as add_diagnose

    add_diagnose(sub).set_defaults(func=cmd_diagnose)

    from .versions.bisect import add_parser as add_bisect

    add_bisect(sub).set_defaults(func=cmd_bisect)
    from .convert import add_parser as add_convert
    add_convert(sub).set_defaults(func=cmd_convert)

    pc = sub.add_parser("calibrate", help="error-ratio distribution on correct backends -> K and floor")
    pc.add_argument("--backend", action="append")
    pc.add_argument("--cases", type=_bounded(1, MAX_CASES), default=2000, help=f"1..{MAX_CASES:,} per backend")
    pc.add_argument("--seed", type=_bounded(0, 2**32 - 1), default=0, help="0..2**32-1")
    pc.add_argument("--json", metavar="FILE", help="write the measurements here (checked before the run starts)")
    pc.add_argument("--merge", nargs="+", metavar="FILE", help="merge calibration JSON files instead of measuring")
    pc.set_defaults(func=cmd_calibrate)

    pf = sub.add_parser("false-alarms", help="run a backend under several random seeds and the thorough profile; "
                                              "list every check that did not pass")
    pf.add_argument("--backend", required=True)
    pf.add_argument("--seeds", type=_bounded(0, 1000), default=5, help="dev-profile runs, each with a random seed")
    pf.add_argument("--thorough-runs", type=_bounded(0, 100), default=1,
                    help="thorough-profile runs, each with a random seed (0: none)")
    pf.add_argument("--report-dir", default="reports/false-alarms")
    pf.add_argument("--include-previous", action="store_true", help="also count earlier runs in --report-dir")
    pf.set_defaults(func=cmd_false_alarms, takes_extra=True)
    return p


def main(argv: list[str] | None = None) -> int:
    from .harness.files import NotWritable

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra) if getattr(args, "takes_extra", False) else args.func(args)
    except ValueError as exc:
        return _refuse(args.cmd, str(exc), EXIT_USAGE)
    except ImportError as exc:  # a backend or an optional dependency (jinja2, jsonschema) not installed here
        hint = (" (the report extra: pip install 'lstm-conformance[report]')" if args.cmd in ("report", "gate") else
                "") if isinstance(exc, ModuleNotFoundError) else ""
        return _refuse(args.cmd, f"{exc}{hint}", EXIT_ENVIRONMENT)
    except KeyboardInterrupt:
        print(f"lstm-conformance {args.cmd}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NotWritable as exc:
        return _refuse(args.cmd, str(exc), EXIT_ENVIRONMENT)
    except OSError as exc:
        return _refuse(args.cmd, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_ENVIRONMENT)


def _refuse(cmd: str, message: str, code: int) -> int:
    """The one line on stderr (a message quoting a value with a line break still takes one line)."""
    print(f"lstm-conformance {cmd}: error: {' '.join(message.splitlines())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
