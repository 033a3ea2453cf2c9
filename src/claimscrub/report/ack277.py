"""The 277CA claim acknowledgment (005010X214): one status per claim of an input file.

``DIR/NAME.277`` holds one interchange with one functional group (GS01 ``HN``) and one
``ST*277`` per input 837 transaction set that holds claims. Each transaction set is the
hierarchy::

    HL 20  information source   (the 837 receiver, NM1*AY; TRN*1; DTP*050 received, DTP*009 processed)
    HL 21  information receiver (the 837 submitter NM1*41; TRN*2 = the 837 BHT03; batch STC A1:19;
                                 QTY*90/AA and AMT*YU/YY totals of accepted and rejected claims)
    HL 19  billing provider     (one per billing-provider NPI; STC A1:19; QTY*QA/QC, AMT*YU/YY)
    HL PT  patient, one per claim: NM1*QC, TRN*2 = CLM01, STC, DTP*472 claim service period,
           and for each rejected line SVC / STC (action U) / REF*FJ / DTP*472

A claim with an error finding is rejected: its STC carries the category, status and entity
of its findings (the first in STC01, two more in STC10 and STC11, the rule ids in STC12);
otherwise it is accepted with ``A2:20`` and action ``WQ``. A finding's status comes from
its ``status_code`` (the rule's, e.g. ``A7:454``), or from the mapping of its category
(:data:`CATEGORY_STATUS`, domain rules section 10.2) when it has none.

The output is deterministic: control numbers come from :class:`Ack277Options` or the input
interchange control number, dates and times from the options or the input's GS04/GS05,
never from the clock. Values copied from the input are reduced to the X12 extended
character set and to the element's length; an empty required name or id is written as
``UNKNOWN`` so the acknowledgment stays valid.

Source: ASC X12 005010X214 Health Care Claim Acknowledgment (277CA); claim status category
codes (code source 507) and claim status codes (code source 508) as in pyx12's
``277.5010.X214`` map and code lists.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO, Iterable, Optional

from claimscrub.atomic import atomic_writer
from claimscrub.findings import Category, Finding, Severity
from claimscrub.model import BillingProvider, Claim, ServiceLine
from claimscrub.report.x12out import (COMPONENT, UNKNOWN, AckOptions, Envelope, SegmentWriter, clean,
                                      valid_date)
from claimscrub.scrub import FileResult, RunResult, TransactionInfo

#: 277CA status for a finding whose rule sets no ``status_code``, by finding category
#: (domain-rules.md section 10.2: syntax errors are unprocessable, invalid values A7 with
#: the specific code, relational errors between lines A8:448).
CATEGORY_STATUS: dict[Category, str] = {
    Category.SYNTAX: "A3:21",
    Category.BALANCING: "A7:400",
    Category.CODE_VALIDITY: "A7:454",
    Category.UNITS: "A7:476",
    Category.IMAGING: "A8:448",
    Category.PTP: "A8:448",
    Category.MODIFIER: "A7:453",
    Category.EM_25: "A7:453",
    Category.MEDICAL_NECESSITY: "A8:255",
    Category.FREQUENCY: "A8:448",
    Category.CLAIM_SPLIT: "A8:448",
    Category.PLACE_OF_SERVICE: "A8:454",
    Category.DUPLICATE: "A7:78",
}
GENERIC_STATUS = "A3:21"
REJECTED_CATEGORIES = ("A3", "A6", "A7", "A8")
ACCEPTED_STATUS = "A2:20"
RECEIPT_STATUS = "A1:19"
#: Status codes that name an entity ("Entity's NPI", "Entity's specialty/taxonomy code"):
#: the entity a status means when the rule gave none (the billing provider).
ENTITY_STATUSES = {"562": "85", "145": "85"}
#: STC01-3 values pyx12's X214 map allows at claim (2200D) and line (2220D) level.
CLAIM_ENTITIES = frozenset({"03", "1P", "1Z", "40", "41", "71", "72", "73", "77", "82", "85", "87"})
#: SVC01-1 qualifiers of the X214 map; lines coded otherwise are reported at claim level only.
SVC_QUALIFIERS = frozenset({"AD", "ER", "HC", "HP", "IV", "NU", "WK"})

_STATUS = re.compile(r"^(A[0-8]):([0-9]{1,5})(?::([0-9A-Z]{2,3}))?$")


class Ack277Options(AckOptions):
    """Envelope values of the 277CA (:class:`~claimscrub.report.x12out.AckOptions`); the
    date is also BHT04, STC02 and DTP*009, the time BHT05."""


@dataclass(frozen=True)
class Status:
    category: str
    code: str
    entity: str = ""

    def composite(self) -> str:
        return COMPONENT.join(p for p in (self.category, self.code, self.entity) if p)


def finding_status(finding: Finding) -> Status:
    """The 277CA status of an error finding: its own ``status_code``, else its category's."""
    for candidate in (finding.status_code, CATEGORY_STATUS.get(finding.category), GENERIC_STATUS):
        match = _STATUS.match((candidate or "").strip().upper())
        if match and match.group(1) in REJECTED_CATEGORIES:
            category, code, entity = match.group(1), match.group(2), match.group(3) or ""
            entity = entity or ENTITY_STATUSES.get(code, "")
            if entity not in CLAIM_ENTITIES:
                entity = ""
            return Status(category, code, entity)
    raise AssertionError("unreachable: GENERIC_STATUS is valid")  # pragma: no cover


