"""Differential testing of the compiled guide against pyx12 (the oracle).

``compare(path)`` validates one file with both validators and returns the transaction
sets on which they differ; ``mutants(seed, n)`` derives seeded mutated 837P texts from the
corpus and the fixtures: dropped, duplicated and swapped segments, bad and foreign codes,
wrong qualifiers, lengths, characters, missing and extra elements and components, trailing
separators, leading spaces, corrupted segment ids, broken HL01/HL02 and LX01 numbering.
"""

from __future__ import annotations

import random
from pathlib import Path

from claimscrub.errors import InputError
from claimscrub.guide.validator import CompiledValidator
from claimscrub.validate import Pyx12Validator
from claimscrub.x12.envelope import iter_transaction_sets
from claimscrub.x12.reader import X12Reader

from conftest import FIXTURES, corpus_files

ENVELOPE = {"ISA", "IEA", "GS", "GE", "ST", "SE"}


def results(validator, path: Path) -> dict:
    out: dict = {}
    reader = X12Reader(path)
    try:
        for ts in iter_transaction_sets(reader):
            validator.submit((0, ts.index), ts, reader.delimiters)
            out.update({k[1]: (e, c) for k, e, c in validator.completed()})
    except InputError as exc:
        out["input"] = str(exc)
    out.update({k[1]: (e, c) for k, e, c in validator.completed(block=True)})
    validator.close()
    return out


def compare(path: Path, slice_segments: int = 0) -> list[str]:
    """Human-readable differences between pyx12 and the compiled guide on one file.

    The oracle is pyx12 on each whole transaction set (``slice_segments=0``); with the
    default slicing of :class:`Pyx12Validator` a set over 4,000 segments is cut into
    slices, which differs from pyx12 on the whole set when pyx12 raises in one slice
    (the other slices' errors are then kept; see test_guide_differential.py)."""
    oracle = results(Pyx12Validator(jobs=1, slice_segments=slice_segments), path)
    compiled = results(CompiledValidator(), path)
    if oracle == compiled:
        return []
    out = []
    for key in sorted(set(oracle) | set(compiled), key=str):
        a, b = oracle.get(key), compiled.get(key)
        if a == b:
            continue
        if not isinstance(a, tuple) or not isinstance(b, tuple):
            out.append(f"{path.name} [{key}]: {a!r} != {b!r}")
            continue
        if a[1] != b[1]:
            out.append(f"{path.name} ts {key}: transaction codes {a[1]} != {b[1]}")
        for x in a[0]:
            if x not in b[0]:
                out.append(f"{path.name} ts {key}: only pyx12: {x}")
        for x in b[0]:
            if x not in a[0]:
                out.append(f"{path.name} ts {key}: only compiled: {x}")
        if not out:
            out.append(f"{path.name} ts {key}: same errors, other order")
    return out


def sources() -> list[Path]:
    files = [p for p in corpus_files()] + sorted((FIXTURES / "edits").iterdir()) + sorted((FIXTURES / "demo").iterdir())
    usable = []
    for path in files:
        try:
            for _ in iter_transaction_sets(X12Reader(path)):
                pass
        except InputError:
            continue
        usable.append(path)
    return usable


def _parse(path: Path):
    reader = X12Reader(path)
    segments = [list(s.elements) for s in reader]
    return segments, reader.delimiters


def _serialize(segments, d) -> str:
    end = d.segment if d.segment in "\r\n" else d.segment + "\n"
    return "".join(d.element.join(s) + end for s in segments)


_CHARS = "ABCXZ019 -.:^&*~!\t\x07é#%"


def _body(segments) -> list[int]:
    return [i for i, s in enumerate(segments) if s[0] not in ENVELOPE]


