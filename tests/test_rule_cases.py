"""One declarative case file per edit (tests/cases/RULE-ID.yaml), run by one harness.

A case file::

    rule: EPI-IMG-001
    cases:
      - name: fluoroscopy billed with 62323
        claims: [...]            # or files: [[...], [...]]; see claimscrub.examples
        expect:                  # every finding of this rule, in (claim, line) order
          - {claim: C1, line: "2", severity: error}
      - name: corrected claim
        claims: [...]
        expect: []               # must not fire

Expected entries may give claim, line, severity, segment, message_contains, fix_contains,
source_contains and amount_at_risk; the count of findings must match exactly.
`pytest -k EPI-IMG-001` runs one edit's cases.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from claimscrub.engine import load_rules
from claimscrub.examples import findings_of

CASES = Path(__file__).parent / "cases"


def _load():
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        rule = data["rule"]
        for number, case in enumerate(data["cases"], start=1):
            name = case.get("name", f"case {number}")
            params.append(pytest.param(rule, case, id=f"{rule}-{number}-{name}"))
    return params


def _matches(finding, expected: dict) -> bool:
    checks = {
        "claim": lambda v: finding.claim_id == str(v),
        "line": lambda v: finding.line == (None if v is None else str(v)),
        "severity": lambda v: finding.severity.value == v,
        "segment": lambda v: finding.segment == v,
        "message_contains": lambda v: str(v) in finding.message,
        "fix_contains": lambda v: str(v) in finding.fix,
        "source_contains": lambda v: str(v) in finding.source,
        "amount_at_risk": lambda v: finding.amount_at_risk == Decimal(str(v)),
    }
    unknown = set(expected) - set(checks)
    assert not unknown, f"unknown expectation keys {unknown}"
    return all(checks[key](value) for key, value in expected.items())


def test_every_rule_has_a_case_file():
    rules = set(load_rules())
    covered = {yaml.safe_load(p.read_text())["rule"] for p in CASES.glob("*.yaml")}
    missing = sorted(rules - covered)
    assert not missing, f"rules without a case file in tests/cases: {missing}"


@pytest.mark.parametrize("rule_id, case", _load())
def test_case(rule_id, case):
    found = findings_of(rule_id, case)
    expected = case.get("expect", [])
    assert len(found) == len(expected), (
        f"expected {len(expected)} finding(s) of {rule_id}, got {len(found)}: "
        + "; ".join(f"{f.claim_id} line {f.line}: {f.message}" for f in found)
    )
    remaining = list(found)
    for item in expected:
        match = next((f for f in remaining if _matches(f, item)), None)
        assert match is not None, f"no finding matches {item}; got " + "; ".join(
            f"{f.claim_id} line {f.line} {f.severity.value}: {f.message}" for f in remaining
        )
        remaining.remove(match)
    if expected:
        assert all(f.source for f in found), "every finding names its source"
