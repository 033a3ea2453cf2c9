"""Imaging codes billed with procedures whose descriptor includes imaging guidance.

Many spine injection codes include imaging guidance (fluoroscopy or CT) in their CPT
descriptor: the with-imaging interlaminar epidurals 62321/62323/62325/62327, the
transforaminal epidurals 64479-64484, the facet joint injections 64490-64495, the facet
nerve radiofrequency ablations 64633-64636 and the sacroiliac joint injection 27096.
Fluoroscopic or CT guidance billed beside them is unbundling, and no modifier changes that;
beside the without-imaging interlaminar codes 62320/62322/62324/62326 it is the wrong choice
of code. All four edits work on the patient-day: the imaging line may be on another claim, or
in another file of the run.

Which code includes imaging is the ``imaging`` column of ``edits/procedure_codes.csv`` (a
code of the imaging families themselves, 77003/77012/72275/76942/76940, is guidance, not a
guided procedure), with ``family``, ``region`` and ``catheter``, selected by the line's date of
service: adding a family is adding rows. A code the table does not know, or a row not in
force on the date (a deleted code), is left to the code-validity edits and EPI-TBL-001.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from claimscrub.edits._codebook import (
    EPIDUROGRAPHY,
    IMAGING_GUIDANCE,
    INTERLAMINAR,
    TRANSFORAMINAL,
    ULTRASOUND_GUIDANCE,
    family,
    flag,
    listing,
    pointed_diagnoses,
    procedure,
    related,
    same_claim,
    where,
)
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import DayLine, PatientDay, paired

#: CPT 77003 parenthetical: the primaries 77003 may be reported with.
FLUOROSCOPY_PRIMARIES = frozenset(
    {"61050", "61055", "62267", "62273", "62280", "62281", "62282", "62284",
     "64449", "64510", "64517", "64520", "64610", "96450"}
)
FLUOROSCOPY = "77003"
DISTINCT_MODIFIERS = frozenset({"59", "XE", "XP", "XS", "XU"})

#: families whose codes are the guidance itself, never a guided procedure
GUIDANCE_FAMILIES = frozenset({IMAGING_GUIDANCE, EPIDUROGRAPHY, ULTRASOUND_GUIDANCE})

SOURCE_PARENTHETICAL = (
    "CPT descriptors \"with imaging guidance (fluoroscopy or CT)\" of 62321/62323/62325/62327, "
    "64479-64484, 64490-64495, 64633-64636 and 27096, and their parentheticals (imaging guidance "
    "is not reported separately); CPT 77003 parenthetical (not with 62320-62327); CMS NCCI "
    "practitioner PTP edits (e.g. 62323/77003, 64483/77012), release effective 2024-07-01"
)

#: CPT Category III codes for the ultrasound-guided versions of guided families (CPT
#: parentheticals under 64479-64484 and 64490-64495)
ULTRASOUND_ALTERNATIVES = {
    TRANSFORAMINAL: "0228T-0231T (transforaminal epidural injection with ultrasound guidance)",
    "facet": "0213T-0218T (paravertebral facet joint injection with ultrasound guidance)",
}


@dataclass
class _Coded:
    entry: DayLine
    row: dict

    @property
    def code(self) -> str:
        return self.entry.code


def _coded(day: PatientDay, ctx: RuleContext, *families: str) -> list[_Coded]:
    out = []
    for entry in day.entries:
        row = procedure(ctx, entry.code, entry.line.service_date)
        if row is not None and family(row) in families:
            out.append(_Coded(entry, row))
    return out


def _guided(day: PatientDay, ctx: RuleContext) -> list[_Coded]:
    """The lines of the day whose code's descriptor includes imaging guidance."""
    out = []
    for entry in day.entries:
        row = procedure(ctx, entry.code, entry.line.service_date)
        if row is not None and flag(row, "imaging") and family(row) not in GUIDANCE_FAMILIES:
            out.append(_Coded(entry, row))
    return out


def imaging_edits_cover(day: PatientDay, ctx: RuleContext) -> bool:
    """Whether guidance on this day is judged by the imaging edits (an interlaminar
    epidural, or a code whose descriptor includes imaging guidance, is on the day)."""
    return bool(_epidurals(day, ctx) or _guided(day, ctx))


def _epidurals(day: PatientDay, ctx: RuleContext, with_imaging: Optional[bool] = None) -> list[_Coded]:
    found = _coded(day, ctx, INTERLAMINAR)
    if with_imaging is None:
        return found
    return [c for c in found if flag(c.row, "imaging") == with_imaging]