def mutate(segments, d, rng: random.Random, pool: dict) -> None:
    """Apply one random mutation in place."""
    body = _body(segments)
    if not body:
        return
    i = rng.choice(body)
    seg = segments[i]
    op = rng.randrange(22)
    if op == 0:  # drop a segment
        del segments[i]
    elif op == 1:  # duplicate a segment
        segments.insert(i, list(seg))
    elif op == 2:  # swap with the next body segment
        if i + 1 < len(segments) and segments[i + 1][0] not in ENVELOPE:
            segments[i], segments[i + 1] = segments[i + 1], segments[i]
    elif op == 3:  # a segment from elsewhere in the file
        segments.insert(i, list(segments[rng.choice(body)]))
    elif op == 4 and len(seg) > 1:  # empty an element
        seg[rng.randrange(1, len(seg))] = ""
    elif op == 5 and len(seg) > 1:  # a value from another element with the same id
        j = rng.randrange(1, len(seg))
        values = pool.get((seg[0], j))
        if values:
            seg[j] = rng.choice(values)
    elif op == 6 and len(seg) > 1:  # a qualifier of another segment of the same id
        values = pool.get((seg[0], 1))
        if values:
            seg[1] = rng.choice(values)
    elif op == 7 and len(seg) > 1:  # too long
        j = rng.randrange(1, len(seg))
        seg[j] = seg[j] + "X" * rng.choice((1, 5, 40, 90))
    elif op == 8 and len(seg) > 1:  # a bad character
        j = rng.randrange(1, len(seg))
        k = rng.randrange(len(seg[j]) + 1)
        seg[j] = seg[j][:k] + rng.choice(_CHARS) + seg[j][k:]
    elif op == 9:  # drop the last elements
        if len(seg) > 2:
            del seg[rng.randrange(2, len(seg)):]
    elif op == 10:  # extra elements
        seg.extend(rng.choice(("", "X", "1")) for _ in range(rng.randrange(1, 4)))
    elif op == 11:  # trailing separator
        seg.append("")
    elif op == 12:  # leading space
        seg[0] = " " + seg[0]
    elif op == 13:  # corrupted or foreign segment id
        seg[0] = rng.choice(("NM2", "XX", "N", "nm1", "REFF", "1AB", "K3", "PWK", "HL", "LX", "CLM", "SV1", "DTP", "NTE", "AMT", "REF", "SBR", "PAT"))
    elif op == 14:  # HL01/HL02 breaks
        hls = [k for k in body if segments[k][0] == "HL" and len(segments[k]) > 2]
        if hls:
            h = segments[rng.choice(hls)]
            h[rng.choice((1, 2))] = rng.choice(("", "0", "1", "2", "99", "A", h[1]))
    elif op == 15:  # LX01 numbering
        lxs = [k for k in body if segments[k][0] == "LX" and len(segments[k]) > 1]
        if lxs:
            segments[rng.choice(lxs)][1] = rng.choice(("0", "2", "7", "", "A"))
    elif op == 16 and len(seg) > 1:  # components: extra, empty, too many
        j = rng.randrange(1, len(seg))
        seg[j] = seg[j] + d.component + rng.choice(("", "X", "1" + d.component * 9 + "Y"))
    elif op == 17 and len(seg) > 1:  # bad date
        j = rng.randrange(1, len(seg))
        seg[j] = rng.choice(("20251399", "20250230", "2025-01-01", "20250101-20250102", "1799", "20240229", "202401011200", "2359", "2460"))
    elif op == 18 and len(seg) > 1:  # numbers
        j = rng.randrange(1, len(seg))
        seg[j] = rng.choice(("-1", "1.", ".5", "1.50", "00012", "12A", "-", "1E3", "123456789012345678"))
    elif op == 19:  # a whole loop dropped (HL to next HL)
        hls = [k for k in body if segments[k][0] == "HL"]
        if hls:
            k = rng.choice(hls)
            end = next((m for m in range(k + 1, len(segments)) if segments[m][0] in ("HL", "SE")), len(segments) - 1)
            del segments[k:end]
    elif op == 20:  # trailing space
        if len(seg) > 1:
            j = rng.randrange(1, len(seg))
            seg[j] = seg[j] + " "
    elif op == 21:  # many repeats of a segment
        for _ in range(rng.choice((2, 5, 12))):
            segments.insert(i, list(seg))


def value_pool(all_segments) -> dict:
    pool: dict = {}
    for segments in all_segments:
        for s in segments:
            for j, v in enumerate(s[1:], start=1):
                pool.setdefault((s[0], j), set()).add(v)
    return {k: sorted(v) for k, v in pool.items()}


def mutants(seed: int, count: int, files: list[Path]):
    """Yield ``(name, text)`` of ``count`` mutated files, reproducible from ``seed``."""
    parsed = [(p, *_parse(p)) for p in files]
    pool = value_pool([s for _p, s, _d in parsed])
    rng = random.Random(seed)
    for n in range(count):
        path, segments, d = rng.choice(parsed)
        segments = [list(s) for s in segments]
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
            mutate(segments, d, rng, pool)
        yield f"{seed}-{n}-{path.name}", _serialize(segments, d)
