"""Benchmark: claimscrub against pyx12 on the same synthetic 837P batch, in one run.

    make bench                         # 50,000 claims
    python benchmarks/run.py --claims 5000 --jobs 2

Generates a batch of interventional-pain claims (clean ones and the common errors, a
quarter of them under dependents), then times, each as its own process:

* ``claimscrub scrub --validator compiled`` (implementation-guide validation by the guide
  compiled from pyx12's map);
* ``claimscrub scrub --jobs 1`` and ``--jobs 2`` (``--scaling N``: up to ``--jobs N``), back
  to back on the same file: the run partitioned by patient over worker processes against
  one process, wall time and the CPU (user + system) of the process and its workers;
* ``claimscrub scrub --no-validate`` (reading, claims, edits, patient-days, reports);
* ``claimscrub scrub --validator pyx12 --jobs N`` (validation by pyx12 itself);
* pyx12's ``x12valid`` on the same file;
* ``claimscrub scrub --no-validate --history`` against an SQLite claim history already
  holding ``--history-lines`` billed lines (default 1,000,000; benchmarks/history_bench.py),
  which gives the time history adds per claim and the history's size on disk per line.

Validation alone, compiled guide against pyx12 in one process: benchmarks/validators.py.

For each it reports wall time, segments per second, peak memory (the summed resident set
of the process and its children, sampled every 20 ms), CPU seconds of the process and its
children, and the load average when it started (a loaded machine makes wall times long). Results also go to
benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from claimscrub.synth import write_837

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

SCENARIOS = [
    # (weight, lines, dx)
    (30, [{"code": "62323", "charge": 650}], ["M5416"]),
    (15, [{"code": "99214", "modifiers": ["25"], "charge": 180, "pointers": [2]},
          {"code": "62323", "charge": 650, "pointers": [1]}], ["M5417", "M1711"]),
    (10, [{"code": "62321", "charge": 600}], ["M5412"]),
    (10, [{"code": "64483", "modifiers": ["RT"], "charge": 700},
          {"code": "64484", "modifiers": ["RT"], "charge": 300}], ["M5417"]),
    (10, [{"code": "99213", "charge": 120}], ["M5416"]),
    (5, [{"code": "62323", "charge": 650}, {"code": "77003", "charge": 120}], ["M5416"]),
    (5, [{"code": "62322", "charge": 500}, {"code": "77003", "charge": 120}], ["M4807"]),
    (5, [{"code": "99213", "charge": 120}, {"code": "62321", "charge": 600}], ["M5412"]),
    (5, [{"code": "62323", "charge": 650}], ["M545"]),
    (5, [{"code": "62323", "units": 2, "charge": 1300}], ["M5416"]),
]


def generate(count: int, path: Path, seed: int = 7) -> None:
    rng = random.Random(seed)
    weights = [w for w, _, _ in SCENARIOS]
    claims = []
    for i in range(count):
        _, lines, dx = rng.choices(SCENARIOS, weights)[0]
        claim = {
            "id": f"B{i:08d}",
            "member": f"MBR{rng.randrange(count // 3 + 1):07d}",
            "date": f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "dx": dx,
            "lines": lines,
        }
        if rng.random() < 0.25:
            claim["patient"] = {"dependent": True, "first": f"DEP{rng.randrange(3)}"}
        claims.append(claim)
    path.write_text(write_837(claims, claims_per_transaction=1000))


def _tree_rss_kib(pid: int) -> int:
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(c) for c in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of the process and its children: pages shared by forked
    workers counted once in all (the RSS sum counts them in every process)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(c) for c in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def measure(name: str, argv: list[str], cwd: Path, segments: int) -> dict:
    start = time.perf_counter()
    load = os.getloadavg()[0]
    err = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, text=True)
    peak = peak_pss = 0
    while True:
        # wait4: the exit status and the CPU of the process and every child it waited for
        # (the worker processes of --jobs), user and system
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _tree_rss_kib(process.pid))
        peak_pss = max(peak_pss, _tree_pss_kib(process.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    stderr = err.read()
    cpu = usage.ru_utime + usage.ru_stime
    result = {
        "name": name,
        "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)),
        "exit_code": process.returncode,
        "seconds": round(elapsed, 2),
        "segments_per_second": round(segments / elapsed),
        "peak_rss_mib": round(peak / 1024, 1),
        "peak_pss_mib": round(peak_pss / 1024, 1),
        "cpu_user_seconds": round(usage.ru_utime, 2),
        "cpu_system_seconds": round(usage.ru_stime, 2),
        "load_average_at_start": round(load, 2),
        "stderr_tail": stderr.strip().splitlines()[-2:],
    }
    print(f"  {name:<46} {elapsed:8.2f} s  {result['segments_per_second']:>9,} seg/s  "
          f"{result['peak_rss_mib']:>7.1f} MiB (PSS {result['peak_pss_mib']:.1f})  cpu {cpu:7.2f} s  load {load:5.2f}  "
          f"(exit {process.returncode})", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-pyx12", action="store_true", help="do not run x12valid")
    parser.add_argument("--skip-validate", action="store_true", help="do not run the validating scrub")
    parser.add_argument("--scaling", type=int, default=2,
                        help="also run the full scrub with --jobs 1 and --jobs 2..N on the same file, "
                             "one after the other (N; 0 or 1: skip)")
    parser.add_argument("--history-lines", type=int, default=1_000_000,
                        help="billed lines in the claim history of the history run (0: no history run)")
    args = parser.parse_args()

    data = HERE / "data"
    data.mkdir(exist_ok=True)
    batch = data / f"bench-{args.claims}.837"
    if not batch.exists():
        print(f"generating {args.claims:,} claims -> {batch.relative_to(HERE.parent)}", flush=True)
        generate(args.claims, batch)
    text_size = batch.stat().st_size
    segments = batch.read_text().count("~")
    print(f"batch: {args.claims:,} claims, {segments:,} segments, {text_size / 2**20:.1f} MiB; "
          f"{os.cpu_count()} cores", flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="claimscrub-bench-") as tmp:
        tmp = Path(tmp)
        claimscrub = str(BIN / "claimscrub")
        common = [str(batch), "--as-of", "2026-11-22"]
        if not args.skip_validate:
            results.append(measure("claimscrub scrub --validator compiled",
                                   [claimscrub, "scrub", *common, "--out", str(tmp / "compiled"),
                                    "--validator", "compiled", "--jobs", str(args.jobs)],
                                   tmp, segments))
        if args.scaling > 1:
            scaling = _scaling(args, claimscrub, common, tmp, segments, results)
        results.append(measure("claimscrub scrub --no-validate",
                               [claimscrub, "scrub", *common, "--out", str(tmp / "fast"), "--no-validate"],
                               tmp, segments))
        if args.history_lines:
            history_summary = _history_run(args, batch, tmp, claimscrub, common, segments, results)
        if not args.skip_pyx12 and not args.skip_validate:
            results.append(measure(f"claimscrub scrub --validator pyx12 --jobs {args.jobs}",
                                   [claimscrub, "scrub", *common, "--out", str(tmp / "full"),
                                    "--validator", "pyx12", "--jobs", str(args.jobs)],
                                   tmp, segments))
        if not args.skip_pyx12:
            copy = tmp / batch.name
            shutil.copy(batch, copy)
            results.append(measure("pyx12 x12valid", [str(BIN / "x12valid"), str(copy)], tmp, segments))
    runs = {r["name"]: r["seconds"] for r in results}
    full = runs.get(f"claimscrub scrub --jobs {args.jobs}", 0.0)
    fast = runs["claimscrub scrub --no-validate"]
    share = max(0.0, (full - fast) / full) if full else 0.0
    summary = {
        "claims": args.claims,
        "segments": segments,
        "bytes": text_size,
        "cores": os.cpu_count(),
        "jobs": args.jobs,
        "runs": results,
        "ig_validation_share_of_wall_time": round(share, 3),
    }
    if args.history_lines:
        summary["history"] = history_summary
    if args.scaling > 1:
        summary["scaling"] = scaling
    if full:
        print(f"  implementation-guide validation share of the full run: {share:.0%}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {(out / 'latest.json').relative_to(HERE.parent)}")
    return 0


def _scaling(args, claimscrub: str, common: list, tmp: Path, segments: int, results: list) -> dict:
    """The full scrub (compiled guide) with --jobs 1, 2, .. N on the same file, back to
    back: speed-up in wall time over --jobs 1, and the CPU the partitioning adds."""
    runs = {}
    for jobs in range(1, args.scaling + 1):
        result = measure(f"claimscrub scrub --jobs {jobs}",
                         [claimscrub, "scrub", *common, "--out", str(tmp / f"jobs{jobs}"), "--jobs", str(jobs)],
                         tmp, segments)
        results.append(result)
        runs[jobs] = result
    one = runs[1]
    summary = {}
    for jobs, result in runs.items():
        cpu = result["cpu_user_seconds"] + result["cpu_system_seconds"]
        one_cpu = one["cpu_user_seconds"] + one["cpu_system_seconds"]
        summary[f"jobs{jobs}"] = {
            "speedup": round(one["seconds"] / result["seconds"], 2) if result["seconds"] else None,
            "cpu_ratio": round(cpu / one_cpu, 2) if one_cpu else None,
        }
        if jobs > 1:
            print(f"  --jobs {jobs}: {summary[f'jobs{jobs}']['speedup']:.2f}x the wall time of --jobs 1, "
                  f"{summary[f'jobs{jobs}']['cpu_ratio']:.2f}x its CPU", flush=True)
    return summary


def _history_run(args, batch: Path, tmp: Path, claimscrub: str, common: list, segments: int,
                 results: list) -> dict:
    """The no-validate run again, against a claim history of ``--history-lines`` lines
    (built once and kept in benchmarks/data; each run scrubs against a fresh copy, since a
    run writes its claims into the history)."""
    from history_bench import BENCH_KEY, build_history

    data = HERE / "data"
    built = data / f"history-{args.history_lines}-{args.claims}.sqlite"
    if not built.exists():
        print(f"building a claim history of {args.history_lines:,} billed lines -> "
              f"{built.relative_to(HERE.parent)}", flush=True)
        started = time.perf_counter()
        build_history(built, args.history_lines, args.claims)
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    size = built.stat().st_size
    copy = tmp / "history.sqlite"
    shutil.copy(built, copy)
    os.environ["CLAIMSCRUB_HISTORY_KEY"] = BENCH_KEY.decode()
    result = measure(f"claimscrub scrub --no-validate --history ({args.history_lines:,} lines)",
                     [claimscrub, "scrub", *common, "--out", str(tmp / "hist"), "--no-validate",
                      "--history", f"sqlite:///{copy}"], tmp, segments)
    results.append(result)
    fast = next(r["seconds"] for r in results if r["name"] == "claimscrub scrub --no-validate")
    added = result["seconds"] - fast
    summary = {
        "history_lines": args.history_lines,
        "history_bytes": size,
        "history_bytes_per_line": round(size / args.history_lines, 1),
        "added_seconds": round(added, 2),
        "added_ms_per_claim": round(1000 * added / args.claims, 3),
        "slowdown": round(added / fast, 3) if fast else None,
    }
    print(f"  history: {size / 2**20:.1f} MiB for {args.history_lines:,} lines "
          f"({summary['history_bytes_per_line']} bytes per line); adds {added:.2f} s "
          f"({summary['added_ms_per_claim']} ms per claim, {summary['slowdown']:.0%} of the no-validate run)",
          flush=True)
    return summary


if __name__ == "__main__":
    sys.exit(main())
