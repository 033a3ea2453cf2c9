"""The 999 implementation acknowledgment (005010X231A1) of an input file.

``DIR/NAME.999`` holds one interchange (sender and receiver of the input swapped) with one
functional group (GS01 ``FA``) and one ``ST*999`` per functional group of the input::

    ISA ... [TA1 per input interchange that asked for one (ISA14=1) or has an envelope error]
    GS*FA*...*005010X231A1
      ST*999 / AK1 (the input group: HC, GS06, GS08)
        AK2 per transaction set (837, ST02, ST03)
          IK3 per segment in error (IK303 empty; an 837 has no LS/LE loops)
            CTX*CLM01:<claim id> when the segment belongs to a claim
            IK4 per element in error (position, data element number, IK403 code, bad value)
          IK5 A, E or R with the IK502.. codes
        AK9 A, E, P or R, the counts and the AK905.. codes
      SE
    GE / IEA

What it reports comes from ``TransactionInfo``: the implementation-guide errors pyx12 found
(:mod:`claimscrub.validate`, including the HL01/HL02/LX01 numbering errors pyx12's own 999
drops, as IK403 ``I12``) and claimscrub's own envelope checks (SE01/SE02 and duplicate
ST02 as IK502 4/3/23; GE01/GE02 and duplicate GS06 as AK905 5/4/19; interchange errors as
TA1 note codes). A transaction set with an error is rejected (IK5 R), and the scrub
pipeline rejects every claim in it (findings of X12-IG-001 / X12-ENV-001); should those
findings have been configured down to warnings, the set is acknowledged ``E`` (accepted with
errors) instead, so the 999 never rejects a claim the other outputs accept. A claim a
segment belongs to is the one :class:`claimscrub.edits.ig.ClaimLocator` names, the same
claim its finding lands on.

The output is deterministic: the control numbers (ISA13, GS06) come from
:class:`Ack999Options` or the input's ISA13, the dates and times from the options or the
input's GS04/GS05, never from the clock. Values copied from the input are reduced to the X12
character set; a bad value that cannot be copied faithfully (a delimiter of this file, a
character outside the basic set, longer than IK404 allows) is left out rather than altered.

Source: ASC X12 005010X231A1 Implementation Acknowledgment for Health Care Insurance (999),
as pyx12's ``999.5010X231.A1`` map encodes it (which the tests validate every output with).
"""

from __future__ import annotations

import os
import re
from typing import IO, Optional

from claimscrub.atomic import atomic_writer
from claimscrub.edits.ig import ClaimLocator
from claimscrub.findings import Severity
from claimscrub.report.x12out import COMPONENT, X12_CHARACTERS, AckOptions, Envelope, SegmentWriter, clean
from claimscrub.scrub import ENVELOPE_RULE, IG_RULE, FileResult, IGError, RunResult, TransactionInfo
from claimscrub.x12.envelope import FunctionalGroup, Interchange

VERSION = "005010X231A1"

#: IK304 codes of the X231A1 guide.
IK304_CODES = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"})
#: IK403 codes of the X231A1 guide (pyx12's map also allows 11, which X12 does not define).
IK403_CODES = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "13",
                         "I6", "I9", "I10", "I11", "I12", "I13"})
#: IK403 codes of a missing element: IK404 (copy of the bad value) is left out.
MISSING_ELEMENT = frozenset({"1", "2", "I9"})
#: Codes IK502..IK506 may carry (X231A1).
IK502_CODES = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
                         "15", "16", "17", "18", "19", "23", "24", "25", "26", "27", "I5", "I6"})
#: Codes AK905..AK909 may carry (X231A1).
AK905_CODES = frozenset({"1", "2", "3", "4", "5", "6", "10", "11", "12", "13", "14", "15",
                         "16", "17", "18", "19", "23", "24", "25", "26"})
#: Placeholder IK301 for a segment whose identifier is not two or three letters or digits.
UNKNOWN_SEGMENT = "UNK"

_SEGMENT_ID = re.compile(r"^[A-Z0-9]{2,3}$")
# The X12 basic and extended character sets, less this file's own delimiters.
_COPYABLE = re.compile(f"^[{X12_CHARACTERS}]+$")


class Ack999Options(AckOptions):
    """Envelope values of the 999 (:class:`~claimscrub.report.x12out.AckOptions`)."""


def write_999(run: RunResult, file: FileResult, out_dir: str,
              options: Optional[AckOptions] = None) -> Optional[str]:
    """Write ``out_dir/NAME.999`` for one usable input file and return its path (``None``
    when the file is unusable or holds no transaction set)."""
    options = options or Ack999Options()
    if not file.usable or not file.transactions:
        return None
    path = file.output_path(out_dir, ".999")
    with atomic_writer(path) as handle:
        _write(run, file, handle, options)
    return path


# --------------------------------------------------------------------------------------


def copy_of(value: str, max_len: int) -> str:
    """A faithful copy of an input value, or ``""`` when it cannot be one."""
    value = (value or "").rstrip(" ")
    if not value or len(value) > max_len or not _COPYABLE.match(value):
        return ""
    return value


def segment_id(seg_id: str) -> str:
    return seg_id if _SEGMENT_ID.match(seg_id or "") else UNKNOWN_SEGMENT


def _groups(file: FileResult) -> list[tuple[FunctionalGroup, list[TransactionInfo]]]:
    out: dict[int, tuple[FunctionalGroup, list[TransactionInfo]]] = {}
    for info in file.transactions:
        out.setdefault(id(info.group), (info.group, []))[1].append(info)
    return list(out.values())


