"""The CMS published files, in their own layouts, given with --rules, replace the bundled
PTP, MUE and RVU tables: pairs and limits the bundle lacks fire, CMS rows carry their full
severity, and every report names the release it used.

The files are written here in the published layouts (copyright lines, headers spread over
several rows) with synthetic rows."""

from __future__ import annotations

import json
import tempfile
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from claimscrub.errors import ConfigError
from claimscrub.examples import findings_of
from claimscrub.pricing import line_allowed
from claimscrub.scrub import ScrubOptions, Scrubber
from claimscrub.synth import write_837
from claimscrub.tables import load_tables

from conftest import AS_OF, invoke_claimscrub

COPYRIGHT = "CPT codes, descriptions and other data only are copyright 2025 American Medical Association. All rights reserved."
PTP_HEADER = [
    "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale",
    "\t\tprior to 1996\tDate\tDate\t0=not allowed\t",
    "\t\t\t\t*=no data\t1=allowed\t",
    "\t\t\t\t\t9=not applicable\t",
]


def ptp_text(rows: list[str]) -> str:
    return "\n".join([COPYRIGHT, "", *PTP_HEADER, *rows]) + "\n"


def write_ptp(folder: Path, release: str = "v322r0") -> None:
    # Part 1 and part 2 of one release, split by column-1 code as CMS ships them.
    (folder / f"ccipra-{release}-f1.txt").write_text(ptp_text([
        "20610\t99213\t\t20200101\t*\t1\tStandards of medical / surgical practice",
        "20610\tJ1030\t\t20200101\t20200101\t9\tMisuse of column two code with column one code",
        "20610\tJ1040\t*\t19960101\t*\t9\tMisuse of column two code with column one code",
    ]), encoding="cp1252")
    (folder / f"ccipra-{release}-f2.txt").write_text(ptp_text([
        "64483\t96372\t\t20170101\t*\t1\tMisuse of column two code with column one code",
        "64493\t20552\t\t20170101\t*\t0\tMutually exclusive procedures",
        "64493\t20553\t\t20170101\t20211231\t0\tMutually exclusive procedures",
    ]), encoding="cp1252")


MUE_CSV = (
    '"CPT codes and descriptions only are copyright 2025 American Medical Association.\n'
    'All Rights Reserved. Applicable FARS/DFARS Apply."\n'
    '\n'
    '"HCPCS/\nCPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"\n'
    '99214,1,"2 Date of Service Edit: Policy","Code Descriptor / CPT Instruction"\n'
    '77003,1,"3 Date of Service Edit: Clinical","Clinical: Data"\n'
    '64483,1,"1 Line Edit","Anatomic Consideration"\n'
    '64493,1,"1 Line Edit","Anatomic Consideration"\n'
    '62323,1,"2 Date of Service Edit: Policy","Code Descriptor / CPT Instruction"\n'
)

RVU_TITLE = [
    '"2026 NATIONAL PHYSICIAN FEE SCHEDULE RELATIVE VALUE FILE JANUARY RELEASE",,,,,,,,,,,,,,',
    f'"{COPYRIGHT}",,,,,,,,,,,,,,',
    ",,,,,,,,,,,,,,",
]
RVU_HEADER = [
    ',,,"STATUS","NOT USED FOR MEDICARE","WORK","NON-FAC","NON-FAC NA","FACILITY","FACILITY NA","MP",'
    '"NON-FACILITY","FACILITY","PCTC","GLOB","CONV"',
    '"HCPCS","MOD","DESCRIPTION","CODE","PAYMENT","RVU","PE RVU","INDICATOR","PE RVU","INDICATOR","RVU",'
    '"TOTAL","TOTAL","IND","DAYS","FACTOR"',
]


def rvu_text(cf: str) -> str:
    rows = [
        f'"62323","","Njx interlaminar lmbr/sac","A","","1.76","6.25","","0.74","","0.17","8.18","2.67","0","000","{cf}"',
        f'"64484","","Njx aa&/strd tfrm epi l/s ea","A","","1.00","2.00","","0.50","","0.10","3.10","1.60","0","ZZZ","{cf}"',
        f'"77003","26","Fluoroguide for spine inject","A","","0.60","0.25","","0.25","","0.05","0.90","0.90","1","ZZZ","{cf}"',
        f'"99999","","A bundled code","B","","0.50","0.50","","0.50","","0.05","1.05","1.05","0","XXX","{cf}"',
    ]
    return "\n".join([*RVU_TITLE, *RVU_HEADER, *rows]) + "\n"


