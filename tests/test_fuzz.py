"""Fuzz: mutated corpus files and fixtures never stop a run, never lose a claim.

Each case is a real 837P (the public corpus, the per-edit fixtures, the demo) with one or
more mutations: byte flips, inserted bytes, truncation, control bytes, delimiter swaps,
count lies (SE01/GE01/IEA01), corrupted segment identifiers (CLM -> CLX), repeated or
dropped segments. Cases are scrubbed in batches, one ``claimscrub scrub`` per batch, as a
clearinghouse's night would, and every file of the batch is checked on its own:

* the run never ends with exit 4 and never prints a traceback;
* a usable file: the CLM segments of its transaction sets = the claims of its JSON = the
  claims (HL PT) of its 277CA; the accepted-claims 837 holds exactly the accepted claims;
* an unusable file: one stderr line names it, and it has no reports.

``make test`` runs ``FUZZ_CASES`` (default 240) cases; ``make fuzz`` runs thousands
(``CLAIMSCRUB_FUZZ_CASES``). Every case is reproducible from its seed (the file name).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from claimscrub.errors import InputError
from claimscrub.x12.envelope import iter_transaction_sets
from claimscrub.x12.reader import X12Reader

from conftest import AS_OF, FIXTURES, corpus_files

CASES = int(os.environ.get("CLAIMSCRUB_FUZZ_CASES", "240"))
BATCH = int(os.environ.get("CLAIMSCRUB_FUZZ_BATCH", "60"))
SEED = int(os.environ.get("CLAIMSCRUB_FUZZ_SEED", "8"))


def sources() -> list[Path]:
    files = [p for p in corpus_files() if "no_isa" not in p.name]
    files += sorted((FIXTURES / "edits").glob("*.837"))
    files += sorted((FIXTURES / "demo").glob("*.837"))
    return files


def _delimiters(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(element, component, terminator) from the ISA header, or the usual ones."""
    start = data.find(b"ISA")
    if start < 0 or len(data) < start + 106:
        return b"*", b":", b"~"
    element = data[start + 3:start + 4]
    index = start
    for _ in range(16):
        index = data.find(element, index + 1)
        if index < 0:
            return element, b":", b"~"
    return element, data[index + 1:index + 2], data[index + 2:index + 3]


def _segments(data: bytes, terminator: bytes) -> list[tuple[int, int]]:
    spans, start = [], 0
    while True:
        end = data.find(terminator, start)
        if end < 0:
            return spans
        spans.append((start, end))
        start = end + 1


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One mutation of ``data``; returns the new bytes and what was done."""
    element, component, terminator = _delimiters(data)
    spans = _segments(data, terminator)
    kind = rng.choice([
        "flip", "insert", "truncate", "control", "delimiter", "count", "segment-id",
        "duplicate", "drop", "value", "exponent", "flip", "control",
    ])
    if kind == "flip" and data:
        at = rng.randrange(len(data))
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:], kind
    if kind == "insert":
        at = rng.randrange(len(data) + 1)
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        return data[:at] + junk + data[at:], kind
    if kind == "truncate" and data:
        return data[:rng.randrange(len(data))], kind
    if kind == "control" and data:
        at = rng.randrange(len(data))
        byte = rng.choice([0x00, 0x01, 0x0B, 0x0C, 0x1B, 0x7F, 0x85, 0x0D, 0x0A])
        return data[:at] + bytes([byte]) + data[at:], kind
    if kind == "delimiter" and data:
        old, new = rng.sample([element, component, terminator, b"^", b"|"], 2)
        hits = [m.start() for m in re.finditer(re.escape(old), data)]
        if hits:
            at = rng.choice(hits)
            return data[:at] + new + data[at + 1:], kind
    if kind == "count" and spans:
        trailers = [(s, e) for s, e in spans
                    if data[s:e].strip().split(element)[0] in (b"SE", b"GE", b"IEA")]
        if trailers:
            s, e = rng.choice(trailers)
            parts = data[s:e].split(element)
            if len(parts) > 1:
                parts[1] = str(rng.choice([0, 1, 2, 99, 123456])).encode()
                return data[:s] + element.join(parts) + data[e:], kind
    if kind == "segment-id" and spans:
        ids = [b"CLM", b"HL", b"LX", b"SV1", b"NM1", b"ST", b"SE", b"HI", b"SBR"]
        target = rng.choice(ids)
        hits = [(s, e) for s, e in spans if data[s:e].strip().split(element)[0] == target]
        if hits:
            s, _ = rng.choice(hits)
            at = data.find(target, s)
            new = rng.choice([b"CLX", b"XX", b"clm", b"HLL", b"", b"C\x00M"])
            return data[:at] + new + data[at + len(target):], kind
    if kind in ("duplicate", "drop") and spans:
        s, e = rng.choice(spans)
        piece = data[s:e + 1]
        if kind == "duplicate":
            return data[:e + 1] + piece + data[e + 1:], kind
        return data[:s] + data[e + 1:], kind
    if kind in ("value", "exponent") and spans:
        s, e = rng.choice(spans)
        parts = data[s:e].split(element)
        if len(parts) > 1:
            i = rng.randrange(1, len(parts))
            parts[i] = (b"1E+999999999" if kind == "exponent"
                        else rng.choice([b"", b"-5", b"99999999999999999999999", b"A" * 300,
                                         b"20251340", b"\xff\xfe", b"NaN", b"Infinity"]))
            return data[:s] + element.join(parts) + data[e:], kind
    return data[:-1], "truncate"


def make_case(number: int, files: list[Path]) -> tuple[str, bytes, str]:
    rng = random.Random(SEED * 1_000_003 + number)
    source = rng.choice(files)
    data = source.read_bytes()
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data, kind = mutate(data, rng)
        done.append(kind)
    return f"case{number:05d}.837", data, f"{source.name}: {', '.join(done)}"


def claims_in(path: Path) -> int:
    """CLM segments of the file's transaction sets, as X12 reads them."""
    reader = X12Reader(path, path.name)
    return sum(1 for ts in iter_transaction_sets(reader) for s in ts.segments if s.id == "CLM")


