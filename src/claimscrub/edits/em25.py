"""E/M services on the day of a procedure: modifier 25, modifier 57, and deleted E/M codes.

A procedure with a 000- or 010-day global period (every epidural 62320-62327, 64479/64483)
includes the pre-procedure assessment and the decision to perform it; a same-day E/M is
payable only when it is significant and separately identifiable, marked with 25. These edits
work on the patient's days across claims and files (the E/M is often billed on one claim and
the injection on another), with the physicians of one group practice and specialty counted as
one physician (:func:`claimscrub.grouping.practice_days`).

Global periods and the E/M flag come from ``edits/procedure_codes.csv`` (``global_days``,
``is_em``). ``ZZZ`` add-on codes share their primary's global period, so they never count on
their own (the primary is on the day when the add-on is billed correctly); ``XXX`` codes have
no global period. 000 and 010 give the same verdict, so these rules are errors whether or not
the bundled row has been checked against the CMS file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Optional

from claimscrub.edits._codebook import (
    MAJOR_GLOBAL,
    MINOR_GLOBALS,
    family,
    global_days,
    is_em,
    is_verified,
    listing,
    one_cycle_after,
    pointed_diagnoses,
    procedure,
    procedure_any_date,
    related,
    severity_for,
    where,
)
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import DayLine, PatientDay, PatientHistory, practice_days, practice_identities

STATUS = "A7:453"
E_M_SOURCE = (
    "Medicare Claims Processing Manual ch. 12 sections 40.1-40.2 (global surgery; same-day E/M) "
    "and 30.6.5 (same group and specialty as one physician); NCCI Policy Manual for Medicare "
    "Services ch. I section D and ch. XI; CPT Appendix A modifier 25; CMS PFS relative value file (GLOB DAYS)"
)


@dataclass
class _Line:
    entry: DayLine
    row: Optional[dict]

    @property
    def code(self) -> str:
        return self.entry.code

    @property
    def modifiers(self) -> list[str]:
        return self.entry.modifiers


@dataclass
class _Day:
    """The lines of one patient-day sorted by what they mean for the E/M rules."""

    ems: list[_Line]
    minor: list[_Line]  # 000/010 global procedures
    major: list[_Line]  # 090 global procedures
    other: list[_Line]  # everything else the table knows (XXX, ZZZ, drugs)
    unknown: list[_Line]  # codes no procedure table row describes


def _sort(day: Optional[PatientDay], ctx: RuleContext) -> _Day:
    out = _Day([], [], [], [], [])
    if day is None:
        return out
    for entry in day.entries:
        row = procedure_any_date(ctx, entry.code, entry.line.service_date)
        item = _Line(entry, row)
        if row is None:
            out.unknown.append(item)
        elif is_em(row):
            out.ems.append(item)
        elif global_days(row) in MINOR_GLOBALS:
            out.minor.append(item)
        elif global_days(row) == MAJOR_GLOBAL:
            out.major.append(item)
        else:
            out.other.append(item)
    return out


def _provider_note(entry: DayLine, relative_to: DayLine) -> str:
    """Says who rendered ``entry`` when a partner of the same group and specialty did."""
    npi = entry.claim.line_provider_npi(entry.line)
    if npi == relative_to.claim.line_provider_npi(relative_to.line):
        return ""
    return f", rendered by NPI {npi} of the same group and specialty"


def _globals_text(items: list[_Line], relative_to: DayLine) -> str:
    return listing([
        f"{where(i.entry, relative_to.claim)} ({global_days(i.row)}-day global"
        f"{_provider_note(i.entry, relative_to)})"
        for i in items
    ])


@register
class EMWithoutModifier25(Rule):
    """E/M on the day of a 0- or 10-day global procedure without modifier 25.

    What it checks:
        On one day of one patient, across claims and files, an E/M line (``is_em`` in the
        procedure table) without modifier 25 beside a procedure whose global period is 000
        or 010 (for example 62323 or 64483) by the same physician. Physicians of the same
        group practice and specialty count as one physician (Medicare Claims Processing
        Manual ch. 12 section 30.6.5): the same billing provider (2010AA NPI, else tax id)
        and the same rendering taxonomy (PRV03 of 2420A, else 2310B, else 2000A), so a
        partner's visit without 25 on the day of a colleague's injection is reported too.
        The finding goes on the E/M line. An E/M carrying 57 is left to EPI-EM-002.
        With a claim history (``--history``), lines billed on earlier nights count too: a
        visit billed last night without 25 and tonight's injection of the same date give the
        finding on tonight's procedure line, naming last night's claim and run (a claim
        already sent can only be corrected by a replacement).

        What could still change the verdict: only a global period other than 000/010 for
        the procedure (090 or XXX) in the CMS PFS relative value file of the date. 000 and
        010 give the same verdict, so the rule is an error whichever of the two applies;
        load the PPRRVU file with ``--rules`` to judge every code by CMS's own indicator.

    Why payers deny it:
        The global package of a minor procedure includes the pre-procedure evaluation and
        the decision to perform it; Medicare does not pay a same-day E/M unless it is a
        significant, separately identifiable service reported with 25 (NCCI PTP edits with
        the E/M as column 2, bypassed only by 25). Without 25 the E/M is denied.

    Failing example:
        claims:
          - {id: C1, dx: [M5416], lines: [{code: "62323", charge: 500}, {code: "99214", charge: 150}]}

    Corrected example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["25"], pointers: [2], charge: 150}]}

    Configuration:
        None beyond selection and severity overrides. Physicians who are not in the same
        group and specialty, or whose claims give no rendering taxonomy, are judged apart.

    Source:
        Medicare Claims Processing Manual ch. 12 sections 30.6.5 (same group and
        specialty), 40.1-40.2 (global surgery, same-day E/M); NCCI Policy Manual for
        Medicare Services ch. I section D and ch. XI; CPT Appendix A modifier 25; CMS PFS
        relative value file (GLOB DAYS).
    """

    id = "EPI-EM-001"
    name = "em-without-modifier-25"
    summary = "E/M on the day of a 000/010-global procedure needs modifier 25 (or is included)"
    category = Category.EM_25
    severity = Severity.ERROR
    scope = Scope.PATIENT
    source = E_M_SOURCE
    status_code = STATUS

    def check(self, history: PatientHistory, ctx: RuleContext) -> Iterable[Finding]:
        for day in practice_days(history):
            # a day of earlier nights' lines only (claim history) has no claim of this run to report on
            if day.has_own_entries:
                yield from self._check_day(day, ctx)

    def _check_day(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        sorted_day = _sort(day, ctx)
        if not sorted_day.minor:
            return
        for em in sorted_day.ems:
            if "25" in em.modifiers or "57" in em.modifiers:
                continue
            entry = em.entry
            if entry.prior is not None:
                # the visit was billed on an earlier night: the finding goes on tonight's procedure
                yield from self._prior_visit(day, em, sorted_day.minor)
                continue
            yield self.finding(
                entry.claim,
                f"E/M {em.code} is billed without modifier 25 on {day.service_date.isoformat()}, the "
                f"day of {_globals_text(sorted_day.minor, entry)}: a same-day visit, including "
                "the decision to perform the procedure, is part of the procedure's payment.",
                fix=(
                    f"Append 25 to {em.code} only if the visit was a significant, separately "
                    "identifiable E/M service beyond the usual pre-procedure assessment, and the note "
                    f"documents it; otherwise remove the {em.code} line."
                ),
                line=entry.line,
                related=related([i.entry for i in sorted_day.minor], entry.claim),
            )


    def _prior_visit(self, day: PatientDay, em: _Line, minor: list[_Line]) -> Iterable[Finding]:
        """An E/M without 25 billed in an earlier run, and tonight's 000/010 procedure of the
        same day: one finding on each of tonight's claims, on its first such procedure."""
        seen: set[tuple[str, int]] = set()
        for item in minor:
            entry = item.entry
            key = (entry.claim.file, entry.claim.index)
            if entry.prior is not None or key in seen:
                continue
            seen.add(key)
            yield self.finding(
                entry.claim,
                f"E/M {where(em.entry)} was billed without modifier 25 for this patient on "
                f"{day.service_date.isoformat()}, the day of this {entry.code} ({global_days(item.row)}-day global"
                f"{_provider_note(em.entry, entry)}): a same-day visit, including the decision to perform the "
                "procedure, is part of the procedure's payment, so the payer pairs the two and denies or "
                "recoups the visit.",
                fix=(
                    f"Correct claim {em.entry.claim.claim_id} first: if the visit was a significant, separately "
                    "identifiable E/M service and the note documents it, send a replacement claim (CLM05-3 = 7 "
                    f"with REF*F8) that appends 25 to {em.code}; otherwise void or replace it without the "
                    f"{em.code} line."
                ),
                line=entry.line,
                related=related([em.entry], entry.claim),
            )


