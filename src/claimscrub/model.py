"""The claim model: what an 837P says, as pydantic models.

Every object keeps ``pos``, the 1-based ordinal of its segment in the input file, so a
finding can point at the segment it is about. Values that did not parse are kept as
``None`` with the raw text beside them, so edits can say what was wrong.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Optional

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InterchangeInfo(_Model):
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    control_number: str
    group_control_number: str
    group_sender: str
    group_receiver: str
    version: str
    transaction_control_number: str
    transaction_index: int
    bht_reference: str = ""
    bht_date: str = ""
    submitter_name: str = ""
    submitter_id: str = ""
    receiver_name: str = ""
    receiver_id_code: str = ""
    pos: int


class BillingProvider(_Model):
    hl_id: str
    entity_type: str = ""
    name: str = ""
    first_name: str = ""
    npi: str = ""
    tax_id: str = ""
    taxonomy: str = ""
    pos: int


class Payer(_Model):
    name: str = ""
    id_qualifier: str = ""
    id: str = ""
    pos: Optional[int] = None


class Subscriber(_Model):
    hl_id: str
    payer_responsibility: str = ""
    relationship: str = ""
    claim_filing_indicator: str = ""
    last_name: str = ""
    first_name: str = ""
    member_id_qualifier: str = ""
    member_id: str = ""
    birth_date: str = ""
    gender: str = ""
    payer: Payer = Payer()
    pos: int


class Patient(_Model):
    """The person the claim is for: the subscriber, or a dependent of loop 2000C."""

    hl_id: str
    is_subscriber: bool
    relationship: str = ""
    last_name: str = ""
    first_name: str = ""
    birth_date: str = ""
    gender: str = ""
    pos: int


class Diagnosis(_Model):
    """One HI composite: its position (1-12) on the claim, qualifier and code (no dot)."""

    position: int
    qualifier: str
    code: str
    pos: int

    @property
    def is_icd9(self) -> bool:
        return self.qualifier in ("BK", "BF")


class ProviderName(_Model):
    """One provider NM1 of a claim (2310A-F) or line (2420A-H): entity code (NM101), id
    qualifier (NM108, ``XX`` = NPI) and id (NM109), and its segment ordinal."""

    entity: str
    qualifier: str = ""
    id: str = ""
    pos: int

    @property
    def npi(self) -> str:
        return self.id if self.qualifier == "XX" else ""


class ServiceLine(_Model):
    number: str
    pos: int
    sv1_pos: Optional[int] = None
    procedure_qualifier: str = ""
    procedure_code: str = ""
    modifiers: list[str] = []
    extra_modifiers: list[str] = []
    charge: Optional[Decimal] = None
    charge_raw: str = ""
    unit_basis: str = ""
    units: Optional[Decimal] = None
    units_raw: str = ""
    place_of_service: str = ""
    line_place_of_service: str = ""
    diagnosis_pointers: list[int] = []
    diagnosis_pointers_raw: list[str] = []
    date_qualifier: str = ""
    date_raw: str = ""
    date_from: Optional[date] = None
    date_to: Optional[date] = None
    date_pos: Optional[int] = None
    rendering_npi: str = ""
    rendering_taxonomy: str = ""
    line_control_number: str = ""
    #: provider loops of the line (2420A-H NM1), in file order
    providers: list[ProviderName] = []
    last_pos: int

    @property
    def service_date(self) -> Optional[date]:
        """The date a patient-day is keyed on: the line's (first) date of service."""
        return self.date_from


class Claim(_Model):
    """One 2300 claim with its 2400 service lines and the loops above it."""

    file: str
    index: int
    claim_id: str
    pos: int
    last_pos: int
    charge: Optional[Decimal] = None
    charge_raw: str = ""
    place_of_service: str = ""
    facility_qualifier: str = ""
    frequency_code: str = ""
    diagnoses: list[Diagnosis] = []
    hi_pos: Optional[int] = None
    rendering_npi: str = ""
    rendering_taxonomy: str = ""
    rendering_pos: Optional[int] = None
    payer_claim_control_number: str = ""
    #: provider loops of the claim (2310A-F NM1), in file order
    providers: list[ProviderName] = []
    lines: list[ServiceLine] = []
    billing_provider: BillingProvider
    subscriber: Subscriber
    patient: Patient
    interchange: InterchangeInfo

    @property
    def payer(self) -> Payer:
        return self.subscriber.payer

    @property
    def is_medicare(self) -> bool:
        """Medicare Part B by the claim filing indicator (SBR09 = MB)."""
        return self.subscriber.claim_filing_indicator == "MB"

    def diagnosis(self, pointer: int) -> Optional[Diagnosis]:
        for dx in self.diagnoses:
            if dx.position == pointer:
                return dx
        return None

    def line_provider_npi(self, line: ServiceLine) -> str:
        """Rendering provider of a line: 2420A, else 2310B, else the billing provider."""
        return line.rendering_npi or self.rendering_npi or self.billing_provider.npi

    def line_provider_taxonomy(self, line: ServiceLine) -> str:
        """Taxonomy (PRV03) of the line's rendering provider, '' when the claim does not say.

        2420A's PRV when the line names its own rendering provider; else 2310B's; else, when
        the claim names no rendering provider, the billing provider's (2000A PRV*BI)."""
        if line.rendering_npi:
            return line.rendering_taxonomy
        if self.rendering_npi:
            return self.rendering_taxonomy
        return self.billing_provider.taxonomy

    def patient_key(self) -> tuple[str, ...]:
        """Payer + member id, plus name and birth date when the patient is a dependent."""
        key: tuple[str, ...] = (self.payer.id, self.subscriber.member_id)
        if not self.patient.is_subscriber:
            key += (
                self.patient.last_name.upper(),
                self.patient.first_name.upper(),
                self.patient.birth_date,
            )
        return key