@dataclass
class _Guidance(_Coded):
    #: set when 77003 has its own CPT-listed primary on its claim but points only at the
    #: epidural's diagnoses, so it is still tied to the epidural
    linked_note: str = ""


def _unbundled_guidance(day: PatientDay, ctx: RuleContext) -> list[_Guidance]:
    """The 77003/77012 lines of the day that cannot stand beside the day's guided
    procedures and interlaminar epidurals.

    The one exception: 77003 may be reported as the add-on of a procedure on the CPT 77003
    primary list (62273 blood patch, 62280-62282 neurolytic, 62284 myelography, ...) billed
    on the same claim and date, provided it is not tied to the guided procedure. The only
    tie an 837P carries is the diagnosis pointer: a 77003 that points at a diagnosis of its
    primary belongs to the primary and is exempt; one that points only at the guided
    procedure's diagnoses is still that procedure's guidance and is reported. 77012 has no
    such primary list, so it is never exempt.
    """
    epidural_dx: set[str] = set()
    for epidural in _epidurals(day, ctx) + _guided(day, ctx):
        epidural_dx |= pointed_diagnoses(epidural.entry.claim, epidural.entry.line)
    listed_primaries: list[DayLine] = [e for e in day.entries if e.code in FLUOROSCOPY_PRIMARIES]
    out: list[_Guidance] = []
    for coded in _coded(day, ctx, IMAGING_GUIDANCE):
        entry = coded.entry
        guidance = _Guidance(entry, coded.row)
        if coded.code == FLUOROSCOPY:
            primaries = [other for other in listed_primaries if same_claim(other.claim, entry.claim)]
            if primaries:
                own_dx = pointed_diagnoses(entry.claim, entry.line)
                primary_dx: set[str] = set()
                for primary in primaries:
                    primary_dx |= pointed_diagnoses(primary.claim, primary.line)
                if own_dx & primary_dx or not own_dx & epidural_dx:
                    continue
                guidance.linked_note = (
                    f" 77003 may be reported with {listing([p.code for p in primaries])} on this "
                    "claim, but this line points only at the guided procedure's diagnosis, so it is "
                    "billed as that procedure's guidance."
                )
        out.append(guidance)
    return out


def _modifier_note(entry: DayLine) -> str:
    used = [m for m in entry.modifiers if m in DISTINCT_MODIFIERS]
    if not used:
        return ""
    return (
        f" Modifier {listing(used)} does not make it payable: the guidance is part of the "
        "procedure's descriptor, whatever modifier indicator the NCCI edit carries."
    )


@register
class GuidanceWithImagingProcedure(Rule):
    """Fluoroscopic or CT guidance billed with a procedure whose descriptor includes it.

    What it checks:
        On one patient-day (same patient, date and rendering provider, across every claim
        and file of the run), a 77003 (fluoroscopic guidance) or 77012 (CT guidance) line
        beside a code whose CPT descriptor includes imaging guidance (``imaging`` = yes in
        the procedure table): 62321/62323/62325/62327, 64479-64484, 64490-64495,
        64633-64636, 27096. The finding goes on the 77003/77012 line, whatever its
        modifiers (59 or XS included), and names the guided line and its claim when they
        differ.

        Exception: 77003 billed as the add-on of a procedure on the CPT 77003 primary list
        (61050, 61055, 62267, 62273, 62280, 62281, 62282, 62284, 64449, 64510, 64517,
        64520, 64610, 96450) on the same claim and date is not reported, as long as it is
        not tied to the guided procedure: it must point at a diagnosis of that primary. A
        77003 that points only at the guided procedure's diagnoses is still reported. 77012
        has no such exception.

        What could still change the verdict: nothing a claim shows. The descriptors name
        the guidance, and the NCCI edits for these pairs carry modifier indicator 1 only
        because other primaries of 77003/77012 exist: a modifier does not make guidance
        billable beside a code that includes it, so the fix never offers one.

    Why payers deny it:
        These codes are "with imaging guidance (fluoroscopy or CT)" and include contrast;
        CPT's parentheticals say not to report 77003/77012 with them. A separate 77003/77012
        is unbundling: the guidance line is denied (NCCI PTP, CARC 236) or the claim is
        returned. A 59/XS modifier does not rescue an included service.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "64483", charge: 300}, {code: "77003", modifiers: ["59"], charge: 90}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483", charge: 300}]}

    Configuration:
        None beyond selection and severity overrides. A family whose codes include imaging
        is added by adding its rows to the procedure table with ``imaging`` = yes.

    Source:
        CPT descriptors of 62321/62323/62325/62327, 64479-64484, 64490-64495, 64633-64636
        and 27096 ("with imaging guidance (fluoroscopy or CT)") and their parentheticals;
        CPT 77003 parenthetical (not with 62320-62327); CMS NCCI practitioner PTP edits
        (62323/77003, 64483/77003, 64483/77012, 64490/77003, ...), release effective
        2024-07-01; NCCI Policy Manual for Medicare Services ch. VIII (radiology guidance
        included in the procedure).
    """

    id = "EPI-IMG-001"
    name = "guidance-with-imaging-procedure"
    summary = "77003/77012 cannot be billed with a code whose descriptor includes imaging guidance"
    category = Category.IMAGING
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = SOURCE_PARENTHETICAL
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        guided = _guided(day, ctx)
        if not guided:
            return
        for guidance in _unbundled_guidance(day, ctx):
            entry = guidance.entry
            pairs = listing([where(e.entry, entry.claim) for e in guided])
            included = listing(list(dict.fromkeys(e.code for e in guided)))
            yield paired(self.finding(
                entry.claim,
                f"{entry.code} ({'fluoroscopic' if entry.code == FLUOROSCOPY else 'CT'} guidance) is "
                f"billed with {pairs} for the same patient on {day.service_date.isoformat()}: imaging "
                f"guidance is part of the descriptor of {included}, so {entry.code} is unbundled."
                + _modifier_note(entry) + guidance.linked_note,
                fix=f"Remove the {entry.code} line; the guidance is paid through {included}.",
                line=entry.line,
                related=related([e.entry for e in guided], entry.claim),
            ), entry, [e.entry for e in guided])


