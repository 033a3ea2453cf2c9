"""The accepted-claims 837P (--accepted-out): only the accepted claims, still a valid 837P.

On every corpus file and fixture: the CLM01s of the accepted 837 (read back with
claimscrub's own reader) plus the rejected claims of the JSON report equal the input's
CLM01s, and the accepted 837 passes pyx12 whenever the input did (X222A2 files after the
A2 -> A1 rewrite pyx12 needs).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimscrub.cli import main
from claimscrub.synth import claim_segments, write_837

import ackhelpers
from ackhelpers import claim_ids, corpus_inputs, segments
from conftest import AS_OF, FIXTURES


def pyx12_valid(text: str) -> bool:
    """pyx12's verdict on an 837P, X222A2 read as X222A1 (pyx12 has no A2 map)."""
    return ackhelpers.pyx12_valid(text.replace("005010X222A2", "005010X222A1"))


def scrub(tmp_path: Path, inputs: list[Path], structural: bool = True) -> tuple[Path, Path]:
    """The scrub with ``--accepted-out tmp_path/accepted``: the out and accepted folders."""
    accepted = tmp_path / "accepted"
    out = ackhelpers.scrub(tmp_path, inputs, "--accepted-out", str(accepted), structural=structural)
    return out, accepted


def check_partition(source: Path, out: Path, accepted_dir: Path) -> tuple[Counter, Counter]:
    """Accepted (from the accepted 837) + rejected (from the JSON) == input claims."""
    report = json.loads((out / (source.name + ".json")).read_text())
    rejected = Counter(c["claim_id"] for c in report["claims"] if c["status"] == "rejected")
    accepted_path = accepted_dir / source.name
    accepted = claim_ids(accepted_path) if accepted_path.exists() else Counter()
    assert accepted + rejected == claim_ids(source), source.name
    assert sum(accepted.values()) == report["summary"]["accepted"], source.name
    if not accepted:
        assert not accepted_path.exists(), source.name
    return accepted, rejected


def hl_tree(text: str, element: str = "*", terminator: str = "~") -> list[list[str]]:
    return [s[:5] for s in segments(text, element, terminator) if s[0] == "HL" and len(s) > 1]


def assert_hierarchy_sound(text: str, element: str = "*", terminator: str = "~") -> None:
    """HL01 counts 1..n in each transaction set, HL02 names an earlier HL of the level above,
    HL04 is 1 exactly when a child follows."""
    segs = segments(text, element, terminator)
    sets: list[list[list[str]]] = []
    for seg in segs:
        if seg[0] == "ST":
            sets.append([])
        elif seg[0] == "HL":
            sets[-1].append(seg)
    parent_level = {"22": "20", "23": "22"}
    for hls in sets:
        levels = {}
        for number, hl in enumerate(hls, start=1):
            assert hl[1] == str(number)
            levels[hl[1]] = hl[3]
            if hl[3] == "20":
                assert hl[2] == ""
            else:
                assert levels.get(hl[2]) == parent_level[hl[3]]
            has_child = any(other[2] == hl[1] for other in hls)
            assert hl[4] == ("1" if has_child else "0")


# -- corpus and fixtures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    files = corpus_inputs()
    # Structural edits only, so that the corpus keeps accepted claims to forward whatever
    # billing edits say about these implementation-guide examples (the fixtures below run
    # every edit).
    out, accepted = scrub(tmp_path_factory.mktemp("corpus837"), files)
    return files, out, accepted


def test_corpus_accepted_plus_rejected_equals_input(corpus_run):
    files, out, accepted_dir = corpus_run
    totals = Counter()
    for path in files:
        accepted, rejected = check_partition(path, out, accepted_dir)
        totals["accepted"] += sum(accepted.values())
        totals["rejected"] += sum(rejected.values())
    assert totals["accepted"] > 0 and totals["rejected"] > 0  # both sides were exercised


def test_corpus_accepted_837_is_valid_where_the_input_was(corpus_run):
    files, out, accepted_dir = corpus_run
    checked = 0
    for path in files:
        accepted = accepted_dir / path.name
        if not accepted.exists() or not pyx12_valid(path.read_text()):
            continue
        text = accepted.read_text()
        assert pyx12_valid(text), path.name
        assert_hierarchy_sound(text)
        checked += 1
    assert checked >= 8


