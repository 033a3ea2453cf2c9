"""Envelopes: split a segment stream into transaction sets and check the control structure.

A file may hold several interchanges (ISA/IEA), each several functional groups (GS/GE),
each several transaction sets (ST/SE). Only one transaction set is held in memory at a
time. Control-number and count mismatches are recorded as :class:`EnvelopeIssue` on the
transaction set, group or interchange they belong to; anything that makes the file
unreadable as 837P raises :class:`~claimscrub.errors.InputError`.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Iterator, Optional

from claimscrub.errors import InputError
from claimscrub.textsafe import shorten
from claimscrub.x12.reader import WHAT_WE_READ, Segment, X12Reader

SUPPORTED_VERSIONS = ("005010X222A1", "005010X222A2")

_KNOWN_GROUPS = {
    "HP": "an 835 remittance advice",
    "HN": "a 277 claim status / acknowledgment",
    "FA": "a 999/997 acknowledgment",
    "BE": "an 834 enrollment",
    "HS": "a 270 eligibility inquiry",
    "HB": "a 271 eligibility response",
    "HR": "a 276 claim status request",
    "RA": "an 820 payment order",
}


@dataclass
class EnvelopeIssue:
    """A control-structure error.

    ``level`` is ``interchange``, ``group`` or ``transaction``; ``code`` is the X12 code
    for the acknowledgment (TA1 note code, AK905 or IK502 code).
    """

    level: str
    code: str
    message: str
    segment: int


@dataclass
class Interchange:
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str
    time: str
    control_number: str
    version: str
    ack_requested: str
    usage: str
    segment: int
    issues: list[EnvelopeIssue] = field(default_factory=list)


@dataclass
class FunctionalGroup:
    functional_id: str
    sender: str
    receiver: str
    date: str
    time: str
    control_number: str
    version: str
    segment: int
    interchange: Interchange
    transaction_count: int = 0
    issues: list[EnvelopeIssue] = field(default_factory=list)


@dataclass
class TransactionSet:
    """One ST..SE transaction set with its segments (ST and SE included)."""

    control_number: str
    version: str
    segments: list[Segment]
    group: FunctionalGroup
    index: int
    issues: list[EnvelopeIssue] = field(default_factory=list)

    @property
    def interchange(self) -> Interchange:
        return self.group.interchange

    @property
    def st_pos(self) -> int:
        return self.segments[0].pos


class TransactionStream:
    """One ST..SE transaction set read as a stream: :meth:`segments` yields its segments
    (ST and SE included) once, straight from the reader, so a set of any size is never held
    in memory. ``segment_count``, ``se_pos`` and the trailer's ``issues`` are known once
    the stream has reached SE."""

    def __init__(self, st: Segment, group: FunctionalGroup, index: int, source: Iterator[Segment],
                 name: str, on_end):
        self.control_number = st.get(2)
        self.version = st.get(3) or group.version
        self.group = group
        self.index = index
        self.issues: list[EnvelopeIssue] = []
        self.st = st
        self.st_pos = st.pos
        self.se_pos = 0
        self.segment_count = 0
        self.done = False
        self._source = source
        self._name = name
        self._on_end = on_end
        self._reading: Optional[Iterator[Segment]] = None

    @property
    def interchange(self) -> Interchange:
        return self.group.interchange

    def segments(self) -> Iterator[Segment]:
        """The set's segments, ST to SE; read once."""
        if self._reading is not None:
            raise RuntimeError("a transaction set stream is read once")
        self._reading = self._read()
        return self._reading

    def _read(self) -> Iterator[Segment]:
        count = 1
        yield self.st
        for segment in self._source:
            count += 1
            seg_id = segment.id
            if seg_id == "SE":
                self.segment_count = count
                self.se_pos = segment.pos
                self.done = True
                _check_trailer_count(self, segment, count)
                self._on_end(self, segment)
                yield segment
                return
            if seg_id in ("ST", "GS", "ISA", "GE", "IEA"):
                raise InputError(
                    self._name,
                    f"{seg_id} found inside transaction set {_v(self.control_number)} "
                    f"before its SE trailer; the file is truncated or malformed",
                    segment.pos,
                )
            yield segment
        raise InputError(
            self._name,
            f"the file ends inside transaction set {_v(self.control_number)} "
            f"(no SE trailer); the file is truncated",
            _LastPos.of(self._source),
        )

    def drain(self) -> None:
        """Read what is left of the set (a consumer that stopped early)."""
        if not self.done:
            for _ in self._reading if self._reading is not None else self.segments():
                pass


