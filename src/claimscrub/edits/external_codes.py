"""Claim-level checks every 837P needs, whatever the specialty (WEDI SNIP types 4 and 5).

* EPI-REF-001: a replacement or void claim (CLM05-3 = 7 or 8) without the payer claim
  control number of the claim it replaces (2300 REF*F8), a situational rule of the TR3.
* EPI-NPI-001: an NPI on the claim (billing 2010AA, referring 2310A/2420F, rendering
  2310B/2420A, purchased service 2420B, service facility 2310C/2420C, supervising
  2310D/2420D, ordering 2420E) whose check digit is wrong.
* EPI-POS-002: a place of service (CLM05-1, SV105) that is not a code of the CMS Place of
  Service code set in force on the date of service (``edits/pos_codes.csv``).

A procedure code that no loaded table knows is reported as unchecked by EPI-TBL-001
(:mod:`claimscrub.edits.coverage`), the third external-code check.
"""

from __future__ import annotations

import functools

from datetime import date
from typing import Iterable, Optional

from stdnum import luhn

from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.errors import ConfigError
from claimscrub.findings import Category, Finding, Severity
from claimscrub.model import Claim, ProviderName, ServiceLine
from claimscrub.tables import Table, parse_table_date

#: CLM05-3 claim frequency codes that refer to a claim the payer already has
REPLACEMENT_OR_VOID = {"7": "replacement of a prior claim", "8": "void/cancel of a prior claim"}

#: The ISO/IEC 7812 issuer prefix the NPI check digit is computed with (80 health, 840 US).
NPI_PREFIX = "80840"

#: Provider loops by NM101 entity code: (name, claim-level loop, line-level loop).
PROVIDER_LOOPS: dict[str, tuple[str, str, str]] = {
    "DN": ("referring provider", "2310A", "2420F"),
    "P3": ("primary care (referring) provider", "2310A", "2420F"),
    "82": ("rendering provider", "2310B", "2420A"),
    "QB": ("purchased service provider", "", "2420B"),
    "77": ("service facility", "2310C", "2420C"),
    "DQ": ("supervising provider", "2310D", "2420D"),
    "DK": ("ordering provider", "", "2420E"),
}
#: STC01-3 entity of the 277CA status 562 ("Entity's National Provider Identifier"): the
#: entity itself where the 277CA allows it at claim level, else 1P (provider).
NPI_STATUS_ENTITY = {"85": "85", "82": "82", "77": "77"}

POS_TABLE = "pos_codes"


@functools.lru_cache(maxsize=8192)  # a batch names the same few providers on every claim
def npi_problem(npi: str) -> Optional[str]:
    """Why ``npi`` is not a valid NPI, or None when it is."""
    if len(npi) != 10 or not npi.isdigit():
        return f"is not a 10-digit number ({len(npi)} character{'s' if len(npi) != 1 else ''})"
    if not luhn.is_valid(NPI_PREFIX + npi):
        return f"{npi} fails the NPI check digit (its last digit should be {luhn.calc_check_digit(NPI_PREFIX + npi[:9])})"
    return None


@register
class ReplacementWithoutPayerClaimNumber(Rule):
    """A replacement or void claim must name the claim it replaces (REF*F8).

    What it checks:
        A claim whose frequency code CLM05-3 is 7 (replacement of a prior claim) or 8
        (void/cancel of a prior claim) carries a 2300 REF*F8 (payer claim control number)
        with a value. The verdict rests on the implementation guide alone; nothing a
        claim could show changes it. Whether the number matches a claim the payer really
        adjudicated is not checked (the scrubber has no history of the original): confirm
        it against the 835 (CLP07) or 277CA (REF*1K) of the original claim.

    Why payers deny it:
        A payer applies a replacement or void to the claim it already adjudicated, found by
        its own claim control number (ICN/DCN). Without REF*F8 there is nothing to replace:
        the claim is rejected at the front end, or processed as a new claim and denied as a
        duplicate of the original.

    Failing example:
        claims:
          - {id: C1, frequency: "7", lines: [{code: "62323", charge: 650}]}

    Corrected example:
        claims:
          - {id: C1, frequency: "7", payer_claim_control_number: "25062000123450", lines: [{code: "62323", charge: 650}]}

    Configuration:
        None. ``ignore = ["EPI-REF-001"]`` turns it off.

    Source:
        ASC X12 005010X222A1 TR3, loop 2300 REF "Payer Claim Control Number" (REF01 = F8):
        required when CLM05-3 indicates a replacement or void of a previously adjudicated
        claim; CLM05-3 claim frequency type codes 7 and 8 (NUBC code source 235); 277CA
        claim status code 464 (payer assigned claim control number).
    """

    id = "EPI-REF-001"
    name = "replacement-without-payer-claim-number"
    summary = "Replacement or void claims (CLM05-3 = 7 or 8) need the payer claim control number (REF*F8)"
    category = Category.SYNTAX
    severity = Severity.ERROR
    scope = Scope.CLAIM
    source = ("ASC X12 005010X222A1 2300 REF*F8 Payer Claim Control Number (required when CLM05-3 "
              "is 7 replacement or 8 void)")
    status_code = "A6:464"

    def check(self, claim: Claim, ctx: RuleContext) -> Iterable[Finding]:
        frequency = claim.frequency_code.strip()
        if frequency not in REPLACEMENT_OR_VOID or claim.payer_claim_control_number.strip():
            return
        what = REPLACEMENT_OR_VOID[frequency]
        yield self.finding(
            claim,
            f"Claim frequency CLM05-3 = {frequency} ({what}) but the claim has no REF*F8 payer "
            "claim control number of the claim it replaces.",
            fix=("Add REF*F8 with the payer's claim control number of the original claim (835 CLP07 or "
                 "277CA REF*1K); if the original was never accepted by the payer, send this claim as an "
                 "original (CLM05-3 = 1)."),
            segment=claim.pos,
        )