def _interchanges(file: FileResult) -> list[Interchange]:
    out: dict[int, Interchange] = {}
    for info in file.transactions:
        out.setdefault(id(info.group.interchange), info.group.interchange)
    return list(out.values())


def _write(run: RunResult, file: FileResult, handle: IO[str], options: AckOptions) -> None:
    envelope = Envelope.of(file, options)
    out = SegmentWriter(handle)
    envelope.open_interchange(out)
    for acked in _interchanges(file):
        _write_ta1(out, acked)
    envelope.open_group(out, "FA", VERSION)
    groups = _groups(file)
    for number, (group, transactions) in enumerate(groups, start=1):
        _write_group(run, file, out, number, group, transactions)
    envelope.close(out, len(groups))


def _write_ta1(out: SegmentWriter, interchange: Interchange) -> None:
    """TA1 for an input interchange that asked for one or whose envelope is wrong."""
    if interchange.ack_requested != "1" and not interchange.issues:
        return
    control = interchange.control_number
    date, time = interchange.date, interchange.time
    if not (control.isdigit() and len(control) == 9 and date.isdigit() and len(date) == 6
            and time.isdigit() and len(time) == 4):
        return  # a TA1 must echo ISA13/ISA09/ISA10 exactly; these cannot be echoed
    if interchange.issues:
        out.seg("TA1", control, date, time, "R", interchange.issues[0].code)
    else:
        out.seg("TA1", control, date, time, "A", "000")


def _write_group(run: RunResult, file: FileResult, out: SegmentWriter, number: int,
                 group: FunctionalGroup, transactions: list[TransactionInfo]) -> None:
    start = out.count
    st_control = f"{number:04d}"
    out.seg("ST", "999", st_control, VERSION)
    out.seg("AK1", clean(group.functional_id, 2, 2, "HC"), clean(group.control_number, 9, 1, "0"),
            clean(group.version, 12, 1, "005010X222A1"))
    accepted = 0
    any_e = False
    for info in transactions:
        ack = _write_transaction(run, file, out, info)
        accepted += ack in ("A", "E")
        any_e |= ack == "E"
    codes = _unique(issue.code for issue in group.issues if issue.code in AK905_CODES)
    received = len(transactions)
    if codes or accepted == 0:
        ack = "R"
    elif accepted < received:
        ack = "P"
    else:
        ack = "E" if any_e else "A"
    out.seg("AK9", ack, str(received), str(received), str(accepted), *codes[:5])
    out.seg("SE", str(out.count - start + 1), st_control)


def _write_transaction(run: RunResult, file: FileResult, out: SegmentWriter, info: TransactionInfo) -> str:
    out.seg("AK2", "837", clean(info.control_number, 9, 1, "0000"), clean(info.version, 35))
    locator = ClaimLocator(info)
    for (seg_count, seg_id), errors in _by_segment(info.ig_errors):
        _write_segment(out, seg_count, seg_id, errors, locator)
    codes = [issue.code for issue in info.issues]
    codes += info.ig_transaction_codes
    if any(error.segment is not None for error in info.ig_errors) or (
            info.ig_errors and not info.ig_transaction_codes):
        codes.append("5")
    codes = [code for code in _unique(codes) if code in IK502_CODES]
    ack = _transaction_ack(run, file, info, bool(codes or info.ig_errors))
    out.seg("IK5", ack, *codes[:5])
    return ack


def _transaction_ack(run: RunResult, file: FileResult, info: TransactionInfo, has_errors: bool) -> str:
    """R when the set has errors and every claim in it is rejected for them, E when the
    errors were configured not to reject its claims, else A."""
    if not has_errors:
        return "A"
    for ref in info.claims:
        findings = run.findings.get((file.index, ref.index), [])
        if not any(f.rule in (IG_RULE, ENVELOPE_RULE) and f.severity == Severity.ERROR
                   for f in findings):
            return "E"
    return "R"


def _by_segment(errors: list[IGError]) -> list[tuple[tuple[int, str], list[IGError]]]:
    """Errors with a position, grouped by (IK302, segment id) in file order."""
    groups: dict[tuple[int, str], list[IGError]] = {}
    for error in errors:
        if error.seg_count is None or error.segment is None:
            continue
        groups.setdefault((error.seg_count, error.seg_id), []).append(error)
    return sorted(groups.items(), key=lambda item: (item[1][0].segment, item[0][0]))


def _write_segment(out: SegmentWriter, seg_count: int, seg_id: str, errors: list[IGError],
                   locator: ClaimLocator) -> None:
    segment_codes = _unique(e.code if e.code in IK304_CODES else "8"
                            for e in errors if e.element is None)
    elements = [e for e in errors if e.element is not None]
    if elements and "8" not in segment_codes:
        segment_codes.append("8")
    claim = next((ref for ref in map(locator.claim_for, errors) if ref is not None), None)
    claim_id = copy_of(claim.claim_id, 35) if claim is not None else ""
    for code in segment_codes:
        out.seg("IK3", segment_id(seg_id), str(seg_count), "", code)
        if claim_id:
            out.seg("CTX", f"CLM01{COMPONENT}{claim_id}")
        if code != "8":
            continue
        for error in elements:
            if error.code not in IK403_CODES:
                continue
            position = COMPONENT.join(p for p in error.element.split(":") if p.isdigit())
            reference = error.element_ref if error.element_ref.isdigit() and len(error.element_ref) <= 4 else ""
            value = "" if error.code in MISSING_ELEMENT else copy_of(error.bad_value, 99)
            out.seg("IK4", position, reference, error.code, value)


def _unique(codes) -> list[str]:
    out: list[str] = []
    for code in codes:
        if code and code not in out:
            out.append(code)
    return out
