"""`driftmon report` end to end: the real CLI against the simulated provider over a real
socket, through a model update that drifts and whose wrong answers carry an HTML payload. The
report must show the drift, hold the payload only as escaped text, reference nothing outside
itself, and render in a real browser without a single console error."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Project
from tests.e2e.test_drift_e2e import BEHAVIOUR_CHANGE, DRIFT_SETTINGS, PROBES

PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
# The update's wrong answers put the payload in a field value: it lands in result.output, in
# the failure reason and among the categories of the tracked field.
HOSTILE_CHANGE = BEHAVIOUR_CHANGE.replace("currency: EUR", f'currency: "{PAYLOAD}"')
CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">"
)
MARCH = "gpt-4o-2024-05-13 (fp_march)"
JUNE = "gpt-4o-2024-08-06 (fp_june)"
# Anything that would make the browser fetch or run something.
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|srcset|action|formaction|poster|data|ping|background)\s*=)"""
    r"""|url\s*\(|@import|<\s*(?:script|link|iframe|object|embed|base|form)\b"""
    r"""|https?:|(?<![:/])//[a-z0-9]""",
    re.IGNORECASE,
)


def drifted_project(make_project: Any) -> Project:
    """Three baseline runs under "march", then two under "june": drifted at the second."""
    project: Project = make_project(PROBES, HOSTILE_CHANGE, extra_config=DRIFT_SETTINGS)
    for index in range(5):
        if index == 3:
            project.sim.set_phase("june")
        done = project.cli("run", "--samples", "3")
        assert done.returncode == 0, done.stderr
    return project


def report(project: Project, *args: str) -> tuple[Path, str]:
    out = project.root / "out" / "report.html"
    done = project.cli("report", "--out", str(out), *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    return out, out.read_text(encoding="utf-8")


def test_report_of_a_drift_shows_history_distributions_probes_and_statistics(
    make_project: Any,
) -> None:
    project = drifted_project(make_project)
    path, html = report(project)

    assert html.count("<svg") >= 5  # the history, and a bar chart per drifted metric
    assert 'aria-label="sim / invoices: pass rate per complete run"' in html
    assert 'aria-label="pass_rate: baseline vs current"' in html
    assert 'aria-label="field:currency: baseline vs current (share of outputs)"' in html
    # One dot per complete run; the identity change and the alert are marked on the chart.
    history = html.split('aria-label="sim / invoices: pass rate per complete run"')[1]
    history = history.split("</svg>")[0]
    assert history.count("<circle") == 5
    assert ">model changed</text>" in history and ">firing</text>" in history
    assert f"{MARCH} → {JUNE}" in html
    # The probes that changed most, with an output from before and after the update.
    probes = html.split('id="probes"')[1].split('id="statistics"')[0]
    assert probes.count("<tr>") >= 2 and "&#34;currency&#34;: &#34;USD&#34;" in probes
    # The statistics behind the verdicts.
    statistics = html.split('id="statistics"')[1]
    for needle in ("pass_rate", "stratified exact", "state-drifted", "p_adj", "streak"):
        assert needle in statistics, needle

    # The payload is shown, as text only, in the examples, the reasons and the chart labels.
    assert PAYLOAD not in html
    assert ESCAPED in probes and html.count(ESCAPED) >= 3
    assert "<script" not in html.lower()

    # Self-contained: nothing to fetch, nothing to run, and a policy forbidding both.
    assert CSP in html
    assert EXTERNAL.findall(html) == []
    assert path.stat().st_size < 500_000

    # Filters: the same history for this target within the last hour, or since a date.
    for args in (["--target", "sim", "--since", "1h"], ["--since", "2000-01-01"]):
        _, filtered = report(project, *args)
        assert filtered.count("<circle") == 5, args


def test_report_on_an_empty_database_says_there_is_no_data(make_project: Any) -> None:
    project: Project = make_project(PROBES, HOSTILE_CHANGE, extra_config=DRIFT_SETTINGS)
    _, html = report(project)
    assert "No data yet" in html and "No drift evaluations yet" in html
    assert CSP in html and EXTERNAL.findall(html) == []
    # A target known from the config but never run is not an error: it has no data yet.
    _, html = report(project, "--target", "sim")
    assert "No data yet" in html


def test_bad_options_are_usage_errors_and_an_unwritable_path_a_runtime_error(
    make_project: Any,
) -> None:
    project: Project = make_project(PROBES, HOSTILE_CHANGE, extra_config=DRIFT_SETTINGS)
    out = ["--out", str(project.root / "x.html")]
    (project.root / "folder.html").mkdir()
    for args, problem in [
        ([*out, "--target", "nope"], "no target named 'nope' (targets: sim)"),
        ([*out, "--since", "soon"], "--since: invalid duration or date 'soon'"),
        ([*out, "--since", "0d"], "--since must be longer than 0"),
        (["--out", str(project.root / "folder.html")], "is a directory"),
        ([], "Missing option '--out'"),
    ]:
        done = project.cli("report", *args)
        assert done.returncode == 2 and problem in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (project.root / "x.html").exists()

    done = project.cli("report", "--out", str(project.root / "driftmon.toml" / "r.html"))
    assert done.returncode == 1 and "cannot write the report" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# --- in a real browser -------------------------------------------------------------------------


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browse(browser: str, page: Path) -> tuple[str, list[str]]:
    """The DOM after load, and the console messages the page caused (CSP violations are
    console messages too)."""
    done = subprocess.run(
        [
            browser,
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={page.parent / 'chromium-profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    problems = [
        line
        for line in done.stderr.splitlines()
        if re.search(r":CONSOLE|Uncaught|Refused to|Content Security Policy", line)
    ]
    return done.stdout, problems


@pytest.mark.skipif(chromium() is None, reason="no chromium binary (chromium, chromium-browser)")
def test_report_renders_in_headless_chromium_without_console_errors(
    make_project: Any, tmp_path: Path
) -> None:
    browser = chromium()
    assert browser is not None
    # First, that this browser reports what we look for: a page breaking the same policy.
    bad = tmp_path / "bad.html"
    bad.write_text(
        f"<!doctype html><html><head>{CSP}<title>bad</title></head>"
        '<body><script>document.title = "ran"</script><img src="https://example.com/x.png">'
        "</body></html>",
        encoding="utf-8",
    )
    dom, problems = browse(browser, bad)
    assert "<title>bad</title>" in dom and len(problems) >= 2, problems

    project = drifted_project(make_project)
    path, _ = report(project)
    dom, problems = browse(browser, path)
    assert problems == []
    assert "<title>driftmon report</title>" in dom
    assert dom.count("<svg") >= 5 and ESCAPED in dom and PAYLOAD not in dom