@register
class NPICheckDigit(Rule):
    """Every NPI on the claim is ten digits with a valid check digit.

    What it checks:
        Each NPI (NM109 where NM108 = XX) of the billing provider (2010AA), the referring
        provider (2310A, 2420F), the rendering provider (2310B, 2420A), the purchased
        service provider (2420B), the service facility (2310C, 2420C), the supervising
        provider (2310D, 2420D) and the ordering provider (2420E) is a 10-digit number
        whose last digit is the Luhn (ISO/IEC 7812, modulus 10 "double-add-double") check
        digit of the prefix 80840 followed by its first nine digits. The check is
        arithmetic: nothing could change a failing verdict. A passing NPI may still not be
        enumerated, or be deactivated, in NPPES; that is not checked here.

    Why payers deny it:
        An NPI with a wrong check digit cannot belong to any provider (usually a typing
        error). Clearinghouses and payers run this check at the front end and reject the
        claim (277CA A7 with status 562, "Entity's National Provider Identifier").

    Failing example:
        claims:
          - {id: C1, rendering_npi: "1234567890", lines: [{code: "62323", charge: 650}]}

    Corrected example:
        claims:
          - {id: C1, rendering_npi: "1234567893", lines: [{code: "62323", charge: 650}]}

    Configuration:
        None. ``ignore = ["EPI-NPI-001"]`` turns it off (for test files with made-up NPIs).

    Source:
        HIPAA NPI standard, 45 CFR 162.406 and the NPI final rule (69 FR 3434, 2004-01-23):
        ten positions, the last a check digit; CMS "Requirements for NPI Check Digit"
        (Luhn formula for modulus 10, computed as if the 80840 card issuer prefix is
        present); ASC X12 005010X222A1 NM108 = XX (Centers for Medicare and Medicaid
        Services National Provider Identifier).
    """

    id = "EPI-NPI-001"
    name = "npi-check-digit"
    summary = "Every NPI on the claim must be ten digits with a valid check digit (Luhn over 80840 + NPI)"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.CLAIM
    source = ("CMS Requirements for NPI Check Digit (Luhn mod 10 with prefix 80840, ISO/IEC 7812); "
              "45 CFR 162.406; ASC X12 005010X222A1 NM108 = XX")
    status_code = "A7:562"

    def check(self, claim: Claim, ctx: RuleContext) -> Iterable[Finding]:
        billing = claim.billing_provider
        if billing.npi:
            yield from self._check(claim, "billing provider", "2010AA", "85", billing.npi, billing.pos, None)
        for provider in claim.providers:
            yield from self._provider(claim, provider, None)
        for line in claim.lines:
            for provider in line.providers:
                yield from self._provider(claim, provider, line)

    def _provider(self, claim: Claim, provider: ProviderName, line: Optional[ServiceLine]) -> Iterable[Finding]:
        if provider.qualifier != "XX":
            return
        name, claim_loop, line_loop = PROVIDER_LOOPS.get(
            provider.entity, (f"provider (entity {provider.entity})", "2310", "2420"))
        loop = (line_loop if line is not None else claim_loop) or ("2420" if line is not None else "2310")
        yield from self._check(claim, name, loop, provider.entity, provider.id, provider.pos, line)

    def _check(self, claim: Claim, name: str, loop: str, entity: str, npi: str, segment: int,
               line: Optional[ServiceLine]) -> Iterable[Finding]:
        problem = npi_problem(npi.strip())
        if problem is None:
            return
        yield self.finding(
            claim,
            f"The {name} NPI (loop {loop} NM109) {problem}.",
            fix=(f"Correct the {name}'s NPI in loop {loop} (confirm it in the NPPES NPI registry); a "
                 "valid NPI's tenth digit is the Luhn check digit of 80840 plus its first nine digits."),
            line=line,
            segment=segment,
            status_code=f"A7:562:{NPI_STATUS_ENTITY.get(entity, '1P')}",
        )