class _LastPos:
    """The ordinal of the last segment a reader yielded (for the truncation message)."""

    @staticmethod
    def of(source) -> int:
        return getattr(source, "last_pos", 0)


class _Counting:
    """An iterator over the reader's segments that remembers the last ordinal yielded."""

    def __init__(self, reader: Iterator[Segment]):
        self._it = iter(reader)
        self.last_pos = 0

    def __iter__(self) -> "_Counting":
        return self

    def __next__(self) -> Segment:
        segment = next(self._it)
        self.last_pos = segment.pos
        return segment


def _v(value: str, limit: int = 15) -> str:
    """An envelope value (control number, count, code) as an error line may show it: no
    control characters, at most ``limit`` characters."""
    return shorten(value or "", limit)


_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")


def _segment_label(seg_id: str) -> str:
    """``segment 'NM1'``; anything that is not a segment identifier (a segment whose
    element separator is wrong reads as one long id) is described, never quoted."""
    if _SEGMENT_ID.fullmatch(seg_id):
        return f"segment {seg_id!r}"
    return f"a segment with no valid identifier ({len(seg_id):,} characters)"


def _unusable_group(name: str, gs: Segment) -> str:
    functional_id = gs.get(1)
    version = _v(gs.get(8), 20)
    if functional_id == "HC" and version.startswith("005010X223"):
        what = f"an 837I institutional claim ({version})"
    elif functional_id == "HC" and version.startswith("004010"):
        what = f"a 4010 837 ({version})"
    elif functional_id == "HC":
        what = f"an 837 of version {version or '(none)'}"
    else:
        what = _KNOWN_GROUPS.get(functional_id, f"functional group {_v(functional_id) or '(none)'}")
        if version:
            what += f" ({version})"
    return f"{what}, not an 837P; {WHAT_WE_READ}"


def iter_transaction_sets(reader: X12Reader) -> Iterator[TransactionSet]:
    """Yield each transaction set of the file with all its segments in a list (see
    :func:`stream_transaction_sets` for the same walk one segment at a time)."""
    for stream in stream_transaction_sets(reader):
        segments = list(stream.segments())
        ts = TransactionSet(
            control_number=stream.control_number,
            version=stream.version,
            segments=segments,
            group=stream.group,
            index=stream.index,
            issues=stream.issues,
        )
        yield ts


