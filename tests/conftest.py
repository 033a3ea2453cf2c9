"""Shared test helpers: paths to the corpus and fixtures, and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

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
    """Run the installed command as a user would, capturing its output, in a process of its
    own (``python -m claimscrub``)."""
    return subprocess.run(
        [sys.executable, "-m", "claimscrub", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def invoke_claimscrub(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The same command line run in the test's process (click's runner): the same exit
    status, standard output and error, without an interpreter start per run. For tests
    that need nothing of a process of their own (signals, limits, standard input, a
    terminal). ``cwd``: the working folder during the run (configuration discovery);
    ``env``: variables set during the run, a value of None unsets one."""
    import os

    from click.testing import CliRunner

    from claimscrub.cli import main

    before = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner(env=env).invoke(main, [str(a) for a in args])
    finally:
        os.chdir(before)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli():
    return run_claimscrub


class CorpusNight(NamedTuple):
    """One run of the whole public corpus (see ``corpus_night``)."""

    files: list[Path]  #: every corpus file, the one without ISA included, in this order
    out: Path  #: the --out folder: NAME.json, NAME.html, NAME.999, NAME.277 per usable file
    result: subprocess.CompletedProcess  #: exit status, standard output and error


@pytest.fixture(scope="session")
def corpus_night(tmp_path_factory) -> CorpusNight:
    """The whole public corpus scrubbed as one night's batch with the user's defaults:
    ``claimscrub scrub FILES --out OUT --as-of AS_OF`` (every edit, the compiled guide, the
    JSON, HTML, 999 and 277CA of every file). A corpus run takes over ten seconds, so the
    tests of reading, the 999 and the 277CA read this one run instead of each scrubbing the
    corpus again (once per test process: pytest-xdist runs session fixtures per worker).

    Run in-process (``invoke_claimscrub``): the command in a process of its own gave the
    same exit status, standard output, standard error and files byte for byte."""
    files = corpus_files()
    if not files:
        pytest.skip("public corpus not present")
    out = tmp_path_factory.mktemp("corpus_night") / "out"
    result = invoke_claimscrub("scrub", *map(str, files), "--out", str(out), "--as-of", AS_OF)
    return CorpusNight(files, out, result)


def report_validator():
    """A JSON Schema validator of the JSON report, from ``claimscrub schema`` (as a pipeline
    would get it), with format checks (dates)."""
    import json

    from jsonschema import Draft202012Validator

    done = run_claimscrub("schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def is_report(document) -> bool:
    """A claimscrub JSON report (by its shape, so a report that lost its version is caught)."""
    return isinstance(document, dict) and {"summary", "claims"} <= document.keys()


#: Claims of one report checked in full; past it, an even sample of this many (every claim is
#: written by the same function, and the schema check costs about 1 ms a claim: the suite
#: writes tens of thousands of claims). Findings are checked on every sampled claim.
SCHEMA_SAMPLE = 8


def schema_errors(validator, path: Path) -> list[str]:
    import json

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return []
    if not is_report(document):
        return []
    claims = document.get("claims")
    if isinstance(claims, list) and len(claims) > SCHEMA_SAMPLE:
        # an even sample, the last claim, and the first claim of each rule's findings
        step = len(claims) / SCHEMA_SAMPLE
        keep = {int(i * step) for i in range(SCHEMA_SAMPLE)} | {len(claims) - 1}
        seen: set = set()
        for index, claim in enumerate(claims):
            rules = {f.get("rule") for f in claim.get("findings", []) if isinstance(f, dict)} \
                if isinstance(claim, dict) else set()
            if rules - seen:
                keep.add(index)
                seen |= rules
        document["claims"] = [claims[i] for i in sorted(keep)]
    return [
        f"{path}: {'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ][:5]


@pytest.fixture(scope="session", autouse=True)
def every_json_report_matches_the_schema(tmp_path_factory):
    """After the session: every JSON report the tests wrote under their temporary folders
    (CLI runs and API runs alike) is valid against the schema `claimscrub schema` prints."""
    yield
    base = tmp_path_factory.getbasetemp()
    reports = [p for p in base.rglob("*.json") if p.is_file()]
    if not reports:
        return
    validator = report_validator()
    errors = [e for p in reports for e in schema_errors(validator, p)]
    assert not errors, "JSON reports not valid against `claimscrub schema`:\n" + "\n".join(errors[:20])
