"""Shared test helpers: paths to the corpus and fixtures, and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "837" / "public"
ACK_CORPUS = ROOT.parent / "shared" / "corpus" / "ack" / "public"
FIXTURES = ROOT / "fixtures" / "837"
AS_OF = "2026-11-22"


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name != "MANIFEST.md")


def run_claimscrub(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed command as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "claimscrub", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def cli():
    return run_claimscrub
