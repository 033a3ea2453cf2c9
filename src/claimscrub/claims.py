"""Build the claim model from one transaction set.

The HL hierarchy gives the billing provider (2000A, HL03=20), the subscriber (2000B,
HL03=22) and, when the patient is not the subscriber, the patient (2000C, HL03=23). A claim
(2300 CLM) belongs to the HL it follows: a subscriber's HL when the subscriber is the
patient, a dependent's otherwise. Both branches are walked the same way, so claims under
dependents are never missed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterator, NamedTuple, Optional, Union

from claimscrub.model import (
    BillingProvider,
    Claim,
    Diagnosis,
    InterchangeInfo,
    Patient,
    Payer,
    ProviderName,
    ServiceLine,
    Subscriber,
)
from claimscrub.records import trusted_constructor
from claimscrub.x12.envelope import TransactionSet
from claimscrub.x12.reader import Delimiters, Segment

# The models are built from values the builder has already parsed to their types, so
# pydantic's validation of each value is skipped (claimscrub.records.trusted_constructor).
_BILLING, _SUBSCRIBER, _PAYER, _PATIENT, _INTERCHANGE = (
    trusted_constructor(cls) for cls in (BillingProvider, Subscriber, Payer, Patient, InterchangeInfo))
_CLAIM, _LINE, _DIAGNOSIS, _PROVIDER = (
    trusted_constructor(cls) for cls in (Claim, ServiceLine, Diagnosis, ProviderName))

DIAGNOSIS_QUALIFIERS = {"ABK", "ABF", "BK", "BF"}
PRINCIPAL_QUALIFIERS = {"ABK", "BK"}


#: An X12 decimal number (data type R): optional minus sign, digits, at most one decimal
#: point, no exponent; at most 18 digits (the longest R element of the 837P is 18).
_X12_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
MAX_DIGITS = 18


def parse_decimal(raw: str) -> Optional[Decimal]:
    """The value of an X12 decimal (R) element; ``None`` when it is empty or not one, such
    as ``1E+999999999`` (an exponent, which X12 does not allow and which would overflow
    any sum it entered)."""
    raw = raw.strip()
    if not raw or _X12_DECIMAL.fullmatch(raw) is None:
        return None
    if sum(c.isdigit() for c in raw) > MAX_DIGITS:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return None


def parse_date(raw: str) -> Optional[date]:
    raw = raw.strip()
    if len(raw) != 8 or not raw.isdigit():
        return None
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        return None


def parse_service_date(qualifier: str, raw: str) -> tuple[Optional[date], Optional[date]]:
    """D8 ``CCYYMMDD`` or RD8 ``CCYYMMDD-CCYYMMDD``; ``(None, None)`` when not valid."""
    if qualifier == "D8":
        day = parse_date(raw)
        return day, day
    if qualifier == "RD8":
        start, sep, end = raw.partition("-")
        first, last = parse_date(start), parse_date(end)
        if sep and first and last and first <= last:
            return first, last
    return None, None


class _ClaimBuilder:
    """Holds the claim being read; turns it into a :class:`Claim` when it ends."""

    def __init__(self, file: str, index: int, segment: Segment, delimiters: Delimiters,
                 context: dict):
        comp = delimiters.component
        clm05 = segment.get(5).split(comp)
        self.delimiters = delimiters
        self.fields: dict = dict(
            file=file,
            index=index,
            claim_id=segment.get(1),
            pos=segment.pos,
            last_pos=segment.pos,
            charge=parse_decimal(segment.get(2)),
            charge_raw=segment.get(2),
            place_of_service=clm05[0] if clm05 else "",
            facility_qualifier=clm05[1] if len(clm05) > 1 else "",
            frequency_code=clm05[2] if len(clm05) > 2 else "",
            **context,
        )
        self.diagnoses: list[Diagnosis] = []
        self.providers: list[ProviderName] = []
        self.lines: list[dict] = []
        self.in_other_subscriber = False

    @property
    def line(self) -> Optional[dict]:
        return self.lines[-1] if self.lines else None

    def add(self, segment: Segment) -> None:
        seg_id = segment.id
        self.fields["last_pos"] = segment.pos
        line = self.line
        if line is not None:
            line["last_pos"] = segment.pos
        if seg_id == "LX":
            self.in_other_subscriber = False
            self.lines.append(dict(number=segment.get(1), pos=segment.pos, last_pos=segment.pos))
        elif line is not None:
            self._add_to_line(line, segment)
        elif seg_id == "SBR":
            self.in_other_subscriber = True  # loop 2320: other subscriber information
        elif self.in_other_subscriber:
            return
        elif seg_id == "HI":
            self._add_diagnoses(segment)
        elif seg_id == "NM1":
            self.providers.append(_provider_name(segment))
            if segment.get(1) == "82":
                self.fields["rendering_npi"] = segment.get(9) if segment.get(8) == "XX" else ""
                self.fields["rendering_pos"] = segment.pos
        elif seg_id == "PRV" and segment.get(1) == "PE":
            self.fields["rendering_taxonomy"] = segment.get(3)  # 2310B: only its PRV is claim-level
        elif seg_id == "REF" and segment.get(1) == "F8":
            self.fields["payer_claim_control_number"] = segment.get(2)

    def _add_diagnoses(self, segment: Segment) -> None:
        comp = self.delimiters.component
        composites = segment.elements[1:]
        first = composites[0].split(comp)[0] if composites else ""
        if first not in DIAGNOSIS_QUALIFIERS:
            return  # HI for anesthesia, condition or other information codes
        if not self.diagnoses:
            self.fields["hi_pos"] = segment.pos
        for composite in composites:
            parts = composite.split(comp)
            qualifier = parts[0]
            code = parts[1] if len(parts) > 1 else ""
            if not qualifier and not code:
                continue
            self.diagnoses.append(_DIAGNOSIS({
                "position": len(self.diagnoses) + 1,
                "qualifier": qualifier,
                "code": code.replace(".", "").strip().upper(),
                "pos": segment.pos,
            }))

    def _add_to_line(self, line: dict, segment: Segment) -> None:
        seg_id = segment.id
        comp = self.delimiters.component
        if seg_id == "SV1":
            sv101 = segment.get(1).split(comp)
            line["sv1_pos"] = segment.pos
            line["procedure_qualifier"] = sv101[0]
            line["procedure_code"] = sv101[1].strip().upper() if len(sv101) > 1 else ""
            line["modifiers"] = [m.strip().upper() for m in sv101[2:6] if m.strip()]
            extra = sv101[6:]
            # Component 7 is a description; anything shaped like a modifier there or
            # after it is a modifier the 837P has no room for.
            line["extra_modifiers"] = [
                m.strip().upper() for m in extra if len(m.strip()) == 2 and m.strip().isalnum()
            ]
            line["charge_raw"] = segment.get(2)
            line["charge"] = parse_decimal(segment.get(2))
            line["unit_basis"] = segment.get(3)
            line["units_raw"] = segment.get(4)
            line["units"] = parse_decimal(segment.get(4))
            line["line_place_of_service"] = segment.get(5)
            raw_pointers = [p for p in segment.get(7).split(comp) if p != ""]
            line["diagnosis_pointers_raw"] = raw_pointers
            line["diagnosis_pointers"] = [int(p) for p in raw_pointers if p.isdigit()]
        elif seg_id == "DTP" and segment.get(1) == "472":
            line["date_qualifier"] = segment.get(2)
            line["date_raw"] = segment.get(3)
            line["date_pos"] = segment.pos
            line["date_from"], line["date_to"] = parse_service_date(segment.get(2), segment.get(3))
        elif seg_id == "NM1":
            line.setdefault("providers", []).append(_provider_name(segment))
            if segment.get(1) == "82":
                line["rendering_npi"] = segment.get(9) if segment.get(8) == "XX" else ""
        elif seg_id == "PRV" and segment.get(1) == "PE":
            line["rendering_taxonomy"] = segment.get(3)  # 2420A
        elif seg_id == "REF" and segment.get(1) == "6R":
            line["line_control_number"] = segment.get(2)

    def build(self) -> Claim:
        claim_pos = self.fields["place_of_service"]
        lines = []
        for line in self.lines:
            line.setdefault("line_place_of_service", "")
            line["place_of_service"] = line["line_place_of_service"] or claim_pos
            lines.append(_LINE(line))
        fields = self.fields
        fields["diagnoses"], fields["providers"], fields["lines"] = self.diagnoses, self.providers, lines
        return _CLAIM(fields)


def _provider_name(segment: Segment) -> ProviderName:
    """A 2310/2420 provider NM1: entity code, id qualifier and id."""
    return _PROVIDER({"entity": segment.get(1), "qualifier": segment.get(8), "id": segment.get(9).strip(),
                      "pos": segment.pos})


class _Recent(OrderedDict):
    """A dict of the ``LIMIT`` most recently added keys. A claim reaches its patient,
    subscriber and billing provider through the HLs just above it; an HL02 naming an HL
    more than ``LIMIT`` HLs back is treated as naming an unknown HL (the claim then gets
    an empty subscriber or billing provider, as for any HL02 that names no HL)."""

    LIMIT = 4096

    def __setitem__(self, key, value) -> None:
        if key in self:
            self.move_to_end(key)  # set again: counts as recent
        elif len(self) >= self.LIMIT:
            self.popitem(last=False)
        super().__setitem__(key, value)


class ClaimSpan(NamedTuple):
    """Where a claim that was not built lies: its index in the file and its first (CLM)
    and last segment ordinals."""

    index: int
    pos: int
    last_pos: int


class _Skipped:
    """A claim passed over (:func:`build_claims` with ``wanted``): only its span is kept."""

    def __init__(self, index: int, pos: int):
        self.index, self.pos, self.last_pos = index, pos, pos

    def add(self, segment: Segment) -> None:
        self.last_pos = segment.pos

    def build(self) -> ClaimSpan:
        return ClaimSpan(self.index, self.pos, self.last_pos)


def build_claims(ts: TransactionSet, delimiters: Delimiters, file: str,
                 first_index: int = 0, file_index: int = -1,
                 wanted: Optional[Callable[[int], bool]] = None) -> Iterator[Union[Claim, ClaimSpan]]:
    """Yield the claims of one transaction set in file order.

    ``first_index`` numbers the claims within the file (0-based), so that each claim has
    a unique ``(file, index)`` even when CLM01 repeats. With ``wanted``, a claim whose
    index it refuses is not built: a :class:`ClaimSpan` stands in its place (a read unit
    of a partitioned run builds its share of a file's claims).
    """
    comp = delimiters.component
    group = ts.group
    interchange = group.interchange
    header: dict = dict(
        sender_qualifier=interchange.sender_qualifier,
        sender_id=interchange.sender_id,
        receiver_qualifier=interchange.receiver_qualifier,
        receiver_id=interchange.receiver_id,
        control_number=interchange.control_number,
        group_control_number=group.control_number,
        group_sender=group.sender,
        group_receiver=group.receiver,
        version=ts.version,
        transaction_control_number=ts.control_number,
        transaction_index=ts.index,
        pos=ts.st_pos,
    )
    info: Optional[InterchangeInfo] = None
    file_fields = {"file_index": file_index}
    # the HLs read so far, by HL01; the most recent ones only (_Recent), so a set of any
    # number of subscribers is read in bounded memory
    billing: dict[str, BillingProvider] = _Recent()
    subscribers: dict[str, Subscriber] = _Recent()
    patients: dict[str, Patient] = _Recent()
    hl_parent: dict[str, str] = _Recent()
    hl_level = ""
    hl_id = ""
    entity: dict = {}
    claim: Optional[_ClaimBuilder] = None
    index = first_index

    def close_entity() -> None:
        nonlocal entity
        if not entity:
            return
        kind = entity.pop("_kind")
        if kind == "20":
            billing[entity["hl_id"]] = _BILLING(entity)
        elif kind == "22":
            payer = entity.pop("_payer", None)
            entity["payer"] = _PAYER(payer) if payer else _PAYER({})
            subscriber = _SUBSCRIBER(entity)
            subscribers[entity["hl_id"]] = subscriber
        elif kind == "23":
            entity["is_subscriber"] = False
            patients[entity["hl_id"]] = _PATIENT(entity)
        entity = {}

    def claim_context() -> dict:
        # Walk up from the HL the claim sits under to its subscriber and billing provider.
        current = hl_id
        patient = patients.get(current)
        subscriber_id = hl_parent.get(current, "") if patient else current
        subscriber = subscribers.get(subscriber_id)
        if subscriber is None:
            subscriber = _SUBSCRIBER({"hl_id": subscriber_id or current, "pos": header["pos"]})
        if patient is None:
            patient = _PATIENT({
                "hl_id": subscriber.hl_id,
                "is_subscriber": True,
                "relationship": "18",
                "last_name": subscriber.last_name,
                "first_name": subscriber.first_name,
                "birth_date": subscriber.birth_date,
                "gender": subscriber.gender,
                "pos": subscriber.pos,
            })
        provider = billing.get(hl_parent.get(subscriber.hl_id, ""))
        if provider is None:
            provider = _BILLING({"hl_id": hl_parent.get(subscriber.hl_id, ""), "pos": header["pos"]})
        return dict(
            billing_provider=provider, subscriber=subscriber, patient=patient, interchange=info
        )

    for segment in ts.segments:
        seg_id = segment.id
        if seg_id in ("HL", "SE"):
            if claim is not None:
                yield claim.build()
                claim = None
            close_entity()
            if seg_id == "SE":
                break
            hl_id = segment.get(1)
            hl_parent[hl_id] = segment.get(2)
            hl_level = segment.get(3)
            if hl_level in ("20", "22", "23"):
                entity = {"_kind": hl_level, "hl_id": hl_id, "pos": segment.pos}
            continue
        if seg_id == "CLM":
            if claim is not None:
                yield claim.build()
            close_entity()
            if info is None:
                info = _INTERCHANGE(header)
            if wanted is not None and not wanted(index):
                claim = _Skipped(index, segment.pos)
            else:
                claim = _ClaimBuilder(file, index, segment, delimiters, {**claim_context(), **file_fields})
            index += 1
            continue
        if claim is not None:
            claim.add(segment)
            continue
        # Header and HL-level loops.
        if seg_id == "BHT":
            header["bht_reference"] = segment.get(3)
            header["bht_date"] = segment.get(4)
        elif seg_id == "NM1" and not hl_level:
            if segment.get(1) == "41":
                header["submitter_name"] = segment.get(3)
                header["submitter_id"] = segment.get(9)
            elif segment.get(1) == "40":
                header["receiver_name"] = segment.get(3)
                header["receiver_id_code"] = segment.get(9)
        elif entity:
            _add_to_entity(entity, segment, comp)


def _add_to_entity(entity: dict, segment: Segment, comp: str) -> None:
    kind = entity["_kind"]
    seg_id = segment.id
    qualifier = segment.get(1)
    if kind == "20":
        if seg_id == "NM1" and qualifier == "85":
            entity.update(
                entity_type=segment.get(2),
                name=segment.get(3),
                first_name=segment.get(4),
                npi=segment.get(9) if segment.get(8) == "XX" else "",
                pos=segment.pos,
            )
        elif seg_id == "REF" and qualifier in ("EI", "SY") and "tax_id" not in entity:
            entity["tax_id"] = segment.get(2)
        elif seg_id == "PRV" and qualifier == "BI":
            entity["taxonomy"] = segment.get(3)
    elif kind == "22":
        if seg_id == "SBR":
            entity.update(
                payer_responsibility=qualifier,
                relationship=segment.get(2),
                claim_filing_indicator=segment.get(9),
                pos=segment.pos,
            )
        elif seg_id == "NM1" and qualifier == "IL":
            entity.update(
                last_name=segment.get(3),
                first_name=segment.get(4),
                member_id_qualifier=segment.get(8),
                member_id=segment.get(9),
            )
        elif seg_id == "DMG" and "_payer" not in entity:
            entity.update(birth_date=segment.get(2), gender=segment.get(3))
        elif seg_id == "NM1" and qualifier == "PR":
            entity["_payer"] = dict(
                name=segment.get(3), id_qualifier=segment.get(8), id=segment.get(9), pos=segment.pos
            )
    elif kind == "23":
        if seg_id == "PAT":
            entity["relationship"] = qualifier
        elif seg_id == "NM1" and qualifier == "QC":
            entity.update(last_name=segment.get(3), first_name=segment.get(4))
        elif seg_id == "DMG":
            entity.update(birth_date=segment.get(2), gender=segment.get(3))
