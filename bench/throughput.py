"""Adapter throughput: the adapter against the framework's bare call per shape, and checks per second per
backend on the drawn cases of the ``ci`` and ``thorough`` profiles.

    python bench/throughput.py [--backend NAME ...] [--repeats N] [--cases N] [--profile ci --profile thorough]
                               [--no-shapes] [--no-profiles] [--json FILE]

Every adapter importable in this process is measured (Keras' backend is fixed per process: run once per
KERAS_BACKEND), every variant that runs on the CPU here. Table 1, per fixed shape, side by side in one run:
  adapter ms  build (cached layer or session, new weights every call) + forward + conversion to canonical
              outputs
  bare ms     the framework's own forward call on tensors already in its layout (Adapter.bare_forward)
  ratio       adapter / bare (target <= 2: the harness must not hide the framework's speed). A ratio that was
              not measured (no bare call) is printed as "not measured" and fails the target.
Each figure is the fastest of ``repeats`` calls after one warm-up call (tracing/compilation excluded there and
reported separately as 'first ms'): on a shared machine other work only ever adds time, so the fastest call is
the steadiest estimate of each side's own cost.

Table 2, per backend and profile: the first ``cases`` cases hypothesis draws for the forward property under that
profile (derandomized, so the same cases before and after a change), each judged as a check does
(``judge_forward``: build, forward, float64 and dtype references, error model), every variant in turn, cold:
compilation, tracing and layer building are part of a check. checks/s = cases judged / wall time;
checks/cpu-s = cases judged / this process's CPU time (all its threads): steadier than wall time on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import Phase, given, settings  # noqa: E402

from conformance.adapters import available_names, load  # noqa: E402
from conformance.adapters.base import Unsupported  # noqa: E402
from conformance.harness import profiles  # noqa: E402,F401  (registers the profiles)
from conformance.harness.judge import Target, judge_forward  # noqa: E402
from conformance.harness.strategies import cases  # noqa: E402
from reference import Config, random_weights  # noqa: E402

SHAPES = [  # (label, config kwargs, batch, timesteps)
    ("small  B4 T16 d8 u16", dict(input_dim=8, units=16), 4, 16),
    ("medium B8 T64 d32 u64", dict(input_dim=32, units=64, return_sequences=True), 8, 64),
    ("bidir  B4 T32 d16 u32", dict(input_dim=16, units=32, bidirectional=True, return_sequences=True), 4, 32),
]
TARGET_RATIO = 2.0


def _best_ms(fn, repeats: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times), first


def _variants(adapter) -> list[tuple[str, str | None]]:
    """(variant, why it cannot run here or None) for every variant of the adapter."""
    return [(v, adapter.variant_unavailable_reason(v, "cpu")) for v in adapter.variants]


def bench_shapes(name: str, repeats: int) -> list[dict]:
    adapter = load(name)
    rows = []
    for variant, unavailable in _variants(adapter):
        for label, kw, batch, steps in SHAPES:
            row = {"adapter": name, "variant": variant, "shape": label}
            cfg = Config(dtype="float32", return_state=True, **kw)
            reason = unavailable or adapter.unsupported_reason(cfg, variant, "cpu")
            if reason:
                rows.append({**row, "skip": reason})
                continue
            rng = np.random.default_rng(0)
            # distinct weights for every call, as every drawn case has (no cache may answer by content)
            weights = iter([random_weights(cfg, rng) for _ in range(repeats + 2)])
            x = rng.normal(size=(batch, steps, cfg.input_dim))

            def adapter_call():
                handle = adapter.build(cfg, next(weights), variant=variant)
                adapter.forward(handle, x)

            try:
                adapter_ms, first_ms = _best_ms(adapter_call, repeats)
            except Exception as exc:  # noqa: BLE001 - the framework cannot run this shape (e.g. STACK-1 on JAX)
                first = (str(exc).strip().splitlines() or [""])[0][:120]
                rows.append({**row, "skip": f"the framework raised {type(exc).__name__}: {first}"})
                continue
            try:
                bare = adapter.bare_forward(adapter.build(cfg, random_weights(cfg, rng), variant=variant), x)
                bare_ms, _ = _best_ms(bare, repeats)
            except Unsupported as exc:
                bare_ms, row["bare_missing"] = float("nan"), str(exc)
            rows.append({**row, "first_ms": first_ms, "adapter_ms": adapter_ms, "bare_ms": bare_ms,
                         "ratio": adapter_ms / bare_ms})
    return rows


def bench_profile(name: str, profile: str, n_cases: int) -> dict:
    """Judge the first ``n_cases`` drawn cases of every runnable variant; checks/s over all of them."""
    adapter = load(name)
    settings.load_profile(profile)  # the strategies read the profile (its share of STRESS cases)
    judged, seconds, cpu, per_variant = 0, 0.0, 0.0, {}
    for variant, unavailable in _variants(adapter):
        if unavailable:
            continue
        target = Target(adapter, variant, "cpu")
        done = {"n": 0, "s": 0.0, "cpu": 0.0}

        @settings(max_examples=n_cases, derandomize=True, database=None, phases=[Phase.generate], deadline=None)
        @given(cases(adapter, variant))
        def run(case):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                judge_forward(target, case)
            except Unsupported:  # a per-call refusal: the draw is rejected in a real run too
                return
            done["s"] += time.perf_counter() - t0
            done["cpu"] += time.process_time() - c0
            done["n"] += 1

        run()
        judged, seconds, cpu = judged + done["n"], seconds + done["s"], cpu + done["cpu"]
        per_variant[variant] = done["n"] / done["s"] if done["s"] else float("nan")
    return {"adapter": name, "profile": profile, "cases": judged, "seconds": seconds, "cpu_seconds": cpu,
            "checks_per_s": judged / seconds if seconds else float("nan"),
            "checks_per_cpu_s": judged / cpu if cpu else float("nan"), "per_variant": per_variant}


def _fmt(v: float, spec: str) -> str:
    return format(v, spec) if math.isfinite(v) else "not measured"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append", help="adapter name (default: every one importable here)")
    ap.add_argument("--repeats", type=int, default=20, help="timed calls per shape (default 20)")
    ap.add_argument("--cases", type=int, default=12, help="drawn cases per variant and profile (default 12)")
    ap.add_argument("--profile", action="append", choices=("dev", "ci", "thorough"),
                    help="profiles for checks/s (default: ci and thorough)")
    ap.add_argument("--no-shapes", action="store_true", help="skip table 1 (adapter vs bare per shape)")
    ap.add_argument("--no-profiles", action="store_true", help="skip table 2 (checks/s per profile)")
    ap.add_argument("--json", type=Path, help="also write every row to this JSON file")
    args = ap.parse_args(argv)
    names = args.backend or available_names()
    out: dict = {"shapes": [], "profiles": []}
    failed = []
    if not args.no_shapes:
        print(f"{'adapter':<18}{'variant':<17}{'shape':<24}{'first ms':>10}{'adapter ms':>12}{'bare ms':>14}"
              f"{'ratio':>14}")
        for name in names:
            for r in bench_shapes(name, args.repeats):
                out["shapes"].append(r)
                head = f"{r['adapter']:<18}{r['variant']:<17}{r['shape']:<24}"
                if "skip" in r:
                    print(f"{head}  skipped: {r['skip']}")
                    continue
                if not (math.isfinite(r["ratio"]) and r["ratio"] <= TARGET_RATIO):
                    failed.append(f"{r['adapter']}:{r['variant']} {r['shape'].split()[0]} "
                                  f"({_fmt(r['ratio'], '.2f')})")
                print(f"{head}{r['first_ms']:>10.1f}{r['adapter_ms']:>12.2f}{_fmt(r['bare_ms'], '.2f'):>14}"
                      f"{_fmt(r['ratio'], '.2f'):>14}")
        measured = [r["ratio"] for r in out["shapes"] if "ratio" in r and math.isfinite(r["ratio"])]
        print(f"worst measured adapter/bare ratio: {_fmt(max(measured, default=float('nan')), '.2f')} "
              f"(target <= {TARGET_RATIO:g}); over target or not measured: {', '.join(failed) or 'none'}")
    if not args.no_profiles:
        print(f"\n{'adapter':<18}{'profile':<10}{'cases':>7}{'seconds':>9}{'checks/s':>10}{'cpu s':>8}"
              f"{'checks/cpu-s':>14}  per variant (checks/s)")
        for name in names:
            for profile in args.profile or ["ci", "thorough"]:
                r = bench_profile(name, profile, args.cases)
                out["profiles"].append(r)
                per = ", ".join(f"{v} {_fmt(c, '.2f')}" for v, c in r["per_variant"].items())
                print(f"{name:<18}{profile:<10}{r['cases']:>7}{r['seconds']:>9.1f}{_fmt(r['checks_per_s'], '.2f'):>10}"
                      f"{r['cpu_seconds']:>8.1f}{_fmt(r['checks_per_cpu_s'], '.2f'):>14}  {per}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
