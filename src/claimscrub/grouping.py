"""Patient-days: every service line of one patient on one date from one rendering provider.

Billing rules (NCCI pairs, MUE per date of service, E/M with modifier 25) are about a
patient-day, not one claim: a fluoroscopy code on a second claim, or in a second file of
the same run, is still part of the same session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Iterator, Optional

from pydantic import PrivateAttr

from claimscrub.findings import Finding, RelatedClaim
from claimscrub.model import Claim, ServiceLine

KEY_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class PriorClaim:
    """Where a line billed on an earlier night comes from (see :mod:`claimscrub.history`)."""

    run_id: int
    run_date: date
    file_name: str

    @property
    def label(self) -> str:
        """What a finding calls the claim's file: the file and the run that billed it."""
        return f"{self.file_name}, billed in the run of {self.run_date.isoformat()}"


@dataclass
class DayLine:
    claim: Claim
    line: ServiceLine
    #: set on a line already billed in an earlier run (read-only: no finding attaches to it)
    prior: Optional[PriorClaim] = None

    @property
    def code(self) -> str:
        return self.line.procedure_code

    @property
    def modifiers(self) -> list[str]:
        return self.line.modifiers


@dataclass
class PatientDay:
    patient_key: tuple[str, ...]
    service_date: date
    provider_npi: str
    entries: list[DayLine] = field(default_factory=list)

    @property
    def payer_id(self) -> str:
        return self.patient_key[0] if self.patient_key else ""

    @property
    def has_own_entries(self) -> bool:
        """Whether the day holds a line of this run (not only lines of earlier runs)."""
        return any(entry.prior is None for entry in self.entries)

    def claims(self) -> list[Claim]:
        """The claims that contribute lines to this day, first seen first."""
        seen: dict[tuple[int, int], Claim] = {}
        for entry in self.entries:
            seen.setdefault(_claim_key(entry), entry.claim)
        return list(seen.values())


@dataclass
class PatientHistory:
    """All the days of one patient seen in this run, in date order."""

    patient_key: tuple[str, ...]
    days: list[PatientDay] = field(default_factory=list)

    @property
    def payer_id(self) -> str:
        return self.patient_key[0] if self.patient_key else ""


def is_prior_finding(finding) -> bool:
    """A finding on a claim billed in an earlier run: prior claims have negative indexes,
    and the engine drops such findings (findings attach only to the run's own claims)."""
    return finding.claim_index is not None and finding.claim_index < 0


class _PairedFinding(Finding):
    """A finding a patient-day edit put on a line billed in an earlier run, with the run's
    own lines it pairs that line with (see :func:`paired`)."""

    _subject: Optional[DayLine] = PrivateAttr(default=None)
    _partners: tuple = PrivateAttr(default=())


def paired(finding: Finding, subject: DayLine, partners: Iterable[DayLine]) -> Finding:
    """``finding``, which an edit put on ``subject``, marked with the lines it pairs
    ``subject`` with, so that a finding on a line billed on an earlier night (which can no
    longer be changed) is moved onto tonight's lines of the pair (:func:`rehome_prior_findings`).
    A finding on the run's own line is returned as it is."""
    if subject.prior is None:
        return finding
    out = _PairedFinding.model_construct(_fields_set=finding.model_fields_set, **dict(finding))
    out._subject = subject
    out._partners = tuple(partners)
    return out


def rehome_prior_findings(findings: Iterable[Finding]) -> list[Finding]:
    """The findings of a patient-day or patient edit as the run reports them.

    Findings attach only to the run's own claims: a claim billed on an earlier night is
    context, and cannot be corrected by this run. A finding about a pair whose one side was
    billed on an earlier night (marked with :func:`paired`) goes on tonight's side instead:
    one finding per claim of the run on its first line of the pair, naming the earlier
    claim, its file and the run that billed it, with the fix saying to correct that claim
    first (CLM05-3 replacement or void). A finding on an earlier night's line with no line
    of this run in its pair is dropped.
    """
    out: list[Finding] = []
    for finding in findings:
        if not is_prior_finding(finding):
            out.append(finding)
            continue
        subject: Optional[DayLine] = getattr(finding, "_subject", None)
        if subject is None or subject.prior is None:
            continue
        seen: set[tuple[int, int]] = set()
        for partner in getattr(finding, "_partners", ()):
            if partner.prior is not None or _claim_key(partner) in seen:
                continue
            seen.add(_claim_key(partner))
            out.append(_rehomed(finding, subject, partner))
    return out