def test_fixtures_partition(tmp_path):
    files = sorted(FIXTURES.rglob("*.837"))
    if not files:
        pytest.skip("no fixtures")
    out, accepted_dir = scrub(tmp_path, files, structural=False)
    for path in files:
        check_partition(path, out, accepted_dir)
        accepted = accepted_dir / path.name
        if accepted.exists() and pyx12_valid(path.read_text()):
            assert pyx12_valid(accepted.read_text()), path.name


# -- synthetic batches --------------------------------------------------------------------
GOOD = {"lines": [{"code": "62323", "charge": 300}]}


def mixed_claims() -> list[dict]:
    """Subscribers and dependents, each sometimes rejected, under one billing provider."""
    return [
        {**GOOD, "id": "S1-OK", "member": "MBR5001"},
        {**GOOD, "id": "S2-BAD", "member": "MBR5002", "charge": 1},
        {**GOOD, "id": "D3-BAD", "member": "MBR5003", "patient": {"dependent": True},
         "lines": [{"code": "62323", "units": 0}]},
        {**GOOD, "id": "D4-OK", "member": "MBR5004", "patient": {"dependent": True}},
        {**GOOD, "id": "S5-BAD", "member": "MBR5005", "lines": [{"code": "62323", "pointers": [4]}]},
        {**GOOD, "id": "S6-OK", "member": "MBR5006", "date": "2025-03-05"},
    ]


def test_rejected_claims_and_their_empty_loops_are_left_out(tmp_path):
    source = tmp_path / "mixed.837"
    source.write_text(write_837(mixed_claims()))
    assert pyx12_valid(source.read_text())
    out, accepted_dir = scrub(tmp_path, [source])
    accepted, rejected = check_partition(source, out, accepted_dir)
    assert sorted(accepted) == ["D4-OK", "S1-OK", "S6-OK"]
    assert sorted(rejected) == ["D3-BAD", "S2-BAD", "S5-BAD"]
    text = (accepted_dir / "mixed.837").read_text()
    assert pyx12_valid(text)
    assert_hierarchy_sound(text)
    assert [hl[3] for hl in hl_tree(text)] == ["20", "22", "22", "23", "22"]
    assert "MBR5002" not in text and "MBR5003" not in text and "MBR5005" not in text
    # The accepted claims keep their segments exactly.
    original = source.read_text()
    start = original.index("CLM*D4-OK")
    claim_text = original[start: original.index("HL*", start)]
    assert claim_text in text
    segs = [s for s in text.split("~\n") if s]
    assert segs[-3] == f"SE*{len(segs) - 4}*0001"
    assert segs[-2:] == ["GE*1*1", "IEA*1*000000001"]


def test_transaction_sets_without_accepted_claims_are_left_out(tmp_path):
    claims = mixed_claims()[:3] + [{**GOOD, "id": "X7-BAD", "member": "MBR5007", "charge": 9}]
    source = tmp_path / "split.837"
    # two sets, {S1-OK, S2-BAD} and {D3-BAD, X7-BAD}; and a second file where nothing passes
    source.write_text(write_837(claims, claims_per_transaction=2))
    none = tmp_path / "none.837"
    none.write_text(write_837(claims[1:], control=2))
    stale = tmp_path / "accepted" / "none.837"
    stale.parent.mkdir(parents=True)
    stale.write_text("an earlier run's output")
    out, accepted_dir = scrub(tmp_path, [source, none])
    check_partition(source, out, accepted_dir)
    text = (accepted_dir / "split.837").read_text()
    assert pyx12_valid(text)
    assert text.count("ST*837*") == 1 and "ST*837*0001*" in text
    assert "GE*1*1~" in text
    # Nothing accepted: no file, and the stale one is gone.
    check_partition(none, out, accepted_dir)
    assert not (accepted_dir / "none.837").exists()


