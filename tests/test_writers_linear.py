"""Claims of thousands of lines through every writer (JSON, HTML, 999, 277CA, the
accepted-claims 837): each writer is one pass, linear in lines, so a claim six times longer
takes about six times as long to write, never the square of it (a 4,000-line claim once
took two minutes in the 277CA).

Each line has its own date of service, so the patient-day edits see one line a day and the
time measured is the writers'. One claim bills a code that is not valid on every line (an
error on each line: a 2220D loop per line in the 277CA); the other is clean and is
forwarded whole in the accepted-claims 837.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import claimscrub
from claimscrub.synth import write_837

from conftest import AS_OF


def _batch(lines: int) -> str:
    first = date(2021, 1, 4)  # 1,500 days later is still before AS_OF
    days = [(first + timedelta(days=i)).isoformat() for i in range(lines)]
    bad = [{"code": "0001X", "charge": 100, "date": day} for day in days]
    good = [{"code": "99213", "charge": 120, "date": day} for day in days]
    return write_837([{"id": "BAD", "member": "MBR1", "lines": bad},
                      {"id": "GOOD", "member": "MBR2", "lines": good}])


def _write_all(tmp_path, lines: int) -> tuple[float, str, str]:
    """Seconds the writers take on the batch of ``lines`` lines a claim, the 277CA and the
    accepted-claims 837 written."""
    path = tmp_path / f"many-{lines}.837"
    path.write_text(_batch(lines))
    out, accepted = tmp_path / f"out-{lines}", tmp_path / f"accepted-{lines}"
    with claimscrub.scrub(path, as_of=AS_OF, config=False, validate=False) as result:
        start = time.perf_counter()
        result.write(str(out), emit=["json", "html", "999", "277", "accepted"], accepted_dir=str(accepted))
        elapsed = time.perf_counter() - start
    return elapsed, (out / (path.name + ".277")).read_text(), (accepted / path.name).read_text()


def test_thousands_of_lines_are_written_in_one_pass(tmp_path):
    small_time, _, _ = _write_all(tmp_path, 250)
    large_time, ack, forwarded = _write_all(tmp_path, 1500)
    # what the writers wrote: a rejected line per line of BAD, every line of GOOD forwarded
    assert ack.count("SVC*HC:0001X") == 1500
    assert forwarded.count("SV1*HC:99213") == 1500 and "0001X" not in forwarded
    # six times the lines: about six times the time (the square would be 36 times)
    assert large_time < 15 * max(small_time, 0.05), (small_time, large_time)
    assert large_time < 30, large_time


def _sqlite_steps(tmp_path, monkeypatch, claims: int, per_set: int) -> int:
    """The SQLite virtual-machine instructions (in hundreds) the run's claim store executes
    to scrub a batch of ``claims`` claims in sets of ``per_set`` and write every output: a
    measure of the work done in the store that does not depend on the machine's load."""
    from claimscrub.store import ClaimStore

    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    opened = ClaimStore.__init__

    def counting(self, *args, **kwargs):
        opened(self, *args, **kwargs)
        self.db.set_progress_handler(count, 100)

    monkeypatch.setattr(ClaimStore, "__init__", counting)
    specs = [{"id": f"C{i:05d}", "member": f"MBR{i // 2:05d}",
              "lines": [{"code": "64483", "charge": 400, "date": "2024-03-04"},
                        {"code": "77003", "charge": 90, "date": "2024-03-04"}]}
             for i in range(claims)]
    path = tmp_path / f"sets-{claims}.837"
    path.write_text(write_837(specs, claims_per_transaction=per_set))
    with claimscrub.scrub(path, as_of=AS_OF, config=False, jobs=1) as result:
        result.write(str(tmp_path / f"out-{claims}"), emit=["json", "html", "999", "277", "accepted"],
                     accepted_dir=str(tmp_path / f"accepted-{claims}"))
    return steps[0]


def test_many_transaction_sets_cost_their_claims_not_the_square(tmp_path, monkeypatch):
    # four times the claims in four times the sets: about four times the store's work.
    # Reading a set's claims by walking the whole file's once cost the claims times the
    # sets (10 times here), and a 500,000-claim nightly file twice as long per claim.
    small = _sqlite_steps(tmp_path, monkeypatch, 200, 5)
    large = _sqlite_steps(tmp_path, monkeypatch, 800, 5)
    assert large < 5 * small, (small, large)
