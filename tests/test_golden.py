"""Dispositions and findings on the corpus, the fixtures and the demo are those frozen in
tests/expected/golden/ (see tests/golden.py): a change to them must be deliberate and
committed with the regenerated golden files."""

from __future__ import annotations

import json

import pytest

from golden import GOLDEN, snapshot


@pytest.fixture(scope="module")
def current():
    return snapshot()


@pytest.mark.parametrize("group", ["corpus", "fixtures", "demo"])
def test_golden(current, group):
    expected = json.loads((GOLDEN / f"{group}.json").read_text())
    got = json.loads(json.dumps(current[group], sort_keys=True))
    assert sorted(got) == sorted(expected), "files differ"
    for name in expected:
        assert got[name] == expected[name], f"{group}/{name} changed; if meant, run python tests/golden.py --update"
