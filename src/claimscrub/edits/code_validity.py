"""Code validity by date of service: diagnosis codes, the diagnosis code set, procedure codes.

* EPI-DX-001: an ICD-10-CM diagnosis not valid, or not billable (a header), on the dates
  of service of the lines that point at it (:mod:`claimscrub.icd10`: the release in force on
  each date, from the CDC/CMS release files given with ``--rules``, else the release bundled
  by simple-icd-10-cm plus ``edits/icd10_changes.csv``).
* EPI-DX-002: the diagnosis code set (ICD-9-CM qualifiers BK/BF, ICD-10-CM ABK/ABF) does not
  match the dates of service, or one claim mixes both.
* EPI-CODE-001: a procedure code deleted (or not yet in effect) on the line's date of
  service, per ``edits/procedure_codes.csv``; E/M codes are left to EPI-EM-004.
* EPI-SYN-001: a procedure code (qualifier HC) that is not shaped like a CPT/HCPCS code at
  all, so no table can know it.

A procedure code that no table knows is not judged here: EPI-TBL-001 reports it as
unchecked (a malformed one is also reported by EPI-SYN-001, which says why).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Iterable, Optional

from claimscrub import icd10
from claimscrub.edits._codebook import (
    EPIDUROGRAPHY,
    INTERLAMINAR,
    TRANSFORAMINAL,
    family,
    flag,
    is_em,
    is_verified,
    listing,
    one_cycle_after,
    procedure,
    procedure_any_date,
)
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.icd10 import ICD10_START, Judgement, Verdict, dotted
from claimscrub.model import Claim, Diagnosis

ICD9_QUALIFIERS = ("BK", "BF")
ICD10_QUALIFIERS = ("ABK", "ABF")
PRINCIPAL_QUALIFIERS = ("BK", "ABK")

#: how many replacement codes a fix names before "and N more"
LIST_AT_MOST = 6


def _is_principal(dx: Diagnosis) -> bool:
    return dx.position == 1 or dx.qualifier in PRINCIPAL_QUALIFIERS


def _dx_status(dx: Diagnosis) -> str:
    """277CA: 254 principal diagnosis code, 255 diagnosis code (domain-rules.md 10.2)."""
    return "A7:254" if _is_principal(dx) else "A7:255"


def _named(code: str) -> str:
    """``M54.50 (Low back pain, unspecified)``, or just the dotted code."""
    title = icd10.description(code)
    return f"{dotted(code)} ({title})" if title else dotted(code)


def _codes_text(codes: list[str], described: bool = True) -> str:
    shown = codes[:LIST_AT_MOST]
    words = [_named(c) if described else dotted(c) for c in shown]
    text = listing(words) if len(codes) <= LIST_AT_MOST else ", ".join(words)
    if len(codes) > LIST_AT_MOST:
        text += f" and {len(codes) - LIST_AT_MOST} more"
    return text


def _dates_text(days: list[date]) -> str:
    return listing([d.isoformat() for d in days])


#: an unconfirmed change date lowers the verdict to a warning only for dates of service this
#: close to it: ICD-10-CM changes once or twice a fiscal year, so a date more than one annual
#: cycle away from the recorded change is on the same side of the real one.
UNCONFIRMED_MARGIN_MONTHS = 12


def _dx_severity(judgement: Judgement) -> tuple[Severity, str]:
    """The severity of a finding that rests on ``judgement``, and what the message adds."""
    change = judgement.change
    if judgement.basis == "changes" and change is not None and not change.verified:
        effective, day = change.effective, judgement.day
        if day >= effective:
            close = day <= icd10.add_months(effective, UNCONFIRMED_MARGIN_MONTHS)
        else:
            close = day >= icd10.add_months(effective, -UNCONFIRMED_MARGIN_MONTHS)
        if close:
            return Severity.WARNING, (
                f" The date this change took effect ({effective.isoformat()}) is not yet confirmed against the "
                f"ICD-10-CM release of that fiscal year, and the date of service is within "
                f"{UNCONFIRMED_MARGIN_MONTHS} months of it, so this is a warning: confirm the code in the "
                "ICD-10-CM code set in force on the date of service (or load that release with --rules)."
            )
        return Severity.ERROR, (
            f" The exact date of this change ({effective.isoformat()}) is not confirmed, but the date of service "
            f"is more than {UNCONFIRMED_MARGIN_MONTHS} months from it, which an uncertain date cannot change."
        )
    if judgement.basis == "release" and not judgement.loaded and not judgement.in_window:
        release = judgement.release
        note = (f" Judged by {release.name}, in force {release.window()}: no ICD-10-CM release loaded covers the "
                "date of service and the code-set changes table lists no change for this code.")
        if judgement.verdict is Verdict.UNKNOWN and judgement.day > release.ends:
            return Severity.WARNING, note + (
                " It may be a code added by a later release, so this is a warning: confirm it in the ICD-10-CM "
                "code set in force on the date of service (or load that release with --rules)."
            )
        return Severity.ERROR, note
    return Severity.ERROR, ""


@register
class DiagnosisValidForDate(Rule):
    """ICD-10-CM diagnosis not valid, or not billable, on the date of service.

    What it checks:
        Every ICD-10-CM diagnosis of the claim (HI qualifiers ABK/ABF) on each date of
        service of the lines that point at it (SV107), or on the claim's earliest line date
        when no line points at it. The code must exist on that date and be billable: a
        category or subcategory with subcodes (a header, such as M50.12, M51.36 since FY2025,
        M54.5 since FY2022) cannot be reported. Each date is judged by the ICD-10-CM release
        in force on it: the CDC/CMS release files loaded with ``--rules DIR`` (order file or
        code list of each fiscal year, and the April update from April 1), and the message
        names the release. For a date between two loaded releases that give the code the
        same state, that state holds. For any other date the release bundled with
        claimscrub (FY2026, April 1, 2026 update; the report's table versions list it as
        ``icd10cm``) is combined with the code-set changes recorded for this specialty
        (``icd10_changes``): M54.5 is billable on 2021-09-30 and a header from 2021-10-01,
        replaced by M54.50/M54.51/M54.59. ICD-9-CM qualifiers and dates before 2015-10-01
        are EPI-DX-002's.

        What could still change the verdict: on a date that a loaded release covers,
        nothing (the release in force is the code set). On other dates, a change in a
        fiscal year whose release is not loaded: a code the changes table does not list is
        judged as it stands in the bundled FY2026 release, and a recorded change whose date
        is not confirmed against that year's release (M50.12, M51.36, M51.37) could have
        taken effect on another date; ICD-10-CM changes once or twice a year, so this
        matters only for dates of service within 12 months of the recorded date. Load the
        releases of the dates you bill with ``--rules`` to remove both doubts.

    Why payers deny it:
        A claim whose diagnosis is not a valid, billable code for the date of service is
        rejected at the front end (277CA A7:254 for the principal diagnosis, A7:255 for
        another) before adjudication; the whole claim comes back.

    Failing example:
        claims:
          - {id: C1, date: "2021-10-01", dx: [M545], lines: [{code: "62323", charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, date: "2021-10-01", dx: [M5416], lines: [{code: "62323", charge: 500}]}

    Configuration:
        An error when a loaded release in force on the date decides, when two loaded
        releases around the date agree, when the bundled release decides, and when a
        recorded change with a confirmed date decides. A recorded change whose date is not
        confirmed against its fiscal year's release gives a warning only for dates of
        service within 12 months of it (M51.36 on 2025-01-06 is a warning without the FY2025
        release loaded, an error with it; on 2025-10-20 an error either way). A code that no
        release knows, billed for a date after the bundled release's window, is a warning
        (it may be a code of a later release). Give the CDC/CMS files
        (``icd10cm-order-YYYY.txt``, ``icd10cm-codes-YYYY.txt``, or their ZIP) with
        ``--rules DIR``; a table named ``icd10_changes`` there replaces the recorded changes.

    Source:
        ICD-10-CM official code set (CDC/NCHS and CMS) of the fiscal year in force on the
        date of service, and its addenda (M54.5 expanded into M54.50/M54.51/M54.59 in FY2022,
        effective 2021-10-01; M51.36/M51.37 expanded in FY2025); ICD-10-CM Official
        Guidelines for Coding and Reporting, section I.B.3 (report codes to the highest
        number of characters available); 277CA claim status codes 254/255.
    """

    id = "EPI-DX-001"
    name = "diagnosis-valid-for-date"
    summary = "ICD-10-CM diagnosis must be valid and billable on the date of service"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.CLAIM
    source = f"{icd10.CODE_SET} in force on the date of service; {icd10.GUIDELINES}"
    status_code = "A7:255"

    def check(self, claim: Claim, ctx: RuleContext) -> Iterable[Finding]:
        codes = icd10.code_set_for(ctx.tables)
        line_dates = sorted({line.service_date for line in claim.lines if line.service_date is not None})
        if not line_dates:
            return  # EPI-SYN-003 reports the missing dates
        for dx in claim.diagnoses:
            if dx.qualifier not in ICD10_QUALIFIERS or not dx.code:
                continue
            days = sorted({
                line.service_date for line in claim.lines
                if line.service_date is not None and dx.position in line.diagnosis_pointers
            }) or line_dates[:1]
            days = [d for d in days if d >= ICD10_START]  # earlier dates: EPI-DX-002
            failing: dict[tuple, list[tuple[Judgement, Severity, str]]] = {}
            for day in days:
                if codes.is_billable(dx.code, day):
                    continue
                verdict = codes.judge(dx.code, day)
                if not verdict.billable:
                    severity, note = _dx_severity(verdict)
                    key = (verdict.verdict, verdict.basis, verdict.change, verdict.in_window,
                           verdict.release, verdict.other, severity, note)
                    failing.setdefault(key, []).append((verdict, severity, note))
            for group in failing.values():
                yield self._finding(claim, dx, group, codes)

    def _finding(self, claim: Claim, dx: Diagnosis, group: list[tuple[Judgement, Severity, str]],
                 codes: icd10.CodeSet) -> Finding:
        first, severity, note = group[0]
        days = [j.day for j, _, _ in group]
        on = f"on the date{'s' if len(days) > 1 else ''} of service {_dates_text(days)}"
        which = "principal diagnosis" if _is_principal(dx) else f"diagnosis {dx.position}"
        code = dotted(dx.code)
        release, other, change = first.release, first.other, first.change
        verdict = first.verdict
        instead = list(first.instead)
        if first.loaded:
            by = f"{release.name}, the release in force then"
        elif first.basis == "between":
            by = (f"{release.name} and {other.name}, the releases loaded before and after that date, which "
                  "agree on this code")
        else:
            by = release.name
        if verdict is Verdict.HEADER:
            choose = "Report the specific code the record supports"
            if change is None or not instead:
                instead = codes.billable_descendants(dx.code, max(days), limit=LIST_AT_MOST + 1)
                if len(instead) > LIST_AT_MOST:
                    # many codes below: name the subcategories to choose from instead
                    instead = codes.children(dx.code, max(days))
                    choose = "Report the specific billable code the record supports, under one of its subcategories"
            if change is not None:
                what = (f"{_named(dx.code)} is not billable {on}: from {change.effective.isoformat()} it is a "
                        f"category header, expanded into more specific codes")
            else:
                what = f"{_named(dx.code)} is a category header, not a billable code, {on} in {by}"
            fix = (f"{choose}: {_codes_text(instead)}."
                   if instead else "Report the most specific code under this category.")
        elif verdict is Verdict.DELETED:
            if change is not None:
                what = (f"{_named(dx.code)} was deleted from ICD-10-CM effective {change.effective.isoformat()}; "
                        f"it is not valid {on}")
            else:
                what = (f"{_named(dx.code)} is not in {by}, {on}; it was in {other.name}, so it was deleted "
                        "by then")
            fix = (f"Report the code in force on the date of service: {_codes_text(instead)}."
                   if instead else "Report the code in force on the date of service.")
        elif verdict is Verdict.NOT_YET:
            if change is not None:
                since = change.effective.isoformat()
                what = f"{code} took effect on {since}; it is not valid {on}"
            elif first.basis == "between":
                since = f"the date {other.name} took effect ({other.effective.isoformat()})"
                what = (f"{code} is not in {release.name} (in force from {release.effective.isoformat()}), the "
                        f"first release loaded after the date of service; it appears in {other.name}, so it was "
                        f"not valid {on}")
            else:
                since = ""
                what = (f"{code} is not in {by}, {on}: a later release added it (it is in {other.name}, in "
                        f"force from {other.effective.isoformat()})")
            if instead and not since:
                fix = f"Report the code in force on the date of service in {release.name}: {_codes_text(instead)}."
            elif instead:
                fix = f"For services before {since} report {_codes_text(instead)}."
            else:
                fix = f"Report the code in force on the date of service ({code} is not yet valid)."
        else:
            what = f"{code} is not an ICD-10-CM code in {by}; it is not valid {on}"
            fix = "Check the code for a typo and report the valid, most specific ICD-10-CM code the record supports."
        message = f"The {which} {what}.{note}"
        if change is not None and change.source:
            source = f"{change.source}; {icd10.GUIDELINES}"
        elif first.basis == "between":
            source = f"{release.citation} and {other.citation}; {icd10.GUIDELINES}"
        elif release is not None:
            source = f"{release.citation}; {icd10.GUIDELINES}"
        else:
            source = self.source
        return self.finding(
            claim, message, fix=fix, segment=claim.hi_pos or dx.pos, severity=severity,
            source=source, status_code=_dx_status(dx),
        )


@register
class DiagnosisCodeSet(Rule):
    """Diagnosis code set (ICD-9-CM or ICD-10-CM) does not match the dates of service.

    What it checks:
        The HI qualifiers of the claim: ICD-9-CM (BK principal, BF other) on a claim with a
        line dated on or after 2015-10-01; ICD-10-CM (ABK, ABF) on a claim with a line dated
        before 2015-10-01; and ICD-9-CM and ICD-10-CM qualifiers mixed on one claim (then
        that is the one finding, and its fix says which code set the dates call for).

        What could still change the verdict: nothing that is uncertain. The compliance date
        is fixed by regulation, and the qualifiers name the code set; a claim whose dates of
        service are wrong is reported by EPI-SYN-003, not here.

    Why payers deny it:
        ICD-10-CM replaced ICD-9-CM for services on and after October 1, 2015; a claim is
        coded in the one code set in force on its dates of service, and a claim whose
        services straddle that date is split. Anything else is rejected at the front end
        (277CA A7:254 / A7:255).

    Failing example:
        claims:
          - {id: C1, date: "2015-10-01", dx: ["7242"], dx_qualifier: BK, lines: [{code: "62311", charge: 400}]}

    Corrected example:
        claims:
          - {id: C1, date: "2015-10-01", dx: [M5416], lines: [{code: "62311", charge: 400}]}

    Configuration:
        None. ICD-9-CM codes themselves are not looked up (the scrubber carries no ICD-9-CM
        code set); EPI-DX-001 judges ICD-10-CM codes on dates from 2015-10-01.

    Source:
        HHS final rule CMS-0043-F (ICD-10 compliance date October 1, 2015; 45 CFR 162.1002);
        ASC X12 005010X222A1 2300 HI01-1 qualifiers BK/BF (ICD-9-CM) and ABK/ABF
        (ICD-10-CM); 277CA claim status codes 254/255.
    """

    id = "EPI-DX-002"
    name = "diagnosis-code-set"
    summary = "ICD-9-CM qualifiers (BK/BF) only before 2015-10-01, ICD-10-CM (ABK/ABF) from then; never mixed"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.CLAIM
    source = (
        "HHS CMS-0043-F (ICD-10-CM from 2015-10-01; 45 CFR 162.1002); ASC X12 005010X222A1 "
        "2300 HI01-1 qualifiers BK/BF and ABK/ABF"
    )
    status_code = "A7:255"

    def check(self, claim: Claim, ctx: RuleContext) -> Iterable[Finding]:
        icd9 = [dx for dx in claim.diagnoses if dx.qualifier in ICD9_QUALIFIERS]
        icd10_dx = [dx for dx in claim.diagnoses if dx.qualifier in ICD10_QUALIFIERS]
        days = sorted({line.service_date for line in claim.lines if line.service_date is not None})
        segment = claim.hi_pos
        start = ICD10_START.isoformat()
        if icd9 and icd10_dx:
            late = [d for d in days if d >= ICD10_START]
            if late and len(late) < len(days):
                wanted = f"the dates of service straddle {start}: split the claim by date"
            elif late:
                wanted = f"for services on or after {start} code every diagnosis in ICD-10-CM (ABK principal, ABF others)"
            else:
                wanted = f"for services before {start} code every diagnosis in ICD-9-CM (BK principal, BF others)"
            yield self.finding(
                claim,
                f"The claim mixes ICD-9-CM qualifiers ({listing(sorted({d.qualifier for d in icd9}))}) and "
                f"ICD-10-CM qualifiers ({listing(sorted({d.qualifier for d in icd10_dx}))}) in its diagnoses.",
                fix=f"One claim uses one code set: {wanted}.",
                segment=segment,
                status_code=_dx_status(min(icd9 + icd10_dx, key=lambda d: d.position)),
            )
            return
        late = [d for d in days if d >= ICD10_START]
        if icd9 and late:
            yield self.finding(
                claim,
                f"ICD-9-CM diagnosis qualifiers (BK/BF) are used with the date{'s' if len(late) > 1 else ''} of "
                f"service {_dates_text(late)}; ICD-9-CM is not valid for services on or after {start}.",
                fix=("Recode the diagnoses in ICD-10-CM with qualifiers ABK (principal) and ABF (others)"
                     + ("; split the claim so services before and after that date are billed apart." if late != days else ".")),
                segment=segment,
                status_code=_dx_status(min(icd9, key=lambda d: d.position)),
            )
        early = [d for d in days if d < ICD10_START]
        if icd10_dx and early:
            yield self.finding(
                claim,
                f"ICD-10-CM diagnosis qualifiers (ABK/ABF) are used with the date{'s' if len(early) > 1 else ''} "
                f"of service {_dates_text(early)}; ICD-10-CM applies to services on or after {start}.",
                fix=("Code services before that date in ICD-9-CM (BK principal, BF others)"
                     + ("; split the claim so services before and after that date are billed apart." if early != days else ".")),
                segment=segment,
                status_code=_dx_status(min(icd10_dx, key=lambda d: d.position)),
            )


# -- procedure codes -----------------------------------------------------------------------

_DELETED_SUFFIX = "-deleted"


def _base_family(row: dict) -> str:
    name = family(row)
    return name[: -len(_DELETED_SUFFIX)] if name.endswith(_DELETED_SUFFIX) else name


def _same_kind(a: dict, b: dict) -> bool:
    return (_base_family(a) == _base_family(b) and str(a.get("region", "")) == str(b.get("region", ""))
            and flag(a, "catheter") == flag(b, "catheter"))


def _successors(table, row: dict) -> list[dict]:
    """Codes the table records as replacing ``row``: same family (less '-deleted'), region
    and catheter type, in force from the day after ``row`` was deleted."""
    deleted: Optional[date] = row.get("deleted")
    if deleted is None:
        return []
    return [r for r in table.rows if r.get("effective") == deleted + timedelta(days=1)
            and r["code"] != row["code"] and _same_kind(r, row)]


def _predecessors(table, row: dict) -> list[dict]:
    effective: Optional[date] = row.get("effective")
    if effective is None:
        return []
    return [r for r in table.rows if r.get("deleted") == effective - timedelta(days=1)
            and r["code"] != row["code"] and _same_kind(r, row)]


def _describe_codes(rows: list[dict]) -> str:
    """``62323 (with imaging guidance) or 62322 (without imaging guidance)``."""
    ordered = sorted(rows, key=lambda r: (not flag(r, "imaging"), r["code"]))
    parts = []
    for r in ordered:
        detail = "with imaging guidance, fluoroscopy or CT, included" if flag(r, "imaging") else "without imaging guidance"
        if flag(r, "catheter"):
            detail = "indwelling catheter, " + detail
        parts.append(f"{r['code']} ({detail})")
    return " or ".join(parts)


@register
class ProcedureCodeValidForDate(Rule):
    """Procedure code deleted (or not yet in effect) on the date of service.

    What it checks:
        Each line's procedure code against its rows in ``edits/procedure_codes.csv`` (or a
        table of that name given with ``--rules``): a code whose rows all ended before the
        line's date of service is deleted for that date (62310, 62311, 62318 and 62319
        after 2016-12-31; 72275 after the deletion date in its row). A code that replaced
        deleted codes (62320-62327 from 2017-01-01) billed for a date before it took effect
        is reported too, naming the code then in force. E/M codes are left to EPI-EM-004,
        codes the table does not know to EPI-TBL-001.

        What could still change the verdict: only the exact deletion date, where the
        bundled row has not been checked against the CMS file and records no replacement.
        The deletion itself is certain and CPT deletes codes at its annual update, so such a
        row gives an error once the date of service is more than a year past the recorded
        date, and a warning that asks to confirm the date within that year. A deletion
        recorded as a replacement (successor codes of the same family, region and catheter
        type in force from the next day, as in the CPT 2017 restructuring) or a verified row
        is an error.

    Why payers deny it:
        A procedure code must be valid in the CPT/HCPCS code set on the date of service; a
        deleted code is rejected at the front end (277CA A7:454) and the claim must be
        rebilled with the current code. 62310-62319 were replaced on 2017-01-01 by
        62320-62327, split by region, imaging guidance and catheter.

    Failing example:
        claims:
          - {id: C1, date: "2017-01-01", lines: [{code: "62311", charge: 400}]}

    Corrected example:
        claims:
          - {id: C1, date: "2017-01-01", lines: [{code: "62323", charge: 400}]}

    Configuration:
        None beyond selection and severity overrides. Load the CMS PFS relative value file
        with ``--rules`` to judge other codes.

    Source:
        CPT 2017 code set (62320-62327 replace 62310, 62311, 62318, 62319); CMS PFS relative
        value files (72275 absent from 2022-01-01) and CMS NCCI PTP edits with 72275 ending
        2021-12-31; 277CA claim status code 454.
    """

    id = "EPI-CODE-001"
    name = "procedure-valid-for-date"
    summary = "Procedure code deleted (or not yet in effect) on the date of service (62310-62319 after 2016)"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "CPT/HCPCS code set by date of service (CPT 2017: 62320-62327 replace 62310-62319); CMS PFS relative value files"
    status_code = "A7:454"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        code, day = line.procedure_code, line.service_date
        if day is None or not code or procedure(ctx, code, day) is not None:
            return
        row = procedure_any_date(ctx, code, day)
        if row is None or is_em(row):
            return  # unknown: EPI-TBL-001; E/M: EPI-EM-004
        table = ctx.tables.get("procedure_codes")
        deleted: Optional[date] = row.get("deleted")
        effective: Optional[date] = row.get("effective")
        if deleted is not None and day > deleted:
            yield from self._deleted(claim, line, row, table, ctx)
        elif effective is not None and day < effective:
            yield from self._not_yet(claim, line, row, table)

    def _deleted(self, claim, line, row: dict, table, ctx: RuleContext) -> Iterable[Finding]:
        code, day = line.procedure_code, line.service_date
        deleted = row["deleted"]
        successors = _successors(table, row)
        replaced = bool(successors)
        # the deletion is certain; a date not checked against CMS is off by one annual cycle at most
        certain = replaced or is_verified(row) or day > one_cycle_after(deleted)
        severity = Severity.ERROR if certain else Severity.WARNING
        message = (f"{code} was deleted from the CPT/HCPCS code set after {deleted.isoformat()}; it is not "
                   f"valid on the date of service {day.isoformat()}.")
        if replaced:
            fix = f"Report the code that replaced it, by imaging guidance: {_describe_codes(successors)}."
            if any(flag(r, "imaging") for r in successors):
                fix += " Imaging guidance is included in the with-imaging code: do not add 77003/77012."
        elif family(row) == EPIDUROGRAPHY:
            included = sorted({r["code"] for r in table.active(day)
                               if family(r) in (INTERLAMINAR, TRANSFORAMINAL) and flag(r, "imaging")})
            fix = ("Remove the 72275 line: the contrast study is part of the with-imaging epidural code "
                   f"({', '.join(included)}).")
        else:
            fix = f"Report the code in force on {day.isoformat()} (check the CPT/HCPCS code set)."
        if severity is Severity.WARNING:
            message += (" This date of service is within a year of the recorded deletion date: confirm the "
                        "code's deletion date in the CMS PFS relative value file for the date.")
        yield self.finding(claim, message, fix=fix, line=line, severity=severity)

    def _not_yet(self, claim, line, row: dict, table) -> Iterable[Finding]:
        # Effective dates are reliable only where the table records a replacement; other
        # rows carry placeholder start dates, so a code is not judged before its row starts.
        predecessors = _predecessors(table, row)
        if not predecessors:
            return
        code, day = line.procedure_code, line.service_date
        yield self.finding(
            claim,
            f"{code} took effect on {row['effective'].isoformat()}; it is not valid on the date of service "
            f"{day.isoformat()}.",
            fix=(f"For services before {row['effective'].isoformat()} report "
                 f"{listing([r['code'] for r in predecessors])}, the code then in force."),
            line=line,
        )


#: CPT Category I (5 digits), Category II (4 digits + F), Category III (4 digits + T), PLA
#: (4 digits + U), composite measures (4 digits + M), HCPCS Level II (letter + 4 digits).
CPT_HCPCS_SHAPE = re.compile(r"^(?:[0-9]{4}[0-9FTUM]|[A-Z][0-9]{4})$")


@register
class ProcedureCodeShape(Rule):
    """Procedure code is not shaped like a CPT/HCPCS code.

    What it checks:
        For lines whose procedure qualifier (SV101-1) is HC, that the code (SV101-2) has the
        shape of a CPT or HCPCS code: five characters, either five digits, four digits and
        F/T/U/M (CPT Category II/III, PLA, measures) or a letter and four digits (HCPCS Level
        II); the reader upper-cases the code first. This edit adds what EPI-CODE-001 cannot
        see: a code that no table could ever know. Whether a well-formed code exists is the tables' business (EPI-CODE-001 for
        deleted codes, EPI-TBL-001 for codes no table knows); the qualifier itself (HC, ER,
        IV, WK) is checked by implementation-guide validation (X12-IG-001, pyx12 code
        list), and other qualifiers are not judged.

    Why payers deny it:
        A procedure code that is not in the CPT/HCPCS code set cannot be priced or
        adjudicated: the line is rejected at the front end (277CA A7:454). A malformed code
        usually means a typing or practice-management mapping error (a dropped digit, a
        description in the code field, a space).

    Failing example:
        claims:
          - {id: C1, lines: [{code: "6232", charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None.

    Source:
        AMA CPT code format (Category I five digits; Category II ####F; Category III ####T;
        PLA ####U); CMS HCPCS Level II code format (one letter, four digits); ASC X12
        005010X222A1 2400 SV101 (C003) with qualifier HC; 277CA claim status code 454.
    """

    id = "EPI-SYN-001"
    name = "procedure-code-shape"
    summary = "Procedure code (qualifier HC) must have the shape of a CPT/HCPCS code"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.LINE
    source = "AMA CPT and CMS HCPCS Level II code formats; ASC X12 005010X222A1 2400 SV101 (qualifier HC)"
    status_code = "A7:454"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        code = line.procedure_code
        if line.procedure_qualifier != "HC" or not code or CPT_HCPCS_SHAPE.match(code):
            return
        yield self.finding(
            claim,
            f"Procedure code {code!r} is not a CPT or HCPCS code: those are five characters (five digits, "
            "four digits and F/T/U/M, or a letter and four digits).",
            fix="Correct the procedure code in SV101-2 (check for a dropped or extra character or a space).",
            line=line,
        )
