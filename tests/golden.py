"""Golden comparison of dispositions and findings on the corpus, the fixtures and the demo.

Every change to what claimscrub decides must be one that was meant. ``snapshot()`` scrubs
each corpus file and each edit fixture on its own, and the demo batch as one run (its
patient-day spans two files), with implementation-guide validation on, and reduces the
result to what a pipeline acts on: per file, whether it was usable, and per claim its
disposition and each finding's rule, severity, line and segment. Messages are left out on
purpose: their wording may improve without changing a verdict.

Regenerate after an intended change with ``python tests/golden.py --update`` and review the
diff of ``tests/expected/golden/`` in the same commit.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conftest import AS_OF, FIXTURES, corpus_files  # noqa: E402

GOLDEN = HERE / "expected" / "golden"


def _groups() -> dict[str, list[list[Path]]]:
    return {
        "corpus": [[p] for p in corpus_files()],
        "fixtures": [[p] for p in sorted((FIXTURES / "edits").iterdir())],
        "demo": [sorted((FIXTURES / "demo").iterdir())],
    }


def _scrub(paths: list[Path], tables) -> dict:
    from claimscrub.scrub import ScrubOptions, Scrubber
    from claimscrub.validate import Pyx12Validator

    options = ScrubOptions(as_of=date.fromisoformat(AS_OF), tables=tables, validator=Pyx12Validator(jobs=1))
    run = Scrubber(options).run([str(p) for p in paths])
    out = {}
    try:
        for file in run.files:
            claims = []
            for result in run.claim_results(file):
                claims.append({
                    "claim": result.claim.claim_id,
                    "status": result.status,
                    "findings": sorted(
                        f"{f.rule} {f.severity.value} line={f.line} seg={f.segment}" for f in result.findings
                    ),
                })
            out[Path(file.path).name] = {"usable": file.usable, "claims": claims}
    finally:
        run.close()
    return out


def snapshot() -> dict[str, dict]:
    from claimscrub.tables import load_tables

    tables = load_tables()
    result = {}
    for group, runs in _groups().items():
        merged: dict = {}
        for paths in runs:
            merged.update(_scrub(paths, tables))
        result[group] = merged
    return result


def main() -> None:
    if "--update" not in sys.argv:
        raise SystemExit("usage: python tests/golden.py --update")
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for group, data in snapshot().items():
        (GOLDEN / f"{group}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{group}: {len(data)} files, {sum(len(v['claims']) for v in data.values())} claims")


if __name__ == "__main__":
    main()
