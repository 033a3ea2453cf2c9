"""Medical necessity of epidural steroid injections under the Medicare ESI LCDs (L39240 family).

* EPI-LCD-002: an interlaminar epidural code without imaging guidance (62320, 62322, 62324,
  62326) billed to Medicare: the ESI LCDs require CT or fluoroscopy with contrast.
* EPI-LCD-003: an ESI line whose diagnoses are all axial / non-radicular spine pain.
* EPI-LCD-004: the diagnoses point at the other spinal region than the injection.

Which procedure code is which (family, region, imaging, catheter) comes from
``edits/procedure_codes.csv`` selected by the line's date of service (the CPT descriptors),
never from secondary summaries of the LCD, some of which mislabel 62322/62324. What a diagnosis means for the LCD (its
region and kind) comes from ``edits/lcd_diagnoses.csv``, by longest code prefix. A code the
procedure table does not know, or a diagnosis the LCD table does not classify, is not
judged (EPI-TBL-001 reports unknown procedure codes).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Optional

from claimscrub.edits._codebook import (
    IMAGING_GUIDANCE,
    INTERLAMINAR,
    TRANSFORAMINAL,
    ULTRASOUND_GUIDANCE,
    family,
    flag,
    global_days,
    listing,
    procedure,
)
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import PatientDay
from claimscrub.icd10 import dotted, normalize
from claimscrub.model import Claim, ServiceLine

LCD_TABLE = "lcd_diagnoses"
REGION_NAMES = {"CT": "cervical/thoracic", "LS": "lumbar/sacral"}
OTHER_REGION = {"CT": "LS", "LS": "CT"}
#: kinds of edits/lcd_diagnoses.csv
AXIAL = "axial-noncovered"
POSTOP = "postop-exemption"
#: the family of 78630 (CSF flow imaging / cisternography): A58993 exempts 62322-62327
#: used for it from the diagnosis restrictions when it is billed on the same claim
CSF_IMAGING = "csf-imaging"
#: modifiers that already declare an expected medical-necessity denial (ABN / no ABN)
LIABILITY_MODIFIERS = ("GA", "GZ")

LCD_SOURCE = (
    "Medicare ESI LCD L39240 (Noridian JE) / billing article A58993 and sister LCDs L33906/A56651, "
    "L36920/A56681, L39015/A58731, L39054/A58777"
)

_index_cache: dict[int, tuple[Any, dict[str, list[dict]]]] = {}


def _lcd_index(ctx: RuleContext) -> Optional[dict[str, list[dict]]]:
    table = ctx.tables.get(LCD_TABLE) if ctx.tables is not None else None
    if table is None:
        return None
    cached = _index_cache.get(id(table))
    if cached is None or cached[0] is not table:
        index: dict[str, list[dict]] = {}
        for row in table.rows:
            index.setdefault(normalize(str(row.get("code", ""))), []).append(row)
        cached = _index_cache[id(table)] = (table, index)
    return cached[1]


def lcd_row(ctx: RuleContext, code: str, day: Optional[date]) -> Optional[dict]:
    """The LCD-table row of a diagnosis: its longest matching code prefix in force on ``day``."""
    index = _lcd_index(ctx)
    if index is None:
        return None
    key = normalize(code)
    for length in range(len(key), 2, -1):
        for row in index.get(key[:length], ()):
            if _applies(row, day):
                return row
    return None


def _applies(row: dict, day: Optional[date]) -> bool:
    effective, deleted = row.get("effective"), row.get("deleted")
    if day is None:
        return deleted is None
    return (effective is None or effective <= day) and (deleted is None or day <= deleted)


def pointed(claim: Claim, line: ServiceLine) -> list[str]:
    """The diagnosis codes the line points at (SV107 against HI), in pointer order."""
    codes = []
    for pointer in line.diagnosis_pointers:
        dx = claim.diagnosis(pointer)
        if dx is not None and dx.code and dx.code not in codes:
            codes.append(dx.code)
    return codes


def _is_unverified(row: dict) -> bool:
    return str(row.get("verified", "yes")).strip().lower() in ("no", "n", "false", "0")


def _claim_has_family(claim: Claim, ctx: RuleContext, name: str) -> bool:
    return any(family(procedure(ctx, l.procedure_code, l.service_date)) == name for l in claim.lines)


def _is_epidural(row: Optional[dict]) -> bool:
    return family(row) in (INTERLAMINAR, TRANSFORAMINAL)


def _is_add_on(row: Optional[dict]) -> bool:
    return global_days(row) == "ZZZ"


@register
class EpiduralWithoutImagingMedicare(Rule):
    """Interlaminar epidural without imaging guidance billed to Medicare (ESI LCD).

    What it checks:
        On a Medicare Part B claim (SBR09 = MB), a line whose code the procedure table calls
        interlaminar epidural without imaging guidance (62320, 62322, 62324, 62326). Not
        reported when the line already carries GA or GZ (the expected denial is declared),
        when the claim bills 78630 (CSF flow imaging, exempt per A58993), or when the same
        patient-day has fluoroscopy/CT (77003/77012) or ultrasound (76942/76940) guidance:
        then the code choice is wrong, which EPI-IMG-002 and EPI-IMG-004 report.

    Why payers deny it:
        The Medicare ESI LCDs (L39240 and its sister LCDs) cover an epidural steroid
        injection only under CT or fluoroscopic guidance with contrast, unless contrast is
        contraindicated (documented allergy, pregnancy); A58993 lists only the with-imaging
        codes for its regions. A without-imaging ESI is expected to be denied as not
        reasonable and necessary.

    Failing example:
        claims:
          - {id: C1, filing: MB, lines: [{code: "62322", charge: 400}]}

    Corrected example:
        claims:
          - {id: C1, filing: MB, lines: [{code: "62322", modifiers: [GA], charge: 400}]}

    Configuration:
        A warning: the LCDs allow the without-imaging codes when contrast is contraindicated,
        which only the record shows. Medicare only (claim filing indicator MB); other payers
        are not checked, their policies differ. If fluoroscopy or CT was used, report the
        with-imaging code instead (62321/62323/62325/62327).

    Source:
        LCD L39240 / A58993 (region codes 62321, 62323, 64479-64484; CT or fluoroscopy with
        contrast required); LCD L33906 / A56651.
    """

    id = "EPI-LCD-002"
    name = "epidural-without-imaging-medicare"
    summary = "62320/62322/62324/62326 (no imaging) to Medicare: ESI LCDs require CT/fluoroscopy with contrast"
    category = Category.MEDICAL_NECESSITY
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = LCD_SOURCE

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        families = {family(procedure(ctx, e.code, day.service_date)) for e in day.entries}
        if families & {IMAGING_GUIDANCE, ULTRASOUND_GUIDANCE}:
            return  # wrong code choice: EPI-IMG-002 / EPI-IMG-004
        for entry in day.entries:
            claim, line = entry.claim, entry.line
            if not claim.is_medicare:
                continue
            row = procedure(ctx, entry.code, day.service_date)
            if family(row) != INTERLAMINAR or flag(row, "imaging"):
                continue
            if set(line.modifiers) & set(LIABILITY_MODIFIERS):
                continue
            if _claim_has_family(claim, ctx, CSF_IMAGING):
                continue
            region = str(row.get("region", ""))
            sibling = _with_imaging_sibling(ctx, row, day.service_date)
            yield self.finding(
                claim,
                f"{entry.code} is an interlaminar epidural without imaging guidance ({REGION_NAMES.get(region, region)}). "
                "The Medicare ESI LCDs cover an epidural steroid injection only under CT or fluoroscopy with "
                "contrast, unless contrast is contraindicated; expect a medical-necessity denial.",
                fix=(f"If fluoroscopy or CT was used, report {sibling} instead (imaging included). If not, and "
                     "contrast was not contraindicated, obtain an ABN and append GA (or GZ without an ABN)."
                     if sibling else "Obtain an ABN and append GA (or GZ without an ABN), unless contrast was contraindicated."),
                line=line,
            )


def _with_imaging_sibling(ctx: RuleContext, row: dict, day: date) -> str:
    table = ctx.tables.get("procedure_codes")
    for other in table.active(day) if table is not None else ():
        if (family(other) == INTERLAMINAR and flag(other, "imaging")
                and other.get("region") == row.get("region") and flag(other, "catheter") == flag(row, "catheter")):
            return str(other["code"])
    return ""


@register
class AxialPainOnlyForEpidural(Rule):
    """Epidural steroid injection supported only by axial / non-radicular spine pain.

    What it checks:
        On a Medicare claim, an ESI line (interlaminar with imaging and single injection:
        62321, 62323; transforaminal: 64479, 64483; add-on lines 64480/64484 follow their
        primary and are not judged) whose pointed diagnoses are all classified
        ``axial-noncovered`` in ``edits/lcd_diagnoses.csv``: low back pain M54.5/M54.50/
        M54.51/M54.59, cervicalgia M54.2, spondylosis without radiculopathy M47.81x, the
        FY2025 disc-degeneration codes with back pain only M51.360/M51.370, thoracic spine
        pain M54.6, dorsalgia M54.9. Not reported when the claim carries a postoperative
        pain diagnosis (G89.12, G89.18: A58993 exemption) or bills 78630 (CSF flow imaging);
        a pointed diagnosis the table does not classify stops the check (not judged).

    Why payers deny it:
        The ESI LCDs cover radiculopathy, radicular pain or neurogenic claudication (disc
        herniation, stenosis), post-laminectomy syndrome and acute herpes zoster; axial or
        non-specific spine pain without radiculopathy is explicitly not covered, so the
        injection is denied as not reasonable and necessary.

    Failing example:
        claims:
          - {id: C1, filing: MB, dx: [M5450], lines: [{code: "62323", charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, filing: MB, dx: [M5416], lines: [{code: "62323", charge: 500}]}

    Configuration:
        A warning: the record may document a covered indication the claim does not code,
        and the classification of some codes (M47.81x, M51.360/M51.370, M54.6, M54.9) has
        not been checked against the A58993 ICD-10 code groups (``verified`` column of the
        LCD diagnosis table; the message then asks to confirm it). An implantable infusion
        pump trial (62323) is also exempt but cannot be recognised from the claim. Medicare
        only (SBR09 = MB); other payers are not checked.

    Source:
        LCD L39240 / A58993 and LCD L33906 / A56651 (axial spine pain without radiculopathy
        not covered; postoperative pain exemption G89.12/G89.18).
    """

    id = "EPI-LCD-003"
    name = "axial-pain-only-for-epidural"
    summary = "ESI whose diagnoses are all axial / non-radicular spine pain (not covered by the ESI LCDs)"
    category = Category.MEDICAL_NECESSITY
    severity = Severity.WARNING
    scope = Scope.LINE
    source = LCD_SOURCE
    status_code = "A8:255"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        day = line.service_date
        if not claim.is_medicare or day is None:
            return
        row = procedure(ctx, line.procedure_code, day)
        is_esi = (family(row) == INTERLAMINAR and flag(row, "imaging") and not flag(row, "catheter")) or (
            family(row) == TRANSFORAMINAL and not _is_add_on(row))
        if not is_esi:
            return
        codes = pointed(claim, line)
        rows = [lcd_row(ctx, code, day) for code in codes]
        if not codes or any(r is None or r.get("kind") != AXIAL for r in rows):
            return
        if any((r := lcd_row(ctx, dx.code, day)) is not None and r.get("kind") == POSTOP for dx in claim.diagnoses):
            return
        if _claim_has_family(claim, ctx, CSF_IMAGING):
            return
        described = listing([f"{dotted(c)} ({r.get('description', '')})" for c, r in zip(codes, rows)])
        message = (
            f"Every diagnosis {line.procedure_code} points at describes axial / non-radicular spine pain: "
            f"{described}. The ESI LCDs do not cover axial spine pain without radiculopathy."
        )
        unverified = [dotted(c) for c, r in zip(codes, rows) if _is_unverified(r)]
        if unverified:
            message += (
                f" Confirm that {listing(unverified)} is outside the covered ICD-10 code groups of "
                "article A58993 for the date of service."
            )
        yield self.finding(
            claim,
            message,
            fix=("If documented, code and point at the covered indication: radiculopathy (e.g. M54.16, M54.12), "
                 "disc disorder with radiculopathy (M51.16, M50.1x), stenosis (M48.06x, M48.02), post-laminectomy "
                 "syndrome (M96.1) or herpes zoster (B02.2x); otherwise obtain an ABN and append GA."),
            line=line,
        )


@register
class DiagnosisRegionMismatch(Rule):
    """Diagnosis region does not match the injection region.

    What it checks:
        A line whose procedure the table places in a spinal region (interlaminar 62320-62327
        and transforaminal 64479/64483; add-ons 64480/64484 follow their primary): cervical/
        thoracic (CT) or lumbar/sacral (LS), per ``edits/procedure_codes.csv``. When every
        diagnosis the line points at is classified in ``edits/lcd_diagnoses.csv`` with a
        region, and all of them are of the other region (a lumbar injection with only
        cervical/thoracic diagnoses, or the reverse), the line is reported. Diagnoses of
        region ``any`` (thoracolumbar, site unspecified, post-laminectomy, zoster,
        postoperative pain) match both regions; a diagnosis the table does not classify
        stops the check.

    Why payers deny it:
        The diagnosis must support the service billed: a cervical radiculopathy does not
        justify a lumbar epidural. Medicare's ESI billing articles define the covered
        diagnoses per region, and payers' diagnosis-to-procedure edits deny the mismatch;
        it is usually a wrong pointer or a wrong code.

    Failing example:
        claims:
          - {id: C1, dx: [M5412], lines: [{code: "62323", charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, dx: [M5416], lines: [{code: "62323", charge: 500}]}

    Configuration:
        A warning: a wrong diagnosis pointer or a miscoded region are both possible, and
        only the record tells which. Applies to every payer: a diagnosis of the other
        spinal region supports the injection under no payer's policy (the cited region
        definitions are Medicare's, A58993).

    Source:
        A58993 region definitions (cervical/thoracic 62321, 64479, 64480; lumbar/sacral
        62323, 64483, 64484); CPT descriptors of 62320-62327; ICD-10-CM code titles.
    """

    id = "EPI-LCD-004"
    name = "diagnosis-region-mismatch"
    summary = "Injection region (cervical/thoracic vs lumbar/sacral) not supported by any pointed diagnosis"
    category = Category.MEDICAL_NECESSITY
    severity = Severity.WARNING
    scope = Scope.LINE
    source = LCD_SOURCE
    status_code = "A8:255"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        day = line.service_date
        if day is None:
            return
        row = procedure(ctx, line.procedure_code, day)
        if not _is_epidural(row) or _is_add_on(row):
            return
        region = str(row.get("region", ""))
        other = OTHER_REGION.get(region)
        codes = pointed(claim, line)
        rows = [lcd_row(ctx, code, day) for code in codes]
        if other is None or not codes or any(r is None for r in rows):
            return
        if any(str(r.get("region", "")) != other for r in rows):
            return
        described = listing([f"{dotted(c)} ({r.get('description', '')})" for c, r in zip(codes, rows)])
        yield self.finding(
            claim,
            f"{line.procedure_code} is a {REGION_NAMES[region]} injection, but every diagnosis it points at is "
            f"{REGION_NAMES[other]}: {described}.",
            fix=(f"Point the line at the {REGION_NAMES[region]} diagnosis that supports it (add it to the claim if "
                 f"missing), or correct the procedure code if the injection was {REGION_NAMES[other]}."),
            line=line,
        )


#: most transforaminal levels the Medicare ESI LCDs cover in one session
MAX_TRANSFORAMINAL_LEVELS = 2
SIDES = ("LT", "RT")


def _levels(primary: list, add_on: list) -> Decimal:
    """Transforaminal levels of one region in one session: the primary line is the first
    level (two sides of it are still one level), each add-on unit one more level; add-on
    lines on the left and on the right are counted per side, a bilateral (-50) line once."""
    by_side: dict[str, Decimal] = {}
    for entry in add_on:
        sides = [m for m in entry.modifiers if m in SIDES]
        side = sides[0] if len(sides) == 1 else ""
        by_side[side] = by_side.get(side, Decimal(0)) + (entry.line.units or Decimal(1))
    return (Decimal(1) if primary else Decimal(0)) + max(by_side.values(), default=Decimal(0))


@register
class TransforaminalLevelsPerSession(Rule):
    """More than two transforaminal epidural levels in one session (Medicare ESI LCDs).

    What it checks:
        For Medicare claims (SBR09 = MB), on one patient-day (same patient, date and
        rendering provider, across claims and files), the transforaminal levels of each
        region: the primary code (64479 cervical/thoracic, 64483 lumbar/sacral) is the
        first level, each unit of its add-on code (64480, 64484) one more; left and right
        add-on lines are counted per side and a bilateral (modifier 50) line once, so a
        bilateral session at two levels is two levels. More than two levels in a region is
        reported on the add-on line.

        What could still change the verdict: the LCDs' limit is a coverage limit; a
        medical-necessity exception documented in the record, or another payer's policy,
        can change it. Hence a warning, Medicare only.

    Why payers deny it:
        The Medicare ESI LCDs cover no more than two transforaminal levels per session,
        unilateral or bilateral; the extra levels are denied as not reasonable and
        necessary, and the patient cannot be billed without an ABN (GA).

    Failing example:
        claims:
          - {id: C1, lines: [{code: "64483", charge: 300}, {code: "64484", units: 3, charge: 450}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483", charge: 300}, {code: "64484", units: 1, charge: 150}]}

    Configuration:
        Medicare only; other payers are not checked, their policies differ.

    Source:
        Medicare ESI LCD L39240 and billing article A58993 (transforaminal injections: no
        more than two levels per session, unilateral or bilateral); sister LCDs and
        articles L33906/A56651, L39015/A58731, L39054/A58777, A58745, A56681.
    """

    id = "EPI-LCD-005"
    name = "transforaminal-levels-per-session"
    summary = "More than two transforaminal levels in one region and session (Medicare ESI LCDs)"
    category = Category.MEDICAL_NECESSITY
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = (
        "Medicare ESI LCD L39240 / article A58993 (at most two transforaminal levels per session); "
        "L33906/A56651, L39015/A58731, L39054/A58777, A58745, A56681"
    )
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        regions: dict[str, tuple[list, list]] = {}
        for entry in day.entries:
            if not entry.claim.is_medicare:
                continue
            row = procedure(ctx, entry.code, day.service_date)
            if family(row) != TRANSFORAMINAL:
                continue
            primary, add_on = regions.setdefault(str(row.get("region", "")), ([], []))
            (add_on if _is_add_on(row) else primary).append(entry)
        for region, (primary, add_on) in sorted(regions.items()):
            levels = _levels(primary, add_on)
            if levels <= MAX_TRANSFORAMINAL_LEVELS or not add_on:
                continue
            entry = add_on[-1]
            codes = listing(list(dict.fromkeys(e.code for e in primary + add_on)))
            yield self.finding(
                entry.claim,
                f"{levels.normalize()} transforaminal levels are billed in the "
                f"{REGION_NAMES.get(region, region)} region on {day.service_date.isoformat()} ({codes}): "
                f"the Medicare ESI LCDs cover at most {MAX_TRANSFORAMINAL_LEVELS} levels per session, "
                "unilateral or bilateral.",
                fix=(
                    f"Bill at most {MAX_TRANSFORAMINAL_LEVELS} levels (the primary and one add-on unit) for "
                    "the session; for levels beyond that, have an ABN on file and append GA, or do not bill them."
                ),
                line=entry.line,
            )
