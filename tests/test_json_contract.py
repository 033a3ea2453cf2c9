"""The JSON report as a contract a pipeline can code against: a versioned document, a JSON
Schema printed by `claimscrub schema`, the fields a pipeline joins on (payer, providers,
dates of service, transaction set), related claims and 277CA statuses as fields, and money
written one way. Every report the suite writes is also validated by conftest's session
fixture; here the reports are read as a user of the CLI reads them."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from claimscrub.synth import write_837

from conftest import AS_OF, FIXTURES, report_validator, invoke_claimscrub, schema_errors

MONEY = re.compile(r"^-?[0-9]+\.[0-9]{2}$")


@pytest.fixture(scope="module")
def validator():
    return report_validator()


def _scrub(tmp_path: Path, name: str, text: str, *extra: str) -> tuple[dict, Path]:
    source = tmp_path / name
    source.write_text(text)
    out = tmp_path / "out"
    done = invoke_claimscrub("scrub", str(source), "--out", str(out), "--as-of", AS_OF, *extra)
    assert done.returncode in (0, 1), done.stderr
    return json.loads((out / f"{name}.json").read_text()), out


@pytest.fixture(scope="module")
def duplicate(tmp_path_factory) -> tuple[dict, Path, str]:
    """The duplicate fixture scrubbed once by the CLI: its report, --out and input text."""
    source = FIXTURES / "edits" / "EPI-DUP-001.837"
    text = source.read_text()
    report, out = _scrub(tmp_path_factory.mktemp("duplicate"), source.name, text)
    return report, out, text


def _segments(text: str) -> list[list[str]]:
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def test_schema_command_prints_a_versioned_json_schema(validator):
    done = invoke_claimscrub("schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(":1.0.0")
    claim = schema["$defs"]["ClaimDoc"]["properties"]
    for field in ("payer", "billing_npi", "rendering_npi", "patient_days", "transaction_set", "findings"):
        assert field in claim, field
    finding = schema["$defs"]["FindingDoc"]["properties"]
    assert {"related", "ack277", "amount_at_risk"} <= finding.keys()
    assert {"schema_version", "config_file", "claims"} <= set(schema["required"])


def test_a_fixture_report_carries_the_keys_of_its_input(duplicate, validator):
    report, out, text = duplicate
    assert report["schema_version"] == "1.0.0"
    assert report["config_file"] is None
    assert report["as_of"] == AS_OF
    assert not list(validator.iter_errors(report))
    segments = _segments(text)
    payer = next(s for s in segments if s[:2] == ["NM1", "PR"])
    billing = next(s for s in segments if s[:2] == ["NM1", "85"])
    st = next(s for s in segments if s[0] == "ST")
    dates = {f"{s[3][:4]}-{s[3][4:6]}-{s[3][6:8]}" for s in segments if s[:2] == ["DTP", "472"]}
    for claim in report["claims"]:
        assert claim["payer"] == {"id": payer[9], "id_qualifier": payer[8], "name": payer[3]}
        assert claim["billing_npi"] == billing[9]
        assert claim["transaction_set"]["control_number"] == st[2]
        assert claim["transaction_set"]["segment"] == 3  # ISA, GS, ST
        assert {d["date_of_service"] for d in claim["patient_days"]} <= dates
        assert all(line["rendering_npi"] for line in claim["lines"])
        assert claim["service_date_from"] in dates


def test_a_duplicate_names_the_earlier_claim_as_a_field_and_the_277ca_status(duplicate):
    report, out, _ = duplicate
    source = FIXTURES / "edits" / "EPI-DUP-001.837"
    claims = {c["claim_id"]: c for c in report["claims"]}
    finding = next(f for f in claims["C2"]["findings"] if f["rule"] == "EPI-DUP-001")
    assert finding["related"] == [{"claim_id": "C1", "file": source.name, "line": "1", "billed_on": None}]
    assert finding["ack277"] == {"category": "A7", "status_code": "78", "entity": None}
    # the 277CA says the same for the claim (TRN*2 = CLM01, then its STC01)
    ack = _segments((out / f"{source.name}.277").read_text())
    trn = next(i for i, s in enumerate(ack) if s[:3] == ["TRN", "2", "C2"])
    assert ack[trn + 1][0] == "STC" and ack[trn + 1][1] == "A7:78"


def test_an_em_visit_names_the_procedure_claim_it_is_paired_with(tmp_path):
    text = write_837([
        {"id": "PROC", "lines": [{"code": "64483", "charge": 500}]},
        {"id": "VISIT", "lines": [{"code": "99214", "charge": 150}]},
    ])
    report, _ = _scrub(tmp_path, "day.837", text)
    visit = next(c for c in report["claims"] if c["claim_id"] == "VISIT")
    em = [f for f in visit["findings"] if f["rule"] == "EPI-EM-001"]
    assert em, visit["findings"]
    assert [r["claim_id"] for r in em[0]["related"]] == ["PROC"]
    assert em[0]["related"][0]["line"] == "1"
    # a finding about its own claim only names nothing
    proc = next(c for c in report["claims"] if c["claim_id"] == "PROC")
    assert all(f["related"] == [] or f["rule"].startswith("EPI-SPLIT") or f["related"][0]["claim_id"] == "VISIT"
               for f in proc["findings"])


def test_money_is_written_with_two_decimals_everywhere(tmp_path):
    text = write_837([
        {"id": "ODD", "charge": "125.5", "lines": [{"code": "62323", "charge": "125.5"}]},
        {"id": "BAL", "charge": 999, "lines": [{"code": "62323", "charge": 500}], "member": "MBR0002"},
    ])
    report, _ = _scrub(tmp_path, "money.837", text)
    claims = {c["claim_id"]: c for c in report["claims"]}
    assert claims["ODD"]["charge"] == "125.50" and claims["ODD"]["lines"][0]["charge"] == "125.50"
    assert claims["BAL"]["charge"] == "999.00"
    amounts = []

    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key.endswith(("charge", "expected_allowed", "amount_at_risk")) and value is not None:
            amounts.append((key, value))

    walk({k: v for k, v in report.items() if k != "tables"})
    assert len(amounts) > 10
    assert all(isinstance(v, str) and MONEY.match(v) for _, v in amounts), amounts
    assert Decimal(report["summary"]["rejected_charge"]) == Decimal("999.00")


def test_the_schema_check_catches_a_report_that_breaks_the_contract(duplicate, tmp_path, validator):
    report, out, _ = duplicate
    source = FIXTURES / "edits" / "EPI-DUP-001.837"
    assert schema_errors(validator, out / f"{source.name}.json") == []
    broken = dict(report)
    del broken["schema_version"]
    broken["claims"] = [dict(report["claims"][0], charge="500")]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    errors = schema_errors(validator, path)
    assert any("schema_version" in e for e in errors), errors
    assert any("charge" in e for e in errors), errors
    path.unlink()  # not left for the session check


def test_a_duplicate_of_an_earlier_night_names_that_run(tmp_path):
    """With a claim history, the related claim of a duplicate is the one billed on an earlier
    night: its file and the date of that run are fields."""
    import os
    import subprocess
    import sys

    history = f"sqlite:///{tmp_path / 'history.sqlite'}"
    env = {**os.environ, "CLAIMSCRUB_HISTORY_KEY": "test-history-key-0123456789abcdef"}
    claim = {"lines": [{"code": "62323", "charge": 500}]}
    for night, claim_id in (("night1.837", "FIRST"), ("night2.837", "AGAIN")):
        (tmp_path / night).write_text(write_837([dict(claim, id=claim_id)]))
        done = subprocess.run(
            [sys.executable, "-m", "claimscrub", "scrub", str(tmp_path / night), "--out", str(tmp_path / night[:6]),
             "--as-of", AS_OF, "--no-validate", "--history", history],
            capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode in (0, 1), done.stderr
    report = json.loads((tmp_path / "night2" / "night2.837.json").read_text())
    finding = next(f for f in report["claims"][0]["findings"] if f["rule"] == "EPI-DUP-001")
    (related,) = finding["related"]
    assert (related["claim_id"], related["file"], related["line"]) == ("FIRST", "night1.837", "1")
    assert related["billed_on"] is not None and related["billed_on"] in finding["message"]


def test_jsonl_lines_are_versioned_claims_valid_against_their_schema(tmp_path):
    """`--format jsonl` streams the report's claims, one a line, each with the document's
    schema_version and input, and `claimscrub schema --for jsonl` describes a line."""
    from jsonschema import Draft202012Validator

    source = FIXTURES / "edits" / "EPI-DUP-001.837"
    out = tmp_path / "out"
    done = invoke_claimscrub("scrub", str(source), "--out", str(out), "--format", "jsonl", "--as-of", AS_OF)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    schema = json.loads(invoke_claimscrub("schema", "--for", "jsonl").stdout)
    assert schema["$id"].endswith(":1.0.0")
    line_validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    report = json.loads((out / f"{source.name}.json").read_text())
    assert len(lines) == len(report["claims"]) == 2
    for line, claim in zip(lines, report["claims"]):
        assert not list(line_validator.iter_errors(line))
        assert line["schema_version"] == report["schema_version"] and line["input"] == report["input"]
        assert {k: v for k, v in line.items() if k not in ("schema_version", "input")} == claim
    # a line missing its version is not a valid line
    broken = {k: v for k, v in lines[0].items() if k != "schema_version"}
    assert any("schema_version" in e.message for e in line_validator.iter_errors(broken))
