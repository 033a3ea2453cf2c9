"""The whole CMS practitioner PTP (2.55 million rows) and MUE tables, loaded as a user loads
the CMS originals: the copies in ``../shared/cms-data/ncci/`` are converted here into the
CMS layouts (``ccipra-vNNNrN-f1..f4`` tab-separated TXT with CMS's preamble and wrapped
header, two of the parts inside ZIPs as CMS ships them; the practitioner MUE CSV with its AMA
notice record, zipped), then given to ``claimscrub scrub --rules``. An edit then fires for
pairs and codes outside this specialty, which the bundled tables do not hold, while the demo
batch gets the same verdicts as with the bundled tables (their rows are the same release's).
The command runs in the test's process (``invoke_claimscrub``: the same exit status and
output as a process of its own), so the whole tables are read once, by the first run, and
the later runs use claimscrub's own cache of the loaded release (about 5 s of CPU each).

The copy of the PTP table lacks CMS's Effective Date column: every row is written as in force
from 1996-01-01 (the start of NCCI), so rows are in force on the test's dates unless CMS
deleted them. The MUE release is the one effective 2024-07-01.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from claimscrub.synth import write_837

from conftest import AS_OF, ROOT, invoke_claimscrub

NCCI = ROOT.parent / "shared" / "cms-data" / "ncci"
SAMPLES = ROOT.parent / "shared" / "cms-data" / "layout-samples"
PTP_COPY = NCCI / "northstar_ncci_ptp_practitioner_eff2024-07-01_flattened.tsv.gz"
MUE_COPY = NCCI / "northstar_ncci_mue_practitioner_eff2024-07-01.csv"

pytestmark = [
    pytest.mark.skipif(not (PTP_COPY.is_file() and MUE_COPY.is_file() and SAMPLES.is_dir()),
                       reason="../shared/cms-data is not present"),
    pytest.mark.slow,
]

MAI_TEXT = {"1": "1 Line Edit", "2": "2 Date of Service Edit: Policy", "3": "3 Date of Service Edit: Clinical"}


def _ptp_preamble() -> str:
    """The CMS preamble and wrapped header, as in the layout sample of ccipra-v322r0-f1.TXT."""
    lines = (SAMPLES / "ccipra-v322r0-f1.selected-lines.txt").read_text(encoding="utf-8").splitlines()
    first_row = next(i for i, line in enumerate(lines) if line[:5].isalnum() and "\t" in line[:6])
    return "\r\n".join(lines[:first_row]) + "\r\n"


def write_cms_ptp(folder: Path, release: str = "v302r0") -> int:
    """The PTP copy as the four CMS parts of one release; returns the number of rows.
    Each line ``col1, col2, deletion, indicator, rationale`` becomes the CMS line ``col1,
    col2, *=prior to 1996 (blank), effective 19960101, deletion, indicator, rationale`` (no
    deletion in the copy is earlier than 1996-01-01)."""
    with gzip.open(PTP_COPY, "rt", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        assert header == ["column_1", "column_2", "deletion_date", "modifier_indicator", "ptp_edit_rationale"]
        body = handle.read()
    body = re.sub(r"^([^\t\n]*\t[^\t\n]*\t)", r"\1\t19960101\t", body, flags=re.M)
    lines = body.count("\n")
    preamble = _ptp_preamble()
    start = 0
    for part in range(4):
        # four parts of about equal size, cut at a line end (a column-1 code may span two
        # parts: its rows are found in both)
        end = len(body) if part == 3 else body.find("\n", len(body) * (part + 1) // 4) + 1
        name = f"ccipra-{release}-f{part + 1}"
        data = (preamble + body[start:end].replace("\n", "\r\n")).encode("cp1252")
        start = end
        if part < 2:
            (folder / f"{name}.TXT").write_bytes(data)
        else:
            with zipfile.ZipFile(folder / f"{name}.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
                archive.writestr(f"{name}.TXT", data)
    return lines


def write_cms_mue(folder: Path) -> int:
    """The MUE copy as the CMS practitioner CSV (AMA notice record, wrapped header), zipped."""
    sample = list(csv.reader(io.StringIO((SAMPLES / "MCR_MUE_PractitionerServices_Eff_07-01-2026.head.csv")
                                         .read_text(encoding="utf-8"))))
    notice, header = sample[0], sample[1]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(notice)
    writer.writerow(header)
    with open(MUE_COPY, encoding="utf-8", newline="") as handle:
        count = 0
        for row in csv.DictReader(handle):
            writer.writerow([row["hcpcs_code"], row["mue_units"], MAI_TEXT[row["mue_mai"]], row["mue_rationale"]])
            count += 1
    name = "MCR_MUE_PractitionerServices_Eff_07-01-2024"
    with zipfile.ZipFile(folder / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.csv", out.getvalue().encode("cp1252"))
    return count


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> tuple[Path, int, int]:
    folder = tmp_path_factory.mktemp("cms-whole")
    return folder, write_cms_ptp(folder), write_cms_mue(folder)


def _findings(report: dict) -> dict[str, list[tuple]]:
    return {c["claim_id"]: sorted((f["rule"], f["severity"], f.get("line")) for f in c["findings"])
            for c in report["claims"]}


def test_whole_tables_fire_for_pairs_and_codes_the_bundle_does_not_hold(whole, tmp_path):
    folder, ptp_rows, mue_rows = whole
    assert ptp_rows == 2_546_017 and mue_rows == 14_677
    batch = tmp_path / "batch.837"
    batch.write_text(write_837([
        # 20610 (large-joint injection) / 99213: CMS PTP column 1 / column 2, indicator 1
        {"id": "KNEE", "date": "2025-03-03", "lines": [{"code": "20610", "charge": 150}, {"code": "99213", "charge": 100}]},
        # 27447 (knee arthroplasty): CMS MUE 1, MAI 2
        {"id": "TKA", "date": "2025-03-03", "member": "MBR0002", "lines": [{"code": "27447", "units": 2, "charge": 2000}]},
    ]))

    bundled = invoke_claimscrub("scrub", str(batch), "--out", str(tmp_path / "bundled"), "--as-of", AS_OF,
                                "--no-validate")
    assert bundled.returncode in (0, 1), bundled.stderr
    before = _findings(json.loads((tmp_path / "bundled" / "batch.837.json").read_text()))
    assert not any(rule in ("EPI-PTP-001", "EPI-MUE-001") for found in before.values() for rule, _, _ in found)

    result = invoke_claimscrub("scrub", str(batch), "--out", str(tmp_path / "cms"), "--as-of", AS_OF,
                               "--no-validate", "--rules", str(folder))
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "cms" / "batch.837.json").read_text())
    after = _findings(report)
    assert ("EPI-PTP-001", "error", "2") in after["KNEE"]
    assert ("EPI-MUE-001", "error", "1") in after["TKA"]
    claims = {c["claim_id"]: c for c in report["claims"]}
    ptp_finding = next(f for f in claims["KNEE"]["findings"] if f["rule"] == "EPI-PTP-001")
    assert "paired with 20610 (column 1" in ptp_finding["message"] and "modifier indicator 1" in ptp_finding["message"]
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["ptp"]["version"] == "ccipra-v302r0" and tables["ptp"]["rows"] == str(ptp_rows)
    assert len(tables["ptp"]["files"].split(", ")) == 4
    assert tables["mue"]["effective"] == "2024-07-01" and tables["mue"]["rows"] == str(mue_rows)


def test_tables_command_shows_the_whole_releases(whole):
    folder, ptp_rows, mue_rows = whole
    result = invoke_claimscrub("tables", "--rules", str(folder))
    assert result.returncode == 0, result.stderr
    heads = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line and not line[0].isspace()}
    assert heads["ptp"] == [f"{ptp_rows:,}", "rows", "v302r0"]
    assert heads["mue"] == [f"{mue_rows:,}", "rows", "Eff", "2024-07-01"]


def test_the_demo_gets_the_same_verdicts_from_the_whole_releases_as_from_the_bundle(whole, tmp_path):
    # The bundled PTP and MUE rows are the CMS rows of the same release: on the demo batch
    # (this specialty's claims) the whole tables change no disposition and no finding.
    folder = whole[0]
    demo = ROOT / "fixtures" / "837" / "demo"
    outcomes = []
    for name, extra in (("bundled", []), ("cms", ["--rules", str(folder)])):
        result = invoke_claimscrub("scrub", str(demo), "--out", str(tmp_path / name), "--as-of", AS_OF, *extra)
        assert result.returncode == 1, result.stderr
        outcome = {}
        for report in sorted((tmp_path / name).glob("*.json")):
            for claim in json.loads(report.read_text())["claims"]:
                outcome[claim["claim_id"]] = (claim["status"], _findings({"claims": [claim]})[claim["claim_id"]])
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]
    assert {status for status, _ in outcomes[0].values()} == {"accepted", "rejected"}
