"""The JSON report as a contract: pydantic models of the document and its JSON Schema.

Each input file gets one JSON document, ``NAME.json`` (:mod:`claimscrub.report.json_report`
writes it claim by claim, as plain data, without building these models: they describe the
document, and the test suite checks every document it writes against
:func:`json_schema`). ``claimscrub schema`` prints that schema.

Versioning (``schema_version``, semantic versioning):

* a new optional field, or a new value of an open set (a rule id, a category), is an
  additive change: the minor version goes up (1.0.0 -> 1.1.0), and a consumer written
  for 1.0 keeps working;
* a field removed or renamed, a type or a meaning changed: the major version goes up;
* a correction of the schema text alone (a description): the patch version goes up.

Conventions: money is a string with exactly two decimals (``"125.00"``, ``"-3.50"``), the
same for every amount of the document; dates are ISO 8601 (``"2026-03-03"``); ``segment``
is the 1-based ordinal of a segment in its input file (ISA = 1); ``line`` is a service
line's LX01. A value the input does not give is ``null``, never an empty string.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from claimscrub.findings import Category, Severity

#: The version of the document's shape (see the module documentation for the policy).
SCHEMA_VERSION = "1.0.0"

#: JSON Schema dialect of :func:`json_schema` (what pydantic generates).
DIALECT = "https://json-schema.org/draft/2020-12/schema"

MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"
_CENT = Decimal("0.01")

Money = Annotated[
    str,
    Field(pattern=MONEY_PATTERN, description="An amount in dollars, two decimals, no sign unless negative.",
          examples=["125.00"]),
]


def money(amount: Any) -> Optional[str]:
    """``amount`` as the document writes money: a string with two decimals, rounded half
    up (``Decimal("125.5")`` -> ``"125.50"``); ``None`` for no amount or one that is not a
    finite number."""
    if amount is None:
        return None
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
        if not value.is_finite():
            return None
        text = format(value.quantize(_CENT, rounding=ROUND_HALF_UP), "f")
    except (InvalidOperation, ValueError):
        return None
    return "0.00" if text == "-0.00" else text


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ack277Status(_Doc):
    """The claim status the 277CA gives for an error finding (STC01 of the claim, or of the
    line's SVC loop): category code (code source 507), status code (code source 508) and,
    when the status names one, the entity (an entity identifier code such as 85,
    billing provider)."""

    category: str = Field(description="Claim status category code, e.g. A7 (rejected for invalid information).")
    status_code: str = Field(description="Claim status code, e.g. 454 (procedure code for services rendered).")
    entity: Optional[str] = Field(description="Entity identifier code the status is about, or null.")


class RelatedClaimDoc(_Doc):
    """Another claim the finding names."""

    claim_id: str = Field(description="CLM01 of the other claim.")
    file: str = Field(description="The input file holding it (or the file of an earlier run).")
    line: Optional[str] = Field(description="LX01 of the line the finding names on that claim, or null.")
    billed_on: Optional[date] = Field(
        description="The date of the earlier run that billed it, when the claim history supplied it; "
        "null for a claim of this run.")


class FindingDoc(_Doc):
    rule: str = Field(description="Rule id, e.g. EPI-BAL-001 (`claimscrub explain RULE` documents it).")
    category: Category
    severity: Severity = Field(description="error rejects the claim; warning and info do not.")
    line: Optional[str] = Field(description="LX01 of the service line the finding is about, or null.")
    segment: Optional[int] = Field(description="Ordinal of the segment the finding points at, or null.")
    message: str
    fix: str
    source: str = Field(description="The primary source the rule rests on.")
    amount_at_risk: Optional[Money] = Field(
        description="National MPFS expected allowed amount the finding puts at risk, or null when not priced.")
    related: list[RelatedClaimDoc] = Field(description="Other claims the finding names (empty when none).")
    ack277: Optional[Ack277Status] = Field(
        description="The status the 277CA reports for this finding; null for a warning or info "
        "finding, which the 277CA does not report (the claim is not rejected by it).")


class TransactionSetRef(_Doc):
    control_number: str = Field(description="ST02 of the transaction set holding the claim.")
    index: int = Field(description="0-based ordinal of the transaction set in the file.")
    segment: Optional[int] = Field(description="Ordinal of its ST segment.")


class PayerDoc(_Doc):
    id: Optional[str] = Field(description="Payer identifier (2010BB NM109).")
    id_qualifier: Optional[str] = Field(description="NM108 of the payer, e.g. PI.")
    name: Optional[str] = Field(description="Payer name (2010BB NM103).")


class PatientDayDoc(_Doc):
    """The keys of a patient-day other than the patient: the date of service and the
    rendering provider. Every patient-day edit (duplicates, units per day, NCCI pairs)
    joins lines on these and the patient."""

    date_of_service: date
    rendering_npi: Optional[str] = Field(description="The line's rendering NPI (2420A, else 2310B, else billing).")


class LineDoc(_Doc):
    line: str = Field(description="LX01.")
    segment: int = Field(description="Ordinal of the line's LX segment.")
    code: Optional[str] = Field(description="Procedure code (SV101-2).")
    modifiers: list[str]
    charge: Optional[Money] = Field(description="SV102, or null when it does not parse.")
    units: Optional[str] = Field(description="SV104 as a decimal string, or null when it does not parse.")
    date_of_service: Optional[date] = Field(description="DTP*472 (first date of a range), or null when invalid.")
    date_of_service_end: Optional[date] = Field(description="Last date of a DTP*472 range (the same date for one day).")
    rendering_npi: Optional[str] = Field(
        description="Rendering provider NPI of the line: 2420A, else the claim's 2310B, else the billing provider.")
    expected_allowed: Optional[Money] = Field(description="National MPFS expected allowed amount, or null.")


class ClaimDoc(_Doc):
    claim_id: str = Field(description="CLM01, the patient control number.")
    status: Literal["accepted", "rejected"]
    segment: int = Field(description="Ordinal of the CLM segment.")
    charge: Optional[Money] = Field(description="CLM02, or null when it does not parse (see charge_raw).")
    charge_raw: Optional[str] = Field(description="CLM02 as written, when it does not parse; else null.")
    transaction_set: TransactionSetRef
    payer: PayerDoc
    billing_npi: Optional[str] = Field(description="Billing provider NPI (2010AA NM109).")
    rendering_npi: Optional[str] = Field(description="Claim-level rendering provider NPI (2310B), or null.")
    service_date_from: Optional[date] = Field(description="Earliest valid date of service of the lines.")
    service_date_to: Optional[date] = Field(description="Latest valid date of service of the lines.")
    patient_days: list[PatientDayDoc] = Field(
        description="The claim's distinct (date of service, rendering NPI) keys, in line order.")
    findings: list[FindingDoc]
    expected_allowed: Optional[Money]
    amount_at_risk: Money
    unpriced_lines_at_risk: int
    unpriced_charge_at_risk: Money
    lines: list[LineDoc]


class EmptyTransactionSet(_Doc):
    segment: int
    control_number: str


class SummaryDoc(_Doc):
    claims: int
    accepted: int
    rejected: int
    accepted_charge: Money
    rejected_charge: Money
    transaction_sets: int
    transaction_sets_without_claims: list[EmptyTransactionSet] = Field(
        description="Transaction sets holding no readable claim: rejected, with no claim to carry it.")
    findings_by_category: dict[str, int]
    findings_by_rule: dict[str, int]
    expected_allowed: Money = Field(description="National MPFS expected allowed amount over the priced lines.")
    amount_at_risk: Money = Field(description="What the error findings put at risk, each line counted once.")
    unpriced_lines: int
    unpriced_lines_at_risk: int
    unpriced_charge_at_risk: Money = Field(
        description="Billed charges of the unpriced lines the error findings put at risk.")


class ReportDoc(_Doc):
    """One input file's scrub: its summary and every claim with its findings."""

    model_config = ConfigDict(extra="forbid", title="claimscrub report")

    schema_version: str = Field(
        pattern=r"^1\.[0-9]+\.[0-9]+$",
        description="Version of this document's shape (semantic versioning: additive changes bump the minor).",
        examples=[SCHEMA_VERSION],
    )
    claimscrub_version: str
    input: str = Field(description="The input file's name as given on the command line.")
    as_of: Optional[date] = Field(description="The day the run judged the claims on (--as-of).")
    config_file: Optional[str] = Field(
        description="The configuration file the run used, or null when none (every edit at its default).")
    tables: list[dict[str, Any]] = Field(description="The rule tables used, with their source and release.")
    summary: SummaryDoc
    claims: list[ClaimDoc]


class ClaimLineDoc(ClaimDoc):
    """One line of ``--format jsonl``: a claim of the report, with its document's version and
    the input it comes from."""

    model_config = ConfigDict(extra="forbid", title="claimscrub report line (jsonl)")

    schema_version: str = Field(pattern=r"^1\.[0-9]+\.[0-9]+$", examples=[SCHEMA_VERSION],
                                description="Version of the document's shape, as in the JSON report.")
    input: str = Field(description="The input file's name as the JSON report's input gives it.")


#: What ``claimscrub schema --for KIND`` describes.
SCHEMAS = {"json": ReportDoc, "jsonl": ClaimLineDoc}


def json_schema(kind: str = "json") -> dict:
    """The JSON Schema (2020-12) of the JSON report, or of one line of ``--format jsonl``."""
    model = SCHEMAS[kind]
    name = "report" if kind == "json" else "report-line"
    return {"$schema": DIALECT, "$id": f"urn:claimscrub:{name}:{SCHEMA_VERSION}", **model.model_json_schema()}