@pytest.fixture
def cms_dir(tmp_path) -> Path:
    folder = tmp_path / "cms"
    folder.mkdir()
    write_ptp(folder)
    (folder / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv").write_text(MUE_CSV, encoding="utf-8")
    (folder / "PPRRVU2026_Jan_nonQPP.csv").write_text(rvu_text("33.4009"), encoding="utf-8")
    (folder / "PPRRVU2026_Jan_QPP.csv").write_text(rvu_text("33.5675"), encoding="utf-8")
    return folder


def only(rule, scenario, tables):
    return findings_of(rule, {**scenario, "validate": False}, tables=tables)


# -- PTP --------------------------------------------------------------------------------
def test_ptp_parts_combine_into_one_table_that_names_its_release(cms_dir):
    tables = load_tables(str(cms_dir))
    ptp = tables.table("ptp")
    info = ptp.version_info()
    assert info["release"] == "v322r0"
    assert "ccipra-v322r0-f1.txt" in info["files"] and "ccipra-v322r0-f2.txt" in info["files"]
    assert info["rows"] == "6"
    assert ptp.knows(column1="20610", column2="99213") and ptp.knows(column1="64493", column2="20552")
    row = ptp.first(None, column1="64493", column2="20552")
    assert row["modifier_indicator"] == "0" and row["verified"] == "yes"
    assert ptp.first(None, column1="20610", column2="J1040")["prior_1996"] == "yes"
    # the bundled pairs are gone: the CMS table replaces the bundled one
    assert not ptp.knows(column1="62311", column2="96372")


def test_a_pair_the_bundle_lacks_fires_once_the_folder_is_given(cms_dir):
    # 20610 (a large-joint injection) is outside the specialty: the bundled table has no row for it
    scenario = {"claims": [{"id": "C1", "lines": [{"code": "20610"}, {"code": "99213"}]}]}
    assert only("EPI-PTP-001", scenario, None) == []
    found = only("EPI-PTP-001", scenario, load_tables(str(cms_dir)))
    assert [(f.line, f.severity.value) for f in found] == [("2", "error")]
    assert "modifier indicator 1" in found[0].message
    assert "ccipra-v322r0" in found[0].source
    assert "UNVERIFIED" not in found[0].message


def test_indicator_0_is_not_bypassed_by_59_or_x(cms_dir):
    tables = load_tables(str(cms_dir))
    for modifier in ("59", "XS", "XU"):
        scenario = {"claims": [{"id": "C1", "lines": [{"code": "64493"}, {"code": "20552", "modifiers": [modifier]}]}]}
        found = only("EPI-PTP-001", scenario, tables)
        assert [(f.line, f.severity.value) for f in found] == [("2", "error")]
        assert f"Modifier {modifier} does not bypass an indicator-0 edit" in found[0].message


def test_indicator_1_with_a_modifier_is_info(cms_dir):
    scenario = {"claims": [{"id": "C1", "lines": [{"code": "64483"}, {"code": "96372", "modifiers": ["XS"]}]}]}
    found = only("EPI-PTP-001", scenario, load_tables(str(cms_dir)))
    assert [f.severity.value for f in found] == ["info"]


def test_em_column_2_is_bypassed_by_25_only(cms_dir):
    tables = load_tables(str(cms_dir))
    with_59 = {"claims": [{"id": "C1", "lines": [{"code": "20610"}, {"code": "99213", "modifiers": ["59"]}]}]}
    found = only("EPI-PTP-001", with_59, tables)
    assert [f.severity.value for f in found] == ["error"]
    assert "only 25 or 57 bypass" in found[0].message and "Append 25" in found[0].fix
    with_25 = {"claims": [{"id": "C1", "lines": [{"code": "20610"}, {"code": "99213", "modifiers": ["25"]}]}]}
    assert [f.severity.value for f in only("EPI-PTP-001", with_25, tables)] == ["info"]


def test_indicator_9_and_deleted_rows_do_not_fire(cms_dir):
    tables = load_tables(str(cms_dir))
    retired = {"claims": [{"id": "C1", "lines": [{"code": "20610"}, {"code": "J1030"}, {"code": "J1040"}]}]}
    assert only("EPI-PTP-001", retired, tables) == []
    before = {"claims": [{"id": "C1", "date": "2021-12-31", "lines": [{"code": "64493"}, {"code": "20553"}]}]}
    after = {"claims": [{"id": "C1", "date": "2022-01-01", "lines": [{"code": "64493"}, {"code": "20553"}]}]}
    assert len(only("EPI-PTP-001", before, tables)) == 1  # the deletion date is the last day it applies
    assert only("EPI-PTP-001", after, tables) == []


def test_the_cms_folder_replaces_the_bundled_ptp_table(tmp_path):
    # The bundle holds the CMS row 62323/64483 (indicator 1): the family finding is an error.
    # A CMS release given with --rules replaces the bundled table entirely; without that
    # pair in it, only the LCD session policy remains, a warning.
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "ccipra-v322r0-f1.txt").write_text(
        ptp_text(["64483\t96372\t\t20170101\t*\t1\tMisuse of column two code with column one code"]))
    scenario = {"claims": [{"id": "C1", "lines": [{"code": "62323"}, {"code": "64483"}]}]}
    bundled = only("EPI-FAM-003", scenario, None)
    assert [f.severity.value for f in bundled] == ["error"]
    assert "modifier indicator 1" in bundled[0].message
    found = only("EPI-FAM-003", scenario, load_tables(str(folder)))
    assert [f.severity.value for f in found] == ["warning"]
    assert "modifier indicator" not in found[0].message


