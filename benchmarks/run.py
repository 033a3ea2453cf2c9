"""Benchmark of issue 9 (``make bench``): claimscrub against pyx12, by batch size, by workers
and by transaction-set size, in one run.

    make bench                                        # everything below, about 16 minutes
    make bench BENCH_ARGS='--only throughput'          # one part
    python benchmarks/run.py --sizes 500,2000 --claims 2000 --history-lines 20000   # a small try

Parts (``--only``, comma-separated; default all four, in this order):

throughput
    On the batch of ``--claims`` claims (default 50,000, 1,000 claims per transaction set):
    pyx12's ``x12valid``; the full scrub with ``--validator compiled``; the full scrub with
    ``--validator pyx12``; ``--no-validate``. The scrubs run with claimscrub's default
    ``--jobs`` (one worker per CPU) unless ``--jobs`` is given. Headline: the compiled full
    scrub's segments/s over x12valid's.
scaling
    The full scrub on batches of ``--sizes`` claims (default 5,000, 50,000, 500,000), each
    with ``--jobs 1`` and ``--jobs 2`` (``--scaling-jobs``): speed-up of the second over the
    first, and peak memory of the largest batch over the next (500,000 over 50,000).
sets
    The full scrub (default jobs) on the ``--claims`` claims written as one transaction set
    and as ten (``--sets``): peak memory of one set over ten. The default batch's run of the
    throughput part is shown beside them.
history
    ``--no-validate --history`` against an SQLite claim history already holding
    ``--history-lines`` billed lines (default 1,000,000; built once into benchmarks/data by
    benchmarks/history_bench.py, about 80 s), against the same run without a history: the
    time the history adds per claim and its size on disk per line. ``--history-lines 0``
    skips it. It adds about 5-10% to ``make bench``.

Each measured run is its own process, started after the previous one ended. For each:
wall time, segments per second (wall), peak memory of the process and its workers together
(RSS sum and PSS sum, sampled every 20 ms), CPU seconds (user + system, workers included),
the 1-minute load average when it started and the cores the rest of the machine used while
it ran. Before each run the benchmark waits (at most ``--settle`` seconds) for the load
average to fall below 1.5, since its own previous run raises it. A run started above that
load, or during which other processes used more than a quarter of a core, is flagged in the
tables.

The batches are generated once into benchmarks/data/ (not committed) and reused. The tables
are printed and written to benchmarks/results/latest.md (markdown, to paste into a note) and
benchmarks/results/latest.json (every figure, the derived ratios included).

Validation alone, compiled guide against pyx12 in one process: benchmarks/validators.py.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402

from claimscrub.synth import write_837  # noqa: E402

BIN = Path(sys.executable).parent
AS_OF = "2026-11-22"
PARTS = ("throughput", "scaling", "sets", "history")
CLAIMS_PER_SET = 1000  # the default batch: 50,000 claims in 50 transaction sets

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


def generate(count: int, path: Path, seed: int = 7, claims_per_transaction: int = CLAIMS_PER_SET) -> None:
    """``count`` interventional-pain claims (clean ones and the common errors, a quarter of
    them under dependents), the same claims for a given count and seed whatever the
    transaction-set size. Written to a temporary name first, so an interrupted generation
    leaves no partial batch to be reused."""
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
    partial = path.with_name(path.name + ".partial")
    partial.write_text(write_837(claims, claims_per_transaction=claims_per_transaction))
    partial.replace(path)


def batch_file(claims: int, sets: int | None = None) -> Path:
    """The batch of ``claims`` claims: in sets of 1,000 (``sets`` None), or in ``sets``
    transaction sets of equal size."""
    if sets is None:
        return HERE / "data" / f"bench-{claims}.837"
    return HERE / "data" / f"bench-{claims}-{sets}set{'s' if sets > 1 else ''}.837"


def ensure_batch(claims: int, sets: int | None = None) -> Path:
    path = batch_file(claims, sets)
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        per_set = CLAIMS_PER_SET if sets is None else math.ceil(claims / sets)
        print(f"generating {claims:,} claims ({per_set:,} per transaction set) -> "
              f"{path.relative_to(HERE.parent)}", flush=True)
        # in a child process, so that the claims and the text built for a large batch are
        # not kept by this process while the runs are measured
        child = multiprocessing.get_context("fork").Process(
            target=generate, args=(claims, path), kwargs={"claims_per_transaction": per_set})
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"generating {path.name} failed (exit {child.exitcode})")
    return path


def describe(path: Path, claims: int) -> dict:
    """Segments and transaction sets of a batch as generate() writes it, counted in 1 MiB
    chunks (a segment ends with ~ and a newline; a set starts with the segment ST)."""
    segments = sets = 0
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            segments += chunk.count(b"~")
            data = tail + chunk
            sets += data.count(b"~\nST*")
            tail = data[-4:]
    return {"claims": claims, "segments": segments, "transaction_sets": sets, "bytes": path.stat().st_size}


def _walk_tree(pid: int, field: str, filename: str) -> int:
    """Sum of a kB field of /proc/PID/FILE over the process and its descendants."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/{filename}") as handle:
                for line in handle:
                    if line.startswith(field):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(c) for c in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def _tree_rss_kib(pid: int) -> int:
    return _walk_tree(pid, "VmRSS:", "status")


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of the process and its children: pages shared by forked
    workers counted once in all (the RSS sum counts them in every process)."""
    return _walk_tree(pid, "Pss:", "smaps_rollup")


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all but idle and iowait)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def settle(limit: float, max_seconds: float) -> None:
    """Wait, at most ``max_seconds``, for the 1-minute load average to fall below ``limit``
    (the previous run of this benchmark raised it)."""
    waited = 0.0
    while os.getloadavg()[0] > limit and waited < max_seconds:
        time.sleep(1.0)
        waited += 1.0
    if waited:
        print(f"  (waited {waited:.0f} s for the load average: {os.getloadavg()[0]:.2f})", flush=True)


def measure(name: str, argv: list[str], cwd: Path, segments: int, settle_seconds: float = 0.0) -> dict:
    settle(report.LOAD_LIMIT, settle_seconds)
    load = os.getloadavg()[0]
    err = tempfile.TemporaryFile(mode="w+")
    machine, own = _machine_busy_seconds(), time.process_time()
    start = time.perf_counter()
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
    cpu = usage.ru_utime + usage.ru_stime
    # the rest of the machine: its busy CPU minus the run's and this sampler's
    others = max(0.0, _machine_busy_seconds() - machine - cpu - (time.process_time() - own))
    process.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    stderr = err.read()
    result = {
        "name": name,
        "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)),
        "exit_code": process.returncode,
        "seconds": round(elapsed, 2),
        "segments": segments,
        "segments_per_second": round(segments / elapsed),
        "peak_rss_mib": round(peak / 1024, 1),
        "peak_pss_mib": round(peak_pss / 1024, 1),
        "cpu_user_seconds": round(usage.ru_utime, 2),
        "cpu_system_seconds": round(usage.ru_stime, 2),
        "load_average_at_start": round(load, 2),
        "others_cpu_cores": round(others / elapsed, 2),
        "stderr_tail": stderr.strip().splitlines()[-2:],
    }
    mark = "  BUSY" if report.busy(result) else ""
    print(f"  {name:<52} {elapsed:8.2f} s  {result['segments_per_second']:>9,} seg/s  "
          f"{result['peak_rss_mib']:>7.1f} MiB (PSS {result['peak_pss_mib']:.1f})  cpu {cpu:7.2f} s  "
          f"load {load:5.2f}  others {result['others_cpu_cores']:.2f}  (exit {process.returncode}){mark}",
          flush=True)
    if report.failed(result):
        print("    " + "\n    ".join(result["stderr_tail"]), flush=True)
    return result


class Bench:
    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.files: dict[str, dict] = {}
        self.claimscrub = str(BIN / "claimscrub")

    def batch(self, claims: int, sets: int | None = None) -> tuple[Path, dict]:
        path = ensure_batch(claims, sets)
        if path.name not in self.files:
            self.files[path.name] = describe(path, claims)
        return path, self.files[path.name]

    def run(self, name: str, argv: list[str], segments: int) -> dict:
        return measure(name, argv, self.tmp, segments, self.args.settle)

    def scrub(self, name: str, batch: Path, segments: int, *options: str) -> dict:
        """One scrub, every report written (JSON, HTML, 999, 277CA); the reports are
        deleted after the run so that large batches do not fill the disk."""
        out = self.tmp / "out"
        try:
            return self.run(name, [self.claimscrub, "scrub", str(batch), "--as-of", AS_OF, "--out", str(out),
                                   *options], segments)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def default_jobs(self) -> list[str]:
        return ["--jobs", str(self.args.jobs)] if self.args.jobs else []

    def name(self, *words: str) -> str:
        return " ".join(["claimscrub scrub", *words, *self.default_jobs()])

    def throughput(self) -> dict:
        batch, info = self.batch(self.args.claims)
        segments = info["segments"]
        print(f"\nthroughput: {batch.name}, {info['segments']:,} segments", flush=True)
        jobs = self.default_jobs()
        runs = {}
        copy = self.tmp / batch.name  # x12valid writes its 999 beside the input
        shutil.copy(batch, copy)
        try:
            runs["x12valid"] = self.run("pyx12 x12valid", [str(BIN / "x12valid"), str(copy)], segments)
        finally:
            copy.unlink()
        # x12valid's console script exits 1 when it validated the file (sys.exit(True)); what it
        # found is its last line on standard error: "FILE: OK", or "FILE: Failure" (errors)
        verdicts = [line.rsplit(": ", 1)[-1] for line in runs["x12valid"]["stderr_tail"]
                    if line.startswith(str(copy) + ": ")]
        runs["x12valid"]["verdict"] = verdicts[-1] if verdicts else None
        runs["x12valid"]["completed"] = bool(verdicts) and verdicts[-1] in ("OK", "Failure")
        if not runs["x12valid"]["completed"]:
            print("    x12valid did not complete: " + " / ".join(runs["x12valid"]["stderr_tail"]), flush=True)
        runs["compiled"] = self.scrub(self.name("--validator compiled"), batch, segments,
                                      "--validator", "compiled", *jobs)
        runs["pyx12"] = self.scrub(self.name("--validator pyx12"), batch, segments,
                                   "--validator", "pyx12", *jobs)
        runs["no_validate"] = self.scrub(self.name("--no-validate"), batch, segments,
                                         "--no-validate", *jobs)
        return {"claims": self.args.claims, "file": batch.name, "jobs": self.args.jobs or "default",
                "runs": runs}

    def scaling(self) -> dict:
        runs = []
        for claims in self.args.sizes:
            batch, info = self.batch(claims)
            print(f"\nscaling: {batch.name}, {info['segments']:,} segments", flush=True)
            for jobs in self.args.scaling_jobs:
                result = self.scrub(f"claimscrub scrub --jobs {jobs} ({claims:,} claims)", batch,
                                    info["segments"], "--jobs", str(jobs))
                runs.append({"claims": claims, "jobs": jobs, "file": batch.name, **result})
        return {"sizes": self.args.sizes, "jobs": self.args.scaling_jobs, "runs": runs}

    def sets(self, throughput: dict | None) -> dict:
        runs = []
        jobs = self.default_jobs()
        for sets in self.args.sets:
            batch, info = self.batch(self.args.claims, sets)
            print(f"\nsets: {batch.name}, {info['segments']:,} segments", flush=True)
            label = f" ({sets} transaction set{'s' if sets > 1 else ''})"
            result = self.scrub(self.name() + label, batch, info["segments"], *jobs)
            runs.append({"transaction_sets": info["transaction_sets"],
                         "claims_per_set": math.ceil(self.args.claims / sets), "file": batch.name, **result})
        if throughput and "compiled" in throughput["runs"]:
            info = self.files[throughput["file"]]
            runs.append({"transaction_sets": info["transaction_sets"], "claims_per_set": min(CLAIMS_PER_SET, self.args.claims),
                         "file": throughput["file"], "reference": True, **throughput["runs"]["compiled"]})
        return {"claims": self.args.claims, "jobs": self.args.jobs or "default", "runs": runs}

    def history(self, throughput: dict | None) -> dict:
        """The no-validate run against a claim history of ``--history-lines`` lines (built
        once and kept in benchmarks/data; each run scrubs against a fresh copy, since a run
        writes its claims into the history)."""
        from history_bench import BENCH_KEY, build_history

        lines, claims = self.args.history_lines, self.args.claims
        batch, info = self.batch(claims)
        print(f"\nhistory: {batch.name} against {lines:,} billed lines", flush=True)
        jobs = self.default_jobs()
        if throughput and "no_validate" in throughput["runs"]:
            baseline = throughput["runs"]["no_validate"]
        else:
            baseline = self.scrub(self.name("--no-validate"), batch, info["segments"],
                                  "--no-validate", *jobs)
        built = HERE / "data" / f"history-{lines}-{claims}.sqlite"
        if not built.exists():
            print(f"building a claim history of {lines:,} billed lines -> {built.relative_to(HERE.parent)}",
                  flush=True)
            started = time.perf_counter()
            partial = built.with_name(built.name + ".partial")
            build_history(partial, lines, claims)
            partial.replace(built)
            print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
        size = built.stat().st_size
        copy = self.tmp / "history.sqlite"
        shutil.copy(built, copy)
        os.environ["CLAIMSCRUB_HISTORY_KEY"] = BENCH_KEY.decode()
        try:
            result = self.scrub(self.name("--no-validate --history") + f" ({lines:,} lines)", batch,
                                info["segments"], "--no-validate", "--history", f"sqlite:///{copy}", *jobs)
        finally:
            copy.unlink(missing_ok=True)
        added = result["seconds"] - baseline["seconds"]
        return {
            "file": batch.name,
            "history_lines": lines,
            "history_bytes": size,
            "history_bytes_per_line": round(size / lines, 1),
            "baseline": baseline,
            "run": result,
            "added_seconds": round(added, 2),
            "added_ms_per_claim": round(1000 * added / claims, 3),
            "slowdown": round(added / baseline["seconds"], 3) if baseline["seconds"] else None,
        }


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers of at least 1: {text!r}")
    return values


def _parts(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"parts are {', '.join(PARTS)}; got {text!r}")
    return parts


def _commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=_parts, default=list(PARTS),
                        help=f"parts to run, comma-separated (default: {','.join(PARTS)})")
    parser.add_argument("--claims", type=int, default=50_000,
                        help="claims of the throughput, sets and history batch (default 50000)")
    parser.add_argument("--sizes", type=_int_list, default=[5_000, 50_000, 500_000],
                        help="batch sizes of the scaling part (default 5000,50000,500000)")
    parser.add_argument("--scaling-jobs", type=_int_list, default=[1, 2],
                        help="worker processes of the scaling part (default 1,2; speed-ups are over the first)")
    parser.add_argument("--sets", type=_int_list, default=[1, 10],
                        help="transaction sets of the sets part (default 1,10; memory ratio of the first "
                             "over the second)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="--jobs of the throughput, sets and history scrubs (default: claimscrub's own)")
    parser.add_argument("--history-lines", type=int, default=1_000_000,
                        help="billed lines in the claim history of the history part (0: skip it)")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds to wait at most before each run for the load average to fall "
                             f"below {report.LOAD_LIMIT} (default 20; 0: do not wait)")
    args = parser.parse_args(argv)
    if args.claims < 1:
        parser.error("--claims must be at least 1")
    args.sizes = sorted(set(args.sizes))
    parts = [p for p in PARTS if p in args.only and not (p == "history" and args.history_lines <= 0)]

    command = "python benchmarks/run.py" + ("" if argv is None and len(sys.argv) == 1
                                            else " " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"claimscrub benchmark: {', '.join(parts)}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    results: dict = {
        "meta": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "commit": _commit(),
            "parts": parts,
            "load_limit": report.LOAD_LIMIT,
            "others_limit_cores": report.OTHERS_LIMIT,
        },
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="claimscrub-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        throughput = None
        if "throughput" in parts:
            throughput = results["throughput"] = bench.throughput()
        if "scaling" in parts:
            results["scaling"] = bench.scaling()
        if "sets" in parts:
            results["sets"] = bench.sets(throughput)
        if "history" in parts:
            results["history"] = bench.history(throughput)
        results["files"] = bench.files
    results["meta"]["total_seconds"] = round(time.perf_counter() - started, 1)
    report.derive(results)
    table = report.markdown(results)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "latest.md").write_text(table)
    print("\n" + table)
    print(f"results: {(out / 'latest.md').relative_to(HERE.parent)}, {(out / 'latest.json').relative_to(HERE.parent)} "
          f"({results['meta']['total_seconds'] / 60:.1f} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
