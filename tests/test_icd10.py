"""The ICD-10-CM lookup: which release it is, billability by date of service, speed, and the
consistency of the bundled tables (icd10_changes, lcd_diagnoses) with the release."""

from __future__ import annotations

import json
import time
import warnings
from datetime import date

import pytest

from claimscrub import icd10
from claimscrub.icd10 import Verdict
from claimscrub.tables import load_tables


@pytest.fixture(scope="module")
def tables():
    return load_tables()


@pytest.fixture(scope="module")
def codes(tables):
    return icd10.code_set_for(tables)


def test_release_is_the_one_the_package_bundles():
    release = icd10.release()
    data = sorted(p.name for p in release.code_list.parent.iterdir() if p.suffix in (".txt", ".xml"))
    assert data == ["code-list-April-2026.txt", "icd10c-tabular-April-1-2026.xml"]
    assert release.fiscal_year == 2026
    assert release.name == "ICD-10-CM FY2026 (April 1, 2026 update)"
    assert (release.effective, release.ends) == (date(2026, 4, 1), date(2026, 9, 30))
    assert release.covers(date(2026, 9, 30)) and not release.covers(date(2026, 10, 1))
    assert not release.covers(date(2026, 3, 31))
    info = release.version_info()
    assert info["table"] == "icd10cm" and info["version"] == release.name
    assert "simple-icd-10-cm" in info["source"] and info["effective"] == "2026-04-01"


@pytest.mark.parametrize("code, day, billable", [
    ("M54.5", "2021-09-30", True),    # last day of FY2021
    ("M545", "2021-10-01", False),    # expanded to M54.50/M54.51/M54.59
    ("M5450", "2021-09-30", False),   # not yet valid
    ("M54.50", "2021-10-01", True),
    ("M5136", "2024-09-30", True),
    ("M5136", "2024-10-01", False),
    ("M51360", "2024-10-01", True),
    ("M5012", "2019-09-30", True),
    ("M5012", "2026-05-01", False),
    ("M5416", "2026-05-01", True),
    ("M5416", "2015-09-30", False),   # before ICD-10-CM
    ("M541", "2026-05-01", False),    # header
    ("M5499", "2026-05-01", False),   # no such code
])
def test_billable_by_date_of_service(code, day, billable):
    assert icd10.is_billable(code, date.fromisoformat(day)) is billable


def test_verdicts_say_on_what_they_rest(codes):
    deleted = codes.judge("M545", date(2022, 1, 3))
    assert (deleted.verdict, deleted.basis, deleted.instead) == (Verdict.HEADER, "changes", ("M5450", "M5451", "M5459"))
    assert deleted.verified
    early = codes.judge("M5450", date(2021, 9, 30))
    assert (early.verdict, early.instead) == (Verdict.NOT_YET, ("M545",))
    unverified = codes.judge("M5137", date(2025, 1, 6))
    assert unverified.verdict is Verdict.HEADER and not unverified.verified
    by_release = codes.judge("M541", date(2025, 1, 6))
    assert (by_release.basis, by_release.in_window) == ("release", False)
    assert codes.judge("M541", date(2026, 6, 1)).in_window


def test_leaf_means_billable_exactly_as_the_package_says(codes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package's data loading uses deprecated importlib calls
        import simple_icd_10_cm as package

    for code in package.get_all_codes(with_dots=False):
        if "-" in code or code.isdigit():
            continue  # chapters and blocks
        assert codes.bundled_billable(code) is package.is_leaf(code), code
    assert codes.children("M5136") == [package.remove_dot(c) for c in package.get_children("M51.36")]
    assert codes.children("M54") == [package.remove_dot(c) for c in package.get_children("M54")]


def test_lookup_is_fast(codes):
    day = date(2025, 3, 3)
    sample = ["M5416", "M54.50", "M545", "Z7901", "M5136", "S32009A", "M5499"] * 20_000
    start = time.perf_counter()
    for code in sample:
        codes.is_billable(code, day)
    per_call = (time.perf_counter() - start) / len(sample)
    assert per_call < 5e-6, f"{per_call * 1e6:.2f} µs per lookup"


def test_changes_table_agrees_with_the_bundled_release(tables, codes):
    release = codes.release
    rows = icd10.changes_from_rows(tables.table("icd10_changes").rows)
    assert rows, "the changes table is empty"
    for change in rows:
        if change.effective <= release.effective:
            bundled = codes.bundled_billable(change.code)
            state = None if bundled is None else (Verdict.BILLABLE if bundled else Verdict.HEADER)
            expected = {Verdict.DELETED: None}.get(change.state_after, change.state_after)
            assert state == expected, f"{change.code}: table says {change.change}, release says {state}"
        for successor in change.replaced_by:
            assert codes.is_billable(successor, change.effective), (change.code, successor)
        if change.change == "became-header":
            # every replacement is itself recorded as added on the same date
            added = {c.code for c in rows if c.change == "added" and c.effective == change.effective}
            assert set(change.replaced_by) <= added


def test_changes_table_rejects_unknown_change_kinds():
    with pytest.raises(ValueError, match="not one of"):
        icd10.changes_from_rows([{"code": "M545", "change": "removed", "effective": date(2021, 10, 1)}])


REGION_WORDS = (  # checked in this order: thoracolumbar contains 'lumbar'
    ("thoracolumbar", "any"), ("site unspecified", "any"),
    ("cervic", "CT"), ("occipito", "CT"), ("thoracic", "CT"),
    ("lumb", "LS"), ("sacr", "LS"), ("low back", "LS"), ("sciatica", "LS"),
)


def test_lcd_diagnosis_regions_follow_the_code_titles(tables):
    for row in tables.table("lcd_diagnoses").rows:
        code = icd10.normalize(row["code"])
        assert row["region"] in ("CT", "LS", "any"), code
        assert row["kind"] in ("radicular-covered", "axial-noncovered", "zoster", "postop-exemption", "region"), code
        title = icd10.description(code)
        assert title, f"{code} is not in the ICD-10-CM release"
        region = next((r for word, r in REGION_WORDS if word in title.lower()), None)
        if region is not None:
            assert row["region"] == region, f"{code} ({title}) is {row['region']}, title says {region}"


def test_report_names_the_release(tmp_path, cli):
    from claimscrub.synth import write_837

    path = tmp_path / "claims.837"
    path.write_text(write_837([{"id": "C1", "lines": [{"code": "62323", "charge": 500}]}]))
    result = cli("scrub", str(path), "--out", str(tmp_path / "out"), "--as-of", "2026-11-22", "--no-validate")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads((tmp_path / "out" / "claims.837.json").read_text())
    entry = next(t for t in report["tables"] if t["table"] == "icd10cm")
    assert entry["version"] == "ICD-10-CM FY2026 (April 1, 2026 update)"
    assert (entry["effective"], entry["ends"]) == ("2026-04-01", "2026-09-30")
    assert "icd10_changes" in {t["table"] for t in report["tables"]}


def test_titles_come_from_the_release_without_importing_the_package():
    import subprocess
    import sys

    code = (
        "import sys; from claimscrub.icd10 import description; "
        "print(description('M545')); print(description('M54.16')); "
        "print('simple_icd_10_cm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["Low back pain", "Radiculopathy, lumbar region", "False"]
