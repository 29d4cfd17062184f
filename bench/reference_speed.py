"""Reference speed: the reference's forward and forward+backward against torch.nn.LSTM (CPU, same dtype) and
onnx's ReferenceEvaluator (forward), same weights and inputs, in one process per thread setting.

    .tox/torch/bin/python bench/reference_speed.py [--threads 1 all] [--dtype float64 float32] [--repeats N]
    .tox/onnxruntime/bin/python bench/reference_speed.py ...     (onnx's ReferenceEvaluator instead of torch)

Thread pinning: BLAS pools are sized when numpy (or torch) is first imported, so for each ``--threads`` value
the script runs itself again as a child process with OMP_NUM_THREADS, MKL_NUM_THREADS and
OPENBLAS_NUM_THREADS set in its environment, and the child also calls ``torch.set_num_threads``; each child
prints the settings it ran with. ``all`` is every core this process may use.

For each shape and dtype every implementation runs once (warm-up, and a check that the outputs agree:
timing two different computations would be meaningless), then ``--repeats`` rounds that call each
implementation in turn, so a change in the machine's load touches all of them alike. Reported: medians of
the wall time (ms) and, at one thread, of the process CPU time, which a busy shared machine inflates less.
Ratios are the reference's time over the other's (< 1: the reference is faster).

  reference fwd      reference.lstm_forward (validation, dtype conversion and all)
  reference fwd+bwd  reference.lstm_backward: the forward with its trace, then every gradient (x, h0, c0, weights)
  torch              nn.LSTM(batch_first=True) in the same dtype: forward under no_grad; forward + backward of
                     sum(y * g) with gradients for x and every parameter
  onnx-ref           onnx.reference.ReferenceEvaluator on a one-node LSTM graph (forward only)
  floor              one input GEMM, then per step one recurrent GEMM and the registry's gate functions: the
                     least any numpy loop does (a timing floor only; its numbers are checked, never used)

``--reference-root PATH`` times the ``reference`` package of another checkout; ``--baseline-root PATH`` adds
another checkout's reference (e.g. a git worktree of an older commit) as the column 'baseline', timed in the
same rounds, so a before/after ratio is measured side by side rather than in two runs a busy machine can
skew differently. Anything not installed in the running environment is reported as "not installed".
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
SHAPES = {  # label -> (T, B, d, u)
    "T100 B32 d64 u128": (100, 32, 64, 128),
    "T1000 B1 d64 u128": (1000, 1, 64, 128),
    "T16 B4 d8 u16": (16, 4, 8, 16),  # the size of a typical conformance case: per-call overhead dominates
}
AGREE = {"float64": 1e-9, "float32": 1e-3}  # max |other - reference| accepted before timing (outputs of O(1))


def all_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", nargs="+", default=["1", "all"], help="thread counts to run (an integer or 'all')")
    p.add_argument("--dtype", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    p.add_argument("--shape", nargs="+", default=list(SHAPES), choices=list(SHAPES), metavar="SHAPE",
                   help=f"shapes to run: {', '.join(repr(s) for s in SHAPES)}")
    p.add_argument("--repeats", type=int, default=9, help="timed rounds per shape and dtype (median reported)")
    p.add_argument("--reference-root", default=str(REPO), help="checkout whose reference/ package is timed")
    p.add_argument("--baseline-root", default=None, help="another checkout whose reference/ is timed alongside")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for t in args.threads:
        if t != "all" and not (t.isdigit() and int(t) >= 1):
            p.error(f"--threads {t!r}: allowed values are integers >= 1 and 'all'")
    if args.repeats < 1:
        p.error(f"--repeats {args.repeats}: must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return run_child(args)
    # SIGTERM ends the parent with SystemExit, and subprocess.run then kills the running child with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rc = 0
    for t in args.threads:
        n = all_cores() if t == "all" else int(t)
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS})
        child = [sys.executable, __file__, "--child", str(n), "--dtype", *args.dtype, "--shape", *args.shape,
                 "--repeats", str(args.repeats), "--reference-root", args.reference_root]
        if args.baseline_root:
            child += ["--baseline-root", args.baseline_root]
        rc = subprocess.run(child, env=env).returncode or rc
    return rc


# ---- the child: one thread setting, every implementation in this one process ---------------------------

def run_child(args: argparse.Namespace) -> int:
    for v in THREAD_VARS:  # already set by the parent; set here too so a direct --child call is pinned as well
        os.environ[v] = str(args.child)
    sys.path.insert(0, args.reference_root)
    import numpy as np

    import reference

    baseline = None if args.baseline_root is None else _load_package("reference_baseline", args.baseline_root)
    torch = _optional("torch")
    onnx = _optional("onnx")
    if torch is not None:
        torch.set_num_threads(args.child)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n== threads {args.child}: " + " ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS)
          + (f" torch.get_num_threads()={torch.get_num_threads()}" if torch is not None else ""))
    print(f"   python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else 'not installed'}, "
          f"onnx {onnx.__version__ if onnx is not None else 'not installed'}; reference from {reference.__file__}"
          + (f", baseline from {baseline.__file__}" if baseline is not None else ""))
    print(f"   load average {load:.1f} on {all_cores()} cores (a loaded machine stretches wall times; "
          "the interleaved rounds keep the ratios comparable)")
    print(f"   medians of {args.repeats} rounds; ratio = reference / other")
    head = f"   {'shape':<18} {'dtype':<8} {'pass':<8} {'reference ms':>12}"
    others = (["baseline"] if baseline is not None else []) + ["torch", "onnx-ref", "floor"]
    cpu_vs = [o for o in ("torch", "baseline") if o in others]
    for o in others:
        head += f" {o + ' ms':>11} {'ratio':>6}"
    print(head + (f"  cpu-time ratio vs {', '.join(cpu_vs)}" if args.child == 1 else ""))
    for label in args.shape:
        for dt in args.dtype:
            for row in bench_case(np, reference, baseline, torch, onnx, label, dt, args.repeats):
                line = f"   {label:<18} {dt:<8} {row['pass']:<8} {row['reference'][0]:>12.2f}"
                for o in others:
                    if o in row:
                        ms = row[o][0]
                        line += f" {ms:>11.2f} {row['reference'][0] / ms:>6.2f}"
                    else:
                        line += f" {row.get(o + '_why', 'n/a'):>18}"
                if args.child == 1:
                    line += "  " + " ".join(f"{row['reference'][1] / row[o][1]:.2f}" if o in row else "n/a"
                                            for o in cpu_vs)
                print(line, flush=True)
    return 0


def _optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def _load_package(name: str, root: str):
    """``root``/reference imported under another name, beside this process's own ``reference``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, f"{root}/reference/__init__.py",
                                                  submodule_search_locations=[f"{root}/reference"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _timed(fns: dict, repeats: int) -> dict:
    """name -> (median wall ms, median CPU ms), every function called once per round, in turn."""
    import statistics
    import time
    wall: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu[k].append((time.process_time() - c0) * 1e3)
            wall[k].append((time.perf_counter() - w0) * 1e3)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def bench_case(np, reference, baseline, torch, onnx, label: str, dt: str, repeats: int) -> list[dict]:
    T, B, d, u = SHAPES[label]
    cfg = reference.Config(input_dim=d, units=u, bias_mode="double", return_sequences=True, dtype=dt)
    w = reference.random_weights(cfg, seed=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, d)).astype(dt)
    g = rng.normal(size=(B, T, u)).astype(dt)
    y_ref = reference.lstm_forward(cfg, w, x).output
    fwd = {"reference": lambda: reference.lstm_forward(cfg, w, x)}
    fb = {"reference": lambda: reference.lstm_backward(cfg, w, x, g_out=g)}
    why: dict = {}
    impls = {"torch": (torch, _torch_impl), "onnx-ref": (onnx, _onnx_impl), "floor": (np, _floor_impl)}
    if baseline is not None:
        impls = {"baseline": (baseline, _baseline_impl), **impls}
    for name, (module, make) in impls.items():
        if module is None:
            why[name] = "not installed"
            continue
        f, b, y = make(np, reference, module, cfg, w, x, g)
        err = float(np.max(np.abs(np.asarray(y, np.float64) - y_ref)))
        if not err <= AGREE[dt]:
            why[name] = f"disagrees {err:.1e}"
            continue
        fwd[name] = f
        if b is not None:
            fb[name] = b
    rows = []
    for pas, fns in (("fwd", fwd), ("fwd+bwd", fb)):
        row = {"pass": pas, **_timed(fns, repeats)}
        for name in impls:
            if name not in row:
                row[name + "_why"] = why.get(name, "fwd only")
        rows.append(row)
    return rows


