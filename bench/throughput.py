"""Adapter throughput: checks per second, and adapter time / the framework's bare forward call.

    python bench/throughput.py [--backend NAME ...] [--repeats N]

For each adapter importable in this process (Keras' backend is fixed per process: run once per
KERAS_BACKEND) and each shape below, measured side by side in one run:
  adapter ms  build (cached layer, new weights assigned) + forward + conversion to canonical outputs
  bare ms     the framework's own forward call on tensors already in its layout (Adapter.bare_forward)
  ratio       adapter / bare (target <= 2: the harness must not hide the framework's speed)
  checks/s    complete forward checks (adapter + float64 and dtype reference + error model)
Each figure is the median over ``repeats`` calls after one warm-up call (tracing/compilation excluded
and reported separately as 'first ms').
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance.adapters import available_names, load  # noqa: E402
from conformance.adapters.base import Unsupported  # noqa: E402
from conformance.checks import Checker  # noqa: E402
from conformance.strategies import Case  # noqa: E402
from reference import Config, random_weights  # noqa: E402

SHAPES = [  # (label, config kwargs, batch, timesteps)
    ("small  B4 T16 d8 u16", dict(input_dim=8, units=16), 4, 16),
    ("medium B8 T64 d32 u64", dict(input_dim=32, units=64, return_sequences=True), 8, 64),
    ("bidir  B4 T32 d16 u32", dict(input_dim=16, units=32, bidirectional=True, return_sequences=True), 4, 32),
]


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), first


def bench_adapter(name: str, repeats: int) -> list[dict]:
    adapter = load(name)
    rows = []
    for label, kw, batch, steps in SHAPES:
        cfg = Config(dtype="float32", return_state=True, **kw)
        if adapter.unsupported_reason(cfg, adapter.variants[0], "cpu"):
            rows.append({"adapter": name, "shape": label, "skip": adapter.unsupported_reason(cfg, adapter.variants[0], "cpu")})
            continue
        rng = np.random.default_rng(0)
        weights = [random_weights(cfg, rng) for _ in range(4)]
        x = rng.normal(size=(batch, steps, cfg.input_dim))
        it = iter(range(10**9))

        def adapter_call():
            w = weights[next(it) % len(weights)]
            handle = adapter.build(cfg, w, variant=adapter.variants[0])
            adapter.forward(handle, x)

        adapter_ms, first_ms = _median_ms(adapter_call, repeats)
        try:
            bare = adapter.bare_forward(adapter.build(cfg, weights[0], variant=adapter.variants[0]), x)
            bare_ms, _ = _median_ms(bare, repeats)
        except Unsupported:
            bare_ms = float("nan")
        checker = Checker(adapter, adapter.variants[0], "cpu", None, ("GATE-1",), "bench")
        case = Case(cfg, weights[0], x)
        check_ms, _ = _median_ms(lambda: checker.forward(case), max(3, repeats // 2))
        rows.append({"adapter": name, "shape": label, "first_ms": first_ms, "adapter_ms": adapter_ms,
                     "bare_ms": bare_ms, "ratio": adapter_ms / bare_ms, "checks_per_s": 1e3 / check_ms})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append", help="adapter name (default: every one importable here)")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    names = args.backend or available_names()
    print(f"{'adapter':<18}{'shape':<24}{'first ms':>10}{'adapter ms':>12}{'bare ms':>10}{'ratio':>8}{'checks/s':>10}")
    worst = 0.0
    for name in names:
        for r in bench_adapter(name, args.repeats):
            if "skip" in r:
                print(f"{r['adapter']:<18}{r['shape']:<24}  skipped: {r['skip']}")
                continue
            worst = max(worst, r["ratio"]) if np.isfinite(r["ratio"]) else worst
            print(f"{r['adapter']:<18}{r['shape']:<24}{r['first_ms']:>10.1f}{r['adapter_ms']:>12.2f}"
                  f"{r['bare_ms']:>10.2f}{r['ratio']:>8.2f}{r['checks_per_s']:>10.1f}")
    print(f"worst adapter/bare ratio: {worst:.2f} (target <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
