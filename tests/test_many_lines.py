"""A claim of many lines under every edit: the findings (and so the work) grow with the
lines, not with their pairs. A day of hundreds of lines of a few codes is judged once per
column-2 line and column-1 code by the NCCI pair edit, as the payer denies it."""

from __future__ import annotations

from claimscrub.examples import run_scenario

CODES = ["64483", "64484", "99214", "20552", "62323", "96372", "J3301", "77003"]


def _claim(lines: int) -> dict:
    return {"claims": [{"id": "BIG", "lines": [
        {"code": CODES[i % len(CODES)], "charge": 100, "modifiers": ["XS"] if i % 3 else []}
        for i in range(lines)
    ]}], "validate": False}


def test_findings_grow_linearly_with_the_lines():
    small, large = len(run_scenario(_claim(200))), len(run_scenario(_claim(800)))
    assert small > 0
    assert large <= 4.5 * small, (small, large)


def _write_time(lines: int, tmp_path) -> float:
    """Seconds the HTML report of one claim of ``lines`` lines takes to write (best of 2)."""
    import time
    from datetime import date

    from claimscrub.report.html_report import write_html
    from claimscrub.scrub import ScrubOptions, Scrubber
    from claimscrub.synth import write_837

    source = tmp_path / f"big{lines}.837"
    source.write_text(write_837(_claim(lines)["claims"]))
    run = Scrubber(ScrubOptions(as_of=date(2026, 11, 22))).run([str(source)])
    try:
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            write_html(run, run.files[0], str(tmp_path / "out"))
            best = min(best, time.perf_counter() - start)
        return best
    finally:
        run.close()


def test_the_html_report_grows_linearly_with_the_lines(tmp_path):
    """Eight times the lines (and findings) take about eight times as long, not 64: the
    page looks each finding's segment up once (issue 9: a 4,000-line claim took minutes)."""
    small, large = _write_time(200, tmp_path), _write_time(1600, tmp_path)
    assert large <= 20 * small, (small, large)
