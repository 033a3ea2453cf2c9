"""The command line's conventions, driven as a pipeline drives them: standard input and
output, output formats, --emit, rule selection with the configuration's precedence, -q/-v,
--exit-zero, --fail-on, configuration discovery, acknowledgment ids and the progress display.

What is about the process itself (standard input, the formats on standard output, the
working folder and environment of configuration discovery, whether standard error is a
terminal) runs ``claimscrub`` in a process of its own (``run``); the rest runs the same
command line in the test's process (``invoke``: the same exit status and output, without
an interpreter start per run)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from claimscrub.synth import write_837

import ackhelpers
from conftest import AS_OF, FIXTURES, invoke_claimscrub

DEMO = FIXTURES / "demo" / "pain-clinic-2025-03-03-am.837"
#: a claim whose charge (900) is not the sum of its line (500): EPI-BAL-001, an error
UNBALANCED = [{"id": "C1", "charge": 900, "lines": [{"code": "62323", "charge": 500}]}]


def run(*args: str, cwd: Path, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """``claimscrub ARGS`` in ``cwd`` with ``stdin``, as a pipeline runs it (no terminal)."""
    full_env = {k: v for k, v in os.environ.items() if k != "CLAIMSCRUB_CONFIG"}
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-m", "claimscrub", *args], input=stdin, capture_output=True,
                            cwd=cwd, env=full_env, timeout=300)
    result.stdout_text = result.stdout.decode()  # type: ignore[attr-defined]
    result.stderr_text = result.stderr.decode()  # type: ignore[attr-defined]
    return result


def invoke(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``claimscrub ARGS`` in the test's process, in the working folder ``cwd`` (where the
    configuration is found), without CLAIMSCRUB_CONFIG unless ``env`` sets it."""
    result = invoke_claimscrub(*args, cwd=cwd, env={"CLAIMSCRUB_CONFIG": None, **(env or {})})
    result.stdout_text, result.stderr_text = result.stdout, result.stderr  # type: ignore[attr-defined]
    return result


def rules_of(result) -> set[str]:
    return {f["rule"] for c in json.loads(result.stdout_text)[0]["claims"] for f in c["findings"]}


# -- standard input and output --------------------------------------------------------------


def test_stdin_to_json_on_stdout_writes_no_file(tmp_path):
    result = run("scrub", "-", "--format", "json", "--as-of", AS_OF, cwd=tmp_path, stdin=DEMO.read_bytes())
    assert result.returncode == 1, result.stderr_text
    documents = json.loads(result.stdout_text)
    assert len(documents) == 1 and documents[0]["input"] == "<stdin>"
    assert documents[0]["summary"]["claims"] == 12 and documents[0]["summary"]["rejected"] == 8
    assert list(tmp_path.iterdir()) == []  # --format without --out: nothing written
    assert "<stdin>: 12 claims, 4 accepted, 8 rejected" in result.stderr_text


def test_jsonl_is_one_claim_per_line(tmp_path):
    result = run("scrub", str(DEMO), "--format", "jsonl", "--as-of", AS_OF, cwd=tmp_path)
    lines = result.stdout_text.splitlines()
    claims = [json.loads(line) for line in lines]
    assert len(claims) == 12 and {c["input"] for c in claims} == {DEMO.name}
    assert sum(c["status"] == "rejected" for c in claims) == 8
    assert all(isinstance(c["findings"], list) for c in claims)


def test_csv_is_one_finding_per_row(tmp_path):
    result = run("scrub", "-", "--format", "csv", "--as-of", AS_OF, cwd=tmp_path, stdin=DEMO.read_bytes())
    rows = list(csv.DictReader(io.StringIO(result.stdout_text)))
    assert len(rows) == 9  # the demo's 9 findings
    assert rows[0].keys() >= {"input", "claim_id", "rule", "severity", "message", "fix", "segment"}
    assert {r["rule"] for r in rows} >= {"EPI-IMG-001", "EPI-BAL-001", "EPI-LCD-003"}
    assert all(r["input"] == "<stdin>" and r["claim_id"].startswith("PM250303-") for r in rows)


def test_text_is_a_line_per_finding_and_a_summary(tmp_path):
    result = run("scrub", str(DEMO), "--format", "text", "--as-of", AS_OF, "-q", cwd=tmp_path)
    lines = result.stdout_text.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith(f"{DEMO.name}:56: EPI-IMG-001 error claim PM250303-03 line 2: ")
    assert lines[-1] == ("Found 9 findings (8 errors, 1 warning, 0 info) in 12 claims: "
                         "4 accepted, 8 rejected.")
    assert result.stderr_text == ""  # -q: nothing but errors on standard error


