"""Hostile input, file names and layouts (issue 8): every case ends with its documented
exit code, one clean line on stderr, every claim accounted for, and no harm to a file that
is not an output. Everything runs the command line as a user would: in a process of its own
where the process is the point (signals, file-size limits, CPU time, inputs that could keep
a run from ending), else in the test's process (``invoke_claimscrub``: the same exit status,
standard output and error, without an interpreter start per run)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from claimscrub.synth import write_837

from conftest import AS_OF, FIXTURES, invoke_claimscrub, run_claimscrub

CLAIMS = [
    {"id": "PCN1", "member": "MBR1001", "lines": [{"code": "62323", "charge": 500}]},
    {"id": "PCN2", "member": "MBR1002", "payer": "ACME HEALTH",
     "lines": [{"code": "62323", "charge": 650}]},
    {"id": "PCN3", "member": "MBR1003", "lines": [{"code": "62323", "charge": 700}]},
]


def good_text() -> str:
    return write_837(CLAIMS)


def scrub(tmp_path: Path, *inputs, extra=(), out: Path | None = None, process: bool = False):
    """``claimscrub scrub INPUTS --out OUT --as-of AS_OF --no-validate EXTRA``, in the test's
    process unless ``process``."""
    out = out or tmp_path / "out"
    command = run_claimscrub if process else invoke_claimscrub
    result = command("scrub", *map(str, inputs), "--out", str(out), "--as-of", AS_OF, "--no-validate", *extra)
    return result, out


def assert_clean_stderr(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert "internal error" not in stderr
    for line in stderr.splitlines():
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line), repr(line)


def json_claims(path: Path) -> list[dict]:
    return json.loads(path.read_text())["claims"]


def x12_segments(path: Path) -> list[str]:
    data = path.read_bytes()
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f-\xff]", data), "acknowledgment holds a control byte"
    return [s.strip() for s in data.decode("ascii").split("~") if s.strip()]


# -- one bad claim never aborts the run ------------------------------------------------

BAD_VALUES = {
    "claim-id-nul": ("CLM*PCN2*", "CLM*PC\x00N2*", "CLM"),
    "date-soh": ("DTP*472*D8*2025", "DTP*472*D8*20\x0125", "DTP"),
    "diagnosis-vt": ("HI*ABK:M5416", "HI*ABK:M54\x0b16", "HI"),
    "payer-soh": ("NM1*PR*2*ACME HEALTH", "NM1*PR*2*ACME\x01HEALTH", "NM1"),
    "charge-nul": ("CLM*PCN2*650", "CLM*PCN2*65\x000", "CLM"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_control_character_rejects_its_claim_not_the_run(case, tmp_path):
    old, new, seg_id = BAD_VALUES[case]
    text = good_text()
    # put the bad value in the second claim only (the first DTP/HI after CLM*PCN2)
    head, tail = text.split("CLM*PCN2*", 1)
    tail = "CLM*PCN2*" + tail
    if old in tail:
        bad = head + tail.replace(old, new, 1)
    else:  # the payer (2010BB) sits in the claim's subscriber loop, before its CLM
        assert old in head
        before, after = head.rsplit(old, 1)
        bad = before + new + after + tail
    (tmp_path / "bad.837").write_bytes(bad.encode("utf-8"))
    (tmp_path / "good.837").write_text(text)
    result, out = scrub(tmp_path, tmp_path / "bad.837", tmp_path / "good.837")
    assert result.returncode == 1, result.stderr
    assert_clean_stderr(result.stderr)
    # the other file's reports are all there
    for suffix in (".json", ".html", ".999", ".277"):
        assert (out / f"good.837{suffix}").is_file()
        assert (out / f"bad.837{suffix}").is_file()
    claims = json_claims(out / "bad.837.json")
    assert len(claims) == 3
    second = claims[1]
    assert second["status"] == "rejected"
    ig = [f for f in second["findings"] if f["rule"] == "X12-IG-001"]
    assert ig and seg_id in ig[0]["message"] and "control character" in ig[0]["message"]
    assert "\x00" not in ig[0]["message"] and "\x01" not in ig[0]["message"]
    # the HTML shows the byte as an escape; the 999 rejects the set; the 277CA answers all
    html = (out / "bad.837.html").read_text()
    assert re.search(r"\\x0[01b]", html)
    segments_999 = x12_segments(out / "bad.837.999")
    assert "IK5*R" in "\n".join(segments_999)
    assert any(s.startswith("IK4*") and "*6" in s for s in segments_999)
    segments_277 = x12_segments(out / "bad.837.277")
    assert sum(1 for s in segments_277 if s.startswith("TRN*2*")) == 1 + 3


def test_units_with_a_huge_exponent_reject_the_claim(tmp_path):
    text = good_text().replace("SV1*HC:62323*650*UN*1*", "SV1*HC:62323*650*UN*1E+999999999*", 1)
    assert "1E+999999999" in text
    (tmp_path / "units.837").write_text(text)
    result, out = scrub(tmp_path, tmp_path / "units.837")
    assert result.returncode == 1, result.stderr
    assert_clean_stderr(result.stderr)
    claims = json_claims(out / "units.837.json")
    assert [c["status"] for c in claims] == ["accepted", "rejected", "accepted"]
    assert any(f["rule"] == "EPI-SYN-002" for f in claims[1]["findings"])


def test_control_character_and_bad_byte_in_a_file_name(tmp_path):
    name = os.fsdecode(b"clinic\x01batch\xff.837")
    (tmp_path / name).write_text(good_text())
    result, out = scrub(tmp_path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert_clean_stderr(result.stderr)
    assert "clinic\\x01batch\\xff.837: 3 claims" in result.stderr
    report = out / (name + ".json")
    assert json.loads(report.read_text())["input"] == "clinic\\x01batch\\xff.837"
    assert "clinic\\x01batch\\xff.837" in (out / (name + ".html")).read_text()


def test_input_name_of_255_bytes(tmp_path):
    name = "n" * 251 + ".837"
    (tmp_path / name).write_text(good_text())
    result, out = scrub(tmp_path, tmp_path / name, extra=("--accepted-out", str(tmp_path / "acc")))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "acc" / name).is_file()
    assert len(list(out.glob("n*~*.json"))) == 1 and len(list(out.iterdir())) == 5  # and index.html
    assert not list(tmp_path.glob("out/.*"))  # no temporary left behind


# -- no claim vanishes -----------------------------------------------------------------


def test_corrupted_clm_id_is_never_a_clean_file(tmp_path):
    one = write_837(CLAIMS[:1]).replace("CLM*PCN1*", "CLX*PCN1*")
    (tmp_path / "clx.837").write_text(one)
    result = invoke_claimscrub("scrub", str(tmp_path / "clx.837"), "--out", str(tmp_path / "out"),
                               "--as-of", AS_OF)
    assert result.returncode == 1, result.stderr
    assert_clean_stderr(result.stderr)
    assert "no readable claim" in result.stderr
    assert any(s.startswith("IK5*R") for s in x12_segments(tmp_path / "out" / "clx.837.999"))


def test_transaction_set_rejected_in_the_999_is_never_exit_0(tmp_path):
    # two claims; the second's CLM is corrupted: the 999 rejects the set (IK5 R)
    text = write_837(CLAIMS[:2]).replace("CLM*PCN2*", "CLX*PCN2*")
    (tmp_path / "clx2.837").write_text(text)
    result = invoke_claimscrub("scrub", str(tmp_path / "clx2.837"), "--out", str(tmp_path / "out"),
                               "--as-of", AS_OF)
    assert result.returncode == 1, result.stderr
    ack = x12_segments(tmp_path / "out" / "clx2.837.999")
    assert any(s.startswith("IK5*R") for s in ack)
    claims = json_claims(tmp_path / "out" / "clx2.837.json")
    assert claims and all(c["status"] == "rejected" for c in claims)


def test_transaction_set_without_claims_beside_a_good_one(tmp_path):
    good = write_837(CLAIMS[:1])
    empty = write_837(CLAIMS[1:2]).replace("CLM*PCN2*", "CLX*PCN2*")
    (tmp_path / "good.837").write_text(good)
    (tmp_path / "empty.837").write_text(empty)
    result, out = scrub(tmp_path, tmp_path / "good.837", tmp_path / "empty.837")
    assert result.returncode == 1, result.stderr
    assert_clean_stderr(result.stderr)
    errors = [l for l in result.stderr.splitlines() if l.startswith("claimscrub: ")]
    assert len(errors) == 1 and "empty.837" in errors[0] and "no readable claim" in errors[0]
    assert (out / "good.837.json").is_file()
    # the empty file still gets its 999 (the sender learns why) and a JSON of no claims
    assert json_claims(out / "empty.837.json") == []
    assert json.loads((out / "empty.837.json").read_text())["summary"][
        "transaction_sets_without_claims"][0]["control_number"] == "0001"
    assert (out / "empty.837.999").is_file()


# -- inputs never overwritten or mixed up ----------------------------------------------


def test_accepted_out_through_a_link_to_the_input_folder(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    original = good_text()
    (inputs / "x.837").write_text(original)
    (tmp_path / "link").symlink_to(inputs)
    result, _ = scrub(tmp_path, inputs, extra=("--accepted-out", str(tmp_path / "link")))
    assert result.returncode == 3
    assert_clean_stderr(result.stderr)
    assert "would overwrite the input" in result.stderr
    assert (inputs / "x.837").read_text() == original


def test_same_base_name_in_three_folders(tmp_path):
    demo = FIXTURES / "demo"
    am, pm = sorted(demo.iterdir())
    for folder, source, name in (("d1", am, "x.837"), ("d2", pm, "x.837"), ("d3", am, "x.837.2")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(source.read_bytes())
    result, out = scrub(tmp_path, tmp_path / "d1", tmp_path / "d2", tmp_path / "d3",
                        extra=("--accepted-out", str(tmp_path / "acc")))
    assert result.returncode == 1, result.stderr
    reports = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert reports == ["d1/x.837.json", "d2/x.837.json", "x.837.2.json"]
    assert json.loads((out / "d1/x.837.json").read_text())["input"] == "d1/x.837"
    assert len(json_claims(out / "d1/x.837.json")) == 12
    assert len(json_claims(out / "d2/x.837.json")) == 4
    assert len(json_claims(out / "x.837.2.json")) == 12
    accepted = sorted(p.relative_to(tmp_path / "acc").as_posix() for p in (tmp_path / "acc").rglob("*") if p.is_file())
    # each input's accepted claims under its own name (a copy may have none: duplicates)
    assert accepted == [name for name in ("d1/x.837", "d2/x.837", "x.837.2") if any(
        c["status"] == "accepted" for c in json_claims(out / f"{name}.json"))]
    assert "d1/x.837" in accepted and "d2/x.837" in accepted
    # patient-day findings stay with the file of the claim they are about: the afternoon
    # file's split-session claims point at the morning file by its own name
    pm_claims = json_claims(out / "d2/x.837.json")
    assert any(f["rule"] == "EPI-SPLIT-001" for c in pm_claims for f in c["findings"])


def test_out_inside_the_input_folder_is_not_scrubbed_next_time(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "x.837").write_text(good_text())
    for _ in range(2):
        result, _ = scrub(tmp_path, inputs, out=inputs / "reports")
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("x.837: ") == 1, result.stderr
    assert sorted(p.name for p in (inputs / "reports").iterdir()) == [
        "index.html", "x.837.277", "x.837.999", "x.837.html", "x.837.json"]


def test_accepted_837_forwards_the_bytes_that_were_scrubbed_even_if_the_input_changes(tmp_path, monkeypatch):
    """The accepted-claims 837 is built from the segments that were scrubbed, not by
    reading the input again: an input replaced between reading and writing changes
    nothing in what is forwarded (the replacement was never judged)."""
    from click.testing import CliRunner

    import claimscrub.cli as cli

    path = tmp_path / "x.837"
    path.write_text(good_text())
    import claimscrub.report.accepted837 as accepted837

    args = ["scrub", str(path), "--as-of", AS_OF, "--no-validate"]
    first = CliRunner().invoke(cli.main, args + ["--out", str(tmp_path / "out1"),
                                                 "--accepted-out", str(tmp_path / "acc1")])
    assert first.exit_code == 0, first.output
    real_write = accepted837.write_accepted_837

    def replace_input_then_write(run, file, out_dir):
        path.write_text(write_837(CLAIMS[:1]).replace("PCN1", "ZZZ9"))  # never scrubbed
        return real_write(run, file, out_dir)

    monkeypatch.setattr(accepted837, "write_accepted_837", replace_input_then_write)
    second = CliRunner().invoke(cli.main, args + ["--out", str(tmp_path / "out2"),
                                                  "--accepted-out", str(tmp_path / "acc2")])
    assert second.exit_code == 0, second.output
    forwarded = (tmp_path / "acc2" / "x.837").read_text()
    assert "ZZZ9" not in forwarded
    assert forwarded == (tmp_path / "acc1" / "x.837").read_text()


# -- a run always ends -----------------------------------------------------------------


def test_fifo_in_an_input_folder_is_skipped(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "x.837").write_text(good_text())
    os.mkfifo(inputs / "pipe.837")
    result, out = scrub(tmp_path, inputs, process=True)  # a process: a blocked read would never end
    assert result.returncode == 2, result.stderr
    assert_clean_stderr(result.stderr)
    assert "pipe.837: skipped: a FIFO" in result.stderr
    assert (out / "x.837.json").is_file()


def test_unterminated_file_is_unusable_without_holding_it(tmp_path):
    header = good_text().split("~", 1)[0] + "~"
    body = ("GS*HC*X*Y*20250303*1200*1*X*005010X222A1*" + "A" * 1000) * 18_000
    path = tmp_path / "no-terminator.837"
    path.write_text(header + body)
    result = run_claimscrub("scrub", str(path), "--out", str(tmp_path / "out"), "--as-of", AS_OF,
                            "--no-validate")
    assert result.returncode == 2, result.stderr
    assert_clean_stderr(result.stderr)
    assert "no segment terminator" in result.stderr


def _cpu_seconds_of(args: list[str]) -> tuple[float, "subprocess.CompletedProcess"]:
    """Run the command; the CPU time it used (user + system), not wall time, so a busy
    machine does not make the test flaky."""
    import resource
    import subprocess
    import sys

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-m", "claimscrub", *args], capture_output=True,
                            text=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result


def test_time_is_linear_in_the_lines_of_one_claim(tmp_path):
    """Every line has an error (units 0), so the 277CA answers each line and the HTML puts
    a finding beside each: 4x the lines may cost about 4x the time, not 16x. (Structural
    edits only: the billing edits' own cost is theirs.)"""
    config = tmp_path / "structural.toml"
    config.write_text('select = ["EPI-BAL", "EPI-SYN", "X12"]\n')
    cpu = {}
    for count in (2_500, 10_000):
        path = tmp_path / f"lines{count}.837"
        path.write_text(write_837([{"id": "BIG1", "lines": [
            {"code": "62323", "charge": 100, "units": 0} for _ in range(count)]}]))
        cpu[count], result = _cpu_seconds_of(
            ["scrub", str(path), "--out", str(tmp_path / "out"), "--as-of", AS_OF,
             "--no-validate", "--config", str(config)])
        assert result.returncode == 1, result.stderr
        ack = (tmp_path / "out" / f"lines{count}.837.277").read_text()
        assert ack.count("SVC*") == count
    assert cpu[10_000] < 7 * cpu[2_500], cpu


# -- signals and faults ----------------------------------------------------------------


def _big_batch(tmp_path: Path, claims: int = 3000) -> Path:
    path = tmp_path / "batch.837"
    path.write_text(write_837([
        {"id": f"P{i}", "member": f"M{i}", "lines": [{"code": "62323", "charge": 500}]}
        for i in range(claims)]))
    return path


def _pyx12_pool_args() -> list[str]:
    """Options that make the run validate with pyx12 in worker processes (``--validator
    pyx12`` where the command has a choice of validators; the compiled one needs none)."""
    from claimscrub.cli import scrub as command

    choice = any(param.name == "validator_kind" for param in command.params)
    return ["--jobs", "2"] + (["--validator", "pyx12"] if choice else [])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_signal_leaves_no_worker_and_no_claim_store(signum, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    batch = _big_batch(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "claimscrub", "scrub", str(batch), "--out", str(tmp_path / "out"),
         "--as-of", AS_OF, *_pyx12_pool_args(), "--work-dir", str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2 and process.poll() is None:
        time.sleep(0.2)
        workers = _children(process.pid)
    assert len(workers) == 2, "the validator pool never started"
    assert len(list(work.iterdir())) == 1  # the run's private store
    process.send_signal(getattr(signal, signum))
    _, stderr = process.communicate(timeout=60)  # returns: no worker holds the pipes open
    assert process.returncode == -signal.SIGKILL if signum == "SIGKILL" else 128 + getattr(signal, signum)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    if signum == "SIGKILL":
        # left behind by kill -9; the next run in the same work folder removes it
        assert len(list(work.iterdir())) == 1
        result = run_claimscrub("scrub", str(FIXTURES / "demo"), "--out", str(tmp_path / "o2"),
                                "--as-of", AS_OF, "--no-validate", "--work-dir", str(work))
        assert result.returncode == 1
    else:
        assert stderr.decode().strip() == f"claimscrub: stopped by {signum}; no reports were left half-written"
    assert list(work.iterdir()) == []


def test_store_folder_is_private(tmp_path):
    from claimscrub.store import ClaimStore

    work = tmp_path / "work"
    work.mkdir()
    with ClaimStore(str(work)) as store:
        folder = Path(store.path).parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not folder.exists()


def test_full_work_folder_is_one_line_exit_4(tmp_path):
    import resource
    import subprocess
    import sys

    batch = _big_batch(tmp_path)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "claimscrub", "scrub", str(batch), "--out", str(tmp_path / "out"),
         "--as-of", AS_OF, "--no-validate", "--work-dir", str(work)],
        capture_output=True, text=True, preexec_fn=small_files, timeout=300)
    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--work-dir" in lines[0] and "OperationalError" not in lines[0], lines
    assert list(work.iterdir()) == []


def test_full_output_disk_is_one_line_exit_4(tmp_path):
    import resource
    import subprocess
    import sys

    batch = tmp_path / "flagged.837"  # units 0: every claim is flagged, the HTML is large
    batch.write_text(write_837([
        {"id": f"P{i}", "member": f"M{i}", "lines": [{"code": "62323", "charge": 500, "units": 0}]}
        for i in range(300)]))

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))  # the JSON fits (about 400 kB)

    result = subprocess.run(
        [sys.executable, "-m", "claimscrub", "scrub", str(batch), "--out", str(tmp_path / "out"),
         "--as-of", AS_OF, "--no-validate"],
        capture_output=True, text=True, preexec_fn=small_files, timeout=300)
    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("claimscrub: cannot write the reports"), lines
    assert "flagged.837.html" in lines[0]
    assert not list((tmp_path / "out").glob(".*"))


