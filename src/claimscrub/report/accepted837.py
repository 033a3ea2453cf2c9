"""The accepted-claims 837P: the input file again, holding only the claims to forward.

For each usable input, ``DIR2/NAME`` (the input's own file name) gets every accepted claim
with its original segments, re-read from the input with :class:`X12Reader` and the
envelope iteration, in the input's delimiters and line-break style. What changes:

* rejected claims (any error finding, :func:`claimscrub.scrub.disposition`) are left out,
  with every segment from their CLM to the end of their last service line;
* subscriber (22) and patient (23) HLs with no accepted claim below them, and billing
  provider (20) HLs with none, are left out; the HLs that stay are numbered 1..n again in
  each transaction set, HL02 points at the renumbered parent (an unknown HL02 falls back to
  the last HL of the level above) and HL04 says whether a child HL follows;
* SE01, GE01 and IEA01 are counted afresh; transaction sets with no accepted claim are
  left out, and so are groups and interchanges left empty. Control numbers (ISA13, GS06,
  ST02) stay the input's, so the forwarded file traces back to the submission;
* TA1 segments of the input are not copied.

When no claim of an input is accepted, no file is written (and a file of that name left in
DIR2 by an earlier run is removed), so a pipeline that forwards everything in DIR2 never
forwards a stale or empty interchange.

Source: ASC X12 005010X222A1 (837P) hierarchical structure (HL01-HL04) and control
segments (ST/SE, GS/GE, ISA/IEA).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import IO, Iterator, Optional

from claimscrub.atomic import atomic_writer
from claimscrub.errors import ClaimscrubError, InputError
from claimscrub.scrub import ACCEPTED, FileResult, RunResult, TransactionInfo, disposition
from claimscrub.x12.envelope import TransactionSet, iter_transaction_sets
from claimscrub.x12.reader import Delimiters, Segment, X12Reader

#: HL03 level code -> the level its parent has (837P 2000A / 2000B / 2000C)
PARENT_LEVEL = {"22": "20", "23": "22"}


class _EnvelopeTee:
    """An X12Reader that also queues the envelope segments (ISA/GS/GE/IEA) it yields, so
    the writer sees them in file order between the transaction sets."""

    ENVELOPE = frozenset({"ISA", "GS", "GE", "IEA"})

    def __init__(self, reader: X12Reader):
        self.reader = reader
        self.name = reader.name
        self.queue: list[Segment] = []

    @property
    def delimiters(self) -> Optional[Delimiters]:
        return self.reader.delimiters

    def __iter__(self) -> Iterator[Segment]:
        inside = False
        for segment in self.reader:
            seg_id = segment.id
            if seg_id == "ST":
                inside = True
            elif seg_id == "SE":
                inside = False
            elif not inside and seg_id in self.ENVELOPE:
                self.queue.append(segment)
            yield segment


def _line_break(path: str) -> str:
    """What follows each segment terminator in the input: CRLF, LF or nothing."""
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if len(head) < 107 or not head.startswith(b"ISA"):
        return ""
    element = head[3:4]
    index = 0
    for _ in range(16):
        index = head.find(element, index + 1)
        if index < 0:
            return ""
    after = head[index + 3 : index + 5]
    if after.startswith(b"\r\n"):
        return "\r\n"
    if after[:1] in (b"\n", b"\r"):
        return after[:1].decode()
    return ""


@dataclass
class _Node:
    """One HL of a transaction set with the segments that belong to it."""

    hl: Segment
    level: str
    segments: list[Segment] = field(default_factory=list)
    parent: Optional["_Node"] = None
    children: list["_Node"] = field(default_factory=list)
    accepted_claims: int = 0
    keep: bool = False
    new_id: int = 0


def accepted_segments(ts: TransactionSet, info: TransactionInfo, accepted: set[int]) -> Optional[list[Segment]]:
    """The transaction set's segments with only the accepted claims, HLs renumbered and SE01
    counted afresh; ``None`` when none of its claims is accepted."""
    spans = [(ref.pos, ref.last_pos, ref.index in accepted) for ref in info.claims]
    if not any(keep for _, _, keep in spans):
        return None
    dropped: set[int] = set()
    for first, last, keep in spans:
        if not keep:
            dropped.update(range(first, last + 1))
    claim_starts = {first: keep for first, _, keep in spans}

    header: list[Segment] = []
    nodes: list[_Node] = []
    last_by_id: dict[str, _Node] = {}
    last_by_level: dict[str, _Node] = {}
    current: Optional[_Node] = None
    trailer: Optional[Segment] = None
    for segment in ts.segments:
        seg_id = segment.id
        if seg_id == "SE":
            trailer = segment
            break
        if seg_id == "HL":
            level = segment.get(3)
            node = _Node(hl=segment, level=level)
            parent = last_by_id.get(segment.get(2)) if segment.get(2) else None
            wanted = PARENT_LEVEL.get(level)
            if wanted is not None and (parent is None or parent.level != wanted):
                parent = last_by_level.get(wanted, parent)
            node.parent = parent
            if parent is not None:
                parent.children.append(node)
            nodes.append(node)
            last_by_id[segment.get(1)] = node
            last_by_level[level] = node
            current = node
            continue
        if current is None:
            header.append(segment)
            continue
        if claim_starts.get(segment.pos):
            current.accepted_claims += 1
        if segment.pos not in dropped:
            current.segments.append(segment)

    for node in reversed(nodes):
        if node.accepted_claims or any(child.keep for child in node.children):
            node.keep = True
    kept = [node for node in nodes if node.keep]
    for number, node in enumerate(kept, start=1):
        node.new_id = number
    out = list(header)
    for node in kept:
        elements = list(node.hl.elements)
        while len(elements) < 5:
            elements.append("")
        elements[1] = str(node.new_id)
        parent = node.parent
        while parent is not None and not parent.keep:  # pragma: no cover - a kept node's parent is kept
            parent = parent.parent
        elements[2] = str(parent.new_id) if parent is not None else ""
        elements[4] = "1" if any(child.keep for child in node.children) else "0"
        out.append(Segment(node.hl.pos, elements))
        out.extend(node.segments)
    assert trailer is not None
    se = list(trailer.elements)
    while len(se) < 3:
        se.append("")
    se[1] = str(len(out) + 1)
    out.append(Segment(trailer.pos, se))
    return out


def write_accepted_837(run: RunResult, file: FileResult, out_dir: str) -> Optional[str]:
    """Write ``out_dir/NAME`` holding the accepted claims of one usable input; return its
    path, or ``None`` when no claim was accepted (no file is left at that path then)."""
    path = file.output_path(out_dir)
    if not file.usable:
        return None
    accepted = {
        ref.index
        for info in file.transactions
        for ref in info.claims
        if disposition(run.findings.get((file.index, ref.index), [])) == ACCEPTED
    }
    if not accepted:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return None
    if os.path.realpath(path) == os.path.realpath(file.path):
        raise InputChanged(f"{file.name}: --accepted-out would overwrite the input file")
    _check_unchanged(file)
    newline = _line_break(file.path)
    with atomic_writer(path) as handle:
        try:
            reader = _write(file, accepted, handle, newline)
        except (InputError, IndexError, AssertionError):
            raise InputChanged(_changed(file)) from None
        if reader.fingerprint != file.fingerprint:
            raise InputChanged(_changed(file))
    return path


class InputChanged(ClaimscrubError):
    """The input is not the file that was scrubbed: its accepted claims are not forwarded."""


def _changed(file: FileResult) -> str:
    return (f"{file.name}: the input changed after it was scrubbed; its accepted-claims 837 "
            f"was not written (scrub it again)")


def _check_unchanged(file: FileResult) -> None:
    """Refuse early when the input's size or modification time moved; the SHA-256 of the
    bytes read again is compared before the accepted-claims file is put in place."""
    try:
        info = os.stat(file.path)
    except OSError:
        raise InputChanged(_changed(file)) from None
    if file.fingerprint is None or (info.st_size, info.st_mtime_ns) != tuple(file.fingerprint[:2]):
        raise InputChanged(_changed(file))


def _write(file: FileResult, accepted: set[int], handle: IO[str], newline: str) -> X12Reader:
    reader = X12Reader(file.path, file.name)
    tee = _EnvelopeTee(reader)
    delimiters: Optional[Delimiters] = None
    # Envelope state: the pending ISA/GS are written only once a transaction set of theirs
    # holds an accepted claim.
    isa: Optional[Segment] = None
    gs: Optional[Segment] = None
    isa_written = gs_written = False
    groups_written = 0
    sets_written = 0

    def put(segment: Segment) -> None:
        handle.write(segment.text(delimiters) + delimiters.segment + newline)

    def drain() -> None:
        nonlocal isa, gs, isa_written, gs_written, groups_written, sets_written
        for segment in tee.queue:
            seg_id = segment.id
            if seg_id == "ISA":
                isa, isa_written, groups_written = segment, False, 0
            elif seg_id == "GS":
                gs, gs_written, sets_written = segment, False, 0
            elif seg_id == "GE":
                if gs_written:
                    put(_with(segment, 1, str(sets_written)))
                    groups_written += 1
                gs, gs_written = None, False
            elif seg_id == "IEA":
                if isa_written:
                    put(_with(segment, 1, str(groups_written)))
                isa, isa_written = None, False
        tee.queue.clear()

    for ts in iter_transaction_sets(tee):  # type: ignore[arg-type]
        delimiters = reader.delimiters
        drain()
        info = file.transactions[ts.index]
        kept = accepted_segments(ts, info, accepted)
        if kept is None:
            continue
        if not isa_written:
            assert isa is not None
            put(isa)
            isa_written = True
        if not gs_written:
            assert gs is not None
            put(gs)
            gs_written = True
        for segment in kept:
            put(segment)
        sets_written += 1
    drain()
    return reader


def _with(segment: Segment, index: int, value: str) -> Segment:
    elements = list(segment.elements)
    while len(elements) <= index:
        elements.append("")
    elements[index] = value
    return Segment(segment.pos, elements)
