"""What a user sees of the claim-level external code checks beyond their case files: the
277CA status of an NPI rejection names the provider entity, and a newer CMS place of service
code set given with ``--rules`` replaces the bundled one."""

from __future__ import annotations

import json
from pathlib import Path

from claimscrub.examples import findings_of
from claimscrub.synth import write_837
from claimscrub.tables import bundled_tables_dir, load_tables

from ackhelpers import pyx12_valid, scrub, segments


def _claim_stc(text: str) -> dict[str, list[str]]:
    """STC of each 2000D patient loop of a 277CA, by CLM01 (TRN02)."""
    out: dict[str, list[str]] = {}
    claim = None
    in_line = False
    for seg in segments(text):
        if seg[0] == "HL":
            claim, in_line = None, False
        elif seg[0] == "TRN" and seg[1] == "2":
            claim = seg[2]
        elif seg[0] == "SVC":
            in_line = True
        elif seg[0] == "STC" and claim is not None and not in_line:
            out[claim] = seg
    return out


def test_npi_rejections_in_the_277ca_name_the_provider_entity(tmp_path):
    text = write_837([
        {"id": "BADREND", "rendering_npi": "1234567890", "lines": [{"code": "62323"}]},
        {"id": "BADREF", "member": "MBR0002", "referring_npi": "1000000005", "lines": [{"code": "62323"}]},
        {"id": "GOOD", "member": "MBR0003", "referring_npi": "1000000004", "lines": [{"code": "62323"}]},
    ])
    path = tmp_path / "npi.837"
    path.write_text(text)
    config = tmp_path / "claimscrub.toml"
    config.write_text('select = ["EPI-NPI"]\n')
    out = scrub(tmp_path, [path], "--config", str(config), structural=False)
    ack = (out / "npi.837.277").read_text()
    assert pyx12_valid(ack)
    stc = _claim_stc(ack)
    assert stc["BADREND"][1] == "A7:562:82" and stc["BADREND"][3] == "U"
    # The referring provider (DN) is not an entity the 277CA allows at claim level: 1P, provider.
    assert stc["BADREF"][1] == "A7:562:1P" and stc["BADREF"][3] == "U"
    assert stc["GOOD"][1].startswith("A2:20")
    report = json.loads((out / "npi.837.json").read_text())
    messages = {c["claim_id"]: [f["message"] for f in c["findings"]] for c in report["claims"]}
    assert messages["BADREND"] == [
        "The rendering provider NPI (loop 2310B NM109) 1234567890 fails the NPI check digit "
        "(its last digit should be 3)."]
    assert messages["BADREF"] == [
        "The referring provider NPI (loop 2310A NM109) 1000000005 fails the NPI check digit "
        "(its last digit should be 4)."]
    assert messages["GOOD"] == []


def test_a_newer_pos_code_set_given_with_rules_replaces_the_bundled_one(tmp_path):
    bundled = (bundled_tables_dir() / "pos_codes.csv").read_text()
    # A code CMS might add later, as a user would load the next release of the code set.
    (tmp_path / "pos_codes.csv").write_text(bundled.rstrip("\n") + "\n28,New Setting,2026-01-01,,yes,\n")
    tables = load_tables(str(tmp_path))
    assert tables.table("pos_codes").path == str(tmp_path / "pos_codes.csv")
    scenario = {"claims": [
        {"id": "EARLY", "member": "MBR0003", "date": "2025-03-03", "pos": "28", "lines": [{"code": "99213"}]},
        {"id": "BEFORE", "date": "2025-12-01", "pos": "28", "lines": [{"code": "99213"}]},
        {"id": "AFTER", "member": "MBR0002", "date": "2026-02-02", "pos": "28", "lines": [{"code": "99213"}]},
    ]}
    found = findings_of("EPI-POS-002", scenario, tables=tables)
    assert [(f.claim_id, f.severity.value) for f in found] == [("EARLY", "error"), ("BEFORE", "error")]
    assert all("only from 2026-01-01" in f.message for f in found)
    # With the bundled code set, 28 is unassigned: an error within the code set's last
    # update (2025-04-26), a warning after it (CMS may have added the code since).
    found = findings_of("EPI-POS-002", scenario)
    assert [(f.claim_id, f.severity.value) for f in found] == [
        ("EARLY", "error"), ("BEFORE", "warning"), ("AFTER", "warning")]