def _same_physician_day(days: list[PatientDay], day: PatientDay, on: date) -> Optional[PatientDay]:
    """The day on ``on`` of the physician (or group-and-specialty partners) of ``day``."""
    mine = set().union(*(practice_identities(e) for e in day.entries))
    for other in days:
        if other.service_date == on and mine & set().union(*(practice_identities(e) for e in other.entries)):
            return other
    return None


@register
class Modifier57WithMinorProcedure(Rule):
    """Modifier 57 on an E/M where the procedure has a 0- or 10-day global period.

    What it checks:
        An E/M line with modifier 57 (decision for surgery) for a patient whose procedures
        by the same physician (or a partner of the same group and specialty, as in
        EPI-EM-001) on the same day, or the next day, all have 000 or 010 global periods
        (no 090-day procedure). Uses every day of the patient in the run, across claims and
        files. What could still change the verdict: a 090 global period for the procedure
        in the CMS PFS file of the date.

    Why payers deny it:
        57 applies only to the E/M that results in the decision for a major (090-day)
        surgery. "Payment may not be made for an E/M service billed with the 57 modifier if
        it was provided on the day of or the day before a procedure with a zero- or 10-day
        global surgical period." On the procedure day, a separately identifiable E/M takes
        25; on the day before a minor procedure the E/M needs no modifier.

    Failing example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["57"], pointers: [2], charge: 150}]}

    Corrected example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["25"], pointers: [2], charge: 150}]}

    Configuration:
        None beyond selection and severity overrides. A 57 E/M with no procedure in the run
        on that day or the next is not judged (the surgery may be billed later).

    Source:
        Medicare Claims Processing Manual ch. 12 sections 30.6.5, 30.6.6 and 40.2; CMS PFS
        relative value file (GLOB DAYS).
    """

    id = "EPI-EM-002"
    name = "modifier-57-with-minor-procedure"
    summary = "57 is for the decision for a 090-day surgery; with a 000/010 procedure use 25"
    category = Category.EM_25
    severity = Severity.ERROR
    scope = Scope.PATIENT
    source = "Medicare Claims Processing Manual ch. 12 sections 30.6.5, 30.6.6 and 40.2 (modifier 57)"
    status_code = STATUS

    def check(self, history: PatientHistory, ctx: RuleContext) -> Iterable[Finding]:
        days = practice_days(history)
        for day in days:
            if not day.has_own_entries:
                continue  # earlier nights' lines only: no claim of this run to report on
            today = _sort(day, ctx)
            with57 = [em for em in today.ems if "57" in em.modifiers]
            if not with57:
                continue
            tomorrow = _sort(_same_physician_day(days, day, day.service_date + timedelta(days=1)), ctx)
            if today.major or tomorrow.major:
                continue
            for em in with57:
                entry = em.entry
                if today.minor:
                    message = (
                        f"E/M {em.code} carries 57 (decision for surgery) on the day of "
                        f"{_globals_text(today.minor, entry)}: 57 applies only to major "
                        "(90-day global) surgery."
                    )
                    fix = (
                        f"Replace 57 with 25 on {em.code} if the visit was significant and separately "
                        "identifiable and documented; otherwise remove the E/M line."
                    )
                elif tomorrow.minor:
                    message = (
                        f"E/M {em.code} carries 57 (decision for surgery) the day before "
                        f"{_globals_text(tomorrow.minor, entry)} on "
                        f"{(day.service_date + timedelta(days=1)).isoformat()}: 57 applies only to "
                        "major (90-day global) surgery."
                    )
                    fix = (
                        f"Remove 57 from {em.code}: the day before a minor procedure is outside its "
                        "global period, so the visit needs no modifier."
                    )
                else:
                    continue
                yield self.finding(entry.claim, message, fix=fix, line=entry.line)


