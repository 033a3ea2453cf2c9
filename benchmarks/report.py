"""The tables of ``make bench``: figures derived from the measured runs, and markdown
(``python benchmarks/report.py [RESULTS.json]`` prints them again from a results file).

Pure functions over the results dict that benchmarks/run.py writes to
benchmarks/results/latest.json, so the ratios and the warnings can be checked without
running anything (tests/test_bench_report.py).

A run is a dict as ``run.measure`` returns it: ``seconds``, ``segments_per_second``,
``peak_rss_mib``, ``peak_pss_mib``, ``cpu_user_seconds``, ``cpu_system_seconds``,
``load_average_at_start``, ``others_cpu_cores`` (CPU the rest of the machine used during the
run, in cores), ``exit_code``.
"""

from __future__ import annotations

# A run is flagged when the machine was busy: the 1-minute load average above this when it
# started, or the other processes of the machine using more than OTHERS_LIMIT cores on
# average while it ran. Its wall time and segments/s are then pessimistic.
LOAD_LIMIT = 1.5
OTHERS_LIMIT = 0.25

# The targets of issue 9.
TARGET_X_PYX12 = 20.0  # the full scrub against pyx12 x12valid, segments/s
TARGET_X_PYX12_DONE = 10.0  # the least to call the issue done
TARGET_SPEEDUP = 1.7  # --jobs 2 over --jobs 1, wall time
TARGET_MEMORY = 0.10  # peak memory within 10%

THROUGHPUT_ROWS = [
    ("x12valid", "pyx12 `x12valid`"),
    ("compiled", "full scrub, `--validator compiled`"),
    ("pyx12", "full scrub, `--validator pyx12`"),
    ("no_validate", "scrub `--no-validate`"),
]

FAILED_EXIT = 2  # claimscrub: 0 all accepted, 1 some rejected (expected here), 2+ a failure


def ratio(numerator, denominator, digits: int = 2):
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, digits)


def cpu_seconds(run: dict) -> float:
    return round(run["cpu_user_seconds"] + run["cpu_system_seconds"], 2)


def busy(run: dict) -> bool:
    return run["load_average_at_start"] > LOAD_LIMIT or run.get("others_cpu_cores", 0.0) > OTHERS_LIMIT


def failed(run: dict) -> bool:
    """A run that did not do its whole work: for claimscrub an exit status of 2 or more; for
    a run that says itself whether it completed (x12valid: ``completed``), that."""
    if "completed" in run:
        return not run["completed"]
    return run["exit_code"] >= FAILED_EXIT or run["exit_code"] < 0


def memory_ratio(high: dict, low: dict) -> dict:
    """Peak memory of one run over another's, RSS sum and PSS sum."""
    return {"rss": ratio(high["peak_rss_mib"], low["peak_rss_mib"], 3),
            "pss": ratio(high["peak_pss_mib"], low["peak_pss_mib"], 3)}


def within(value, tolerance: float) -> bool | None:
    return None if value is None else abs(value - 1.0) <= tolerance


def derive(results: dict) -> dict:
    """Add the derived figures (ratios, speed-ups, targets met) to ``results`` in place."""
    throughput = results.get("throughput")
    if throughput:
        runs = throughput["runs"]
        base = runs.get("x12valid", {}).get("segments_per_second")
        for run in runs.values():
            run["x_x12valid"] = ratio(run["segments_per_second"], base)
        headline = runs.get("compiled", {}).get("x_x12valid")
        throughput["x_pyx12"] = headline
        throughput["x_pyx12_target_met"] = None if headline is None else headline >= TARGET_X_PYX12
        # CPU rather than wall time: on a shared machine the CPU is the fairer figure
        compiled, fast = runs.get("compiled"), runs.get("no_validate")
        if compiled and fast and cpu_seconds(compiled):
            throughput["validation_share_of_cpu"] = round(
                max(0.0, (cpu_seconds(compiled) - cpu_seconds(fast)) / cpu_seconds(compiled)), 3)

    scaling = results.get("scaling")
    if scaling:
        by = {(r["claims"], r["jobs"]): r for r in scaling["runs"]}
        sizes = sorted({claims for claims, _ in by})
        jobs = sorted({j for _, j in by})
        speedup = {}
        for claims in sizes:
            one = by.get((claims, jobs[0]))
            for j in jobs[1:]:
                run = by.get((claims, j))
                if one and run:
                    value = ratio(one["seconds"], run["seconds"])
                    run["speedup"] = value
                    speedup[f"{claims}:jobs{j}"] = value
        scaling["speedup"] = speedup
        scaling["speedup_target_met"] = (all(v >= TARGET_SPEEDUP for v in speedup.values())
                                         if speedup else None)
        # peak memory of the largest batch over the next one (500,000 over 50,000 by default)
        scaling["memory_ratio"] = {}
        if len(sizes) >= 2:
            low, high = sizes[-2], sizes[-1]
            scaling["memory_ratio_sizes"] = [high, low]
            for j in jobs:
                if (high, j) in by and (low, j) in by:
                    scaling["memory_ratio"][f"jobs{j}"] = memory_ratio(by[(high, j)], by[(low, j)])
        values = [v for m in scaling["memory_ratio"].values() for v in m.values()]
        scaling["memory_target_met"] = all(within(v, TARGET_MEMORY) for v in values) if values else None

    sets = results.get("sets")
    if sets:
        by = {r["transaction_sets"]: r for r in sets["runs"]}
        measured = sorted(n for n, r in by.items() if not r.get("reference"))
        sets["memory_ratio"] = None
        if len(measured) >= 2:
            one, many = measured[0], measured[1]
            sets["memory_ratio_sets"] = [one, many]
            sets["memory_ratio"] = memory_ratio(by[one], by[many])
            sets["memory_target_met"] = all(within(v, TARGET_MEMORY) for v in sets["memory_ratio"].values())
    return results


