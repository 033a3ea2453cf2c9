"""Helpers of the acknowledgment and accepted-837 tests: run ``claimscrub scrub`` as a user
would, split X12 text into segments, and ask pyx12 for its verdict on a text."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Optional

import pytest
from click.testing import CliRunner

from claimscrub.cli import main
from claimscrub.x12.envelope import iter_transaction_sets
from claimscrub.x12.reader import X12Reader

from conftest import AS_OF, corpus_files

#: The corpus file without an ISA: unusable input, so it gets no acknowledgment.
NO_ISA = "imsweb__x12-parser__x12_no_isa_line.txt"
#: Only the structural edits, so that exact expectations do not move when billing edits are
#: added (those are covered by the tests that run every edit).
STRUCTURAL_CONFIG = 'select = ["EPI-BAL", "EPI-SYN", "X12"]\n'


def scrub(tmp_path: Path, inputs: list[Path], *extra: str, structural: bool = True) -> Path:
    """``claimscrub scrub INPUTS --out tmp_path/out --as-of AS_OF EXTRA``; the out folder."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    args = ["scrub", *map(str, inputs), "--out", str(out), "--as-of", AS_OF, *extra]
    if structural:
        config = tmp_path / "claimscrub.toml"
        config.write_text(STRUCTURAL_CONFIG)
        args += ["--config", str(config)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1, 2), result.output
    return out


def corpus_inputs() -> list[Path]:
    """The usable public corpus files (all but the one without ISA); skips when absent."""
    files = [p for p in corpus_files() if p.name != NO_ISA]
    if not files:
        pytest.skip("public corpus not present")
    return files


def segments(text: str, element: str = "*", terminator: str = "~") -> list[list[str]]:
    """The segments of an X12 text, each a list of its elements."""
    return [s.strip().split(element) for s in text.split(terminator) if s.strip()]


def claim_ids(path: Path) -> Counter:
    """CLM01 of every claim, read with claimscrub's own reader and envelope iteration."""
    ids: Counter = Counter()
    for ts in iter_transaction_sets(X12Reader(path)):
        ids.update(s.get(1) for s in ts.segments if s.id == "CLM")
    return ids


def _pyx12(text: str, fd_997: Optional[io.StringIO], fd_json: Optional[io.StringIO] = None) -> bool:
    """pyx12's ``x12n_document`` on ``text`` (the map its GS08 names), logging silenced."""
    import pyx12.params
    import pyx12.x12n_document

    log = logging.getLogger("pyx12")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(), src_file=io.StringIO(text), fd_997=fd_997, fd_html=None,
        fd_xmldoc=None, fd_json=fd_json,
    )


def pyx12_valid(text: str) -> bool:
    """Does pyx12 accept ``text``?"""
    return _pyx12(text, io.StringIO())


def pyx12_errors(text: str, version: str) -> list[str]:
    """Every error pyx12 finds in ``text``, whose functional groups must all be ``version``."""
    fd_json = io.StringIO()
    ok = _pyx12(text, None, fd_json)
    doc = json.loads(fd_json.getvalue())
    errors = []
    for isa in doc["interchanges"]:
        errors += [e["err_str"] for e in isa["errors"]]
        for gs in isa["groups"]:
            assert gs["vriic"] == version
            errors += [e["err_str"] for e in gs["errors"]]
            for st in gs["transactions"]:
                errors += [e["err_str"] for e in st["errors"]]
                for seg in st["segments"]:
                    errors += [f"{seg['seg_id']}: {e['err_str']}" for e in seg["errors"]]
                    errors += [f"{seg['seg_id']}: {e['err_str']}" for el in seg["elements"] for e in el["errors"]]
    assert ok == (not errors)
    assert doc["interchanges"], "pyx12 did not read the text at all"
    return errors
