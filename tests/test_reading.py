"""Reading real 837P files: every corpus file, delimiter and line-break variants, streaming."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from claimscrub.x12 import reader as reader_module
from claimscrub.x12.envelope import iter_transaction_sets
from claimscrub.x12.reader import X12Reader

from conftest import AS_OF, CORPUS, corpus_files, run_claimscrub

UNUSABLE_CORPUS = {"imsweb__x12-parser__x12_no_isa_line.txt"}


def clm_ids(text: str) -> list[str]:
    """CLM01 of every CLM segment, found without claimscrub's parser: delimiters from the
    fixed ISA positions (element at 3, terminator after ISA16)."""
    text = text.lstrip("\ufeff \r\n")
    element = text[3]
    isa_end = [m.start() for m in re.finditer(re.escape(element), text)][15] + 2
    terminator = text[isa_end]
    ids = []
    for segment in text.split(terminator):
        parts = segment.strip("\r\n").split(element)
        if parts[0] == "CLM":
            ids.append(parts[1])
    return ids


def scrub_one(path: Path, out: Path, *extra: str):
    result = run_claimscrub("scrub", str(path), "--out", str(out), "--as-of", AS_OF, *extra)
    return result


def test_every_corpus_file_is_read_and_every_claim_has_one_disposition(corpus_night):
    """The whole public corpus in one run, as a night's batch (conftest's ``corpus_night``):
    every claim of every usable file is in its report with one disposition; the file with
    no ISA gets one stderr line naming it, exit 2, and no reports."""
    files, out, result = corpus_night
    assert "Traceback" not in result.stderr
    unusable = [p for p in files if p.name in UNUSABLE_CORPUS]
    assert result.returncode == (2 if unusable else 1), result.stderr
    for path in files:
        report = out / (path.name + ".json")
        if path.name in UNUSABLE_CORPUS:
            assert not report.exists() and not (out / (path.name + ".999")).exists()
            lines = [line for line in result.stderr.splitlines() if path.name in line]
            assert len(lines) == 1 and lines[0].startswith("claimscrub: "), lines
            continue
        document = json.loads(report.read_text())
        expected = clm_ids(path.read_text(encoding="utf-8", errors="replace"))
        assert [c["claim_id"] for c in document["claims"]] == expected, path.name
        assert all(c["status"] in ("accepted", "rejected") for c in document["claims"])
        summary = document["summary"]
        assert summary["claims"] == len(expected) == summary["accepted"] + summary["rejected"], path.name


def _variant(text: str, kind: str) -> str:
    text = text.lstrip("\ufeff")
    element = text[3]
    isa_end = [m.start() for m in re.finditer(re.escape(element), text)][15] + 2
    terminator = text[isa_end]
    segments = [s.strip("\r\n") for s in text.split(terminator)]
    segments = [s for s in segments if s]
    if kind == "crlf":
        return "".join(s + terminator + "\r\n" for s in segments)
    if kind == "one-line":
        return "".join(s + terminator for s in segments)
    if kind == "other-delimiters":
        component = text[isa_end - 1]
        out = []
        for s in segments:
            # Pick delimiters that appear nowhere in the file's data.
            s = s.replace(element, "\x01").replace(component, "\x02")
            s = s.replace("\x01", "|").replace("\x02", "\\")
            out.append(s)
        return "".join(s + "!\n" for s in out)
    raise ValueError(kind)


def _claims_view(path: Path, tables) -> tuple[list, bool]:
    """Each claim's id, disposition, charge and (rule, line) findings, and whether the file
    was usable, from one run of the scrub pipeline on ``path`` alone (no validation: the
    variants differ only in framing, and validation has tests of its own)."""
    from datetime import date

    from claimscrub.scrub import ScrubOptions, Scrubber

    run = Scrubber(ScrubOptions(as_of=date.fromisoformat(AS_OF), tables=tables)).run([str(path)])
    try:
        file = run.files[0]
        view = [
            (r.claim.claim_id, r.status, r.claim.charge,
             sorted(((f.rule, f.line) for f in r.findings), key=lambda k: (k[0], str(k[1] or ""))))
            for r in run.claim_results(file)
        ]
        return view, file.usable
    finally:
        run.close()


VARIANT_FILES = [p for p in corpus_files() if p.name not in UNUSABLE_CORPUS]


@pytest.fixture(scope="module")
def tables():
    from claimscrub.tables import load_tables

    return load_tables()


@pytest.mark.parametrize("path", VARIANT_FILES, ids=lambda p: p.name)
def test_line_breaks_and_delimiters_do_not_change_the_claims(path, tmp_path, tables):
    """CRLF after every segment, the whole file on one line, and other delimiters (| ! \\)
    give the same claims, dispositions and findings as the file as published."""
    text = path.read_text(encoding="utf-8")
    original, usable = _claims_view(path, tables)
    assert usable and original, "variant test needs claims"
    kinds = ["crlf", "one-line"]
    if not ("|" in text or "\\" in text or "!" in text):
        kinds.append("other-delimiters")  # else the file uses the replacements as data
    for kind in kinds:
        variant = tmp_path / kind / path.name
        variant.parent.mkdir()
        variant.write_text(_variant(text, kind), encoding="utf-8", newline="")
        assert _claims_view(variant, tables) == (original, True), kind


def test_chunk_boundaries_do_not_change_segments(monkeypatch):
    path = CORPUS / "imsweb__x12-parser__x12_complex.txt"
    whole = [(s.pos, s.elements) for s in X12Reader(path)]
    monkeypatch.setattr(reader_module, "CHUNK_SIZE", 7)
    chunked = [(s.pos, s.elements) for s in X12Reader(path)]
    assert chunked == whole
    assert len(whole) == 298


def test_reader_streams_a_file_larger_than_its_buffer(tmp_path, monkeypatch):
    """Memory is bounded by the chunk and one transaction set: with a 64-byte chunk, a file
    of many transaction sets is read while only ever holding a chunk plus one set."""
    from claimscrub.synth import write_837

    claims = [{"id": f"C{i}", "member": f"M{i}", "lines": [{"code": "62323"}]} for i in range(60)]
    path = tmp_path / "many.837"
    path.write_text(write_837(claims, claims_per_transaction=5))
    monkeypatch.setattr(reader_module, "CHUNK_SIZE", 64)
    reader = X12Reader(path)
    peak = 0
    seen_bytes = []
    for ts in iter_transaction_sets(reader):
        peak = max(peak, len(ts.segments))
        seen_bytes.append(reader.bytes_read)
    assert peak < 150  # one transaction set of 5 claims, not the file's 1,300+ segments
    assert seen_bytes == sorted(seen_bytes) and seen_bytes[0] < path.stat().st_size


def test_dependents_claims_are_not_missed(tmp_path):
    from claimscrub.synth import write_837

    claims = [
        {"id": "SUB1", "member": "M1", "lines": [{"code": "62323"}]},
        {"id": "DEP1", "member": "M2", "patient": {"dependent": True}, "lines": [{"code": "62323"}]},
        {"id": "DEP2", "member": "M2", "patient": {"dependent": True, "first": "OTHER"}, "lines": [{"code": "99213"}]},
    ]
    path = tmp_path / "deps.837"
    path.write_text(write_837(claims))
    result = scrub_one(path, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "deps.837.json").read_text())
    assert [c["claim_id"] for c in report["claims"]] == ["SUB1", "DEP1", "DEP2"]
    assert result.returncode == 0, result.stderr
