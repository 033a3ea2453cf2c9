"""Duplicates within a run, as a billing office meets them: a file scrubbed together with a
copy of itself, or one claim resent in a second file. The copy is rejected by the
duplicate edit, the original is judged on its own, and a claim rejected on its own is never
forwarded because a copy of it exists."""

from __future__ import annotations

import json
from collections import Counter

from conftest import AS_OF, invoke_claimscrub
from claimscrub.synth import write_837
from ackhelpers import claim_ids

CLEAN = {"id": "CLEAN1", "dx": ["M5416"], "lines": [{"code": "62323", "charge": 500}]}
BAD_ON_ITS_OWN = {
    "id": "BAD1", "member": "MBR0002",
    "lines": [{"code": "64483", "charge": 300}, {"code": "77003", "charge": 90}],
}


def _scrub_pair(tmp_path, first: list[dict], second: list[dict]):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.837").write_text(write_837(first, control=1))
    (inputs / "b.837").write_text(write_837(second, control=2))
    out, accepted = tmp_path / "out", tmp_path / "accepted"
    result = invoke_claimscrub("scrub", str(inputs), "--out", str(out), "--accepted-out", str(accepted),
                               "--as-of", AS_OF)
    reports = {name: json.loads((out / f"{name}.json").read_text()) for name in ("a.837", "b.837")}
    return result, reports, accepted


def _claims(report):
    return {c["claim_id"]: c for c in report["claims"]}


def test_file_scrubbed_with_a_copy_of_itself(tmp_path):
    result, reports, accepted = _scrub_pair(tmp_path, [CLEAN, BAD_ON_ITS_OWN], [CLEAN, BAD_ON_ITS_OWN])
    assert result.returncode == 1, result.stderr
    a, b = _claims(reports["a.837"]), _claims(reports["b.837"])
    # the original: judged on its own, a copy elsewhere changes nothing
    assert a["CLEAN1"]["status"] == "accepted", a["CLEAN1"]
    assert not a["CLEAN1"]["findings"], a["CLEAN1"]
    assert a["BAD1"]["status"] == "rejected"
    assert {f["rule"] for f in a["BAD1"]["findings"]} == {"EPI-IMG-001"}
    # the copy: rejected as a duplicate, and still judged on its own merits
    assert b["CLEAN1"]["status"] == "rejected"
    assert {f["rule"] for f in b["CLEAN1"]["findings"]} == {"EPI-DUP-001"}
    assert b["BAD1"]["status"] == "rejected"
    assert {f["rule"] for f in b["BAD1"]["findings"]} == {"EPI-DUP-001", "EPI-IMG-001"}
    # forwarded: only the original clean claim, never a copy, never the bad claim
    assert claim_ids(accepted / "a.837") == Counter({"CLEAN1": 1})
    assert not (accepted / "b.837").exists()


def test_copy_does_not_turn_the_original_into_two_units(tmp_path):
    result, reports, _ = _scrub_pair(tmp_path, [CLEAN], [CLEAN])
    rules_a = {f["rule"] for c in reports["a.837"]["claims"] for f in c["findings"]}
    assert not rules_a & {"EPI-MUE-001", "EPI-MUE-002", "EPI-SPLIT-001"}, rules_a
    dup = reports["b.837"]["claims"][0]["findings"]
    assert [f["rule"] for f in dup] == ["EPI-DUP-001"]
    assert "a.837" in dup[0]["message"] and "CARC 18" in dup[0]["source"]


def test_replacement_claim_is_not_a_duplicate(tmp_path):
    replacement = {**CLEAN, "frequency": "7"}
    result, reports, _ = _scrub_pair(tmp_path, [CLEAN], [replacement])
    rules_b = {f["rule"] for c in reports["b.837"]["claims"] for f in c["findings"]}
    assert "EPI-DUP-001" not in rules_b