def test_csv_and_zip_layouts(tmp_path):
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "ccipra-v322r0-f1.csv").write_text(
        f'"{COPYRIGHT}"\n\n'
        '"Column 1","Column 2","*=in existence prior to 1996","Effective Date","Deletion Date *=no data",'
        '"Modifier 0=not allowed 1=allowed 9=not applicable","PTP Edit Rationale"\n'
        '"64483","96372","","20170101","*","1","Misuse of column two code with column one code"\n'
    )
    zip_dir = tmp_path / "zip"
    zip_dir.mkdir()
    with zipfile.ZipFile(zip_dir / "ccipra-v322r0-f1.zip", "w") as archive:
        archive.writestr("ccipra-v322r0-f1.txt", ptp_text(["64483\t96372\t\t20170101\t*\t1\tMisuse"]))
        archive.writestr("ccipra-v322r0-f1.xlsx", b"not read")
    for folder in (csv_dir, zip_dir):
        row = load_tables(str(folder)).table("ptp").first(None, column1="64483", column2="96372")
        assert row is not None and row["modifier_indicator"] == "1" and row["deleted"] is None


def test_two_releases_or_the_hospital_file_are_refused(tmp_path):
    two = tmp_path / "two"
    two.mkdir()
    write_ptp(two, "v321r0")
    write_ptp(two, "v322r0")
    with pytest.raises(ConfigError, match="several releases"):
        load_tables(str(two))
    hospital = tmp_path / "hospital"
    hospital.mkdir()
    (hospital / "ccioph-v322r0-f1.txt").write_text(ptp_text(["64483\t96372\t\t20170101\t*\t1\tx"]))
    with pytest.raises(ConfigError, match="outpatient hospital"):
        load_tables(str(hospital))


# -- MUE --------------------------------------------------------------------------------
def test_mue_file_with_copyright_cell_and_split_header(cms_dir):
    mue = load_tables(str(cms_dir)).table("mue")
    assert mue.provenance["release"] == "Eff 2026-01-01"
    assert {r["code"]: r["mai"] for r in mue.rows} == {
        "99214": "2", "77003": "3", "64483": "1", "64493": "1", "62323": "2"}
    assert all(r["verified"] == "yes" for r in mue.rows)


def test_cms_mue_rows_carry_their_full_severity(cms_dir):
    tables = load_tables(str(cms_dir))
    two_claims = {"claims": [{"id": "C1", "date": "2026-03-03", "lines": [{"code": "99214"}]},
                             {"id": "C2", "date": "2026-03-03", "lines": [{"code": "99214", "modifiers": ["25"]}]}]}
    found = only("EPI-MUE-001", two_claims, tables)
    assert [(f.claim_id, f.severity.value) for f in found] == [("C2", "error")]
    assert "absolute, not appealable" in found[0].message and "UNVERIFIED" not in found[0].message
    assert "MCR_MUE_PractitionerServices_Eff_01-01-2026" in found[0].source
    clinical = {"claims": [{"id": "C1", "lines": [{"code": "77003", "units": 2}]}]}
    assert [f.severity.value for f in only("EPI-MUE-001", clinical, tables)] == ["warning"]
    line_edit = {"claims": [{"id": "C1", "lines": [{"code": "64493", "modifiers": ["LT"], "units": 2}]}]}
    found = only("EPI-MUE-001", line_edit, tables)
    assert [f.severity.value for f in found] == ["error"] and "separate lines" in found[0].fix


