"""The 999 (005010X231A1): valid per pyx12's own map, and what it acknowledges is what the
837 contained and what the other outputs decided.

Every 999 written here is checked by pyx12 (``x12n_document`` with its 999.5010X231.A1
map). One small batch is compared with an exact expected file (tests/expected/999/); set
``CLAIMSCRUB_UPDATE_EXPECTED=1`` to rewrite it after a deliberate layout change.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from claimscrub.report.ack999 import Ack999Options, write_999
from claimscrub.scrub import ScrubOptions, Scrubber
from claimscrub.synth import write_837
from claimscrub.validate import Pyx12Validator

import ackhelpers
from ackhelpers import corpus_inputs, scrub, segments
from conftest import AS_OF, CORPUS, corpus_files, invoke_claimscrub

EXPECTED = Path(__file__).parent / "expected" / "999"


# -- helpers ------------------------------------------------------------------------------
def pyx12_errors(text: str) -> list[str]:
    """Every error pyx12 finds in a 999, validated with its 999.5010X231.A1 map."""
    return ackhelpers.pyx12_errors(text, "005010X231A1")


def transaction_acks(text: str) -> list[dict]:
    """Per AK2: its ST02, IK5 and the IK3/CTX/IK4 segments in between."""
    out: list[dict] = []
    for seg in segments(text):
        if seg[0] == "AK2":
            out.append({"st02": seg[2], "ik5": None, "body": []})
        elif seg[0] == "IK5":
            out[-1]["ik5"] = seg[1:]
        elif seg[0] in ("IK3", "CTX", "IK4") and out:
            out[-1]["body"].append(seg)
    return out


def write(tmp_path: Path, name: str, text: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text(text)
    return path


def manifest_verdicts() -> dict[str, bool]:
    """file name -> does pyx12 accept it (MANIFEST.md: OK, Failure, or A2 crash then OK)."""
    verdicts = {}
    for line in (CORPUS / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 8 and cells[1] and not cells[1].startswith(("file", "---")):
            result, note = cells[7], cells[8]
            verdicts[cells[1]] = result == "OK" or (result.startswith("crash") and note.endswith("OK"))
    return verdicts


# -- the corpus ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_run(corpus_night):
    """The usable corpus files and the out folder of conftest's one run of the whole corpus
    (every edit, default outputs, one process); test_corpus_with_jobs_2_writes_the_same_999s
    shows that a run partitioned in two writes the same 999s and reports."""
    return corpus_inputs(), corpus_night.out


def test_corpus_with_jobs_2_writes_the_same_999s(corpus_night, tmp_path):
    """The whole corpus with --jobs 2 (its two large files split between the workers, which
    test_partition leaves to make partitiontest) writes byte for byte the 999s and JSON
    reports of the one-process run, so the corpus tests here hold for a partitioned run
    too; the same exit status and standard error."""
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", *map(str, corpus_night.files), "--out", str(out), "--as-of", AS_OF,
                               "--emit", "json,999", "--jobs", "2")
    assert (result.returncode, result.stderr) == (corpus_night.result.returncode, corpus_night.result.stderr)
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in corpus_night.out.iterdir() if p.suffix in (".json", ".999"))
    assert len(written) == 2 * len(corpus_inputs())
    different = [name for name in written if (out / name).read_bytes() != (corpus_night.out / name).read_bytes()]
    assert not different, different


def test_corpus_999_passes_pyx12(corpus_run):
    files, out = corpus_run
    for path in files:
        text = (out / (path.name + ".999")).read_text()
        assert pyx12_errors(text) == [], path.name
        head = segments(text)
        assert head[0][0] == "ISA" and head[0][6] != head[0][8]  # sender and receiver swapped
        assert [s for s in head if s[0] == "ST"] and all(s[3] == "005010X231A1" for s in head if s[0] == "ST")


def test_corpus_acknowledges_what_pyx12_says_of_each_file(corpus_run):
    files, out = corpus_run
    verdicts = manifest_verdicts()
    assert {p.name for p in files} <= set(verdicts)
    rejected_files = 0
    for path in files:
        text = (out / (path.name + ".999")).read_text()
        report = json.loads((out / (path.name + ".json")).read_text())
        acks = transaction_acks(text)
        assert acks, path.name
        ig_claims = {c["claim_id"] for c in report["claims"] if any(f["rule"] == "X12-IG-001" for f in c["findings"])}
        if verdicts[path.name]:
            assert all(ack["ik5"] == ["A"] for ack in acks), path.name
            assert not ig_claims, path.name
        else:
            rejected_files += 1
            assert all(ack["ik5"][0] == "R" and "5" in ack["ik5"][1:] for ack in acks), path.name
            assert all(c["status"] == "rejected" for c in report["claims"]), path.name
            assert ig_claims == {c["claim_id"] for c in report["claims"]}, path.name
    assert rejected_files == 14  # the imsweb fixtures (but the one without ISA) and badX12 oxygen


def test_corpus_ik3_positions_and_claims_match_the_input(corpus_run):
    """IK302 names the segment's position in its ST, CTX the claim (CLM01) it is in."""
    files, out = corpus_run
    path = next(p for p in files if p.name == "albmarin__badX12__X222-oxygen.edi")
    source = [s.strip() for s in path.read_text().split("~") if s.strip()]
    st = next(i for i, s in enumerate(source) if s.startswith("ST*"))
    clm01 = next(s.split("*")[1] for s in source if s.startswith("CLM*"))
    (ack,) = transaction_acks((out / (path.name + ".999")).read_text())
    ik3s = [s for s in ack["body"] if s[0] == "IK3"]
    assert len(ik3s) == 2
    for ik3 in ik3s:
        assert source[st + int(ik3[2]) - 1].startswith("PWK*CT*AD")
        assert ik3[1] == "PWK" and ik3[3:] == ["", "8"]
    assert ["CTX", f"CLM01:{clm01}"] in ack["body"]
    assert ack["body"].count(["IK4", "2", "756", "7", "AD"]) == 2


