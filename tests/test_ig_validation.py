"""Implementation-guide validation with pyx12 (claimscrub.validate) and its findings
(X12-IG-001): errors land on the right file segment and claim, large transaction sets are
validated in slices without changing a single error, and pyx12's quirks (its logger, its
A2 blind spot, its exceptions, its ASCII-only paths) never reach the user."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from claimscrub.scrub import ScrubOptions, Scrubber
from claimscrub.synth import claim_segments, write_837
from claimscrub.validate import Pyx12Validator, hierarchy_errors, plan_slices
from claimscrub.x12.envelope import iter_transaction_sets
from claimscrub.x12.reader import X12Reader

from conftest import AS_OF, corpus_files

NO_ISA = "imsweb__x12-parser__x12_no_isa_line.txt"
LARGE = ("imsweb__x12-parser__x12_many_claims.txt", "imsweb__x12-parser__x12_multiple_transactions.txt")


# -- helpers ------------------------------------------------------------------------------
def validate(path: Path, jobs: int = 1, slice_segments: int = 0, max_pending=None):
    """{transaction index: (errors, transaction codes)} of one file."""
    validator = Pyx12Validator(jobs=jobs, slice_segments=slice_segments, max_pending=max_pending)
    reader = X12Reader(path)
    out = {}
    try:
        for ts in iter_transaction_sets(reader):
            validator.submit((0, ts.index), ts, reader.delimiters)
            assert len(validator._futures) <= validator.max_pending
            out.update({k[1]: (e, c) for k, e, c in validator.completed()})
        out.update({k[1]: (e, c) for k, e, c in validator.completed(block=True)})
    finally:
        validator.close()
    return out


def segment_list(text: str) -> list[str]:
    return [s.strip() for s in text.split("~") if s.strip()]


def ordinal(text: str, prefix: str, nth: int = 1) -> int:
    """1-based file ordinal of the nth segment starting with ``prefix``."""
    hits = [i for i, s in enumerate(segment_list(text), start=1) if s.startswith(prefix)]
    return hits[nth - 1]


def fix_counts(text: str) -> str:
    """Rewrite every SE01 to the real count, so a mutation leaves the envelope right."""
    out, count = [], 0
    for segment in segment_list(text):
        if segment.startswith("ST*"):
            count = 0
        count += 1
        if segment.startswith("SE*"):
            segment = f"SE*{count}*{segment.split('*')[2]}"
        out.append(segment)
    return "".join(s + "~\n" for s in out)


def two_provider_batch(count: int = 12) -> str:
    """One transaction set, two billing providers, subscribers and dependents."""
    claims = [
        {"id": f"C{i}", "member": f"M{i:04d}", "patient": {"dependent": True} if i % 3 == 1 else None,
         "lines": [{"code": "62323", "charge": 500}, {"code": "99214", "charge": 100}]}
        for i in range(count)
    ]
    text = write_837(claims[: count // 2])
    head, _, _ = text.partition("HL*2*1*22")
    body, hl = [], 2
    for index, claim in enumerate(claims[: count // 2]):
        segs, hl = claim_segments(claim, index, hl)
        body += segs
    second = hl
    body += [f"HL*{second}**20*1", "NM1*85*2*SECOND GROUP*****XX*1679576722", "N3*2 CLINIC WAY",
             "N4*SPRINGFIELD*IL*62701", "REF*EI*987654321"]
    hl += 1
    for index, claim in enumerate(claims[count // 2:], start=count // 2):
        segs, hl = claim_segments(claim, index, hl)
        body += [s.replace("*1*22*", f"*{second}*22*") if s.startswith("HL*") else s for s in segs]
    text = head + "".join(s + "~\n" for s in body) + "SE*0*0001~\nGE*1*1~\nIEA*1*000000001~\n"
    return fix_counts(text)


def mutate(text: str, old: str, new: str, nth: int = 1) -> str:
    parts = text.split(old)
    assert len(parts) > nth, f"{old!r} occurs fewer than {nth} times"
    return fix_counts(old.join(parts[:nth]) + new + old.join(parts[nth:]))


# -- mapping back to the file ---------------------------------------------------------------
def test_errors_point_at_file_segments_and_transaction_positions(tmp_path):
    claims = [{"id": f"C{i}", "lines": [{"code": "62323"}]} for i in range(3)]
    text = write_837(claims, claims_per_transaction=1)
    text = text.replace("CLM*C2*100***11:B:1", "CLM*C2*100***AA:B:1")
    path = tmp_path / "three.837"
    path.write_text(text)
    results = validate(path)
    assert not results[0][0] and not results[1][0]
    (error,) = results[2][0]
    clm = ordinal(text, "CLM*C2")
    st = ordinal(text, "ST*837", 3)
    assert (error.segment, error.seg_count) == (clm, clm - st + 1)
    assert (error.seg_id, error.element, error.element_ref, error.code, error.bad_value) == (
        "CLM", "5:1", "1331", "7", "AA")
    assert error.loop_id == "2300"


@pytest.mark.parametrize("old, new, expect", [
    ("*11:B:1*", "*AA:B:1*", ("CLM", "5:1", "1331", "7", "AA")),
    ("DTP*472*D8*20250303", "DTP*472*D8*20251399", ("DTP", "3", "1251", "8", "20251399")),
    ("*UN*1***1", "*XX*1***1", ("SV1", "3", "355", "7", "XX")),
    ("HL*3*1*22", "HL*3*7*22", ("HL", "2", "734", "I12", "7")),
    ("HL*3*1*22", "HL*4*1*22", ("HL", "1", "628", "I12", "4")),
])
def test_typical_mutations(tmp_path, old, new, expect):
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}]}, {"id": "C2", "lines": [{"code": "99214"}]}])
    mutated = text.replace(old, new, 1)
    path = tmp_path / "m.837"
    path.write_text(mutated)
    errors = validate(path)[0][0]
    got = [(e.seg_id, e.element, e.element_ref, e.code, e.bad_value) for e in errors]
    assert got == [expect]
    position = next(i for i, s in enumerate(segment_list(mutated), start=1) if new.strip("*") in s)
    assert errors[0].segment == position


def test_lx_numbering():
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}, {"code": "77003"}]}]).replace("LX*2", "LX*3")
    segments = next(iter_transaction_sets(_reader(text))).segments
    (error,) = hierarchy_errors(segments)
    assert (error.seg_id, error.element, error.code, error.bad_value) == ("LX", "1", "I12", "3")


def _reader(text: str) -> X12Reader:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".837", delete=False)
    handle.write(text)
    handle.close()
    return X12Reader(handle.name)


def test_hierarchy_checks_equal_pyx12s_own(tmp_path):
    """HL1/HL2/LX are redone on the whole set; they must be exactly what pyx12 reports."""
    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").addHandler(logging.NullHandler())
    logging.getLogger("pyx12").propagate = False
    texts = [p.read_text(errors="replace") for p in corpus_files() if p.name != NO_ISA]
    base = two_provider_batch()
    texts += [mutate(base, "HL*3*1*22", "HL*3*9*22"), mutate(base, "HL*5*", "HL*6*"),
              mutate(base, "LX*2", "LX*5", 3), mutate(base, "HL*4*3*23", "HL*4*2*23")]
    checked = 0
    for text in texts:
        text = text.replace("005010X222A2", "005010X222A1")
        fd_json = io.StringIO()
        pyx12.x12n_document.x12n_document(pyx12.params.params(), io.StringIO(text), None, None,
                                          fd_json=fd_json)
        theirs = sorted(
            (segment["cur_line"], error["err_cde"])
            for isa in json.loads(fd_json.getvalue())["interchanges"] for gs in isa["groups"]
            for st in gs["transactions"] for segment in st["segments"]
            for error in segment["errors"] if error["err_cde"] in ("HL1", "HL2", "LX")
        )
        ours = sorted(
            (e.segment, {"628": "HL1", "734": "HL2", "554": "LX"}[e.element_ref])
            for ts in iter_transaction_sets(_reader(text)) for e in hierarchy_errors(ts.segments)
        )
        assert ours == theirs
        checked += bool(ours)
    assert checked >= 5


# -- slices of a large transaction set ------------------------------------------------------
def test_a_large_transaction_set_is_cut_at_subscriber_loops():
    text = two_provider_batch(40)
    segments = next(iter_transaction_sets(_reader(text))).segments
    ranges = plan_slices(segments, 30)
    assert len(ranges) > 5
    assert ranges[0][0] == 1 and ranges[-1][1] == len(segments) - 1
    for (start, end), (next_start, _) in zip(ranges, ranges[1:]):
        assert end == next_start
        assert segments[next_start].id == "HL" and segments[next_start].get(3) in ("20", "22")
    assert plan_slices(segments, 0) == [(1, len(segments) - 1)]
    # a broken hierarchy (a patient HL right under the billing provider) is not cut
    broken = mutate(text, "HL*2*1*22", "HL*2*1*23")
    assert len(plan_slices(next(iter_transaction_sets(_reader(broken))).segments, 30)) == 1


def _variants() -> list[tuple[str, str]]:
    base = two_provider_batch()
    return [
        ("clean", base),
        ("bad code in a late claim", mutate(base, "*11:B:1*", "*AA:B:1*", 9)),
        ("missing service date at a claim's end", mutate(base, "DTP*472*D8*20250303~\nHL*", "HL*", 4)),
        ("missing SBR at a slice start", mutate(base, "SBR*P*18*******MB~\n", "", 5)),
        ("unknown segment", mutate(base, "LX*2", "ZZZ*1~\nLX*2", 6)),
        ("second provider loop broken", mutate(base, "NM1*85*2*SECOND", "NM1*117*2*SECOND")),
        ("second provider without its N4", mutate(base, "N4*SPRINGFIELD*IL*62701~\nREF*EI*987654321", "REF*EI*987654321")),
        ("empty subscriber loop", mutate(base, "SBR*P*18*******MB~\nNM1*IL*1*SUBSCRIBER0003*PAT****MI*M0003~\nN3*1 MAIN ST~\nN4*SPRINGFIELD*IL*62701~\nDMG*D8*19600101*F~\nNM1*PR*2*MEDICARE*****PI*00435~\nCLM*C3*600***11:B:1*Y*A*Y*Y~\nHI*ABK:M5416~\nNM1*82*1*RENDERING*DOC****XX*1234567893~\nLX*1~\nSV1*HC:62323*500*UN*1***1~\nDTP*472*D8*20250303~\nLX*2~\nSV1*HC:99214*100*UN*1***1~\nDTP*472*D8*20250303~\n", "")),
        ("subscriber content all unrecognized", mutate(base, "SBR*P*18*******MB~\nNM1*IL*1*SUBSCRIBER0006", "ZZZ*1~\nNM1*IL*1*SUBSCRIBER0006")),
        ("header error", mutate(base, "PER*IC*BILLING OFFICE*TE*5555550100~\n", "")),
        ("claim without CLM, errors held back to the next HL",
         mutate(base, "CLM*C4*600***11:B:1*Y*A*Y*Y~\nHI*ABK:M5416~\n", "HI*~\n")),
        ("hierarchy numbers", mutate(mutate(base, "HL*5*", "HL*6*"), "HL*9*1*22", "HL*9*4*22")),
        ("header header", base.replace("BHT*0019", "BHT*9999")),
    ]


@pytest.mark.parametrize("name, text", _variants(), ids=[v[0] for v in _variants()])
def test_slices_give_exactly_the_errors_of_the_whole_set(tmp_path, name, text):
    path = tmp_path / "batch.837"
    path.write_text(text)
    whole = validate(path, slice_segments=0)
    sliced = validate(path, slice_segments=1)
    assert sliced == whole
    if name not in ("clean", "empty subscriber loop"):  # pyx12 misses an empty HL loop
        assert whole[0][0], "the mutation should produce an error"
    assert len(plan_slices(next(iter_transaction_sets(X12Reader(path))).segments, 1)) > 1


@pytest.mark.parametrize("path", [p for p in corpus_files() if p.name != NO_ISA and p.name not in LARGE],
                         ids=lambda p: p.name[:40])
def test_slices_equal_the_whole_set_on_the_corpus(path):
    assert validate(path, slice_segments=1) == validate(path, slice_segments=0)


def test_parallel_slices_equal_serial_whole_validation(tmp_path):
    text = two_provider_batch(40)
    text = mutate(mutate(text, "*11:B:1*", "*AA:B:1*", 33), "HL*20*", "HL*21*")
    path = tmp_path / "big.837"
    path.write_text(text)
    serial = validate(path, jobs=1, slice_segments=0)
    parallel = validate(path, jobs=2, slice_segments=25, max_pending=2)
    assert parallel == serial
    codes = {(e.seg_id, e.code) for e in serial[0][0]}
    assert ("CLM", "7") in codes and ("HL", "I12") in codes
    clm = next(e for e in serial[0][0] if e.seg_id == "CLM")
    assert clm.segment == ordinal(text, "CLM*C32*")


# -- pyx12's quirks -------------------------------------------------------------------------
def test_a2_is_validated_as_a1(tmp_path):
    path = tmp_path / "a2.837"
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}]}], version="005010X222A2")
    path.write_text(text)
    assert validate(path) == {0: ([], [])}
    path.write_text(text.replace("*11:B:1*", "*AA:B:1*"))
    assert [e.code for e in validate(path)[0][0]] == ["7"]


def test_pyx12_exceptions_become_errors_and_reject_the_claims(tmp_path, monkeypatch):
    import pyx12.errors
    import pyx12.x12n_document

    def boom(*args, **kwargs):
        raise pyx12.errors.EngineError("Map not found")

    monkeypatch.setattr(pyx12.x12n_document, "x12n_document", boom)
    path = tmp_path / "c.837"
    path.write_text(write_837([{"id": "C1", "lines": [{"code": "62323"}]},
                               {"id": "C2", "lines": [{"code": "62323"}]}]))
    ((error,), codes) = validate(path)[0]
    assert codes == ["1"] and error.segment is None and "EngineError" in error.message
    findings = _findings(path)
    assert {f.claim_id for f in findings if f.rule == "X12-IG-001"} == {"C1", "C2"}


def _findings(path: Path, tmp: Path | None = None):
    from datetime import date

    scrubber = Scrubber(ScrubOptions(as_of=date.fromisoformat(AS_OF), validator=Pyx12Validator(jobs=1),
                                     work_dir=str(tmp or path.parent)))
    run = scrubber.run([str(path)])
    try:
        return [f for file in run.files for r in run.claim_results(file) for f in r.findings]
    finally:
        run.close()


def test_pyx12_logs_nothing(tmp_path, cli):
    path = tmp_path / "bad.837"
    path.write_text(write_837([{"id": "C1", "lines": [{"code": "62323"}]}]).replace("*11:B:1*", "*AA:B:1*"))
    result = cli("scrub", str(path), "--out", str(tmp_path / "out"), "--as-of", AS_OF,
                 "--validator", "pyx12", "--jobs", "2")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("bad.837: 1 claims, 0 accepted, 1 rejected")
    assert lines[1] == "total: 1 file, 1 claims, 0 accepted, 1 rejected"


def test_non_ascii_is_an_element_error_and_names_stay_out_of_findings(tmp_path):
    text = write_837([{"id": "C1", "member": "MBR0001", "lines": [{"code": "62323"}]}])
    text = text.replace("NM1*IL*1*SUBSCRIBER0001*PAT", "NM1*IL*1*TAYLÖR*PAT")
    text = text.replace("MI*MBR0001", "MI*" + "9" * 81)  # too long a member id
    path = tmp_path / "utf8.837"
    path.write_bytes(text.encode("utf-8"))
    errors = validate(path)[0][0]
    assert {(e.seg_id, e.element, e.code) for e in errors} == {("NM1", "3", "6"), ("NM1", "9", "5")}
    # the findings name the element and the problem, never the name or the id
    (finding,) = [f for f in _findings(path) if f.rule == "X12-IG-001"]  # subscriber loop: set level
    assert "TAYL" not in finding.message and "9" * 81 not in finding.message
    assert "NM103" in finding.message and "withheld" in finding.message
    assert "1 more error" in finding.message


def test_code_values_are_named_in_findings(tmp_path):
    path = tmp_path / "pos.837"
    path.write_text(write_837([{"id": "C1", "pos": "AA", "lines": [{"code": "62323"}]}]))
    (finding,) = [f for f in _findings(path) if f.rule == "X12-IG-001"]
    assert "(AA)" in finding.message and "CLM05-1" in finding.message
    assert finding.segment == ordinal(path.read_text(), "CLM*")
