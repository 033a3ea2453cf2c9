"""The Python API (``claimscrub.scrub``) and the command line give the same results: the
CLI is a layer over the API. Inputs as paths, bytes and streams; an input is never touched."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

import claimscrub
from claimscrub.errors import ConfigError
from claimscrub.synth import write_837

from conftest import AS_OF, FIXTURES, corpus_files, run_claimscrub

DEMO = FIXTURES / "demo" / "pain-clinic-2025-03-03-am.837"


def _fixture_sample() -> list[Path]:
    """A spread of the fixtures (every folder's first files), to keep the test a few seconds."""
    picked = []
    for folder in sorted(p for p in FIXTURES.rglob("*") if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        picked += files[:2]
    return picked


def test_api_and_cli_write_the_same_json_for_the_corpus_and_fixtures(tmp_path):
    inputs = corpus_files() + _fixture_sample()
    if not corpus_files():
        pytest.skip("public corpus not present")
    out = tmp_path / "out"
    # the CLI's run of every input at once; the API's the same inputs, in the same folder
    # (no configuration there), so the run sees the same patient-days
    result = run_claimscrub("scrub", *map(str, inputs), "--out", str(out), "--as-of", AS_OF,
                            "--emit", "json", cwd=tmp_path)
    assert result.returncode in (1, 2), result.stderr
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with claimscrub.scrub([str(p) for p in inputs], as_of=AS_OF) as api_result:
            compared = 0
            for report in api_result.files:
                written = out / f"{report.file_result.out_name}.json"
                if not report.usable:
                    assert not written.exists() and report.error
                    continue
                assert report.to_json() == written.read_text(), report.name
                compared += 1
            assert compared >= len(corpus_files()) - 1
            assert api_result.exit_code() == result.returncode
    finally:
        os.chdir(cwd)


def test_typed_results_and_acknowledgments_match_the_cli(tmp_path):
    out = tmp_path / "out"
    cli = run_claimscrub("scrub", str(DEMO), "--out", str(out), "--as-of", AS_OF, cwd=tmp_path)
    with claimscrub.scrub(DEMO, as_of=AS_OF, config=False) as result:
        report = json.loads(result.to_json())
        claims = list(result.claims())
        assert [c.claim_id for c in claims] == [c["claim_id"] for c in report["claims"]]
        assert [c.status for c in claims] == [c["status"] for c in report["claims"]]
        assert [[f.rule for f in c.findings] for c in claims] == [
            [f["rule"] for f in c["findings"]] for c in report["claims"]]
        summary = result.summary
        assert (summary.claims, summary.accepted, summary.rejected) == (
            report["summary"]["claims"], report["summary"]["accepted"], report["summary"]["rejected"])
        assert summary.rejected and all(c.findings for c in claims if c.rejected)
        assert result.files[0].ack_999 == (out / f"{DEMO.name}.999").read_text()
        assert result.files[0].ack_277 == (out / f"{DEMO.name}.277").read_text()
        assert result.exit_code() == cli.returncode == 1
        assert result.config_file is None


def test_bytes_and_streams_are_scrubbed_like_the_file_and_named(tmp_path):
    data = DEMO.read_bytes()
    with claimscrub.scrub(DEMO, as_of=AS_OF, config=False) as by_path:
        expected = [(c.claim_id, c.status, [f.rule for f in c.findings]) for c in by_path.claims()]
    for given in (data, io.BytesIO(data)):
        with claimscrub.scrub(given, as_of=AS_OF, config=False) as result:
            report = result.files[0]
            assert report.name == "input-1" and report.path is None
            assert [(c.claim_id, c.status, [f.rule for f in c.findings]) for c in report.claims()] == expected
            assert json.loads(result.to_json())["input"] == "input-1"
            spooled = report.file_result.path
            assert os.path.exists(spooled) and os.stat(spooled).st_mode & 0o077 == 0
        assert not os.path.exists(spooled)  # removed when the result is closed
    # two of them in one run: named apart (and duplicates of each other)
    with claimscrub.scrub([data, io.BytesIO(data)], as_of=AS_OF, config=False) as result:
        assert [f.name for f in result.files] == ["input-1", "input-2"]
        assert "EPI-DUP-001" in {f.rule for c in result.claims() for f in c.findings}


def test_a_run_never_touches_its_input(tmp_path):
    path = tmp_path / "in.837"
    path.write_bytes(DEMO.read_bytes())
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    with claimscrub.scrub(path, as_of=AS_OF, config=False, out=str(tmp_path / "o"),
                          accepted_out=str(tmp_path / "acc")) as result:
        assert result.files[0].path == str(path)
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "in.837.277", "in.837.999", "in.837.html", "in.837.json", "index.html"]
    assert (tmp_path / "acc" / "in.837").exists()


def test_validation_is_on_by_default_as_in_the_cli(tmp_path):
    # a claim whose CLM05 composite is missing its facility qualifier: only the
    # implementation-guide validator rejects it (X12-IG-001)
    text = write_837([{"id": "C1", "lines": [{"code": "62323"}]}]).replace("*11:B:1*", "*11::1*")
    assert "*11::1*" in text
    with claimscrub.scrub(text.encode(), as_of=AS_OF, config=False) as result:
        rules = {f.rule for c in result.claims() for f in c.findings}
        assert "X12-IG-001" in rules
    with claimscrub.scrub(text.encode(), as_of=AS_OF, config=False, validate=False) as result:
        assert "X12-IG-001" not in {f.rule for c in result.claims() for f in c.findings}


def test_api_options_match_the_cli_options(tmp_path):
    text = write_837([{"id": "C1", "charge": 900, "lines": [{"code": "62323", "charge": 500}]}]).encode()
    with claimscrub.scrub(text, as_of=AS_OF, config=False) as result:
        assert "EPI-BAL-001" in {f.rule for c in result.claims() for f in c.findings}
    with claimscrub.scrub(text, as_of=AS_OF, config=False, ignore=["EPI-BAL"]) as result:
        assert "EPI-BAL-001" not in {f.rule for c in result.claims() for f in c.findings}
        assert result.exit_code() == 0
    with claimscrub.scrub(text, as_of=AS_OF, config=False, select=["EPI-BAL"]) as result:
        assert {f.rule for c in result.claims() for f in c.findings} == {"EPI-BAL-001"}
    with pytest.raises(ConfigError, match="select must be a list"):
        claimscrub.scrub(text, as_of=AS_OF, config=False, select="EPI-BAL")
    with pytest.raises(ConfigError, match="matches no rule"):
        claimscrub.scrub(text, as_of=AS_OF, config=False, select=["NOPE-1"])
    with pytest.raises(ConfigError, match="qualifier"):
        claimscrub.scrub(text, as_of=AS_OF, config=False, ack_sender="QQ:X1")


def test_unusable_input_is_reported_not_raised():
    with claimscrub.scrub(b"not an x12 file at all", as_of=AS_OF, config=False) as result:
        assert not result.files[0].usable
        assert result.files[0].error.startswith("input-1: ")
        assert result.exit_code() == 2
        with pytest.raises(claimscrub.api.ClaimscrubError):
            result.to_json()


def test_the_package_documents_its_api():
    assert {"scrub", "ScrubResult", "ClaimOutcome", "Summary", "FileReport"} <= set(claimscrub.__all__)
    assert "as_of" in claimscrub.scrub.__doc__ and "validate" in claimscrub.scrub.__doc__
    assert claimscrub.ScrubResult.to_json.__doc__