def test_groups_and_interchanges_are_recounted(tmp_path):
    """Two interchanges, the first with two groups; only some hold accepted claims."""
    def interchange(control: int, groups: list[list[dict]]) -> list[str]:
        out = []
        for number, claims in enumerate(groups):
            segs = [s for s in write_837(claims, control=control * 10 + number).split("~\n") if s]
            if number == 0:
                out.append(segs[0])
            out.extend(segs[1:-1])  # GS .. GE
        out.append(f"IEA*{len(groups)}*{out[0].split('*')[13]}")
        return out

    ok = [{**GOOD, "id": "OK", "member": "MBR6001"}]
    bad = [{**GOOD, "id": "BAD", "member": "MBR6002", "charge": 2}]
    first, second = interchange(1, [bad, ok]), interchange(2, [bad])
    source = tmp_path / "multi.837"
    source.write_text("".join(s + "~\n" for s in first + second))
    out, accepted_dir = scrub(tmp_path, [source])
    accepted, _ = check_partition(source, out, accepted_dir)
    assert list(accepted) == ["OK"]
    segs = [s for s in (accepted_dir / "multi.837").read_text().split("~\n") if s]
    assert [s.split("*")[0] for s in segs].count("ISA") == 1
    assert [s for s in segs if s.startswith(("GS*", "GE*", "IEA*"))] == [
        "GS*HC*SUBMITTER01*RECEIVER01*20250310*1200*11*X*005010X222A1", "GE*1*11", "IEA*1*000000010"]
    assert pyx12_valid("".join(s + "~\n" for s in segs))


def shared_hl_837(own: list[dict], dependent: list[dict], own2: list[dict], dependent2: list[dict]) -> str:
    """Subscribers with several claims of their own and a dependent with claims of its own:
    HL 2 (22) own claims, HL 3 (23) dependent claims; HL 4 (22), HL 5 (23) likewise."""
    def claims_only(claim: dict, index: int) -> list[str]:
        segs, _ = claim_segments(claim, index, 2)
        return segs[next(i for i, s in enumerate(segs) if s.startswith("CLM*")):]

    def subscriber(hl: int, member: str, own_claims: list[dict], dep_claims: list[dict]) -> list[str]:
        first, _ = claim_segments({**own_claims[0], "member": member}, 0, hl)
        head = first[: next(i for i, s in enumerate(first) if s.startswith("CLM*"))]
        head[0] = f"HL*{hl}*1*22*1"
        out = head + [s for i, c in enumerate(own_claims) for s in claims_only(c, i)]
        dep, _ = claim_segments({**dep_claims[0], "member": member, "patient": {"dependent": True}}, 0, hl)
        start = next(i for i, s in enumerate(dep) if s.startswith("HL*") and s.split("*")[3] == "23")
        dep_head = dep[start: next(i for i, s in enumerate(dep) if s.startswith("CLM*"))]
        dep_head[0] = f"HL*{hl + 1}*{hl}*23*0"
        return out + dep_head + [s for i, c in enumerate(dep_claims) for s in claims_only(c, i)]

    segs = [s for s in write_837([GOOD]).split("~\n") if s]
    first_hl = segs.index("HL*2*1*22*0")
    se = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    body = segs[segs.index(next(s for s in segs if s.startswith("ST*"))):first_hl]
    body += subscriber(2, "MBR8001", own, dependent) + subscriber(4, "MBR8002", own2, dependent2)
    out = segs[:2] + body + [f"SE*{len(body) + 1}*0001"] + segs[se + 1:]
    return "".join(s + "~\n" for s in out)


