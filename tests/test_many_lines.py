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