def test_cms_mue_replaces_the_bundled_one(cms_dir):
    # 20552 has a bundled (UNVERIFIED) MUE of 1 but no row in this CMS file.
    scenario = {"claims": [{"id": "C1", "lines": [{"code": "20552", "units": 2}]}]}
    assert len(only("EPI-MUE-001", scenario, None)) == 1
    assert only("EPI-MUE-001", scenario, load_tables(str(cms_dir))) == []


def test_mue_zip(tmp_path):
    folder = tmp_path / "zip"
    folder.mkdir()
    with zipfile.ZipFile(folder / "MCR_MUE_PractitionerServices_Eff_04-01-2026.zip", "w") as archive:
        archive.writestr("MCR_MUE_PractitionerServices_Eff_04-01-2026.csv", MUE_CSV)
        archive.writestr("MCR_MUE_PractitionerServices_Eff_04-01-2026.xlsx", b"not read")
    mue = load_tables(str(folder)).table("mue")
    assert mue.provenance["release"] == "Eff 2026-04-01"
    assert mue.first(None, code="77003")["mai"] == "3"


def test_facility_mue_file_is_refused(tmp_path):
    folder = tmp_path / "oph"
    folder.mkdir()
    (folder / "MCR_MUE_OutpatientHospitalServices_Eff_01-01-2026.csv").write_text(
        MUE_CSV.replace("Practitioner Services MUE Values", "Outpatient Hospital Services MUE Values"))
    with pytest.raises(ConfigError, match="Practitioner Services MUE file"):
        load_tables(str(folder))


# -- RVU --------------------------------------------------------------------------------
def test_rvu_file_with_title_lines_and_split_header(cms_dir):
    rvu = load_tables(str(cms_dir)).table("rvu")
    assert rvu.provenance["release"] == "2026 Jan"
    assert rvu.provenance["files"] == "PPRRVU2026_Jan_nonQPP.csv"  # preferred over the QPP file
    assert rvu.first(date(2025, 5, 1), code="62323", modifier="") is None  # rows apply to their year only
    row = rvu.first(date(2026, 5, 1), code="62323", modifier="")
    assert (row["work_rvu"], row["pe_nonfacility"], row["pe_facility"], row["mp_rvu"], row["global_days"]) == (
        "1.76", "6.25", "0.74", "0.17", "000")
    assert row["conversion_factor"] == "33.4009" and row["verified"] == "yes"


def test_rvu_file_prices_lines(cms_dir):
    tables = load_tables(str(cms_dir))
    claim = _claim({"id": "C1", "date": "2026-04-01", "lines": [
        {"code": "62323"}, {"code": "64484", "units": 2}, {"code": "77003", "modifiers": ["26"]},
        {"code": "99999"}, {"code": "62321"}]})
    amounts = [line_allowed(claim, line, tables) for line in claim.lines]
    assert amounts[0] == Decimal("273.22")                       # 8.18 x 33.4009
    assert amounts[1] == Decimal("207.09")                       # 3.10 x 33.4009 x 2 units (add-on, ZZZ)
    assert amounts[2] == Decimal("30.06")                        # the -26 row: 0.90 x 33.4009
    assert amounts[3] is None                                    # status B: not paid under the MPFS
    assert amounts[4] is None                                    # not in this file


def _claim(spec: dict):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.837"
        path.write_text(write_837([spec]))
        run = Scrubber(ScrubOptions(as_of=date(2026, 11, 22), work_dir=tmp)).run([str(path)])
        try:
            return next(run.claim_results(run.files[0])).claim
        finally:
            run.close()


# -- end to end ---------------------------------------------------------------------------
def test_scrub_with_rules_folder_reports_the_releases(cms_dir, tmp_path):
    batch = tmp_path / "batch.837"
    batch.write_text(write_837([{"id": "C1", "date": "2026-03-03", "lines": [{"code": "64483"}, {"code": "96372"}]}]))
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(batch), "--out", str(out), "--as-of", AS_OF, "--rules", str(cms_dir))
    assert result.returncode == 1, result.stderr
    report = json.loads((out / "batch.837.json").read_text())
    releases = {t["table"]: t.get("release") for t in report["tables"]}
    assert releases["ptp"] == "v322r0"
    assert releases["mue"] == "Eff 2026-01-01"
    assert releases["rvu"] == "2026 Jan"
    files = {t["table"]: t["file"] for t in report["tables"]}
    assert files["ptp"] == "ccipra-v322r0-f1.txt" and files["mue"].startswith("MCR_MUE_PractitionerServices")
    rules = [f["rule"] for f in report["claims"][0]["findings"]]
    assert "EPI-PTP-001" in rules