def _distinct(statuses: Iterable[Status], limit: int = 3) -> list[Status]:
    out: list[Status] = []
    for status in statuses:
        if status not in out:
            out.append(status)
        if len(out) == limit:
            break
    return out


def money(amount: Optional[Decimal]) -> str:
    amount = amount if amount is not None else Decimal(0)
    text = format(amount, "f")
    return text.lstrip("-") if amount == 0 else text


def _d8_or_rd8(first: date, last: date) -> tuple[str, str]:
    if first == last:
        return "D8", first.strftime("%Y%m%d")
    return "RD8", f"{first.strftime('%Y%m%d')}-{last.strftime('%Y%m%d')}"


@dataclass
class _Provider:
    """A billing provider of one transaction set: its claims' patient loops (where they sit
    in the transaction's spool) and its totals."""

    provider: BillingProvider
    blocks: list[tuple[int, int, int]] = field(default_factory=list)  # offset, length, segments
    accepted: int = 0
    rejected: int = 0
    accepted_amount: Decimal = Decimal(0)
    rejected_amount: Decimal = Decimal(0)

    def count(self, charge: Optional[Decimal], rejected: bool) -> None:
        if rejected:
            self.rejected += 1
            self.rejected_amount += charge or Decimal(0)
        else:
            self.accepted += 1
            self.accepted_amount += charge or Decimal(0)


class _Batch:
    """The claims of one input transaction set, by billing provider, and their totals.

    Claims arrive in file order, but the 277CA lists them under their billing provider, so
    each claim's patient loop is written to a spool (memory, then disk past
    :data:`SPOOL_MEMORY` bytes) and copied out under its provider when the set is complete;
    every claim is read from the store once and the batch never sits in memory whole.
    """

    SPOOL_MEMORY = 16 << 20

    def __init__(self, ts_index: int, claim: Claim, day: str, received: str):
        self.ts_index = ts_index
        self.claim = claim  # the first claim, for the header values it carries
        self.day = day
        self.received = received
        self.providers: "OrderedDict[str, _Provider]" = OrderedDict()
        self.spool = tempfile.SpooledTemporaryFile(max_size=self.SPOOL_MEMORY, mode="w+b")

    def add(self, claim: Claim, findings: list[Finding]) -> None:
        key = _provider_key(claim)
        provider = self.providers.get(key)
        if provider is None:
            provider = self.providers[key] = _Provider(claim.billing_provider)
        provider.count(claim.charge, _rejected(findings))
        text = io.StringIO()
        out = SegmentWriter(text)
        _write_claim(out, claim, findings, self.day, self.received)
        data = text.getvalue().encode("utf-8")
        provider.blocks.append((self.spool.tell(), len(data), out.count))
        self.spool.write(data)

    def read(self, offset: int, length: int) -> str:
        self.spool.seek(offset)
        return self.spool.read(length).decode("utf-8")

    def totals(self) -> tuple[int, int, Decimal, Decimal]:
        ps = self.providers.values()
        return (
            sum(p.accepted for p in ps),
            sum(p.rejected for p in ps),
            sum((p.accepted_amount for p in ps), Decimal(0)),
            sum((p.rejected_amount for p in ps), Decimal(0)),
        )

    def close(self) -> None:
        self.spool.close()


def _provider_key(claim: Claim) -> str:
    npi = claim.billing_provider.npi.strip()
    return f"XX:{npi}" if npi else f"HL:{claim.billing_provider.hl_id}:{claim.billing_provider.pos}"


def _rejected(findings: list[Finding]) -> bool:
    return any(f.severity == Severity.ERROR for f in findings)


