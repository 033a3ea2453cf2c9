"""Imaging codes billed with the interlaminar epidural codes 62320-62327.

Since 2017 the interlaminar epidural codes come in pairs: 62320/62322/62324/62326 without
imaging guidance and 62321/62323/62325/62327 with imaging guidance (fluoroscopy or CT) and
contrast in the descriptor. Fluoroscopic or CT guidance billed beside them is either
unbundling (with the with-imaging codes) or the wrong choice of code (with the without-imaging
codes), and no modifier changes that. All four edits work on the patient-day: the imaging
line may be on another claim, or in another file of the run.

Which code is which comes from ``edits/procedure_codes.csv`` (``family``, ``region``,
``imaging``, ``catheter``), selected by the line's date of service; a code the table does
not know, or a row not in force on the date (a deleted code), is left to the code-validity
edits and EPI-TBL-001.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from claimscrub.edits._codebook import (
    EPIDUROGRAPHY,
    IMAGING_GUIDANCE,
    INTERLAMINAR,
    ULTRASOUND_GUIDANCE,
    family,
    flag,
    listing,
    pointed_diagnoses,
    procedure,
    same_claim,
    where,
)
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import DayLine, PatientDay

#: CPT 77003 parenthetical (2025 CPT, as reproduced at iframe.ai/medical-coding/reference/77003;
#: domain-rules.md section 1.1): the primaries 77003 may be reported with.
FLUOROSCOPY_PRIMARIES = frozenset(
    {"61050", "61055", "62267", "62273", "62280", "62281", "62282", "62284",
     "64449", "64510", "64517", "64520", "64610", "96450"}
)
FLUOROSCOPY = "77003"
DISTINCT_MODIFIERS = frozenset({"59", "XE", "XP", "XS", "XU"})

SOURCE_PARENTHETICAL = (
    "CPT 77003 parenthetical (do not report with 62320-62329; 2025 CPT as reproduced at "
    "iframe.ai/medical-coding/reference/77003); CPT 62320-62327 descriptors (imaging guidance = "
    "fluoroscopy or CT, contrast included; CMS article A58993); domain-rules.md section 1.1"
)


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
    """The 77003/77012 lines of the day that cannot stand beside an interlaminar epidural.

    The one exception (domain-rules.md section 1.1 and section 11, EPI-IMG-001): 77003 may
    be reported as the add-on of a procedure on the CPT 77003 primary list (62273 blood
    patch, 62280-62282 neurolytic, 62284 myelography, ...) billed on the same claim and
    date, provided it is not tied to the epidural line. The only tie an 837P carries is
    the diagnosis pointer: a 77003 that points at a diagnosis of its primary belongs to the
    primary and is exempt; one that points only at the epidural's diagnoses is still the
    epidural's guidance and is reported. 77012 has no such primary list in the domain
    file, so it is never exempt.
    """
    epidural_dx: set[str] = set()
    for epidural in _epidurals(day, ctx):
        epidural_dx |= pointed_diagnoses(epidural.entry.claim, epidural.entry.line)
    out: list[_Guidance] = []
    for coded in _coded(day, ctx, IMAGING_GUIDANCE):
        entry = coded.entry
        guidance = _Guidance(entry, coded.row)
        if coded.code == FLUOROSCOPY:
            primaries = [
                other for other in day.entries
                if other.code in FLUOROSCOPY_PRIMARIES and same_claim(other.claim, entry.claim)
            ]
            if primaries:
                own_dx = pointed_diagnoses(entry.claim, entry.line)
                primary_dx: set[str] = set()
                for primary in primaries:
                    primary_dx |= pointed_diagnoses(primary.claim, primary.line)
                if own_dx & primary_dx or not own_dx & epidural_dx:
                    continue
                guidance.linked_note = (
                    f" 77003 may be reported with {listing([p.code for p in primaries])} on this "
                    "claim, but this line points only at the epidural's diagnosis, so it is billed "
                    "as the epidural's guidance."
                )
        out.append(guidance)
    return out


def _modifier_note(entry: DayLine) -> str:
    used = [m for m in entry.modifiers if m in DISTINCT_MODIFIERS]
    if not used:
        return ""
    return f" Modifier {listing(used)} does not make it payable: the guidance is part of the epidural code."


@register
class GuidanceWithImagingEpidural(Rule):
    """Fluoroscopic or CT guidance billed with a with-imaging interlaminar epidural.

    What it checks:
        On one patient-day (same patient, date and rendering provider, across every claim
        and file of the run), a 77003 (fluoroscopic guidance) or 77012 (CT guidance) line
        beside any of 62321, 62323, 62325 or 62327. The finding goes on the 77003/77012
        line, whatever its modifiers (59 or XS included), and names the epidural line and
        its claim when they differ.

        Exception (domain-rules.md sections 1.1 and 11): 77003 billed as the add-on of a
        procedure on the CPT 77003 primary list (61050, 61055, 62267, 62273, 62280, 62281,
        62282, 62284, 64449, 64510, 64517, 64520, 64610, 96450) on the same claim and date
        is not reported, as long as it is not tied to the epidural: it must point at a
        diagnosis of that primary. A 77003 that points only at the epidural's diagnoses is
        still reported. 77012 has no such exception.

    Why payers deny it:
        62321/62323/62325/62327 are "with imaging guidance (fluoroscopy or CT)" and include
        contrast; CPT's parenthetical under 77003 says not to report it with 62320-62329.
        A separate 77003/77012 is unbundling: the guidance line is denied (NCCI PTP, CARC
        236) or the claim is returned. A 59/XS modifier does not rescue an included service.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}, {code: "77003", modifiers: ["59"], charge: 90}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None beyond selection and severity overrides. The 77012 branch rests on the
        with-imaging descriptors (fluoroscopy or CT), which are VERIFIED; the 77012
        parenthetical itself is UNVERIFIED in domain-rules.md section 1.1, which does not
        change the conclusion, so the branch is an error like 77003.

    Source:
        CPT 77003 parenthetical (2025 CPT, iframe.ai/medical-coding/reference/77003);
        CPT descriptors of 62321/62323/62325/62327 (codingahead.com; CMS billing article
        A58993); domain-rules.md sections 0, 1.1 and 11 (EPI-IMG-001).
    """

    id = "EPI-IMG-001"
    name = "guidance-with-imaging-epidural"
    summary = "77003/77012 cannot be billed with 62321/62323/62325/62327: guidance is in the descriptor"
    category = Category.IMAGING
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = SOURCE_PARENTHETICAL
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        epidurals = _epidurals(day, ctx, with_imaging=True)
        if not epidurals:
            return
        for guidance in _unbundled_guidance(day, ctx):
            entry = guidance.entry
            pairs = listing([where(e.entry, entry.claim) for e in epidurals])
            included = listing([e.code for e in epidurals])
            yield self.finding(
                entry.claim,
                f"{entry.code} ({'fluoroscopic' if entry.code == FLUOROSCOPY else 'CT'} guidance) is "
                f"billed with {pairs} for the same patient on {day.service_date.isoformat()}: imaging "
                f"guidance and contrast are included in {included}, so {entry.code} is unbundled."
                + _modifier_note(entry) + guidance.linked_note,
                fix=f"Remove the {entry.code} line; the guidance is paid through {included}.",
                line=entry.line,
            )


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
        CPT 62320-62327 descriptors (case2code.codingahead.com 62320/62322; A58993); CPT
        77003 parenthetical; domain-rules.md sections 0, 1.1 and 11 (EPI-IMG-002).
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
            yield self.finding(
                entry.claim,
                f"{entry.code} is the interlaminar epidural without imaging guidance, but "
                f"{imaging} bills imaging guidance for the same patient on "
                f"{day.service_date.isoformat()}: this is the wrong code selection.",
                fix=(
                    f"If fluoroscopy or CT was used, {replace} and remove {imaging_codes}; "
                    f"if no imaging was used, remove {imaging_codes}."
                ),
                line=entry.line,
            )
        if _epidurals(day, ctx, with_imaging=True):
            return  # EPI-IMG-001 already reports every guidance line of the day
        for item in guidance:
            entry = item.entry
            if any(same_claim(entry.claim, e.entry.claim) for e in without):
                continue
            pairs = listing([where(e.entry, entry.claim) for e in without])
            yield self.finding(
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
            )


@register
class EpidurographyWithEpidural(Rule):
    """Epidurography 72275 billed with an interlaminar epidural (UNVERIFIED pairing).

    What it checks:
        On one patient-day, a 72275 (epidurography, supervision and interpretation) line
        beside any of 62320-62327. The finding goes on the 72275 line. Only a 72275 row in
        force on the date of service is considered: after its deletion, the code-validity
        edit reports 72275 as a deleted code and this edit stays silent, so one problem is
        not reported twice.

    Why payers deny it:
        Epidurography (the contrast injection and its images) is integral to the epidural
        procedure; the with-imaging codes name contrast in their descriptors. A separate
        72275 is expected to be denied as bundled.

    Failing example:
        claims:
          - {id: C1, date: "2021-03-03", lines: [{code: "62323", charge: 500}, {code: "72275", charge: 120}]}

    Corrected example:
        claims:
          - {id: C1, date: "2021-03-03", lines: [{code: "62323", charge: 500}]}

    Configuration:
        A warning by default: domain-rules.md section 1.1 marks the 72275 pairing rule
        UNVERIFIED (the parenthetical was not seen), and section 11 says UNVERIFIED checks
        ship as warnings until checked against the CPT/NCCI source. Raise it with
        ``[severity] "EPI-IMG-003" = "error"`` once verified.

    Source:
        domain-rules.md sections 1.1 and 11 (EPI-IMG-003), UNVERIFIED pairing; 72275
        deletion per case2code.codingahead.com/cpt/codes/72275 (the ``deleted`` date in
        procedure_codes.csv, reported by the code-validity edits).
    """

    id = "EPI-IMG-003"
    name = "epidurography-with-epidural"
    summary = "72275 epidurography with 62320-62327 is integral to the injection (UNVERIFIED: warning)"
    category = Category.IMAGING
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = (
        "domain-rules.md section 1.1 (72275 with 62320-62327: UNVERIFIED pairing); "
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
            yield self.finding(
                entry.claim,
                f"72275 (epidurography) is billed with {pairs} for the same patient on "
                f"{day.service_date.isoformat()}: the contrast study is integral to the epidural "
                "injection (pairing UNVERIFIED in the domain rules, hence a warning).",
                fix="Remove the 72275 line unless the payer confirms it is separately payable.",
                line=entry.line,
            )


@register
class UltrasoundWithEpidural(Rule):
    """Ultrasound guidance 76942/76940 billed with an interlaminar epidural.

    What it checks:
        On one patient-day, a 76942 or 76940 (ultrasound guidance) line beside any of
        62320-62327. The finding goes on the ultrasound line.

    Why payers deny it:
        "Imaging guidance" in the 62320-62327 descriptors means fluoroscopy or CT; an
        ultrasound-guided interlaminar epidural is reported with the without-imaging code
        and no separate ultrasound code. Medicare ESI LCDs (L39240 family) cover ESI only
        under fluoroscopy or CT with contrast, unless contrast is contraindicated.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62322", charge: 400}, {code: "76942", charge: 80}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62322", charge: 400}]}

    Configuration:
        A warning: domain-rules.md section 1.1 marks the coding part UNVERIFIED (the LCD
        part is VERIFIED via the L39240 rubric).

    Source:
        domain-rules.md sections 1.1 and 11 (EPI-IMG-004), UNVERIFIED coding; LCD L39240 /
        article A58993 imaging requirement (L39240 rubric; L33906 summary).
    """

    id = "EPI-IMG-004"
    name = "ultrasound-with-epidural"
    summary = "76942/76940 with 62320-62327: ultrasound is not separately reported (warning)"
    category = Category.IMAGING
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = (
        "domain-rules.md section 1.1 (ultrasound is not CPT imaging guidance for 62320-62327; "
        "UNVERIFIED); LCD L39240 / A58993 (fluoroscopy or CT with contrast required)"
    )
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        epidurals = _epidurals(day, ctx)
        if not epidurals:
            return
        with_imaging = [e for e in epidurals if flag(e.row, "imaging")]
        for coded in _coded(day, ctx, ULTRASOUND_GUIDANCE):
            entry = coded.entry
            pairs = listing([where(e.entry, entry.claim) for e in epidurals])
            note = ""
            if with_imaging:
                note = (
                    f" {listing([e.code for e in with_imaging])} already means fluoroscopy or CT "
                    "guidance; if only ultrasound was used, the without-imaging code applies."
                )
            medicare = (
                " Medicare ESI LCDs do not cover an epidural without fluoroscopy or CT with contrast "
                "unless contrast is contraindicated (use GA/GZ as appropriate)."
                if entry.claim.is_medicare else ""
            )
            yield self.finding(
                entry.claim,
                f"{entry.code} (ultrasound guidance) is billed with {pairs} for the same patient on "
                f"{day.service_date.isoformat()}: ultrasound is not separately reported with "
                "62320-62327." + note + medicare,
                fix=(
                    f"Remove the {entry.code} line and report the epidural with the code that matches "
                    "the guidance actually used (62320/62322/62324/62326 for ultrasound or none)."
                ),
                line=entry.line,
            )