def stream_transaction_sets(reader: X12Reader) -> Iterator[TransactionStream]:
    """Yield each transaction set of the file as a :class:`TransactionStream`, which the
    caller reads (``stream.segments()``) before asking for the next; group and interchange
    issues are appended to the shared :class:`FunctionalGroup` / :class:`Interchange`
    objects as their trailers are read, so they are complete once the iteration ends."""
    name = reader.name
    interchange: Optional[Interchange] = None
    group: Optional[FunctionalGroup] = None
    group_count = 0
    st_controls: set[str] = set()
    isa_controls: set[str] = set()
    group_controls: set[str] = set()
    index = 0
    source = _Counting(reader)

    def on_end(ts: TransactionStream, se: Segment) -> None:
        if ts.control_number in st_controls:
            ts.issues.append(
                EnvelopeIssue(
                    "transaction",
                    "23",
                    f"transaction set control number {_v(ts.control_number)} is not unique in its group",
                    ts.st_pos,
                )
            )
        st_controls.add(ts.control_number)

    for segment in source:
        seg_id = segment.id
        if seg_id == "ISA":
            if interchange is not None:
                raise InputError(
                    name, "ISA found before the previous interchange's IEA trailer", segment.pos
                )
            version = segment.get(12).strip()
            if version != "00501":
                raise InputError(
                    name,
                    f"X12 interchange version {_v(version, 10) or '(none)'} "
                    f"({'4010' if version == '00401' else 'unsupported'}); {WHAT_WE_READ}",
                    segment.pos,
                )
            interchange = Interchange(
                sender_qualifier=segment.get(5).strip(),
                sender_id=segment.get(6).strip(),
                receiver_qualifier=segment.get(7).strip(),
                receiver_id=segment.get(8).strip(),
                date=segment.get(9),
                time=segment.get(10),
                control_number=segment.get(13).strip(),
                version=version,
                ack_requested=segment.get(14).strip(),
                usage=segment.get(15).strip(),
                segment=segment.pos,
            )
            if interchange.control_number in isa_controls:
                interchange.issues.append(
                    EnvelopeIssue(
                        "interchange",
                        "025",
                        f"duplicate interchange control number {_v(interchange.control_number)}",
                        segment.pos,
                    )
                )
            isa_controls.add(interchange.control_number)
            group_count = 0
            group_controls = set()
        elif seg_id == "GS":
            if interchange is None:
                raise InputError(name, "GS found outside an interchange (no ISA before it)", segment.pos)
            if group is not None:
                raise InputError(name, "GS found before the previous group's GE trailer", segment.pos)
            if segment.get(1) != "HC" or segment.get(8) not in SUPPORTED_VERSIONS:
                raise InputError(name, _unusable_group(name, segment), segment.pos)
            group = FunctionalGroup(
                functional_id=segment.get(1),
                sender=segment.get(2),
                receiver=segment.get(3),
                date=segment.get(4),
                time=segment.get(5),
                control_number=segment.get(6),
                version=segment.get(8),
                segment=segment.pos,
                interchange=interchange,
            )
            if group.control_number in group_controls:
                group.issues.append(
                    EnvelopeIssue(
                        "group",
                        "19",
                        f"functional group control number {_v(group.control_number)} is not unique in its interchange",
                        segment.pos,
                    )
                )
            group_controls.add(group.control_number)
            group_count += 1
            st_controls = set()
        elif seg_id == "ST":
            if group is None:
                raise InputError(name, "ST found outside a functional group (no GS before it)", segment.pos)
            if segment.get(1) != "837":
                raise InputError(
                    name,
                    f"transaction set {_v(segment.get(1)) or '(none)'} inside an 837 group, not an 837P; {WHAT_WE_READ}",
                    segment.pos,
                )
            st_version = segment.get(3)
            if st_version and st_version not in SUPPORTED_VERSIONS:
                raise InputError(
                    name,
                    f"transaction set version {_v(st_version, 35)}, not an 837P; {WHAT_WE_READ}",
                    segment.pos,
                )
            group.transaction_count += 1
            stream = TransactionStream(segment, group, index, source, name, on_end)
            index += 1
            yield stream
            stream.drain()
        elif seg_id == "GE":
            if group is None:
                raise InputError(name, "GE found with no open functional group", segment.pos)
            if segment.get(1) != str(group.transaction_count):
                group.issues.append(
                    EnvelopeIssue(
                        "group",
                        "5",
                        f"GE01 says {_v(segment.get(1)) or '(empty)'} transaction sets, the group has {group.transaction_count}",
                        segment.pos,
                    )
                )
            if segment.get(2) != group.control_number:
                group.issues.append(
                    EnvelopeIssue(
                        "group",
                        "4",
                        f"GE02 {_v(segment.get(2)) or '(empty)'} does not match GS06 {_v(group.control_number)}",
                        segment.pos,
                    )
                )
            group = None
        elif seg_id == "IEA":
            if interchange is None:
                raise InputError(name, "IEA found with no open interchange", segment.pos)
            if group is not None:
                raise InputError(
                    name, "IEA found before the open functional group's GE trailer", segment.pos
                )
            if segment.get(1) != str(group_count):
                interchange.issues.append(
                    EnvelopeIssue(
                        "interchange",
                        "021",
                        f"IEA01 says {_v(segment.get(1)) or '(empty)'} functional groups, the interchange has {group_count}",
                        segment.pos,
                    )
                )
            if segment.get(2).strip() != interchange.control_number:
                interchange.issues.append(
                    EnvelopeIssue(
                        "interchange",
                        "001",
                        f"IEA02 {_v(segment.get(2)) or '(empty)'} does not match ISA13 {_v(interchange.control_number)}",
                        segment.pos,
                    )
                )
            interchange = None
        elif seg_id == "TA1":
            continue
        else:
            where = "between transaction sets" if group is not None else "outside any transaction set"
            raise InputError(name, f"{_segment_label(seg_id)} {where}; the envelope is malformed", segment.pos)

    last_pos = source.last_pos
    if group is not None:
        raise InputError(name, "the file ends before the GE trailer; the file is truncated", last_pos)
    if interchange is not None:
        raise InputError(name, "the file ends before the IEA trailer; the file is truncated", last_pos)
    if last_pos == 0:
        raise InputError(name, f"no segments found; {WHAT_WE_READ}")


def _check_trailer_count(ts: TransactionStream, se: Segment, count: int) -> None:
    if se.get(1) != str(count):
        ts.issues.append(
            EnvelopeIssue(
                "transaction",
                "4",
                f"SE01 says {_v(se.get(1)) or '(empty)'} segments, the transaction set has {count}",
                se.pos,
            )
        )
    if se.get(2) != ts.control_number:
        ts.issues.append(
            EnvelopeIssue(
                "transaction",
                "3",
                f"SE02 {_v(se.get(2)) or '(empty)'} does not match ST02 {_v(ts.control_number)}",
                se.pos,
            )
        )