@register
class EM25SameDiagnosis(Rule):
    """E/M with 25 that points only at the procedure's diagnoses (audit target).

    What it checks:
        On a day with a 000/010-global procedure by the same physician (or a partner of the
        same group and specialty, as in EPI-EM-001), an E/M line with modifier 25 whose
        diagnosis pointers, resolved to ICD-10-CM codes through its claim's HI segment, are
        all among the diagnoses of the day's procedure lines (on any claim of the day). An
        E/M-25 that points at any other diagnosis passes.

    Why payers deny it:
        A different diagnosis is NOT required for 25 (NCCI Policy Manual ch. I section D):
        the test is significant, separately identifiable work. But an E/M-25 billed only for
        the condition being injected is the classic post-payment audit target; without a
        note that shows work beyond the pre-procedure assessment it is recouped.

    Failing example:
        claims:
          - {id: C1, dx: [M5416], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["25"], charge: 150}]}

    Corrected example:
        claims:
          - {id: C1, dx: [M5416, M25561], lines: [{code: "62323", charge: 500}, {code: "99214", modifiers: ["25"], pointers: [2], charge: 150}]}

    Configuration:
        A warning: it flags audit risk, not an invalid claim; whether the visit was
        separately identifiable is in the note, which no claim shows. Payers known to deny
        same-diagnosis E/M-25 can make it an error with a per-payer severity override.

    Source:
        NCCI Policy Manual for Medicare Services ch. I section D (a different diagnosis is
        not required); Medicare Claims Processing Manual ch. 12 section 40.1 (significant,
        separately identifiable E/M).
    """

    id = "EPI-EM-003"
    name = "em-25-same-diagnosis"
    summary = "E/M-25 with only the procedure's diagnoses is an audit target (warning)"
    category = Category.EM_25
    severity = Severity.WARNING
    scope = Scope.PATIENT
    source = "NCCI Policy Manual for Medicare Services ch. I section D; Medicare Claims Processing Manual ch. 12 section 40.1"
    status_code = STATUS

    def check(self, history: PatientHistory, ctx: RuleContext) -> Iterable[Finding]:
        for day in practice_days(history):
            # a day of earlier nights' lines only (claim history) has no claim of this run to report on
            if day.has_own_entries:
                yield from self._check_day(day, ctx)

    def _check_day(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        sorted_day = _sort(day, ctx)
        if not sorted_day.minor:
            return
        procedure_dx: set[str] = set()
        for item in sorted_day.minor:
            procedure_dx |= pointed_diagnoses(item.entry.claim, item.entry.line)
        for em in sorted_day.ems:
            if "25" not in em.modifiers:
                continue
            entry = em.entry
            em_dx = pointed_diagnoses(entry.claim, entry.line)
            if not em_dx or not em_dx <= procedure_dx:
                continue
            yield self.finding(
                entry.claim,
                f"E/M {em.code}-25 points only at {listing(sorted(em_dx))}, the diagnosis of "
                f"{listing([where(i.entry, entry.claim) for i in sorted_day.minor])}. A different "
                "diagnosis is not required for modifier 25, but a same-diagnosis E/M-25 is a common "
                "audit target.",
                fix=(
                    "Make sure the note documents significant, separately identifiable E/M work beyond "
                    "the usual pre-procedure assessment; if the visit also addressed another problem, "
                    "add that diagnosis and point the E/M line at it."
                ),
                line=entry.line,
                related=related([i.entry for i in sorted_day.minor], entry.claim),
            )


#: CPT 2023 E/M revision: what replaced the deleted observation codes (initial, subsequent,
#: discharge observation care merged into the hospital inpatient or observation codes)
OBSERVATION_REPLACEMENTS = {
    "99217": "99238-99239 (hospital inpatient or observation discharge)",
    "99218": "99221-99223 (initial hospital inpatient or observation care)",
    "99219": "99221-99223 (initial hospital inpatient or observation care)",
    "99220": "99221-99223 (initial hospital inpatient or observation care)",
    "99224": "99231-99233 (subsequent hospital inpatient or observation care)",
    "99225": "99231-99233 (subsequent hospital inpatient or observation care)",
    "99226": "99231-99233 (subsequent hospital inpatient or observation care)",
}
#: what Medicare pays instead of a consultation code (CR 6740, 2010)
MEDICARE_CONSULT_REPLACEMENTS = {
    "em-consult-office": "the office/outpatient visit codes (99202-99205 new, 99212-99215 established)",
    "em-consult-inpatient": (
        "the hospital inpatient or observation care codes (99221-99223 initial, 99231-99233 subsequent)"
    ),
}


def code_ranges(codes: Iterable[str]) -> str:
    """``99202-99205`` for consecutive numeric codes, comma-separated otherwise."""
    ordered = sorted(set(codes))
    parts: list[str] = []
    start = prev = None
    for code in ordered + [None]:
        if code is not None and prev is not None and code.isdigit() and prev.isdigit() and int(code) == int(prev) + 1:
            prev = code
            continue
        if start is not None:
            parts.append(start if start == prev else f"{start}-{prev}")
        start = prev = code
    return ", ".join(parts)


@register
class DeletedOrNonPayableEM(Rule):
    """Deleted E/M codes by date of service; consultation codes billed to Medicare.

    What it checks:
        An E/M code (``is_em`` in procedure_codes.csv) whose row was deleted before the
        line's date of service: 99201 (from 2021-01-01), 99241 and 99251 (from 2023-01-01),
        the observation codes 99217-99220 and 99224-99226 (from 2023-01-01). The fix names
        the codes that replaced it. And, on Medicare claims, the consultation codes
        99242-99245 and 99252-99255, which Medicare does not pay.

        What could still change the verdict: for the deletion branch, the exact deletion
        date where the bundled row has not been checked against the CMS file (``verified``
        column). The deletion itself is certain and CPT deletes codes only at its annual
        update, so a date of service more than a year after the recorded deletion date is
        an error; one within that year is a warning that asks to confirm the date. The
        consultation branch is certain for Medicare (SBR09 = MB), so it is an error there;
        other payers may pay consultations and are not judged.

    Why payers deny it:
        A code deleted from CPT is invalid for later dates of service (277CA 454). Medicare
        stopped paying consultation codes on 2010-01-01 (CR 6740); a consultation is billed
        with the office/outpatient or hospital E/M codes.

    Failing example:
        claims:
          - {id: C1, date: "2025-03-03", lines: [{code: "99201", charge: 120}]}

    Corrected example:
        claims:
          - {id: C1, date: "2025-03-03", lines: [{code: "99202", charge: 120}]}

    Configuration:
        None beyond selection and severity overrides. Load the CMS PFS relative value file
        with ``--rules`` to judge deletions by CMS's own rows. Deleted non-E/M procedure
        codes are the code-validity edits' business.

    Source:
        CPT 2021 E/M revision (99201 deleted); CPT 2023 E/M revision (99241, 99251,
        99217-99220, 99224-99226 deleted); CMS CR 6740 / MLN Matters MM6740 (consultation
        codes not paid from 2010-01-01); Medicare Claims Processing Manual ch. 12 section
        30.6.10.
    """

    id = "EPI-EM-004"
    name = "deleted-or-non-payable-em"
    summary = "Deleted E/M codes by date of service; consultation codes to Medicare"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.LINE
    source = (
        "CPT 2021 and 2023 E/M revisions (deleted codes); CMS CR 6740 / MLN Matters MM6740 and "
        "Medicare Claims Processing Manual ch. 12 section 30.6.10 (no Medicare payment for consultation codes)"
    )
    status_code = "A7:454"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        code, day = line.procedure_code, line.service_date
        if day is None:
            return
        latest = procedure_any_date(ctx, code, day)
        if not is_em(latest):
            return
        active = procedure(ctx, code, day)
        if active is None:
            yield from self._deleted(claim, line, latest, ctx)
            return
        consult = MEDICARE_CONSULT_REPLACEMENTS.get(family(active))
        if consult and claim.is_medicare:
            yield self.finding(
                claim,
                f"{code} is a consultation code: Medicare does not pay consultation codes (since 2010).",
                fix=f"Bill the visit with {consult}, by setting and level of service.",
                line=line,
            )

    def _deleted(self, claim, line, row: dict, ctx: RuleContext) -> Iterable[Finding]:
        code, day = line.procedure_code, line.service_date
        deleted: Optional[date] = row.get("deleted")
        if deleted is None or day <= deleted:
            return  # not yet effective on this date: not a deletion
        replacement = OBSERVATION_REPLACEMENTS.get(code)
        if replacement is None:
            table = ctx.tables.get("procedure_codes")
            siblings = [r["code"] for r in table.lookup(day, family=family(row)) if is_em(r)]
            replacement = code_ranges(siblings) if siblings else ""
        fix = (
            f"Report the code in force on {day.isoformat()}: {replacement}."
            if replacement else f"Report the E/M code in force on {day.isoformat()}."
        )
        if family(row) in MEDICARE_CONSULT_REPLACEMENTS and claim.is_medicare:
            fix += f" For Medicare, which does not pay consultations, use {MEDICARE_CONSULT_REPLACEMENTS[family(row)]}."
        # CPT adds and deletes codes at its annual update, so a deletion date not checked
        # against the CMS file can be wrong by at most one annual cycle: past that, it is certain.
        certain = is_verified(row) or day > one_cycle_after(deleted)
        unverified = (
            "" if certain
            else " This date of service is within a year of the recorded deletion date: confirm the "
            "code's deletion date in the CMS PFS relative value file for the date."
        )
        yield self.finding(
            claim,
            f"E/M code {code} was deleted after {deleted.isoformat()} and is not valid on the date "
            f"of service {day.isoformat()}." + unverified,
            fix=fix,
            line=line,
            severity=Severity.ERROR if certain else severity_for([row]),
        )


@register
class Modifier25WithoutProcedure(Rule):
    """Modifier 25 on an E/M with no global-period procedure that day.

    What it checks:
        An E/M line with modifier 25 on a day of the patient (across claims and files) on
        which the same physician, or a partner of the same group and specialty (as in
        EPI-EM-001), bills no procedure with a global surgical period (000, 010 or 090; ZZZ
        add-ons count through their primary). Days where another line's code is unknown to
        the procedure table are not judged.

    Why payers deny it:
        25 separates an E/M from the global package of a same-day procedure. With no such
        procedure the modifier has nothing to separate: it usually means the procedure was
        billed under another rendering provider or date (so the edits that pair them cannot
        see it), or 25 is appended by habit, which payers profile in audits.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "99214", modifiers: ["25"], charge: 150}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "99214", charge: 150}]}

    Configuration:
        A warning. When the day has services without a global period (XXX, e.g. 96372),
        the message names them: an NCCI edit pairing the E/M with such a service may still
        call for 25 (the PTP check reports that).

    Source:
        CPT Appendix A modifier 25; NCCI Policy Manual ch. I section D; Medicare Claims
        Processing Manual ch. 12 sections 30.6.5 and 40.
    """

    id = "EPI-EM-005"
    name = "modifier-25-without-procedure"
    summary = "Modifier 25 on an E/M with no 000/010/090-global procedure that day"
    category = Category.EM_25
    severity = Severity.WARNING
    scope = Scope.PATIENT
    source = E_M_SOURCE
    status_code = STATUS

    def check(self, history: PatientHistory, ctx: RuleContext) -> Iterable[Finding]:
        for day in practice_days(history):
            # a day of earlier nights' lines only (claim history) has no claim of this run to report on
            if day.has_own_entries:
                yield from self._check_day(day, ctx)

    def _check_day(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        sorted_day = _sort(day, ctx)
        if sorted_day.minor or sorted_day.major or sorted_day.unknown:
            return
        for em in sorted_day.ems:
            if "25" not in em.modifiers:
                continue
            entry = em.entry
            others = [o for o in sorted_day.other]
            also = (
                f" Other services that day ({listing([where(o.entry, entry.claim) for o in others])}) "
                "have no global surgical period."
                if others else ""
            )
            yield self.finding(
                entry.claim,
                f"E/M {em.code} carries modifier 25, but no procedure with a global period is billed "
                f"for this patient on {day.service_date.isoformat()} by this rendering provider or a "
                "partner of the same group and specialty."
                + also,
                fix=(
                    f"Remove 25 from {em.code}, unless the procedure was billed under another rendering "
                    "provider or date by mistake (correct that instead), or an NCCI edit pairs the E/M "
                    "with another service of the day."
                ),
                line=entry.line,
                related=related([o.entry for o in others], entry.claim),
            )
