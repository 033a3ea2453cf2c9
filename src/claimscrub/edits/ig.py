"""Implementation-guide (005010X222A1) errors found by pyx12, as findings on claims.

The errors come from :class:`claimscrub.validate.Pyx12Validator` through
``TransactionInfo.ig_errors``; this module decides which claim each belongs to, which the
999 writer (:mod:`claimscrub.report.ack999`) uses too, so the CTX of an IK3 and the claim
a finding lands on always agree.
"""

from __future__ import annotations

import bisect
from typing import Iterable, Optional

from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.scrub import ClaimRef, IGError, TransactionInfo

#: IK304 codes for "something required is missing before this segment".
MISSING_SEGMENT_CODES = frozenset({"3", "I6", "I7", "I8"})
#: IK403 codes for a missing element.
MISSING_ELEMENT_CODES = frozenset({"1", "2", "I9"})

_ELEMENT_FIX = {
    "1": "Fill in the required element.",
    "2": "Fill in the element the implementation guide requires in this situation.",
    "3": "Remove the extra elements or components.",
    "4": "Lengthen the value to the element's minimum length.",
    "5": "Shorten the value to the element's maximum length.",
    "6": "Use only characters the element's data type allows (digits and a decimal point "
         "for amounts and quantities, the X12 character set elsewhere).",
    "7": "Use a code the implementation guide allows for this element.",
    "8": "Use a real calendar date, CCYYMMDD (a range CCYYMMDD-CCYYMMDD under RD8).",
    "9": "Use a valid time, HHMM.",
    "10": "Send only one of the mutually exclusive elements.",
    "12": "Send fewer repetitions.",
    "13": "Send fewer components.",
    "I10": "Leave out the element the implementation guide marks as not used.",
    "I12": "Number HL01 from 1 in order of the HL segments and point HL02 at the enclosing "
           "HL; number LX01 from 1 within each claim.",
}
_SEGMENT_FIX = {
    "1": "Correct the segment's identifier or qualifier, or move or remove the segment: the "
         "implementation guide has no such segment at this point.",
    "2": "Remove the segment the implementation guide does not expect here.",
    "3": "Add the required segment or loop.",
    "4": "Send the loop no more often than the implementation guide allows.",
    "5": "Send the segment no more often than the implementation guide allows.",
    "8": "Correct the segment's elements (a trailing element separator counts as an error).",
    "I4": "Remove the segment the implementation guide marks as not used.",
}
_DEFAULT_FIX = "Correct the segment so that it conforms to the 837P implementation guide (005010X222A1)."


def error_location(error: IGError) -> str:
    """``CLM05-1`` for an element error, ``segment SBR`` for a segment error."""
    seg_id = error.seg_id or "(no id)"
    if error.element:
        position, _, component = error.element.partition(":")
        text = f"{seg_id}{int(position):02d}" if position.isdigit() else f"{seg_id}{position}"
        return f"{text}-{component}" if component else text
    return f"segment {seg_id}"


class ClaimLocator:
    """Which claim of a transaction set an implementation-guide error belongs to.

    An error inside a claim's segments (CLM to the claim's last segment) belongs to that
    claim. pyx12 reports a required segment that is missing at the segment *after* the gap;
    when that is the first segment after a claim (the next HL, CLM or the SE), the missing
    segment was the claim's own (its 2300/2400 loops close there), so it belongs to that
    claim too. Any other error (header, billing provider, subscriber loops) belongs to no
    claim: it rejects the transaction set and so every claim in it.
    """

    def __init__(self, info: TransactionInfo):
        self.claims = sorted(info.claims, key=lambda ref: ref.pos)
        self.starts = [ref.pos for ref in self.claims]

    def claim_at(self, segment: Optional[int]) -> Optional[ClaimRef]:
        if segment is None:
            return None
        index = bisect.bisect_right(self.starts, segment) - 1
        if index >= 0 and segment <= self.claims[index].last_pos:
            return self.claims[index]
        return None

    def claim_for(self, error: IGError) -> Optional[ClaimRef]:
        ref = self.claim_at(error.segment)
        if ref is not None or error.segment is None:
            return ref
        if error.element is None and error.code in MISSING_SEGMENT_CODES:
            before = self.claim_at(error.segment - 1)
            if before is not None and before.last_pos == error.segment - 1:
                return before
        return None


