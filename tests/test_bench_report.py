"""The tables of `make bench` (benchmarks/report.py) on a results dict of made-up runs, and
the benchmark's batches (benchmarks/run.py): what the lead pastes into a note must say what
was measured. Nothing here runs a benchmark."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("claimscrub_bench_run", ROOT / "benchmarks" / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)
report = bench_run.report  # benchmarks/report.py, as the benchmark imports it


def _run(seconds, segments, rss, pss=None, load=0.3, others=0.05, exit_code=1, cpu=None):
    return {
        "seconds": seconds, "segments": segments, "segments_per_second": round(segments / seconds),
        "peak_rss_mib": rss, "peak_pss_mib": pss if pss is not None else rss - 10,
        "cpu_user_seconds": cpu if cpu is not None else seconds, "cpu_system_seconds": 0.5,
        "load_average_at_start": load, "others_cpu_cores": others, "exit_code": exit_code, "stderr_tail": [],
    }


def _results():
    seg = 800_000
    scaling = []
    for claims, segments, memory in ((5_000, 80_000, 100.0), (50_000, seg, 120.0), (500_000, 8_000_000, 126.0)):
        scaling.append({"claims": claims, "jobs": 1, **_run(segments / 10_000, segments, memory)})
        scaling.append({"claims": claims, "jobs": 2, **_run(segments / 18_000, segments, 2 * memory)})
    return {
        "meta": {"date": "2026-12-01 07:00 UTC", "command": "python benchmarks/run.py", "cores": 2},
        "files": {"bench-50000.837": {"claims": 50_000, "segments": seg, "transaction_sets": 50, "bytes": 17 << 20}},
        "throughput": {"claims": 50_000, "file": "bench-50000.837", "runs": {
            "x12valid": {**_run(100.0, seg, 30.0), "verdict": "OK", "completed": True},
            "compiled": _run(5.0, seg, 120.0, load=2.4),  # 160,000 segments/s: 20x
            "pyx12": _run(160.0, seg, 300.0, exit_code=2),
            "no_validate": _run(4.0, seg, 110.0),
        }},
        "scaling": {"runs": scaling},
        "sets": {"claims": 50_000, "runs": [
            {"transaction_sets": 1, "claims_per_set": 50_000, **_run(6.0, seg, 200.0)},
            {"transaction_sets": 10, "claims_per_set": 5_000, **_run(5.0, seg, 125.0)},
        ]},
    }


def test_tables_give_the_ratios_the_targets_and_the_warnings():
    results = report.derive(_results())
    text = report.markdown(results)

    throughput = results["throughput"]
    assert throughput["x_pyx12"] == 20.0
    assert throughput["x_pyx12_target_met"] is True
    assert "**Full scrub (compiled guide) = 20.00x pyx12 `x12valid`**" in text
    assert throughput["validation_share_of_cpu"] == 0.182  # (5.5 - 4.5) / 5.5 CPU seconds

    scaling = results["scaling"]
    assert scaling["speedup"] == {"5000:jobs2": 1.8, "50000:jobs2": 1.8, "500000:jobs2": 1.8}
    assert ("Speed-up of `--jobs 2` over `--jobs 1` (wall time): 5,000 claims 1.80x, 50,000 claims 1.80x, "
            "500,000 claims 1.80x (target 1.7x: met at 5,000, 50,000, 500,000 claims)") in text
    assert scaling["memory_ratio_sizes"] == [500_000, 50_000]
    assert scaling["memory_ratio"]["jobs1"] == {"rss": 1.05, "pss": 1.055}
    assert scaling["memory_target_met"] is True
    assert "Peak memory 500,000 / 50,000 claims: `--jobs 1` RSS 1.050x, PSS 1.055x" in text

    sets = results["sets"]
    assert sets["memory_ratio"]["rss"] == 1.6
    assert sets["memory_target_met"] is False
    assert "Peak memory 1 set / 10 sets: RSS 1.600x" in text and "not met" in text

    # the one run started at a load average above 1.5 is flagged, and only it
    rows = [line for line in text.splitlines() if line.startswith("| full scrub")]
    assert rows[0].count(" ! |") == 1 and "2.40 / 0.05 !" in rows[0]
    assert sum(line.count(" ! |") for line in text.splitlines()) == 1
    assert "the machine was busy" in text
    # a run that failed (exit 2 or more) says so; a scrub that rejected claims (exit 1) does not
    assert "| 2 FAILED |" in rows[1] and "FAILED" not in rows[0]
    assert "**FAILED**" in text
    assert "| 1 (OK) |" in next(line for line in text.splitlines() if line.startswith("| pyx12 `x12valid`"))


def test_a_quiet_run_has_no_warning_and_a_part_left_out_has_no_table():
    results = _results()
    results["throughput"]["runs"]["compiled"]["load_average_at_start"] = 0.2
    results["throughput"]["runs"]["pyx12"]["exit_code"] = 1
    del results["sets"]
    results["throughput"]["runs"]["no_validate"]["others_cpu_cores"] = 0.3  # busy by others' CPU
    small_jobs2 = results["scaling"]["runs"][1]
    small_jobs2["seconds"] = results["scaling"]["runs"][0]["seconds"]  # no speed-up at 5,000 claims
    text = report.markdown(report.derive(results))
    assert "in one transaction set" not in text and "FAILED" not in text
    assert "5,000 claims 1.00x, 50,000 claims 1.80x, 500,000 claims 1.80x (target 1.7x: met at 50,000, " in text
    assert results["scaling"]["speedup_target_met"] is False

    # x12valid exits 1 when it has validated the file; without its verdict it did not finish
    results["throughput"]["runs"]["x12valid"].update(exit_code=0, verdict=None, completed=False)
    text = report.markdown(report.derive(results))
    assert "| 0 FAILED |" in next(line for line in text.splitlines() if line.startswith("| pyx12 `x12valid`"))
    results["throughput"]["runs"]["x12valid"]["exit_code"] = 1
    assert "| 1 FAILED |" in report.markdown(report.derive(results))
    results["throughput"]["runs"]["x12valid"].update(exit_code=1, verdict="OK", completed=True)
    text = report.markdown(report.derive(results))
    assert [line for line in text.splitlines() if " ! |" in line] == [
        line for line in text.splitlines() if line.startswith("| scrub `--no-validate`")]


def test_the_batches_hold_the_same_claims_in_the_sets_asked_for(tmp_path):
    one, ten = tmp_path / "one.837", tmp_path / "ten.837"
    bench_run.generate(40, one, claims_per_transaction=40)
    bench_run.generate(40, ten, claims_per_transaction=4)
    described = bench_run.describe(one, 40), bench_run.describe(ten, 40)
    assert [d["transaction_sets"] for d in described] == [1, 10]
    for path, info in zip((one, ten), described):
        text = path.read_text()
        assert info["segments"] == text.count("~") and info["transaction_sets"] == text.count("\nST*")
    claims = [[s for s in p.read_text().split("~\n") if s.startswith("CLM*")] for p in (one, ten)]
    assert len(claims[0]) == 40 and claims[0] == claims[1]
