"""The imaging, modifier and E/M edits take their facts from the rule tables, so a user's
tables (``--rules DIR``) change what they report without code changes.

The overlay tables below are test data written for these cases, not statements about the
real codes: a ``procedure_codes.csv`` or ``modifiers.csv`` in the folder replaces the
bundled table of that name.
"""

from __future__ import annotations

import textwrap

import pytest

from claimscrub.examples import findings_of
from claimscrub.tables import load_tables

PROCEDURES = textwrap.dedent(
    """\
    # source: test overlay (not real indicator values)
    # version: test
    code,family,region,imaging,catheter,global_days,bilateral_indicator,pctc_indicator,is_em,effective,deleted{verified_header}
    62321,epidural-interlaminar,CT,yes,no,000,0,0,no,2017-01-01,{verified}
    64483,epidural-transforaminal,LS,yes,no,000,1,0,no,2011-01-01,{verified}
    20552,trigger-point,,no,no,000,2,0,no,2004-01-01,{verified}
    99214,em-office-established,,no,no,XXX,9,0,yes,1992-01-01,{verified}
    """
)

MODIFIERS = textwrap.dedent(
    """\
    # source: test overlay (GQ's deletion date is test data)
    # version: test
    modifier,meaning,kind,effective,deleted,verified
    50,Bilateral procedure,pricing,,,yes
    GQ,Via asynchronous telecommunications system,telehealth,,2020-12-31,yes
    """
)


def _tables(tmp_path, verified: str | None = None, modifiers: bool = False):
    if verified is None:
        text = PROCEDURES.format(verified_header="", verified="").replace(",\n", "\n")
    else:
        text = PROCEDURES.format(verified_header=",verified", verified=f",{verified}")
    (tmp_path / "procedure_codes.csv").write_text(text)
    if modifiers:
        (tmp_path / "modifiers.csv").write_text(MODIFIERS)
    return load_tables(str(tmp_path))


def _run(rule, claims, tables):
    return findings_of(rule, {"claims": claims, "validate": False}, tables=tables)


def test_modifier_50_on_an_already_bilateral_code(tmp_path):
    found = _run("EPI-MOD-001", [{"id": "C1", "lines": [{"code": "20552", "modifiers": ["50"]}]}],
                 _tables(tmp_path, verified="yes"))
    assert [(f.claim_id, f.line, f.severity.value) for f in found] == [("C1", "1", "error")]
    assert "bilateral indicator 2" in found[0].message


@pytest.mark.parametrize("verified, severity", [("no", "warning"), ("yes", "error"), (None, "error")])
def test_severity_follows_the_verified_column_where_the_value_decides(tmp_path, verified, severity):
    """Where an unchecked value could change the verdict (50 on a code whose bilateral
    indicator the row gives), a row marked verified=no gives a warning that asks to confirm
    it; verified=yes, or a table without the column (a complete CMS file), an error."""
    tables = _tables(tmp_path, verified=verified)
    found = _run("EPI-MOD-001", [{"id": "C1", "lines": [{"code": "20552", "modifiers": ["50"]}]}], tables)
    assert [f.severity.value for f in found] == [severity]
    assert ("Confirm the bilateral indicator" in found[0].message) == (verified == "no")


@pytest.mark.parametrize("verified", ["no", "yes", None])
def test_severity_does_not_follow_the_verified_column_where_the_value_cannot_decide(tmp_path, verified):
    """E/M without 25 beside a 000 (or 010) procedure is an error either way, and RT on an
    interlaminar epidural is a warning either way: an unchecked value cannot change them."""
    tables = _tables(tmp_path, verified=verified)
    rt = _run("EPI-MOD-001", [{"id": "C1", "lines": [{"code": "62321", "modifiers": ["RT"]}]}], tables)
    em = _run("EPI-EM-001", [{"id": "C1", "lines": [{"code": "64483"}, {"code": "99214"}]}], tables)
    assert [f.severity.value for f in rt] == ["warning"]
    assert [(f.line, f.severity.value) for f in em] == [("2", "error")]


def test_a_code_missing_from_the_users_table_is_not_judged(tmp_path):
    """62323 is not in the overlay: the modifier edit skips it (EPI-TBL-001 reports it)."""
    found = _run("EPI-MOD-001", [{"id": "C1", "lines": [{"code": "62323", "modifiers": ["50"]}]}],
                 _tables(tmp_path, verified="yes"))
    assert found == []


def test_a_deleted_modifier(tmp_path):
    tables = _tables(tmp_path, verified="yes", modifiers=True)
    claims = [
        {"id": "C1", "date": "2021-02-01", "lines": [{"code": "99214", "modifiers": ["GQ"]}]},
        {"id": "C2", "member": "MBR0002", "date": "2020-12-31", "lines": [{"code": "99214", "modifiers": ["GQ"]}]},
        {"id": "C3", "member": "MBR0003", "lines": [{"code": "99214", "modifiers": ["25"]}]},
    ]
    found = _run("EPI-MOD-010", claims, tables)
    by_claim = {f.claim_id: f for f in found}
    assert sorted(by_claim) == ["C1", "C3"]
    assert by_claim["C1"].severity.value == "error"
    assert "deleted after 2020-12-31" in by_claim["C1"].message
    assert by_claim["C3"].severity.value == "warning"  # 25 is not in this user's table
