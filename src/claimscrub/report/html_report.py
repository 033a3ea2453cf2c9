"""The HTML report: what a billing specialist reads in the morning.

One self-contained page per input file (inline CSS and script, nothing fetched, a
Content-Security-Policy that forbids fetching): a summary first (claims, accepted,
rejected, charges, money at risk, findings by category and by rule, rule table versions),
then every flagged claim, rejected ones first, each with its own segments and every
finding beside the segment it points at, then the explanation of every rule that fired.

The page is built with lxml and streamed with :func:`lxml.etree.htmlfile`: each claim is
one small element tree written and dropped, so memory stays flat on a large batch, and
every value is escaped by construction (no string templating of data). At most
``max_claims`` flagged claims are rendered in full; the summary always counts them all.

A filter by rule and severity works offline (inline script over ``data-rule`` and
``data-severity`` attributes) and is linkable: ``NAME.html#rule=EPI-BAL-001`` or
``#rule=EPI-BAL-001&severity=error`` opens the page filtered.

Privacy: member ids, names, addresses and birth dates never reach the page. The segments
of person loops (NM1*IL/QC, their N3/N4/REF, every DMG, identifying REF qualifiers) have
their values replaced by ``•••`` (segment ids and qualifiers stay), and the claim's member
id, names and birth dates are also masked wherever else they occur as a word (a finding
message quoting a bad value, for instance).
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from decimal import Decimal
from typing import IO, Iterable, Optional

from lxml import etree
from lxml.html import builder as _builder

from claimscrub import __version__
from claimscrub.atomic import atomic_writer
from claimscrub.findings import Finding, Severity
from claimscrub.model import Claim
from claimscrub.report.doctext import inline as doc_inline
from claimscrub.report.doctext import plain as doc_plain
from claimscrub.report.doctext import render as render_doc
from claimscrub.scrub import REJECTED, ClaimResult, FileResult, RunResult
from claimscrub.textsafe import visible


class _VisibleBuilder:
    """``lxml.html.builder`` whose text and attribute values pass through
    :func:`claimscrub.textsafe.visible`: a NUL or other control byte of the input shows as
    ``\\x00`` instead of stopping the report (XML cannot hold it)."""

    def __getattr__(self, name: str):
        maker = getattr(_builder, name)

        def build(*children, **attrs):
            return maker(
                *[visible(c) if isinstance(c, str) else c for c in children],
                **{k: visible(v) if isinstance(v, str) else v for k, v in attrs.items()},
            )

        setattr(self, name, build)  # looked up once per tag
        return build


E = _VisibleBuilder()

#: Flagged claims rendered in full; the rest are counted in the summary and listed in JSON.
MAX_CLAIMS = 2000

#: What a masked value shows (not "***", which reads as X12 element separators).
MASK = "•••"
#: NM101 entity codes of people whose names and ids are PHI (insured, patient, ...).
PERSON_ENTITIES = frozenset({"IL", "QC", "QD", "74"})
#: NM101 entity codes of places that are about a person: the ambulance pick-up (2310E, PW)
#: and drop-off (2310F, 45) locations, often the patient's home.
PERSON_PLACES = frozenset({"PW", "45"})
#: Place of service 12 (home): the service facility (2310C, 77) is the patient's home.
HOME = "12"
#: REF01 qualifiers whose REF02 identifies a person (SSN, member id, medical record, ...).
PERSON_REFS = frozenset({"SY", "1W", "EA", "Y4", "IG", "HJ"})
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)
_SEVERITY_RANK = {s.value: i for i, s in enumerate(SEVERITIES)}


def write_html(run: RunResult, file: FileResult, out_dir: str, max_claims: int = MAX_CLAIMS) -> str:
    """Write ``out_dir/NAME.html`` for one input file, atomically; return its path."""
    path = file.output_path(out_dir, ".html")
    with atomic_writer(path, mode="wb", encoding=None) as handle:
        _write(run, file, handle, max_claims)
    return path


# -- the run's index -----------------------------------------------------------------------

#: The run-level page in --out linking every input's report.
INDEX_NAME = "index.html"


def index_path(run: RunResult, out_dir: str) -> str:
    """``out_dir/index.html``, or ``out_dir/claimscrub-index.html`` when an input's own
    report takes that name (an input called ``index``)."""
    taken = {os.path.normcase(os.path.abspath(f.output_path(out_dir, ".html"))) for f in run.files}
    path = os.path.join(out_dir, INDEX_NAME)
    if os.path.normcase(os.path.abspath(path)) in taken:
        path = os.path.join(out_dir, "claimscrub-" + INDEX_NAME)
    return path


def write_index(run: RunResult, out_dir: str) -> str:
    """Write the run's ``index.html`` into ``out_dir``: every input with its totals (claims,
    accepted, rejected, findings, money at risk) and a link to its report; return its path.
    One pass over the files, from their totals (no claim is read)."""
    path = index_path(run, out_dir)
    with atomic_writer(path, mode="wb", encoding=None) as handle:
        handle.write(b"<!DOCTYPE html>\n")
        handle.write(etree.tostring(_index_page(run, out_dir), method="html", encoding="utf-8"))
    return path


def _file_at_risk_text(file: FileResult) -> str:
    if file.amount_at_risk == 0 and file.unpriced_lines_at_risk:
        return f"{_money(file.unpriced_charge_at_risk)} billed, not priced"
    return _money(file.amount_at_risk)


def _report_href(file: FileResult, out_dir: str) -> str:
    from urllib.parse import quote

    relative = os.path.relpath(file.output_path(out_dir, ".html"), out_dir)
    # bytes: a name holding a byte that is not UTF-8 (surrogate-escaped) links as %FF
    return "/".join(quote(os.fsencode(part)) for part in relative.split(os.sep))


def _index_page(run: RunResult, out_dir: str) -> etree._Element:
    usable = [f for f in run.files if f.usable]
    totals = {
        "claims": sum(f.claim_count for f in usable),
        "accepted": sum(f.accepted for f in usable),
        "rejected": sum(f.rejected for f in usable),
        "at_risk": sum((f.amount_at_risk for f in usable), Decimal(0)),
        "findings": sum(sum(f.findings_by_rule.values()) for f in usable),
        "billed": sum((f.accepted_charge + f.rejected_charge for f in usable), Decimal(0)),
    }
    rows = []
    for file in run.files:
        if not file.usable:
            rows.append(E.TR(
                E.TD(E.SPAN(file.name, **{"class": "file-name"})),
                E.TD(f"not usable: {file.error}", colspan="6", **{"class": "muted"}),
                **{"class": "unusable", "data-file": file.name},
            ))
            continue
        rows.append(E.TR(
            E.TD(E.A(file.name, href=_report_href(file, out_dir), **{"class": "file-name"})),
            E.TD(f"{file.claim_count:,}", **{"class": "num", "data-key": "claims"}),
            E.TD(f"{file.accepted:,}", **{"class": "num", "data-key": "accepted"}),
            E.TD(f"{file.rejected:,}", **{"class": "num", "data-key": "rejected"}),
            E.TD(f"{sum(file.findings_by_rule.values()):,}", **{"class": "num", "data-key": "findings"}),
            E.TD(_money(file.accepted_charge + file.rejected_charge), **{"class": "num", "data-key": "billed"}),
            E.TD(_file_at_risk_text(file), **{"class": "num", "data-key": "at_risk"}),
            **{"class": "rejected" if file.rejected else "clean", "data-file": file.name},
        ))
    rows.append(E.TR(
        E.TH(f"Total: {_plural(len(run.files), 'file')}"),
        E.TH(f"{totals['claims']:,}", **{"class": "num", "data-key": "claims"}),
        E.TH(f"{totals['accepted']:,}", **{"class": "num", "data-key": "accepted"}),
        E.TH(f"{totals['rejected']:,}", **{"class": "num", "data-key": "rejected"}),
        E.TH(f"{totals['findings']:,}", **{"class": "num", "data-key": "findings"}),
        E.TH(_money(totals["billed"]), **{"class": "num", "data-key": "billed"}),
        E.TH(_money(totals["at_risk"]), **{"class": "num", "data-key": "at_risk"}),
        id="total",
    ))
    as_of = getattr(run.engine.ctx, "as_of", None)
    details = [_plural(len(run.files), "input file")]
    if as_of is not None:
        details.append(f"judged as of {as_of.isoformat()}")
    details.append(f"claimscrub {__version__}")
    cards = E.DIV(
        _card("Claims", f"{totals['claims']:,}", _money(totals["billed"]) + " billed", key="claims"),
        _card("Accepted", f"{totals['accepted']:,}", "", "ok", key="accepted"),
        _card("Rejected", f"{totals['rejected']:,}", "", "bad", key="rejected"),
        _card("Money at risk", _money(totals["at_risk"]), "national MPFS expected allowed", "risk", key="at_risk"),
        id="cards",
        **{"class": "cards"},
    )
    table = E.TABLE(
        E.THEAD(E.TR(
            E.TH("Input file"), E.TH("Claims", **{"class": "num"}), E.TH("Accepted", **{"class": "num"}),
            E.TH("Rejected", **{"class": "num"}), E.TH("Findings", **{"class": "num"}),
            E.TH("Billed", **{"class": "num"}), E.TH("Money at risk", **{"class": "num"}),
        )),
        E.TBODY(*rows),
        id="files",
        **{"class": "grid"},
    )
    head = _head(run.files[0] if run.files else None, title="claimscrub: run index")
    return E.HTML(
        head,
        E.BODY(
            E.HEADER(E.DIV(
                E.H1("Claim scrub run"),
                E.P(" · ".join(details), **{"class": "meta"}),
                **{"class": "wrap"},
            )),
            E.MAIN(E.H2("Totals"), cards, E.H2("Reports"), table),
            E.FOOTER(f"claimscrub {__version__}"),
        ),
        lang="en",
    )


# -- the data the summary needs, from findings already in memory --------------------------


class _Summary:
    def __init__(self, run: RunResult, file: FileResult):
        self.file = file
        self.at_risk = Decimal(0)
        self.priced = 0
        self.flagged = 0
        self.by_rule: Counter = Counter(file.findings_by_rule)
        self.rule_severities: dict[str, Counter] = defaultdict(Counter)
        self.rule_at_risk: dict[str, Decimal] = defaultdict(Decimal)
        self.rule_category: dict[str, str] = {}
        for _claim_idx, findings in run.store.file_findings(file.index):  # this file's only
            if not findings:
                continue
            self.flagged += 1
            for finding in findings:
                self.rule_severities[finding.rule][finding.severity.value] += 1
                self.rule_category.setdefault(finding.rule, finding.category.value)
                if finding.amount_at_risk is not None:
                    self.at_risk += finding.amount_at_risk
                    self.rule_at_risk[finding.rule] += finding.amount_at_risk
                    self.priced += 1
        self.warned = self.flagged - file.rejected
        # The pipeline's own figure (claimscrub.pricing: each line counted once) when it
        # has one, as in the JSON summary; else the sum of the findings' amounts.
        pipeline_at_risk = getattr(file, "amount_at_risk", None)
        if pipeline_at_risk is not None:
            self.at_risk = pipeline_at_risk
        self.expected_allowed: Optional[Decimal] = getattr(file, "expected_allowed", None)
        self.unpriced_lines: Optional[int] = getattr(file, "unpriced_lines", None)
        # the billed charges of the unpriced lines the errors put at risk (claimscrub.pricing)
        self.unpriced_charge_at_risk: Decimal = getattr(file, "unpriced_charge_at_risk", Decimal(0))
        self.unpriced_lines_at_risk: int = getattr(file, "unpriced_lines_at_risk", 0)

    def at_risk_text(self) -> str:
        """What the errors put at risk: the expected allowed amount of the priced lines,
        else, when only unpriced lines are at risk, their billed charges named as such
        (never "$0.00" because the lines could not be priced)."""
        if self.at_risk == 0 and self.unpriced_lines_at_risk:
            return f"{_money(self.unpriced_charge_at_risk)} billed, not priced"
        return _money(self.at_risk)

    def unpriced_at_risk_text(self) -> str:
        return (f"{_money(self.unpriced_charge_at_risk)} billed on "
                f"{_plural(self.unpriced_lines_at_risk, 'line')} not priced")


def _rules_doc() -> dict:
    from claimscrub.engine import load_rules

    return load_rules()


# -- privacy -------------------------------------------------------------------------------


def sensitive_words(claim: Claim) -> tuple[str, ...]:
    """The claim's member id, names and birth dates (three characters or more), upper case."""
    values = {
        claim.subscriber.member_id,
        claim.subscriber.last_name,
        claim.subscriber.first_name,
        claim.subscriber.birth_date,
        claim.patient.last_name,
        claim.patient.first_name,
        claim.patient.birth_date,
    }
    return tuple(sorted({v.strip().upper() for v in values if v and len(v.strip()) >= 3}, key=len, reverse=True))