@register
class PlaceOfServiceInForce(Rule):
    """Place of service codes come from the CMS code set in force on the date of service.

    What it checks:
        The claim's place of service (CLM05-1) and each line's (SV105, when present) is a
        code of the CMS Place of Service code set on the line's date of service: a code the
        code set never had (for example an unassigned 28 or 59) is an error; so is a code
        used before CMS made it effective (10 before 2022-01-01, 27 before 2023-10-01, 02
        before 2017-01-01, 19 before 2016-01-01, 58 before 2020-01-01) or after a deletion.
        CLM05-1 is checked on every line's date; SV105 on its own line's date. What could
        still change a verdict: a code CMS added after the table's last update (a date of
        service after it, with a code the table does not know, is a warning: confirm the
        code set), and start dates read from the code set text without a change request
        confirming them (16, 17, 66: a finding that rests on one is a warning).

    Why payers deny it:
        The place of service selects the payment rate (facility or non-facility) and
        coverage. HIPAA names the CMS code set for CLM05-1 and SV105; a code outside it,
        or not yet in force on the date of service, is rejected at the front end (277CA A7
        with status 249, "Place of Service").

    Failing example:
        claims:
          - {id: C1, date: "2021-06-01", pos: "10", lines: [{code: "99213", charge: 120}]}

    Corrected example:
        claims:
          - {id: C1, date: "2022-06-01", pos: "10", lines: [{code: "99213", charge: 120}]}

    Configuration:
        The code set is a table with dates (``pos_codes``); a newer release of the CMS code
        set given with ``--rules DIR`` as ``pos_codes.csv`` replaces the bundled one.

    Source:
        CMS Place of Service Code Set (the code set ASC X12 005010X222A1 names for CLM05-1
        and SV105), with the change requests that added codes: CR 9231 (19, 2016-01-01),
        CR 9726 (02, 2017-01-01), CR 11353 (58, 2020-01-01), CR 12427 (10, 2022-01-01),
        CR 13314 (27, 2023-10-01); 277CA claim status code 249.
    """

    id = "EPI-POS-002"
    name = "place-of-service-in-force"
    summary = "Place of service (CLM05-1, SV105) must be a CMS POS code in force on the date of service"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.CLAIM
    source = ("CMS Place of Service Code Set (named by ASC X12 005010X222A1 for CLM05-1/SV105); "
              "CR 9231, CR 9726, CR 11353, CR 12427, CR 13314")
    status_code = "A7:249"

    def check(self, claim: Claim, ctx: RuleContext) -> Iterable[Finding]:
        table = ctx.tables.get(POS_TABLE) if ctx.tables is not None else None
        if table is None:
            return
        claim_code = claim.place_of_service.strip()
        if claim_code:
            dates = sorted({line.date_from for line in claim.lines if line.date_from is not None})
            for day in dates or [None]:
                finding = self._judge(claim, table, claim_code, day, "CLM05-1", None)
                if finding is not None:
                    yield finding
                    break
        for line in claim.lines:
            code = line.line_place_of_service.strip()
            if code:
                finding = self._judge(claim, table, code, line.date_from, "SV105", line)
                if finding is not None:
                    yield finding

    def _judge(self, claim: Claim, table: Table, code: str, day: Optional[date], where: str,
               line: Optional[ServiceLine]) -> Optional[Finding]:
        rows = table.index("pos").get((code,), [])
        if not rows:
            current = _current_through(table)
            unsure = day is not None and current is not None and day > current
            tail = (f"; the code set known here ends on {current.isoformat()}, so confirm CMS has not "
                    "added it since" if unsure else "")
            return self._finding(
                claim, line, where,
                f"Place of service {where} {code!r} is not a code of the CMS Place of Service code set{tail}.",
                Severity.WARNING if unsure else None,
            )
        if day is None:
            return None  # no valid date of service: EPI-SYN-003 reports it
        if any(Table.applies(row, day) for row in rows):
            return None
        row = rows[0]
        name = row.get("name", "")
        if row["effective"] is not None and day < row["effective"]:
            when = f"only from {row['effective'].isoformat()}"
        else:
            when = f"only until {row['deleted'].isoformat()}"
        unverified = str(row.get("verified", "yes")).strip().lower() == "no"
        return self._finding(
            claim, line, where,
            f"Place of service {where} {code} ({name}) is in the CMS code set {when}, not on the date "
            f"of service {day.isoformat()}"
            + (" (the code set text gives this date without a change request to confirm it)" if unverified else "")
            + ".",
            Severity.WARNING if unverified else None,
        )

    def _finding(self, claim: Claim, line: Optional[ServiceLine], where: str, message: str,
                 severity: Optional[Severity]) -> Finding:
        return self.finding(
            claim,
            message,
            fix=("Report the CMS place of service code of the setting where the service was furnished on "
                 "that date (for example 11 office, 22 on-campus outpatient hospital, 24 ambulatory "
                 "surgical center)" + (" in SV105, or leave SV105 empty when it equals CLM05-1." if line
                                       else " in CLM05-1.")),
            line=line,
            segment=(line.sv1_pos or line.pos) if line is not None else claim.pos,
            severity=severity,
        )


def _current_through(table: Table) -> Optional[date]:
    try:
        return parse_table_date(table.provenance.get("current-through"), table.path or table.name)
    except ConfigError:  # a malformed header date only loses the warning, never the check
        return None
