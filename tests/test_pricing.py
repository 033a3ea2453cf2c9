"""Money at stake: every line's expected Medicare allowed amount (national MPFS: RVUs x the
conversion factor of the year of service, facility or non-facility by place of service),
every error finding's amount at risk, and the totals in the JSON report."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from claimscrub.examples import run_scenario
from claimscrub.synth import write_837

from conftest import AS_OF, invoke_claimscrub


def _scrub(tmp_path: Path, claims: list[dict], *extra: str) -> dict:
    batch = tmp_path / "batch.837"
    batch.write_text(write_837(claims))
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(batch), "--out", str(out), "--as-of", AS_OF, *extra)
    assert result.returncode in (0, 1), result.stderr
    return json.loads((out / "batch.837.json").read_text())


def _lines(report: dict, claim_id: str) -> dict:
    claim = next(c for c in report["claims"] if c["claim_id"] == claim_id)
    return {line["line"]: line["expected_allowed"] for line in claim["lines"]}


@pytest.fixture(scope="module")
def priced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("priced")
    return _scrub(tmp, [
        {"id": "OFFICE26", "date": "2026-03-03", "pos": "11", "lines": [{"code": "62323"}]},
        {"id": "HOSP26", "date": "2026-03-03", "member": "MBR0002", "pos": "22", "lines": [{"code": "62323"}]},
        {"id": "LINEPOS", "date": "2026-03-04", "member": "MBR0003", "pos": "11",
         "lines": [{"code": "62323", "pos": "22"}, {"code": "99214", "modifiers": ["25"]}]},
        {"id": "OFFICE25", "date": "2025-03-03", "member": "MBR0004", "pos": "11", "lines": [{"code": "62323"}]},
        {"id": "UNPRICED", "date": "2026-03-03", "member": "MBR0005", "lines": [{"code": "62273"}, {"code": "62320"}]},
        {"id": "NOYEAR", "date": "2024-06-03", "member": "MBR0006", "lines": [{"code": "62323"}]},
    ])


def test_62323_in_the_office_2026_is_the_national_non_facility_amount(priced):
    # CMS PPRRVU RVU26C: 8.18 total non-facility RVUs x 33.4009 (CY2026 non-QP) = 273.22
    assert _lines(priced, "OFFICE26") == {"1": "273.22"}


def test_outpatient_hospital_is_priced_at_the_facility_rate(priced):
    # 1.76 + 0.74 + 0.17 = 2.67 facility RVUs x 33.4009 = 89.18
    assert _lines(priced, "HOSP26") == {"1": "89.18"}


def test_the_line_place_of_service_overrides_the_claims(priced):
    # SV105 22 on an office claim: facility for that line only; 99214 in the office 4.06 x 33.4009
    assert _lines(priced, "LINEPOS") == {"1": "89.18", "2": "135.61"}
    claim = next(c for c in priced["claims"] if c["claim_id"] == "LINEPOS")
    assert claim["expected_allowed"] == "224.79"


def test_the_year_of_service_selects_rvus_and_conversion_factor(priced):
    # 2025: 1.80 + 5.66 + 0.17 = 7.63 x 32.3465 = 246.80
    assert _lines(priced, "OFFICE25") == {"1": "246.80"}


def test_unpriced_codes_and_years_are_null_not_zero(priced):
    # 62321 has no RVUs in the bundled table; 2024 has no conversion factor in it.
    assert _lines(priced, "UNPRICED") == {"1": None, "2": "163.66"}  # 62320: 4.90 x 33.4009
    assert _lines(priced, "NOYEAR") == {"1": None}
    claim = next(c for c in priced["claims"] if c["claim_id"] == "NOYEAR")
    assert claim["expected_allowed"] is None
    assert priced["summary"]["unpriced_lines"] == 2
    assert Decimal(priced["summary"]["expected_allowed"]) == sum(
        Decimal(v) for c in priced["claims"] for v in _lines(priced, c["claim_id"]).values() if v is not None)


def test_error_findings_carry_the_amount_they_put_at_risk():
    found = run_scenario({"validate": False, "claims": [
        # one line denied by the units edit: that line's amount
        {"id": "UNITS", "date": "2026-03-03", "lines": [{"code": "62323", "units": 2}]},
        # the wrong code of the family: the 62322 line's amount (4.36 x 33.4009)
        {"id": "FAMILY", "date": "2026-03-03", "member": "MBR0002", "lines": [{"code": "62322"}, {"code": "62323"}]},
        # claim-level error (out of balance): the whole claim's expected allowed
        {"id": "BALANCE", "date": "2026-03-03", "member": "MBR0003", "charge": 999,
         "lines": [{"code": "62323"}, {"code": "99214", "modifiers": ["25"]}]},
        # an error on an unpriced line puts no known amount at risk
        {"id": "DRUG", "date": "2026-03-03", "member": "MBR0004", "lines": [{"code": "62323"}, {"code": "96372"}]},
    ]})
    amounts = {(f.rule, f.claim_id): f.amount_at_risk for f in found if f.severity.value == "error"}
    assert amounts[("EPI-MUE-002", "UNITS")] == Decimal("273.22")
    assert amounts[("EPI-FAM-001", "FAMILY")] == Decimal("145.63")
    assert amounts[("EPI-BAL-001", "BALANCE")] == Decimal("408.83")  # 273.22 + 135.61
    assert amounts[("EPI-PTP-002", "DRUG")] is None
    assert all(f.amount_at_risk is None for f in found if f.severity.value != "error")


def test_json_totals_equal_the_sum_over_error_findings(tmp_path):
    report = _scrub(tmp_path, [
        {"id": "UNITS", "date": "2026-03-03", "lines": [{"code": "62323", "units": 2}]},
        {"id": "FAMILY", "date": "2026-03-03", "member": "MBR0002", "lines": [{"code": "62322"}, {"code": "62323"}]},
        {"id": "CLEAN", "date": "2026-03-03", "member": "MBR0003", "lines": [{"code": "62323"}]},
        {"id": "TWICE", "date": "2026-03-03", "member": "MBR0004", "charge": 999,
         "lines": [{"code": "62323", "units": 2}, {"code": "99214", "modifiers": ["25"], "charge": 50}]},
    ])
    summary = report["summary"]
    per_claim = Decimal(0)
    for claim in report["claims"]:
        errors = [f for f in claim["findings"] if f["severity"] == "error"]
        # each line counts once; a claim-level error puts the whole claim at risk
        by_line: dict = {}
        for f in errors:
            by_line[f["line"]] = max(by_line.get(f["line"], Decimal(0)), Decimal(f.get("amount_at_risk", "0")))
        claim_level = by_line.pop(None, Decimal(0))
        expected = max(sum(by_line.values(), Decimal(0)), claim_level)
        assert Decimal(claim["amount_at_risk"]) == expected, claim
        per_claim += expected
    assert Decimal(summary["amount_at_risk"]) == per_claim
    # the UNITS and FAMILY claims: one error finding each, so the sum over error findings
    simple = [c for c in report["claims"] if c["claim_id"] in ("UNITS", "FAMILY", "CLEAN")]
    assert sum(Decimal(f["amount_at_risk"]) for c in simple for f in c["findings"]
               if f["severity"] == "error") == Decimal("273.22") + Decimal("145.63")
    twice = next(c for c in report["claims"] if c["claim_id"] == "TWICE")
    assert twice["amount_at_risk"] == "408.83"  # out of balance (claim level) and 2 units: the claim once
    assert Decimal(summary["expected_allowed"]) == Decimal("273.22") * 4 + Decimal("145.63") + Decimal("135.61")


def test_a_rejected_claim_of_unpriced_lines_shows_their_billed_charges_at_risk_not_zero(tmp_path):
    from lxml import html

    # 62311 was deleted after 2016-12-31 (an error of its own) and has no MPFS price;
    # 62273 is not priced either; the 2026 62323 claim is priced and clean.
    batch = tmp_path / "batch.837"
    batch.write_text(write_837([
        {"id": "DELETED", "date": "2026-03-03", "lines": [{"code": "62311", "charge": 400}]},
        {"id": "CLEAN", "date": "2026-03-03", "member": "MBR0002", "lines": [{"code": "62323", "charge": 600}]},
    ]))
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(batch), "--out", str(out), "--as-of", AS_OF)
    assert result.returncode == 1, result.stderr
    report = json.loads((out / "batch.837.json").read_text())
    claims = {c["claim_id"]: c for c in report["claims"]}
    assert claims["DELETED"]["status"] == "rejected"
    assert claims["DELETED"]["amount_at_risk"] == "0.00"  # no expected allowed amount: not priced
    assert claims["DELETED"]["unpriced_lines_at_risk"] == 1
    assert claims["DELETED"]["unpriced_charge_at_risk"] == "400.00"
    assert claims["CLEAN"]["unpriced_lines_at_risk"] == 0
    summary = report["summary"]
    assert (summary["unpriced_lines_at_risk"], Decimal(summary["unpriced_charge_at_risk"])) == (1, Decimal("400"))
    assert Decimal(summary["amount_at_risk"]) == 0

    doc = html.fromstring((out / "batch.837.html").read_bytes())
    card = doc.xpath('//div[@data-key="at_risk"]')[0].text_content()
    assert card == "$400.00 billed, not priced"
    assert "$0.00" not in card
    row = doc.xpath('//td[@data-key="unpriced_at_risk"]')[0].text_content()
    assert row == "$400.00 billed on 1 line not priced"
    assert doc.xpath('//span[@data-key="unpriced_at_risk"]')[0].text_content() == (
        "$400.00 billed at risk on 1 line not priced")


def test_priced_and_unpriced_amounts_at_risk_are_reported_apart(tmp_path):
    # 50 on 62323 (bilateral indicator 9) denies the priced line; the deleted 62311 line has
    # no price: its billed charge is at risk in its own field, never added to the allowed.
    batch = tmp_path / "batch.837"
    batch.write_text(write_837([
        {"id": "BOTH", "date": "2026-03-03", "pos": "11",
         "lines": [{"code": "62323", "modifiers": ["50"], "charge": 600}, {"code": "62311", "charge": 400}]},
    ]))
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(batch), "--out", str(out), "--as-of", AS_OF)
    assert result.returncode == 1, result.stderr
    report = json.loads((out / "batch.837.json").read_text())
    claim = report["claims"][0]
    assert claim["status"] == "rejected"
    assert {f["line"] for f in claim["findings"] if f["severity"] == "error"} == {"1", "2"}
    assert Decimal(claim["amount_at_risk"]) == Decimal("273.22")  # 62323 office 2026: 8.18 x 33.4009
    assert (claim["unpriced_lines_at_risk"], claim["unpriced_charge_at_risk"]) == (1, "400.00")
    assert Decimal(report["summary"]["amount_at_risk"]) == Decimal("273.22")
