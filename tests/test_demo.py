"""The demo batch: what `make demo` shows a newcomer. Each claim's expected disposition is
stated in fixtures/generate.py beside the claim; the edits must agree, and the committed
fixtures must match their generator."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import AS_OF, FIXTURES, ROOT, run_claimscrub

ACCEPTED = {"PM250303-01", "PM250303-02", "PM250303-10", "PM250303-12", "PM250303-14", "PM250303-16"}
REJECTED_BY = {
    "PM250303-03": "EPI-IMG-001",
    "PM250303-04": "EPI-IMG-002",
    "PM250303-05": "EPI-EM-001",
    "PM250303-06": "EPI-DX-001",
    "PM250303-07": "EPI-CODE-001",
    "PM250303-08": "EPI-MOD-001",
    "PM250303-09": "EPI-BAL-001",
    "PM250303-11": "EPI-MUE-002",
    "PM250303-13": "EPI-IMG-001",
    "PM250303-15": "EPI-SYN-004",
}


def test_fixtures_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "fixtures" / "generate.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_demo_dispositions(tmp_path):
    result = run_claimscrub("scrub", str(FIXTURES / "demo"), "--out", str(tmp_path), "--as-of", AS_OF)
    assert result.returncode == 1, result.stderr
    claims = {}
    for report in tmp_path.glob("*.json"):
        for claim in json.loads(report.read_text())["claims"]:
            claims[claim["claim_id"]] = claim
    assert set(claims) == ACCEPTED | set(REJECTED_BY)
    for claim_id in ACCEPTED:
        assert claims[claim_id]["status"] == "accepted", claims[claim_id]
    for claim_id, rule in REJECTED_BY.items():
        claim = claims[claim_id]
        assert claim["status"] == "rejected", claim
        assert rule in {f["rule"] for f in claim["findings"] if f["severity"] == "error"}, claim
    # The split session: the injection's claim is accepted with a warning naming the other claim.
    split = [f for f in claims["PM250303-12"]["findings"] if f["rule"] == "EPI-SPLIT-001"]
    assert split and "PM250303-13" in split[0]["message"]
