"""``python -m conformance.versions.pins BACKEND``: apply ``LSTM_CONFORMANCE_PINS`` to the running environment.

tox runs it before each backend's tests (``commands_pre``), so ``LSTM_CONFORMANCE_PINS="keras==3.4.1
jax==0.4.30" tox -e keras-jax`` checks those releases without editing a file. The pins are installed with pip
on top of the env's own requirements and remembered in ``<env>/lstm-conformance-pins.json``; a later run with
other pins (or none) re-installs the backend's requirements first, so an env never silently keeps an old pin.
Nothing happens when the variable is unset and the env was never pinned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .specs import parse_pins
from .venvs import backend_requirements

__all__ = ["ENV_VAR", "apply_pins", "main"]

ENV_VAR = "LSTM_CONFORMANCE_PINS"
_MARKER = Path(sys.prefix) / "lstm-conformance-pins.json"


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{ENV_VAR}: pip install {' '.join(args)} failed (exit {proc.returncode})")


def apply_pins(backend: str, text: str | None) -> list[str]:
    pins = parse_pins(text or "")
    if backend == "-":  # an env that is no backend (tests, report): nothing to restore
        if pins:
            _pip(*pins)
        return pins
    before = json.loads(_MARKER.read_text())["pins"] if _MARKER.is_file() else []
    if pins == before:
        return pins
    if before:  # back to the backend's own requirements first: no pin outlives the run that asked for it
        print(f"{ENV_VAR}: this env was pinned to {' '.join(before)}; restoring {backend}'s requirements")
        _pip("--upgrade", *backend_requirements(backend))
    if pins:
        print(f"{ENV_VAR}: installing {' '.join(pins)}")
        _pip(*pins)
    _MARKER.write_text(json.dumps({"pins": pins}) + "\n")
    return pins


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m conformance.versions.pins BACKEND", file=sys.stderr)
        return 2
    try:
        apply_pins(args[0], os.environ.get(ENV_VAR))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
