"""The claim history across runs (issue 10), through the command as a nightly job runs it,
against both backends: an SQLite file and a real PostgreSQL server this session starts
(tests/pgserver.py). No mock database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from claimscrub.synth import write_837
from conftest import AS_OF, FIXTURES
from pgserver import PostgresServer, pg_bin

DEMO = FIXTURES / "demo"
AM = DEMO / "pain-clinic-2025-03-03-am.837"
PM = DEMO / "pain-clinic-2025-03-03-pm.837"
KEY = "test-history-key-0123456789abcdef"


@pytest.fixture(scope="session")
def postgres():
    bindir = pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (Debian package postgresql) is not installed: make test installs it")
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql)")
    server = PostgresServer(bindir)
    server.start()
    yield server
    server.stop()


#: the PostgreSQL tests share one server (a session fixture, asked for by name below, so
#: conftest's grouping cannot see it): one pytest-xdist worker runs them all
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.xdist_group("postgres"))])
def history_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite'}"
    server = request.getfixturevalue("postgres")
    return server.create_database("h" + uuid.uuid4().hex[:12])


def claimscrub(*args, key: str | None = KEY, cwd=None) -> subprocess.CompletedProcess:
    """The command as a user runs it. Runs that need a process of their own (killed, or two
    at once) start one below; the others run the same click command in this process
    (exit status, standard output and error as the process gives them), which spares the
    suite an interpreter start per run."""
    if cwd is not None:
        env = {k: v for k, v in os.environ.items() if k != "CLAIMSCRUB_HISTORY_KEY"}
        if key is not None:
            env["CLAIMSCRUB_HISTORY_KEY"] = key
        return subprocess.run([sys.executable, "-m", "claimscrub", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=cwd, timeout=300)
    from click.testing import CliRunner

    from claimscrub.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], env={"CLAIMSCRUB_HISTORY_KEY": key})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def scrub(url: str, out: Path, *inputs, key: str | None = KEY, extra=()) -> subprocess.CompletedProcess:
    return claimscrub("scrub", *inputs, "--out", out, "--as-of", AS_OF, "--no-validate", "--history", url,
                      *extra, key=key)


def findings(out: Path, name: str) -> list[tuple[str, str, str]]:
    report = json.loads((out / f"{name}.json").read_text())
    return [(c["claim_id"], f["rule"], f["message"]) for c in report["claims"] for f in c["findings"]]


def isa13(path: Path) -> str:
    return path.read_text().split("~")[0].split("*")[13]


def stats(url: str) -> str:
    result = claimscrub("history", "stats", "--history", url)
    assert result.returncode == 0, result.stderr
    return result.stdout


def count(text: str, label: str) -> int:
    return int(re.search(rf"^{label}:\s+(\d+)", text, re.M).group(1))


def patient_data(path: Path) -> set[str]:
    """Member ids, names and birth dates of a file (what the history must never hold)."""
    values = set()
    for segment in path.read_text().replace("\n", "").split("~"):
        parts = segment.split("*")
        if parts[0] == "NM1" and parts[1] in ("IL", "QC"):
            values.update(v for v in (parts[3], parts[4], parts[9] if len(parts) > 9 else "") if v)
        if parts[0] == "DMG":
            values.add(parts[2])
    return values


def engine_for(url: str):
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url)


def test_two_nights_share_a_patient_day(history_url, tmp_path):
    night1 = scrub(history_url, tmp_path / "n1", AM)
    assert night1.returncode == 1, night1.stderr
    assert "history: run 1 recorded 12 claims (4 billed, 8 rejected)" in night1.stderr
    night2 = scrub(history_url, tmp_path / "n2", PM)
    assert night2.returncode == 1, night2.stderr
    found = findings(tmp_path / "n2", PM.name)
    cross = [f for f in found if f[1] == "EPI-IMG-001"]
    assert cross and "pain-clinic-2025-03-03-am.837, billed in the run of" in cross[0][2]
    # alone, the afternoon file does not see the morning's injection
    alone = claimscrub("scrub", PM, "--out", tmp_path / "alone", "--as-of", AS_OF, "--no-validate")
    assert "EPI-IMG-001" not in {f[1] for f in findings(tmp_path / "alone", PM.name)}
    # acknowledgment control numbers continue from the history's sequence
    numbers = [isa13(tmp_path / night / f"{name}.{kind}") for night, name in (("n1", AM.name), ("n2", PM.name))
               for kind in ("999", "277")]
    assert numbers == ["000000001", "000000002", "000000003", "000000004"]
    info = stats(history_url)
    assert count(info, "runs") == 2 and count(info, "files") == 2
    assert "dates of service: 2025-03-03 to 2025-03-03" in info
    for value in patient_data(AM) | patient_data(PM):
        assert value not in info


def test_the_same_file_is_not_counted_twice(history_url, tmp_path):
    first = scrub(history_url, tmp_path / "a", AM)
    again = scrub(history_url, tmp_path / "b", AM)
    assert again.returncode == first.returncode == 1
    assert "pain-clinic-2025-03-03-am.837 was already recorded by run 1" in again.stderr
    assert "its claims are not counted again" in again.stderr
    # judged as the first time: its own lines are not duplicates of themselves
    assert findings(tmp_path / "b", AM.name) == findings(tmp_path / "a", AM.name)
    info = stats(history_url)
    assert count(info, "files") == 1
    claims = re.search(r"claims:\s+(\d+) billed.*?(\d+) rejected", info)
    assert int(claims.group(1)) + int(claims.group(2)) == 12


def test_no_patient_data_is_stored(history_url, tmp_path):
    scrub(history_url, tmp_path / "n1", AM, PM)
    engine = engine_for(history_url)
    stored = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            stored.extend(str(v) for row in conn.execute(text(f'SELECT * FROM "{table}"')) for v in row)
        patients = conn.execute(text("SELECT DISTINCT patient FROM claim")).scalars().all()
    engine.dispose()
    blob = "\n".join(stored)
    for value in patient_data(AM) | patient_data(PM):
        assert value not in blob
    assert patients and all(re.fullmatch(r"[0-9a-f]{64}", p) for p in patients)


def test_without_a_key_history_refuses_to_start(history_url, tmp_path):
    result = scrub(history_url, tmp_path / "n1", AM, key=None)
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0
    assert "CLAIMSCRUB_HISTORY_KEY" in result.stderr
    assert not (tmp_path / "n1").exists()
    scrub(history_url, tmp_path / "n2", AM)
    wrong = scrub(history_url, tmp_path / "n3", PM, key="another-key-0123456789abcdef")
    assert wrong.returncode == 3 and "not the one this history was created with" in wrong.stderr


def test_a_failed_run_leaves_nothing(history_url, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    failed = scrub(history_url, blocker / "reports", AM)
    assert failed.returncode == 4, failed.stderr
    info = stats(history_url)
    assert count(info, "runs") == 0 and count(info, "files") == 0
    assert "last acknowledgment control number: 0" in info
    # the same file is then recorded normally
    assert scrub(history_url, tmp_path / "ok", AM).returncode == 1
    assert count(stats(history_url), "runs") == 1


def _file(tmp_path: Path, name: str, claims: list[dict], control: int) -> Path:
    path = tmp_path / name
    path.write_text(write_837(claims, control=control))
    return path


def test_replacement_void_and_duplicates_across_nights(history_url, tmp_path):
    original = {"id": "C1", "lines": [{"code": "62323", "charge": 500}]}
    n1 = _file(tmp_path, "n1.837", [original, {"id": "C2", "lines": [{"code": "64483", "charge": 600}],
                                               "member": "MBR0002"}], 11)
    assert scrub(history_url, tmp_path / "o1", n1).returncode == 0
    # the same service resent: a duplicate naming the earlier claim
    n2 = _file(tmp_path, "n2.837", [{"id": "C1B", "lines": [{"code": "62323", "charge": 500}]}], 12)
    resent = scrub(history_url, tmp_path / "o2", n2)
    assert resent.returncode == 1
    (dup,) = [f for f in findings(tmp_path / "o2", "n2.837") if f[1] == "EPI-DUP-001"]
    assert dup[0] == "C1B" and "claim C1 line 1 (file n1.837, billed in the run of" in dup[2]
    # a rejected claim was not billed: resending it after the rejection is no duplicate
    again = _file(tmp_path, "n2b.837", [{"id": "C1C", "lines": [{"code": "62323", "charge": 500}]}], 13)
    assert "EPI-DUP-001" in {f[1] for f in findings_after(history_url, tmp_path, again)}
    # a void of C1 removes it; a replacement of C2 takes C2's place
    n3 = _file(tmp_path, "n3.837", [
        {"id": "C1", "frequency": "8", "payer_claim_control_number": "C1", "lines": [{"code": "62323", "charge": 500}]},
        {"id": "C2", "frequency": "7", "payer_claim_control_number": "C2", "member": "MBR0002",
         "lines": [{"code": "64483", "modifiers": ["RT"], "charge": 600}]},
        {"id": "C7", "frequency": "7", "payer_claim_control_number": "C6", "lines": [{"code": "99213", "charge": 90}]},
    ], 14)
    replaced = scrub(history_url, tmp_path / "o3", n3)
    assert "1 earlier claim replaced, 1 voided" in replaced.stderr
    rules = {(f[0], f[1]) for f in findings(tmp_path / "o3", "n3.837")}
    assert ("C7", "EPI-REF-002") in rules and ("C1", "EPI-REF-002") not in rules
    assert not any(r == "EPI-DUP-001" for _, r in rules)
    # after the void, C1's service billed anew is no duplicate; C2's replaced line (no RT)
    # is gone, the replacement's (RT) is what counts now
    n4 = _file(tmp_path, "n4.837", [
        {"id": "C9", "lines": [{"code": "62323", "charge": 500}]},
        {"id": "C10", "member": "MBR0002", "lines": [{"code": "64483", "charge": 600}]},
        {"id": "C11", "member": "MBR0002", "lines": [{"code": "64483", "modifiers": ["RT"], "charge": 600}]},
    ], 15)
    after = findings_after(history_url, tmp_path, n4)
    assert [(c, r) for c, r, _ in after if r == "EPI-DUP-001"] == [("C11", "EPI-DUP-001")]
    assert "voided" in stats(history_url) and re.search(r"\(1 replaced, 1 voided since\)", stats(history_url))


def findings_after(url: str, tmp_path: Path, path: Path):
    out = tmp_path / ("out-" + path.stem)
    scrub(url, out, path)
    return findings(out, path.name)


def test_import_then_scrub_and_purge(history_url, tmp_path):
    imported = claimscrub("history", "import", AM, "--history", history_url)
    assert imported.returncode == 0, imported.stderr
    assert "pain-clinic-2025-03-03-am.837: recorded as billed" in imported.stderr
    info = stats(history_url)
    assert re.search(r"claims:\s+12 billed", info), info
    # every claim of an imported file counts as billed: the morning file resent is all duplicates
    resent = scrub(history_url, tmp_path / "o", PM, AM)
    assert "already recorded by run 1" in resent.stderr
    # the afternoon's fluoroscopy pairs with the imported morning injection
    assert "EPI-IMG-001" in {f[1] for f in findings(tmp_path / "o", PM.name)}
    bad = tmp_path / "bad.837"
    bad.write_text("not an 837")
    refused = claimscrub("history", "import", bad, "--history", history_url)
    assert refused.returncode == 2 and "nothing was recorded" in refused.stderr
    purged = claimscrub("history", "purge", "--before", "2025-03-04", "--history", history_url)
    assert purged.returncode == 0 and "purged 16 claims" in purged.stdout, purged.stdout
    assert re.search(r"claims:\s+0 billed", stats(history_url))
    for value in patient_data(AM):
        assert value not in purged.stdout + imported.stdout + imported.stderr


def test_two_runs_at_once_do_not_double_count(history_url, tmp_path):
    """Two real processes against the same history, started together: the file both scrub
    is recorded once, the other files once each, and the acknowledgment numbers differ."""
    a = _file(tmp_path, "a.837", [{"id": f"A{i}", "member": f"MBA{i:04d}",
                                   "lines": [{"code": "62323", "charge": 500}]} for i in range(300)], 21)
    b = _file(tmp_path, "b.837", [{"id": f"B{i}", "member": f"MBB{i:04d}",
                                   "lines": [{"code": "64483", "charge": 600}]} for i in range(300)], 22)
    env = {**os.environ, "CLAIMSCRUB_HISTORY_KEY": KEY}
    procs = [subprocess.Popen([sys.executable, "-m", "claimscrub", "scrub", str(a), str(other), "--out",
                               str(tmp_path / f"out{n}"), "--as-of", AS_OF, "--no-validate", "--history",
                               history_url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n, other in enumerate((b, _file(tmp_path, "c.837", [{"id": "C0", "member": "MBC0000",
                                                                      "lines": [{"code": "99213", "charge": 90}]}], 23)))]
    results = [p.communicate(timeout=300) for p in procs]
    # neither run may judge a.837 against the other's record of it, whichever commits first
    assert [p.returncode for p in procs] == [0, 0], results
    stderr = "".join(err for _, err in results)
    assert stderr.count("a.837 was already recorded by run") == 1
    info = stats(history_url)
    assert count(info, "runs") == 2 and count(info, "files") == 3
    assert re.search(r"claims:\s+601 billed", info), info
    acks = {isa13(tmp_path / f"out{n}" / f"{name}.{kind}") for n in (0, 1)
            for name in ("a.837",) for kind in ("999", "277")}
    assert len(acks) == 4


def test_a_file_another_run_records_mid_run_is_not_its_own_prior(history_url, tmp_path, monkeypatch):
    """The other run of the test above commits the shared file at the worst moment: after
    this run has looked up which of its files are recorded, before it reads the earlier
    lines. The file is still not judged against itself (no duplicate, every claim accepted),
    and it is not recorded twice."""
    from claimscrub.history.store import History

    a = _file(tmp_path, "a.837", [{"id": f"A{i}", "member": f"MBA{i:04d}",
                                   "lines": [{"code": "62323", "charge": 500}]} for i in range(20)], 41)
    looked_up = History.file_ids
    recorded = []

    def file_ids_then_the_other_run_commits(self, content_hashes):
        ids = looked_up(self, content_hashes)
        if not recorded:
            recorded.append(subprocess.run(
                [sys.executable, "-m", "claimscrub", "history", "import", str(a), "--history", history_url],
                env={**os.environ, "CLAIMSCRUB_HISTORY_KEY": KEY}, capture_output=True, text=True, timeout=300))
        return ids

    monkeypatch.setattr(History, "file_ids", file_ids_then_the_other_run_commits)
    night = scrub(history_url, tmp_path / "o", a)
    assert recorded and recorded[0].returncode == 0, recorded and recorded[0].stderr
    assert night.returncode == 0, night.stderr
    assert findings(tmp_path / "o", "a.837") == []
    assert "a.837 was already recorded by run 1" in night.stderr
    assert re.search(r"claims:\s+20 billed", stats(history_url))


def test_a_killed_run_leaves_nothing(history_url, tmp_path):
    """SIGKILL while the reports are being written, inside the run's transaction: the
    history holds no part of the run, and the next run records normally."""
    import signal
    import time

    batch = _file(tmp_path, "big.837", [{"id": f"K{i}", "member": f"MBK{i:05d}",
                                         "lines": [{"code": "62323", "charge": 500}]} for i in range(4000)], 31)
    env = {**os.environ, "CLAIMSCRUB_HISTORY_KEY": KEY}
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "claimscrub", "scrub", str(batch), "--out", str(out),
                                "--as-of", AS_OF, "--no-validate", "--history", history_url],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "big.837.json").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    info = stats(history_url)
    assert count(info, "runs") == 0 and count(info, "files") == 0, info
    assert scrub(history_url, tmp_path / "again", AM).returncode == 1
    assert count(stats(history_url), "runs") == 1


def test_history_from_the_configuration_with_a_key_file(history_url, tmp_path):
    (tmp_path / "history.key").write_text(KEY + "\n")
    (tmp_path / "claimscrub.toml").write_text(f'history = "{history_url}"\nhistory_key_file = "history.key"\n')
    night = claimscrub("scrub", AM, "--out", tmp_path / "o", "--as-of", AS_OF, "--no-validate", key=None,
                       cwd=tmp_path)
    assert night.returncode == 1, night.stderr
    assert "history: run 1 recorded" in night.stderr
    listed = claimscrub("history", "stats", key=None, cwd=tmp_path)
    assert listed.returncode == 0 and count(listed.stdout, "runs") == 1


def test_a_pair_across_nights_lands_on_tonights_claim(history_url, tmp_path):
    """One side of a patient-day pair billed on an earlier night, the other tonight: the
    finding the edit gives the earlier line goes on tonight's line of the pair (the claim
    that can still be held back), naming the earlier claim, its file and the run."""
    day = "2025-03-03"
    sent = _file(tmp_path, "sent.837", [
        {"id": "S1", "member": "MBR0001", "date": day, "lines": [{"code": "77003", "charge": 120}]},
        {"id": "S2", "member": "MBR0002", "date": day, "lines": [{"code": "20552", "charge": 90}]},
        {"id": "S3", "member": "MBR0003", "date": day, "lines": [{"code": "20552", "units": 2, "charge": 90}]},
        {"id": "S4", "member": "MBR0004", "date": day, "lines": [{"code": "64483", "charge": 600}]},
        {"id": "S5", "member": "MBR0005", "date": day, "lines": [{"code": "64484", "charge": 300}]},
    ], 41)
    imported = claimscrub("history", "import", sent, "--history", history_url)
    assert imported.returncode == 0, imported.stderr
    tonight = _file(tmp_path, "tonight.837", [
        {"id": "T1", "member": "MBR0001", "date": day, "lines": [{"code": "64483", "charge": 600}]},
        {"id": "T2", "member": "MBR0002", "date": day, "lines": [{"code": "20553", "charge": 110}]},
        {"id": "T3", "member": "MBR0003", "date": day,
         "lines": [{"code": "99213", "charge": 90}, {"code": "20552", "modifiers": ["76"], "charge": 90}]},
        {"id": "T4", "member": "MBR0004", "date": day, "lines": [{"code": "64484", "charge": 300}]},
        {"id": "T5", "member": "MBR0005", "date": day, "lines": [{"code": "64483", "charge": 600}]},
    ], 42)
    result = scrub(history_url, tmp_path / "out", tonight)
    report = json.loads((tmp_path / "out" / "tonight.837.json").read_text())
    by_claim = {c["claim_id"]: c for c in report["claims"]}
    earlier = "(file sent.837, billed in the run of "

    def one(claim_id: str, rule: str) -> dict:
        found = [f for f in by_claim[claim_id]["findings"] if f["rule"] == rule]
        assert len(found) == 1, (claim_id, rule, by_claim[claim_id]["findings"])
        return found[0]

    # imaging: last night's 77003 is unbundled from tonight's 64483
    img = one("T1", "EPI-IMG-001")
    assert img["line"] == "1" and img["severity"] == "error"
    assert img["message"].startswith(f"77003 on claim S1 line 1 {earlier}")
    assert "imaging guidance is part of the descriptor of 64483" in img["message"]
    assert "Claim S1 was already sent: correct it first" in img["fix"] and "Remove the 77003 line" in img["fix"]
    # NCCI PTP: last night's 20552 (column 2) and tonight's 20553 (column 1)
    ptp = one("T2", "EPI-PTP-001")
    assert ptp["line"] == "1" and ptp["message"].startswith(f"20552 on claim S2 line 1 {earlier}")
    assert "20552 (column 2) is paired with 20553 (column 1" in ptp["message"]
    assert "modifier indicator 0" in ptp["message"] and "Claim S2 was already sent" in ptp["fix"]
    # MUE per day (MAI 2): last night's 2 units of 20552 already passed the limit of 1
    mue = one("T3", "EPI-MUE-001")
    assert mue["line"] == "2" and mue["message"].startswith(
        "3 units of 20552 on 2025-03-03 (2 units on line 1 of claim S3 in sent.837, billed in the run of ")
    assert ", 1 unit on line 2) exceed the Medicare MUE of 1 per day (MAI 2" in mue["message"]
    assert by_claim["T3"]["status"] == "rejected"
    # add-on and primary on different nights make a whole day: no add-on finding either way
    for claim_id in ("T4", "T5"):
        assert "EPI-ADD-001" not in {f["rule"] for f in by_claim[claim_id]["findings"]}
    assert result.returncode == 1, result.stderr
    # alone, tonight's file sees none of these
    alone = claimscrub("scrub", tonight, "--out", tmp_path / "alone", "--as-of", AS_OF, "--no-validate")
    assert alone.returncode in (0, 1), alone.stderr
    alone_rules = {(c, r) for c, r, _ in findings(tmp_path / "alone", "tonight.837")}
    assert not alone_rules & {("T1", "EPI-IMG-001"), ("T2", "EPI-PTP-001"), ("T3", "EPI-MUE-001")}


def test_a_session_billed_out_of_order_counts_against_later_sessions(history_url, tmp_path):
    """EPI-LCD-001 with tonight's date of service before sessions billed on earlier nights:
    the 12-month windows ending on those later sessions count tonight's session, and the
    finding goes on tonight's claim; a session more than a year later does not count."""
    def session(claim_id: str, member: str, day: str) -> dict:
        return {"id": claim_id, "member": member, "date": day, "lines": [{"code": "62323", "charge": 500}]}

    night1 = _file(tmp_path, "night1.837", [
        session("A1", "MBR0001", "2025-02-03"), session("A2", "MBR0001", "2025-04-07"),
        session("A3", "MBR0001", "2025-06-02"), session("A4", "MBR0001", "2025-08-04"),
        session("B1", "MBR0002", "2025-02-03"), session("B2", "MBR0002", "2025-04-07"),
        session("B3", "MBR0002", "2025-06-02"), session("B4", "MBR0002", "2026-02-02"),
    ], 51)
    first = scrub(history_url, tmp_path / "o1", night1)
    assert first.returncode == 0, first.stderr
    assert "EPI-LCD-001" not in {r for _, r, _ in findings(tmp_path / "o1", "night1.837")}
    night2 = _file(tmp_path, "night2.837", [
        session("A0", "MBR0001", "2025-01-13"), session("A5", "MBR0001", "2025-10-06"),
        session("B0", "MBR0002", "2025-01-13"),
    ], 52)
    second = scrub(history_url, tmp_path / "o2", night2)
    found = {c: m for c, r, m in findings(tmp_path / "o2", "night2.837") if r == "EPI-LCD-001"}
    assert set(found) == {"A0", "A5"}, found
    late = found["A0"]
    assert late.startswith("This lumbar/sacral ESI session of 2025-01-13 is billed after later sessions already "
                           "were: with it, this patient has 5 sessions in the 12 months ending 2025-08-04")
    for day, claim in (("2025-02-03", "A1"), ("2025-04-07", "A2"), ("2025-06-02", "A3"), ("2025-08-04", "A4")):
        assert f"{day} (62323, claim {claim} billed in the run of " in late
    # tonight's later session is the 6th of the 12 months ending on its date, counting tonight's early one
    assert found["A5"].startswith("This is the 6th lumbar/sacral ESI session for this patient in the 12 months "
                                  "ending 2025-10-06 (earlier sessions: 2025-01-13 (62323, claim A0)")
    assert second.returncode == 0, second.stderr  # a warning: the claims are forwarded


