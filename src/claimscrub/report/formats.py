"""What ``claimscrub scrub --format`` writes to standard output.

- ``text``: one line per finding, as ruff prints them (``NAME:SEGMENT: RULE severity claim
  ID [line N]: message``), then a summary line;
- ``json``: a JSON array holding, for each usable input, the document its ``NAME.json``
  report holds (:mod:`claimscrub.report.json_report`);
- ``jsonl``: one claim per line (the report's claim object with the input's name under
  ``input``), written as the claims are read back from the run's store, so a batch of any
  size streams;
- ``csv``: one finding per row with a header row, for billing teams' spreadsheets.
"""

from __future__ import annotations

import csv
import json
from typing import IO

FORMATS = ("text", "json", "jsonl", "csv")

#: The csv header, in column order.
CSV_COLUMNS = ("input", "claim_id", "payer_id", "claim_status", "rule", "severity", "category",
               "line", "segment", "amount_at_risk", "message", "fix")


def write_format(result, kind: str, out: IO[str]) -> None:
    """Write the run ``result`` (:class:`claimscrub.api.ScrubResult`) to ``out`` as ``kind``."""
    {"text": write_text, "json": write_json, "jsonl": write_jsonl, "csv": write_csv}[kind](result, out)


def write_text(result, out: IO[str]) -> None:
    for report in result.files:
        if not report.usable:
            continue
        for claim in report.claims(flagged_only=True):
            for finding in claim.findings:
                where = f" line {finding.line}" if finding.line else ""
                out.write(f"{report.name}:{finding.segment or claim.segment}: {finding.rule} "
                          f"{finding.severity.value} claim {claim.claim_id}{where}: {finding.message}\n")
    summary = result.summary
    flagged = "finding" if summary.findings == 1 else "findings"
    out.write(
        f"Found {summary.findings} {flagged} ({summary.errors} error{'s' if summary.errors != 1 else ''}, "
        f"{summary.warnings} warning{'s' if summary.warnings != 1 else ''}, {summary.infos} info) "
        f"in {summary.claims} claim{'s' if summary.claims != 1 else ''}: {summary.accepted} accepted, "
        f"{summary.rejected} rejected"
        + (f"; {summary.unusable_files} unusable input{'s' if summary.unusable_files != 1 else ''}"
           if summary.unusable_files else "")
        + ".\n"
    )


def write_json(result, out: IO[str]) -> None:
    documents = [report.to_json().rstrip("\n") for report in result.files if report.usable]
    if not documents:
        out.write("[]\n")
        return
    out.write("[\n" + ",\n".join(documents) + "\n]\n")


def write_jsonl(result, out: IO[str]) -> None:
    from claimscrub.report.json_report import claim_document
    from claimscrub.report.schema import SCHEMA_VERSION

    run = result.run
    for report in result.files:
        if not report.usable:
            continue
        for claim_result in run.claim_results(report.file_result, with_segments=False):
            document = {"schema_version": SCHEMA_VERSION, "input": report.name,
                        **claim_document(claim_result, report.file_result)}
            out.write(json.dumps(document) + "\n")
            out.flush()


def write_csv(result, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in result.files:
        if not report.usable:
            continue
        for claim in report.claims(flagged_only=True):
            for finding in claim.findings:
                writer.writerow([
                    report.name, claim.claim_id, claim.payer_id, claim.status, finding.rule,
                    finding.severity.value, finding.category.value, finding.line or "",
                    finding.segment or "",
                    "" if finding.amount_at_risk is None else str(finding.amount_at_risk),
                    finding.message, finding.fix,
                ])
