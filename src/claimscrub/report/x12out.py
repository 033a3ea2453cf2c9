"""What the outbound X12 acknowledgments (999, 277CA) share: their delimiters, the cleaning
of values copied from the input, the segment writer and the interchange envelope.

An acknowledgment answers one input file with one interchange: ISA (sender and receiver of
the input swapped, unless ``--ack-sender``/``--ack-receiver`` or the configuration's
``[ack]`` name them, :class:`Party`), one GS, the writer's transaction sets, GE and IEA. Its control number
(ISA13, GS06) comes from :class:`AckOptions` or the input's ISA13, its date and time (ISA09,
ISA10, GS04, GS05) from the options or the input's GS04/GS05, never from the clock, so the
output is deterministic.

Source: ASC X12 005010 control segments (ISA/IEA, GS/GE) as the 005010X231A1 (999) and
005010X214 (277CA) guides use them, and the 005010 basic and extended character sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Optional

from claimscrub.claims import parse_date
from claimscrub.scrub import FileResult
from claimscrub.x12.envelope import FunctionalGroup

ELEMENT, COMPONENT, REPETITION, TERMINATOR = "*", ":", "^", "~"
NEWLINE = "\n"
ISA_QUALIFIERS = frozenset({"01", "14", "20", "27", "28", "29", "30", "33", "ZZ"})
UNKNOWN = "UNKNOWN"

#: The X12 basic and extended character sets, less the acknowledgments' own delimiters
#: (``* : ^ ~``), as the body of a regular-expression character class.
X12_CHARACTERS = r"""A-Za-z0-9!"&'()+,\-./;?= %@\[\]_{}\\|<>`#$"""
_NOT_ALLOWED = re.compile(f"[^{X12_CHARACTERS}]")


@dataclass(frozen=True)
class Party:
    """An acknowledgment's sender or receiver: ISA05/ISA07 qualifier and the id written in
    ISA06/ISA08 (padded to 15) and GS02/GS03."""

    qualifier: str
    id: str

    def __str__(self) -> str:
        return f"{self.qualifier}:{self.id}"


#: GS02/GS03 (application sender's and receiver's codes) are AN 2/15; the same id fills
#: ISA06/ISA08 (AN 15/15, space-padded), so an id is 2 to 15 characters.
PARTY_ID_LENGTH = (2, 15)


def parse_party(text: "str | Party", where: str) -> Party:
    """``QUAL:ID`` (``ZZ:CLEARINGHOUSE``) as a :class:`Party`; a one-line
    :class:`~claimscrub.errors.ConfigError` naming ``where`` when the qualifier is not an
    ISA05 code of the 005010 guides or the id is not 2-15 X12 characters."""
    from claimscrub.errors import ConfigError
    from claimscrub.textsafe import shorten

    if isinstance(text, Party):
        text = str(text)
    qualifier, sep, ident = (text or "").partition(":")
    qualifier = qualifier.strip().upper()
    if not sep:
        raise ConfigError(f"{where}: '{shorten(text, 40)}' is not QUALIFIER:ID (for example ZZ:CLEARINGHOUSE)")
    if qualifier not in ISA_QUALIFIERS:
        raise ConfigError(f"{where}: qualifier '{shorten(qualifier, 10)}' is not an interchange id "
                          f"qualifier (ISA05/ISA07: {', '.join(sorted(ISA_QUALIFIERS))})")
    low, high = PARTY_ID_LENGTH
    if not low <= len(ident) <= high or ident != ident.strip():
        raise ConfigError(f"{where}: the id must be {low} to {high} characters with no leading or "
                          f"trailing space (ISA06/ISA08 are 15 characters padded, GS02/GS03 2-15); "
                          f"got {len(ident)}")
    if _NOT_ALLOWED.search(ident):
        raise ConfigError(f"{where}: the id holds a character X12 does not allow in an id "
                          "(letters, digits, spaces and X12 punctuation less * : ^ ~)")
    return Party(qualifier, ident)


@dataclass(frozen=True)
class AckOptions:
    """Envelope values of an acknowledgment; ``None`` means "from the input"."""

    #: ISA13 and GS06 (the input's ISA13 when it is a number, else the file's ordinal)
    control_number: Optional[int] = None
    #: CCYYMMDD of the acknowledgment (GS04, ISA09); the input's GS04
    date: Optional[str] = None
    #: HHMM (GS05, ISA10); the input's GS05
    time: Optional[str] = None
    #: acknowledgment usage ISA15, P or T; the input's
    usage: Optional[str] = None
    #: ISA05/ISA06 and GS02; the input's receiver (ISA07/ISA08, GS03)
    sender: Optional[Party] = None
    #: ISA07/ISA08 and GS03; the input's sender (ISA05/ISA06, GS02)
    receiver: Optional[Party] = None


