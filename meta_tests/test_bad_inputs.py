"""First contact with bad input: every subcommand of the installed console script, fed what a careless or
demanding user types, answers with one line on stderr naming the input, the documented exit code
(conformance/cli.py: 2 usage or bad input, 3 environment) and never a traceback.

Every case is refused before any real work (no conformance check runs), so the whole table takes seconds;
the cases run as subprocesses on a small thread pool, started together by the first test that asks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).with_name("lstm-conformance")
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason=f"console script not installed beside {sys.executable}")

USAGE, ENVIRONMENT = 2, 3
BIG = str(10**12)


@dataclass(frozen=True)
class Bad:
    """One bad input: the arguments (run in the workspace; ``{ro}`` is a read-only folder, ``{missing}`` a
    known backend that is not installed here), the exit code it must get and a text its line must name."""

    args: tuple[str, ...]
    code: int
    names: str

    @property
    def id(self) -> str:
        return " ".join(self.args)[:70] or "(no arguments)"


def bad(code: int, names: str, *args: str) -> Bad:
    return Bad(tuple(args), code, names)


CASES = [
    # the command itself
    bad(USAGE, "required", ),
    bad(USAGE, "frobnicate", "frobnicate"),
    bad(USAGE, "--frobnicate", "params", "--units", "3", "--input-dim", "3", "--frobnicate"),
    # params: sizes, bounds, and options that would be silently ignored
    bad(USAGE, "--input-dim and --units", "params"),
    bad(USAGE, "--units", "params", "--units", "0", "--input-dim", "3"),
    bad(USAGE, "--units", "params", "--units", "abc", "--input-dim", "3"),
    bad(USAGE, "--units", "params", "--units", BIG, "--input-dim", "3"),
    bad(USAGE, "--input-dim", "params", "--units", "3", "--input-dim", BIG),
    bad(USAGE, "--num-layers", "params", "--units", "3", "--input-dim", "3", "--num-layers", BIG),
    bad(USAGE, "--num-layers", "params", "--units", "3", "--input-dim", "3", "--num-layers", "0"),
    bad(USAGE, "--proj-size", "params", "--units", "3", "--input-dim", "3", "--proj-size", BIG),
    bad(USAGE, "proj_size=3", "params", "--units", "3", "--input-dim", "3", "--proj-size", "3"),
    bad(USAGE, "--proj-size", "params", "--units", "3", "--input-dim", "3", "--proj-size", "-1"),
    bad(USAGE, "item 2", "params", "--model", "lstm:4,", "--input-shape", "5,3"),
    bad(USAGE, "item 2", "params", "--model", "lstm:4,,dense:2", "--input-shape", "5,3"),
    bad(USAGE, "item 1", "params", "--model", ",lstm:4", "--input-shape", "5,3"),
    bad(USAGE, "'gru:4'", "params", "--model", "gru:4", "--input-shape", "5,3"),
    bad(USAGE, "'lstm'", "params", "--model", "lstm", "--input-shape", "5,3"),
    bad(USAGE, "'lstm:x'", "params", "--model", "lstm:x", "--input-shape", "5,3"),
    bad(USAGE, "'lstm:4.0'", "params", "--model", "lstm:4.0", "--input-shape", "5,3"),
    bad(USAGE, "'lstm:1_000'", "params", "--model", "lstm:1_000", "--input-shape", "5,3"),
    bad(USAGE, "'dense:0'", "params", "--model", "lstm:4,dense:0", "--input-shape", "5,3"),
    bad(USAGE, f"'lstm:{BIG}'", "params", "--model", f"lstm:{BIG}", "--input-shape", "5,3"),
    bad(USAGE, "1025 items", "params", "--model", ",".join(["lstm:1"] * 1025), "--input-shape", "5,3"),
    bad(USAGE, "--input-shape", "params", "--model", "lstm:4"),
    bad(USAGE, "--input-shape '5'", "params", "--model", "lstm:4", "--input-shape", "5"),
    bad(USAGE, "--input-shape", "params", "--model", "lstm:4", "--input-shape", f"5,{BIG}"),
    bad(USAGE, "--units", "params", "--model", "lstm:4", "--input-shape", "5,3", "--units", "4"),
    bad(USAGE, "--input-shape", "params", "--units", "4", "--input-dim", "3", "--input-shape", "5,3"),
    # run: refused at start-up, before any check
    bad(USAGE, "'no-such-backend'", "run", "--backend", "no-such-backend"),
    bad(ENVIRONMENT, "{missing} not installed", "run", "--backend", "{missing}", "--report-dir", "reports"),
    bad(ENVIRONMENT, "--device gpu", "run", "--backend", "numpy", "--device", "gpu", "--report-dir", "reports"),
    bad(USAGE, "--device", "run", "--device", "tpu"),
    bad(USAGE, "--profile", "run", "--profile", "fast"),
    bad(USAGE, "--run-id '../x'", "run", "--backend", "numpy", "--run-id", "../x"),
    bad(ENVIRONMENT, "--report-dir afile", "run", "--backend", "numpy", "--report-dir", "afile"),
    bad(ENVIRONMENT, "--report-dir afile/reports", "run", "--backend", "numpy", "--report-dir", "afile/reports"),
    bad(ENVIRONMENT, "--report-dir {ro}", "run", "--backend", "numpy", "--report-dir", "{ro}"),
    bad(USAGE, "--no-such-pytest-flag", "run", "--backend", "numpy", "--report-dir", "reports",
        "--no-such-pytest-flag"),
    bad(USAGE, "no_such_test.py", "run", "--backend", "numpy", "--report-dir", "reports", "no_such_test.py"),
    # report: inputs and the --out destination (checked before reading the runs)
    bad(USAGE, "RUN_DIR", "report"),
    bad(USAGE, "no-such-folder", "report", "no-such-folder"),
    bad(USAGE, "empty", "report", "empty"),
    bad(USAGE, "results.jsonl", "report", "folder-results/run1"),
    bad(ENVIRONMENT, "--out afile", "report", "folder-results/run1", "--out", "afile"),
    bad(ENVIRONMENT, "--out afile/latest", "report", "folder-results/run1", "--out", "afile/latest"),
    bad(ENVIRONMENT, "--out {ro}/latest", "report", "folder-results/run1", "--out", "{ro}/latest"),
    # gate
    bad(USAGE, "--baseline", "gate", "folder-results/run1"),
    bad(USAGE, "missing.json", "gate", "--baseline", "missing.json", "folder-results/run1"),
    bad(USAGE, "bad.json", "gate", "--baseline", "bad.json", "folder-results/run1"),
    bad(USAGE, "--ratio-factor", "gate", "--baseline", "bad.json", "bad.json", "--ratio-factor", "abc"),
    bad(USAGE, "--ratio-factor", "gate", "--baseline", "bad.json", "bad.json", "--ratio-factor", "0.5"),
    bad(USAGE, "results.jsonl", "gate", "--baseline", "folder-results/run1", "folder-results/run1"),
    # repro: missing, damaged and foreign blobs
    bad(USAGE, "missing.npz", "repro", "missing.npz"),
    bad(USAGE, "garbage.npz", "repro", "garbage.npz"),
    bad(USAGE, "empty.npz", "repro", "empty.npz"),
    bad(USAGE, "folder.npz", "repro", "folder.npz"),
    bad(USAGE, "truncated.npz", "repro", "truncated.npz"),
    bad(USAGE, "corrupted.npz", "repro", "corrupted.npz"),
    bad(USAGE, "array.npy", "repro", "array.npy"),
    bad(USAGE, "__meta__", "repro", "no-meta.npz"),
    bad(USAGE, "__meta__", "repro", "meta-not-json.npz"),
    bad(USAGE, "bad-config.npz", "repro", "bad-config.npz"),
    bad(USAGE, "bad-weights.npz", "repro", "bad-weights.npz"),
    bad(USAGE, "bad-x.npz", "repro", "bad-x.npz"),
    bad(USAGE, "unknown check", "repro", "bad-check.npz"),
    bad(ENVIRONMENT, "'no-such-adapter'", "repro", "unknown-adapter.npz"),
    bad(ENVIRONMENT, "not installed", "repro", "missing-adapter.npz"),
    # calibrate: bounds, backends and the --json destination, all before any case is drawn
    bad(USAGE, "--cases", "calibrate", "--cases", "0"),
    bad(USAGE, "--cases", "calibrate", "--cases", BIG),
    bad(USAGE, "--seed", "calibrate", "--seed", "-1"),
    bad(USAGE, "'no-such-backend'", "calibrate", "--backend", "no-such-backend"),
    bad(ENVIRONMENT, "--backend {missing}", "calibrate", "--backend", "{missing}", "--cases", "1"),
    bad(ENVIRONMENT, "--json afile/k.json", "calibrate", "--backend", "numpy", "--cases", "1", "--json",
        "afile/k.json"),
    bad(ENVIRONMENT, "--json .", "calibrate", "--backend", "numpy", "--cases", "1", "--json", "."),
    bad(ENVIRONMENT, "--json {ro}/k.json", "calibrate", "--backend", "numpy", "--cases", "1", "--json",
        "{ro}/k.json"),
    bad(USAGE, "missing.json", "calibrate", "--merge", "missing.json"),
    bad(USAGE, "bad.json", "calibrate", "--merge", "bad.json"),
    bad(USAGE, "empty", "calibrate", "--merge", "empty"),
    # bisect: spec, backend, pins and the case, all before any venv is built
    bad(USAGE, "--versions", "bisect", "good.npz", "--backend", "numpy"),
    bad(USAGE, "'no-such-backend'", "bisect", "good.npz", "--backend", "no-such-backend", "--versions", "keras==3.0.0"),
    bad(USAGE, "expected a package with versions", "bisect", "good.npz", "--backend", "numpy", "--versions", "keras"),
    bad(USAGE, "the range is empty", "bisect", "good.npz", "--backend", "numpy", "--versions", "keras==3.5...3.1"),
    bad(USAGE, "not a version", "bisect", "good.npz", "--backend", "numpy", "--versions", "keras==x...3.1"),
    bad(USAGE, "--with", "bisect", "good.npz", "--backend", "numpy", "--versions", "keras==3.0.0", "--with", "==bad"),
    bad(USAGE, "missing.npz", "bisect", "missing.npz", "--backend", "numpy", "--versions", "keras==3.0.0"),
    bad(USAGE, "garbage.npz", "bisect", "garbage.npz", "--backend", "numpy", "--versions", "keras==3.0.0"),
    bad(USAGE, "recorded on 'numpy'", "bisect", "good.npz", "--backend", "torch", "--versions", "torch==2.13.0"),
    # diagnose
    bad(USAGE, "missing.npz", "diagnose", "missing.npz"),
    bad(USAGE, "garbage.npz", "diagnose", "garbage.npz"),
    bad(USAGE, "--budget", "diagnose", "good.npz", "--budget", "-1"),
    bad(USAGE, "--budget", "diagnose", "good.npz", "--budget", "nan"),
    # false-alarms
    bad(USAGE, "--backend", "false-alarms"),
    bad(USAGE, "--backend 'nope'", "false-alarms", "--backend", "nope"),
    bad(USAGE, "--seeds", "false-alarms", "--backend", "numpy", "--seeds", "-1"),
    bad(USAGE, "--thorough-runs", "false-alarms", "--backend", "numpy", "--thorough-runs", "many"),
    # convert: all refused before anything is converted or written (lstm.npz: Keras get_weights(), units 3)
    bad(USAGE, "missing.npz: no such file", "convert", "missing.npz", "out.onnx"),
    bad(USAGE, "kernel (arr_0): expected shape (2, 20), found (2, 12)", "convert", "lstm.npz", "out.onnx", "--units", "5"),
    bad(USAGE, "exists; pass --force", "convert", "lstm.npz", "exists.onnx"),
    bad(USAGE, "unknown file type", "convert", "lstm.npz", "params.safetensors"),
    bad(USAGE, "--to", "convert", "lstm.npz", "out.onnx", "--to", "caffe"),
    bad(USAGE, "garbage.weights.h5: not an HDF5 file", "convert", "garbage.weights.h5", "out.npz"),
    bad(USAGE, "garbage.msgpack: not a flax.serialization msgpack file", "convert", "garbage.msgpack", "out.npz"),
]


# ---- the workspace every case runs in ---------------------------------------------------------------------
def _read_only_folder(tmp: Path) -> Path | None:
    """A folder nothing can be created in: a chmod 555 one, or (as root, who ignores modes) /sys."""
    ro = tmp / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    for candidate in (ro, Path("/sys")):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            return candidate
    return None


def _not_installed_backend() -> str | None:
    from conformance.adapters import all_names, available_names

    missing = [n for n in all_names() if n not in available_names()]
    return missing[0] if missing else None


def _blobs(ws: Path, missing: str | None) -> None:
    """A valid repro blob of the numpy adapter (``good.npz``) and damaged or foreign variants of it."""
    from conformance.harness.strategies import Case
    from reference import Config, random_weights

    config = Config(input_dim=2, units=3)
    case = Case(config=config, weights=random_weights(config, 0), x=np.random.default_rng(0).normal(size=(2, 4, 2)))
    arrays = case.arrays()
    meta = {"adapter": "numpy", "variant": "default", "device": "cpu", "check": "forward", "property": "forward",
            "rules": ["GATE-1"], "case": case.describe()}

    def save(name: str, meta=meta, **changes) -> None:
        content = {"__meta__": np.array(meta if isinstance(meta, str) else json.dumps(meta)), **arrays, **changes}
        np.savez(ws / name, **{k: v for k, v in content.items() if v is not None})

    save("good.npz")
    save("no-meta.npz", __meta__=None)
    save("meta-not-json.npz", meta="{not json")
    save("bad-config.npz", meta={**meta, "case": {**meta["case"], "config": {"units": -1}}})
    save("bad-weights.npz", w_l0_d0_W=np.zeros((4, 5, 2)))
    save("bad-x.npz", x=np.zeros((2, 4, 7)))
    save("bad-check.npz", meta={**meta, "check": "telepathy"})
    save("unknown-adapter.npz", meta={**meta, "adapter": "no-such-adapter"})
    if missing:
        save("missing-adapter.npz", meta={**meta, "adapter": missing})
    good = (ws / "good.npz").read_bytes()
    (ws / "truncated.npz").write_bytes(good[: len(good) // 2])
    middle = len(good) // 2  # inside a member's data: the archive opens, reading the member fails its CRC
    (ws / "corrupted.npz").write_bytes(good[:middle] + bytes(b ^ 0xFF for b in good[middle:middle + 64])
                                       + good[middle + 64:])
    np.save(ws / "array.npy", np.zeros(3))
    (ws / "garbage.npz").write_text("this is not an archive\n")
    (ws / "empty.npz").write_bytes(b"")
    (ws / "folder.npz").mkdir()


def _convert_files(ws: Path) -> None:
    from reference import Config, random_weights
    from reference.layouts import to_keras

    config = Config(input_dim=2, units=3)
    np.savez(ws / "lstm.npz", *[a for d in to_keras(random_weights(config, 0), config)[0] for a in d.values()])
    (ws / "exists.onnx").write_text("not to be overwritten\n")
    (ws / "garbage.weights.h5").write_text("this is not an HDF5 file\n")
    (ws / "garbage.msgpack").write_bytes(b"\xc1 not msgpack")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("bad-inputs")
    (ws / "afile").write_text("a file where a folder belongs\n")
    (ws / "empty").mkdir()
    (ws / "folder-results/run1/results.jsonl").mkdir(parents=True)  # a run whose results.jsonl is a folder
    (ws / "bad.json").write_text("{not json")
    missing = _not_installed_backend()
    _blobs(ws, missing)
    _convert_files(ws)
    ro = _read_only_folder(ws)
    yield ws, {"ro": ro, "missing": missing}
    if ro is not None and ro.is_relative_to(ws):
        ro.chmod(0o755)
    shutil.rmtree(ws, ignore_errors=True)


def cli(args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def answers(workspace) -> dict[Bad, subprocess.CompletedProcess | str]:
    """Each case's finished process (all started together), or why it cannot run here."""
    ws, subst = workspace

    def one(case: Bad):
        needed = [k for k in subst if any(f"{{{k}}}" in a for a in case.args)]
        if any(subst[k] is None for k in needed):
            return f"needs {needed}: none here (every backend installed, or no read-only folder)"
        return cli([a.format(**subst) for a in case.args], ws)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(CASES, pool.map(one, CASES)))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_with_the_documented_exit_code(case, answers, workspace):
    proc = answers[case]
    if isinstance(proc, str):
        pytest.skip(proc)
    names = case.names.format(**{k: v for k, v in workspace[1].items() if v is not None})
    shown = f"exit {proc.returncode}\n--- stderr ---\n{proc.stderr[-2000:]}\n--- stdout ---\n{proc.stdout[-2000:]}"
    for marker in ("Traceback", "INTERNALERROR"):
        assert marker not in proc.stderr + proc.stdout, shown
    assert proc.returncode == case.code, shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"stderr must be one line\n{shown}"
    assert names in lines[0], f"the line must name {names!r}\n{shown}"


def test_the_table_covers_every_subcommand_and_both_codes():
    from conformance.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    covered = {c.args[0] for c in CASES if c.args}
    assert set(sub.choices) <= covered, set(sub.choices) - covered
    assert len(CASES) >= 40 and {c.code for c in CASES} == {USAGE, ENVIRONMENT}


def test_the_undamaged_blob_replays(workspace):
    """Control: the blob the damaged ones are made from is sound, so each refusal above is the damage's."""
    proc = cli(["repro", "good.npz"], workspace[0])
    assert proc.returncode == 0 and "result   PASS" in proc.stdout, proc.stdout + proc.stderr


def test_sizes_at_the_documented_bounds_are_accepted(workspace):
    from conformance.cli import MAX_LAYERS, MAX_SIZE

    proc = cli(["params", "--units", str(MAX_SIZE), "--input-dim", "1", "--num-layers", "2", "--proj-size",
                str(MAX_SIZE - 1)], workspace[0])
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    proc = cli(["params", "--model", ",".join(["lstm:1"] * (MAX_LAYERS - 1)) + f",dense:{MAX_SIZE}", "--input-shape",
                f"{MAX_SIZE},{MAX_SIZE}"], workspace[0])
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