def test_claims_sharing_an_hl_are_split_and_hl04_follows_the_children(tmp_path):
    own = [{**GOOD, "id": "OWN-OK1"}, {**GOOD, "id": "OWN-BAD", "charge": 7}, {**GOOD, "id": "OWN-OK2"}]
    dependent = [{**GOOD, "id": "DEP-BAD1", "lines": [{"code": "62323", "units": 0}]},
                 {**GOOD, "id": "DEP-BAD2", "charge": 8}]
    own2 = [{**GOOD, "id": "OWN2-BAD", "charge": 9}]
    dependent2 = [{**GOOD, "id": "DEP2-OK", "date": "2025-03-04"}, {**GOOD, "id": "DEP2-BAD", "charge": 1}]
    source = tmp_path / "shared.837"
    source.write_text(shared_hl_837(own, dependent, own2, dependent2))
    out, accepted_dir = scrub(tmp_path, [source])
    accepted, rejected = check_partition(source, out, accepted_dir)
    assert sorted(accepted) == ["DEP2-OK", "OWN-OK1", "OWN-OK2"]
    result = (accepted_dir / "shared.837").read_text()
    assert_hierarchy_sound(result)
    # The first subscriber lost its dependent (HL04 1 -> 0); the second keeps its dependent
    # though none of its own claims is left.
    assert hl_tree(result) == [["HL", "1", "", "20", "1"], ["HL", "2", "1", "22", "0"],
                               ["HL", "3", "1", "22", "1"], ["HL", "4", "3", "23", "0"]]
    for claim_id in rejected:
        assert f"CLM*{claim_id}*" not in result
    if pyx12_valid(source.read_text()):
        assert pyx12_valid(result)


def test_two_billing_providers_keep_only_the_one_with_accepted_claims(tmp_path):
    claims = [{**GOOD, "id": "A-BAD", "member": "MBR7001", "charge": 3},
              {**GOOD, "id": "B-OK", "member": "MBR7002", "patient": {"dependent": True}}]
    text = write_837(claims[:1])
    segs = [s for s in text.split("~\n") if s]
    provider_b = ["HL*3**20*1", "NM1*85*2*SECOND PRACTICE*****XX*1679576722", "N3*2 CLINIC WAY",
                  "N4*SPRINGFIELD*IL*62701", "REF*EI*987654321"]
    claim_b, _ = claim_segments(claims[1], 1, 4)
    claim_b = [s.replace("HL*4*1*22", "HL*4*3*22") for s in claim_b]
    se = segs.index(next(s for s in segs if s.startswith("SE*")))
    body = segs[segs.index(next(s for s in segs if s.startswith("ST*"))):se] + provider_b + claim_b
    segs = segs[:2] + body + [f"SE*{len(body) + 1}*0001"] + segs[se + 1:]
    source = tmp_path / "providers.837"
    source.write_text("".join(s + "~\n" for s in segs))
    assert pyx12_valid(source.read_text())
    out, accepted_dir = scrub(tmp_path, [source])
    check_partition(source, out, accepted_dir)
    result = (accepted_dir / "providers.837").read_text()
    assert pyx12_valid(result)
    assert_hierarchy_sound(result)
    assert [hl[:4] for hl in hl_tree(result)] == [["HL", "1", "", "20"], ["HL", "2", "1", "22"], ["HL", "3", "2", "23"]]
    assert "SECOND PRACTICE" in result and "PAIN MANAGEMENT ASSOCIATES" not in result


def test_input_delimiters_and_line_breaks_are_kept(tmp_path):
    source = tmp_path / "odd.837"
    text = write_837(mixed_claims(), element="|", component=">", terminator="!", newline="\r\n")
    source.write_bytes(text.encode())
    assert pyx12_valid(text)
    out, accepted_dir = scrub(tmp_path, [source])
    check_partition(source, out, accepted_dir)
    result = (accepted_dir / "odd.837").read_bytes().decode()
    assert result.startswith("ISA|00|") and result.endswith("IEA|1|000000001!\r\n")
    assert "SV1|HC>62323|300|UN|1|||1!\r\n" in result
    assert result.count("!\r\n") == result.count("!")
    assert pyx12_valid(result)
    assert_hierarchy_sound(result, "|", "!")


def test_accepted_out_may_not_overwrite_the_inputs(tmp_path):
    source = tmp_path / "in.837"
    text = write_837(mixed_claims())
    source.write_text(text)
    result = CliRunner().invoke(
        main, ["scrub", str(source), "--out", str(tmp_path / "out"), "--accepted-out", str(tmp_path),
               "--as-of", AS_OF])
    assert result.exit_code == 3
    assert "--accepted-out" in result.output
    assert source.read_text() == text