def _scrub_text(text: str, words: tuple[str, ...]) -> str:
    """``text`` with every whole-word occurrence of ``words`` (any case) replaced by MASK.

    Plain searching, no regular expression per claim: compiling one for each of
    thousands of claims cost more than rendering them.
    """
    if not words or not text:
        return text
    upper = text.upper()
    if len(upper) != len(text):  # a character whose upper case is longer (ß): be exact
        for word in words:
            text = re.sub(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", MASK, text, flags=re.IGNORECASE)
        return text
    spans = []
    for word in words:
        start = upper.find(word)
        while start >= 0:
            end = start + len(word)
            if (start == 0 or not upper[start - 1].isalnum()) and (end == len(upper) or not upper[end].isalnum()):
                spans.append((start, end))
            start = upper.find(word, start + 1)
    if not spans:
        return text
    out, cursor = [], 0
    for start, end in sorted(spans):
        if start < cursor:  # overlaps a span already masked
            cursor = max(cursor, end)
            continue
        out.append(text[cursor:start])
        out.append(MASK)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def mask_segments(
    segments: Iterable[str], element: str, words: tuple[str, ...] = ()
) -> list[str]:
    """The claim's segments with every person-identifying value replaced by :data:`MASK`.

    Segment ids and qualifiers are kept, so the structure still reads. N3/N4 are shown
    only under an NM1 that names an organisation or provider (a service facility, say);
    under a person, or before any NM1, they are masked.
    """
    out = []
    under_person: Optional[bool] = None  # None: no NM1 seen yet in this claim
    personal = set(PERSON_ENTITIES | PERSON_PLACES)
    for text in segments:
        elements = text.split(element)
        seg_id = elements[0]
        keep: set[int] = set()
        masked = False
        if seg_id == "CLM" and len(elements) > 5 and elements[5][:2] == HOME:
            personal.add("77")  # the service facility is the patient's home
        if seg_id == "NM1":
            under_person = elements[1] in personal if len(elements) > 1 else True
            if under_person:
                keep, masked = {0, 1, 2, 8}, True
        elif seg_id in ("N3", "N4"):
            if under_person is not False:
                keep, masked = {0}, True
        elif seg_id == "DMG":
            keep, masked = {0, 1}, True
        elif seg_id == "REF":
            qualifier = elements[1] if len(elements) > 1 else ""
            if qualifier in PERSON_REFS or under_person:
                keep, masked = {0, 1}, True
        elif seg_id == "PAT":
            keep, masked = {0, 1, 2, 3, 4}, True
        elif seg_id == "PER" and under_person:
            keep, masked = {0, 1, 3, 5, 7}, True
        if masked:
            elements = [e if i in keep or not e else MASK for i, e in enumerate(elements)]
        elements = [elements[0]] + [_scrub_text(e, words) for e in elements[1:]]
        out.append(element.join(elements))
    return out


# -- formatting ----------------------------------------------------------------------------


def _money(amount: Optional[Decimal]) -> str:
    if amount is None:
        return "—"
    return f"${amount:,.2f}"


def _plural(count: int, word: str, plural: Optional[str] = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


def _rule_link(rule_id: str, rules: dict) -> etree._Element:
    rule = rules.get(rule_id)
    attrs = {"href": f"#rule-{rule_id}", "class": "rule-id"}
    if rule is not None:
        attrs["title"] = doc_plain(rule.summary)
    return E.A(rule_id, **attrs)


def _badge(severity: str) -> etree._Element:
    return E.SPAN(severity, **{"class": f"badge sev-{severity}"})


# -- page ----------------------------------------------------------------------------------


def _write(run: RunResult, file: FileResult, handle: IO[bytes], max_claims: int) -> None:
    rules = _rules_doc()
    summary = _Summary(run, file)
    element = file.delimiters.element if file.delimiters is not None else "*"
    with etree.htmlfile(handle, encoding="utf-8") as xf:
        xf.write_doctype("<!DOCTYPE html>")
        with xf.element("html", lang="en"):
            xf.write(_head(file))
            with xf.element("body"):
                xf.write(_header(run, file))
                with xf.element("main"):
                    xf.write(_summary_section(run, file, summary, rules))
                    with xf.element("section", id="claims"):
                        xf.write(E.H2("Flagged claims"))
                        xf.write(_toolbar(summary, rules, max_claims))
                        shown = _claim_groups(xf, run, file, summary, rules, element, max_claims)
                        if shown < summary.flagged:
                            xf.write(
                                E.P(
                                    f"{summary.flagged - shown:,} more flagged claims are not shown "
                                    f"here, to keep the page usable: the first {shown:,} are. The "
                                    "summary above counts every claim, and ",
                                    E.CODE(file.name + ".json"),
                                    " lists them all.",
                                    id="cap-note",
                                    **{"class": "note"},
                                )
                            )
                    xf.write(_rules_section(summary, rules))
                xf.write(E.FOOTER(f"claimscrub {__version__}"))
                script = etree.Element("script")
                script.text = _SCRIPT
                xf.write(script)


def _head(file: Optional[FileResult], title: Optional[str] = None) -> etree._Element:
    style = etree.Element("style")
    style.text = _CSS
    return E.HEAD(
        E.META(charset="utf-8"),
        E.META(
            **{
                "http-equiv": "Content-Security-Policy",
                "content": "default-src 'none'; style-src 'unsafe-inline'; "
                "script-src 'unsafe-inline'; img-src data:",
            }
        ),
        E.META(name="viewport", content="width=device-width, initial-scale=1"),
        E.META(name="referrer", content="no-referrer"),
        E.TITLE(title or f"claimscrub: {file.name}"),
        style,
    )


def _header(run: RunResult, file: FileResult) -> etree._Element:
    as_of = getattr(run.engine.ctx, "as_of", None)
    details = [f"{_plural(len(file.transactions), 'transaction set')}"]
    if as_of is not None:
        details.append(f"judged as of {as_of.isoformat()}")
    details.append(f"claimscrub {__version__}")
    return E.HEADER(
        E.DIV(
            E.H1("Claim scrub report ", E.SPAN(file.name, **{"class": "file"})),
            E.P(" · ".join(details), **{"class": "meta"}),
            **{"class": "wrap"},
        )
    )


def _card(label: str, value: str, sub: str = "", kind: str = "", key: str = "") -> etree._Element:
    children = [E.DIV(label, **{"class": "label"}), E.DIV(value, **{"class": "value", "data-key": key})]
    if sub:
        children.append(E.DIV(sub, **{"class": "sub"}))
    return E.DIV(*children, **{"class": f"card {kind}".strip()})


def _at_risk_sub(summary: _Summary) -> str:
    priced = f"{_plural(summary.priced, 'finding')} with an expected allowed amount"
    if not summary.unpriced_lines_at_risk:
        return priced
    if summary.at_risk == 0:
        return f"{_plural(summary.unpriced_lines_at_risk, 'line')} at risk with no MPFS price"
    return f"{priced}; plus {summary.unpriced_at_risk_text()}"


def _summary_section(run: RunResult, file: FileResult, summary: _Summary, rules: dict) -> etree._Element:
    total_findings = sum(file.findings_by_rule.values())
    cards = E.DIV(
        _card("Claims", f"{file.claim_count:,}", _money(file.accepted_charge + file.rejected_charge) + " billed",
              key="claims"),
        _card("Accepted", f"{file.accepted:,}", _money(file.accepted_charge), "ok", key="accepted"),
        _card("Rejected", f"{file.rejected:,}", _money(file.rejected_charge), "bad", key="rejected"),
        _card("Money at risk", summary.at_risk_text(), _at_risk_sub(summary), "risk", key="at_risk"),
        _card("Findings", f"{total_findings:,}",
              f"on {_plural(summary.flagged, 'claim')}; {summary.warned:,} accepted with warnings",
              key="findings"),
        id="cards",
        **{"class": "cards"},
    )
    charges = E.TABLE(
        E.TR(E.TH("Accepted charge"), E.TD(_money(file.accepted_charge), **{"class": "num", "data-key": "accepted_charge"})),
        E.TR(E.TH("Rejected charge"), E.TD(_money(file.rejected_charge), **{"class": "num", "data-key": "rejected_charge"})),
        E.TR(E.TH("Money at risk"), E.TD(summary.at_risk_text(), **{"class": "num", "data-key": "at_risk"})),
        **{"class": "kv"},
    )
    if summary.unpriced_lines_at_risk:
        charges.append(E.TR(E.TH("Unpriced lines at risk (billed charges)"),
                            E.TD(summary.unpriced_at_risk_text(), **{"class": "num", "data-key": "unpriced_at_risk"})))
    if summary.expected_allowed is not None:
        charges.append(E.TR(E.TH("Expected allowed (national MPFS)"),
                            E.TD(_money(summary.expected_allowed), **{"class": "num", "data-key": "expected_allowed"})))
    if summary.unpriced_lines:
        charges.append(E.TR(E.TH("Lines not priced"),
                            E.TD(f"{summary.unpriced_lines:,}", **{"class": "num", "data-key": "unpriced_lines"})))
    by_category = E.TABLE(
        E.THEAD(E.TR(E.TH("Category"), E.TH("Findings", **{"class": "num"}))),
        E.TBODY(
            *[
                E.TR(E.TD(category), E.TD(f"{count:,}", **{"class": "num"}), **{"data-category": category})
                for category, count in sorted(file.findings_by_category.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
        ),
        id="by-category",
        **{"class": "grid"},
    )
    rule_rows = []
    for rule_id, count in sorted(summary.by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
        rule = rules.get(rule_id)
        severities = summary.rule_severities.get(rule_id, Counter())
        rule_rows.append(
            E.TR(
                E.TD(_rule_link(rule_id, rules)),
                E.TD(doc_plain(rule.summary) if rule is not None else "", **{"class": "summary"}),
                E.TD(
                    *[_badge(s) for s in sorted(severities, key=_SEVERITY_RANK.get)],
                ),
                E.TD(f"{count:,}", **{"class": "num count"}),
                E.TD(_money(summary.rule_at_risk[rule_id]) if rule_id in summary.rule_at_risk else "",
                     **{"class": "num"}),
                E.TD(E.A("show", href=f"#rule={rule_id}", **{"class": "filter-link"})),
                **{"data-rule": rule_id},
            )
        )
    by_rule = E.TABLE(
        E.THEAD(
            E.TR(
                E.TH("Rule"), E.TH("What it checks"), E.TH("Severity"),
                E.TH("Findings", **{"class": "num"}), E.TH("Findings' amounts", **{"class": "num"}), E.TH(""),
            )
        ),
        E.TBODY(*rule_rows),
        id="by-rule",
        **{"class": "grid"},
    )
    parts = [
        E.H2("Summary"),
        cards,
        E.DIV(
            E.DIV(E.H3("Charges"), charges, **{"class": "panel"}),
            E.DIV(E.H3("Findings by category"),
                  by_category if file.findings_by_category else E.P("No findings.", **{"class": "muted"}),
                  **{"class": "panel"}),
            **{"class": "panels"},
        ),
        E.H3("Findings by rule"),
        by_rule if rule_rows else E.P("No findings: every claim is accepted.", **{"class": "muted"}),
    ]
    versions = run.table_versions
    if versions:
        keys: list[str] = []
        for entry in versions:
            for key in entry:
                if key not in keys:
                    keys.append(key)
        parts.append(
            E.DETAILS(
                E.SUMMARY(f"Rule tables used ({len(versions)}): ",
                          ", ".join(str(v.get("table") or v.get("file") or "") for v in versions)),
                E.TABLE(
                    E.THEAD(E.TR(*[E.TH(str(k)) for k in keys])),
                    E.TBODY(*[E.TR(*[E.TD(str(entry.get(k, ""))) for k in keys]) for entry in versions]),
                    id="tables",
                    **{"class": "grid"},
                ),
                id="table-versions",
            )
        )
    return E.SECTION(*parts, id="summary")


def _toolbar(summary: _Summary, rules: dict, max_claims: int) -> etree._Element:
    options = [E.OPTION(f"All rules ({sum(summary.by_rule.values()):,} findings)", value="")]
    for rule_id, count in sorted(summary.by_rule.items()):
        rule = rules.get(rule_id)
        label = f"{rule_id} ({count:,})" + (f" · {doc_plain(rule.summary)}" if rule is not None else "")
        if len(label) > 90:
            label = label[:89] + "…"
        options.append(E.OPTION(label, value=rule_id))
    boxes = []
    for severity in SEVERITIES:
        boxes.append(
            E.LABEL(
                E.INPUT(type="checkbox", value=severity.value, checked="checked",
                        **{"class": "sev-filter", "id": f"sev-{severity.value}"}),
                " ",
                _badge(severity.value),
                **{"class": "check"},
            )
        )
    sorts = [E.OPTION(label, value=value) for value, label in SORTS]
    return E.DIV(
        E.DIV(
            E.LABEL("Rule ", E.SELECT(*options, id="rule-filter"), **{"for": "rule-filter"}),
            E.SPAN("Severity ", *boxes, **{"class": "sevs"}),
            E.A("reset", href="#all", id="filter-reset"),
            E.SPAN(
                f"{_plural(min(summary.flagged, max_claims), 'flagged claim')} shown",
                id="filter-status",
                role="status",
            ),
            E.SPAN(f"{_plural(sum(summary.by_rule.values()), 'finding')}", id="findings-status"),
            **{"class": "row"},
        ),
        E.DIV(
            _search("claim", "Claim id", "CLM01"),
            _search("payer", "Payer", "name or id"),
            _search("provider", "Provider", "NPI or name"),
            E.LABEL("Date of service ", E.INPUT(type="date", id="q-from", **{"class": "search", "data-field": "from"}),
                    " to ", E.INPUT(type="date", id="q-to", **{"class": "search", "data-field": "to"}),
                    **{"for": "q-from"}),
            E.LABEL("Sort ", E.SELECT(*sorts, id="sort"), **{"for": "sort"}),
            **{"class": "row search-row"},
        ),
        id="toolbar",
        **{"class": "toolbar"},
    )


#: The orders the flagged claims can be sorted in (select ``#sort``; ``#sort=KEY`` links).
SORTS = (
    ("order", "file order"),
    ("claim", "claim id"),
    ("payer", "payer"),
    ("provider", "provider"),
    ("date", "date of service"),
    ("charge", "charge, highest first"),
    ("risk", "money at risk, highest first"),
)


def _search(field: str, label: str, hint: str) -> etree._Element:
    return E.LABEL(
        f"{label} ",
        E.INPUT(type="search", id=f"q-{field}", placeholder=hint, autocomplete="off",
                **{"class": "search", "data-field": field}),
        **{"for": f"q-{field}"},
    )


def _claim_groups(xf, run: RunResult, file: FileResult, summary: _Summary, rules: dict,
                  element: str, max_claims: int) -> int:
    """Rejected claims, then claims accepted with findings; two streaming passes."""
    shown = 0
    groups = (
        ("rejected", "Rejected claims", file.rejected, lambda r: r.status == REJECTED),
        ("warned", "Accepted with warnings", summary.warned, lambda r: r.status != REJECTED),
    )
    for key, title, count, wanted in groups:
        if count == 0:
            continue
        with xf.element("section", id=f"group-{key}", **{"class": f"group group-{key}"}):
            xf.write(E.H3(f"{title} ", E.SPAN(f"({count:,})", **{"class": "muted group-count",
                                                                 "data-total": str(count)})))
            if shown >= max_claims:
                xf.write(E.P("Not shown: the page holds at most "
                             f"{max_claims:,} claims in full.", **{"class": "muted"}))
                continue
            for result in run.claim_results(file, flagged_only=True):
                if not result.findings or not wanted(result):
                    continue
                xf.write(_claim(result, rules, element))
                shown += 1
                if shown >= max_claims:
                    break
    if summary.flagged == 0:
        xf.write(E.P("No claim has a finding.", **{"class": "muted"}))
    return shown


def _claim(result: ClaimResult, rules: dict, element: str) -> etree._Element:
    claim = result.claim
    words = sensitive_words(claim)
    first, last = claim.pos, claim.pos + len(result.segments) - 1
    beside: dict[int, list[Finding]] = defaultdict(list)
    outside: list[Finding] = []
    for finding in result.findings:
        if finding.segment is not None and first <= finding.segment <= last:
            beside[finding.segment].append(finding)
        else:
            outside.append(finding)
    severities = Counter(f.severity.value for f in result.findings)
    status = result.status
    dates = sorted({line.date_from for line in claim.lines if line.date_from is not None})
    facts = [E.SPAN(_money(claim.charge) if claim.charge is not None else (claim.charge_raw or "—"),
                    **{"class": "charge"})]
    facts.append(E.SPAN(_plural(len(claim.lines), "line")))
    if dates:
        span = dates[0].isoformat() + (f" to {dates[-1].isoformat()}" if len(dates) > 1 else "")
        facts.append(E.SPAN(f"DOS {span}"))
    payer_name = _scrub_text(claim.payer.name, words)
    if payer_name:
        facts.append(E.SPAN(payer_name, **{"class": "payer"}))
    npis = [claim.billing_provider.npi, claim.rendering_npi] + [line.rendering_npi for line in claim.lines]
    billing_name = " ".join(v for v in (claim.billing_provider.first_name, claim.billing_provider.name) if v)
    providers = list(dict.fromkeys(v.strip() for v in npis + [_scrub_text(billing_name, words)] if v and v.strip()))
    rendering = claim.rendering_npi or claim.billing_provider.npi
    if rendering:
        facts.append(E.SPAN(f"NPI {rendering}", **{"class": "provider"}))
    claim_at_risk = getattr(result, "amount_at_risk", None)
    if claim_at_risk:
        facts.append(E.SPAN(f"{_money(claim_at_risk)} at risk", **{"class": "risk"}))
    unpriced_charge, unpriced_count = getattr(result, "unpriced_at_risk", (Decimal(0), 0))
    if unpriced_count:
        facts.append(E.SPAN(f"{_money(unpriced_charge)} billed at risk on {_plural(unpriced_count, 'line')} "
                            "not priced", **{"class": "risk", "data-key": "unpriced_at_risk"}))
    facts.append(E.SPAN(f"segments {first:,}–{last:,}"))
    counts = ", ".join(_plural(severities[s.value], s.value) for s in SEVERITIES if severities[s.value])

    rows = []
    masked = mask_segments(result.segments, element, words)
    for offset, text in enumerate(masked):
        ordinal = first + offset
        notes = beside.get(ordinal, [])
        seg_id, sep, rest = text.partition(element)
        worst = min((_SEVERITY_RANK[f.severity.value] for f in notes), default=None)
        attrs = {"data-seg": str(ordinal), "id": f"c{claim.index}-s{ordinal}"}
        if worst is not None:
            attrs["class"] = f"flag sev-{SEVERITIES[worst].value}"
        rows.append(
            E.TR(
                E.TD(str(ordinal), **{"class": "pos"}),
                E.TD(E.CODE(E.SPAN(seg_id, **{"class": "sid"}), *_masked_spans(sep + rest)), **{"class": "seg"}),
                E.TD(*[_finding(f, rules, words) for f in notes], **{"class": "notes"}),
                **attrs,
            )
        )
    parts = [
        E.DIV(
            E.H4(E.SPAN(claim.claim_id, **{"class": "claim-id"}), " ", _badge_status(status)),
            E.DIV(*_interleave(facts, " · "), **{"class": "facts"}),
            E.DIV(counts, **{"class": "counts"}),
            **{"class": "claim-head"},
        )
    ]
    if outside:
        parts.append(
            E.DIV(
                E.DIV("Findings outside this claim's segments (envelope, transaction set)",
                      **{"class": "outside-title"}),
                *[_finding(f, rules, words) for f in outside],
                **{"class": "outside"},
            )
        )
    parts.append(
        E.TABLE(
            E.COLGROUP(E.COL(**{"class": "c-pos"}), E.COL(**{"class": "c-seg"}), E.COL(**{"class": "c-notes"})),
            E.TBODY(*rows),
            **{"class": "segments"},
        )
    )
    return E.ARTICLE(
        *parts,
        id=f"claim-{claim.index}",
        **{
            "class": f"claim {status}",
            "data-claim": claim.claim_id,
            "data-status": status,
            "data-rules": " ".join(sorted({f.rule for f in result.findings})),
            # what the search and sort read (the inline script): payer name and id,
            # provider NPIs and billing provider name, dates of service, amounts, file order
            "data-payer": " ".join(v for v in (payer_name, claim.payer.id) if v),
            "data-provider": " ".join(providers),
            "data-dates": " ".join(d.isoformat() for d in dates),
            "data-charge": format(claim.charge, "f") if claim.charge is not None else "",
            "data-risk": format(claim_at_risk or Decimal(0), "f"),
            "data-order": str(claim.index),
        },
    )


def _masked_spans(text: str) -> list:
    """Text with each masked value wrapped in a span that says why it is hidden."""
    out: list = []
    for i, piece in enumerate(text.split(MASK)):
        if i:
            out.append(E.SPAN(MASK, title="hidden: personal data", **{"class": "mask"}))
        if piece:
            out.append(piece)
    return out


def _badge_status(status: str) -> etree._Element:
    return E.SPAN(status, **{"class": f"status status-{status}"})


def _interleave(items: list, sep: str) -> list:
    out: list = []
    for i, item in enumerate(items):
        if i:
            out.append(sep)
        out.append(item)
    return out


def _finding(finding: Finding, rules: dict, words: tuple[str, ...]) -> etree._Element:
    severity = finding.severity.value
    head = [_badge(severity), " ", _rule_link(finding.rule, rules),
            E.SPAN(finding.category.value, **{"class": "category"})]
    if finding.line:
        head.append(E.SPAN(f"line {finding.line}", **{"class": "line"}))
    if finding.amount_at_risk is not None:
        head.append(E.SPAN(f"{_money(finding.amount_at_risk)} at risk", **{"class": "risk"}))
    body = [
        E.DIV(*head, **{"class": "f-head"}),
        E.DIV(_scrub_text(finding.message, words), **{"class": "message"}),
    ]
    if finding.fix:
        body.append(E.DIV(E.B("Fix: "), _scrub_text(finding.fix, words), **{"class": "fix"}))
    body.append(E.DIV(E.B("Source: "), finding.source, **{"class": "source"}))
    attrs = {
        "class": f"finding sev-{severity}",
        "data-rule": finding.rule,
        "data-severity": severity,
    }
    if finding.segment is not None:
        attrs["data-seg"] = str(finding.segment)
    return E.DIV(*body, **attrs)


def _visible_lines(text: str) -> str:
    """:func:`visible` line by line: the line breaks of a documentation example stay."""
    return "\n".join(visible(line) for line in text.split("\n"))


def _pre(text: str) -> etree._Element:
    pre = etree.Element("pre")
    pre.text = _visible_lines(text)
    return pre


def _rules_section(summary: _Summary, rules: dict) -> etree._Element:
    entries = []
    for rule_id in sorted(summary.by_rule):
        rule = rules.get(rule_id)
        if rule is None:
            entries.append(E.DIV(E.H3(rule_id), E.P("No documentation for this rule id.", **{"class": "muted"}),
                                 id=f"rule-{rule_id}", **{"class": "rule-doc"}))
            continue
        docs = rule.documentation()
        facts = f"{rule.category.value} · default severity {rule.severity.value} · scope {rule.scope.value}"
        body = [
            E.H3(E.SPAN(rule_id, **{"class": "rule-id"}), " ", E.SPAN(rule.name, **{"class": "muted"})),
            E.P(*doc_inline(visible(rule.summary)), **{"class": "rule-summary"}),
            E.P(facts, **{"class": "muted"}),
        ]
        for heading in ("What it checks", "Why payers deny it", "Failing example", "Corrected example"):
            text = docs.get(heading)
            if text:
                # examples are claims written as YAML: shown as they are; prose is rendered
                blocks = [_pre(text)] if "example" in heading else render_doc(text, _visible_lines)
                body.append(E.DIV(E.H5(heading), *blocks, **{"class": "doc-part"}))
        body.append(E.DIV(E.H5("Source"), *render_doc(docs.get("Source") or rule.source, _visible_lines),
                          **{"class": "doc-part"}))
        entries.append(E.DIV(*body, id=f"rule-{rule_id}", **{"class": "rule-doc", "data-rule": rule_id}))
    if not entries:
        return E.SECTION(id="rules")
    return E.SECTION(E.H2("The rules that fired"), *entries, id="rules")


_CSS = """
:root { --ink:#1d2430; --muted:#5d6776; --line:#dde2ea; --bg:#f4f6f9; --card:#fff;
  --err:#b42318; --err-bg:#fdecea; --warn:#8a5a00; --warn-bg:#fff5d6; --info:#1f5fa8; --info-bg:#e7f0fb;
  --ok:#1e7b3a; --ok-bg:#e6f4ea; --mono: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { font-size: 15px; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", sans-serif;
  color: var(--ink); background: var(--bg); line-height: 1.45; }
header { background: #1d2a3a; color: #fff; }
header .wrap, main, footer { max-width: 1320px; margin: 0 auto; padding: 0 24px; }
header .wrap { padding-top: 18px; padding-bottom: 16px; }
h1 { margin: 0; font-size: 1.5rem; font-weight: 600; }
h1 .file { font-family: var(--mono); font-weight: 400; color: #c9d6e8; margin-left: .3em; }
.meta { margin: 4px 0 0; color: #b6c3d4; font-size: .9rem; }
h2 { font-size: 1.25rem; margin: 28px 0 12px; }
h3 { font-size: 1.05rem; margin: 20px 0 8px; }
a { color: #1f5fa8; }
.muted { color: var(--muted); font-weight: 400; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
  border-top: 4px solid #8796a8; }
.card.ok { border-top-color: var(--ok); } .card.bad { border-top-color: var(--err); } .card.risk { border-top-color: #c77700; }
.card .label { color: var(--muted); font-size: .85rem; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 1.7rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.card.bad .value { color: var(--err); } .card.ok .value { color: var(--ok); }
.card .sub { color: var(--muted); font-size: .88rem; }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; margin-top: 12px; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 4px 16px 12px; }
table { border-collapse: collapse; }
table.grid, table.kv { width: 100%; background: var(--card); }
table.grid th, table.grid td, table.kv th, table.kv td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.grid thead th { font-size: .82rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); background: #eef1f5; }
table.kv th { font-weight: 500; color: var(--muted); }
#by-rule, #tables, #files { border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
#table-versions { margin-top: 16px; }
#table-versions > summary { cursor: pointer; font-weight: 600; padding: 4px 0 8px; }
#tables td { font-size: .88rem; }
.num { text-align: right !important; font-variant-numeric: tabular-nums; }
.rule-id { font-family: var(--mono); font-weight: 600; white-space: nowrap; }
.badge { display: inline-block; font-size: .72rem; font-weight: 700; text-transform: uppercase; letter-spacing: .04em;
  padding: 1px 7px; border-radius: 10px; margin-right: 4px; }
.badge.sev-error { color: var(--err); background: var(--err-bg); }
.badge.sev-warning { color: var(--warn); background: var(--warn-bg); }
.badge.sev-info { color: var(--info); background: var(--info-bg); }
.toolbar { position: sticky; top: 0; z-index: 5; background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; margin-bottom: 14px; box-shadow: 0 2px 6px rgba(20, 30, 50, .06); }
.toolbar .row { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 22px; }
.toolbar .search-row { margin-top: 8px; gap: 8px 16px; font-size: .92rem; }
.toolbar input.search { font: inherit; padding: 3px 6px; border: 1px solid #c4ccd8; border-radius: 4px; }
.toolbar input[type=search] { width: 11em; }
.toolbar select { font: inherit; padding: 4px 6px; max-width: 560px; }
.toolbar .check { margin-right: 6px; white-space: nowrap; }
#filter-status { margin-left: auto; color: var(--muted); }
#findings-status { color: var(--muted); }
.group h3 { margin-top: 18px; }
/* claims off screen are not laid out until scrolled to: a page of 2,000 claims stays quick */
.claim { content-visibility: auto; contain-intrinsic-size: auto 420px; background: var(--card); border: 1px solid var(--line); border-left: 5px solid var(--warn); border-radius: 8px;
  margin: 0 0 16px; overflow: hidden; }
.claim.rejected { border-left-color: var(--err); }
.claim-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 18px; padding: 10px 16px;
  background: #f8f9fb; border-bottom: 1px solid var(--line); }
.claim-head h4 { margin: 0; font-size: 1.1rem; }
.claim-id { font-family: var(--mono); }
.facts { color: var(--muted); } .facts .charge { color: var(--ink); font-weight: 600; }
.facts .risk { color: #a35f00; font-weight: 600; }
.counts { margin-left: auto; color: var(--muted); font-size: .9rem; }
.status { font-size: .75rem; font-weight: 700; text-transform: uppercase; padding: 2px 8px; border-radius: 4px; vertical-align: 2px; }
.status-rejected { color: #fff; background: var(--err); } .status-accepted { color: #fff; background: var(--ok); }
.outside { margin: 10px 16px 0; padding: 8px 10px; border: 1px dashed #d3a19c; border-radius: 6px; background: #fffafa; }
.outside-title { font-size: .85rem; color: var(--muted); margin-bottom: 4px; }
table.segments { width: 100%; table-layout: fixed; margin: 6px 0 8px; }
col.c-pos { width: 64px; } col.c-seg { width: 46%; }
table.segments td { padding: 3px 10px; vertical-align: top; border-bottom: 1px solid #f0f2f5; }
table.segments td.pos { color: #98a2b0; text-align: right; font-family: var(--mono); font-size: .82rem; padding-top: 5px; }
table.segments td.seg code { font-family: var(--mono); font-size: .88rem; white-space: pre-wrap; word-break: break-all; }
.sid { font-weight: 700; color: #2b4a7a; }
.mask { color: #8a94a3; letter-spacing: -.05em; }
tr.flag.sev-error td.seg { background: var(--err-bg); box-shadow: inset 3px 0 0 var(--err); }
tr.flag.sev-warning td.seg { background: var(--warn-bg); box-shadow: inset 3px 0 0 #d49b00; }
tr.flag.sev-info td.seg { background: var(--info-bg); box-shadow: inset 3px 0 0 var(--info); }
tr.flag.dim td.seg { background: none; box-shadow: none; }
.finding { border: 1px solid var(--line); border-left: 4px solid var(--muted); border-radius: 6px; padding: 6px 10px;
  margin: 2px 0 6px; background: #fff; font-size: .92rem; }
.finding.sev-error { border-left-color: var(--err); }
.finding.sev-warning { border-left-color: #d49b00; }
.finding.sev-info { border-left-color: var(--info); }
.f-head { display: flex; flex-wrap: wrap; align-items: center; gap: 2px 10px; }
.f-head .category, .f-head .line { color: var(--muted); font-size: .85rem; }
.f-head .risk { color: #a35f00; font-weight: 600; font-size: .85rem; }
.message { margin-top: 3px; font-weight: 500; }
.fix, .source { color: #39424e; margin-top: 2px; }
.source { color: var(--muted); font-size: .85rem; }
.fix b, .source b { font-weight: 600; }
.note { background: var(--warn-bg); border: 1px solid #ecd08a; border-radius: 6px; padding: 10px 14px; }
.rule-doc { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 4px 16px 10px; margin-bottom: 12px; }
.rule-doc:target { outline: 3px solid #9cc0ea; }
.rule-doc h5 { margin: 8px 0 2px; font-size: .85rem; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.rule-doc p { margin: 2px 0 6px; }
.rule-doc ul { margin: 2px 0 6px; padding-left: 22px; }
.rule-doc code { font-family: var(--mono); font-size: .88em; background: #eef1f5; padding: 0 3px; border-radius: 3px; }
.rule-doc pre { margin: 2px 0; font-family: var(--mono); font-size: .85rem; background: #f4f6f9; padding: 6px 8px; border-radius: 4px; white-space: pre-wrap; }
.rule-summary { font-weight: 600; }
footer { color: var(--muted); font-size: .85rem; padding: 24px; }
@media print { .toolbar { display: none; } body { background: #fff; } }
"""

# Static: no data is ever interpolated into the script; it reads the data-* attributes.
_SCRIPT = r"""
(function () {
  "use strict";
  var select = document.getElementById("rule-filter");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input.sev-filter"));
  var searches = Array.prototype.slice.call(document.querySelectorAll("input.search"));
  var sorter = document.getElementById("sort");
  var claims = Array.prototype.slice.call(document.querySelectorAll("article.claim"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("section.group"));
  var status = document.getElementById("filter-status");
  var findingsStatus = document.getElementById("findings-status");
  if (!select) { return; }
  var KEYS = ["claim", "payer", "provider", "from", "to"];

  function data(claim, name) { return claim.getAttribute("data-" + name) || ""; }

  function state() {
    var severities = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    var query = {};
    searches.forEach(function (input) { query[input.getAttribute("data-field")] = input.value.trim(); });
    return { rule: select.value, severities: severities, query: query, sort: sorter ? sorter.value : "order" };
  }

  function contains(text, wanted) { return wanted === "" || text.toLowerCase().indexOf(wanted.toLowerCase()) >= 0; }

  function matches(claim, q) {
    if (!contains(data(claim, "claim"), q.claim || "")) { return false; }
    if (!contains(data(claim, "payer"), q.payer || "")) { return false; }
    if (!contains(data(claim, "provider"), q.provider || "")) { return false; }
    if (q.from || q.to) {
      var dates = data(claim, "dates").split(" ").filter(Boolean);
      var inside = dates.some(function (d) { return (!q.from || d >= q.from) && (!q.to || d <= q.to); });
      if (!inside) { return false; }
    }
    return true;
  }

  function sortKey(claim, key) {
    if (key === "charge" || key === "risk") { return -(parseFloat(data(claim, key)) || 0); }
    if (key === "date") { return data(claim, "dates").split(" ")[0] || "9999"; }
    if (key === "claim" || key === "payer" || key === "provider") { return data(claim, key).toLowerCase(); }
    return parseInt(data(claim, "order"), 10) || 0;
  }

  function sortClaims(key) {
    groups.forEach(function (g) {
      var list = Array.prototype.slice.call(g.querySelectorAll("article.claim"));
      var keyed = list.map(function (c) {
        return { c: c, k: sortKey(c, key), o: parseInt(data(c, "order"), 10) || 0 };
      });
      keyed.sort(function (a, b) { return a.k < b.k ? -1 : a.k > b.k ? 1 : a.o - b.o; });
      keyed.forEach(function (item) { g.appendChild(item.c); });
    });
  }

  function apply(updateHash) {
    var s = state();
    var shown = 0, findingsShown = 0;
    claims.forEach(function (claim) {
      var any = false;
      var found = matches(claim, s.query);
      claim.querySelectorAll(".finding").forEach(function (f) {
        var ok = (s.rule === "" || f.getAttribute("data-rule") === s.rule) &&
                 s.severities.indexOf(f.getAttribute("data-severity")) >= 0;
        f.hidden = !ok;
        if (ok) { any = true; if (found) { findingsShown += 1; } }
      });
      claim.querySelectorAll("tr.flag").forEach(function (row) {
        var visible = row.querySelectorAll(".finding:not([hidden])").length > 0;
        row.classList.toggle("dim", !visible);
      });
      claim.hidden = !(any && found);
      if (any && found) { shown += 1; }
    });
    sortClaims(s.sort);
    var searching = KEYS.some(function (k) { return s.query[k]; });
    var all = s.rule === "" && s.severities.length === boxes.length && !searching;
    groups.forEach(function (g) {
      var list = g.querySelectorAll("article.claim");
      var visible = g.querySelectorAll("article.claim:not([hidden])").length;
      if (list.length) { g.hidden = visible === 0; }
      var count = g.querySelector(".group-count");
      if (count && list.length) {
        var total = count.getAttribute("data-total");
        count.textContent = all ? "(" + total + ")" : "(" + visible + " of " + total + ")";
        count.setAttribute("data-shown", String(visible));
      }
    });
    status.textContent = (all ? "" : "Filtered: ") + shown + " of " + claims.length + " claims shown";
    status.setAttribute("data-shown", String(shown));
    if (findingsStatus) {
      findingsStatus.textContent = findingsShown + " finding" + (findingsShown === 1 ? "" : "s");
      findingsStatus.setAttribute("data-shown", String(findingsShown));
    }
    if (updateHash) {
      var parts = [];
      if (s.rule) { parts.push("rule=" + encodeURIComponent(s.rule)); }
      if (s.severities.length !== boxes.length) { parts.push("severity=" + s.severities.join(",")); }
      KEYS.forEach(function (k) { if (s.query[k]) { parts.push(k + "=" + encodeURIComponent(s.query[k])); } });
      if (s.sort && s.sort !== "order") { parts.push("sort=" + s.sort); }
      try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search); }
      catch (e) { /* file: URLs in some browsers */ }
    }
  }

  function setSearch(field, value) {
    searches.forEach(function (input) { if (input.getAttribute("data-field") === field) { input.value = value; } });
  }

  function fromHash() {
    var hash = location.hash.replace(/^#/, "");
    if (hash === "all") {
      select.value = "";
      boxes.forEach(function (b) { b.checked = true; });
      searches.forEach(function (input) { input.value = ""; });
      if (sorter) { sorter.value = "order"; }
      apply(true);
      return;
    }
    if (!/(^|&)(rule|severity|claim|payer|provider|from|to|sort)=/.test(hash)) { apply(false); return; }
    var rule = "", severities = null, sort = "order", query = {};
    hash.split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq < 0) { return; }
      var key = part.slice(0, eq), value;
      try { value = decodeURIComponent(part.slice(eq + 1)); } catch (e) { value = ""; }
      if (key === "rule") { rule = value; }
      if (key === "severity") { severities = value ? value.split(",") : []; }
      if (key === "sort") { sort = value; }
      if (KEYS.indexOf(key) >= 0) { query[key] = value; }
    });
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === rule; });
    select.value = known ? rule : "";
    boxes.forEach(function (b) { b.checked = severities === null || severities.indexOf(b.value) >= 0; });
    KEYS.forEach(function (k) { setSearch(k, query[k] || ""); });
    if (sorter) {
      var sortable = Array.prototype.some.call(sorter.options, function (o) { return o.value === sort; });
      sorter.value = sortable ? sort : "order";
    }
    apply(false);
    var claimsSection = document.getElementById("claims");
    if (claimsSection && location.hash.length > 1 && document.readyState === "complete") {
      claimsSection.scrollIntoView();
    }
  }

  select.addEventListener("change", function () { apply(true); });
  boxes.forEach(function (b) { b.addEventListener("change", function () { apply(true); }); });
  searches.forEach(function (input) { input.addEventListener("input", function () { apply(true); }); });
  if (sorter) { sorter.addEventListener("change", function () { apply(true); }); }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""
