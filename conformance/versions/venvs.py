"""Cached virtual environments with chosen releases of a backend's framework, built with pip from the
configured index (pip's own settings apply: index URLs, find-links, constraints).

One environment per (backend, pins, Python): ``<cache>/<backend>-<digest>/``, reused once its ``.ready`` marker
exists. It holds the backend's requirements (this project's extra of that name, read from the installed
distribution's metadata) with the pinned packages replacing theirs, and the suite's own dependencies; the
suite itself is not installed there: it runs from this checkout through ``PYTHONPATH``, so every release is
checked by the same code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["InstallError", "backend_requirements", "ensure_venv", "venv_python", "run_env", "default_cache",
           "BACKEND_ENV"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding reference/ and conformance/
#: what each backend's tox env sets (tox.ini set_env) besides its packages
BACKEND_ENV = {"keras-tensorflow": {"KERAS_BACKEND": "tensorflow"}, "keras-jax": {"KERAS_BACKEND": "jax"},
               "keras-torch": {"KERAS_BACKEND": "torch"}, "tf-keras": {"TF_USE_LEGACY_KERAS": "1"}}
#: the suite's own runtime dependencies (pyproject's [project] dependencies + what the xfail reader needs)
_SUITE = ("numpy", "hypothesis", "pytest", "packaging")
_LOG_LINES = 3


class InstallError(RuntimeError):
    """pip could not build the environment; the message is pip's own last error lines."""


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lstm-conformance" / "venvs"


def backend_requirements(backend: str) -> list[str]:
    """The requirements of this project's extra named ``backend`` (e.g. ``keras>=3.0``, ``jax>=0.4.30``)."""
    try:
        requires = metadata.requires("lstm-conformance") or []
    except metadata.PackageNotFoundError:
        raise InstallError("lstm-conformance is not installed in this Python (pip install -e .): its backend "
                           "extras name each backend's packages") from None
    out = []
    for text in requires:
        req = Requirement(text)
        if req.marker is not None and req.marker.evaluate({"extra": backend}) and \
                not req.marker.evaluate({"extra": "__none__"}):
            req.marker = None
            out.append(str(req))
    if not out:
        raise InstallError(f"backend {backend!r} has no extra in lstm-conformance's metadata")
    return out


def _merge(base: list[str], pins: list[str]) -> list[str]:
    """``base`` with every package named in ``pins`` replaced by its pin, then the other pins."""
    pinned = {canonicalize_name(Requirement(p).name) for p in pins}
    return [r for r in base if canonicalize_name(Requirement(r).name) not in pinned] + list(pins)


def venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(backend: str, pins: list[str], cache: Path | None = None, log=None) -> Path:
    """The environment for ``backend`` with ``pins``; built on first use. InstallError when pip fails."""
    reqs = _merge(backend_requirements(backend), pins) + [p for p in _SUITE]
    key = json.dumps({"backend": backend, "reqs": sorted(reqs), "python": sys.version.split()[0]})
    path = Path(cache or default_cache()) / f"{backend}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if (path / ".ready").is_file():
        return path
    if log:
        log(f"  building {path} ({' '.join(reqs)})")
    # this Python's pip installs into the new env (``pip --python``): no ensurepip run per environment
    venv.EnvBuilder(with_pip=False, clear=True).create(path)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv_python(path)), "install", "-q",
                           "--disable-pip-version-check", *reqs], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
        raise InstallError(" / ".join(lines[-_LOG_LINES:]) or f"pip exited {proc.returncode}")
    (path / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (path / ".ready").write_text(key + "\n")
    return path


def run_env(backend: str) -> dict[str, str]:
    """The environment a probe runs in: this checkout first on the path, the backend's own variables."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(BACKEND_ENV.get(backend, {}))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env