# -- synthetic claims: the typical errors of x12-formats.md 1d ---------------------------
BASE = [{"id": "C1", "lines": [{"code": "62323", "charge": 500}, {"code": "77003", "charge": 80}]},
        {"id": "C2", "lines": [{"code": "99214", "charge": 150}]}]


@pytest.mark.parametrize("old, new, ik3_id, ik4, claim", [
    ("*11:B:1*", "*AA:B:1*", "CLM", ["5:1", "1331", "7", "AA"], "C1"),
    ("DTP*472*D8*20250303", "DTP*472*D8*20251399", "DTP", ["3", "1251", "8", "20251399"], "C1"),
    ("*UN*1***1", "*XX*1***1", "SV1", ["3", "355", "7", "XX"], "C1"),
    ("HL*3*1*22", "HL*3*7*22", "HL", ["2", "734", "I12", "7"], None),
    ("LX*2", "LX*3", "LX", ["1", "554", "I12", "3"], "C1"),
    ("CLM*C2*150", "CLM*C2*", "CLM", ["2", "782", "1"], "C2"),
])
def test_typical_errors(tmp_path, old, new, ik3_id, ik4, claim):
    text = write_837(BASE).replace(old, new, 1)
    source = [s.strip() for s in text.split("~") if s.strip()]
    st = next(i for i, s in enumerate(source) if s.startswith("ST*"))
    position = next(i for i, s in enumerate(source) if new in s) - st + 1
    out = scrub(tmp_path, [write(tmp_path, "m.837", text)], "--jobs", "1")
    result = (out / "m.837.999").read_text()
    assert pyx12_errors(result) == []
    (ack,) = transaction_acks(result)
    expected = [["IK3", ik3_id, str(position), "", "8"]]
    if claim:
        expected.append(["CTX", f"CLM01:{claim}"])
    expected.append(["IK4", *ik4])
    assert ack["body"] == expected
    assert ack["ik5"] == ["R", "5"]
    assert ["AK9", "R", "1", "1", "0"] in segments(result)
    report = json.loads((out / "m.837.json").read_text())
    assert all(c["status"] == "rejected" for c in report["claims"])


