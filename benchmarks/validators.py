"""Benchmark: implementation-guide validation alone, compiled guide against pyx12.

    python benchmarks/validators.py                  # 5,000 claims
    python benchmarks/validators.py --claims 50000 --pyx12-claims 2000

The synthetic batch of benchmarks/run.py is read into memory first (reading is not
timed); then each validator validates every transaction set in this process, one core:
the compiled guide (``--validator compiled``) on the whole batch, pyx12 (``--validator
pyx12 --jobs 1``) on the first ``--pyx12-claims`` claims' batch (it is slow). Both are
reported in segments per second; with ``--check`` the two are also compared on the
pyx12 batch (they must give identical errors).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import generate  # noqa: E402

from claimscrub.guide.validator import CompiledValidator  # noqa: E402
from claimscrub.validate import Pyx12Validator  # noqa: E402
from claimscrub.x12.envelope import iter_transaction_sets  # noqa: E402
from claimscrub.x12.reader import X12Reader  # noqa: E402


def batch(claims: int) -> Path:
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / f"bench-{claims}.837"
    if not path.exists():
        generate(claims, path)
    return path


def load(path: Path):
    reader = X12Reader(path)
    sets = list(iter_transaction_sets(reader))
    return sets, reader.delimiters


def timed(validator, sets, delimiters) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process, results). On a shared machine the CPU
    time is the fair per-core figure; the wall time includes waiting for a core."""
    out = {}
    start, cpu = time.perf_counter(), time.process_time()
    for ts in sets:
        validator.submit((0, ts.index), ts, delimiters)
        out.update({k: (e, c) for k, e, c in validator.completed()})
    out.update({k: (e, c) for k, e, c in validator.completed(block=True)})
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    validator.close()
    return elapsed, cpu, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=5000)
    parser.add_argument("--pyx12-claims", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the compiled guide")
    parser.add_argument("--check", action="store_true", help="compare both on the pyx12 batch")
    args = parser.parse_args()

    sets, delimiters = load(batch(args.claims))
    segments = sum(len(ts.segments) for ts in sets)
    CompiledValidator()  # the compiled guide is loaded (or compiled and cached) once
    best = best_cpu = None
    for _ in range(max(1, args.repeat)):
        elapsed, cpu, _out = timed(CompiledValidator(), sets, delimiters)
        best = elapsed if best is None else min(best, elapsed)
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
    print(f"compiled guide: {args.claims:,} claims, {segments:,} segments: wall {best:.2f} s "
          f"= {segments / best:,.0f} segments/s; CPU {best_cpu:.2f} s = {segments / best_cpu:,.0f} "
          f"segments per CPU second (best of {args.repeat})")
    if args.pyx12_claims:
        small, delimiters = load(batch(args.pyx12_claims))
        small_segments = sum(len(ts.segments) for ts in small)
        elapsed, cpu, oracle = timed(Pyx12Validator(jobs=1, slice_segments=0), small, delimiters)
        print(f"pyx12:          {args.pyx12_claims:,} claims, {small_segments:,} segments: wall {elapsed:.2f} s "
              f"= {small_segments / elapsed:,.0f} segments/s; CPU {cpu:.2f} s = "
              f"{small_segments / cpu:,.0f} segments per CPU second")
        if args.check:
            _e, _c, compiled = timed(CompiledValidator(), small, delimiters)
            same = compiled == oracle
            print(f"identical errors on the pyx12 batch: {same}")
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
