"""Patient-days: every service line of one patient on one date from one rendering provider.

Billing rules (NCCI pairs, MUE per date of service, E/M with modifier 25) are about a
patient-day, not one claim: a fluoroscopy code on a second claim, or in a second file of
the same run, is still part of the same session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Optional

from claimscrub.model import Claim, ServiceLine

KEY_SEPARATOR = "\x1f"


@dataclass
class DayLine:
    claim: Claim
    line: ServiceLine

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

    def claims(self) -> list[Claim]:
        """The claims that contribute lines to this day, first seen first."""
        seen: dict[tuple[str, int], Claim] = {}
        for entry in self.entries:
            seen.setdefault((entry.claim.file, entry.claim.index), entry.claim)
        return list(seen.values())


@dataclass
class PatientHistory:
    """All the days of one patient seen in this run, in date order."""

    patient_key: tuple[str, ...]
    days: list[PatientDay] = field(default_factory=list)

    @property
    def payer_id(self) -> str:
        return self.patient_key[0] if self.patient_key else ""


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