@register
class ImplementationGuide(Rule):
    """Every segment of the transaction set conforms to the 837P implementation guide.

    What it checks:
        Each transaction set is validated against the ASC X12 005010X222A1 implementation
        guide as pyx12's 837P map encodes it: segment order and loops, required and
        not-used segments and elements, repeat counts, element lengths and data types,
        code values (place of service, unit of measure, qualifiers, ...), dates, and the
        numbering of HL01/HL02 and LX01. An error inside a claim is a finding on that claim
        naming the segment, the element and what is wrong; every other claim of the
        transaction set gets one finding saying it is rejected with its set. Values of
        names, ids, addresses and dates are never repeated in a message.

    Why payers deny it:
        The receiver validates the implementation guide before it looks at any claim, and
        acknowledges a transaction set as a whole in the 999: one error rejects the set
        (IK5 R) and every claim in it comes back unprocessed, clean claims included.

    Failing example:
        claims:
          - {id: PCN1, pos: "AA", lines: [{code: "62323", charge: 500}]}

    Corrected example:
        claims:
          - {id: PCN1, pos: "11", lines: [{code: "62323", charge: 500}]}

    Configuration:
        ``claimscrub scrub --no-validate`` skips implementation-guide validation (then this
        edit never fires); ``--jobs N`` sets how many processes validate (default: one per
        CPU). Files labelled 005010X222A2 are validated against the A1 guide, the only one
        pyx12 has.

    Source:
        ASC X12 005010X222A1 Health Care Claim: Professional (837P) implementation guide,
        as encoded in pyx12's 837.5010.X222.A1 map; 999 005010X231A1 segment (IK304) and
        element (IK403) syntax error codes.
    """

    id = "X12-IG-001"
    name = "implementation-guide"
    summary = "Every segment must conform to the 837P implementation guide (pyx12 X222A1 map)"
    category = Category.SYNTAX
    severity = Severity.ERROR
    scope = Scope.TRANSACTION
    source = "ASC X12 005010X222A1 implementation guide (pyx12 837.5010.X222.A1 map); 999 005010X231A1 IK304/IK403 codes"
    status_code = "A3:21"

    def check(self, info: TransactionInfo, ctx: RuleContext) -> Iterable[Finding]:
        errors = info.ig_errors
        if not errors or not info.claims:
            return
        locator = ClaimLocator(info)
        owners = [locator.claim_for(error) for error in errors]
        own: dict[int, list[IGError]] = {}
        for error, owner in zip(errors, owners):
            if owner is not None:
                own.setdefault(owner.index, []).append(error)
        # the first error of the set, and the first one belonging elsewhere than its owner
        # (claims compared by index: the store hands out a new reference object per read)
        first, first_owner = errors[0], _index(owners[0])
        second = next((e for e, o in zip(errors, owners) if _index(o) != first_owner), None)
        for ref in info.claims:
            mine = own.get(ref.index, [])
            for error in mine:
                yield self._own_finding(ref, error)
            outside = len(errors) - len(mine)
            if outside:
                pointer = first if first_owner != ref.index else second
                if pointer is not None:
                    yield self._set_finding(ref, info, pointer, outside)

    def _own_finding(self, ref: ClaimRef, error: IGError) -> Finding:
        missing = (error.element is None and error.code in MISSING_SEGMENT_CODES) or (
            error.element is not None and error.code in MISSING_ELEMENT_CODES
        )
        where = error_location(error)
        # a missing segment is reported at the segment after the gap, whose loop says nothing
        loop = (f", loop {error.loop_id}"
                if error.loop_id[:1].isdigit() and not (missing and error.element is None) else "")
        fixes = _ELEMENT_FIX if error.element else _SEGMENT_FIX
        return self.finding(
            ref,
            f"Implementation-guide error at segment {error.segment} ({where}{loop}): "
            f"{error.message}. The 999 rejects the whole transaction set, so this claim is "
            f"returned unprocessed.",
            fix=fixes.get(error.code, _DEFAULT_FIX),
            segment=error.segment,
            status_code="A6:21" if missing else "A7:21",
        )

    def _set_finding(self, ref: ClaimRef, info: TransactionInfo, error: IGError, count: int) -> Finding:
        more = f" ({count - 1} more error{'s' if count != 2 else ''} in the set outside this claim)" if count > 1 else ""
        if error.segment is None:
            what = f"because {error.message}"
        else:
            what = (f"for an implementation-guide error at segment {error.segment} "
                    f"({error_location(error)}): {error.message}")
        return self.finding(
            ref,
            f"Rejected with its transaction set (ST02 {info.control_number}): the 999 rejects "
            f"the whole set {what}{more}.",
            fix="Correct the transaction set's errors (the 999's IK3/IK4 segments point at "
                "them) and resubmit this claim with it; the claim itself may be clean.",
            segment=error.segment if error.segment is not None else info.st_pos,
        )


def _index(ref: Optional[ClaimRef]) -> Optional[int]:
    return ref.index if ref is not None else None