_SIBLING_COLUMNS = ("family", "region", "catheter")


def _with_imaging_sibling(coded: _Coded, ctx: RuleContext) -> Optional[str]:
    table = ctx.tables.get("procedure_codes")
    match = {c: str(coded.row.get(c, "")) for c in _SIBLING_COLUMNS}
    for row in table.lookup(coded.entry.line.service_date, **match):
        if flag(row, "imaging"):
            return str(row["code"])
    return None


@register
class GuidanceWithoutImagingEpidural(Rule):
    """Imaging guidance billed with a without-imaging interlaminar epidural: wrong code.

    What it checks:
        On one patient-day, 77003 or 77012 beside 62320, 62322, 62324 or 62326 (the
        interlaminar codes "without imaging guidance"). The finding goes on the epidural
        line, and names the with-imaging code to use instead: 62320 -> 62321, 62322 ->
        62323, 62324 -> 62325, 62326 -> 62327 (same region and catheter, with imaging, from
        the procedure table). When the guidance line sits on a claim without the epidural
        and no with-imaging epidural is on the day (EPI-IMG-001 covers that case), that
        claim gets a finding too, so both claims are corrected. 77003 billed for its own
        CPT-listed primary on its claim is exempt as in EPI-IMG-001.

    Why payers deny it:
        If fluoroscopy or CT was used, the service is the with-imaging code; "without
        imaging" plus a separate guidance code is the wrong code selection, not a modifier
        problem (CPT 77003 parenthetical: not with 62320-62329). The guidance line is
        denied, and Medicare ESI LCDs do not cover the without-imaging codes.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62322", charge: 400}, {code: "77003", charge: 90}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None beyond selection and severity overrides.

    Source:
        CPT 62320-62327 descriptors (with and without imaging guidance, 2017 restructuring);
        CPT 77003 parenthetical (not with 62320-62327); CMS NCCI practitioner PTP edits
        62322/77003 and 62320/77003, release effective 2024-07-01; CMS billing article
        A58993 (LCD L39240).
    """

    id = "EPI-IMG-002"
    name = "guidance-without-imaging-epidural"
    summary = "62320/62322/62324/62326 with 77003/77012 is the wrong code: use the with-imaging code"
    category = Category.IMAGING
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = SOURCE_PARENTHETICAL
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        without = _epidurals(day, ctx, with_imaging=False)
        if not without:
            return
        guidance = _unbundled_guidance(day, ctx)
        if not guidance:
            return
        for epidural in without:
            entry = epidural.entry
            sibling = _with_imaging_sibling(epidural, ctx)
            imaging = listing([where(g.entry, entry.claim) for g in guidance])
            imaging_codes = listing([g.code for g in guidance])
            replace = (
                f"replace {entry.code} with {sibling}" if sibling
                else f"replace {entry.code} with its with-imaging code"
            )
            yield paired(self.finding(
                entry.claim,
                f"{entry.code} is the interlaminar epidural without imaging guidance, but "
                f"{imaging} bills imaging guidance for the same patient on "
                f"{day.service_date.isoformat()}: this is the wrong code selection.",
                fix=(
                    f"If fluoroscopy or CT was used, {replace} and remove {imaging_codes}; "
                    f"if no imaging was used, remove {imaging_codes}."
                ),
                line=entry.line,
                related=related([g.entry for g in guidance], entry.claim),
            ), entry, [g.entry for g in guidance])
        if _epidurals(day, ctx, with_imaging=True):
            return  # EPI-IMG-001 already reports every guidance line of the day
        for item in guidance:
            entry = item.entry
            if any(same_claim(entry.claim, e.entry.claim) for e in without):
                continue
            pairs = listing([where(e.entry, entry.claim) for e in without])
            yield paired(self.finding(
                entry.claim,
                f"{entry.code} (imaging guidance) is billed for the same patient on "
                f"{day.service_date.isoformat()} as {pairs}, an interlaminar epidural: guidance "
                "cannot be billed separately with 62320-62327."
                + _modifier_note(entry) + item.linked_note,
                fix=(
                    f"Remove the {entry.code} line, and correct the epidural code on the other "
                    "claim to its with-imaging code if fluoroscopy or CT was used."
                ),
                line=entry.line,
                related=related([e.entry for e in without], entry.claim),
            ), entry, [e.entry for e in without])