def test_emit_chooses_the_files(tmp_path):
    out = tmp_path / "out"
    result = run("scrub", "-", "--out", str(out), "--emit", "json,999", "--as-of", AS_OF, cwd=tmp_path,
                 stdin=DEMO.read_bytes())
    assert result.returncode == 1, result.stderr_text
    assert sorted(p.name for p in out.iterdir()) == ["stdin.999", "stdin.json"]
    assert json.loads((out / "stdin.json").read_text())["input"] == "<stdin>"
    # --format with --emit: both
    result = invoke("scrub", str(DEMO), "--format", "csv", "--emit", "accepted", "--accepted-out",
                 str(tmp_path / "acc"), "--as-of", AS_OF, cwd=tmp_path)
    assert result.stdout_text.startswith("input,claim_id")
    assert [p.name for p in (tmp_path / "acc").iterdir()] == [DEMO.name]
    bad = invoke("scrub", str(DEMO), "--emit", "json,pdf", "--out", str(out), cwd=tmp_path)
    assert bad.returncode == 3 and "unknown output pdf" in bad.stderr_text
    no_out = invoke("scrub", str(DEMO), "--emit", "json", cwd=tmp_path)
    assert no_out.returncode == 3 and "--out" in no_out.stderr_text


# -- selection, exit status ------------------------------------------------------------------


def test_command_line_selection_over_the_configuration(tmp_path):
    (tmp_path / "in.837").write_text(write_837(UNBALANCED))
    args = ("scrub", "in.837", "--format", "json", "--as-of", AS_OF, "--no-validate")
    (tmp_path / "claimscrub.toml").write_text('ignore = ["EPI-BAL"]\n')
    assert "EPI-BAL-001" not in rules_of(invoke(*args, cwd=tmp_path))
    # --select replaces the file's selection (its ignore too), as ruff's does
    assert rules_of(invoke(*args, "--select", "EPI-BAL", cwd=tmp_path)) == {"EPI-BAL-001"}
    # --extend-select adds to it, --ignore takes away whatever the file selected
    assert "EPI-BAL-001" in rules_of(invoke(*args, "--extend-select", "EPI-BAL-001", cwd=tmp_path))
    (tmp_path / "claimscrub.toml").write_text('select = ["EPI-BAL-001"]\n')
    result = invoke(*args, "--ignore", "EPI-BAL", cwd=tmp_path)
    assert rules_of(result) == set() and result.returncode == 0
    bad = invoke(*args, "--select", "NOPE", cwd=tmp_path)
    assert bad.returncode == 3 and "--select 'NOPE' matches no rule" in bad.stderr_text


def test_exit_zero_and_fail_on(tmp_path):
    (tmp_path / "in.837").write_text(write_837(UNBALANCED))
    base = ("scrub", "in.837", "--format", "json", "--as-of", AS_OF, "--no-validate", "-q")
    assert invoke(*base, cwd=tmp_path).returncode == 1
    assert invoke(*base, "--exit-zero", cwd=tmp_path).returncode == 0
    (tmp_path / "claimscrub.toml").write_text('[severity]\n"EPI-BAL-001" = "warning"\n')
    assert invoke(*base, cwd=tmp_path).returncode == 0  # a warning rejects nothing
    assert invoke(*base, "--fail-on", "warning", cwd=tmp_path).returncode == 1
    assert invoke(*base, "--fail-on", "warning", "--exit-zero", cwd=tmp_path).returncode == 0
    (tmp_path / "bad.837").write_text("not x12")
    assert invoke("scrub", "bad.837", "--format", "json", "--exit-zero", cwd=tmp_path).returncode == 2


def test_verbose_prints_the_configuration_and_stage_timings(tmp_path):
    result = invoke("scrub", str(DEMO), "--format", "json", "--as-of", AS_OF, "-v", cwd=tmp_path)
    lines = result.stderr_text.splitlines()
    assert "configuration: none found (every edit at its default severity)" in lines
    timing = [line for line in lines if line.startswith("timings: ")]
    assert timing and all(stage in timing[0] for stage in ("read ", "validate ", "edit "))