def fix_counts(text: str) -> str:
    """Rewrite every SE01 to the real count, so a mutation leaves the envelope right."""
    out, count = [], 0
    for segment in (s.strip() for s in text.split("~") if s.strip()):
        count = 0 if segment.startswith("ST*") else count
        count += 1
        if segment.startswith("SE*"):
            segment = f"SE*{count}*{segment.split('*')[2]}"
        out.append(segment)
    return "".join(s + "~\n" for s in out)


def test_missing_segment_is_reported_where_pyx12_finds_the_gap_with_its_claim(tmp_path):
    text = fix_counts(write_837(BASE).replace("HI*ABK:M5416~\n", "", 1))
    out = scrub(tmp_path, [write(tmp_path, "m.837", text)])
    (ack,) = transaction_acks((out / "m.837.999").read_text())
    assert ack["body"][:2] == [["IK3", "HI", "19", "", "3"], ["CTX", "CLM01:C1"]]
    assert ack["ik5"] == ["R", "5"]


def test_golden_999(tmp_path):
    """The exact 999 of a small batch: three transaction sets, one clean, two rejected."""
    claims = [
        {"id": "G1", "lines": [{"code": "62323", "charge": 500}]},
        {"id": "G2", "lines": [{"code": "62323", "charge": 500}, {"code": "77003", "charge": 80}]},
        {"id": "G3", "date": "2025-03-05", "patient": {"dependent": True}, "lines": [{"code": "99214", "charge": 150}]},
    ]
    text = write_837(claims, claims_per_transaction=1, control=17)
    text = text.replace("CLM*G2*580***11:B:1", "CLM*G2*580***AA:B:1").replace("LX*2", "LX*5")
    text = text.replace("DTP*472*D8*20250305", "DTP*472*D8*20250399")
    out = scrub(tmp_path, [write(tmp_path, "batch.837", text)])
    result = (out / "batch.837.999").read_text()
    assert pyx12_errors(result) == []
    expected = EXPECTED / "batch.837.999"
    if os.environ.get("CLAIMSCRUB_UPDATE_EXPECTED"):
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(result)
    assert result == expected.read_text()
    assert ["AK9", "P", "3", "3", "1"] in segments(result)


# -- envelope errors (claimscrub's own checks) ---------------------------------------------
@pytest.mark.parametrize("old, new, check", [
    ("SE*27*0001", "SE*26*0001", lambda s, a: a[0]["ik5"] == ["R", "4"] and not a[0]["body"]),
    ("SE*27*0001", "SE*27*0009", lambda s, a: a[0]["ik5"] == ["R", "3"]),
    ("GE*1*1~", "GE*2*1~", lambda s, a: a[0]["ik5"] == ["A"] and ["AK9", "R", "1", "1", "1", "5"] in s),
    ("GE*1*1~", "GE*1*8~", lambda s, a: ["AK9", "R", "1", "1", "1", "4"] in s),
    ("IEA*1*000000001", "IEA*1*000000002",
     lambda s, a: ["TA1", "000000001", "250310", "1200", "R", "001"] in s and a[0]["ik5"] == ["A"]),
])
def test_envelope_errors(tmp_path, old, new, check):
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}, {"code": "77003"}]}])
    assert old in text
    out = scrub(tmp_path, [write(tmp_path, "e.837", text.replace(old, new))])
    result = (out / "e.837.999").read_text()
    assert pyx12_errors(result) == []
    assert check(segments(result), transaction_acks(result))
    report = json.loads((out / "e.837.json").read_text())
    assert report["claims"][0]["status"] == "rejected"