def _rehomed(finding: Finding, subject: DayLine, partner: DayLine) -> Finding:
    prior = subject.prior
    assert prior is not None
    earlier = (f"claim {subject.claim.claim_id} line {subject.line.number} (file {prior.file_name}, "
               f"billed in the run of {prior.run_date.isoformat()})")
    claim, line = partner.claim, partner.line
    return Finding(
        rule=finding.rule,
        category=finding.category,
        severity=finding.severity,
        message=(f"{subject.code} on {earlier} pairs with this {partner.code} on line {line.number}: "
                 f"{finding.message}"),
        fix=(f"Claim {subject.claim.claim_id} was already sent: correct it first, with a replacement claim "
             f"(CLM05-3 = 7 with REF*F8) or a void (CLM05-3 = 8), then send this claim. What to correct: "
             f"{finding.fix}" if finding.fix else
             f"Claim {subject.claim.claim_id} was already sent: correct it first, with a replacement claim "
             "(CLM05-3 = 7 with REF*F8) or a void (CLM05-3 = 8), then send this claim."),
        source=finding.source,
        file=claim.file,
        file_index=claim.file_index,
        claim_id=claim.claim_id,
        claim_index=claim.index,
        line=line.number,
        segment=line.sv1_pos or line.pos,
        status_code=finding.status_code,
        related=_related_after_move(finding, subject, partner),
    )


def _related_after_move(finding: Finding, subject: DayLine, partner: DayLine) -> tuple[RelatedClaim, ...]:
    """The claims a moved finding names: the earlier night's claim it was about first, then
    the others the edit named, less the claim it now sits on."""
    out = dict.fromkeys([related_claim(subject.claim, subject)])
    for other in finding.related:
        if (other.claim_id, other.file, other.billed_on) != (partner.claim.claim_id, partner.claim.file, None):
            out[other] = None
    return tuple(out)


def related_claim(claim: Claim, entry: Optional[DayLine] = None) -> RelatedClaim:
    """One related claim: ``claim``, at the line of ``entry`` when given."""
    prior = entry.prior if entry is not None else None
    return RelatedClaim(
        claim_id=claim.claim_id,
        file=prior.file_name if prior is not None else claim.file,
        line=entry.line.number if entry is not None else None,
        billed_on=prior.run_date if prior is not None else None,
    )


def line_group_key(claim: Claim, line: ServiceLine) -> Optional[tuple[tuple[str, ...], date, str]]:
    """(patient, date, provider) of a line, or ``None`` when the line has no valid date."""
    day = line.service_date
    if day is None:
        return None
    return claim.patient_key(), day, claim.line_provider_npi(line)


def encode_key(parts: Iterable[str]) -> str:
    return KEY_SEPARATOR.join(parts)


def decode_key(text: str) -> tuple[str, ...]:
    return tuple(text.split(KEY_SEPARATOR))


def practice_identities(entry: DayLine) -> set[tuple[str, str]]:
    """(billing provider, rendering taxonomy) of a line, when the claim gives both, and the
    rendering NPI: two lines sharing any of these count as one physician (see
    :func:`practice_days`)."""
    claim = entry.claim
    taxonomy = claim.line_provider_taxonomy(entry.line).strip().upper()
    billing = claim.billing_provider.npi or claim.billing_provider.tax_id
    identities = {("npi", claim.line_provider_npi(entry.line))}
    if taxonomy and billing:
        identities.add((billing, taxonomy))
    return identities


