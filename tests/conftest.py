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
    corpus again (once in the session: its tests are grouped onto one pytest-xdist worker,
    see pytest_collection_modifyitems).

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


_SCOPES = {"session": 0, "package": 1, "module": 2, "class": 3}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With ``--dist loadgroup`` (pyproject's addopts): the tests that share a fixture of
    the suite's own wider than a test (a corpus run, a snapshot, tables, a cluster), and
    the tests sharing a fixture with those, form one group, which pytest-xdist gives to
    one worker: the fixture is built once, not once per worker that gets one of its tests."""
    # a pytest-xdist worker is told by ``loadgroup`` (its own ``dist`` is "no")
    if not getattr(config.option, "loadgroup", False) and config.getoption("dist", "no") != "loadgroup":
        return
    tests = Path(__file__).resolve().parent
    parent: dict = {}

    def root(key):
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    shared_of = []
    for item in items:
        shared = []
        fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        for name, definitions in fixtures.items():
            definition = definitions[-1]
            if definition.scope not in _SCOPES or name == "every_json_report_matches_the_schema":
                continue
            if not Path(definition.func.__code__.co_filename).resolve().is_relative_to(tests):
                continue  # pytest's own (tmp_path_factory) and plugins'
            module = Path(definition.baseid).stem  # "tests" for this file's
            shared.append((_SCOPES[definition.scope], name if module == tests.name else f"{module}.{name}"))
        for key in shared[1:]:
            parent[root(key)] = root(shared[0])
        shared_of.append(shared)
    names: dict = {}
    for shared in shared_of:  # each group named by its widest fixture
        for key in shared:
            names[root(key)] = min(names.get(root(key), key), key)
    for item, shared in zip(items, shared_of):
        if shared and not list(item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(names[root(shared[0])][1]))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session):
    """pytest-xdist 3.8 tells its scheduler a test's group by appending ``@GROUP`` to the
    test id (in its pytest_collection_modifyitems, before the ids are sent to the
    scheduler here), writing ``item._nodeid``, which pytest 9.2's structured ids ignore:
    the groups are silently ignored (pytest-dev/pytest-xdist#1386). Where that happened,
    this writes the same id the structured way (the fix proposed upstream, #1388); with a
    pytest-xdist that groups by itself it does nothing."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # a pytest whose ids xdist still writes itself
        return
    for item in session.items:
        groups = {str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                  for m in item.iter_markers("xdist_group")}
        suffix = "@" + "_".join(sorted(groups))
        if groups and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = NodeId.parse(item.nodeid + suffix)


class _SchemaCheck:
    """The JSON reports of this test process checked so far, each in the state it was
    checked in (modification time and size): a report is checked again only if it changed."""

    def __init__(self) -> None:
        self.validator = None
        self.checked: dict[Path, tuple[int, int]] = {}

    def errors(self, folder: Path) -> list[str]:
        errors = []
        for path in sorted(folder.rglob("*.json")):
            try:
                stat = path.stat()
            except OSError:
                continue
            state = (stat.st_mtime_ns, stat.st_size)
            if not path.is_file() or self.checked.get(path) == state:
                continue
            if self.validator is None:
                self.validator = report_validator()
            errors += schema_errors(self.validator, path)
            self.checked[path] = state
        return errors


_schema_check = _SchemaCheck()
_SCHEMA_FAILURE = "JSON reports not valid against `claimscrub schema`:\n"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """The reports a test wrote under its own tmp_path are checked as it ends (so the
    checks are spread over the run and its workers rather than all left to the end);
    the session's end checks every other one, and any changed since."""
    tmp_path = (getattr(item, "funcargs", None) or {}).get("tmp_path")
    result = yield
    if tmp_path is not None and Path(tmp_path).is_dir():
        errors = _schema_check.errors(Path(tmp_path))
        assert not errors, _SCHEMA_FAILURE + "\n".join(errors[:20])
    return result


@pytest.fixture(scope="session", autouse=True)
def every_json_report_matches_the_schema(tmp_path_factory):
    """After the session: every JSON report the tests wrote under their temporary folders
    (CLI runs and API runs alike) is valid against the schema `claimscrub schema` prints,
    in its final state (those under a test's tmp_path were checked as the test ended)."""
    yield
    errors = _schema_check.errors(tmp_path_factory.getbasetemp())
    assert not errors, _SCHEMA_FAILURE + "\n".join(errors[:20])
