"""CMS files as users download them: recognised by their content under CMS download names
(ZIPs included), columns read by header, and any other file in ``--rules`` refused with one
line naming it (exit 3). Through the CLI: ``claimscrub tables`` and ``claimscrub scrub``, in the
test's process (the same exit status and output as a process of its own)."""

from __future__ import annotations

import json
import shutil
from datetime import date
import zipfile
from pathlib import Path

import pytest

from claimscrub.synth import write_837
from claimscrub.tables import load_tables

from conftest import AS_OF, ROOT, invoke_claimscrub
from test_cms_loaders import MUE_CSV, ptp_text, rvu_text

CMS = ROOT.parent / "shared" / "cms-data"
needs_cms = pytest.mark.skipif(not CMS.is_dir(), reason="../shared/cms-data is not present")


def _zip(path: Path, members: dict[str, str | bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def downloads(tmp_path) -> Path:
    """A rules folder as a user fills it from the CMS download pages, names as CMS gives them
    (and one part renamed by the user)."""
    folder = tmp_path / "rules"
    folder.mkdir()
    _zip(folder / "ccipra-v322r0-f1.zip", {
        "ccipra-v322r0-f1.TXT": ptp_text(["20610\t99213\t\t20200101\t*\t1\tStandards of medical / surgical practice"]),
    })
    # part 2 saved from the XLSX as CSV, renamed: recognised by its header, joined to v322r0
    (folder / "practitioner ptp part 2.csv").write_text(
        '"CPT codes, descriptions and other data only are copyright 2025 American Medical Association."\n\n'
        '"Column 1","Column 2","*=in existence prior to 1996","Effective Date","Deletion Date *=no data",'
        '"Modifier 0=not allowed 1=allowed 9=not applicable","PTP Edit Rationale"\n'
        '"64493","20552","","20170101","*","0","Mutually exclusive procedures"\n', encoding="utf-8")
    _zip(folder / "MCR_MUE_PractitionerServices_Eff_07-01-2026.zip", {
        "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv": MUE_CSV,
    })
    _zip(folder / "rvu26c.zip", {
        "PPRRVU2026_Jul_nonQPP.csv": rvu_text("33.4009"),
        "PPRRVU2026_Jul_QPP.csv": rvu_text("33.5675"),
        "GPCI2026.csv": "Medicare Administrative Contractor,State,Locality Number,Locality Name,PW GPCI\n",
        "RVUPUF26.pdf": b"%PDF-1.4 not read",
    })
    return folder


def test_download_names_and_zips_are_recognised_by_content(downloads):
    tables = load_tables(str(downloads))
    ptp = tables.table("ptp").version_info()
    assert ptp["release"] == "v322r0" and ptp["rows"] == "2"
    assert "ccipra-v322r0-f1.zip:ccipra-v322r0-f1.TXT" in ptp["files"]
    assert "practitioner ptp part 2.csv" in ptp["files"]
    assert tables.table("ptp").first(None, column1="64493", column2="20552")["modifier_indicator"] == "0"
    mue = tables.table("mue").version_info()
    assert mue["effective"] == "2026-07-01" and mue["rows"] == "5"
    rvu = tables.table("rvu").version_info()
    assert rvu["release"] == "2026 Jul" and rvu["files"] == "rvu26c.zip:PPRRVU2026_Jul_nonQPP.csv"
    assert "PPRRVU2026_Jul_QPP.csv" in rvu["notes"]  # named as not used, not silently dropped
    assert tables.table("rvu").first(date(2026, 3, 3), code="62323", modifier="")["conversion_factor"] == "33.4009"


def test_tables_command_lists_every_table_with_release_and_rows(downloads):
    result = invoke_claimscrub("tables", "--rules", str(downloads))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    heads = {line.split()[0]: line for line in lines if line and not line.startswith(" ")}
    assert {"ptp", "mue", "rvu", "procedure_codes", "icd10cm"} <= set(heads)
    assert heads["ptp"].split()[1:] == ["2", "rows", "v322r0"]
    assert heads["mue"].split()[1:] == ["5", "rows", "Eff", "2026-07-01"]
    assert heads["rvu"].split()[1:4] == ["4", "rows", "2026"]
    assert "ICD-10-CM" in heads["icd10cm"]
    text = result.stdout
    assert "files: ccipra-v322r0-f1.zip:ccipra-v322r0-f1.TXT, practitioner ptp part 2.csv" in text
    assert "source: CMS Medically Unlikely Edits, practitioner services" in text
    # the bundled tables are listed with the CMS release they were checked against
    assert "CMS NCCI practitioner MUE release effective 2024-07-01" not in heads["mue"]  # replaced
    assert "CMS PPRRVU RVU25D (2025 October release) indicators" in heads["procedure_codes"]


@pytest.mark.parametrize("intruder", [
    ("README.txt", "Files downloaded from cms.gov\n"),
    ("GPCI2025.csv", "Medicare Administrative Contractor,State,Locality Number,Locality Name,PW GPCI\n"),
    ("notes.docx", "binary"),
])
def test_a_file_recognised_as_nothing_is_exit_3_naming_it(downloads, tmp_path, intruder):
    name, text = intruder
    (downloads / name).write_text(text)
    batch = tmp_path / "batch.837"
    batch.write_text(write_837([{"id": "C1", "lines": [{"code": "62323"}]}]))
    for args in (["tables", "--rules", str(downloads)],
                 ["scrub", str(batch), "--out", str(tmp_path / "out"), "--rules", str(downloads)]):
        result = invoke_claimscrub(*args)
        assert result.returncode == 3, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "not a rule file claimscrub recognises" in lines[0]
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_subfolder_in_the_rules_folder_is_an_error(downloads):
    (downloads / "rvu25d_0").mkdir()
    result = invoke_claimscrub("tables", "--rules", str(downloads))
    assert result.returncode == 3
    assert "rvu25d_0: is a folder" in result.stderr


@needs_cms
def test_real_cms_layouts_under_download_names(tmp_path):
    """The real headers: the ccipra TXT lines, the MUE CSV with its AMA notice record, the
    whole RVU25D PPRRVU file inside an RVU bundle ZIP beside GPCI/locality/anesthesia files,
    and the 2026 PPRRVU with its PRIC IND column (read by header, not position)."""
    folder = tmp_path / "rules"
    folder.mkdir()
    samples = CMS / "layout-samples"
    txt = (samples / "ccipra-v322r0-f1.selected-lines.txt").read_text(encoding="utf-8")
    (folder / "ccipra-v322r0-f1.TXT").write_bytes(txt.replace("\n", "\r\n").encode("cp1252"))
    _zip(folder / "MCR_MUE_PractitionerServices_Eff_07-01-2026.zip", {
        "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv":
            (samples / "MCR_MUE_PractitionerServices_Eff_07-01-2026.head.csv").read_bytes(),
    })
    mpfs = CMS / "mpfs"
    _zip(folder / "rvu25d_0.zip", {name: (mpfs / name).read_bytes()
                                   for name in ("PPRRVU2025_Oct.csv", "GPCI2025.csv", "25LOCCO.csv", "ANES2025.csv")})
    shutil.copy(mpfs / "PPRRVU2026_Jul_nonQPP.subset.csv", folder / "PPRRVU2026_Jul_nonQPP.csv")

    tables = load_tables(str(folder))
    ptp = tables.table("ptp")
    assert ptp.version_info()["rows"] == "13"
    row = ptp.first(None, column1="0001A", column2="90473")
    assert row is None  # deleted on its effective date (indicator 9): not in force on any day
    assert ptp.knows(column1="0001A", column2="90473")
    mue = tables.table("mue")
    assert mue.version_info()["rows"] == "44"
    assert (mue.first(None, code="0002M")["mue"], mue.first(None, code="0002M")["mai"]) == ("1", "3")
    rvu = tables.table("rvu").version_info()
    assert rvu["release"] == "2025 Oct, 2026 Jul"
    assert rvu["files"] == "rvu25d_0.zip:PPRRVU2025_Oct.csv, PPRRVU2026_Jul_nonQPP.csv"

    batch = tmp_path / "batch.837"
    batch.write_text(write_837([
        {"id": "OFF25", "date": "2025-03-03", "pos": "11", "lines": [{"code": "62323"}]},
        {"id": "HOSP26", "date": "2026-03-03", "member": "MBR0002", "pos": "22", "lines": [{"code": "62323"}]},
        {"id": "OFF26", "date": "2026-03-03", "member": "MBR0003", "pos": "11", "lines": [{"code": "64483"}]},
    ]))
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(batch), "--out", str(out), "--rules", str(folder), "--as-of", AS_OF)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads((out / "batch.837.json").read_text())
    allowed = {c["claim_id"]: c["expected_allowed"] for c in report["claims"]}
    # RVU25D 62323: 7.63 non-facility RVUs x 32.3465; RVU26C (PRIC IND layout) 62323 facility
    # 1.76 + 0.74 + 0.17 = 2.67 x 33.4009; 64483 non-facility 7.93 x 33.4009
    assert allowed == {"OFF25": "246.80", "HOSP26": "89.18", "OFF26": "264.87"}
    listed = {t["table"]: t for t in report["tables"]}
    assert listed["rvu"]["release"] == "2025 Oct, 2026 Jul"
    assert listed["ptp"]["version"] == "ccipra-v322r0"
