"""The command's own surface: rules, explain, configuration errors, summary lines."""

from __future__ import annotations

import pytest

from claimscrub.engine import load_rules
from claimscrub.synth import write_837

from conftest import AS_OF, invoke_claimscrub, run_claimscrub

RULES = load_rules()


def test_rules_lists_every_edit():
    result = invoke_claimscrub("rules")
    assert result.returncode == 0
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert listed == sorted(RULES)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_explain_shows_documentation_and_examples(rule_id):
    result = invoke_claimscrub("explain", rule_id.lower())
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(rule_id)
    for heading in ("What it checks:", "Why payers deny it:", "Failing example:", "Corrected example:", "Source:"):
        assert heading in out
    assert out.count("as 837P:") == 2
    assert RULES[rule_id].source.split()[0] in out or "Source:" in out


def test_explain_unknown_rule():
    result = invoke_claimscrub("explain", "EPI-NOPE-999")
    assert result.returncode == 3
    assert "no rule 'EPI-NOPE-999'" in result.stderr


def test_config_selects_ignores_and_overrides(tmp_path):
    path = tmp_path / "unbalanced.837"
    path.write_text(write_837([{"id": "C1", "charge": 900, "lines": [{"code": "62323", "charge": 500}]}]))
    ignore = tmp_path / "ignore.toml"
    ignore.write_text('ignore = ["EPI-BAL"]\n')
    assert invoke_claimscrub("scrub", str(path), "--out", str(tmp_path / "o1"), "--as-of", AS_OF,
                          "--config", str(ignore)).returncode == 0
    demote = tmp_path / "demote.toml"
    demote.write_text('[payer."00435".severity]\n"EPI-BAL-001" = "warning"\n')
    assert invoke_claimscrub("scrub", str(path), "--out", str(tmp_path / "o2"), "--as-of", AS_OF,
                          "--config", str(demote)).returncode == 0
    other_payer = tmp_path / "other.toml"
    other_payer.write_text('[payer."99999".severity]\n"EPI-BAL-001" = "warning"\n')
    assert invoke_claimscrub("scrub", str(path), "--out", str(tmp_path / "o3"), "--as-of", AS_OF,
                          "--config", str(other_payer)).returncode == 1


@pytest.mark.parametrize("text, words", [
    ('colour = "blue"\n', "unknown key colour"),
    ('[severity]\n"EPI-BAL-001" = "fatal"\n', "use error, warning or info"),
    ('ignore = ["NOPE-1"]\n', "matches no rule"),
    ('[payer."1"]\nsevrity = {}\n', "unknown key sevrity"),
    ("select = [", "not valid TOML"),
])
def test_bad_config_is_a_usage_error(tmp_path, text, words):
    config = tmp_path / "claimscrub.toml"
    config.write_text(text)
    path = tmp_path / "in.837"
    path.write_text(write_837([{"id": "C1", "lines": [{"code": "62323"}]}]))
    result = invoke_claimscrub("scrub", str(path), "--out", str(tmp_path / "o"), "--config", str(config))
    assert result.returncode == 3
    assert words in result.stderr and "Traceback" not in result.stderr


def test_config_found_in_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.claimscrub]\nignore = ["EPI-BAL-001"]\n')
    path = tmp_path / "in.837"
    path.write_text(write_837([{"id": "C1", "charge": 900, "lines": [{"code": "62323", "charge": 500}]}]))
    result = run_claimscrub("scrub", str(path), "--out", str(tmp_path / "o"), "--as-of", AS_OF, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_acknowledgment_control_numbers_are_unique_in_a_run(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in (1, 2):
        (folder / f"f{n}.837").write_text(write_837([{"id": f"C{n}", "member": f"M{n}", "lines": [{"code": "62323"}]}], control=7))
    out = tmp_path / "out"
    result = invoke_claimscrub("scrub", str(folder), "--out", str(out), "--as-of", AS_OF,
                            "--ack-control-number", "500")
    assert result.returncode == 0, result.stderr
    numbers = {}
    for path in sorted(out.glob("*.999")) + sorted(out.glob("*.277")):
        isa = path.read_text().split("~")[0].split("*")
        numbers[path.name] = isa[13]
    assert numbers == {"f1.837.999": "000000500", "f2.837.999": "000000502",
                       "f1.837.277": "000000501", "f2.837.277": "000000503"}
