"""Units of service: the Medicare MUE table, and one epidural per region per session.

Two edits, one problem each:

* EPI-MUE-001 applies the loaded MUE table (bundled ``edits/mue.csv`` or the CMS
  practitioner MUE file) with its adjudication indicator (MAI);
* EPI-MUE-002 applies the CPT/LCD policy that 62320-62327 are reported once per spinal
  region per session.

They never report the same excess twice: EPI-MUE-001 skips the codes of EPI-MUE-002
(family ``epidural-interlaminar`` in ``edits/procedure_codes.csv``). For those codes the
policy limit (one) is never above a published MUE, so EPI-MUE-002 reports every excess
EPI-MUE-001 could, for every payer, and its fix is the more specific one. Likewise a
bilateral procedure reported as two units or two sides is EPI-MOD-002's (bilateral
reporting), not a units excess.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Optional

from claimscrub.edits._codebook import related
from claimscrub.engine import REGISTRY, Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import DayLine, PatientDay, paired

EPIDURAL_FAMILY = "epidural-interlaminar"
BILATERAL_RULE = "EPI-MOD-002"


def procedure_info(ctx: RuleContext, code: str, day) -> Optional[dict]:
    """The ``procedure_codes`` row of a code: the one active on ``day``, else any row
    (a code's family and region do not change when it is deleted)."""
    cache = ctx.extras.setdefault("units.procedure_info", {})
    key = (code, day)
    if key in cache:
        return cache[key]
    table = ctx.tables.get("procedure_codes") if ctx.tables is not None else None
    row = None
    if table is not None:
        row = table.first(day, code=code)
        if row is None:
            rows = table.index("code").get((code,), [])
            row = rows[0] if rows else None
    if len(cache) > 100_000:
        cache.clear()
    cache[key] = row
    return row


def valid_units(entry: DayLine) -> Optional[Decimal]:
    units = entry.line.units
    return units if units is not None and units > 0 else None


def where(entry: DayLine, anchor: DayLine) -> str:
    """'line 2', or 'line 1 of claim C2' (and its file) when the entry is on another claim."""
    if (entry.claim.file, entry.claim.index) == (anchor.claim.file, anchor.claim.index):
        return f"line {entry.line.number}"
    text = f"line {entry.line.number} of claim {entry.claim.claim_id}"
    if entry.claim.file != anchor.claim.file:
        text += f" in {entry.claim.file}"
    return text


def units_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return f"{text} unit" if value == 1 else f"{text} units"


def _over(entries: list[DayLine], limit: Decimal) -> tuple[Decimal, DayLine]:
    """Total units, and the line that takes the running total over ``limit``."""
    total = Decimal(0)
    culprit = entries[-1]
    crossed = False
    for entry in entries:
        total += valid_units(entry) or 0
        if not crossed and total > limit:
            culprit, crossed = entry, True
    return total, culprit


def _breakdown(entries: list[DayLine], anchor: DayLine) -> str:
    return ", ".join(f"{units_text(valid_units(e) or Decimal(0))} on {where(e, anchor)}" for e in entries)


def _bilateral_doubling(ctx: RuleContext, entries: list[DayLine], units: Decimal, limit: Decimal, payer: str) -> bool:
    """Twice the limit of a bilateral-indicator-1 code reported as both sides (two units,
    LT and RT lines, or 50 with two units): a bilateral reporting problem, which
    EPI-MOD-002 reports when it runs. One side with two units is not."""
    if units != 2 * limit or BILATERAL_RULE not in REGISTRY:
        return False
    if not ctx.is_enabled(BILATERAL_RULE, payer):
        return False
    sides = {m.upper() for e in entries for m in e.modifiers if m.upper() in ("LT", "RT")}
    has_50 = any(m == "50" for e in entries for m in e.modifiers)
    return has_50 or len(sides) != 1


def _by_code(entries: Iterable[DayLine]) -> dict[str, list[DayLine]]:
    out: dict[str, list[DayLine]] = {}
    for entry in entries:
        if valid_units(entry) is not None and entry.code:
            out.setdefault(entry.code, []).append(entry)
    return out


@register
class MedicallyUnlikelyUnits(Rule):
    """Units above the Medicare MUE, applied per line or per day by the MUE adjudication indicator.

    What it checks:
        For Medicare claims, the units of each procedure code against the loaded MUE
        table (bundled ``edits/mue.csv``, or the CMS practitioner MUE file given with
        ``--rules``), by the row's MUE adjudication indicator (MAI):

        * MAI 1 (line edit): the units of each line; an excess is an error on that line.
        * MAI 2 (date of service edit, policy): the units of the code summed over the
          patient-day (same patient, date and rendering provider) across lines, claims and
          files; an excess is an error: the limit is absolute, not appealable.
        * MAI 3 (date of service edit, clinical): summed the same way; an excess is a
          warning, because the denial is appealable with documentation.

        A day finding is attached to the line that takes the total over the limit and
        names the other lines. The codes 62320-62327 are left to EPI-MUE-002 (one per
        session), which reports every excess this edit could for them. For a code with
        bilateral indicator 1 (64479-64484, 64490-64495), exactly twice the MUE reported as
        both sides (two units without a single side, LT and RT lines, 50 with two units) is
        a bilateral reporting problem left to EPI-MOD-002 when that edit runs; one side
        with two units, or more than twice the MUE, is reported here. Codes without a
        row have no published MUE and are not checked (a code no table knows at all is
        reported by EPI-TBL-001).

    Why payers deny it:
        Medicare's MUE edits deny all units of a line (MAI 1) or of the date of service
        (MAI 2/3) when the units exceed the limit ("If the number of units is
        over the MUE value, all units are denied"). MAI 2 limits cannot be overridden,
        not even on appeal; MAI 3 denials can be overturned with documentation.

    Failing example:
        claims:
          - {id: C1, date: "2026-03-03", lines: [{code: "99214", units: 3}]}

    Corrected example:
        claims:
          - {id: C1, date: "2026-03-03", lines: [{code: "99214", units: 1}]}

    Configuration:
        The MUE table: ``--rules DIR`` with ``MCR_MUE_PractitionerServices_Eff_*.csv``
        replaces the bundled table. A bundled row not yet checked against the CMS release
        (``verified`` column) could have another value, which would change the verdict, so
        its excesses are warnings that ask to confirm it; rows checked against or loaded
        from the CMS file are reported at the severity above. Other payers: not checked (MUEs are Medicare edits; commercial
        payers license similar but different limits).

    Source:
        CMS practitioner MUE table and its adjudication indicators; NCCI Policy Manual
        for Medicare Services ch. I (Medically Unlikely Edits).
    """

    id = "EPI-MUE-001"
    name = "mue-units"
    summary = "Units above the Medicare MUE (MAI 1 per line, MAI 2/3 per patient-day across claims)"
    category = Category.UNITS
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = "CMS practitioner MUE table (MAI 1/2/3); NCCI Policy Manual for Medicare Services ch. I (MUE)"
    status_code = "A7:476"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        table = ctx.tables.get("mue") if ctx.tables is not None else None
        if table is None:
            return
        entries = [e for e in day.entries if e.claim.is_medicare]
        for code, lines in _by_code(entries).items():
            info = procedure_info(ctx, code, day.service_date)
            if info is not None and info.get("family") == EPIDURAL_FAMILY:
                continue  # EPI-MUE-002
            row = table.first(day.service_date, code=code)
            if row is None or not str(row.get("mue", "")).strip().isdigit():
                continue
            limit = Decimal(str(row["mue"]).strip())
            mai = str(row.get("mai", "")).strip()[:1]
            verified = str(row.get("verified", "")).strip().lower() == "yes"
            version = table.provenance.get("version", table.name)
            source = f"MUE table {version}: {code} MUE {limit}, MAI {mai}; NCCI Policy Manual for Medicare Services ch. I (MUE)"
            caveat = "" if verified else (
                " (confirm this MUE value in the CMS practitioner MUE release: a different value would "
                "change the verdict, so this is a warning)"
            )
            bilateral = info is not None and str(info.get("bilateral_indicator", "")) == "1"
            if mai == "1":
                for entry in lines:
                    units = valid_units(entry)
                    if units is None or units <= limit:
                        continue
                    if bilateral and _bilateral_doubling(ctx, [entry], units, limit, day.payer_id):
                        continue  # EPI-MOD-002
                    yield self._line_edit(code, entry, units, limit, verified, caveat, source, bilateral)
            elif mai in ("2", "3"):
                total = sum((valid_units(e) or Decimal(0) for e in lines), Decimal(0))
                if bilateral and _bilateral_doubling(ctx, lines, total, limit, day.payer_id):
                    continue  # EPI-MOD-002
                yield from self._day_edit(day, code, lines, limit, mai, verified, caveat, source)

    def _line_edit(self, code, entry, units, limit, verified, caveat, source, bilateral) -> Finding:
        fix = (
            f"Report at most {units_text(limit)} of {code} per line. If more were medically "
            "necessary, report the additional units on separate lines with an appropriate modifier "
            "(anatomic RT/LT, 76/77, 91 or XS/59) and keep the documentation."
        )
        if bilateral:
            fix += f" For a bilateral {code} to Medicare, report one line with modifier 50 and 1 unit."
        return self.finding(
            entry.claim,
            f"{units_text(units)} of {code} on this line exceed the Medicare MUE of {limit} per line "
            f"(MAI 1, line edit): all units of the line are denied{caveat}.",
            fix=fix,
            line=entry.line,
            severity=Severity.ERROR if verified else Severity.WARNING,
            source=source,
        )

    def _day_edit(self, day, code, lines, limit, mai, verified, caveat, source) -> Iterable[Finding]:
        total, culprit = _over(lines, limit)
        if total <= limit:
            return
        if culprit.prior is not None:
            # earlier nights' lines (claim history) already pass the limit: the finding goes
            # on the run's first line of the code, which adds units to a day over the limit
            culprit = next((e for e in lines if e.prior is None), culprit)
        others = _breakdown(lines, culprit) if len(lines) > 1 else units_text(total) + " on this line"
        if mai == "2":
            kind = "MAI 2, date of service edit: policy"
            consequence = "all units for the day are denied, and the limit is absolute, not appealable"
            severity = Severity.ERROR if verified else Severity.WARNING
            fix = (
                f"Report no more than {units_text(limit)} of {code} for this patient on "
                f"{day.service_date.isoformat()} across all claims; remove the extra units or lines."
            )
        else:
            kind = "MAI 3, date of service edit: clinical"
            consequence = "all units for the day are denied; the denial is appealable with documentation"
            severity = Severity.WARNING
            fix = (
                f"Report no more than {units_text(limit)} of {code} on this date, or keep documentation "
                "of the medical necessity of the extra units and expect to appeal."
            )
        yield paired(self.finding(
            culprit.claim,
            f"{units_text(total)} of {code} on {day.service_date.isoformat()} ({others}) exceed the Medicare "
            f"MUE of {limit} per day ({kind}): {consequence}{caveat}.",
            fix=fix,
            line=culprit.line,
            severity=severity,
            source=source,
            related=related(lines, culprit.claim),
        ), culprit, lines)


@register
class EpiduralOnePerSession(Rule):
    """An interlaminar epidural code (62320-62327) is reported once, with one unit, per session.

    What it checks:
        For each code of 62320-62327, the units summed over the patient-day (same patient,
        date and rendering provider, across lines, claims and files): more than one is an
        error. The same code on two lines counts twice. The finding is on the line that
        takes the total over one, and names the other lines.

    Why payers deny it:
        The codes describe one injection session in one spinal region, whatever the number
        of levels or injections; the catheter codes (62324-62327) cover the whole infusion.
        The practitioner MUE for these codes is 1, and the Medicare ESI LCD articles allow
        one interlaminar or caudal level per session: the extra unit or line is denied.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", units: 2}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", units: 1}]}

    Configuration:
        None. Applies to every payer: one code per region per session is CPT code structure
        and LCD policy, not only a Medicare MUE. Two different codes of the family for one
        region are EPI-FAM-001; two regions are EPI-FAM-002. EPI-MUE-001 does not check
        these codes, so an excess is reported once. The CMS practitioner MUE of every code
        of 62320-62327 is 1 (release effective 2024-07-01), and the CPT descriptors and
        the LCD session limit say the same: nothing a claim shows changes the verdict.

    Source:
        CPT 62320-62327 descriptors (one injection or catheter per region per session);
        CMS practitioner MUE table (62320-62327: MUE 1, MAI 3), release effective
        2024-07-01; ESI LCD billing articles A58745, A58731, A56651 (one interlaminar/caudal
        level per session).
    """

    id = "EPI-MUE-002"
    name = "epidural-one-per-session"
    summary = "62320-62327 are reported once per session with one unit (summed across lines and claims)"
    category = Category.UNITS
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = "CPT 62320-62327 descriptors; CMS practitioner MUE 1 (release effective 2024-07-01); ESI LCD articles A58745/A58731/A56651"
    status_code = "A7:476"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        for code, lines in _by_code(day.entries).items():
            info = procedure_info(ctx, code, day.service_date)
            if info is None or info.get("family") != EPIDURAL_FAMILY:
                continue
            total, culprit = _over(lines, Decimal(1))
            if total <= 1:
                continue
            catheter = str(info.get("catheter", "")) == "yes"
            if len(lines) == 1:
                what = f"{code} is reported with {units_text(total)}"
            else:
                what = (
                    f"{code} is reported {len(lines)} times on {day.service_date.isoformat()} "
                    f"({_breakdown(lines, culprit)})"
                )
            scope = (
                "an indwelling catheter code covers the whole infusion, reported once"
                if catheter else
                "it is reported once per spinal region per session, whatever the number of levels or injections"
            )
            yield self.finding(
                culprit.claim,
                f"{what}; {scope}. The extra unit is denied (MUE 1).",
                fix=(
                    f"Report {code} once, with 1 unit, for this session; remove the extra "
                    f"{'line' if len(lines) > 1 else 'units'}. Do not repeat it with 76 or 59."
                ),
                line=culprit.line,
                related=related(lines, culprit.claim),
            )