def _n(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _x(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def _met(flag) -> str:
    return {True: "met", False: "not met", None: "not measured"}[flag]


def _load(run: dict) -> str:
    mark = " !" if busy(run) else ""
    return f"{run['load_average_at_start']:.2f} / {run.get('others_cpu_cores', 0.0):.2f}{mark}"


def _exit(run: dict) -> str:
    text = str(run["exit_code"])
    if run.get("verdict"):
        text += f" ({run['verdict']})"
    return f"{text} FAILED" if failed(run) else text


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


RUN_HEADER = ["wall s", "segments/s", "peak RSS sum MiB", "peak PSS sum MiB", "CPU s", "load / others", "exit"]


def _run_cells(run: dict) -> list:
    return [_n(run["seconds"], 1), _n(run["segments_per_second"]), _n(run["peak_rss_mib"], 1),
            _n(run["peak_pss_mib"], 1), _n(cpu_seconds(run), 1), _load(run), _exit(run)]


def _table(header: list, rows: list) -> list:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _file_note(results: dict, name: str) -> str:
    info = results.get("files", {}).get(name)
    if not info:
        return f"`{name}`"
    return (f"`{name}`: {info['claims']:,} claims, {info['segments']:,} segments, "
            f"{info['transaction_sets']:,} transaction set{'s' if info['transaction_sets'] != 1 else ''}, "
            f"{info['bytes'] / 2**20:.1f} MiB")


def markdown(results: dict) -> str:
    """The tables of a bench run as markdown (printed, and written to latest.md)."""
    meta = results.get("meta", {})
    out = [f"## claimscrub benchmark, {meta.get('date', '?')}", ""]
    out.append(f"`{meta.get('command', 'benchmarks/run.py')}` on {meta.get('cores', '?')} cores"
               f" ({meta.get('cpu', 'CPU unknown')}), claimscrub {meta.get('commit', '?')}, "
               f"Python {meta.get('python', '?')}. Each run is its own process, one after another; "
               "peak memory is summed over the process and its workers (RSS, and PSS, which counts "
               "pages the workers share once), sampled every 20 ms; CPU s is user + system of the "
               "process and its workers.")
    out.append("")
    flagged = failures = False

    throughput = results.get("throughput")
    if throughput:
        runs = throughput["runs"]
        out += [f"### Throughput ({_file_note(results, throughput['file'])})", ""]
        rows = []
        for key, label in THROUGHPUT_ROWS:
            if key in runs:
                run = runs[key]
                flagged |= busy(run)
                failures |= failed(run)
                cells = _run_cells(run)
                rows.append([label, *cells[:2], _x(run.get("x_x12valid")), *cells[2:]])
        out += _table(["run", RUN_HEADER[0], RUN_HEADER[1], "vs x12valid", *RUN_HEADER[2:]], rows)
        out.append("")
        if throughput.get("x_pyx12") is not None:
            out.append(f"**Full scrub (compiled guide) = {throughput['x_pyx12']:.2f}x pyx12 `x12valid`** "
                       f"in segments/s (target {TARGET_X_PYX12:.0f}x, at least {TARGET_X_PYX12_DONE:.0f}x: "
                       f"{_met(throughput['x_pyx12_target_met'])}).")
        if throughput.get("validation_share_of_cpu") is not None:
            out.append(f"Implementation-guide validation: {throughput['validation_share_of_cpu']:.0%} "
                       "of the full scrub's CPU time (against `--no-validate`).")
        out.append("")

    scaling = results.get("scaling")
    if scaling:
        out += ["### Full scrub by batch size and worker processes", ""]
        rows = []
        for run in scaling["runs"]:
            flagged |= busy(run)
            failures |= failed(run)
            rows.append([_n(run["claims"]), _n(run["segments"]), f"`--jobs {run['jobs']}`",
                         *_run_cells(run)[:-1], _x(run.get("speedup")), _exit(run)])
        out += _table(["claims", "segments", "jobs", *RUN_HEADER[:-1], "speed-up", "exit"], rows)
        out.append("")
        if scaling.get("speedup"):
            first = scaling["runs"][0]["jobs"] if scaling["runs"] else 1
            for j in sorted({int(key.split(":jobs")[1]) for key in scaling["speedup"]}):
                values = {int(key.split(":")[0]): v for key, v in scaling["speedup"].items()
                          if key.endswith(f":jobs{j}")}
                met = [f"{claims:,}" for claims, v in values.items() if v is not None and v >= TARGET_SPEEDUP]
                listed = ", ".join(f"{claims:,} claims {_x(v)}" for claims, v in values.items())
                verdict = (f"met at {', '.join(met)} claims" if met else "not met at any size")
                out.append(f"Speed-up of `--jobs {j}` over `--jobs {first}` (wall time): {listed} "
                           f"(target {TARGET_SPEEDUP}x: {verdict}).")
        if scaling.get("memory_ratio"):
            high, low = scaling["memory_ratio_sizes"]
            parts = [f"`--jobs {key[4:]}` RSS {_x(m['rss'], 3)}, PSS {_x(m['pss'], 3)}"
                     for key, m in scaling["memory_ratio"].items()]
            out.append(f"Peak memory {high:,} / {low:,} claims: {'; '.join(parts)} "
                       f"(target within {TARGET_MEMORY:.0%}: {_met(scaling['memory_target_met'])}).")
        out.append("")

    sets = results.get("sets")
    if sets:
        out += [f"### The same {sets['claims']:,} claims in one transaction set and in several", ""]
        rows = []
        for run in sets["runs"]:
            flagged |= busy(run)
            failures |= failed(run)
            label = f"{run['transaction_sets']:,}"
            if run.get("reference"):
                label += " (throughput run above)"
            rows.append([label, _n(run["claims_per_set"]), _n(run["segments"]), *_run_cells(run)])
        out += _table(["transaction sets", "claims per set", "segments", *RUN_HEADER], rows)
        out.append("")
        if sets.get("memory_ratio"):
            one, many = sets["memory_ratio_sets"]
            m = sets["memory_ratio"]
            out.append(f"Peak memory {one} set / {many} sets: RSS {_x(m['rss'], 3)}, PSS {_x(m['pss'], 3)} "
                       f"(target within {TARGET_MEMORY:.0%}: {_met(sets['memory_target_met'])}).")
            out.append("")

    history = results.get("history")
    if history:
        run = history["run"]
        flagged |= busy(run)
        failures |= failed(run)
        out += [f"### Against a claim history of {history['history_lines']:,} billed lines "
                f"({_file_note(results, history['file'])})", ""]
        rows = [["scrub `--no-validate`", *_run_cells(history["baseline"])],
                ["scrub `--no-validate --history`", *_run_cells(run)]]
        out += _table(["run", *RUN_HEADER], rows)
        out.append("")
        out.append(f"The history adds {history['added_seconds']:.1f} s, {history['added_ms_per_claim']} ms per "
                   f"claim ({_n(100 * history['slowdown'] if history['slowdown'] is not None else None)}% of the "
                   f"run without it); on disk {history['history_bytes_per_line']} bytes per billed line.")
        out.append("")

    out.append("load / others: the 1-minute load average when the run started / the cores the rest of "
               "the machine used on average while it ran.")
    if flagged:
        out.append(f"**!** the machine was busy during that run (load average above {LOAD_LIMIT} at its start, "
                   f"or other processes using more than {OTHERS_LIMIT} of a core): its wall time and "
                   "segments/s are pessimistic; measure again on a quiet machine.")
    if failures:
        out.append(f"**FAILED**: the run did not complete (claimscrub: exit status {FAILED_EXIT} or more; "
                   "x12valid: no OK or Failure verdict); see `stderr_tail` in latest.json. Its figures "
                   "do not measure a whole run.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    # the tables again from a results file: python benchmarks/report.py [benchmarks/results/latest.json]
    import json
    import sys
    from pathlib import Path

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "latest.json"
    print(markdown(derive(json.loads(path.read_text()))), end="")