def _baseline_impl(np, reference, baseline, cfg, w, x, g):
    bcfg = baseline.Config(**cfg.to_dict())
    bw = baseline.Weights.from_flat(w.flat())
    return (lambda: baseline.lstm_forward(bcfg, bw, x), lambda: baseline.lstm_backward(bcfg, bw, x, g_out=g),
            baseline.lstm_forward(bcfg, bw, x).output)


def _torch_impl(np, reference, torch, cfg, w, x, g):
    tdt = getattr(torch, cfg.dtype)
    lstm = torch.nn.LSTM(cfg.input_dim, cfg.units, batch_first=True).to(tdt)
    lstm.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, cfg.dtype))
                          for k, v in reference.to_torch(w, cfg).items()})
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)

    def fwd():
        with torch.no_grad():
            return lstm(xt)[0]

    def fwd_bwd():
        for p in lstm.parameters():
            p.grad = None
        xr = xt.detach().requires_grad_()
        lstm(xr)[0].backward(gt)
        return xr.grad

    return fwd, fwd_bwd, fwd().numpy()


def _onnx_impl(np, reference, onnx, cfg, w, x, g):
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
    elem = TensorProto.DOUBLE if cfg.dtype == "float64" else TensorProto.FLOAT
    feed = {k: v.astype(cfg.dtype) for k, v in reference.to_onnx(w, cfg).items()}
    feed["X"] = np.ascontiguousarray(x.transpose(1, 0, 2))  # layout 0: [T, B, d]
    names = ["X", "W", "R", "B"]
    node = helper.make_node("LSTM", names, ["Y"], hidden_size=cfg.units)
    graph = helper.make_graph([node], "lstm", [helper.make_tensor_value_info(n, elem, feed[n].shape) for n in names],
                              [helper.make_tensor_value_info("Y", elem, [None] * 4)])
    sess = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]))

    def fwd():
        return sess.run(None, feed)[0]

    return fwd, None, fwd()[:, 0].transpose(1, 0, 2)  # Y[T, 1, B, u] -> [B, T, u]


def _floor_impl(np, reference, _np, cfg, w, x, g):
    lw = w.astype(cfg.dtype).layers[0][0]
    four, u, d = lw.W.shape
    Wt = np.ascontiguousarray(lw.W.reshape(four * u, d).T)
    Ut = np.ascontiguousarray(lw.U.reshape(four * u, -1).T)
    bias = (lw.b + lw.b2).reshape(four * u)
    sig, tanh = cfg.recurrent_act, cfg.act

    def fwd():
        B, T, _ = x.shape
        zx = (x @ Wt + bias).reshape(B, T, four * u)
        h, c = np.zeros((B, u), x.dtype), np.zeros((B, u), x.dtype)
        y = np.empty((B, T, u), x.dtype)
        for t in range(T):
            z = zx[:, t] + h @ Ut
            i, f, gg, o = sig(z[:, :u]), sig(z[:, u:2 * u]), tanh(z[:, 2 * u:3 * u]), sig(z[:, 3 * u:])
            c = f * c + i * gg
            h = y[:, t] = o * tanh(c)
        return y

    return fwd, None, fwd()


if __name__ == "__main__":
    sys.exit(main())