# -- configuration and logs ------------------------------------------------------------

BAD_CONFIGS = {
    "deep.toml": ("x = " + "[" * 5000 + "]" * 5000 + "\n").encode(),
    "latin1.toml": 'ignore = ["EPI-LCD"]  # r\xe9sum\xe9\n'.encode("latin-1"),
    "huge.toml": b'ignore = ["' + b"A" * (50 << 20) + b'"]\n',
    "huge-value.toml": b'select = ["' + b"B" * 500_000 + b'"]\n',
    "control.toml": b'ignore = ["EPI-LCD\\u0000\\n\\u001b[31m"]\n',
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_configuration_is_one_short_line_exit_3(name, tmp_path):
    config = tmp_path / name
    config.write_bytes(BAD_CONFIGS[name])
    (tmp_path / "x.837").write_text(good_text())
    result, _ = scrub(tmp_path, tmp_path / "x.837", extra=("--config", str(config)))
    assert result.returncode == 3, result.stderr[:500]
    assert_clean_stderr(result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"claimscrub: {config}"), lines
    assert len(lines[0]) < 400 + len(str(config))


@pytest.mark.parametrize("pattern", ["X12", "X12-IG-001", "X12-ENV"])
def test_syntax_rules_cannot_be_ignored(pattern, tmp_path):
    config = tmp_path / "claimscrub.toml"
    config.write_text(f'ignore = ["{pattern}"]\n')
    broken = good_text().replace("SE*", "SE*9", 1)  # SE01 lies
    (tmp_path / "x.837").write_text(broken)
    result, _ = scrub(tmp_path, tmp_path / "x.837", extra=("--config", str(config)))
    assert result.returncode == 3
    assert "cannot be ignored" in result.stderr


def test_selecting_other_rules_keeps_the_syntax_rules(tmp_path):
    config = tmp_path / "claimscrub.toml"
    config.write_text('select = ["EPI-BAL"]\n')
    broken = good_text().replace("SE*", "SE*9", 1)
    (tmp_path / "x.837").write_text(broken)
    result, out = scrub(tmp_path, tmp_path / "x.837", extra=("--config", str(config)))
    assert result.returncode == 1, result.stderr
    assert f"configuration: {config}" in result.stderr.splitlines()
    report = json.loads((out / "x.837.json").read_text())
    assert report["config_file"] == str(config)
    assert all(c["status"] == "rejected" for c in report["claims"])
    assert all(any(f["rule"] == "X12-ENV-001" for f in c["findings"]) for c in report["claims"])


def test_error_line_masks_a_stray_segment(tmp_path):
    """A segment outside a transaction set, with the wrong element separator, would be one
    long "identifier" holding the member's name and id: the line describes it instead."""
    text = good_text()
    stray = "NM1|IL|1|DOE|JANE||||MI|SECRETID9\x1b[2J\r\nX"
    text = text.replace("GE*", stray + "~GE*", 1)
    (tmp_path / "x.837").write_text(text)
    result, _ = scrub(tmp_path, tmp_path / "x.837")
    assert result.returncode == 2
    assert_clean_stderr(result.stderr)
    assert "DOE" not in result.stderr and "SECRETID9" not in result.stderr
    assert "x.837: segment " in result.stderr


def test_html_masks_ambulance_pick_up_and_drop_off(tmp_path):
    text = good_text().replace(
        "LX*1~",
        "NM1*PW*2~\nN3*12 HOMESTEAD LANE~\nN4*SMALLTOWN*CO*80612~\n"
        "NM1*45*2~\nN3*900 HOSPITAL DRIVE~\nN4*BIGCITY*WY*82009~\nLX*1~", 1)
    (tmp_path / "amb.837").write_text(text.replace("SV1*HC:62323*500*UN*1*", "SV1*HC:62323*500*UN*0*", 1))
    result, out = scrub(tmp_path, tmp_path / "amb.837")
    assert result.returncode == 1, result.stderr
    html = (out / "amb.837.html").read_text()
    assert "NM1" in html and "CLM" in html
    for value in ("HOMESTEAD", "SMALLTOWN", "HOSPITAL DRIVE", "BIGCITY", "80612"):
        assert value not in html


def test_line_break_terminated_file_with_crlf(tmp_path):
    """Segments terminated by a line break, CRLF style: the CR terminates, the LF is only a
    line break (no segment starts with it, no element ends with a stray CR)."""
    text = good_text().replace("~\n", "\n").replace("\n", "\r\n")
    (tmp_path / "crlf.837").write_bytes(text.encode())
    result, out = scrub(tmp_path, tmp_path / "crlf.837")
    assert result.returncode == 0, result.stderr
    assert len(json_claims(out / "crlf.837.json")) == 3
