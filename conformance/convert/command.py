"""``lstm-conformance convert SOURCE OUT``: read SOURCE's LSTM weights, convert them through the canonical
layout to OUT's format, verify (verify.py) and only then write OUT.

The architecture comes from the file's shapes where they tell it (a state_dict or ONNX initializers give
everything; a Keras list cannot always tell a bidirectional layer from two stacked ones) and from the
flags, which override the file; the source's tensors are then checked against the stated architecture's
layout, and the first mismatch is one error naming the tensor, the expected and the found shape. OUT is
written (to a temporary name first, read back for the target-side check, then renamed) only when every
check that ran passed, or with ``--force``; an existing OUT is never replaced without ``--force``.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import conformance.convert.formats as formats

__all__ = ["convert", "run_convert", "add_parser"]

EXIT_OK, EXIT_FAILED = 0, 1


def _two_biases(fmt: str) -> bool:
    return fmt in ("torch", "onnx")  # LAYOUT-3/4: bias_ih + bias_hh, Wb + Rb


def convert(source: Path, out: Path, *, source_format: str | None = None, target_format: str | None = None,
            stated: dict | None = None, force: bool = False, seed: int = 0, log=sys.stdout) -> int:
    """Port ``source`` to ``out``; print the verification table on ``log``; 0 verified (written), 1 not."""
    from .verify import verify  # imports the adapters and the error model: only when converting

    sfmt, tfmt = formats.format_of(source, source_format), formats.format_of(out, target_format)
    if out.exists() and not force:
        raise ValueError(f"{out}: exists; pass --force to overwrite it")
    raw = formats.read(source, sfmt)
    config = formats.architecture(formats.infer_architecture(sfmt, raw), stated or {}, source)
    bias = "double" if config.use_bias and _two_biases(sfmt) else "single"
    src_cfg = replace(config, bias_mode=bias)
    formats.check_shapes(sfmt, raw, src_cfg, source)
    weights = formats.to_canonical(sfmt, raw, src_cfg)
    # both sides with two biases keep them apart (exact); otherwise the canonical single bias is their sum
    tgt_cfg = replace(config, bias_mode="double" if bias == "double" and _two_biases(tfmt) else "single")
    port = weights if tgt_cfg.bias_mode == "double" else formats.to_canonical(sfmt, raw, replace(src_cfg, bias_mode="single"))
    dtype = _dtype_of(sfmt, raw)
    tensors = formats.from_canonical(tfmt, port, tgt_cfg, dtype)
    tmp = out.with_name(f".partial-{os.getpid()}-{out.name}")  # keeps the whole ending (Keras: .weights.h5)
    try:
        formats.write(tmp, tfmt, tensors, tgt_cfg)
        back = formats.read(tmp, tfmt)
        formats.check_shapes(tfmt, back, tgt_cfg, out)
        read_back = formats.to_canonical(tfmt, back, tgt_cfg)
        sides = verify(src_cfg, sfmt, weights.astype("float64"), tgt_cfg, tfmt, read_back.astype("float64"), seed=seed)
        ok = _print_table(sides, source, out, sfmt, tfmt, config, log)
        if ok or force:
            os.replace(tmp, out)
            print(f"wrote {out}" + ("" if ok else " (--force: the port did NOT verify)"), file=log)
        else:
            print(f"not written: {out} (the port did not verify; --force writes it anyway)", file=log)
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        tmp.unlink(missing_ok=True)


def _dtype_of(fmt: str, raw):
    first = (raw["weight_ih_l0"] if fmt == "torch" else raw[0]["W"] if fmt == "onnx"
             else raw["cells"][0]["ii"]["kernel"] if fmt == "flax" else raw[0])
    return first.dtype


def _print_table(sides: list, source: Path, out: Path, sfmt: str, tfmt: str, config, log) -> bool:
    from ..harness.errors import K
    from .verify import BATCH, DTYPE, TIMESTEPS

    print(f"{source} ({sfmt}) -> {out} ({tfmt}): input_dim={config.input_dim} units={config.units} "
          f"layers={config.num_layers} bidirectional={config.bidirectional} proj_size={config.proj_size} "
          f"use_bias={config.use_bias}", file=log)
    print(f"verification: random input ({BATCH}, {TIMESTEPS}, {config.input_dim}) in {DTYPE}; error ratio vs the "
          f"float64 reference on the source weights (NUM-1, pass <= K={K:g})", file=log)
    ran = [s for s in sides if not s.skipped]
    names = list(ran[0].ratios)
    print(f"{'output':<12}" + "".join(f"{s.label:>32}" for s in ran), file=log)
    for name in names:
        print(f"{name:<12}" + "".join(f"{_fmt(s.ratios[name]):>32}" for s in ran), file=log)
    for s in sides:
        if s.skipped:
            print(f"{s.label}: NOT run: {s.skipped}; that side is verified by the reference alone", file=log)
        for f in s.failed:
            print(f"{s.label}: FAILED {f}", file=log)
    return all(s.ok for s in ran)


def _fmt(r: float) -> str:
    return "inf" if not math.isfinite(r) else f"{r:.3g}"


def run_convert(args) -> int:
    stated = {"input_dim": args.input_dim, "units": args.units, "num_layers": args.layers,
              "bidirectional": args.bidirectional, "proj_size": args.proj_size,
              "use_bias": None if args.no_bias is None else not args.no_bias}
    return convert(Path(args.source), Path(args.out), source_format=args.source_format,
                   target_format=args.target_format, stated=stated, force=args.force, seed=args.seed)


def add_parser(sub):
    """The ``convert`` subcommand's arguments (cli.py wires it)."""
    import argparse

    p = sub.add_parser("convert", help="port LSTM weights between torch (.pt), ONNX (.onnx), Keras (.keras, "
                                       ".weights.h5, get_weights() .npz) and Flax (.msgpack) through the canonical "
                                       "layout; verified before it is written")
    p.add_argument("source", metavar="SOURCE", help=formats.ALLOWED)
    p.add_argument("out", metavar="OUT", help="the converted file (format from its ending)")
    p.add_argument("--from", dest="source_format", choices=formats.FORMATS, help="SOURCE's format (default: its ending)")
    p.add_argument("--to", dest="target_format", choices=formats.FORMATS, help="OUT's format (default: its ending)")
    p.add_argument("--input-dim", type=int, help="override or state the input size")
    p.add_argument("--units", type=int, help="override or state the cell size")
    p.add_argument("--layers", type=int, help="stacked layers")
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--proj-size", type=int, help="torch proj_size (0: none)")
    p.add_argument("--no-bias", action="store_true", default=None)
    p.add_argument("--force", action="store_true", help="write OUT even if the port does not verify, or over an "
                                                       "existing OUT")
    p.add_argument("--seed", type=int, default=0, help="seed of the random verification input")
    return p
