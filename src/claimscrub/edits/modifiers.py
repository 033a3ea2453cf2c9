"""Procedure modifiers: the ones a code cannot take, the ones that cannot go together, and
the ones nobody knows.

The facts about codes (bilateral indicator, PC/TC indicator, E/M or not, family) come from
``edits/procedure_codes.csv``; the facts about modifiers (meaning, kind, effective and
deletion dates) from ``edits/modifiers.csv``; the line's date of service selects the rows.
A code the procedure table does not know is not judged here (EPI-TBL-001 reports it).

Modifier 57 on an E/M with a minor procedure is EPI-EM-002 (em25.py), not a modifier edit,
so it is reported once.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Iterable

from claimscrub.edits._codebook import (
    ADD_ON_GLOBAL,
    INTERLAMINAR,
    TRANSFORAMINAL,
    family,
    global_days,
    is_em,
    is_verified,
    listing,
    modifier,
    procedure,
    procedure_any_date,
    related,
    severity_for,
    unverified_note,
    where,
)
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import DayLine, PatientDay

#: 59 and its more specific X subsets (CPT Appendix A; MLN1783722; CR8863, effective 2015-01-01)
X_MODIFIERS = ("XE", "XP", "XS", "XU")
DISTINCT = ("59",) + X_MODIFIERS
SIDES = ("LT", "RT")

STATUS = "A7:453"


def _line_row(ctx: RuleContext, line) -> dict | None:
    return procedure(ctx, line.procedure_code, line.service_date)


#: MPFS bilateral indicators with which modifier 50 is not reported (50 is valid with 1 and 3)
_NO_MODIFIER_50 = {
    "0": "{code} has bilateral indicator 0: the bilateral adjustment does not apply and modifier 50 "
         "must not be reported.",
    "2": "{code} has bilateral indicator 2: its value already covers both sides, so modifier 50 "
         "must not be reported.",
    "9": "The bilateral concept does not apply to {code} (bilateral indicator 9).",
}


@register
class BilateralModifierNotAllowed(Rule):
    """Modifier 50 on a code without a bilateral adjustment; 50/LT/RT on 62320-62327.

    What it checks:
        Modifier 50 on a code whose MPFS bilateral indicator (``bilateral_indicator`` in
        procedure_codes.csv, for the date of service) is not 1 or 3: 0 (the 150% bilateral
        adjustment does not apply), 2 (the code is already bilateral) or 9 (the bilateral
        concept does not apply, e.g. E/M, drugs); and
        50, LT or RT on the interlaminar/caudal epidural codes 62320-62327, which are
        midline procedures reported once per session.

        What could still change the verdict: for codes other than 62320-62327, the
        bilateral indicator where the bundled row has not been checked against the CMS PFS
        file (then a warning that asks to confirm it). 50 on 62320-62327 is an error:
        their indicator is 9 in the CMS PFS file and the ESI LCDs limit interlaminar and
        caudal injections to one level per session. LT/RT on 62320-62327 is a warning:
        with indicator 9 the side has no meaning, a denial risk rather than a hard rule.

    Why payers deny it:
        Medicare prices modifier 50 from the bilateral indicator; with indicator 0 or 9 the
        modifier is invalid for the code and the line is returned or paid as one side.
        Bilateral interlaminar/caudal epidural injection is never medically necessary under
        the ESI LCDs, and a side modifier on a midline injection contradicts the code.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", modifiers: ["50"], charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None beyond selection and severity overrides.

    Source:
        CMS PFS relative value file, BILAT SURG indicator (CMS PPRRVU 2025: 62320-62327 = 9;
        Medicare Claims Processing Manual ch. 12 section 40.7 for indicators 0-3 and 9);
        Medicare ESI LCDs (L39240 and its billing article A58993; L33906/A56651; A56681).
    """

    id = "EPI-MOD-001"
    name = "bilateral-modifier-not-allowed"
    summary = "50 only on codes with a bilateral adjustment; no 50/LT/RT on 62320-62327"
    category = Category.MODIFIER
    severity = Severity.ERROR
    scope = Scope.LINE
    source = (
        "CMS PFS relative value file, BILAT SURG indicator; Medicare Claims Processing Manual ch. 12 "
        "section 40.7; Medicare ESI LCD L39240 / article A58993"
    )
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        row = _line_row(ctx, line)
        if row is None:
            return
        code = line.procedure_code
        indicator = str(row.get("bilateral_indicator", "")).strip()
        mods = line.modifiers
        if family(row) == INTERLAMINAR:
            used = [m for m in mods if m in ("50",) + SIDES]
            why = (
                f"{code} is an interlaminar/caudal epidural: a midline injection reported once per "
                f"session (bilateral indicator {indicator or 'not given'}), so {listing(used)} "
                f"{'does' if len(set(used)) == 1 else 'do'} not apply."
            )
            # 50 contradicts the code and the LCDs; a side modifier only means nothing
            severity = Severity.ERROR if "50" in used else Severity.WARNING
        else:
            used = [m for m in mods if m == "50"] if indicator in _NO_MODIFIER_50 else []
            why = _NO_MODIFIER_50.get(indicator, "").format(code=code) + unverified_note(
                [row], "the bilateral indicator"
            )
            severity = severity_for([row])
        if not used:
            return
        yield self.finding(
            claim,
            why,
            fix=f"Remove modifier {listing(used)} and report {code} once, with one unit.",
            line=line,
            severity=severity,
        )


@register
class MedicareBilateralReporting(Rule):
    """Bilateral procedures for Medicare: one line with modifier 50 and one unit.

    What it checks:
        For Medicare Part B claims (SBR09 = MB), codes with bilateral indicator 1 (64479-64484
        transforaminal epidurals, 64490-64495 facet injections, per procedure_codes.csv)
        reported bilaterally in another way on one patient-day: two lines of the same code
        with LT and RT (on one claim or several); LT and RT together on one line; modifier 50
        together with LT or RT; a 50 line with more than one unit; or two units of a
        single-level (non add-on) code without a single side.

    Why payers deny it:
        Medicare pays a bilateral indicator 1 procedure at 150% when it is reported on one
        line with modifier 50 and one unit; LT/RT lines or two units are denied for
        exceeding the MUE or paid wrongly, and anatomic modifiers must not be added to 50.
        Two units of a single-level code may also be a second level, which has its own
        add-on code (64480/64484).

    Failing example:
        claims:
          - {id: C1, lines: [{code: "64483", modifiers: ["LT"], charge: 300}, {code: "64483", modifiers: ["RT"], charge: 300}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483", modifiers: ["50"], charge: 600}]}

    Configuration:
        Medicare only: claims of other payers (many of which want RT/LT lines) are not
        checked. A warning: payer policies differ and the rule does not see the record.

    Source:
        CMS PFS relative value file, BILAT SURG indicator 1 (150% payment adjustment);
        Medicare Claims Processing Manual ch. 12 section 40.7 (bilateral surgery: one line,
        modifier 50, one unit); CMS billing article A58993 (reporting 64479-64484); CMS
        practitioner MUE 64479/64483 = 1 (MAI 2), release effective 2024-07-01.
    """

    id = "EPI-MOD-002"
    name = "medicare-bilateral-reporting"
    summary = "Medicare bilateral (indicator 1) procedures go on one line with 50 and one unit"
    category = Category.MODIFIER
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = (
        "CMS PFS BILAT SURG indicator 1; Medicare Claims Processing Manual ch. 12 section 40.7; "
        "CMS billing article A58993"
    )
    status_code = STATUS

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        candidates: list[tuple[DayLine, dict]] = []
        for entry in day.entries:
            if not entry.claim.is_medicare:
                continue
            row = procedure(ctx, entry.code, entry.line.service_date)
            if row is not None and str(row.get("bilateral_indicator", "")).strip() == "1":
                candidates.append((entry, row))
        one_side: dict[tuple[str, str], list[DayLine]] = {}
        for entry, row in candidates:
            yield from self._one_line(entry, row)
            mods = set(entry.modifiers)
            sides = mods & set(SIDES)
            if "50" not in mods and len(sides) == 1:
                one_side.setdefault((entry.code, sides.pop()), []).append(entry)
        codes = {code for code, _ in one_side}
        for code in sorted(codes):
            lefts, rights = one_side.get((code, "LT"), []), one_side.get((code, "RT"), [])
            for left, right in zip(lefts, rights):
                later, earlier = (right, left) if _order(right) > _order(left) else (left, right)
                yield self.finding(
                    later.claim,
                    f"{code} is reported on two lines, LT ({where(left, later.claim)}) and RT "
                    f"({where(right, later.claim)}), for the same patient on "
                    f"{day.service_date.isoformat()}: Medicare takes a bilateral procedure on one "
                    "line with modifier 50.",
                    fix=(
                        f"Delete this line and report {where(earlier, later.claim)} as {code}-50 "
                        "with one unit and the charge for both sides."
                    ),
                    line=later.line,
                    related=related([left, right], later.claim),
                )

    def _one_line(self, entry: DayLine, row: dict) -> Iterable[Finding]:
        line, code = entry.line, entry.code
        mods = set(entry.modifiers)
        units = line.units
        problem = ""
        if "50" in mods and mods & set(SIDES):
            problem = f"{code} carries modifier 50 together with {listing(sorted(mods & set(SIDES)))}"
        elif "50" in mods and units is not None and units > 1:
            problem = f"{code}-50 is reported with {units.normalize()} units"
        elif set(SIDES) <= mods:
            problem = f"{code} carries both LT and RT on one line"
        elif (
            "50" not in mods and units is not None and units >= 2
            and global_days(row) != ADD_ON_GLOBAL and len(mods & set(SIDES)) != 1
        ):
            problem = (
                f"{code} is reported with {units.normalize()} units; if this was a second level, "
                "report the add-on code instead"
            )
        if not problem:
            return
        yield self.finding(
            entry.claim,
            f"{problem}: Medicare takes a bilateral procedure on one line with modifier 50 and "
            "one unit, without LT/RT.",
            fix=f"Report {code} once with modifier 50 only and one unit (charge for both sides).",
            line=line,
        )


def _order(entry: DayLine) -> tuple:
    return (entry.claim.file, entry.claim.index, entry.line.pos)


#: MPFS PC/TC indicators with which neither 26 nor TC may be used (6, 7 and 8 are not judged)
_PCTC_MEANING = {
    "0": "is a physician service with no professional/technical split (PC/TC indicator 0)",
    "2": "is already a professional-component-only code (PC/TC indicator 2)",
    "3": "is a technical-component-only code (PC/TC indicator 3)",
    "4": "is a global-only code; other codes describe its professional and technical parts (PC/TC indicator 4)",
    "5": "is an incident-to service (PC/TC indicator 5)",
    "9": "is a code to which the PC/TC concept does not apply (PC/TC indicator 9)",
}


@register
class ProfessionalTechnicalSplit(Rule):
    """Modifier 26 or TC only on codes with a professional/technical split.

    What it checks:
        Modifier 26 (professional component) or TC (technical component) on a code whose
        MPFS PC/TC indicator (``pctc_indicator`` in procedure_codes.csv) is 0, 2, 3, 4, 5 or
        9: for example 26 on 62323. Indicator 1 codes (diagnostic imaging such as 77003,
        77012) take 26 or TC, but not both on one line (together they are the global
        service). Indicators 6, 7 and 8 are not judged.

        What could still change the verdict: the PC/TC indicator, where the bundled row has
        not been checked against the CMS PFS file (``verified`` column); such findings are
        warnings that ask to confirm it.

    Why payers deny it:
        26 and TC split the payment of a code that has both parts; on a code without the
        split the modifier is invalid and the line is returned (277CA 453) or mispriced.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", modifiers: ["26"], charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None beyond selection and severity overrides. Load the PPRRVU file with ``--rules``
        to judge every code by CMS's own indicator.

    Source:
        CMS PFS relative value file, PCTC IND (CMS PPRRVU 2025: 62320-62327 = 0, no
        professional/technical split; 77003, 77012, 76942 = 1); Medicare Claims Processing
        Manual ch. 12 section 20.4.
    """

    id = "EPI-MOD-003"
    name = "professional-technical-split"
    summary = "26/TC only on codes with a professional/technical split (PC/TC indicator 1)"
    category = Category.MODIFIER
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "CMS PFS relative value file, PCTC IND; Medicare Claims Processing Manual ch. 12 section 20.4"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        used = [m for m in line.modifiers if m in ("26", "TC")]
        if not used:
            return
        row = _line_row(ctx, line)
        if row is None:
            return
        indicator = str(row.get("pctc_indicator", "")).strip()
        if indicator == "1" and len(set(used)) == 2:
            yield self.finding(
                claim,
                f"{line.procedure_code} carries both 26 and TC: the two components together are the "
                "global service.",
                fix=f"Remove both 26 and TC to bill the global {line.procedure_code}, or keep the one "
                "component this provider performed.",
                line=line,
                severity=severity_for([row]),
            )
            return
        meaning = _PCTC_MEANING.get(indicator)
        if meaning is None:
            return
        yield self.finding(
            claim,
            f"Modifier {listing(used)} on {line.procedure_code}, which {meaning}."
            + unverified_note([row], "the PC/TC indicator"),
            fix=f"Remove modifier {listing(used)}; bill {line.procedure_code} without it.",
            line=line,
            severity=severity_for([row]),
        )


@register
class DistinctModifierWithXModifier(Rule):
    """Modifier 59 together with XE, XS, XP or XU on one line.

    What it checks:
        A line carrying 59 and any of the X{EPSU} modifiers.

    Why payers deny it:
        XE, XS, XP and XU are more specific subsets of 59; CMS asks for the X modifier when
        one applies and 59 only when none does. Many payers' reimbursement policies state
        that billing both on one line is not appropriate and deny or return the line.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}, {code: "20552", modifiers: ["59", "XS"], charge: 80}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}, {code: "20552", modifiers: ["XS"], charge: 80}]}

    Configuration:
        A warning by default (a payer policy, following CMS's "X is a subset of 59"
        guidance). Make it an error for payers that prohibit it, globally or per payer::

            [severity]
            "EPI-MOD-004" = "error"
            [payer."60054".severity]
            "EPI-MOD-004" = "error"

    Source:
        MLN1783722 "Proper Use of Modifiers 59, XE, XP, XS & XU"; CR8863 / MLN Matters
        SE1418 (X{EPSU} are subsets of 59).
    """

    id = "EPI-MOD-004"
    name = "distinct-modifier-with-x-modifier"
    summary = "Use either 59 or the specific X{EPSU} modifier on a line, not both"
    category = Category.MODIFIER
    severity = Severity.WARNING
    scope = Scope.LINE
    source = "MLN1783722; CR8863 / MLN Matters SE1418 (X{EPSU} are subsets of 59)"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        xs = [m for m in line.modifiers if m in X_MODIFIERS]
        if "59" not in line.modifiers or not xs:
            return
        yield self.finding(
            claim,
            f"{line.procedure_code} carries both 59 and {listing(xs)}: the X modifier is the more "
            "specific form of 59, and the two are not billed together.",
            fix=f"Keep {listing(xs)} and remove 59.",
            line=line,
        )


@register
class DistinctModifierOnEM(Rule):
    """Modifier 59 or X{EPSU} on an E/M line.

    What it checks:
        59, XE, XS, XP or XU on a code the procedure table marks as an E/M service
        (``is_em``).

    Why payers deny it:
        CPT defines 59 for "procedures or services, other than E/M services"; the X
        modifiers are its subsets. An E/M separately identifiable from a same-day
        procedure takes 25 (57 for the decision for a major surgery); 59/X on an E/M is
        an invalid modifier and does not bypass the procedure's global package.

    Failing example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["59"], pointers: [2], charge: 150}]}

    Corrected example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["25"], pointers: [2], charge: 150}]}

    Configuration:
        None beyond selection and severity overrides.

    Source:
        CPT Appendix A, modifier 59 ("other than E/M services"); MLN1783722; NCCI Policy
        Manual for Medicare Services ch. I section E.
    """

    id = "EPI-MOD-005"
    name = "distinct-modifier-on-em"
    summary = "59 and X{EPSU} are not used on E/M codes; use 25 (or 57)"
    category = Category.MODIFIER
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "CPT Appendix A modifier 59 (services other than E/M); MLN1783722; NCCI Policy Manual ch. I section E"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        used = [m for m in line.modifiers if m in DISTINCT]
        if not used:
            return
        row = procedure_any_date(ctx, line.procedure_code, line.service_date)
        if not is_em(row):
            return
        yield self.finding(
            claim,
            f"E/M {line.procedure_code} carries {listing(used)}: 59 and the X modifiers are for "
            "procedures and services other than E/M.",
            fix=(
                f"Remove {listing(used)}; if the visit was a significant, separately identifiable "
                "E/M on the day of a procedure, append 25 instead (57 only for the decision for a "
                "90-day-global surgery)."
            ),
            line=line,
        )


@register
class TooManyModifiers(Rule):
    """More than four modifiers on one service line.

    What it checks:
        A line whose SV101 composite holds modifier-shaped values beyond the four modifier
        components (C003-03 to C003-06): the claim reader keeps these as
        ``extra_modifiers``.

    Why payers deny it:
        The 837P has room for four procedure modifiers on a line; anything past the fourth
        lands in the description component or beyond, is not read as a modifier and the
        payer either rejects the line or prices it without the modifier you meant.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "64483", modifiers: ["50", "KX", "GA", "GC", "Q6"], charge: 600}]}
        validate: false

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483", modifiers: ["50", "KX", "GA", "GC"], charge: 600}]}

    Configuration:
        None beyond selection and severity overrides.

    Source:
        ASC X12 005010X222A1 2400 SV101 (composite C003: four procedure modifiers,
        C003-03 to C003-06).
    """

    id = "EPI-MOD-006"
    name = "too-many-modifiers"
    summary = "The 837P SV101 holds at most four procedure modifiers"
    category = Category.MODIFIER
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "ASC X12 005010X222A1 SV101 C003-03..06 (four procedure modifiers)"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        if not line.extra_modifiers:
            return
        count = len(line.modifiers) + len(line.extra_modifiers)
        yield self.finding(
            claim,
            f"{line.procedure_code} lists {count} modifiers ({listing(line.modifiers + line.extra_modifiers)}); "
            f"the 837P has room for four, so {listing(line.extra_modifiers)} would not be read as a modifier.",
            fix=(
                "Keep the four modifiers that change payment or coverage (for example 50, 26/TC, "
                "59/X, 25, GA/GZ, KX) and drop the rest, or follow the payer's rule for modifier 99."
            ),
            line=line,
        )


@register
class LiabilityModifiers(Rule):
    """GA with GZ on one line; GY on an epidural for Medicare.

    What it checks:
        GA (ABN on file) and GZ (no ABN on file) together on one line, on any claim; and,
        on Medicare claims, GY on an epidural injection (62320-62327, 64479-64484 in
        procedure_codes.csv families), a Medicare benefit whose non-coverage is a medical
        necessity question under the ESI LCDs.

    Why payers deny it:
        GA says a valid ABN is on file and GZ says none is: the line contradicts itself and
        is returned. GY is for items that are statutorily excluded or not a Medicare benefit;
        an epidural that fails the LCD is "not reasonable and necessary" and takes GA (with
        an ABN) or GZ (without), so GY shifts liability wrongly.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", modifiers: ["GA", "GZ"], charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", modifiers: ["GA"], charge: 500}]}

    Configuration:
        GA with GZ is an error: the two contradict each other (an ABN is on file / no ABN is
        on file), so nothing a claim shows changes the verdict. GY on an epidural is a
        warning and Medicare only: GY is for statutory exclusions, and the record may show
        the service was statutorily excluded; other payers use GY for contract exclusions.

    Source:
        HCPCS Level II modifier definitions GA, GZ, GY; Medicare Claims Processing Manual
        ch. 30 section 40.3.6 (ABN modifiers); CMS article A58993 ("use the appropriate
        modifier" for non-covered services).
    """

    id = "EPI-MOD-007"
    name = "liability-modifiers"
    summary = "GA and GZ are exclusive; GY is not for LCD non-coverage of an epidural"
    category = Category.MODIFIER
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "HCPCS modifiers GA/GZ/GY; Medicare Claims Processing Manual ch. 30 section 40.3.6; CMS article A58993"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        mods = line.modifiers
        if "GA" in mods and "GZ" in mods:
            yield self.finding(
                claim,
                f"{line.procedure_code} carries both GA (ABN on file) and GZ (no ABN on file), "
                "which contradict each other.",
                fix="Keep GA if a signed ABN is on file for this service, otherwise keep GZ; remove the other.",
                line=line,
            )
        if "GY" in mods and claim.is_medicare:
            row = _line_row(ctx, line)
            if family(row) in (INTERLAMINAR, TRANSFORAMINAL):
                yield self.finding(
                    claim,
                    f"GY (statutorily excluded / not a Medicare benefit) on {line.procedure_code}: "
                    "an epidural injection is a Medicare benefit; if it fails the ESI LCD it is "
                    "'not reasonable and necessary', which GY does not describe.",
                    fix="Use GA if an ABN was signed, GZ if not; remove GY.",
                    line=line,
                    severity=Severity.WARNING,
                )


@register
class KXOnInterlaminar(Rule):
    """KX on an interlaminar/caudal epidural 62320-62327.

    What it checks:
        Modifier KX on a code of the interlaminar epidural family (62320-62327).

    Why payers deny it:
        KX means "requirements specified in the medical policy have been met". Some MAC ESI
        articles (A56651, A58745) use it only to flag a diagnostic selective nerve root
        block on the transforaminal codes 64479-64484; it has no role on 62320-62327, and a
        payer may return the line or read it as a claim that policy requirements are met.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", modifiers: ["KX"], charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        A warning: KX instructions are jurisdiction-specific; confirm whether your Medicare
        contractor's ESI billing article asks for KX before relying on it.

    Source:
        HCPCS modifier KX ("requirements specified in the medical policy have been met");
        CMS billing articles A56651 and A58745 (KX for diagnostic selective nerve root
        blocks on 64479-64484 only).
    """

    id = "EPI-MOD-008"
    name = "kx-on-interlaminar"
    summary = "KX is not used on interlaminar epidurals 62320-62327"
    category = Category.MODIFIER
    severity = Severity.WARNING
    scope = Scope.LINE
    source = "HCPCS KX; CMS billing articles A56651, A58745 (KX for diagnostic SNRB on 64479-64484)"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        if "KX" not in line.modifiers or family(_line_row(ctx, line)) != INTERLAMINAR:
            return
        yield self.finding(
            claim,
            f"KX on {line.procedure_code}: KX is not used on interlaminar/caudal epidurals; some MACs "
            "require it only to flag a diagnostic selective nerve root block on 64479-64484.",
            fix="Remove KX unless the payer's ESI billing article requires it for this code.",
            line=line,
        )


@register
class Modifier25NotOnEM(Rule):
    """Modifier 25 on a code that is not an E/M service.

    What it checks:
        Modifier 25 on a code the procedure table knows and does not mark as E/M (for
        example 62323-25).

    Why payers deny it:
        25 identifies a significant, separately identifiable E/M service on the day of a
        procedure; it belongs on the E/M line. On a procedure it is an invalid modifier
        (277CA 453), and the E/M it was meant to protect is still bundled.

    Failing example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", modifiers: ["25"], charge: 500}, {code: "99214", pointers: [2], charge: 150}]}

    Corrected example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["25"], pointers: [2], charge: 150}]}

    Configuration:
        None beyond selection and severity overrides.

    Source:
        CPT Appendix A, modifier 25; NCCI Policy Manual for Medicare Services ch. I section D.
    """

    id = "EPI-MOD-009"
    name = "modifier-25-not-on-em"
    summary = "Modifier 25 belongs on the E/M line, not on a procedure"
    category = Category.MODIFIER
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "CPT Appendix A modifier 25; NCCI Policy Manual for Medicare Services ch. I section D"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        if "25" not in line.modifiers:
            return
        row = procedure_any_date(ctx, line.procedure_code, line.service_date)
        if row is None or is_em(row):
            return
        yield self.finding(
            claim,
            f"Modifier 25 on {line.procedure_code}, which is not an E/M service: 25 marks a separately "
            "identifiable E/M visit on the day of a procedure.",
            fix=(
                f"Remove 25 from {line.procedure_code}; if a separately identifiable E/M was performed "
                "and documented on this day, put 25 on the E/M line."
            ),
            line=line,
        )


@register
class UnknownModifier(Rule):
    """A modifier that is malformed, unknown, or not in force on the date of service.

    What it checks:
        Each of the (up to four) modifiers of a line:

        * not exactly two letters or digits (for example ``5`` or ``2-``): an error, the
          value is not a modifier at all;
        * well formed but not in ``edits/modifiers.csv``: a warning, because the bundled
          table holds the modifiers of this specialty, not the whole HCPCS list; load a
          complete table with ``--rules`` to judge the rest;
        * in the table but not in force on the line's date of service (before its effective
          date or after its deletion, e.g. XS before 2015-01-01): an error when the table row
          is verified, a warning asking to confirm the date otherwise (a wrong date would
          change the verdict).

    Why payers deny it:
        A modifier that does not exist on the date of service is an invalid modifier: the
        claim is returned (277CA 453) or the line is priced without the modifier meant.

    Failing example:
        claims:
          - {id: C1, date: "2014-12-15", lines: [{code: "64483", modifiers: ["XS"], charge: 300}]}

    Corrected example:
        claims:
          - {id: C1, date: "2014-12-15", lines: [{code: "64483", modifiers: ["59"], charge: 300}]}

    Configuration:
        The modifier table is ``edits/modifiers.csv``, replaceable with ``--rules DIR``
        (a ``modifiers.csv`` there replaces the bundled one).

    Source:
        CPT Appendix A; HCPCS Level II modifier list; CR8863 / MLN Matters SE1418 (X{EPSU}
        effective 2015-01-01); ASC X12 005010X222A1 SV101-3..6 (modifier, 2 characters);
        277CA claim status code 453.
    """

    id = "EPI-MOD-010"
    name = "unknown-modifier"
    summary = "Modifiers must be real two-character modifiers in force on the date of service"
    category = Category.MODIFIER
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "CPT Appendix A; HCPCS Level II modifiers (edits/modifiers.csv); CR8863/SE1418; X12 SV101 C003"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        table = ctx.tables.get("modifiers") if ctx.tables is not None else None
        day = line.service_date
        for value in dict.fromkeys(line.modifiers):
            if len(value) != 2 or not value.isalnum():
                yield self.finding(
                    claim,
                    f"{value!r} on {line.procedure_code} is not a procedure modifier: modifiers are "
                    "two letters or digits.",
                    fix="Correct the modifier (for example 25, 50, 59, LT, XS) or remove it.",
                    line=line,
                )
                continue
            if table is None:
                continue
            if not table.knows(modifier=value):
                yield self.finding(
                    claim,
                    f"Modifier {value} on {line.procedure_code} is not in the modifier table "
                    f"({os.path.basename(table.path) or table.name}); it could not be checked "
                    "and may be invalid.",
                    fix=(
                        f"Check {value} against the current CPT/HCPCS modifier list; if it is valid, "
                        "add it to the modifier table (or load a complete one with --rules)."
                    ),
                    line=line,
                    severity=Severity.WARNING,
                )
                continue
            if day is None or modifier(ctx, value, day) is not None:
                continue
            rows = table.index("modifier").get((value,), [])
            starts = [r["effective"] for r in rows if r["effective"] is not None and day < r["effective"]]
            ends = [r["deleted"] for r in rows if r["deleted"] is not None and day > r["deleted"]]
            when = (
                f"it takes effect on {min(starts).isoformat()}" if starts
                else f"it was deleted after {max(ends).isoformat()}" if ends
                else "it is not in force then"
            )
            yield self.finding(
                claim,
                f"Modifier {value} on {line.procedure_code} is not valid on the date of service "
                f"{day.isoformat()}: {when}."
                + ("" if all(is_verified(r) for r in rows) else
                   " Confirm the modifier's effective and deletion dates in the HCPCS modifier list: "
                   "a different date would change this verdict, so it is a warning."),
                fix=(
                    "Use the modifier in force on the date of service (before 2015-01-01, 59 "
                    "instead of XE/XP/XS/XU)." if value in X_MODIFIERS
                    else "Use the modifier in force on the date of service, or remove it."
                ),
                line=line,
                severity=severity_for(rows),
            )


@register
class RepeatedModifier(Rule):
    """The same modifier twice on one line.

    What it checks:
        A modifier that appears more than once among a line's modifiers (including any
        past the fourth).

    Why payers deny it:
        A repeated modifier adds nothing, takes one of the four modifier slots, and some
        payers' front ends reject the line as an invalid modifier combination; it usually
        means a modifier meant for another line, or a different modifier, was mistyped.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "64483", modifiers: ["50", "50"], charge: 600}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483", modifiers: ["50"], charge: 600}]}

    Configuration:
        A warning: no CMS instruction on repeats was found, and payers differ on whether
        they reject or ignore them. Raise it per payer with a severity override.

    Source:
        ASC X12 005010X222A1 SV101 C003-03..06 (each component one modifier); payer
        front-end edits (invalid modifier combination, 277CA 453).
    """

    id = "EPI-MOD-011"
    name = "repeated-modifier"
    summary = "The same modifier appears twice on one line"
    category = Category.MODIFIER
    severity = Severity.WARNING
    scope = Scope.LINE
    source = "ASC X12 005010X222A1 SV101 C003 procedure modifiers; 277CA claim status code 453"
    status_code = STATUS

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        counts = Counter(line.modifiers + line.extra_modifiers)
        repeated = [m for m, n in counts.items() if n > 1]
        if not repeated:
            return
        yield self.finding(
            claim,
            f"Modifier {listing(repeated)} appears more than once on {line.procedure_code}.",
            fix=f"List {listing(repeated)} once; check whether another modifier was meant.",
            line=line,
        )