def test_duplicate_transaction_control_number(tmp_path):
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}]}, {"id": "C2", "lines": [{"code": "62323"}]}],
                     claims_per_transaction=1)
    text = text.replace("ST*837*0002", "ST*837*0001").replace("*0002~", "*0001~")
    out = scrub(tmp_path, [write(tmp_path, "d.837", text)])
    result = (out / "d.837.999").read_text()
    assert pyx12_errors(result) == []
    acks = transaction_acks(result)
    assert [a["ik5"] for a in acks] == [["A"], ["R", "23"]]
    assert ["AK9", "P", "2", "2", "1"] in segments(result)
    claims = {c["claim_id"]: c["status"] for c in json.loads((out / "d.837.json").read_text())["claims"]}
    assert claims == {"C1": "accepted", "C2": "rejected"}


def test_several_groups_and_interchanges_get_one_ak1_each(tmp_path):
    one = write_837([{"id": "C1", "lines": [{"code": "62323"}]}], control=1)
    two = write_837([{"id": "C2", "pos": "AA", "lines": [{"code": "62323"}]}], control=2)
    out = scrub(tmp_path, [write(tmp_path, "two.837", one + two)])
    result = (out / "two.837.999").read_text()
    assert pyx12_errors(result) == []
    segs = segments(result)
    assert [s for s in segs if s[0] == "AK1"] == [["AK1", "HC", "1", "005010X222A1"], ["AK1", "HC", "2", "005010X222A1"]]
    assert [s[1] for s in segs if s[0] == "AK9"] == ["A", "R"]
    assert ["GE", "2", "1"] in segs


def test_no_validate_keeps_the_envelope_checks(tmp_path):
    text = write_837([{"id": "C1", "pos": "AA", "lines": [{"code": "62323"}]}])
    path = write(tmp_path, "n.837", text)
    out = scrub(tmp_path / "a", [path], "--no-validate")
    assert transaction_acks((out / "n.837.999").read_text())[0]["ik5"] == ["A"]
    out = scrub(tmp_path / "b", [write(tmp_path, "s.837", text.replace("SE*24*", "SE*23*"))], "--no-validate")
    assert transaction_acks((out / "s.837.999").read_text())[0]["ik5"] == ["R", "4"]


def test_a2_input_is_acknowledged_as_sent(tmp_path):
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}]}], version="005010X222A2")
    out = scrub(tmp_path, [write(tmp_path, "a2.837", text)])
    result = (out / "a2.837.999").read_text()
    assert pyx12_errors(result) == []
    segs = segments(result)
    assert ["AK1", "HC", "1", "005010X222A2"] in segs and ["AK2", "837", "0001", "005010X222A2"] in segs
    assert ["IK5", "A"] in segs


def test_unusual_claim_ids_and_segment_ids_still_validate(tmp_path):
    long_id = "X" * 38  # CLM01 allows 38 characters, CTX01-2 only 35
    text = write_837([{"id": long_id, "pos": "ZZ", "lines": [{"code": "62323"}]},
                      {"id": "ID:WITH:COLONS", "pos": "ZZ", "lines": [{"code": "62323"}]}])
    text = text.replace("NM1*PR*2*MEDICARE", "nm1*PR*2*MEDICARE", 1)  # not a segment id
    out = scrub(tmp_path, [write(tmp_path, "u.837", text)])
    result = (out / "u.837.999").read_text()
    assert pyx12_errors(result) == []
    assert "IK3*UNK*" in result
    # a claim id that cannot be copied faithfully is left out, not cut or altered
    assert "CTX*CLM01:X" not in result and "CTX*CLM01:ID" not in result
    assert result.count("IK4*5:1*1331*7*ZZ~") == 2


# -- determinism and parallelism -----------------------------------------------------------
def _batch() -> str:
    claims = [{"id": f"P{i}", "member": f"M{i % 7:04d}", "patient": {"dependent": i % 4 == 1} if i % 4 == 1 else None,
               "lines": [{"code": "62323", "charge": 500}, {"code": "77003", "charge": 80}]} for i in range(40)]
    text = write_837(claims, claims_per_transaction=10)
    return text.replace("CLM*P13*580***11", "CLM*P13*580***AA").replace("HL*5*1*22", "HL*5*9*22", 1)