def test_rules_as_json(tmp_path):
    result = invoke("rules", "--format", "json", cwd=tmp_path)
    rules = json.loads(result.stdout_text)
    text = invoke("rules", cwd=tmp_path).stdout_text.splitlines()
    assert [r["id"] for r in rules] == [line.split()[0] for line in text]
    assert all(r["severity"] in ("error", "warning", "info") and r["summary"] for r in rules)


# -- configuration ---------------------------------------------------------------------------


def test_configuration_discovery_order(tmp_path):
    (tmp_path / "in.837").write_text(write_837(UNBALANCED))
    (tmp_path / "claimscrub.toml").write_text('ignore = ["EPI-BAL"]\n')
    work = tmp_path / "cron" / "job"
    work.mkdir(parents=True)
    args = ("scrub", str(tmp_path / "in.837"), "--format", "json", "--as-of", AS_OF, "--no-validate", "-v")
    # found in a parent of the working folder, named with -v and in the JSON
    result = run(*args, cwd=work)
    assert result.returncode == 0, result.stderr_text
    found = str(tmp_path / "claimscrub.toml")
    assert json.loads(result.stdout_text)[0]["config_file"] == found
    assert any(line.startswith("configuration: ") and line.endswith("claimscrub.toml")
               for line in result.stderr_text.splitlines())
    # a pyproject.toml nearer the working folder wins
    (tmp_path / "cron" / "pyproject.toml").write_text('[tool.claimscrub]\nselect = ["EPI-BAL"]\n')
    result = run(*args, cwd=work)
    assert json.loads(result.stdout_text)[0]["config_file"] == str(tmp_path / "cron" / "pyproject.toml")
    assert result.returncode == 1
    # CLAIMSCRUB_CONFIG beats the files found, --config beats CLAIMSCRUB_CONFIG
    env_config = tmp_path / "env.toml"
    env_config.write_text('ignore = ["EPI-BAL-001"]\n')
    result = run(*args, cwd=work, env={"CLAIMSCRUB_CONFIG": str(env_config)})
    assert json.loads(result.stdout_text)[0]["config_file"] == str(env_config) and result.returncode == 0
    result = run(*args, "--config", found, cwd=work, env={"CLAIMSCRUB_CONFIG": str(env_config)})
    assert json.loads(result.stdout_text)[0]["config_file"] == found
    missing = run(*args, cwd=work, env={"CLAIMSCRUB_CONFIG": str(tmp_path / "nope.toml")})
    assert missing.returncode == 3 and "nope.toml: cannot be read" in missing.stderr_text


def test_payer_level_select_runs_only_those_edits_for_that_payer(tmp_path):
    (tmp_path / "in.837").write_text(write_837(UNBALANCED))  # payer 00435
    args = ("scrub", "in.837", "--format", "json", "--as-of", AS_OF, "--no-validate")
    (tmp_path / "claimscrub.toml").write_text('[payer."00435"]\nselect = ["EPI-MOD"]\n')
    result = invoke(*args, cwd=tmp_path)
    assert rules_of(result) == set() and result.returncode == 0, result.stderr_text
    (tmp_path / "claimscrub.toml").write_text('[payer."99999"]\nselect = ["EPI-MOD"]\n')
    assert rules_of(invoke(*args, cwd=tmp_path)) == {"EPI-BAL-001"}  # another payer's section


