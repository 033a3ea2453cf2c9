"""The HTML report, read the way a billing specialist's browser reads it: parsed with lxml
and checked against the JSON report of the same run and against the input segments."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree, html

from claimscrub.config import parse_config
from claimscrub.engine import load_rules
from claimscrub.report.html_report import MASK, write_html
from claimscrub.scrub import ScrubOptions, Scrubber
from claimscrub.synth import write_837

from conftest import AS_OF, FIXTURES, corpus_files, invoke_claimscrub

# Distinctive person data that must never reach the page.
MEMBER_ID = "ZQX98765432"
SUB_LAST, SUB_FIRST = "QUIGGLESWORTH", "PERPETUA"
DEP_LAST, DEP_FIRST = "ZEBRAFINCH", "OCTAVIAN"
OTHER_LAST, OTHER_FIRST, OTHER_ID = "VANDERHOOVEN", "CLEMENTINE", "OTH55512399"
SSN = "987654320"
MRN = "MRN77341"
PHI = [MEMBER_ID, SUB_LAST, SUB_FIRST, DEP_LAST, DEP_FIRST, OTHER_LAST, OTHER_FIRST, OTHER_ID, SSN, MRN,
       "1 MAIN ST", "42 ELM ST", "19571231", "20100101"]

HOSTILE_ID = "<script>alert(1)</script>&Co"
HOSTILE_DX = "M5416&<b>"

CLAIMS = [
    {"id": "CLEAN1", "lines": [{"code": "62323", "charge": 500}]},
    # EPI-BAL-001: CLM02 999 against lines summing to 600
    {"id": "BAL1", "charge": 999, "lines": [{"code": "62323", "charge": 500}, {"code": "99214", "charge": 100}]},
    # EPI-SYN-002: units 0 on line 1 (downgraded to a warning by the config below)
    {"id": "UNITS0", "lines": [{"code": "62323", "charge": 500, "units": 0}]},
    # EPI-SYN-004: pointer 5 with one diagnosis; the patient is a dependent with a name
    {"id": "PTR5", "patient": {"dependent": True, "last": DEP_LAST, "first": DEP_FIRST},
     "lines": [{"code": "62321", "charge": 400, "pointers": [5]}]},
    # EPI-SYN-003: 30 February; plus an out-of-balance charge
    {"id": "DATE1", "charge": 1, "lines": [{"code": "99214", "charge": 150, "date": "2025-02-30"}]},
    # escaping: a claim id and a diagnosis that are markup
    {"id": HOSTILE_ID, "charge": 7, "dx": [HOSTILE_DX], "lines": [{"code": "62323", "charge": 500}]},
    # person loops and free text naming the member (added by _with_person_loops)
    {"id": "PERSONS", "charge": 5, "member": MEMBER_ID, "birth_date": "19571231",
     "lines": [{"code": "62323", "charge": 500}]},
]
# one patient per claim, so no patient-day edit ties the claims together
for _number, _claim_spec in enumerate(CLAIMS):
    _claim_spec.setdefault("member", f"MBR{_number:04d}")


def _segments(text: str) -> list[str]:
    return [s.strip("\r\n") for s in text.split("~") if s.strip("\r\n")]


def _with_person_loops(text: str) -> str:
    """The 837P with the member's own names and id, a 2300 medical record number, a
    2300 note naming the patient, a 2310C service facility and a 2320/2330A other
    subscriber (with SSN and address) added to claim PERSONS, and SE01 recounted."""
    out: list[str] = []
    claim_id = ""
    for seg in _segments(text):
        if seg.startswith("HL*"):
            claim_id = ""
        elif seg.startswith("CLM*"):
            claim_id = seg.split("*")[1]
        elif seg.startswith("NM1*IL*") and seg.endswith(f"*MI*{MEMBER_ID}"):
            parts = seg.split("*")
            parts[3], parts[4] = SUB_LAST, SUB_FIRST
            seg = "*".join(parts)
        out.append(seg)
        if claim_id != "PERSONS":
            continue
        if seg.startswith("CLM*"):
            out += [f"REF*EA*{MRN}", f"NTE*ADD*CALL {SUB_FIRST} ABOUT {MEMBER_ID}"]
        elif seg.startswith("NM1*82*"):
            out += [
                "NM1*77*2*SURGERY CENTER WEST*****XX*1427000000",
                "N3*900 FACILITY DR",
                "N4*SPRINGFIELD*IL*62704",
                "SBR*S*18*GRP1******CI",
                "OI***Y*P**Y",
                f"NM1*IL*1*{OTHER_LAST}*{OTHER_FIRST}****MI*{OTHER_ID}",
                "N3*42 ELM ST",
                "N4*SHELBYVILLE*IL*62565",
                f"REF*SY*{SSN}",
                "NM1*PR*2*OTHER PAYER*****PI*99999",
            ]
    # recount SE01
    result, start = [], 0
    for seg in out:
        if seg.startswith("ST*"):
            start = len(result)
        if seg.startswith("SE*"):
            parts = seg.split("*")
            parts[1] = str(len(result) - start + 1)
            seg = "*".join(parts)
        result.append(seg)
    return "".join(s + "~\n" for s in result)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    # one claim per transaction set: an implementation-guide error rejects only its own claim
    source = _with_person_loops(write_837(CLAIMS, claims_per_transaction=1))
    assert "NM1*77*" in source and f"REF*SY*{SSN}" in source  # the fixture really holds them
    (tmp / "batch.837").write_text(source)
    (tmp / "claimscrub.toml").write_text('[severity]\n"EPI-SYN-002" = "warning"\n')
    out = tmp / "out"
    done = invoke_claimscrub(
        "scrub", str(tmp / "batch.837"), "--out", str(out), "--as-of", AS_OF,
        "--config", str(tmp / "claimscrub.toml"),
    )
    assert done.returncode == 1, done.stderr
    page = (out / "batch.837.html").read_text(encoding="utf-8")
    return {
        "source": source,
        "segments": _segments(source),
        "text": page,
        "doc": html.fromstring(page),
        "json": json.loads((out / "batch.837.json").read_text()),
        "out": out,
    }


def _money(value: str) -> str:
    return f"${Decimal(value):,.2f}"


def _claim(doc, claim_id: str):
    found = [a for a in doc.xpath("//article") if a.get("data-claim") == claim_id]
    assert len(found) == 1, f"claim {claim_id!r} appears {len(found)} times"
    return found[0]


def test_summary_numbers_match_the_json_report(report):
    doc, summary = report["doc"], report["json"]["summary"]

    def card(key):
        return doc.xpath(f'//section[@id="summary"]//*[@data-key="{key}"]')[0].text_content()

    assert card("claims") == f"{summary['claims']:,}" == f"{len(CLAIMS):,}"
    assert card("accepted") == f"{summary['accepted']:,}"
    assert card("rejected") == f"{summary['rejected']:,}"
    assert card("accepted_charge") == _money(summary["accepted_charge"])
    assert card("rejected_charge") == _money(summary["rejected_charge"])
    at_risk = summary.get("amount_at_risk") or sum(
        (Decimal(f["amount_at_risk"]) for c in report["json"]["claims"] for f in c["findings"] if f["amount_at_risk"] is not None),
        Decimal(0),
    )
    assert card("at_risk") == _money(str(at_risk))
    if "expected_allowed" in summary:
        assert card("expected_allowed") == _money(summary["expected_allowed"])

    by_rule = {
        row.get("data-rule"): int(row.xpath('.//td[contains(@class, "count")]')[0].text_content().replace(",", ""))
        for row in doc.xpath('//table[@id="by-rule"]/tbody/tr')
    }
    assert by_rule == summary["findings_by_rule"]
    assert {"EPI-BAL-001", "EPI-SYN-002", "EPI-SYN-003", "EPI-SYN-004"} <= set(by_rule)
    by_category = {
        row.get("data-category"): int(row.xpath("./td")[1].text_content().replace(",", ""))
        for row in doc.xpath('//table[@id="by-category"]/tbody/tr')
    }
    assert by_category == summary["findings_by_category"]
    # the rule tables the run used, as the JSON names them
    tables = report["json"]["tables"]
    headers = [th.text_content() for th in doc.xpath('//table[@id="tables"]/thead/tr/th')]
    rows = doc.xpath('//table[@id="tables"]/tbody/tr')
    assert len(rows) == len(tables)
    assert set(headers) == {key for entry in tables for key in entry}
    for row, entry in zip(rows, tables):
        cells = dict(zip(headers, (td.text_content() for td in row.xpath("./td"))))
        assert cells == {key: str(entry.get(key, "")) for key in headers}
    # the filter offers every rule that fired
    options = [o.get("value") for o in doc.xpath('//select[@id="rule-filter"]/option')]
    assert options == [""] + sorted(summary["findings_by_rule"])


def test_every_flagged_claim_is_shown_rejected_first_and_clean_ones_are_not(report):
    doc, claims = report["doc"], report["json"]["claims"]
    rejected = [c["claim_id"] for c in claims if c["status"] == "rejected"]
    warned = [c["claim_id"] for c in claims if c["status"] == "accepted" and c["findings"]]
    assert "UNITS0" in warned and "BAL1" in rejected and HOSTILE_ID in rejected
    shown = [a.get("data-claim") for a in doc.xpath("//article")]
    assert shown == rejected + warned  # rejected first, each group in file order
    assert [a.get("data-claim") for a in doc.xpath('//section[@id="group-rejected"]//article')] == rejected
    assert [a.get("data-claim") for a in doc.xpath('//section[@id="group-warned"]//article')] == warned
    clean = [c["claim_id"] for c in claims if not c["findings"]]
    assert not set(clean) & set(shown)
    for claim in claims:
        if claim["claim_id"] in shown:
            article = _claim(doc, claim["claim_id"])
            assert article.get("data-status") == claim["status"]
            assert sorted(f.get("data-rule") for f in article.xpath('.//div[contains(@class, "finding")]')) == sorted(
                f["rule"] for f in claim["findings"]
            )


def test_each_finding_sits_beside_the_segment_it_points_at(report):
    doc, segments = report["doc"], report["segments"]
    checked = 0
    for claim in report["json"]["claims"]:
        if not claim["findings"]:
            continue
        article = _claim(doc, claim["claim_id"])
        rows = article.xpath('.//table[contains(@class, "segments")]//tr')
        # the rows are the claim's own segments, in order, from the CLM
        assert [int(r.get("data-seg")) for r in rows] == list(range(claim["segment"], claim["segment"] + len(rows)))
        assert rows[0].xpath('.//td[@class="seg"]')[0].text_content() == segments[claim["segment"] - 1]
        last = claim["segment"] + len(rows) - 1
        for finding in claim["findings"]:
            if finding["segment"] is None or not claim["segment"] <= finding["segment"] <= last:
                notes = article.xpath('./div[@class="outside"]/div')  # at the top of the claim
            else:
                row = [r for r in rows if int(r.get("data-seg")) == finding["segment"]]
                assert len(row) == 1, (claim["claim_id"], finding)
                notes = row[0].xpath('./td[@class="notes"]/div')
            assert finding["rule"] in [n.get("data-rule") for n in notes]
            note = [n for n in notes if n.get("data-rule") == finding["rule"]][0]
            assert note.get("data-severity") == finding["severity"]
            text = note.text_content()
            assert finding["message"] in text and finding["fix"] in text and finding["source"] in text
            checked += 1
    assert checked >= 5
    # concretely: the unit finding is on the SV1, the balance finding on the CLM
    units_row = _claim(doc, "UNITS0").xpath('.//tr[.//div[@data-rule="EPI-SYN-002"]]')[0]
    assert units_row.xpath('.//td[@class="seg"]')[0].text_content().startswith("SV1*HC:62323*500*UN*0")
    assert "warning" in units_row.get("class")
    bal_row = _claim(doc, "BAL1").xpath('.//tr[.//div[@data-rule="EPI-BAL-001"]]')[0]
    assert bal_row.xpath('.//td[@class="seg"]')[0].text_content().startswith("CLM*BAL1*999*")
    assert "error" in bal_row.get("class")


def test_rule_links_explain_the_rule_in_the_page(report):
    doc = report["doc"]
    rules = load_rules()
    for link in doc.xpath('//div[contains(@class, "finding")]//a[contains(@class, "rule-id")]'):
        rule_id = link.text_content()
        assert link.get("href") == f"#rule-{rule_id}"
        if rule_id in rules:
            assert link.get("title") == rules[rule_id].summary
            target = doc.xpath(f'//*[@id="rule-{rule_id}"]')
            assert len(target) == 1 and rules[rule_id].summary in target[0].text_content()


def test_every_value_is_escaped(report):
    text, doc = report["text"], report["doc"]
    assert "<script>alert" not in text and HOSTILE_DX not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;Co" in text
    assert "M5416&amp;&lt;b&gt;" in text
    article = _claim(doc, HOSTILE_ID)
    assert article.xpath('.//span[@class="claim-id"]')[0].text_content() == HOSTILE_ID
    hi = [r.xpath('.//td[@class="seg"]')[0].text_content() for r in article.xpath(".//tr")
          if r.xpath('.//td[@class="seg"]')[0].text_content().startswith("HI*")]
    assert hi == [f"HI*ABK:{HOSTILE_DX}"]
    # the page's only script is our own, and nothing in the page makes an element of the data
    scripts = doc.xpath("//script")
    assert len(scripts) == 1 and "alert" not in scripts[0].text_content()
    assert not doc.xpath("//b[not(ancestor::div[contains(@class, 'finding')])]")


def test_no_member_id_name_address_or_birth_date_anywhere(report):
    text = report["text"]
    for value in PHI:
        assert value not in text, f"{value!r} is in the HTML"
        assert value.lower() not in text.lower()
    article = _claim(report["doc"], "PERSONS")
    rows = [r.xpath('.//td[@class="seg"]')[0].text_content() for r in article.xpath(".//tr")]
    # the person segments are there, with ids and qualifiers kept and values masked
    assert f"NM1*IL*1*{MASK}*{MASK}****MI*{MASK}" in rows
    assert f"N3*{MASK}" in rows and f"N4*{MASK}*{MASK}*{MASK}" in rows
    assert f"REF*SY*{MASK}" in rows and f"REF*EA*{MASK}" in rows
    assert f"NTE*ADD*CALL {MASK} ABOUT {MASK}" in rows
    # organisations and providers stay readable
    assert "NM1*77*2*SURGERY CENTER WEST*****XX*1427000000" in rows
    assert "N3*900 FACILITY DR" in rows and "N4*SPRINGFIELD*IL*62704" in rows
    assert "NM1*PR*2*OTHER PAYER*****PI*99999" in rows


def test_findings_outside_the_claim_are_shown_at_its_top(tmp_path):
    # SE01 off by one: an envelope error at the SE segment, outside every claim's span
    text = write_837([{"id": "ENV1", "lines": [{"code": "62323", "charge": 500}]}])
    segs = _segments(text)
    se = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    parts = segs[se].split("*")
    parts[1] = str(int(parts[1]) + 1)
    segs[se] = "*".join(parts)
    (tmp_path / "env.837").write_text("".join(s + "~\n" for s in segs))
    done = invoke_claimscrub("scrub", str(tmp_path / "env.837"), "--out", str(tmp_path / "out"), "--as-of", AS_OF)
    assert done.returncode == 1, done.stderr
    doc = html.fromstring((tmp_path / "out" / "env.837.html").read_bytes())
    article = _claim(doc, "ENV1")
    top = article.xpath('./div[@class="outside"]/div[@data-rule="X12-ENV-001"]')
    assert len(top) == 1 and top[0].get("data-seg") == str(se + 1)
    assert not article.xpath('.//table//div[@data-rule="X12-ENV-001"]')


def test_the_page_is_self_contained(report):
    doc = report["doc"]
    assert not doc.xpath("//*[@src]")
    assert not doc.xpath("//link")
    assert all(a.get("href").startswith("#") for a in doc.xpath("//a[@href]"))
    assert not re.search(r"https?://|//cdn|@import|url\(", report["text"])
    csp = doc.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')
    assert csp and "default-src 'none'" in csp[0]
    assert len(doc.xpath("//style")) == 1 and len(doc.xpath("//script")) == 1
    assert not list(report["out"].glob(".*.tmp"))


def test_large_batches_render_the_first_flagged_claims_and_count_them_all(tmp_path):
    claims = [
        {"id": f"R{i:03d}", "member": f"MBR{i:04d}", "charge": 1, "lines": [{"code": "62323", "charge": 500}]}
        for i in range(7)
    ]
    (tmp_path / "big.837").write_text(write_837(claims))
    run = Scrubber(ScrubOptions(as_of=date.fromisoformat(AS_OF))).run([str(tmp_path / "big.837")])
    try:
        path = write_html(run, run.files[0], str(tmp_path / "out"), max_claims=3)
    finally:
        run.close()
    doc = html.fromstring(Path(path).read_bytes())
    assert [a.get("data-claim") for a in doc.xpath("//article")] == ["R000", "R001", "R002"]
    assert doc.xpath('//*[@data-key="rejected"]')[0].text_content() == "7"
    note = doc.xpath('//*[@id="cap-note"]')[0].text_content()
    assert "4 more flagged claims" in note and "big.837.json" in note


def test_a_batch_with_no_finding_says_so(tmp_path):
    (tmp_path / "ok.837").write_text(write_837([{"id": "OK1", "lines": [{"code": "62323", "charge": 500}]}]))
    run = Scrubber(ScrubOptions(as_of=date.fromisoformat(AS_OF))).run([str(tmp_path / "ok.837")])
    try:
        if run.files[0].findings_by_rule:
            pytest.skip("an edit now flags the plain 62323 claim")
        doc = html.fromstring(Path(write_html(run, run.files[0], str(tmp_path))).read_bytes())
    finally:
        run.close()
    assert not doc.xpath("//article")
    assert "No claim has a finding." in doc.text_content()
    assert doc.xpath('//*[@data-key="accepted"]')[0].text_content() == "1"


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_reports_render_and_mask_person_segments(path, tmp_path):
    run = Scrubber(ScrubOptions(as_of=date.fromisoformat(AS_OF))).run([str(path)])
    try:
        file = run.files[0]
        if not file.usable:
            pytest.skip("not an 837P")
        doc = html.fromstring(Path(write_html(run, file, str(tmp_path))).read_bytes())
        flagged = sum(1 for r in run.claim_results(file) if r.findings)
        element = file.delimiters.element
    finally:
        run.close()
    assert doc.xpath('//*[@data-key="claims"]')[0].text_content() == f"{file.claim_count:,}"
    assert len(doc.xpath("//article")) == min(flagged, 2000)
    for cell in doc.xpath('//td[@class="seg"]'):
        parts = cell.text_content().split(element)
        if parts[0] == "NM1" and len(parts) > 1 and parts[1] in ("IL", "QC"):
            assert all(p in ("", MASK) for i, p in enumerate(parts) if i in (3, 4, 5, 7, 9)), parts
        if parts[0] == "DMG":
            assert all(p in ("", MASK) for p in parts[2:]), parts


def test_claims_carry_what_the_search_and_sort_read(report):
    """Each flagged claim's data attributes hold its payer, providers, dates and amounts, as
    the JSON report gives them (what the page's search and sort work on)."""
    claims = {c["claim_id"]: c for c in report["json"]["claims"]}
    articles = report["doc"].xpath("//article")
    assert articles
    for article in articles:
        claim = claims[article.get("data-claim")]
        assert claim["payer"]["id"] in article.get("data-payer").split()
        assert claim["payer"]["name"] in article.get("data-payer")
        providers = article.get("data-provider").split()
        assert claim["billing_npi"] in providers
        assert {line["rendering_npi"] for line in claim["lines"]} <= set(providers)
        dates = sorted({line["date_of_service"] for line in claim["lines"] if line["date_of_service"]})
        assert article.get("data-dates").split() == dates
        if claim["charge"] is not None:
            assert Decimal(article.get("data-charge")) == Decimal(claim["charge"])
        assert Decimal(article.get("data-risk")) == Decimal(claim["amount_at_risk"])
        assert MEMBER_ID not in " ".join(article.attrib.values())


def test_rule_documentation_renders_without_markup_marks(tmp_path):
    source = FIXTURES / "edits" / "EPI-MOD-010.837"
    out = tmp_path / "out"
    done = invoke_claimscrub("scrub", str(source), "--out", str(out), "--as-of", AS_OF)
    assert done.returncode == 1, done.stderr
    doc = html.fromstring((out / "EPI-MOD-010.837.html").read_bytes())
    rules = doc.xpath('//section[@id="rules"]')[0]
    assert "`" not in rules.text_content()
    entry = rules.xpath('.//*[@id="rule-EPI-MOD-010"]')[0]
    assert "edits/modifiers.csv" in [c.text_content() for c in entry.xpath(".//p//code | .//li//code")]
    assert len(entry.xpath(".//ul/li")) == 3  # its bullet list, as a list
    example = entry.xpath('.//h5[text()="Failing example"]/following-sibling::pre')[0].text_content()
    assert example.startswith("claims:\n  - {id: C1")  # line breaks kept, not shown as \x0a
    # every rule's documentation, rendered the same way, leaves no mark behind
    from claimscrub.report.doctext import render

    for rule_id, rule in load_rules().items():
        for heading, text in rule.documentation().items():
            if "example" in heading.lower():
                continue
            rendered = "".join(etree.tostring(e, method="text", encoding="unicode") for e in render(text))
            assert "`" not in rendered, (rule_id, heading)
            assert rendered.split() == [w for w in rendered.split() if w not in ("*", "```")]


def test_index_links_every_input_with_its_totals(tmp_path):
    inputs = tmp_path / "in"
    (inputs / "more").mkdir(parents=True)
    (inputs / "a.837").write_text(write_837(CLAIMS[:3]))
    (inputs / "more" / "a.837").write_text(write_837([CLAIMS[0]], control=2))  # same base name
    (inputs / "broken.837").write_bytes(b"ISA*00*  *00\n")
    out = tmp_path / "out"
    done = invoke_claimscrub("scrub", str(inputs), "--out", str(out), "--as-of", AS_OF)
    assert done.returncode == 2, done.stderr  # one input unusable
    doc = html.fromstring((out / "index.html").read_bytes())
    rows = {row.get("data-file"): row for row in doc.xpath('//table[@id="files"]//tr[@data-file]')}
    assert len(rows) == 3 and "broken.837" in rows
    assert not rows["broken.837"].xpath(".//a") and "not usable" in rows["broken.837"].text_content()
    usable = [name for name in rows if name != "broken.837"]
    assert any("/" in name for name in usable)  # one report sits in a subfolder of --out
    totals = {"claims": 0, "rejected": 0}
    for name in usable:
        link = rows[name].xpath(".//a")[0]
        target = out / link.get("href")
        assert target.is_file() and target.suffix == ".html", link.get("href")
        report = json.loads(target.with_suffix(".json").read_text())
        assert report["input"] == name
        cells = {td.get("data-key"): td.text_content() for td in rows[name].xpath("./td[@data-key]")}
        summary = report["summary"]
        assert (int(cells["claims"]), int(cells["accepted"]), int(cells["rejected"])) == (
            summary["claims"], summary["accepted"], summary["rejected"])
        assert cells["at_risk"].startswith(_money(summary["amount_at_risk"])) or "not priced" in cells["at_risk"]
        totals["claims"] += summary["claims"]
        totals["rejected"] += summary["rejected"]
    total = {th.get("data-key"): th.text_content() for th in doc.xpath('//tr[@id="total"]/th[@data-key]')}
    assert (int(total["claims"]), int(total["rejected"])) == (totals["claims"], totals["rejected"])
