"""The claim builder skips pydantic's validation of the values it has already parsed
(claimscrub.records.trusted_constructor): every claim it builds from the corpus, the
fixtures and a synthetic batch must be what pydantic would have made of the same values,
value for value and type for type."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from claimscrub.claims import build_claims
from claimscrub.model import Claim, ServiceLine
from claimscrub.records import trusted_constructor
from claimscrub.x12.envelope import iter_transaction_sets
from claimscrub.x12.reader import X12Reader

from conftest import FIXTURES, ROOT, corpus_files

_spec = importlib.util.spec_from_file_location("claimscrub_bench_run_models", ROOT / "benchmarks" / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)


def _claims(path: Path) -> list[Claim]:
    reader = X12Reader(str(path), path.name)
    out: list[Claim] = []
    try:
        for ts in iter_transaction_sets(reader):
            out.extend(build_claims(ts, reader.delimiters, path.name, len(out)))
    except Exception:  # noqa: BLE001 - an unusable file has no claims to compare
        pass
    return out


def _same(built, validated, where: str) -> None:
    """``built`` and ``validated`` hold equal values of the same types, all the way down."""
    assert type(built) is type(validated), where
    if isinstance(built, BaseModel):
        assert built.__dict__.keys() == validated.__dict__.keys(), where
        for name, value in built.__dict__.items():
            _same(value, validated.__dict__[name], f"{where}.{name}")
    elif isinstance(built, (list, tuple)):
        assert len(built) == len(validated), where
        for i, (a, b) in enumerate(zip(built, validated)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert built == validated, where


def _inputs() -> list[Path]:
    return corpus_files() + sorted(FIXTURES.rglob("*.837")) + sorted(FIXTURES.rglob("*.txt"))


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: p.name)
def test_built_claims_are_what_pydantic_validates(path: Path) -> None:
    for claim in _claims(path):
        _same(claim, Claim.model_validate(claim.model_dump()), f"{path.name} claim {claim.index}")


def test_a_synthetic_batch_is_built_as_pydantic_validates(tmp_path: Path) -> None:
    path = tmp_path / "batch.837"
    bench_run.generate(300, path, claims_per_transaction=100)
    claims = _claims(path)
    assert len(claims) == 300
    for claim in claims:
        _same(claim, Claim.model_validate(claim.model_dump()), f"claim {claim.index}")


def test_defaults_are_fresh_lists_and_unknown_fields_are_refused() -> None:
    build = trusted_constructor(ServiceLine)
    first, second = build({"number": "1", "pos": 1, "last_pos": 1}), build({"number": "2", "pos": 2, "last_pos": 2})
    assert first.modifiers == [] and first.modifiers is not second.modifiers
    assert first == ServiceLine(number="1", pos=1, last_pos=1)
    assert first.model_fields_set == {"number", "pos", "last_pos"}
    with pytest.raises(TypeError):
        build({"number": "1", "pos": 1, "last_pos": 1, "charge_amount": Decimal(1)})
    with pytest.raises(KeyError):
        build({"number": "1", "pos": 1})
