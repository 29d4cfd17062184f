"""Render ``index.html``: one self-contained page (inline CSS, SVG and the filters' plain JavaScript from
templates/style.css and filters.js; no external URL, no request) from the summary.

Jinja2 with autoescaping on: every string from a config, a framework's error message or the command line
reaches the page escaped. What the page shows is computed by :mod:`.view` and :mod:`.attention` as plain
numbers and strings, so no markup is ever built from strings in Python.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..harness.results import VERDICTS
from .attention import build_attention
from .conventions import build_conventions
from .runs import RunData
from .view import build_view, case_anchor, config_brief, fmt

__all__ = ["case_anchor", "config_brief", "render"]


def _num(v) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else ("n/a" if v is None else str(v))


def _duration(run: dict) -> str:
    a, b = run.get("started"), run.get("finished")
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return ""
    sec = b - a
    return f"{sec:.1f} s" if sec < 120 else f"{sec / 60:.1f} min"


def _iso(ts) -> str:
    if not isinstance(ts, (int, float)):
        return "—"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def render(summary: dict, runs: list[RunData]) -> str:
    """The page as a string (the repro scripts are linked, not inlined: their text is in repro/)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, brief=config_brief, iso=_iso, num=_num, duration=_duration)
    env.globals["verdicts"] = VERDICTS
    return env.get_template("index.html.j2").render(s=summary, v=build_view(summary, runs),
                                                    a=build_attention(summary),
                                                    c=build_conventions([r for run in runs for r in run.records]))