def pt_loops(ack: Path) -> int:
    return sum(1 for s in ack.read_text().split("~")
               if s.strip().startswith("HL*") and s.strip().split("*")[3:4] == ["PT"])


def batches() -> list[int]:
    return list(range(0, CASES, BATCH))


@pytest.mark.parametrize("first", batches())
def test_mutated_inputs_keep_every_claim(first, tmp_path):
    files = sources()
    assert files, "no corpus or fixtures to mutate"
    inputs = tmp_path / "in"
    inputs.mkdir()
    described = {}
    for number in range(first, min(first + BATCH, CASES)):
        name, data, what = make_case(number, files)
        (inputs / name).write_bytes(data)
        described[name] = what
    out, accepted = tmp_path / "out", tmp_path / "accepted"
    result = subprocess.run(
        [sys.executable, "-m", "claimscrub", "scrub", str(inputs), "--out", str(out),
         "--accepted-out", str(accepted), "--as-of", AS_OF, "--jobs", "1"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode in (0, 1, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    stderr_lines = result.stderr.splitlines()
    outcomes: Counter = Counter()
    for name, what in described.items():
        report = out / f"{name}.json"
        if not report.exists():
            mine = [line for line in stderr_lines if line.startswith(f"claimscrub: {name}: ")]
            assert mine, f"{name} ({what}): no report and no line saying why"
            assert not list(out.glob(f"{name}.*")), f"{name} ({what}): unusable but has reports"
            outcomes["unusable"] += 1
            continue
        try:
            expected = claims_in(inputs / name)
        except InputError as exc:  # pragma: no cover - the scrub read it, so must we
            pytest.fail(f"{name} ({what}): reported but unreadable: {exc}")
        claims = json.loads(report.read_text())["claims"]
        assert len(claims) == expected, f"{name} ({what}): {expected} CLM, {len(claims)} in the JSON"
        if expected == 0:  # no claim: a 999 and a JSON of none, no 277CA, never exit 0
            assert result.returncode != 0 and f"claimscrub: {name}: segment " in result.stderr
            assert not (out / f"{name}.277").exists()
            outcomes["no claim"] += 1
            continue
        assert pt_loops(out / f"{name}.277") == expected, f"{name} ({what}): 277CA claims"
        accepted_count = sum(1 for c in claims if c["status"] == "accepted")
        forwarded = accepted / name
        if accepted_count:
            assert claims_in(forwarded) == accepted_count, f"{name} ({what}): accepted 837"
        else:
            assert not forwarded.exists(), f"{name} ({what}): accepted 837 with no accepted claim"
        outcomes["all accepted" if accepted_count == expected else "some rejected"] += 1
    print(f"fuzz cases {first}..{first + len(described) - 1}: {dict(outcomes)}; exit {result.returncode}")