def write_277(
    run: RunResult, file: FileResult, out_dir: str, options: Optional[AckOptions] = None
) -> Optional[str]:
    """Write ``out_dir/NAME.277`` for one usable input file and return its path.

    A file without any claim gets no 277CA (an X214 transaction needs at least one patient
    level); ``None`` is returned then.
    """
    options = options or Ack277Options()
    if not file.usable or not any(info.claims for info in file.transactions):
        return None
    path = file.output_path(out_dir, ".277")
    with atomic_writer(path) as handle:
        _write(run, file, handle, options)
    return path


def _write(run: RunResult, file: FileResult, handle: IO[str], options: AckOptions) -> None:
    envelope = Envelope.of(file, options)
    control, day, time = envelope.control, envelope.day, envelope.time
    out = SegmentWriter(handle)
    envelope.open_interchange(out)
    envelope.open_group(out, "HN", "005010X214")
    number = 0
    batch: Optional[_Batch] = None
    try:
        for result in run.claim_results(file, with_segments=False):
            claim = result.claim
            ts_index = claim.interchange.transaction_index if claim.interchange else 0
            if batch is None or batch.ts_index != ts_index:
                if batch is not None:
                    number += 1
                    _write_transaction(file, batch, out, number, control, time)
                    batch.close()
                received = valid_date(file.transactions[ts_index].group.date) or day
                batch = _Batch(ts_index, claim, day, received)
            batch.add(claim, result.findings)
        if batch is not None:
            number += 1
            _write_transaction(file, batch, out, number, control, time)
    finally:
        if batch is not None:
            batch.close()
    envelope.close(out, number)


def _write_transaction(file: FileResult, batch: _Batch, out: SegmentWriter, number: int,
                       control: int, time: str) -> None:
    info: TransactionInfo = file.transactions[batch.ts_index]
    head = batch.claim.interchange
    day = batch.day
    start = out.count
    st = f"{number:04d}"
    reference = f"{control:09d}{st}"
    out.seg("ST", "277", st, "005010X214")
    out.seg("BHT", "0085", "08", reference, day, time, "TH")
    # 2000A information source: who answers the 837 (its receiver, 1000B).
    out.seg("HL", "1", "", "20", "1")
    source_name = head.receiver_name if head else ""
    source_id = (head.receiver_id_code if head else "") or info.group.interchange.receiver_id
    out.seg("NM1", "AY", "2", clean(source_name, 60, fallback="CLAIMSCRUB"), "", "", "", "",
            "46", clean(source_id, 80, 2, "CLAIMSCRUB"))
    out.seg("TRN", "1", reference)
    out.seg("DTP", "050", "D8", batch.received)
    out.seg("DTP", "009", "D8", day)
    # 2000B information receiver: the 837 submitter (1000A), with the batch totals.
    out.seg("HL", "2", "1", "21", "1")
    submitter_name = head.submitter_name if head else ""
    submitter_id = (head.submitter_id if head else "") or info.group.interchange.sender_id
    out.seg("NM1", "41", "2", clean(submitter_name, 60), "", "", "", "", "46",
            clean(submitter_id, 80, 2, UNKNOWN))
    batch_ref = (head.bht_reference if head else "") or info.control_number
    out.seg("TRN", "2", clean(batch_ref, 50, fallback="0"))
    accepted, rejected, accepted_amount, rejected_amount = batch.totals()
    _totals(out, RECEIPT_STATUS + ":AY", day, accepted, rejected, accepted_amount,
            rejected_amount, ("90", "AA"))
    hl = 2
    for provider in batch.providers.values():
        hl += 1
        provider_hl = hl
        bp = provider.provider
        out.seg("HL", str(provider_hl), "2", "19", "1")
        person = bp.entity_type == "1"
        if bp.npi.strip():
            id_qualifier, id_code = "XX", bp.npi
        elif bp.tax_id.strip():
            id_qualifier, id_code = "FI", bp.tax_id
        else:
            id_qualifier, id_code = "XX", UNKNOWN
        out.seg("NM1", "85", "1" if person else "2", clean(bp.name, 60),
                clean(bp.first_name, 35, fallback="") if person else "", "", "", "",
                id_qualifier, clean(id_code, 80, 2))
        out.seg("TRN", "1", "0")
        _totals(out, RECEIPT_STATUS + ":AY", "", provider.accepted, provider.rejected,
                provider.accepted_amount, provider.rejected_amount, ("QA", "QC"))
        for offset, length, count in provider.blocks:
            hl += 1
            out.seg("HL", str(hl), str(provider_hl), "PT")
            out.handle.write(batch.read(offset, length))
            out.count += count
    out.seg("SE", str(out.count - start + 1), st)


