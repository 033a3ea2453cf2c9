"""Bad input: one clear line naming the file (and segment), exit code 2, no traceback, no
half-written output, and the other files of the run still scrubbed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from claimscrub.atomic import atomic_writer
from claimscrub.synth import write_837

from conftest import AS_OF, CORPUS, invoke_claimscrub

GOOD = [{"id": "C1", "lines": [{"code": "62323", "charge": 500}]}]


def _good_text() -> str:
    return write_837(GOOD)


def _cases() -> dict[str, tuple[bytes, str]]:
    good = _good_text()
    segments = good.split("~\n")
    truncated = "~\n".join(segments[: len(segments) // 2]) + "~\n"
    return {
        "empty.837": (b"", "empty"),
        "blank.837": (b"\n\n   \n", "empty"),
        "binary.837": (bytes(range(256)) * 20, "binary"),
        "claims.csv": (b"claim_id,patient,code,charge\nC1,DOE,62323,500\n", "CSV"),
        "institutional.837": (good.replace("005010X222A1", "005010X223A2").encode(), "837I"),
        "old-4010.837": (
            good.replace("*00501*", "*00401*").replace("005010X222A1", "004010X098A1").encode(),
            "4010",
        ),
        "remittance.835": (
            good.replace("GS*HC*", "GS*HP*").replace("005010X222A1", "005010X221A1").replace("ST*837*", "ST*835*").encode(),
            "835",
        ),
        "truncated.837": (truncated.encode(), "truncated"),
        "no-isa.837": (good.split("~\n", 1)[1].encode(), "no ISA"),
        "broken-isa.837": (b"ISA*00*  *00\n", "ISA header"),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_unusable_input_gets_one_line_and_exit_2(name, tmp_path):
    data, words = CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(path), "--out", str(out), "--as-of", AS_OF)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [l for l in result.stderr.splitlines() if l.startswith("claimscrub: ")]
    assert len(error_lines) == 1, result.stderr
    line = error_lines[0]
    assert name in line and words.lower() in line.lower(), line
    assert "837P" in line or "truncated" in line
    assert not out.exists() or not list(out.iterdir())


def test_truncated_file_names_the_segment(tmp_path):
    data, _ = CASES["truncated.837"]
    path = tmp_path / "cut.837"
    path.write_bytes(data)
    result = invoke_claimscrub("scrub", str(path), "--out", str(tmp_path / "o"), "--as-of", AS_OF)
    assert result.returncode == 2
    assert "cut.837: segment " in result.stderr


def test_no_isa_corpus_file(tmp_path):
    path = CORPUS / "imsweb__x12-parser__x12_no_isa_line.txt"
    result = invoke_claimscrub("scrub", str(path), "--out", str(tmp_path), "--as-of", AS_OF)
    assert result.returncode == 2
    assert "no ISA interchange header" in result.stderr


def test_missing_file(tmp_path):
    result = invoke_claimscrub("scrub", str(tmp_path / "nope.837"), "--out", str(tmp_path / "o"), "--as-of", AS_OF)
    assert result.returncode == 2
    assert "nope.837: cannot be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-bad.837").write_bytes(b"\x00\x01binary")
    (folder / "b-good.837").write_text(_good_text())
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(folder), "--out", str(out), "--as-of", AS_OF)
    assert result.returncode == 2
    report = json.loads((out / "b-good.837.json").read_text())
    assert report["summary"]["claims"] == 1
    assert not (out / "a-bad.837.json").exists()
    assert "b-good.837: 1 claims" in result.stderr
    assert "total: 2 files, 1 claims" in result.stderr


def test_exit_codes_accepted_and_rejected(tmp_path):
    good = tmp_path / "good.837"
    good.write_text(_good_text())
    assert invoke_claimscrub("scrub", str(good), "--out", str(tmp_path / "o1"), "--as-of", AS_OF).returncode == 0
    bad = tmp_path / "unbalanced.837"
    bad.write_text(write_837([{"id": "C1", "charge": 900, "lines": [{"code": "62323", "charge": 500}]}]))
    assert invoke_claimscrub("scrub", str(bad), "--out", str(tmp_path / "o2"), "--as-of", AS_OF).returncode == 1


def test_logs_carry_no_member_ids_or_names(tmp_path):
    claims = [{"id": "C1", "member": "SECRETMBR9", "charge": 900, "lines": [{"code": "62323", "charge": 500}]}]
    path = tmp_path / "phi.837"
    path.write_text(write_837(claims))
    result = invoke_claimscrub("scrub", str(path), "--out", str(tmp_path / "o"), "--as-of", AS_OF)
    assert "SECRETMBR9" not in result.stderr and "SUBSCRIBER" not in result.stderr
    report = (tmp_path / "o" / "phi.837.json").read_text()
    assert "SECRETMBR9" not in report


def test_atomic_writer_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError):
        with atomic_writer(str(target)) as handle:
            handle.write('{"partial": ')
            raise RuntimeError("killed mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_killed_run_leaves_only_whole_reports(tmp_path):
    claims = [{"id": f"C{i}", "member": f"M{i}", "lines": [{"code": "62323", "charge": 500}]} for i in range(4000)]
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(4):
        (folder / f"batch{n}.837").write_text(write_837(claims, control=n + 1, claims_per_transaction=1000))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "claimscrub", "scrub", str(folder), "--out", str(out), "--as-of", AS_OF,
         "--no-validate"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(out.iterdir())):
        if process.poll() is not None:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    # Killed while writing (143 from our SIGTERM handler), or finished first (0).
    assert process.returncode in (0, 128 + signal.SIGTERM, -signal.SIGTERM), process.stderr.read()
    for path in out.iterdir() if out.exists() else []:
        assert not path.name.startswith("."), f"temporary file left behind: {path.name}"
        if path.suffix == ".json":
            json.loads(path.read_text())  # whole, parseable


def test_unwritable_output_folder_is_one_line_and_exit_4(tmp_path):
    path = tmp_path / "good.837"
    path.write_text(_good_text())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    result = invoke_claimscrub("scrub", str(path), "--out", str(blocker / "out"), "--as-of", AS_OF)
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.startswith("claimscrub: ")]
    assert len(lines) == 1 and "cannot write the reports" in lines[0], result.stderr
