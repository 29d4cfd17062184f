"""The report as a person sees it: index.html opened in headless Chromium (Debian's package, driven by
Playwright for Python; never a browser downloaded by ``playwright install``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
_SCREEN = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory):
    import report_fixtures

    return report_fixtures.synthetic_report(tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright for Python is not installed (pip install playwright)")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=_ARGS)
        yield b
        b.close()


class _Watch:
    """Console errors, page errors, dialogs and every request a page makes (anything but file: is blocked)."""

    def __init__(self, page):
        self.errors, self.requests, self.dialogs = [], [], []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: self.requests.append(r.url))
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())

    def network(self) -> list[str]:
        return [u for u in self.requests if not u.startswith("file:")]


def _save(page, out: Path, name: str) -> Path:
    shots = out / "screenshots"
    shots.mkdir(exist_ok=True)
    path = shots / name
    page.screenshot(path=str(path), full_page=False)
    extra = os.environ.get("LSTM_REPORT_SCREENSHOTS")  # keep a copy outside pytest's temp dirs
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def test_matrix_and_failures_render_without_errors_or_network(browser, swapped_report):
    out, summary = swapped_report
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = _Watch(page)
    page.goto((out / "index.html").as_uri())
    assert page.title().startswith("LSTM conformance report")
    _save(page, out, "top.png")

    matrix = page.locator("table.matrix")
    assert matrix.is_visible()
    headers = [t.strip() for t in matrix.locator("thead th.be").all_inner_texts()]
    assert headers == list(summary["backends"])
    cell = page.locator("#rule-GATE-1 td.cell a.c-fail")
    assert cell.count() == 1 and "fail" in cell.inner_text()
    assert page.locator("#rule-GATE-1 td.cell a.c-pass").count() >= 1, "the correct backend passes GATE-1"
    matrix.scroll_into_view_if_needed()
    _save(page, out, "matrix.png")

    cell.click()  # a cell opens the list of its cases
    cases = page.locator("#cases-numpy-swapped-if--GATE-1")
    assert cases.get_attribute("open") is not None and cases.is_visible()
    assert cases.locator(".badge.b-fail").first.is_visible()
    _save(page, out, "cases.png")

    failure = page.locator(".failure.fail").first
    failure.scroll_into_view_if_needed()
    assert failure.is_visible()
    text = failure.inner_text()
    assert "GATE-1" in text and "ratio" in text
    assert ".tox/numpy-swapped-if/bin/lstm-conformance repro " in text and "/repro/swapped/" in text
    failure.locator("details", has_text="full case description").locator("summary").click()
    assert failure.locator("details pre", has_text='"config"').is_visible()
    _save(page, out, "failures.png")

    alert = page.locator(".alert", has_text="killed-run")
    assert alert.is_visible() and "killed" in alert.inner_text()
    page.locator("#ratios").scroll_into_view_if_needed()
    assert page.locator("#ratios svg rect").count() > 0
    _save(page, out, "ratios.png")
    page.locator("#params").scroll_into_view_if_needed()
    _save(page, out, "params.png")

    assert watch.errors == [], watch.errors
    assert watch.network() == [], f"the report fetched {watch.network()}"
    page.close()


def test_markup_from_results_does_not_run(browser, hostile_report):
    out, _ = hostile_report
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = _Watch(page)
    page.goto((out / "index.html").as_uri())
    page.locator("#failures").scroll_into_view_if_needed()
    assert page.locator(".failure.fail, .failure.crash").count() == 2
    assert "<script>alert('message')</script>" in page.locator(".failure pre.msg").first.inner_text()
    _save(page, out, "hostile.png")
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
    assert watch.network() == [], f"the report fetched {watch.network()}"
    page.close()


def _card_top(page, backend: str) -> float:
    card = page.locator(f'#failing .failure[data-backend="{backend}"]').first
    assert card.is_visible()
    return card.bounding_box()["y"]


def test_each_backends_first_failure_is_one_screen_from_the_top_via_the_filters(browser, synthetic_report):
    """Many xfails and three backends with failures: choosing a backend in the filter brings its first failure
    into the first screen, without scrolling; the jump links do the same from the top."""
    out, summary = synthetic_report
    page = browser.new_page(viewport=_SCREEN)
    watch = _Watch(page)
    page.goto((out / "index.html").as_uri())
    assert page.locator("#filters").is_visible()
    for backend in summary["backends"]:
        page.select_option("#filters select[name=backend]", backend)
        assert page.evaluate("window.scrollY") == 0
        top = _card_top(page, backend)
        assert 0 < top < _SCREEN["height"], f"{backend}: first failure at {top}px"
        shown = page.locator(".failure:visible")
        assert {shown.nth(i).get_attribute("data-backend") for i in range(shown.count())} == {backend}
        _save(page, out, f"filter-{backend}.png")
    page.locator("#filters button[type=reset]").click()
    # the form's reset handler re-applies the filters on the next tick (filters.js: setTimeout(apply, 0))
    page.wait_for_function("[...document.querySelectorAll('.failure')].every(e => e.offsetParent !== null)",
                           timeout=5000)
    assert page.locator(".failure:visible").count() == page.locator(".failure").count()
    # a verdict filter: only the known findings, one card per finding
    page.select_option("#filters select[name=verdict]", "xfail")
    n_findings = sum(len(b["findings"]) for b in summary["backends"].values())
    assert page.locator(".failure:visible").count() == n_findings
    assert page.locator("#failing").is_hidden()
    page.locator("#filters button[type=reset]").click()
    # a rule filter keeps the cards citing that rule
    page.select_option("#filters select[name=rule]", "GATE-1")
    visible = page.locator(".failure:visible")
    assert visible.count() and all("GATE-1" in visible.nth(i).get_attribute("data-rules").split()
                                   for i in range(visible.count()))
    page.locator("#filters button[type=reset]").click()
    # a jump link: narrows to its backend and lands on its first failure
    backend = list(summary["backends"])[-1]
    page.locator(f'table.jump a.n-fail[data-backend="{backend}"]').click()
    assert 0 <= _card_top(page, backend) < _SCREEN["height"]
    # a findings jump link lands on the backend's first finding card with its heading below the sticky header
    # and filter bar (it was hidden under them)
    xfail_links = page.locator("table.jump a.n-xfail")
    assert xfail_links.count(), "the synthetic report has known findings"
    link = xfail_links.first
    target = link.get_attribute("href")[1:]
    link.click()
    bar = page.locator("#filters").bounding_box()
    heading = page.locator(f'[id="{target}"] h4').first.bounding_box()
    assert bar["y"] + bar["height"] <= heading["y"] < _SCREEN["height"], (bar, heading)
    assert watch.errors == [], watch.errors
    assert watch.network() == [], f"the report fetched {watch.network()}"
    page.close()


def test_without_javascript_every_card_shows_and_no_filter(browser, synthetic_report):
    out, _ = synthetic_report
    context = browser.new_context(java_script_enabled=False, viewport=_SCREEN)
    page = context.new_page()
    watch = _Watch(page)
    page.goto((out / "index.html").as_uri())
    assert page.locator("#filters").is_hidden()
    cards = page.locator(".failure")
    assert cards.count() > 0 and page.locator(".failure:visible").count() == cards.count()
    assert page.locator("#failing .failure").first.bounding_box()["y"] < _SCREEN["height"]
    assert watch.network() == [], f"the report fetched {watch.network()}"
    context.close()