def _store_at_first_revision(url: str, path: Path) -> None:
    """A history as release 0001 of the schema left it, holding one billed claim of ``path``
    (written with that revision's columns only)."""
    from alembic import command
    from alembic.config import Config

    from claimscrub.history.importer import read_file_record

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parents[1] / "src" / "claimscrub"
                                                  / "history" / "alembic"))
    engine = engine_for(url)
    (record,) = read_file_record(KEY.encode(), str(path)).claims()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("INSERT INTO run (id, kind, started_at, completed_at, claimscrub_version, table_versions) "
                          "VALUES (1, 'import', :t, :t, '0.old', '[]')"), {"t": "2025-03-04 01:00:00+00:00"})
        conn.execute(text("INSERT INTO file (id, run_id, name, content_hash, control_numbers, identity, claims) "
                          "VALUES (1, 1, 'old.837', :h, '', :h, 1)"), {"h": "a" * 64})
        conn.execute(text(
            "INSERT INTO claim (id, run_id, file_id, claim_id, patient, frequency_code, disposition, status, "
            "payer_claim_control_number, filing_indicator, payer_id, place_of_service, charge, first_service_date) "
            "VALUES (1, 1, 1, :c, :p, '1', 'billed', 'active', '', 'MB', '00435', '11', 500, '2025-03-03')"),
            {"c": record.claim_id, "p": record.patient})
        line = record.lines[0]
        conn.execute(text(
            "INSERT INTO line (claim_pk, patient, service_date, provider_npi, active, line_number, code, modifiers, "
            "units, charge, rendering_taxonomy, billing_npi, billing_tax_id, payer_id) VALUES (1, :p, '2025-03-03', "
            ":npi, :a, '1', :code, '', 1, 500, '', :bnpi, :tax, '00435')"),
            {"p": record.patient, "npi": line.provider_npi, "a": True, "code": line.code, "bnpi": line.billing_npi,
             "tax": line.billing_tax_id})
        # the sequence of identity columns moves on past the rows written with explicit ids
        if url.startswith("postgresql"):
            for table in ("run", "file", "claim"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)"))
    engine.dispose()