def practice_days(history: PatientHistory) -> list[PatientDay]:
    """The patient's days with rendering providers who count as one physician merged.

    For the global surgery rules, "physicians in the same group practice who are in the
    same specialty must bill and be paid as though they were a single physician"
    (Medicare Claims Processing Manual ch. 12 section 30.6.5). In an 837P that is the same
    billing provider (2010AA NPI, else tax id) and the same rendering taxonomy (PRV03 of
    2420A, else 2310B, else 2000A when the claim names no rendering provider). Days of one
    date whose lines share such an identity are merged into one day (``provider_npi`` is
    then the sorted rendering NPIs joined by ``+``); a provider whose taxonomy the claims do
    not give stays on its own. NCCI PTP and MUE stay keyed by the rendering provider: only
    the E/M rules read these days.
    """
    by_date: dict[date, list[PatientDay]] = {}
    for day in history.days:
        by_date.setdefault(day.service_date, []).append(day)
    out: list[PatientDay] = []
    for service_date, days in by_date.items():
        if len(days) == 1:
            out.extend(days)
            continue
        identities = [set().union(*(practice_identities(e) for e in d.entries)) for d in days]
        parent = list(range(len(days)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(len(days)):
            for j in range(i + 1, len(days)):
                if identities[i] & identities[j]:
                    parent[root(j)] = root(i)
        merged: dict[int, list[PatientDay]] = {}
        for i, day in enumerate(days):
            merged.setdefault(root(i), []).append(day)
        for group in merged.values():
            if len(group) == 1:
                out.append(group[0])
                continue
            joined = PatientDay(
                history.patient_key, service_date, "+".join(sorted(d.provider_npi for d in group))
            )
            for day in group:
                joined.entries.extend(day.entries)
            out.append(joined)
    return out


#: CLM05-3 frequency codes of a replacement (7) and a void (8): such a claim stands for an
#: earlier one, so its lines are never duplicates of it
REPLACEMENT_FREQUENCIES = frozenset({"7", "8"})


@dataclass
class Duplicate:
    """A line billed again on another claim: same patient, date of service, rendering
    provider (the patient-day), procedure code and modifiers."""

    entry: DayLine
    original: DayLine


def duplicate_key(entry: DayLine) -> tuple[str, tuple[str, ...]]:
    return entry.code, tuple(sorted(m.upper() for m in entry.modifiers))


def _claim_key(entry: DayLine) -> tuple[int, int]:
    """A claim of the run: its input's ordinal and its ordinal in that input (display
    names may repeat across folders; ordinals do not)."""
    return entry.claim.file_index, entry.claim.index


def find_duplicates(day: PatientDay) -> list[Duplicate]:
    """Every line of the day that repeats a line of an earlier claim of the run (in run
    order: file, then claim). Lines of one claim are never duplicates of each other (units
    and MUE edits judge those), and replacement or void claims never duplicate anything."""
    first: dict[tuple, DayLine] = {}
    out: list[Duplicate] = []
    for entry in day.entries:
        # a replacement billed on an earlier night is the claim in force: it counts as an original
        if not entry.code or (entry.prior is None and entry.claim.frequency_code in REPLACEMENT_FREQUENCIES):
            continue
        key = duplicate_key(entry)
        original = first.get(key)
        if original is None:
            first[key] = entry
        elif _claim_key(original) != _claim_key(entry):
            out.append(Duplicate(entry, original))
    return out


def duplicate_views(day: PatientDay, duplicates: list[Duplicate]) -> tuple[PatientDay, dict[tuple[int, int], PatientDay]]:
    """The day as the other patient-day edits see it when some lines are duplicates.

    The base view leaves the duplicates out, so a copy never makes its original look
    like two units or two codes. Each claim that holds duplicates gets a view of its
    own, with its lines in place of the originals they repeat, so the copy is judged on
    its own merits too: a claim rejected on its own is never forwarded because a copy
    of it exists elsewhere in the run. Only that claim's findings of its view count.
    """
    duplicated = {id(d.entry) for d in duplicates}
    base = PatientDay(day.patient_key, day.service_date, day.provider_npi,
                      [e for e in day.entries if id(e) not in duplicated])
    by_claim: dict[tuple[int, int], list[Duplicate]] = {}
    for duplicate in duplicates:
        by_claim.setdefault(_claim_key(duplicate.entry), []).append(duplicate)
    views: dict[tuple[int, int], PatientDay] = {}
    for claim_key, items in by_claim.items():
        replaced = {id(d.original): d.entry for d in items}
        # originals are first occurrences, so every one of them is in the base view
        entries = [replaced.get(id(e), e) for e in base.entries]
        views[claim_key] = PatientDay(day.patient_key, day.service_date, day.provider_npi, entries)
    return base, views


def patient_histories(rows: Iterable[tuple], claim_of) -> Iterator[PatientHistory]:
    """Every patient with their patient-days, from day rows ordered by patient, day,
    provider, file, claim and line: ``(encoded patient key, ISO day, provider, file index,
    claim index, line index)``; ``claim_of(file index, claim index)`` gives the claim. The
    run's store and the partitions of a partitioned run both build their histories here."""
    history: Optional[PatientHistory] = None
    current_patient = ""
    current_day: Optional[PatientDay] = None
    for patient, day, provider, file_idx, claim_idx, line_idx in rows:
        if history is None or patient != current_patient:
            if history is not None:
                yield history
            history = PatientHistory(decode_key(patient))
            current_patient = patient
            current_day = None
        if current_day is None or current_day.service_date.isoformat() != day or current_day.provider_npi != provider:
            current_day = PatientDay(history.patient_key, date.fromisoformat(day), provider)
            history.days.append(current_day)
        claim = claim_of(file_idx, claim_idx)
        current_day.entries.append(DayLine(claim, claim.lines[line_idx]))
    if history is not None:
        yield history
