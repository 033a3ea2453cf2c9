"""Structural edits: envelope control, claim balancing, diagnosis pointers, dates, units.

These hold for every 837P whatever the specialty; the billing families build on them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity

_IK5 = {
    "2": "transaction set trailer missing",
    "3": "ST02/SE02 control numbers differ",
    "4": "SE01 segment count is wrong",
    "23": "transaction set control number not unique in its group",
}


@register
class EnvelopeControl(Rule):
    """Interchange, group and transaction-set control structure.

    What it checks:
        The envelope around the claims: SE01 equals the number of segments from ST to SE,
        SE02 equals ST02, ST02 is unique within its group, GE01 counts the transaction sets
        and GE02 equals GS06, IEA01 counts the groups and IEA02 equals ISA13, and no
        interchange control number repeats in the file.

    Why payers deny it:
        A receiver cannot trust counts or control numbers that do not match: the
        transaction set is rejected in the 999 (IK5 R) or the interchange in a TA1, and
        every claim inside goes back unprocessed.

    Failing example:
        claims:
          - {id: PCN1, lines: [{code: "62323", charge: 500}]}
        mutate: [["SE*24*0001", "SE*23*0001"]]

    Corrected example:
        claims:
          - {id: PCN1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None. The finding is an error on every claim of the transaction set (or of the
        group or interchange whose trailer is wrong).

    Source:
        ASC X12 005010 envelope (ISA/IEA, GS/GE, ST/SE control segments); 999
        005010X231A1 IK502 and AK905 codes; TA1 note codes.
    """

    id = "X12-ENV-001"
    name = "envelope-control"
    summary = "Envelope counts and control numbers (SE01/SE02, GE01/GE02, IEA01/IEA02) must match"
    category = Category.SYNTAX
    severity = Severity.ERROR
    scope = Scope.TRANSACTION
    source = "ASC X12 005010 control segments ISA/IEA, GS/GE, ST/SE; 999 005010X231A1 IK502/AK905 codes"
    status_code = "A3:21"

    def check(self, info, ctx: RuleContext) -> Iterable[Finding]:
        issues = info.all_issues()
        if not issues:
            return
        for ref in info.claims:
            for issue in issues:
                scope = {"transaction": "transaction set", "group": "functional group",
                         "interchange": "interchange"}[issue.level]
                yield self.finding(
                    ref,
                    f"The {scope} holding this claim has an envelope error at segment "
                    f"{issue.segment}: {issue.message}.",
                    fix="Regenerate the envelope so counts and control numbers match, then resubmit.",
                    segment=issue.segment,
                )


@register
class ClaimBalance(Rule):
    """Claim total charge equals the sum of its line charges.

    What it checks:
        CLM02 (total claim charge) is a number and equals the sum of SV102 (line charge
        amount) over the claim's service lines; every line charge is a number.

    Why payers deny it:
        The 837P implementation guide requires CLM02 to balance with the line charges; an
        out-of-balance claim is rejected at the front end (277CA status 400, "claim is out
        of balance") before adjudication.

    Failing example:
        claims:
          - {id: PCN1, charge: 600, lines: [{code: "62323", charge: 500}]}

    Corrected example:
        claims:
          - {id: PCN1, charge: 500, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None.

    Source:
        ASC X12 005010X222A1 loop 2300 CLM02 note: the total claim charge must equal the sum
        of all SV102 amounts; 277CA claim status code 400.
    """

    id = "EPI-BAL-001"
    name = "claim-balance"
    summary = "CLM02 total charge must equal the sum of the SV102 line charges"
    category = Category.BALANCING
    severity = Severity.ERROR
    scope = Scope.CLAIM
    source = "ASC X12 005010X222A1 2300 CLM02 (must equal the sum of 2400 SV102)"
    status_code = "A7:400"

    def check(self, claim, ctx: RuleContext) -> Iterable[Finding]:
        if claim.charge is None:
            yield self.finding(
                claim,
                f"Total claim charge CLM02 {claim.charge_raw!r} is not a number.",
                fix="Put the claim total (the sum of the line charges) in CLM02.",
            )
            return
        total = Decimal(0)
        for line in claim.lines:
            if line.charge is None:
                yield self.finding(
                    claim,
                    f"Line charge SV102 {line.charge_raw!r} is not a number.",
                    fix="Put the line's charge amount in SV102.",
                    line=line,
                )
                return
            total += line.charge
        if total != claim.charge:
            yield self.finding(
                claim,
                f"Claim charge {claim.charge} does not equal the sum of the line charges {total}.",
                fix=f"Set CLM02 to {total}, or correct the line charges.",
            )


@register
class DiagnosisPointer(Rule):
    """Every line points at diagnoses the claim has.

    What it checks:
        SV107 (diagnosis code pointers) holds one to four pointers, each a whole number
        from 1 to 12 that names a diagnosis present in the claim's HI segment, with no
        pointer repeated.

    Why payers deny it:
        A line's medical necessity is judged on the diagnoses it points at. A missing
        pointer, or one past the last HI diagnosis, leaves the line without a diagnosis and
        the claim is rejected (277CA status 477).

    Failing example:
        claims:
          - {id: PCN1, dx: [M5416], lines: [{code: "62323", pointers: [2]}]}

    Corrected example:
        claims:
          - {id: PCN1, dx: [M5416], lines: [{code: "62323", pointers: [1]}]}

    Configuration:
        None.

    Source:
        ASC X12 005010X222A1 2400 SV107 (composite C004, pointers to 2300 HI positions);
        277CA claim status code 477.
    """

    id = "EPI-SYN-004"
    name = "diagnosis-pointer"
    summary = "SV107 diagnosis pointers must point at diagnoses in the claim's HI segment"
    category = Category.SYNTAX
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "ASC X12 005010X222A1 2400 SV107 diagnosis code pointers (C004)"
    status_code = "A7:477"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        raw = line.diagnosis_pointers_raw
        if not raw:
            yield self.finding(
                claim,
                "The line has no diagnosis pointer (SV107).",
                fix="Point SV107 at the diagnosis in HI that supports this service (for example 1).",
                line=line,
            )
            return
        positions = {dx.position for dx in claim.diagnoses}
        seen: set[str] = set()
        for pointer in raw:
            if not pointer.isdigit() or not 1 <= int(pointer) <= 12:
                yield self.finding(
                    claim,
                    f"Diagnosis pointer {pointer!r} is not a number from 1 to 12.",
                    fix="Use the position (1-12) of a diagnosis in the HI segment.",
                    line=line,
                )
            elif int(pointer) not in positions:
                count = len(positions)
                yield self.finding(
                    claim,
                    f"Diagnosis pointer {pointer} points past the claim's "
                    f"{count} diagnosis code{'s' if count != 1 else ''}.",
                    fix="Point at an existing HI position, or add the missing diagnosis to HI.",
                    line=line,
                )
            elif pointer in seen:
                yield self.finding(
                    claim,
                    f"Diagnosis pointer {pointer} is repeated.",
                    fix="List each diagnosis pointer once.",
                    line=line,
                )
            seen.add(pointer)


@register
class ServiceDate(Rule):
    """Every line has a valid date of service, not in the future.

    What it checks:
        Each service line has a DTP*472 segment with a D8 date (CCYYMMDD) or an RD8 range
        (CCYYMMDD-CCYYMMDD, start not after end) that is a real calendar date and is not
        after the day of the run.

    Why payers deny it:
        The date of service selects every rule, fee and code set that applies; a line
        without one cannot be adjudicated (277CA 187), and services billed before they
        happen are rejected (277CA 510).

    Failing example:
        claims:
          - {id: PCN1, lines: [{code: "62323", date: "2025-02-30"}]}

    Corrected example:
        claims:
          - {id: PCN1, lines: [{code: "62323", date: "2025-02-28"}]}

    Configuration:
        ``--as-of DATE`` sets the day against which future dates are judged (default: today).

    Source:
        ASC X12 005010X222A1 2400 DTP*472 (required on every service line); 277CA claim
        status codes 187 (date of service) and 510 (future date).
    """

    id = "EPI-SYN-003"
    name = "service-date"
    summary = "Every service line needs a valid DTP*472 date of service that is not in the future"
    category = Category.SYNTAX
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "ASC X12 005010X222A1 2400 DTP*472 service date (D8/RD8)"
    status_code = "A7:187"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        if line.date_pos is None:
            yield self.finding(
                claim,
                "The line has no date of service (DTP*472).",
                fix="Add DTP*472*D8*CCYYMMDD with the date the service was performed.",
                line=line,
                status_code="A6:187",
            )
            return
        if line.date_from is None:
            yield self.finding(
                claim,
                f"Date of service {line.date_qualifier}*{line.date_raw} is not a valid "
                f"{'range' if line.date_qualifier == 'RD8' else 'date'}.",
                fix="Use D8 with CCYYMMDD, or RD8 with CCYYMMDD-CCYYMMDD (start not after end).",
                line=line,
                segment=line.date_pos,
            )
            return
        last = line.date_to or line.date_from
        if last > ctx.as_of:
            yield self.finding(
                claim,
                f"Date of service {last.isoformat()} is in the future (run date {ctx.as_of.isoformat()}).",
                fix="Bill the service after it has been performed, with the actual date of service.",
                line=line,
                segment=line.date_pos,
                status_code="A7:510",
            )


@register
class UnitsPositive(Rule):
    """Units of service are a positive number.

    What it checks:
        SV104 (service unit count) is present, numeric and greater than zero.

    Why payers deny it:
        Payment is units times the allowed amount; missing, zero or negative units make
        the line unpayable and the claim is rejected (277CA status 476).

    Failing example:
        claims:
          - {id: PCN1, lines: [{code: "62323", units: 0}]}

    Corrected example:
        claims:
          - {id: PCN1, lines: [{code: "62323", units: 1}]}

    Configuration:
        None.

    Source:
        ASC X12 005010X222A1 2400 SV104 service unit count; 277CA claim status code 476.
    """

    id = "EPI-SYN-002"
    name = "units-positive"
    summary = "SV104 units of service must be a number greater than zero"
    category = Category.UNITS
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "ASC X12 005010X222A1 2400 SV104 service unit count"
    status_code = "A7:476"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        if line.units is None:
            what = "missing" if not line.units_raw.strip() else f"{line.units_raw!r}, not a number"
            yield self.finding(
                claim,
                f"Units of service (SV104) are {what}.",
                fix="Report the number of units performed in SV104 (for example 1).",
                line=line,
            )
        elif line.units <= 0:
            yield self.finding(
                claim,
                f"Units of service (SV104) are {line.units}; they must be greater than zero.",
                fix="Report the number of units performed in SV104 (for example 1).",
                line=line,
            )
