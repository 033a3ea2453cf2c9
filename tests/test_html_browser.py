"""The HTML report in a real browser: headless Chromium renders it, runs its inline
script, and the rule and severity filters hide exactly the claims and findings that do
not match. `make test` installs Chromium (Debian package `chromium`) when it is missing.

The filters are driven through the page's own linkable state (``NAME.html#rule=ID``,
``#severity=warning``), which the inline script applies on load, and the DOM after the
script ran is read back with ``--dump-dom``. Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from lxml import html

from claimscrub.synth import write_837

from conftest import AS_OF, run_claimscrub


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (`make test` installs the Debian package `chromium`)",
)

OTHER_NPI = "1902000003"
CLAIMS = [
    {"id": "CLEAN1", "lines": [{"code": "62323", "charge": 500}]},
    # payer, provider and date differ between claims, for the search
    {"id": "BAL1", "charge": 999, "payer": "ACME HEALTH", "payer_id": "60054", "filing": "CI",
     "lines": [{"code": "62323", "charge": 500}, {"code": "99214", "charge": 100}]},
    {"id": "UNITS0", "rendering_npi": OTHER_NPI, "lines": [{"code": "62323", "charge": 500, "units": 0}]},
    {"id": "PTR5", "date": "2025-04-15", "lines": [{"code": "62321", "charge": 400, "pointers": [5]}]},
    {"id": "DATE1", "charge": 1, "lines": [{"code": "99214", "charge": 150, "date": "2025-02-30"}]},
    {"id": "BOTH", "charge": 2, "lines": [{"code": "62323", "charge": 500, "units": 0}]},
]
for _number, _claim_spec in enumerate(CLAIMS):  # one patient each: no patient-day edit joins them
    _claim_spec["member"] = f"MBR{_number:04d}"


def _browse(profile: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args, url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _dump(report: dict, fragment: str = ""):
    done = _browse(report["profile"], report["url"] + fragment, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return html.fromstring(done.stdout)


def _png(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (no imaging library needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    (tmp / "batch.837").write_text(write_837(CLAIMS, claims_per_transaction=1))
    (tmp / "claimscrub.toml").write_text('[severity]\n"EPI-SYN-002" = "warning"\n')
    done = run_claimscrub(
        "scrub", str(tmp / "batch.837"), "--out", str(tmp / "out"), "--as-of", AS_OF,
        "--config", str(tmp / "claimscrub.toml"),
    )
    assert done.returncode == 1, done.stderr
    page = tmp / "out" / "batch.837.html"
    served = html.fromstring(page.read_bytes())
    return {
        "url": page.resolve().as_uri(),
        "out": tmp / "out",
        "charges": {a.get("data-claim"): float(a.get("data-charge") or 0) for a in served.xpath("//article")},
        "profile": tmp / "profile",
        "claims": {
            a.get("data-claim"): {
                (f.get("data-rule"), f.get("data-severity")) for f in a.xpath('.//div[contains(@class, "finding")]')
            }
            for a in served.xpath("//article")
        },
    }


def _visible(doc) -> dict[str, set]:
    """Claim id -> (rule, severity) of its findings left visible by the script."""
    return {
        a.get("data-claim"): {
            (f.get("data-rule"), f.get("data-severity"))
            for f in a.xpath('.//div[contains(@class, "finding")]')
            if f.get("hidden") is None
        }
        for a in doc.xpath("//article")
        if a.get("hidden") is None
    }


def test_report_renders_in_chromium_and_the_script_runs(report, tmp_path):
    shot = tmp_path / "report.png"
    done = _browse(report["profile"], report["url"], f"--screenshot={shot}", "--window-size=1280,1800")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    width, height, pixels = _png(shot)
    assert (width, height) == (1280, 1800)
    assert len(set(pixels[: len(pixels) // 2])) > 50, "the screenshot is blank"

    doc = _dump(report)
    assert _visible(doc) == report["claims"]  # unfiltered: everything shows
    status = doc.xpath('//*[@id="filter-status"]')[0]
    # the text is written by the script, not by the server
    assert status.text_content() == f"{len(report['claims'])} of {len(report['claims'])} claims shown"
    assert {"BAL1", "UNITS0", "PTR5", "DATE1", "BOTH"} <= set(report["claims"])


@pytest.mark.parametrize("rule", ["EPI-SYN-002", "EPI-BAL-001", "EPI-SYN-004"])
def test_rule_filter_shows_only_claims_and_findings_of_that_rule(report, rule, tmp_path):
    doc = _dump(report, f"#rule={rule}")
    expected = {
        claim: {f for f in findings if f[0] == rule}
        for claim, findings in report["claims"].items()
        if any(f[0] == rule for f in findings)
    }
    assert expected, f"no claim has {rule}"
    assert _visible(doc) == expected
    for group in doc.xpath('//section[contains(@class, "group")]'):
        has_visible = any(a.get("hidden") is None for a in group.xpath(".//article"))
        assert (group.get("hidden") is None) == has_visible, group.get("id")
    status = doc.xpath('//*[@id="filter-status"]')[0]
    assert status.get("data-shown") == str(len(expected))
    assert status.text_content().startswith("Filtered:")
    if rule == "EPI-SYN-002":
        shot = tmp_path / f"filtered-{rule}.png"
        _browse(report["profile"], report["url"] + f"#rule={rule}", f"--screenshot={shot}",
                "--window-size=1280,1400")
        assert shot.is_file()


def test_severity_filter_and_combined_filter(report):
    doc = _dump(report, "#severity=warning")
    visible = _visible(doc)
    assert visible == {
        claim: {f for f in findings if f[1] == "warning"}
        for claim, findings in report["claims"].items()
        if any(f[1] == "warning" for f in findings)
    }
    assert {"UNITS0", "BOTH"} <= set(visible)
    # both filters at once: no balance finding is a warning
    doc = _dump(report, "#rule=EPI-BAL-001&severity=warning")
    assert _visible(doc) == {}
    assert doc.xpath('//*[@id="filter-status"]')[0].get("data-shown") == "0"
    # an unknown rule in a link falls back to every rule
    assert _visible(_dump(report, "#rule=NOPE-999")) == report["claims"]


def _shown(doc) -> list[str]:
    """Claim ids left visible by the script, in page order."""
    return [a.get("data-claim") for a in doc.xpath("//article") if a.get("hidden") is None]


def _counts(doc) -> tuple[int, dict[str, str]]:
    status = doc.xpath('//*[@id="filter-status"]')[0]
    groups = {s.getparent().getparent().get("id"): s.text_content()
              for s in doc.xpath('//span[contains(@class, "group-count")]')}
    return int(status.get("data-shown")), groups


@pytest.mark.parametrize("fragment, expected", [
    ("#claim=bal", {"BAL1"}),                       # claim id, any case, part of it
    ("#payer=00435", {"UNITS0", "PTR5", "DATE1", "BOTH"}),  # payer id (ACME's is 60054)
    (f"#provider={OTHER_NPI}", {"UNITS0"}),         # rendering NPI
    ("#from=2025-03-01&to=2025-03-31&payer=medicare", {"UNITS0", "BOTH"}),  # dates and payer name
])
def test_search_by_claim_payer_provider_and_date_and_counts_follow(report, fragment, expected):
    doc = _dump(report, fragment)
    shown = set(_shown(doc))
    assert shown == expected
    # the hidden claims really are the ones that do not match, and the counts say so
    count, groups = _counts(doc)
    assert count == len(expected)
    rejected = [a for a in doc.xpath('//section[@id="group-rejected"]//article') if a.get("hidden") is None]
    total = doc.xpath('//section[@id="group-rejected"]//span[contains(@class, "group-count")]')[0].get("data-total")
    assert groups["group-rejected"] == f"({len(rejected)} of {total})"
    assert doc.xpath('//*[@id="filter-status"]')[0].text_content() == (
        f"Filtered: {len(expected)} of {len(report['claims'])} claims shown")
    findings = sum(1 for a in doc.xpath("//article") if a.get("hidden") is None
                   for f in a.xpath('.//div[contains(@class, "finding")]') if f.get("hidden") is None)
    assert doc.xpath('//*[@id="findings-status"]')[0].get("data-shown") == str(findings)


def test_sort_orders_the_claims_and_keeps_the_filters(report):
    doc = _dump(report, "#sort=charge")
    for group in doc.xpath('//section[contains(@class, "group")]'):
        ids = [a.get("data-claim") for a in group.xpath(".//article")]
        charges = [report["charges"][i] for i in ids]
        assert charges == sorted(charges, reverse=True), ids
    # by claim id, with a filter on: the order applies, the filter still hides
    doc = _dump(report, "#sort=claim&severity=error")
    for group in doc.xpath('//section[contains(@class, "group")]'):
        ids = [a.get("data-claim") for a in group.xpath(".//article")]
        assert ids == sorted(ids, key=str.lower)
    errors = {c for c, findings in report["claims"].items() if any(f[1] == "error" for f in findings)}
    assert set(_shown(doc)) == errors and "UNITS0" not in errors


def test_index_links_each_report_with_its_totals(report):
    index = report["out"] / "index.html"
    done = _browse(report["profile"], index.resolve().as_uri(), "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    doc = html.fromstring(done.stdout)
    links = doc.xpath('//table[@id="files"]//a')
    assert [a.text_content() for a in links] == ["batch.837"]
    target = (index.parent / links[0].get("href")).resolve()
    assert target == (report["out"] / "batch.837.html").resolve()
    row = doc.xpath('//tr[@data-file="batch.837"]')[0]
    cell = {td.get("data-key"): td.text_content() for td in row.xpath("./td[@data-key]")}
    assert cell["claims"] == str(len(CLAIMS))
    assert int(cell["rejected"]) + int(cell["accepted"]) == len(CLAIMS)
    # the link opens the report in the browser
    page = _browse(report["profile"], target.as_uri(), "--dump-dom")
    assert "Claim scrub report" in page.stdout
