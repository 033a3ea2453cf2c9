"""Lines billed on earlier nights as read-only "prior" entries of tonight's patient-days.

A prior line enters the patient-day of its patient, date and rendering provider beside the
run's own lines, so every patient-day and patient edit sees what the payer will see: last
night's 99214 and tonight's 62323 of the same date are one day. Prior entries come first in
their day (they were billed first), carry :class:`claimscrub.grouping.PriorClaim` and a
negative claim index, and a finding that lands on one is dropped by the engine: findings
attach only to the run's own claims (:func:`claimscrub.grouping.is_prior_finding`).

Only the prior days that can matter to tonight's claims are kept: days of tonight's dates,
and other days from a year and a day before the patient's earliest date of service in the
run to a year and a day after the latest (the LCD frequency window either side: a session
billed out of order counts against the sessions billed after it; modifier 57 looks at the
next day).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Iterable

from claimscrub.grouping import DayLine, PatientDay, PatientHistory, PriorClaim
from claimscrub.history.store import PriorLine
from claimscrub.model import BillingProvider, Claim, InterchangeInfo, Patient, Payer, ServiceLine, Subscriber
from claimscrub.records import trusted_constructor

#: how far before the run's earliest date of service earlier days are kept (frequency window)
LOOK_BACK = timedelta(days=366)
#: how far after the run's latest date of service (frequency window of a session billed late)
LOOK_AHEAD = timedelta(days=366)


def window(first: date, last: date) -> tuple[date, date]:
    """The dates of earlier nights' lines that can matter to a patient whose lines in the
    run fall between ``first`` and ``last`` (see the module docstring)."""
    return first - LOOK_BACK, last + LOOK_AHEAD


# Claims and lines of the history, built from values it already validated, without
# pydantic validating them again (model_construct is several times slower on the
# benchmark's 100,000s of lines)
_CLAIM, _LINE = trusted_constructor(Claim), trusted_constructor(ServiceLine)
_PATIENT = Patient.model_construct(hl_id="", is_subscriber=True, pos=0)
_INTERCHANGE = InterchangeInfo.model_construct(
    sender_qualifier="", sender_id="", receiver_qualifier="", receiver_id="", control_number="",
    group_control_number="", group_sender="", group_receiver="", version="", transaction_control_number="",
    transaction_index=0, pos=0,
)


#: billing providers and subscribers of prior claims, shared (read-only) across claims and
#: patients: a history has few billing providers and payers
_PROVIDERS: dict[tuple[str, str], BillingProvider] = {}
_SUBSCRIBERS: dict[tuple[str, str], Subscriber] = {}


def prior_entries(lines: Iterable[PriorLine]) -> list[DayLine]:
    """One claim model per earlier claim (holding just what the history keeps), one entry
    per line."""
    claims: dict[int, Claim] = {}
    priors: dict[int, PriorClaim] = {}
    providers, subscribers = _PROVIDERS, _SUBSCRIBERS
    entries: list[DayLine] = []
    for row in lines:
        claim = claims.get(row.claim_pk)
        if claim is None:
            prior = PriorClaim(run_id=row.run_id, run_date=row.run_date, file_name=row.file_name)
            provider = providers.get((row.billing_npi, row.billing_tax_id))
            if provider is None:
                provider = BillingProvider.model_construct(hl_id="", npi=row.billing_npi,
                                                           tax_id=row.billing_tax_id, pos=0)
                providers[(row.billing_npi, row.billing_tax_id)] = provider
            subscriber = subscribers.get((row.filing_indicator, row.payer_id))
            if subscriber is None:
                subscriber = Subscriber.model_construct(hl_id="", claim_filing_indicator=row.filing_indicator,
                                                        payer=Payer.model_construct(id=row.payer_id), pos=0)
                subscribers[(row.filing_indicator, row.payer_id)] = subscriber
            claim = _CLAIM(dict(
                file=prior.label, index=-row.claim_pk, claim_id=row.claim_id, pos=0, last_pos=0,
                frequency_code=row.frequency_code, place_of_service=row.place_of_service,
                billing_provider=provider, subscriber=subscriber, patient=_PATIENT, interchange=_INTERCHANGE,
            ))
            claims[row.claim_pk] = claim
            priors[row.claim_pk] = prior
        line = _LINE(dict(
            number=row.line_number, pos=0, procedure_qualifier="HC", procedure_code=row.code,
            modifiers=row.modifiers, charge=row.charge, units=row.units, date_from=row.service_date,
            rendering_npi=row.provider_npi, rendering_taxonomy=row.rendering_taxonomy, last_pos=0,
        ))
        claim.lines.append(line)
        entries.append(DayLine(claim, line, prior=priors[row.claim_pk]))
    return entries


def with_prior(history: PatientHistory, entries: list[DayLine]) -> PatientHistory:
    """The patient's days with the prior entries merged in: into the day of the same date
    and rendering provider (before the run's lines), or as days of their own within the
    window that can matter (see the module docstring)."""
    if not entries or not history.days:
        return history
    first, last = window(min(d.service_date for d in history.days), max(d.service_date for d in history.days))
    days: dict[tuple[date, str], PatientDay] = {(d.service_date, d.provider_npi): d for d in history.days}
    prior_by_day: dict[tuple[date, str], list[DayLine]] = {}
    for entry in entries:
        key = (entry.line.service_date, entry.claim.line_provider_npi(entry.line))
        if key in days or first <= key[0] <= last:
            prior_by_day.setdefault(key, []).append(entry)
    merged: list[PatientDay] = []
    for key, prior in prior_by_day.items():
        day = days.pop(key, None)
        own = day.entries if day is not None else []
        merged.append(PatientDay(history.patient_key, key[0], key[1], prior + own))
    merged.extend(days.values())
    merged.sort(key=lambda d: (d.service_date, d.provider_npi))
    return PatientHistory(history.patient_key, merged)
