"""Repro files beside the report: for every failure with a saved case, a copy of its ``.npz`` blob and a short
script (rendered from ``templates/repro.py.j2``) under ``<out>/repro/<run>/``, so the report directory is
self-sufficient. Every file is written atomically (temp file + rename)."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from ..harness.files import replace_atomically, write_text_atomic
from .runs import RunData, safe_name

__all__ = ["render_script", "repro_command", "tox_env", "write_repros"]

#: adapters tested in a tox env of another name (every other adapter's env is named after it, see tox.ini)
_TOX_ENVS = {"numpy": "tests"}


def tox_env(adapter: str, builtin: bool = True) -> str | None:
    """The tox env that has ``adapter``'s framework; None for an adapter from the ``lstm_conformance.adapters``
    entry point (``builtin`` False in the run's record: a third party's, no env of this checkout has it)."""
    return _TOX_ENVS.get(adapter, adapter) if builtin else None


def repro_command(adapter: str, blob: str, builtin: bool = True) -> str:
    """The command that replays a saved case: from the checkout, the console script of the tox env that has
    the framework (``tox -e ENV`` builds it); for a third-party adapter, the console script of the environment
    that has it installed."""
    env = tox_env(adapter, builtin)
    return f"{'' if env is None else f'.tox/{env}/bin/'}lstm-conformance repro {shlex.quote(blob)}"


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
                             autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    # a value from a record reaches a comment: one line, so it can never end the comment and become code
    env.filters["line"] = lambda v: " ".join(str(v).split())[:200]
    env.filters["pyrepr"] = lambda v: repr(str(v))
    return env


def render_script(*, backend: dict, failure: dict, blob_name: str, script: str) -> str:
    """The script's text for one failure of a summary backend entry."""
    variant = failure.get("variant") or "default"
    label = backend["adapter"] + ("" if variant == "default" else f":{variant}")
    return _environment().get_template("repro.py.j2").render(
        backend=label, property=failure.get("property") or "", rules=failure.get("rules") or [],
        run=backend["run"], verdict=failure.get("verdict") or "",
        tox_env=tox_env(backend["adapter"], backend.get("builtin", True)),
        framework=backend.get("framework") or "the framework", script=script, blob_name=blob_name)


def _shown_path(path: Path) -> str:
    """``path`` as a reader at the checkout would type it: relative to the current directory when below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def write_repros(runs: list[RunData], summary: dict, out: Path) -> None:
    """Copy blobs and write scripts; add their paths and the repro command to the summary's failures."""
    by_id = {r.run_id: r for r in runs}
    mapping, written = {}, set()
    for b in summary["backends"].values():
        run = by_id[b["run"]]
        for f in b["failures"]:
            rel = f.get("repro")
            if not rel or (b["run"], rel) in mapping:
                continue
            src = (run.run_dir / rel).resolve()
            if not src.is_file() or run.run_dir.resolve() not in src.parents:
                continue  # a blob missing or outside its run directory is never copied
            folder = Path("repro") / safe_name(b["run"])
            blob = folder / safe_name(Path(rel).name)
            script = blob.with_suffix(".py")
            replace_atomically(out / blob, lambda tmp, src=src: shutil.copyfile(src, tmp))
            kept = []  # the files the failing call ran (an exported graph), kept beside its blob by the run
            for art in sorted(p for p in src.parent.glob(f"{src.stem}.*") if p.suffix != ".npz"):
                dest = folder / safe_name(art.name)
                replace_atomically(out / dest, lambda tmp, art=art: shutil.copyfile(art, tmp))
                kept.append(dest.as_posix())
                written.add(out / dest)
            text = render_script(backend=b, failure=f, blob_name=blob.name, script=_shown_path(out / script))
            write_text_atomic(out / script, text)
            os.chmod(out / script, 0o755)
            mapping[(b["run"], rel)] = {"blob": blob.as_posix(), "script": script.as_posix(), "artifacts": kept,
                                        "tox_env": tox_env(b["adapter"], b.get("builtin", True)),
                                        "command": repro_command(b["adapter"], _shown_path(out / blob),
                                                                 b.get("builtin", True))}
            written.update({out / blob, out / script})
    # drop repro files of an earlier report in the same directory (repro/<run>/ holds only what this command writes)
    for old in (out / "repro").glob("*/*") if (out / "repro").is_dir() else []:
        if old.is_file() and old not in written:
            old.unlink()
    attach_repro_paths(summary, mapping)


def attach_repro_paths(summary: dict, mapping: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Add report-relative blob/script paths and the repro command to failures:
    mapping[(run_id, blob_rel)] -> {blob, script, tox_env, command}."""
    for b in summary["backends"].values():
        for f in b["failures"]:
            hit = mapping.get((b["run"], f.get("repro") or ""))
            if hit:
                f.update(hit)
