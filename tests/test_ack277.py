"""The 277CA (005010X214): valid per pyx12's own map, one status per claim, right codes.

Every 277CA written here is checked by pyx12 (``x12n_document`` with its 277.5010.X214 map);
one small batch is compared with an exact expected file (tests/expected/277/); set
``CLAIMSCRUB_UPDATE_EXPECTED=1`` to rewrite it after a deliberate layout change.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest

from claimscrub.engine import load_rules
from claimscrub.report.ack277 import CATEGORY_STATUS, CLAIM_ENTITIES, Ack277Options, write_277
from claimscrub.scrub import ScrubOptions, Scrubber
from claimscrub.synth import BILLING_NPI, claim_segments, write_837

from ackhelpers import claim_ids, corpus_inputs, pyx12_valid, scrub, segments
from conftest import AS_OF, FIXTURES

EXPECTED = Path(__file__).parent / "expected" / "277"
AS_OF_DATE = date.fromisoformat(AS_OF)


# -- helpers ------------------------------------------------------------------------------
def patient_levels(text: str) -> list[dict]:
    """Each 2000D patient loop of a 277CA: its claim id, claim STC and line SVC/STC pairs."""
    out: list[dict] = []
    current = None
    in_line = False
    for seg in segments(text):
        if seg[0] == "HL":
            current = {"hl": seg, "lines": []} if seg[3] == "PT" else None
            in_line = False
            if current is not None:
                out.append(current)
        elif current is None:
            continue
        elif seg[0] == "TRN":
            current["claim_id"] = seg[2]
        elif seg[0] == "SVC":
            in_line = True
            current["lines"].append({"svc": seg})
        elif seg[0] == "STC" and in_line:
            current["lines"][-1]["stc"] = seg
        elif seg[0] == "STC":
            current["stc"] = seg
        elif seg[0] == "DTP" and not in_line:
            current["dtp"] = seg
    return out


def totals(text: str, level: str) -> dict:
    """Sum of QTY/AMT per qualifier over the 2200B (level 21) or 2200C (level 19) loops."""
    sums: dict = Counter()
    current_level = None
    for seg in segments(text):
        if seg[0] == "HL":
            current_level = seg[3]
        elif current_level == level and seg[0] in ("QTY", "AMT"):
            sums[seg[1]] += Decimal(seg[2])
        elif current_level == level and seg[0] == "STC":
            sums["STC04"] += Decimal(seg[4])
    return sums


def synthetic_batch() -> list[dict]:
    """Accepted and rejected claims: claim- and line-level errors, a dependent, an RD8 claim."""
    return [
        {"id": "ACC1", "member": "MBR1001", "date": "2025-03-03",
         "lines": [{"code": "62323", "charge": 500}]},
        {"id": "BAL1", "member": "MBR1002", "date": "2025-03-04", "charge": 650,
         "lines": [{"code": "62323", "charge": 500}]},
        {"id": "UNITS1", "member": "MBR1003",
         "lines": [{"code": "62323", "charge": 500, "date": "2025-03-05"},
                   {"code": "62323", "modifiers": ["KX"], "charge": 500, "units": 0,
                    "date": "2025-03-19"}]},
        {"id": "DEP1", "member": "MBR1004", "date": "2025-03-06",
         "patient": {"dependent": True, "last": "DEPENDENT", "first": "ALEX"},
         "lines": [{"code": "64483", "charge": 400, "pointers": [3]}]},
        {"id": "TWO1", "member": "MBR1005", "date": "2025-03-07", "charge": 1,
         "lines": [{"code": "62323", "charge": 500, "date": "2027-01-05"}]},
        {"id": "ACC2", "member": "MBR1006", "date": "2025-03-10",
         "patient": {"dependent": True}, "lines": [{"code": "64483", "charge": 450}]},
    ]


def two_provider_837(claims_a: list[dict], claims_b: list[dict]) -> str:
    """One transaction set with two billing providers (2000A), each with its claims."""
    text = write_837(claims_a)
    head, _, rest = text.partition("HL*1**20*1~\n")
    provider_a = rest[: rest.index("HL*2*1*22")]
    body_a, hl = [], 2
    for index, claim in enumerate(claims_a):
        segs, hl = claim_segments(claim, index, hl)
        body_a += segs
    provider_hl = hl
    body_b, hl = [], hl + 1
    for index, claim in enumerate(claims_b, start=len(claims_a)):
        segs, hl = claim_segments(claim, index, hl)
        body_b += [s.replace("*1*22*", f"*{provider_hl}*22*") if s.startswith("HL*") else s for s in segs]
    provider_b = [f"HL*{provider_hl}**20*1", "NM1*85*2*SECOND PRACTICE*****XX*1679576722",
                  "N3*2 CLINIC WAY", "N4*SPRINGFIELD*IL*62701", "REF*EI*987654321"]
    st_body = body_a + provider_b + body_b
    start = head.index("ST*837")
    header = [s for s in head[start:].split("~\n") if s]
    st = header + ["HL*1**20*1"] + [s for s in provider_a.split("~\n") if s] + st_body
    st.append(f"SE*{len(st) + 1}*0001")
    envelope = head[:start].split("~\n")[:2]
    tail = ["GE*1*1", "IEA*1*000000001"]
    return "".join(s + "~\n" for s in envelope + st + tail)


# -- the corpus ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_run(corpus_night):
    """The usable corpus files and the out folder of conftest's one run of the whole corpus
    (every edit, default outputs)."""
    return corpus_inputs(), corpus_night.out


def test_corpus_277_passes_pyx12_and_acknowledges_every_claim(corpus_run):
    files, out = corpus_run
    for path in files:
        text = (out / (path.name + ".277")).read_text()
        assert pyx12_valid(text), path.name
        levels = patient_levels(text)
        assert Counter(level["claim_id"] for level in levels) == claim_ids(path), path.name
        report = json.loads((out / (path.name + ".json")).read_text())
        rejected = Counter(c["claim_id"] for c in report["claims"] if c["status"] == "rejected")
        rejected_277 = Counter(level["claim_id"] for level in levels if level["stc"][3] == "U")
        assert rejected_277 == rejected, path.name
        for level in levels:
            category = level["stc"][1].split(":")[0]
            assert (category == "A2") == (level["stc"][3] == "WQ"), path.name
            assert category in ("A2", "A3", "A6", "A7", "A8"), path.name


def test_corpus_totals_equal_the_json_summary(corpus_run):
    files, out = corpus_run
    for path in files:
        text = (out / (path.name + ".277")).read_text()
        summary = json.loads((out / (path.name + ".json")).read_text())["summary"]
        batch = totals(text, "21")
        provider = totals(text, "19")
        assert batch["90"] == summary["accepted"] and batch["AA"] == summary["rejected"], path.name
        assert batch["YU"] == Decimal(summary["accepted_charge"]), path.name
        assert batch["YY"] == Decimal(summary["rejected_charge"]), path.name
        assert provider["QA"] == batch["90"] and provider["QC"] == batch["AA"], path.name
        assert provider["YU"] == batch["YU"] and provider["YY"] == batch["YY"], path.name
        assert batch["STC04"] == batch["YU"] + batch["YY"] == provider["STC04"], path.name


# -- synthetic batches --------------------------------------------------------------------
def test_golden_277(tmp_path):
    """The exact 277CA of a small batch: layout, codes and totals all show up in a diff."""
    source = tmp_path / "batch.837"
    text = write_837(synthetic_batch(), control=7)
    line = "DTP*472*D8*20250319~\n"  # give the zero-units line a line control number (REF*6R)
    text = text.replace(line, line + "REF*6R*UNITS1-2~\n")
    count = int(re.search(r"SE\*(\d+)\*", text).group(1))
    source.write_text(text.replace(f"SE*{count}*", f"SE*{count + 1}*"))
    assert pyx12_valid(source.read_text())
    out = scrub(tmp_path, [source])
    text = (out / "batch.837.277").read_text()
    assert pyx12_valid(text)
    expected = EXPECTED / "batch.837.277"
    if os.environ.get("CLAIMSCRUB_UPDATE_EXPECTED"):
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(text)
    assert text == expected.read_text()


def test_claim_and_line_statuses_fit_the_findings(tmp_path):
    source = tmp_path / "batch.837"
    source.write_text(write_837(synthetic_batch()))
    out = scrub(tmp_path, [source])
    levels = {level["claim_id"]: level for level in patient_levels((out / "batch.837.277").read_text())}

    assert levels["ACC1"]["stc"][1:5] == ["A2:20", "20250310", "WQ", "500"]
    assert levels["ACC1"]["lines"] == []
    # CLM02 650 against one 500 line: out of balance, claim level only.
    assert levels["BAL1"]["stc"][1] == "A7:400" and levels["BAL1"]["stc"][3:5] == ["U", "650"]
    assert levels["BAL1"]["lines"] == []
    # Zero units on line 2: claim rejected with 476, and the line named with SVC + STC.
    units = levels["UNITS1"]
    assert units["stc"][1] == "A7:476" and units["stc"][4] == "1000"
    assert units["dtp"] == ["DTP", "472", "RD8", "20250305-20250319"]
    assert [line["svc"] for line in units["lines"]] == [["SVC", "HC:62323:KX", "500", "", "", "", "", "0"]]
    assert units["lines"][0]["stc"] == ["STC", "A7:476", "20250310", "U"]
    # A pointer past the HI diagnoses, under a dependent patient.
    dep = levels["DEP1"]
    assert dep["stc"][1] == "A7:477" and dep["lines"][0]["svc"][1] == "HC:64483"
    assert dep["hl"][3] == "PT" and len(dep["hl"]) == 4  # no HL04 at patient level
    # Two errors: the first in STC01, the second in STC10, both rule ids in STC12.
    two = levels["TWO1"]
    assert two["stc"][1] == "A7:400" and two["stc"][10] == "A7:510"
    assert two["stc"][12] == "EPI-BAL-001 EPI-SYN-003"
    assert two["lines"][0]["stc"][1] == "A7:510"
    assert two["dtp"] == ["DTP", "472", "D8", "20270105"]


def test_multiple_providers_and_transaction_sets(tmp_path):
    """One 2000C per billing-provider NPI; one ST*277 per 837 transaction set."""
    good = {"lines": [{"code": "62323", "charge": 300}]}
    claims_a = [{**good, "id": "A1", "member": "MBR2001"},
                {**good, "id": "A2", "member": "MBR2002", "charge": 5}]
    claims_b = [{**good, "id": "B1", "member": "MBR2003", "patient": {"dependent": True}},
                {**good, "id": "B2", "member": "MBR2004", "lines": [{"code": "62323", "units": 0}]}]
    two = tmp_path / "two.837"
    two.write_text(two_provider_837(claims_a, claims_b))
    assert pyx12_valid(two.read_text())
    split = tmp_path / "split.837"
    split.write_text(write_837([{**good, "id": f"S{i}", "member": f"MBR30{i:02d}"} for i in range(5)],
                               claims_per_transaction=2))
    out = scrub(tmp_path, [two, split])

    text = (out / "two.837.277").read_text()
    assert pyx12_valid(text)
    providers = [s for s in segments(text) if s[0] == "NM1" and s[1] == "85"]
    assert [p[9] for p in providers] == [BILLING_NPI, "1679576722"]
    per_provider = [s for s in segments(text) if s[0] == "QTY" and s[1] in ("QA", "QC")]
    assert per_provider == [["QTY", "QA", "1"], ["QTY", "QC", "1"], ["QTY", "QA", "1"], ["QTY", "QC", "1"]]

    text = (out / "split.837.277").read_text()
    assert pyx12_valid(text)
    assert [s[2] for s in segments(text) if s[0] == "TRN" and s[1] == "2" and not s[2].startswith("S")] == [
        "BATCH0001001", "BATCH0001002", "BATCH0001003"]
    # The second file's 277 takes the run's fourth acknowledgment control number (999s and
    # 277s are numbered together from --ack-control-number, default 1).
    assert segments(text)[-2] == ["GE", "3", "4"]
    assert Counter(level["claim_id"] for level in patient_levels(text)) == claim_ids(split)


def test_all_edits_on_mixed_batches_still_validate(tmp_path):
    """Whatever edits fire (every registered one runs here), the 277CA is valid X214."""
    batch = synthetic_batch() + [
        {"id": "EM1", "member": "MBR4001", "lines": [{"code": "99214", "charge": 150},
                                                  {"code": "62323", "charge": 500},
                                                  {"code": "77003", "charge": 90}]},
        {"id": "DX1", "member": "MBR4002", "dx": ["M545"], "lines": [{"code": "62322", "modifiers": ["50"]}]},
    ]
    sources = []
    for number, per_ts in enumerate((None, 3), start=1):
        path = tmp_path / f"mixed{number}.837"
        path.write_text(write_837(batch, control=number, claims_per_transaction=per_ts))
        sources.append(path)
    out = scrub(tmp_path, sources, structural=False)
    for path in sources:
        text = (out / (path.name + ".277")).read_text()
        assert pyx12_valid(text), path.name
        summary = json.loads((out / (path.name + ".json")).read_text())["summary"]
        batch_totals = totals(text, "21")
        assert (batch_totals["90"], batch_totals["AA"]) == (summary["accepted"], summary["rejected"])


def test_unusable_names_and_ids_still_validate(tmp_path):
    """Empty or odd names and ids from the input never make the 277CA invalid."""
    text = write_837(synthetic_batch()[:2], element="|", component=">", terminator="~")
    text = text.replace("|SUBSCRIBER1001|PAT|", "|||")  # no patient name
    text = text.replace("|MI|MBR1002", "|MI|")  # no member id
    text = text.replace("SUBMITTER CLINIC", "S\u00dcBMITTER*CLINIC:")  # non-ASCII and our delimiters
    text = text.replace("CLM|BAL1|", "CLM||")  # no patient control number
    text = text.replace("DTP|472|D8|20250304", "DTP|472|D8|20250230")  # no valid date of service
    source = tmp_path / "odd.837"
    source.write_text(text)
    out = scrub(tmp_path, [source])
    ack = (out / "odd.837.277").read_text()
    assert pyx12_valid(ack)
    names = [s for s in segments(ack) if s[0] == "NM1" and s[1] in ("QC", "41")]
    assert names[0][3] == "S BMITTER CLINIC"
    assert names[1][3] == "UNKNOWN" and names[2][9] == "UNKNOWN"
    levels = patient_levels(ack)
    assert [level["claim_id"] for level in levels] == ["ACC1", "0"]
    assert levels[1]["dtp"] == ["DTP", "472", "D8", "20250310"]  # no line date: the 837's BHT04
    assert levels[1]["lines"][0]["stc"][1] == "A7:187" and len(levels[1]["lines"][0]["svc"]) == 8


def test_output_is_deterministic_and_control_numbers_come_from_options(tmp_path):
    source = tmp_path / "batch.837"
    source.write_text(write_837(synthetic_batch(), control=42))
    first = scrub(tmp_path / "a", [source])
    second = scrub(tmp_path / "b", [source])
    assert (first / "batch.837.277").read_text() == (second / "batch.837.277").read_text()
    isa = segments((first / "batch.837.277").read_text())[0]
    # The run's second acknowledgment (its 999 is the first) and the input's date.
    assert isa[13] == "000000002" and isa[9] == "250310"

    run = Scrubber(ScrubOptions(as_of=AS_OF_DATE)).run([str(source)])
    try:
        path = write_277(run, run.files[0], str(tmp_path / "c"),
                         Ack277Options(control_number=123, date="20261122", time="0930"))
    finally:
        run.close()
    text = Path(path).read_text()
    assert pyx12_valid(text)
    segs = segments(text)
    assert segs[0][13] == "000000123" and segs[0][9:11] == ["261122", "0930"]
    assert segs[1][4:7] == ["20261122", "0930", "123"] and segs[-1] == ["IEA", "1", "000000123"]
    assert ["DTP", "009", "D8", "20261122"] in segs and ["DTP", "050", "D8", "20250310"] in segs


def test_fixture_files_validate(tmp_path):
    files = sorted(FIXTURES.rglob("*.837"))
    if not files:
        pytest.skip("no fixtures")
    out = scrub(tmp_path, files, structural=False)
    for path in files:
        text = (out / (path.name + ".277")).read_text()
        assert pyx12_valid(text), path.name
        assert Counter(level["claim_id"] for level in patient_levels(text)) == claim_ids(path)


# -- the status codes ---------------------------------------------------------------------
def _pyx12_code_list(name: str) -> set[str]:
    import pyx12

    codes = ElementTree.parse(Path(pyx12.__file__).parent / "map" / "codes.xml").getroot()
    for node in codes.iter("codeset"):
        if node.findtext("id") == name:
            return {code.text for code in node.iter("code")}
    raise AssertionError(f"no code list {name}")


def test_every_status_an_edit_can_produce_is_a_valid_x12_code():
    categories = _pyx12_code_list("claim_status_cat")
    statuses = _pyx12_code_list("claim_status")
    declared = {rule.id: rule.status_code for rule in load_rules().values() if rule.status_code}
    declared.update({f"category {c.value}": s for c, s in CATEGORY_STATUS.items()})
    for source, code in declared.items():
        parts = code.split(":")
        assert re.fullmatch(r"A[3678]", parts[0]) and parts[0] in categories, (source, code)
        assert parts[1] in statuses, (source, code)
        if len(parts) > 2:
            assert parts[2] in CLAIM_ENTITIES, (source, code)



def test_a_file_without_claims_gets_no_277(tmp_path):
    """An X214 transaction needs a patient level, so a file with no claim gets no 277CA
    (its 999 rejects it); the other reports are still written."""
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}]}])
    segs = [s for s in text.split("~\n") if s]
    body = segs[2: segs.index("HL*2*1*22*0")]
    body[-5] = "HL*1**20*0"
    source = tmp_path / "empty.837"
    source.write_text("".join(s + "~\n" for s in segs[:2] + body + [f"SE*{len(body) + 1}*0001"] + segs[-2:]))
    out = scrub(tmp_path, [source])
    assert (out / "empty.837.json").exists()
    assert not (out / "empty.837.277").exists()
