"""The compiled implementation guide (``--validator compiled``) gives exactly pyx12's
verdicts: the same IGError lists (segment, IK3/IK4 codes, element positions, data element
numbers, bad values, messages, loops) and the same transaction-set codes, on every corpus
file, every fixture and the demo, on seeded mutations of them with pyx12 as the oracle,
and through the CLI the same reports, 999s and 277CAs byte for byte.

A few hundred mutants run in the normal suite; ``make difftest`` (``GUIDE_DIFF_N``) runs
thousands, from every source file including the two large ones.
"""

from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path

import pytest

import guidediff
from ackhelpers import scrub
from conftest import FIXTURES, corpus_files

#: mutants in the normal suite, and in ``make difftest``
QUICK_MUTANTS = 300
CHUNK = 50
DIFF_N = int(os.environ.get("GUIDE_DIFF_N", "0") or 0)


def _sources() -> list[Path]:
    return guidediff.sources()


# -- corpus, fixtures, demo ------------------------------------------------------------
def _all_inputs() -> list[Path]:
    files = corpus_files() + sorted((FIXTURES / "edits").iterdir()) + sorted((FIXTURES / "demo").iterdir())
    return [p for p in files if p.name != "MANIFEST.md"]


@pytest.mark.parametrize("path", _all_inputs(), ids=lambda p: p.name)
def test_identical_to_pyx12_on_every_input(path):
    # against Pyx12Validator as the product runs it (large sets validated in slices)
    assert guidediff.compare(path, slice_segments=4000) == []


def test_inputs_are_not_trivially_clean():
    """The comparison means something: the corpus gives pyx12 plenty to report."""
    from claimscrub.guide.validator import CompiledValidator

    total = 0
    for path in corpus_files():
        for value in guidediff.results(CompiledValidator(), path).values():
            if isinstance(value, tuple):
                total += len(value[0])
    assert total > 50


# -- mutants ---------------------------------------------------------------------------
def _small_sources() -> list[Path]:
    return [p for p in _sources() if p.stat().st_size < 40_000]


def _check_mutants(tmp_path: Path, seed: int, count: int, files: list[Path]) -> None:
    differences = []
    for name, text in guidediff.mutants(seed, count, files):
        path = tmp_path / name
        path.write_text(text)
        found = guidediff.compare(path)
        if found:
            differences.append(found[:5])
        else:
            path.unlink()
    assert not differences, json.dumps(differences[:5], indent=1, default=str)


@pytest.mark.parametrize("chunk", range(QUICK_MUTANTS // CHUNK))
def test_identical_to_pyx12_on_mutants(tmp_path, chunk):
    if not corpus_files():
        pytest.skip("public corpus not present")
    _check_mutants(tmp_path, 1000 + chunk, CHUNK, _small_sources())


@pytest.mark.skipif(not DIFF_N, reason="set GUIDE_DIFF_N (make difftest) for the long run")
@pytest.mark.parametrize("chunk", range(max(1, DIFF_N // 100)))
def test_identical_to_pyx12_on_many_mutants(tmp_path, chunk):
    _check_mutants(tmp_path, 5000 + chunk, 100, _sources())


def test_mutants_exercise_every_kind_of_error(tmp_path):
    """The mutations reach the walk, the reader and every element check."""
    from claimscrub.guide.validator import CompiledValidator

    codes = set()
    for name, text in guidediff.mutants(77, 150, _small_sources()):
        path = tmp_path / name
        path.write_text(text)
        for value in guidediff.results(CompiledValidator(), path).values():
            if isinstance(value, tuple):
                codes.update((e.element is not None, e.code) for e in value[0])
                codes.update(("ts", c) for c in value[1])
    segment_codes = {c for is_element, c in codes if is_element is False}
    element_codes = {c for is_element, c in codes if is_element is True}
    # (IK304 2 "not used" cannot occur with this map: its only not-used node is the empty
    # FOOTER loop, which no segment can enter)
    assert {"1", "3", "4", "5", "8"} <= segment_codes, segment_codes
    assert {"1", "4", "5", "6", "7", "8", "I12"} <= element_codes, element_codes


# -- through the CLI: reports and acknowledgments byte for byte --------------------------
def test_cli_outputs_identical(tmp_path):
    # the two large corpus files are left out here only for time (their writers take
    # minutes); their validation is compared above and their dispositions in the golden test
    inputs = [p for p in _all_inputs() if p.stat().st_size < 40_000]
    compiled = scrub(tmp_path / "compiled", inputs, "--validator", "compiled", structural=False)
    pyx12 = scrub(tmp_path / "pyx12", inputs, "--validator", "pyx12", "--jobs", "1", structural=False)
    names = sorted(p.name for p in pyx12.iterdir())
    assert names == sorted(p.name for p in compiled.iterdir())
    assert any(n.endswith(".999") for n in names)
    _match, mismatch, errors = filecmp.cmpfiles(pyx12, compiled, names, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


def test_golden_with_the_compiled_guide(monkeypatch):
    """The frozen dispositions and findings (tests/expected/golden) hold with the
    compiled guide in place of pyx12."""
    import claimscrub.validate
    from claimscrub.guide.validator import CompiledValidator
    from golden import GOLDEN, snapshot

    monkeypatch.setattr(claimscrub.validate, "Pyx12Validator", lambda jobs=1: CompiledValidator(jobs=jobs))
    current = snapshot()
    for group in ("corpus", "fixtures", "demo"):
        expected = json.loads((GOLDEN / f"{group}.json").read_text())
        got = json.loads(json.dumps(current[group], sort_keys=True))
        assert got == expected, group