def clean(value: str, max_len: int, min_len: int = 1, fallback: str = UNKNOWN) -> str:
    """``value`` reduced to the X12 character set (less * : ^ ~) and ``max_len``;
    ``fallback`` when fewer than ``min_len`` characters are left."""
    text = " ".join(_NOT_ALLOWED.sub(" ", value or "").split())[:max_len].strip()
    return text if len(text) >= min_len else fallback


def valid_date(raw: str) -> Optional[str]:
    """``raw`` when it is a real CCYYMMDD date, else ``None``."""
    return raw if parse_date(raw or "") is not None else None


class SegmentWriter:
    """Writes segments (trailing empty elements dropped) and counts them, for SE01."""

    def __init__(self, handle: IO[str]):
        self.handle = handle
        self.count = 0

    def seg(self, *elements: str) -> None:
        fields = list(elements)
        while len(fields) > 1 and fields[-1] == "":
            fields.pop()
        self.handle.write(ELEMENT.join(fields) + TERMINATOR + NEWLINE)
        self.count += 1


def control_number(file: FileResult, options: AckOptions) -> int:
    """ISA13/GS06: the options', else the input's ISA13 when a number, else the file's ordinal."""
    if options.control_number is not None:
        return options.control_number % 1_000_000_000
    raw = file.transactions[0].group.interchange.control_number if file.transactions else ""
    if raw.isdigit() and 0 < int(raw) < 1_000_000_000:
        return int(raw)
    return file.index + 1


def date_time(file: FileResult, options: AckOptions) -> tuple[str, str]:
    """CCYYMMDD and HHMM: the options', else the input's GS04 (or ISA09) and GS05."""
    group = file.transactions[0].group if file.transactions else None
    day = options.date or (group and valid_date(group.date)) or None
    if day is None and group is not None:
        isa_date = group.interchange.date
        day = valid_date("20" + isa_date) if len(isa_date) == 6 else None
    day = day or "19000101"
    time = options.time or (group.time if group is not None else "")
    if not (time.isdigit() and len(time) in (4, 6, 8)):
        time = "0000"
    return day, time[:4]


@dataclass(frozen=True)
class Envelope:
    """The interchange and functional group of one acknowledgment of an input file that
    holds at least one transaction set; ``group`` is the input's first functional group."""

    control: int
    day: str
    time: str
    usage: str
    group: FunctionalGroup
    sender: Optional[Party] = None
    receiver: Optional[Party] = None

    @classmethod
    def of(cls, file: FileResult, options: AckOptions) -> "Envelope":
        day, time = date_time(file, options)
        group = file.transactions[0].group
        usage = group.interchange.usage
        usage = options.usage or (usage if usage in ("P", "T") else "P")
        return cls(control_number(file, options), day, time, usage, group,
                   options.sender, options.receiver)

    def open_interchange(self, out: SegmentWriter) -> None:
        """ISA: from the input's receiver to its sender."""
        interchange = self.group.interchange

        def isa_id(qualifier: str, value: str) -> tuple[str, str]:
            qualifier = qualifier if qualifier in ISA_QUALIFIERS else "ZZ"
            return qualifier, f"{clean(value, 15, fallback='CLAIMSCRUB'):<15}"

        sender_q, sender = (isa_id(self.sender.qualifier, self.sender.id) if self.sender
                            else isa_id(interchange.receiver_qualifier, interchange.receiver_id))
        receiver_q, receiver = (isa_id(self.receiver.qualifier, self.receiver.id) if self.receiver
                                else isa_id(interchange.sender_qualifier, interchange.sender_id))
        out.seg("ISA", "00", " " * 10, "00", " " * 10, sender_q, sender, receiver_q, receiver,
                self.day[2:], self.time, REPETITION, "00501", f"{self.control:09d}", "0",
                self.usage, COMPONENT)

    def open_group(self, out: SegmentWriter, functional_id: str, version: str) -> None:
        """GS ``functional_id`` ... ``version``: from the input group's receiver to its sender."""
        group, interchange = self.group, self.group.interchange
        sender = self.sender.id if self.sender else group.receiver or interchange.receiver_id
        receiver = self.receiver.id if self.receiver else group.sender or interchange.sender_id
        out.seg("GS", functional_id, clean(sender, 15, 2, "CLAIMSCRUB"), clean(receiver, 15, 2, "SUBMITTER"),
                self.day, self.time, str(self.control), "X", version)

    def close(self, out: SegmentWriter, transaction_sets: int) -> None:
        """GE (``transaction_sets`` written) and IEA."""
        out.seg("GE", str(transaction_sets), str(self.control))
        out.seg("IEA", "1", f"{self.control:09d}")
