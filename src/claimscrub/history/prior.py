"""Lines billed on earlier nights as read-only "prior" entries of tonight's patient-days.

A prior line enters the patient-day of its patient, date and rendering provider beside the
run's own lines, so every patient-day and patient edit sees what the payer will see: last
night's 99214 and tonight's 62323 of the same date are one day. Prior entries come first in
their day (they were billed first), carry :class:`claimscrub.grouping.PriorClaim` and a
negative claim index, and a finding that lands on one is dropped by the engine: findings
attach only to the run's own claims (:func:`claimscrub.grouping.is_prior_finding`).
"""

from __future__ import annotations

from datetime import date
from typing import Iterable

from claimscrub.grouping import DayLine, PatientDay, PatientHistory, PriorClaim
from claimscrub.history.store import PriorLine
from claimscrub.model import BillingProvider, Claim, InterchangeInfo, Patient, Payer, ServiceLine, Subscriber

_EMPTY_INTERCHANGE = dict(
    sender_qualifier="", sender_id="", receiver_qualifier="", receiver_id="", control_number="",
    group_control_number="", group_sender="", group_receiver="", version="", transaction_control_number="",
    transaction_index=0, pos=0,
)


def prior_entries(lines: Iterable[PriorLine]) -> list[DayLine]:
    """One claim model per earlier claim (holding just what the history keeps), one entry
    per line."""
    claims: dict[int, Claim] = {}
    priors: dict[int, PriorClaim] = {}
    entries: list[DayLine] = []
    for row in lines:
        claim = claims.get(row.claim_pk)
        if claim is None:
            prior = PriorClaim(run_id=row.run_id, run_date=row.run_date, file_name=row.file_name)
            # built without validation: the values come from the history, which validated them
            claim = Claim.model_construct(
                file=prior.label,
                index=-row.claim_pk,
                claim_id=row.claim_id,
                pos=0,
                last_pos=0,
                frequency_code=row.frequency_code,
                place_of_service=row.place_of_service,
                billing_provider=BillingProvider.model_construct(hl_id="", npi=row.billing_npi, tax_id=row.billing_tax_id, pos=0),
                subscriber=Subscriber.model_construct(
                    hl_id="", claim_filing_indicator=row.filing_indicator, payer=Payer.model_construct(id=row.payer_id), pos=0
                ),
                patient=Patient.model_construct(hl_id="", is_subscriber=True, pos=0),
                interchange=InterchangeInfo.model_construct(**_EMPTY_INTERCHANGE),
                lines=[],
                diagnoses=[],
            )
            claims[row.claim_pk] = claim
            priors[row.claim_pk] = prior
        line = ServiceLine.model_construct(
            number=row.line_number, pos=0, procedure_qualifier="HC", procedure_code=row.code,
            modifiers=row.modifiers, charge=row.charge, units=row.units, date_from=row.service_date,
            rendering_npi=row.provider_npi, rendering_taxonomy=row.rendering_taxonomy, last_pos=0,
        )
        claim.lines.append(line)
        entries.append(DayLine(claim, line, prior=priors[row.claim_pk]))
    return entries


def with_prior(history: PatientHistory, entries: list[DayLine]) -> PatientHistory:
    """The patient's days with the prior entries merged in: into the day of the same date
    and rendering provider (before the run's lines), or as days of their own."""
    if not entries:
        return history
    days: dict[tuple[date, str], PatientDay] = {(d.service_date, d.provider_npi): d for d in history.days}
    prior_by_day: dict[tuple[date, str], list[DayLine]] = {}
    for entry in entries:
        key = (entry.line.service_date, entry.claim.line_provider_npi(entry.line))
        prior_by_day.setdefault(key, []).append(entry)
    merged: list[PatientDay] = []
    for key, prior in prior_by_day.items():
        day = days.pop(key, None)
        own = day.entries if day is not None else []
        merged.append(PatientDay(history.patient_key, key[0], key[1], prior + own))
    merged.extend(days.values())
    merged.sort(key=lambda d: (d.service_date, d.provider_npi))
    return PatientHistory(history.patient_key, merged)
