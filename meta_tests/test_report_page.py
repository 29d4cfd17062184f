"""index.html of a large multi-backend run, read as text: what comes first, how known findings are folded,
how ratios are kept apart per verdict, how heavy the page is, and what ``lstm-conformance report`` prints.
The input is :func:`report_fixtures.synthetic_run` (3000 records, 300 xfails, 3 backends; no harness run)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from report_fixtures import SYNTH_BACKENDS, synthetic_run

from conformance.harness.rules import rule_sort_key

#: the bound on a realistic run's page (issue "Robust first contact"; a 16-failure run made 2.7 MB)
MAX_PAGE = 1_000_000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    import report_fixtures

    return report_fixtures.synthetic_report(tmp_path_factory)


def _records(out) -> list[dict]:
    run_dir = out.parent / "synthetic"
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def _cards(html: str) -> list[tuple[str, str]]:
    """(backend, verdict) of every card of the Failures section, in page order."""
    return re.findall(r'<div class="failure [a-z]+" id="[^"]+" data-backend="([^"]*)" data-verdict="([a-z]+)"', html)


def test_large_run_page_stays_under_one_megabyte(synthetic):
    out, summary = synthetic
    assert sum(summary["totals"].values()) == 3000 and summary["totals"]["xfail"] == 300
    size = (out / "index.html").stat().st_size
    assert size < MAX_PAGE, f"index.html is {size:,} bytes"
    # the details stay in summary.json: every xfail case is there, in full
    assert sum(1 for b in summary["backends"].values() for f in b["failures"] if f["verdict"] == "xfail") == 300


def test_failures_come_first_then_inconclusive_then_one_card_per_finding(synthetic):
    out, summary = synthetic
    html = (out / "index.html").read_text()
    verdicts = [v for _, v in _cards(html)]
    rank = {"fail": 0, "crash": 0, "inconclusive": 1, "xfail": 2}
    assert [rank[v] for v in verdicts] == sorted(rank[v] for v in verdicts), verdicts
    # every backend's failures before any other card: the first card of each backend with failures is one
    for backend, (n_fail, findings) in SYNTH_BACKENDS.items():
        mine = [v for b, v in _cards(html) if b == backend]
        assert mine[0] == "fail", (backend, mine[:3])
        known = [v for v in mine if v == "xfail"]
        assert len(known) == len(findings) == len(summary["backends"][backend]["findings"])
    # a finding's card carries its count; the counts add up to the backend's xfails
    for backend, b in summary["backends"].items():
        assert sum(f["count"] for f in b["findings"]) == b["counts"]["xfail"]
        for f in b["findings"]:
            assert f["source"].startswith(f"{backend}.toml finding ") and f["reason"] in html
            assert f'{f["count"]} checks</span>' in html


def test_a_group_shows_a_few_examples_and_counts_the_rest(tmp_path):
    from conformance.report import make_report

    run = synthetic_run(tmp_path / "many", records=400, xfails=0, inconclusive=90, crashes=0)
    summary = make_report([run], tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    shown = Counter(v for _, v in _cards(html))
    assert shown["inconclusive"] < 90 and "more case" in html
    assert sum(b["counts"]["inconclusive"] for b in summary["backends"].values()) == 90


def test_ratios_keep_pass_fail_xfail_and_inconclusive_apart(synthetic):
    out, summary = synthetic
    k = summary["error_model"]["K"]
    recs = _records(out)
    for backend, b in summary["backends"].items():
        mine = [r for r in recs if r["adapter"] == backend and "ratio" in r["metrics"]]
        judged = [r["metrics"]["ratio"] for r in mine if r["verdict"] in ("pass", "fail")]
        xfail = [r["metrics"]["ratio"] for r in mine if r["verdict"] == "xfail"]
        assert b["ratios"]["count"] == len(judged) and b["ratios"]["max"] == max(judged)
        assert b["ratios"]["xfail"]["count"] == len(xfail) and b["ratios"]["xfail"]["max"] == max(xfail)
        hist = b["ratios"]["histogram"]
        for cls in ("pass", "fail", "xfail", "inconclusive"):
            total = sum(hist["counts"][cls]) + sum(hist[key][cls] for key in ("zero", "below", "above", "nonfinite"))
            expect = sum(1 for r in mine if r["verdict"] == cls or (cls == "fail" and r["verdict"] == "crash"))
            assert total == expect, (backend, cls)
        # the per-property statistics exclude the known findings too
        for prop, st in b["ratios_by_property"].items():
            assert st["count"] == sum(1 for r in mine if r["property"] == prop and r["verdict"] in ("pass", "fail"))
    torch = summary["backends"]["torch"]
    passes = [r["metrics"]["ratio"] for r in recs if r["adapter"] == "torch" and r["verdict"] == "pass"]
    assert max(passes) <= k < torch["ratios"]["xfail"]["max"]
    html = (out / "index.html").read_text()
    assert "above K (failed)" not in html
    for label in ("pass (ratio ≤ K)", "xfail (known finding)", "fail / crash", "inconclusive"):
        assert label in html
    assert 'class="h-xfail"' in html and 'class="h-fail"' in html


def test_rule_ids_are_in_natural_order_everywhere(synthetic):
    out, summary = synthetic
    html = (out / "index.html").read_text()
    options = re.search(r'<select name="rule">(.*?)</select>', html, re.DOTALL).group(1)
    rules = re.findall(r'<option value="([A-Z]+-\d+)">', options)
    assert rules and rules == sorted(rules, key=rule_sort_key)
    assert "ACT-2" in rules and "ACT-10" in rules
    for backend in summary["backends"]:
        cells = re.findall(rf'<details id="cases-{re.escape(backend)}--([A-Z]+-\d+)">', html)
        assert cells == sorted(cells, key=rule_sort_key), cells
    for b in summary["backends"].values():
        for f in b["failures"] + b["inconclusive"]:
            assert f["rules"] == sorted(f["rules"], key=rule_sort_key)


def test_filters_are_plain_inline_and_the_page_works_without_them(synthetic):
    out, summary = synthetic
    html = (out / "index.html").read_text()
    assert '<form class="filters" id="filters" hidden>' in html, "without JS the filters stay hidden"
    assert not re.search(r'<div class="failure[^>]*\bhidden\b', html), "every card is shown without JS"
    for backend in summary["backends"]:
        assert f'<option value="{backend}">{backend}</option>' in html
        assert f'href="#backend-{backend}"' in html and f'data-backend="{backend}">' in html  # the jump links
    for needle in ("http://", "https://", " src=", "<link", "fetch(", "XMLHttpRequest", "import("):
        assert needle not in html, needle


def test_repro_block_names_the_environment_the_command_and_the_seed(synthetic):
    out, summary = synthetic
    html = (out / "index.html").read_text()
    b = summary["backends"]["keras-jax"]
    fail = next(f for f in b["failures"] if f["verdict"] == "fail")
    assert fail["tox_env"] == "keras-jax"
    assert fail["command"].startswith(".tox/keras-jax/bin/lstm-conformance repro ") and fail["command"].endswith(".npz")
    assert fail["command"] in html and "tox -e keras-jax --notest" in html
    assert "hypothesis seed 12345" in html and summary["runs"][0]["hypothesis_seed"] == "12345"


def test_report_command_prints_one_line_with_the_page_size(synthetic, tmp_path, capsys):
    from conformance.cli import main

    run_dir = synthetic[0].parent / "synthetic"
    assert main(["report", str(run_dir), "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    size = (tmp_path / "out" / "index.html").stat().st_size
    assert len(lines) == 1 and f"({size:,} bytes = {size / 1e6:.2f} MB)" in lines[0], lines


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def test_run_problems_are_printed_one_line_each_with_control_characters_escaped(tmp_path, capsys):
    from conformance.report import run_report

    run = synthetic_run(tmp_path / "evil", records=30, xfails=3, inconclusive=0, crashes=0,
                        run_id="evil\x1b[2J\x1b[Hrun\rALL GREEN")
    with open(run / "results.jsonl", "a") as fh:  # two lines the reader skips: each becomes a problem
        fh.write(json.dumps({"adapter": "x", "verdict": "\x1b[2Jmaybe\nfake", "property": "p"}) + "\n")
        fh.write('{"adapter": "torch", "verdi\n')
    assert run_report([run], tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert not _CONTROL.search(out), repr(out)
    problems = json.loads((tmp_path / "out" / "summary.json").read_text())["runs"][0]["problems"]
    lines = out.splitlines()
    assert len(lines) == 1 + len(problems) and all(line.startswith("  run evil\\x1b[2J") for line in lines[1:])


def test_a_case_seen_on_several_variants_is_one_row_naming_them():
    """Cases by rule: the variants of a backend draw the same cases, so one case with one outcome is one row
    that names its variants and the spread of their ratios; another outcome of it is its own row, and the
    records a row stands for are not counted again as hidden."""
    from conformance.harness.results import Result, Verdict
    from conformance.report.view import _cases_by_rule

    config = {"config": {"input_dim": 2, "units": 3, "dtype": "float32"}, "batch": 1, "timesteps": 4}
    recs = [Result(adapter="torch", verdict=Verdict.PASS, property="forward", variant=v, rules=["GATE-1"],
                   metrics={"ratio": r}, config=config) for v, r in (("a", 0.5), ("b", 0.75), ("c", 0.5))]
    recs.append(Result(adapter="torch", verdict=Verdict.FAIL, property="forward", variant="d", rules=["GATE-1"],
                       metrics={"ratio": 900.0}, config=config, message="ratio 900 > K"))
    cases = _cases_by_rule(recs)["GATE-1"]
    rows = [(r["verdict"], r["variant"], r["number"]) for r in cases["rows"]]
    assert rows == [("fail", "d", "ratio 900"), ("pass", "a, b, c", "ratio 0.5 to 0.75")], rows
    assert (cases["hidden"], cases["total"]) == (0, 4)


def test_cases_that_implicate_the_rule_come_before_those_that_only_exercise_it():
    from conformance.harness.results import Result, Verdict
    from conformance.report.view import _cases_by_rule

    def xfail(n, implicated):
        config = {"config": {"input_dim": 2, "units": n, "dtype": "float64"}, "batch": 1, "timesteps": 4}
        return Result(adapter="keras-torch", verdict=Verdict.XFAIL, property="masked", rules=["MASK-2", "NUM-5"],
                      implicated=[implicated], config=config, metrics={"ratio": 1e7})
    recs = [xfail(n, "NUM-5") for n in range(1, 5)] + [xfail(9, "MASK-2")]
    first = _cases_by_rule(recs)["MASK-2"]["rows"][0]
    assert "u=9" in first["config"], first
