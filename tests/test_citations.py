"""What users read cites primary sources (CPT descriptors and parentheticals, NCCI policy
manual chapters, CMS PTP/MUE/PFS releases, LCDs and articles, CMS manual sections): never
claimscrub's internal notes, a third-party website, or the word UNVERIFIED. Checked on
every rule's documentation (`claimscrub explain`), the rule list, the table listing and
every finding the fixtures and the demo produce."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from claimscrub.cli import main
from claimscrub.engine import load_rules
from conftest import AS_OF, FIXTURES, invoke_claimscrub

#: internal notes, third-party reference sites and the word a user cannot act on
NOT_FOR_USERS = re.compile(
    r"domain-rules|UNVERIFIED|\brubric\b|\b[\w-]+\.(?:com|ai|io)\b|payerready|codingahead|iframe|"
    r"\bverity\b|FCSO|Noridian JF|Palmetto|\bModa\b",
    re.IGNORECASE,
)


def _offending(text: str) -> list[str]:
    return sorted({m.group(0) for m in NOT_FOR_USERS.finditer(text)})


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.mark.parametrize("rule_id", sorted(load_rules()))
def test_explain_cites_primary_sources(runner, rule_id):
    result = runner.invoke(main, ["explain", rule_id])
    assert result.exit_code == 0, result.output
    assert not _offending(result.output), f"{rule_id}: {_offending(result.output)}"


def test_rule_list_and_tables_cite_primary_sources(runner):
    for args in (["rules"], ["tables"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert not _offending(result.output), f"{args}: {_offending(result.output)}"


def test_findings_cite_primary_sources(tmp_path):
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(FIXTURES), "--out", str(out), "--as-of", AS_OF)
    assert result.returncode in (0, 1), result.stderr
    seen = 0
    for report in out.glob("*.json"):
        document = json.loads(report.read_text())
        assert not _offending(json.dumps(document["tables"])), report.name
        for claim in document["claims"]:
            for finding in claim["findings"]:
                seen += 1
                text = " ".join(str(finding.get(k, "")) for k in ("message", "fix", "source"))
                assert not _offending(text), f"{report.name} {claim['claim_id']} {finding['rule']}: {_offending(text)}"
                assert finding["source"], finding
    assert seen > 50
