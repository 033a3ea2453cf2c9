"""Correct claims must come through every edit without an error: a clean epidural, and a
correct E/M-25 + epidural day (under the subscriber and under a dependent, and with the
E/M on a second claim of the day)."""

from __future__ import annotations

import pytest

from claimscrub.examples import run_scenario
from claimscrub.findings import Severity

CLEAN_EPIDURAL = {"id": "CLEAN1", "dx": ["M5416"], "pos": "11", "filing": "MB",
                  "lines": [{"code": "62323", "charge": 650, "units": 1}]}
EM25_DAY = {"id": "CLEAN2", "dx": ["M5416", "M1711"], "pos": "11", "filing": "MB",
            "lines": [{"code": "99214", "modifiers": ["25"], "charge": 180, "pointers": [2]},
                      {"code": "62323", "charge": 650, "pointers": [1]}]}

SCENARIOS = {
    "clean epidural": {"claims": [CLEAN_EPIDURAL]},
    "E/M-25 with epidural": {"claims": [EM25_DAY]},
    "E/M-25 with epidural, dependent": {"claims": [{**EM25_DAY, "patient": {"dependent": True}}]},
    "cervical epidural": {"claims": [{"id": "CLEAN3", "dx": ["M5412"], "lines": [{"code": "62321", "charge": 600}]}]},
    "transforaminal two levels": {"claims": [{"id": "CLEAN4", "dx": ["M5417"], "lines": [
        {"code": "64483", "charge": 700}, {"code": "64484", "charge": 300}]}]},
    "E/M-25 on one claim, epidural on another": {"claims": [
        {"id": "CLEAN5", "dx": ["M1711"], "lines": [{"code": "99214", "modifiers": ["25"], "charge": 180}]},
        {"id": "CLEAN6", "dx": ["M5416"], "lines": [{"code": "62323", "charge": 650}]}]},
    "commercial payer": {"claims": [{**CLEAN_EPIDURAL, "id": "CLEAN7", "filing": "CI", "payer_id": "60054"}]},
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_error_anywhere(name):
    findings = run_scenario(SCENARIOS[name])
    errors = [f for f in findings if f.severity == Severity.ERROR]
    assert not errors, [(f.rule, f.claim_id, f.line, f.message) for f in errors]