@register
class EpidurographyWithEpidural(Rule):
    """Epidurography 72275 billed with an interlaminar epidural.

    What it checks:
        On one patient-day, a 72275 (epidurography, supervision and interpretation) line
        beside any of 62320-62327. The finding goes on the 72275 line. Only a 72275 row in
        force on the date of service is considered: 72275 was deleted on 2022-01-01, after
        which the code-validity edit reports it as a deleted code and this edit stays
        silent, so one problem is not reported twice.

        What could still change the verdict: the NCCI edits that paired 62320-62327 (column
        1) with 72275 (column 2) until 2021-12-31 carried modifier indicator 1 ("misuse of
        column two code with column one code"), so a documented distinct service with an
        NCCI-associated modifier could be paid. Hence a warning.

    Why payers deny it:
        Epidurography (the contrast injection and its images) is integral to the epidural
        procedure; the with-imaging codes name contrast in their descriptors. A separate
        72275 was denied by the NCCI edit unless a modifier showed a distinct service.

    Failing example:
        claims:
          - {id: C1, date: "2021-03-03", lines: [{code: "62323", charge: 500}, {code: "72275", charge: 120}]}

    Corrected example:
        claims:
          - {id: C1, date: "2021-03-03", lines: [{code: "62323", charge: 500}]}

    Configuration:
        A warning by default. Raise it with ``[severity] "EPI-IMG-003" = "error"`` for
        payers that never pay 72275 with an epidural.

    Source:
        CMS NCCI practitioner PTP edits 62320-62327 / 72275 (modifier indicator 1, deleted
        2021-12-31), release effective 2024-07-01; CPT 62321/62323/62325/62327 descriptors
        (contrast included); CMS PFS relative value files (72275 absent from 2022).
    """

    id = "EPI-IMG-003"
    name = "epidurography-with-epidural"
    summary = "72275 epidurography with 62320-62327 is integral to the injection (warning)"
    category = Category.IMAGING
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = (
        "CMS NCCI practitioner PTP edits 62320-62327 / 72275 (modifier indicator 1, ended 2021-12-31); "
        "CPT 62321/62323/62325/62327 descriptors (contrast included)"
    )
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        epidurals = _epidurals(day, ctx)
        if not epidurals:
            return
        for coded in _coded(day, ctx, EPIDUROGRAPHY):
            entry = coded.entry
            pairs = listing([where(e.entry, entry.claim) for e in epidurals])
            yield paired(self.finding(
                entry.claim,
                f"72275 (epidurography) is billed with {pairs} for the same patient on "
                f"{day.service_date.isoformat()}: the contrast study is integral to the epidural "
                "injection, and the NCCI edit denies it unless a modifier shows a distinct, "
                "documented service.",
                fix="Remove the 72275 line unless the record documents a separate, distinct epidurography.",
                line=entry.line,
                related=related([e.entry for e in epidurals], entry.claim),
            ), entry, [e.entry for e in epidurals])