def _totals(out: SegmentWriter, status: str, day: str, accepted: int, rejected: int,
            accepted_amount: Decimal, rejected_amount: Decimal, qty: tuple[str, str]) -> None:
    out.seg("STC", status, day, "WQ", money(accepted_amount + rejected_amount))
    if accepted:
        out.seg("QTY", qty[0], str(accepted))
    if rejected:
        out.seg("QTY", qty[1], str(rejected))
    if accepted:
        out.seg("AMT", "YU", money(accepted_amount))
    if rejected:
        out.seg("AMT", "YY", money(rejected_amount))


def _lines_by_number(claim: Claim) -> dict[str, list[ServiceLine]]:
    """The claim's lines by LX01 (built once per claim: the lookup is linear in lines)."""
    index: dict[str, list[ServiceLine]] = {}
    for line in claim.lines:
        index.setdefault(line.number, []).append(line)
    return index


def _line_of(lines: dict[str, list[ServiceLine]], finding: Finding) -> Optional[ServiceLine]:
    if finding.line is None:
        return None
    candidates = lines.get(finding.line, [])
    if len(candidates) > 1 and finding.segment is not None:
        for line in candidates:
            if line.pos <= finding.segment <= line.last_pos:
                return line
    return candidates[0] if candidates else None


def _stc(status: list[Status], day: str, action: str, charge: str = "", text: str = "") -> list[str]:
    elements = ["STC", status[0].composite(), day, action, charge, "", "", "", "", ""]
    elements.append(status[1].composite() if len(status) > 1 else "")
    elements.append(status[2].composite() if len(status) > 2 else "")
    elements.append(text)
    return elements


def _write_claim(out: SegmentWriter, claim: Claim, findings: list[Finding], day: str,
                 fallback_date: str) -> None:
    patient = claim.patient
    member = claim.subscriber.member_id
    qualifier = "II" if claim.subscriber.member_id_qualifier == "II" else "MI"
    out.seg("NM1", "QC", "1", clean(patient.last_name, 60), clean(patient.first_name, 35, fallback=""),
            "", "", "", qualifier, clean(member, 80, 2))
    out.seg("TRN", "2", clean(claim.claim_id, 50, fallback="0"))
    errors = [f for f in findings if f.severity == Severity.ERROR]
    charge = money(claim.charge)
    if not errors:
        out.seg(*_stc([Status(*ACCEPTED_STATUS.split(":"))], day, "WQ", charge))
    else:
        statuses = _distinct(finding_status(f) for f in errors)
        rules = " ".join(dict.fromkeys(f.rule for f in errors))
        out.seg(*_stc(statuses, day, "U", charge, clean(rules, 264, fallback="")))
    dates = [(line.date_from, line.date_to or line.date_from) for line in claim.lines if line.date_from]
    if dates:
        qualifier_472, period = _d8_or_rd8(min(d[0] for d in dates), max(d[1] for d in dates))
    else:
        qualifier_472, period = "D8", valid_date(claim.interchange.bht_date if claim.interchange else "") or fallback_date
    out.seg("DTP", "472", qualifier_472, period)
    # 2220D: one loop per service line that has an error finding on it.
    by_line: "OrderedDict[int, tuple[ServiceLine, list[Finding]]]" = OrderedDict()
    lines = _lines_by_number(claim) if errors else {}
    for finding in errors:
        line = _line_of(lines, finding)
        if line is not None:
            by_line.setdefault(line.pos, (line, []))[1].append(finding)
    for line, line_findings in sorted(by_line.values(), key=lambda item: item[0].pos):
        if line.procedure_qualifier not in SVC_QUALIFIERS or not clean(line.procedure_code, 48, fallback=""):
            continue  # no procedure to name: the claim-level STC carries the status
        procedure = COMPONENT.join(
            [line.procedure_qualifier, clean(line.procedure_code, 48)]
            + [m for m in line.modifiers[:4] if re.fullmatch(r"[A-Za-z0-9]{2}", m)]
        )
        units = format(line.units, "f") if line.units is not None else ""
        out.seg("SVC", procedure, money(line.charge), "", "", "", "", units)
        out.seg(*_stc(_distinct(finding_status(f) for f in line_findings), day, "U"))
        if line.line_control_number.strip():
            out.seg("REF", "FJ", clean(line.line_control_number, 50))
        if line.date_from is not None:
            out.seg("DTP", "472", *_d8_or_rd8(line.date_from, line.date_to or line.date_from))