def test_diagnoses_and_table_versions_after_upgrading_a_first_revision_store(history_url, tmp_path):
    """A history created at revision 0001 is upgraded in place when opened: its claims stay
    and still count as billed, new claims record their diagnoses (claim HI codes, and per
    line the codes its pointers name), and an import records the rule table versions."""
    old = _file(tmp_path, "old.837", [{"id": "OLD1", "member": "MBR0001", "date": "2025-03-03",
                                       "lines": [{"code": "62323", "charge": 500}]}], 61)
    _store_at_first_revision(history_url, old)
    sent = _file(tmp_path, "sent.837", [{
        "id": "N1", "member": "MBR0002", "date": "2025-03-03", "dx": ["M5416", "M25561", "M545"],
        "lines": [{"code": "64483", "charge": 600, "pointers": [1, 3]}, {"code": "99213", "pointers": [2], "charge": 90}],
    }], 62)
    imported = claimscrub("history", "import", sent, "--history", history_url)
    assert imported.returncode == 0, imported.stderr
    engine = engine_for(history_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        claims = dict(conn.execute(text("SELECT claim_id, diagnoses FROM claim")).all())
        lines = sorted(conn.execute(text("SELECT l.line_number, l.code, l.diagnoses FROM line l JOIN claim c "
                                         "ON c.id = l.claim_pk WHERE c.claim_id = 'N1'")).all())
        versions = conn.execute(text("SELECT kind, table_versions FROM run ORDER BY id")).all()
    engine.dispose()
    assert claims == {"OLD1": "", "N1": "M5416,M25561,M545"}
    assert [tuple(r) for r in lines] == [("1", "64483", "M5416,M545"), ("2", "99213", "M25561")]
    assert versions[0] == ("import", "[]")
    tables = {v["table"] for v in json.loads(versions[1][1])}
    assert {"ptp", "mue", "procedure_codes"} <= tables, tables
    # the claim recorded at the first revision is still a billed service: resent, it is a duplicate
    again = _file(tmp_path, "again.837", [{"id": "R1", "member": "MBR0001", "date": "2025-03-03",
                                           "lines": [{"code": "62323", "charge": 500}]}], 63)
    resent = scrub(history_url, tmp_path / "o", again)
    assert resent.returncode == 1, resent.stderr
    (dup,) = [m for c, r, m in findings(tmp_path / "o", "again.837") if r == "EPI-DUP-001"]
    assert "claim OLD1 line 1 (file old.837, billed in the run of 2025-03-04)" in dup
    # a scrub run records diagnoses and table versions the same way
    engine = engine_for(history_url)
    with engine.connect() as conn:
        scrubbed = conn.execute(text("SELECT c.diagnoses, r.table_versions FROM claim c JOIN run r ON r.id = c.run_id "
                                     "WHERE c.claim_id = 'R1'")).one()
    engine.dispose()
    assert scrubbed[0] == "M5416" and json.loads(scrubbed[1])


def test_the_schema_head_constant_is_alembics_head():
    """A history at SCHEMA_HEAD is opened without running Alembic: the constant must name
    the newest migration, or a new revision would never be applied."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from claimscrub.history import schema

    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("alembic")))
    assert ScriptDirectory.from_config(config).get_heads() == [schema.SCHEMA_HEAD]
