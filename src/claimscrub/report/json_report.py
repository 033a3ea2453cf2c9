"""The JSON report: one document per input file, written atomically."""

from __future__ import annotations

import json
import os
from typing import IO

from claimscrub import __version__
from claimscrub.atomic import atomic_writer
from claimscrub.scrub import FileResult, RunResult


def summary(file: FileResult) -> dict:
    return {
        "claims": file.claim_count,
        "accepted": file.accepted,
        "rejected": file.rejected,
        "accepted_charge": str(file.accepted_charge),
        "rejected_charge": str(file.rejected_charge),
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
        "expected_allowed": str(file.expected_allowed),
        "amount_at_risk": str(file.amount_at_risk),
        "unpriced_lines": file.unpriced_lines,
        "unpriced_lines_at_risk": file.unpriced_lines_at_risk,
        "unpriced_charge_at_risk": str(file.unpriced_charge_at_risk),
    }


def _money(amount) -> object:
    return str(amount) if amount is not None else None


def write_json(run: RunResult, file: FileResult, out_dir: str) -> str:
    path = file.output_path(out_dir, ".json")
    with atomic_writer(path) as handle:
        _write(run, file, handle)
    return path


def _write(run: RunResult, file: FileResult, handle: IO[str]) -> None:
    # Claims are streamed one by one so a large batch never sits in memory as one object.
    head = {
        "input": file.name,
        "claimscrub_version": __version__,
        # the configuration file the run used (None: every edit at its default severity)
        "config": getattr(getattr(run.engine.ctx, "config", None), "path", None),
        # its absolute path (None: no configuration file)
        "config_file": getattr(getattr(run.engine.ctx, "config", None), "file", None),
        "tables": run.table_versions,
        "summary": summary(file),
    }
    text = json.dumps(head, indent=2)
    handle.write(text[:-2] + ',\n  "claims": [')
    first = True
    for result in run.claim_results(file):
        entry = claim_document(result)
        handle.write(("\n    " if first else ",\n    ") + json.dumps(entry))
        first = False
    handle.write("\n  ]\n}\n")


def claim_document(result) -> dict:
    """One claim as the report's ``claims`` list holds it (also a line of ``--format jsonl``)."""
    claim = result.claim
    unpriced_charge, unpriced_count = result.unpriced_at_risk
    return {
        "claim_id": claim.claim_id,
        "status": result.status,
        "charge": str(claim.charge) if claim.charge is not None else claim.charge_raw,
        "segment": claim.pos,
        "findings": [f.as_report() for f in result.findings],
        "expected_allowed": _money(result.expected_allowed),
        "amount_at_risk": str(result.amount_at_risk),
        "unpriced_lines_at_risk": unpriced_count,
        "unpriced_charge_at_risk": str(unpriced_charge),
        "lines": [
            {"line": line.number, "code": line.procedure_code,
             "expected_allowed": _money(result.line_allowed.get(line.number))}
            for line in claim.lines
        ],
    }