@register
class UltrasoundWithGuidedProcedure(Rule):
    """Ultrasound guidance 76942/76940 billed with an epidural or a procedure that includes
    fluoroscopic or CT guidance.

    What it checks:
        On one patient-day, a 76942 or 76940 (ultrasound guidance) line beside any of
        62320-62327 or any code whose descriptor includes imaging guidance (``imaging`` =
        yes in the procedure table: 64479-64484, 64490-64495, 64633-64636, 27096). The
        finding goes on the ultrasound line and names the code to report instead: the
        without-imaging interlaminar code, or the CPT Category III code for the
        ultrasound-guided procedure (0228T-0231T transforaminal, 0213T-0218T facet).

        What could still change the verdict: the record may show that fluoroscopy or CT
        was also used and the ultrasound was a distinct service; the NCCI edits pairing
        these codes with 76942 carry modifier indicator 1. Hence a warning; it is an error
        on a Medicare claim when a CMS NCCI edit denies the pair (no NCCI-associated
        modifier on either line).

    Why payers deny it:
        "Imaging guidance" in these descriptors means fluoroscopy or CT; an ultrasound-guided
        transforaminal or facet injection has its own Category III codes, and an
        ultrasound-guided interlaminar epidural is reported with the without-imaging code.
        Medicare ESI LCDs cover ESI only under fluoroscopy or CT with contrast, unless
        contrast is contraindicated.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "64483", charge: 300}, {code: "76942", charge: 80}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483", charge: 300}]}

    Configuration:
        None beyond selection and severity overrides.

    Source:
        CPT parentheticals under 64479-64484 (ultrasound guidance: 0228T-0231T) and
        64490-64495 (ultrasound guidance: 0213T-0218T); CPT 62320-62327 descriptors; CMS
        NCCI practitioner PTP edits (64483/76942, 64490/76942, 62323/76942: modifier
        indicator 1), release effective 2024-07-01; Medicare ESI LCD L39240 / article
        A58993 (fluoroscopy or CT with contrast).
    """

    id = "EPI-IMG-004"
    name = "ultrasound-with-guided-procedure"
    summary = "76942/76940 with an epidural or an imaging-guided injection: report the code for the guidance used"
    category = Category.IMAGING
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = (
        "CPT parentheticals under 64479-64484 and 64490-64495 (ultrasound: 0228T-0231T, 0213T-0218T); "
        "CPT 62320-62327 descriptors; CMS NCCI practitioner PTP edits with 76942; LCD L39240 / A58993"
    )
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        from claimscrub.edits.ptp import escalate, find_pair

        procedures = {id(c.entry): c for c in _epidurals(day, ctx) + _guided(day, ctx)}
        if not procedures:
            return
        primaries = list(procedures.values())
        for coded in _coded(day, ctx, ULTRASOUND_GUIDANCE):
            entry = coded.entry
            pairs = listing([where(p.entry, entry.claim) for p in primaries])
            advice = []
            for primary in primaries:
                fam = family(primary.row)
                if fam == INTERLAMINAR and flag(primary.row, "imaging"):
                    advice.append(
                        f"{primary.code} already means fluoroscopy or CT guidance: the without-imaging "
                        "interlaminar code if only ultrasound was used"
                    )
                elif fam == INTERLAMINAR:
                    advice.append(f"{primary.code} alone: ultrasound guidance is not reported separately")
                elif fam in ULTRASOUND_ALTERNATIVES:
                    advice.append(f"{primary.code}: {ULTRASOUND_ALTERNATIVES[fam]} if only ultrasound was used")
                else:
                    advice.append(f"{primary.code}: its descriptor already includes fluoroscopic or CT guidance")
            severity = Severity.WARNING
            if entry.claim.is_medicare:
                for primary in primaries:
                    severity = escalate(find_pair(ctx, day, primary.entry, entry), severity)
            medicare = (
                " Medicare ESI LCDs do not cover an epidural without fluoroscopy or CT with contrast "
                "unless contrast is contraindicated."
                if entry.claim.is_medicare and any(family(p.row) in (INTERLAMINAR, TRANSFORAMINAL) for p in primaries)
                else ""
            )
            yield paired(self.finding(
                entry.claim,
                f"{entry.code} (ultrasound guidance) is billed with {pairs} for the same patient on "
                f"{day.service_date.isoformat()}: ultrasound is not separately reported with these "
                "codes." + medicare,
                fix=(
                    f"Remove the {entry.code} line and report the code that matches the guidance "
                    f"actually used ({'; '.join(dict.fromkeys(advice))})."
                ),
                line=entry.line,
                severity=severity,
                related=related([p.entry for p in primaries], entry.claim),
            ), entry, [p.entry for p in primaries])