@pytest.mark.parametrize("text, words", [
    ('select = "EPI-BAL"\n', 'select must be a list of rule ids or prefixes, not a string'),
    ('[payer."00435"]\nignore = "EPI-BAL"\n', "payer.00435.ignore must be a list"),
    ('extend-select = "EPI"\n', "extend-select must be a list"),
    ('rules = ["a"]\n', "rules must be a folder path, not a list"),
    ('[ack]\nsender = "QQ:ME"\n', "ack.sender: qualifier 'QQ' is not an interchange id qualifier"),
    ('[ack]\nsendr = "ZZ:ME"\n', "ack: unknown key sendr"),
])
def test_configuration_mistakes_are_one_line_naming_the_key(tmp_path, text, words):
    (tmp_path / "claimscrub.toml").write_text(text)
    (tmp_path / "in.837").write_text(write_837(UNBALANCED))
    result = invoke("scrub", "in.837", "--format", "json", cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr_text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("claimscrub: ") and "claimscrub.toml" in lines[0], lines
    assert words in lines[0]


# -- acknowledgments -------------------------------------------------------------------------


def _envelope(text: str) -> tuple[list[str], list[str]]:
    segments = ackhelpers.segments(text)
    return next(s for s in segments if s[0] == "ISA"), next(s for s in segments if s[0] == "GS")


def test_acknowledgment_ids_from_the_command_line_and_the_configuration(tmp_path):
    (tmp_path / "in.837").write_text(write_837([{"id": "C1", "lines": [{"code": "62323"}]}]))
    out = tmp_path / "out"
    result = invoke("scrub", "in.837", "--out", str(out), "--as-of", AS_OF, "--ack-sender", "ZZ:CLEARHOUSE01",
                 "--ack-receiver", "30:123456789", cwd=tmp_path)
    assert result.returncode == 0, result.stderr_text
    for suffix in (".999", ".277"):
        isa, gs = _envelope((out / f"in.837{suffix}").read_text())
        assert isa[5:9] == ["ZZ", "CLEARHOUSE01   ", "30", "123456789      "]
        assert gs[2:4] == ["CLEARHOUSE01", "123456789"]
    assert ackhelpers.pyx12_errors((out / "in.837.999").read_text(), "005010X231A1") == []
    # the default: the input's ids swapped
    invoke("scrub", "in.837", "--out", str(tmp_path / "plain"), "--as-of", AS_OF, cwd=tmp_path)
    isa, gs = _envelope((tmp_path / "plain" / "in.837.999").read_text())
    assert (isa[6].strip(), isa[8].strip(), gs[2], gs[3]) == ("RECEIVER01", "SUBMITTER01", "RECEIVER01", "SUBMITTER01")
    # from the configuration; the command line wins over it
    (tmp_path / "claimscrub.toml").write_text('[ack]\nsender = "01:987654321"\nreceiver = "ZZ:PRACTICE"\n')
    invoke("scrub", "in.837", "--out", str(tmp_path / "conf"), "--as-of", AS_OF, "--ack-receiver", "ZZ:OTHER",
        cwd=tmp_path)
    isa, gs = _envelope((tmp_path / "conf" / "in.837.999").read_text())
    assert (isa[5], isa[6].strip(), isa[7], isa[8].strip()) == ("01", "987654321", "ZZ", "OTHER")
    assert ackhelpers.pyx12_errors((tmp_path / "conf" / "in.837.999").read_text(), "005010X231A1") == []


@pytest.mark.parametrize("value, words", [
    ("CLEARHOUSE", "is not QUALIFIER:ID"),
    ("99:CLEARHOUSE", "qualifier '99' is not an interchange id qualifier"),
    ("ZZ:" + "X" * 16, "the id must be 2 to 15 characters"),
    ("ZZ:A", "the id must be 2 to 15 characters"),
    ("ZZ:AB*CD", "a character X12 does not allow"),
])
def test_bad_acknowledgment_ids_are_usage_errors(tmp_path, value, words):
    (tmp_path / "in.837").write_text(write_837([{"id": "C1", "lines": [{"code": "62323"}]}]))
    result = invoke("scrub", "in.837", "--out", str(tmp_path / "o"), "--ack-sender", value, cwd=tmp_path)
    assert result.returncode == 3 and words in result.stderr_text and "--ack-sender" in result.stderr_text
    assert not (tmp_path / "o").exists()


# -- progress --------------------------------------------------------------------------------


def test_progress_shows_stages_and_rate_when_asked_and_nothing_without_a_terminal(tmp_path):
    forced = run("scrub", str(DEMO), "--out", str(tmp_path / "o1"), "--as-of", AS_OF, "--progress", cwd=tmp_path)
    assert forced.returncode == 1
    for stage in ("read", "validate", "edit", "write"):
        assert stage in forced.stderr_text
    assert "claims/s" in forced.stderr_text and "left" in forced.stderr_text
    # captured standard error is not a terminal: no display (only the summary lines)
    quiet = run("scrub", str(DEMO), "--out", str(tmp_path / "o2"), "--as-of", AS_OF, cwd=tmp_path)
    assert "claims/s" not in quiet.stderr_text and "\x1b" not in quiet.stderr_text
    assert quiet.stderr_text.splitlines() == [
        f"{DEMO.name}: 12 claims, 4 accepted, 8 rejected, 9 findings",
        "total: 1 file, 12 claims, 4 accepted, 8 rejected"]
    off = run("scrub", str(DEMO), "--out", str(tmp_path / "o3"), "--as-of", AS_OF, "--no-progress", cwd=tmp_path)
    assert "claims/s" not in off.stderr_text
