"""The JSON report: one document per input file, written atomically.

The document's shape is :class:`claimscrub.report.schema.ReportDoc` (``claimscrub schema``
prints its JSON Schema, ``schema_version`` says which). It is written as plain data, claim
by claim (:func:`claim_document`), so a large batch never sits in memory as one object.
"""

from __future__ import annotations

import json
from typing import IO, Optional

from claimscrub import __version__
from claimscrub.atomic import atomic_writer
from claimscrub.findings import Finding, Severity
from claimscrub.model import Claim, ServiceLine
from claimscrub.report.ack277 import finding_status
from claimscrub.report.schema import SCHEMA_VERSION, money
from claimscrub.scrub import ClaimResult, FileResult, RunResult


def summary(file: FileResult) -> dict:
    return {
        "claims": file.claim_count,
        "accepted": file.accepted,
        "rejected": file.rejected,
        "accepted_charge": money(file.accepted_charge),
        "rejected_charge": money(file.rejected_charge),
        "transaction_sets": len(file.transactions),
        # transaction sets holding no readable claim: rejected, with no claim to carry it
        "transaction_sets_without_claims": [
            {"segment": info.st_pos, "control_number": info.control_number}
            for info in getattr(file, "empty_sets", [])
        ],
        "findings_by_category": dict(sorted(file.findings_by_category.items())),
        "findings_by_rule": dict(sorted(file.findings_by_rule.items())),
        # money at stake (claimscrub.pricing): national MPFS expected allowed over the priced
        # lines, what the error findings put at risk (each line once), lines not priced, and
        # the billed charges of the unpriced lines the error findings put at risk (never
        # added to the expected allowed amounts)
        "expected_allowed": money(file.expected_allowed),
        "amount_at_risk": money(file.amount_at_risk),
        "unpriced_lines": file.unpriced_lines,
        "unpriced_lines_at_risk": file.unpriced_lines_at_risk,
        "unpriced_charge_at_risk": money(file.unpriced_charge_at_risk),
    }


def _text(value: Optional[str]) -> Optional[str]:
    """A value of the input, ``None`` when the input leaves it empty."""
    value = (value or "").strip()
    return value or None


def ack277_status(finding: Finding) -> Optional[dict]:
    """The 277CA status of an error finding (:func:`claimscrub.report.ack277.finding_status`,
    the mapping the 277CA itself uses); ``None`` for a finding that rejects nothing."""
    if finding.severity != Severity.ERROR:
        return None
    status = finding_status(finding)
    return {"category": status.category, "status_code": status.code, "entity": status.entity or None}


def finding_document(finding: Finding) -> dict:
    return {
        "rule": finding.rule,
        "category": finding.category.value,
        "severity": finding.severity.value,
        "line": finding.line,
        "segment": finding.segment,
        "message": finding.message,
        "fix": finding.fix,
        "source": finding.source,
        "amount_at_risk": money(finding.amount_at_risk),
        "related": [
            {
                "claim_id": other.claim_id,
                "file": other.file,
                "line": other.line,
                "billed_on": other.billed_on.isoformat() if other.billed_on is not None else None,
            }
            for other in getattr(finding, "related", ())
        ],
        "ack277": ack277_status(finding),
    }


def _line_document(claim: Claim, line: ServiceLine, allowed) -> dict:
    start = line.date_from
    return {
        "line": line.number,
        "segment": line.pos,
        "code": _text(line.procedure_code),
        "modifiers": list(line.modifiers),
        "charge": money(line.charge),
        "units": format(line.units, "f") if line.units is not None and line.units.is_finite() else None,
        "date_of_service": start.isoformat() if start is not None else None,
        "date_of_service_end": (line.date_to or start).isoformat() if start is not None else None,
        "rendering_npi": _text(claim.line_provider_npi(line)),
        "expected_allowed": money(allowed),
    }


def claim_document(result: ClaimResult, file: FileResult) -> dict:
    """One claim of ``file`` as the report writes it (the schema's ``ClaimDoc``): one pass
    over its lines and findings."""
    claim = result.claim
    unpriced_charge, unpriced_count = result.unpriced_at_risk
    line_allowed = result.line_allowed
    lines = [_line_document(claim, line, line_allowed.get(line.number)) for line in claim.lines]
    dates = [line["date_of_service"] for line in lines if line["date_of_service"] is not None]
    ends = [line["date_of_service_end"] for line in lines if line["date_of_service_end"] is not None]
    days = dict.fromkeys(
        (line["date_of_service"], line["rendering_npi"]) for line in lines if line["date_of_service"] is not None
    )
    head = claim.interchange
    ts_index = head.transaction_index if head is not None else 0
    ts_segment = file.transactions[ts_index].st_pos if 0 <= ts_index < len(file.transactions) else None
    charge = money(claim.charge)
    return {
        "claim_id": claim.claim_id,
        "status": result.status,
        "segment": claim.pos,
        "charge": charge,
        "charge_raw": (claim.charge_raw or None) if charge is None else None,
        "transaction_set": {
            "control_number": head.transaction_control_number if head is not None else "",
            "index": ts_index,
            "segment": ts_segment,
        },
        "payer": {
            "id": _text(claim.payer.id),
            "id_qualifier": _text(claim.payer.id_qualifier),
            "name": _text(claim.payer.name),
        },
        "billing_npi": _text(claim.billing_provider.npi),
        "rendering_npi": _text(claim.rendering_npi),
        "service_date_from": min(dates) if dates else None,
        "service_date_to": max(ends) if ends else None,
        "patient_days": [{"date_of_service": day, "rendering_npi": npi} for day, npi in days],
        "findings": [finding_document(f) for f in result.findings],
        "expected_allowed": money(result.expected_allowed),
        "amount_at_risk": money(result.amount_at_risk),
        "unpriced_lines_at_risk": unpriced_count,
        "unpriced_charge_at_risk": money(unpriced_charge),
        "lines": lines,
    }


def write_json(run: RunResult, file: FileResult, out_dir: str) -> str:
    path = file.output_path(out_dir, ".json")
    with atomic_writer(path) as handle:
        _write(run, file, handle)
    return path


def _config_file(run: RunResult) -> Optional[str]:
    """The configuration file the run used, as an absolute path (None: no file)."""
    config = getattr(run.engine.ctx, "config", None)
    path = getattr(config, "file", None) or getattr(config, "path", None)
    return str(path) if path is not None else None


def document_head(run: RunResult, file: FileResult) -> dict:
    """Everything of the document but its claims (the schema's ``ReportDoc``)."""
    as_of = getattr(run.engine.ctx, "as_of", None)
    return {
        "schema_version": SCHEMA_VERSION,
        "claimscrub_version": __version__,
        "input": file.name,
        "as_of": as_of.isoformat() if as_of is not None else None,
        # the configuration file the run used (None: every edit at its default severity)
        "config_file": _config_file(run),
        "tables": run.table_versions,
        "summary": summary(file),
    }


def _write(run: RunResult, file: FileResult, handle: IO[str]) -> None:
    # Claims are streamed one by one so a large batch never sits in memory as one object.
    text = json.dumps(document_head(run, file), indent=2)
    handle.write(text[:-2] + ',\n  "claims": [')
    first = True
    for result in run.claim_results(file, with_segments=False):
        handle.write(("\n    " if first else ",\n    ") + json.dumps(claim_document(result, file)))
        first = False
    handle.write("\n  ]\n}\n")

