"""The accepted-claims 837P: the input file again, holding only the claims to forward.

For each usable input, ``DIR2/NAME`` (the input's own file name) gets every accepted claim
with its original segments, in the input's delimiters and line-break style. It is built
from the segments that were scrubbed, as the run's store holds them (the claims' own and
those outside claims), never by reading the input again: what is forwarded is what was
judged, even if the input has changed since. What changes:

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

Each transaction set is read twice from the store, in one pass each: first its HL segments
and claim starts, to decide which HLs stay and how they are numbered (a few values per HL),
then every segment, written or left out as it comes. Memory does not grow with the size of
a transaction set, and the work is linear in segments.

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
from claimscrub.errors import ClaimscrubError
from claimscrub.scrub import ACCEPTED, FileResult, RunResult, disposition
from claimscrub.x12.reader import Segment

#: HL03 level code -> the level its parent has (837P 2000A / 2000B / 2000C)
PARENT_LEVEL = {"22": "20", "23": "22"}


@dataclass
class _Node:
    """One HL of a transaction set: what deciding whether it stays needs."""

    level: str
    parent: Optional["_Node"] = None
    children: list["_Node"] = field(default_factory=list)
    accepted_claims: int = 0
    #: segments of its own (after the HL, before the next one) that are written if it stays
    own_segments: int = 0
    keep: bool = False
    new_id: int = 0


class _Plan:
    """Which segments of one transaction set are written, and how its HLs read then."""

    def __init__(self, segments: Iterator[tuple[int, str]], spans: list[tuple[int, int, bool]],
                 element: str):
        claim_starts = {first: keep for first, _, keep in spans}
        self._dropped = sorted((first, last) for first, last, keep in spans if not keep)
        self.header = 0
        self.nodes: dict[int, _Node] = {}  # by the HL's ordinal
        last_by_id: dict[str, _Node] = {}
        last_by_level: dict[str, _Node] = {}
        current: Optional[_Node] = None
        drop = self._drop_test()
        hl_prefix = "HL" + element
        for pos, text in segments:
            if text.startswith("SE" + element) or text == "SE":
                break
            if text.startswith(hl_prefix) or text == "HL":
                hl = Segment(pos, text.split(element))
                level = hl.get(3)
                node = _Node(level=level)
                parent = last_by_id.get(hl.get(2)) if hl.get(2) else None
                wanted = PARENT_LEVEL.get(level)
                if wanted is not None and (parent is None or parent.level != wanted):
                    parent = last_by_level.get(wanted, parent)
                node.parent = parent
                if parent is not None:
                    parent.children.append(node)
                self.nodes[pos] = node
                last_by_id[hl.get(1)] = node
                last_by_level[level] = node
                current = node
                continue
            if current is None:
                self.header += 1
                continue
            if claim_starts.get(pos):
                current.accepted_claims += 1
            if not drop(pos):
                current.own_segments += 1
        ordered = list(self.nodes.values())
        for node in reversed(ordered):
            if node.accepted_claims or any(child.keep for child in node.children):
                node.keep = True
        number = 0
        for node in ordered:
            if node.keep:
                number += 1
                node.new_id = number
        self.any_kept = number > 0
        #: SE01 of the written set: header, kept HLs with their segments, SE
        self.segment_count = self.header + sum(1 + n.own_segments for n in ordered if n.keep) + 1

    def _drop_test(self):
        """A test of "is ordinal ``pos`` in a rejected claim", for ordinals asked in
        increasing order (one pass over the rejected spans)."""
        spans = self._dropped
        at = 0

        def dropped(pos: int) -> bool:
            nonlocal at
            while at < len(spans) and spans[at][1] < pos:
                at += 1
            return at < len(spans) and spans[at][0] <= pos
        return dropped

    def written(self, segments: Iterator[Segment]) -> Iterator[Segment]:
        """The set's segments as written: kept, renumbered, recounted."""
        drop = self._drop_test()
        current: Optional[_Node] = None
        for segment in segments:
            seg_id = segment.id
            if seg_id == "SE":
                yield _with(segment, 1, str(self.segment_count))
                return
            node = self.nodes.get(segment.pos) if seg_id == "HL" else None
            if node is not None:
                current = node
                if node.keep:
                    yield _renumbered(segment, node)
                continue
            if current is None:
                yield segment
            elif current.keep and not drop(segment.pos):
                yield segment


def _renumbered(hl: Segment, node: _Node) -> Segment:
    elements = list(hl.elements)
    while len(elements) < 5:
        elements.append("")
    elements[1] = str(node.new_id)
    parent = node.parent
    while parent is not None and not parent.keep:  # pragma: no cover - a kept node's parent is kept
        parent = parent.parent
    elements[2] = str(parent.new_id) if parent is not None else ""
    elements[4] = "1" if any(child.keep for child in node.children) else "0"
    return Segment(hl.pos, elements)


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
        raise ClaimscrubError(f"{file.name}: --accepted-out would overwrite the input file")
    with atomic_writer(path) as handle:
        _write(run, file, accepted, handle)
    return path


def _write(run: RunResult, file: FileResult, accepted: set[int], handle: IO[str]) -> None:
    delimiters = file.delimiters
    assert delimiters is not None
    element = delimiters.element
    ending = delimiters.segment + file.line_break
    store = run.store
    # Envelope state: the pending ISA/GS are written only once a transaction set of theirs
    # holds an accepted claim.
    isa: Optional[Segment] = None
    gs: Optional[Segment] = None
    isa_written = gs_written = False
    groups_written = 0
    sets_written = 0
    ts_index = 0

    def put(segment: Segment) -> None:
        handle.write(element.join(segment.elements) + ending)

    stored = (Segment(pos, text.split(element)) for pos, text in store.segment_texts(file.index))
    for segment in stored:
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
        elif seg_id == "ST":
            info = file.transactions[ts_index]
            ts_index += 1
            spans = [(ref.pos, ref.last_pos, ref.index in accepted) for ref in info.claims]
            body = _rest_of_set(segment, stored)
            if not any(keep for _, _, keep in spans):
                for _ in body:
                    pass
                continue
            plan = _Plan(store.segment_texts(file.index, info.st_pos, info.se_pos, ts_idx=info.index),
                         spans, element)
            if not isa_written:
                assert isa is not None
                put(isa)
                isa_written = True
            if not gs_written:
                assert gs is not None
                put(gs)
                gs_written = True
            for out in plan.written(body):
                put(out)
            sets_written += 1
        # TA1 and anything else outside a set is not copied


def _rest_of_set(st: Segment, segments: Iterator[Segment]) -> Iterator[Segment]:
    """ST and the segments after it, through SE."""
    yield st
    for segment in segments:
        yield segment
        if segment.id == "SE":
            return


def _with(segment: Segment, index: int, value: str) -> Segment:
    elements = list(segment.elements)
    while len(elements) <= index:
        elements.append("")
    elements[index] = value
    return Segment(segment.pos, elements)