def test_output_is_deterministic_and_control_numbers_come_from_options(tmp_path):
    path = write(tmp_path, "b.837", _batch())
    first = (scrub(tmp_path / "one", [path]) / "b.837.999").read_bytes()
    second = (scrub(tmp_path / "two", [path]) / "b.837.999").read_bytes()
    assert first == second
    scrubber = Scrubber(ScrubOptions(as_of=date.fromisoformat(AS_OF), validator=Pyx12Validator(jobs=1),
                                     work_dir=str(tmp_path)))
    run = scrubber.run([str(path)])
    try:
        written = write_999(run, run.files[0], str(tmp_path / "opt"),
                            Ack999Options(control_number=42, date="20260101", time="0930", usage="P"))
    finally:
        run.close()
    segs = segments(Path(written).read_text())
    assert segs[0][9:11] == ["260101", "0930"] and segs[0][13] == "000000042" and segs[0][15] == "P"
    gs = next(s for s in segs if s[0] == "GS")
    assert gs[4:7] == ["20260101", "0930", "42"] and segs[-1] == ["IEA", "1", "000000042"]
    assert pyx12_errors(Path(written).read_text()) == []


def test_jobs_1_and_jobs_2_give_identical_outputs(tmp_path):
    paths = [write(tmp_path, "b.837", _batch())]
    paths += [p for p in corpus_files() if p.name in ("imsweb__x12-parser__x12_complex.txt",
                                                       "albmarin__badX12__X222-oxygen.edi")]
    one = scrub(tmp_path / "j1", paths, "--validator", "pyx12", "--jobs", "1")
    two = scrub(tmp_path / "j2", paths, "--validator", "pyx12", "--jobs", "2")
    compiled = scrub(tmp_path / "c", paths, "--validator", "compiled")
    for path in paths:
        assert (one / (path.name + ".999")).read_bytes() == (two / (path.name + ".999")).read_bytes()
        assert (one / (path.name + ".999")).read_bytes() == (compiled / (path.name + ".999")).read_bytes()
        findings = [json.loads((d / (path.name + ".json")).read_text())["claims"] for d in (one, two)]
        assert findings[0] == findings[1]
    acks = transaction_acks((one / "b.837.999").read_text())
    assert [a["ik5"][0] for a in acks] == ["R", "R", "A", "A"]


def test_errors_that_reject_no_claim_are_acknowledged_e(tmp_path):
    """Should the IG findings not reject the claims (configured down), the 999 says E, not R."""
    from claimscrub.findings import Severity

    path = write(tmp_path, "w.837", write_837([{"id": "C1", "pos": "AA", "lines": [{"code": "62323"}]}]))
    scrubber = Scrubber(ScrubOptions(as_of=date.fromisoformat(AS_OF), validator=Pyx12Validator(jobs=1),
                                     work_dir=str(tmp_path)))
    run = scrubber.run([str(path)])
    try:
        rejected = segments(Path(write_999(run, run.files[0], str(tmp_path / "r"))).read_text())
        for key, findings in run.findings.items():
            run.findings[key] = [f.model_copy(update={"severity": Severity.WARNING})
                                 if f.rule == "X12-IG-001" else f for f in findings]
        warned = segments(Path(write_999(run, run.files[0], str(tmp_path / "w"))).read_text())
    finally:
        run.close()
    assert ["IK5", "R", "5"] in rejected and ["AK9", "R", "1", "1", "0"] in rejected
    assert ["IK5", "E", "5"] in warned and ["AK9", "E", "1", "1", "1"] in warned
    assert [s for s in warned if s[0] in ("IK3", "IK4")] == [s for s in rejected if s[0] in ("IK3", "IK4")]
