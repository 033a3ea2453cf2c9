"""Add-on codes reported without their primary procedure.

An add-on code ("List separately in addition to code for primary procedure": global period
ZZZ) describes work done only together with a primary procedure: each additional
transforaminal level (64480, 64484), facet level (64491, 64492, 64494, 64495),
radiofrequency-ablated facet level (64634, 64636), fluoroscopic guidance 77003. Which primaries
each add-on takes is ``edits/addon_codes.csv``, selected by the date of service.
"""

from __future__ import annotations

from typing import Iterable, Optional

from claimscrub.edits._codebook import listing, related, where
from claimscrub.edits.imaging import FLUOROSCOPY, imaging_edits_cover
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import PatientDay

ADDON_TABLE = "addon_codes"


@register
class AddOnWithoutPrimary(Rule):
    """An add-on code billed without any of its primary procedures on the patient-day.

    What it checks:
        On one patient-day (same patient, date of service and rendering provider, across
        every claim and file of the run), a line whose code is an add-on code of
        ``edits/addon_codes.csv`` (64480, 64484, 64491, 64492, 64494, 64495, 64634, 64636,
        77003) when none of its eligible primaries is on the day: 64480 needs 64479, 64484
        needs 64483, 64491 needs 64490, 64492 needs 64490 or 64491, 64494 needs 64493, 64495
        needs 64493 or 64494, 64634 needs 64633, 64636 needs 64635, and 77003 one of the
        primaries its CPT parenthetical lists. The finding goes on the add-on line and
        names the primary to bill. 77003 on a day with 62320-62327 or a code whose
        descriptor includes imaging guidance is left to the imaging edits (EPI-IMG-001/002),
        so it is reported once.

        What could still change the verdict: nothing a claim shows. The primary may have
        been billed under another rendering provider or date by mistake; the fix says so.

    Why payers deny it:
        CPT add-on codes are never reported alone, and the CMS NCCI add-on code edits deny
        a Type I add-on code when none of its primary codes is paid to the same provider for
        the same beneficiary on the same date of service.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "64484", charge: 150}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483", charge: 300}, {code: "64484", charge: 150}]}

    Configuration:
        None beyond selection and severity overrides. Other add-on codes are judged once
        their rows are added to the add-on table (or a table of that name is given with
        ``--rules``).

    Source:
        CPT descriptors and parentheticals of 64480, 64484, 64491, 64492, 64494, 64495,
        64634, 64636 and 77003 ("List separately in addition to code for primary
        procedure"); CMS NCCI add-on code edits (Type I); NCCI Policy Manual for Medicare
        Services ch. I (add-on codes); CMS PFS relative value file (GLOB DAYS ZZZ).
    """

    id = "EPI-ADD-001"
    name = "add-on-without-primary"
    summary = "An add-on code (64480, 64484, 64491-64495, 64634, 64636, 77003) needs its primary the same day"
    category = Category.CODE_VALIDITY
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = (
        "CPT add-on code descriptors and parentheticals; CMS NCCI add-on code edits (Type I); "
        "NCCI Policy Manual for Medicare Services ch. I"
    )
    status_code = "A7:454"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        table = ctx.tables.get(ADDON_TABLE) if ctx.tables is not None else None
        if table is None:
            return
        codes = {entry.code for entry in day.entries}
        covered: Optional[bool] = None  # whether the imaging edits judge the day's guidance
        for entry in day.entries:
            rows = table.lookup(day.service_date, addon=entry.code)
            if not rows:
                continue
            primaries = [str(row["primary"]) for row in rows]
            if codes & set(primaries):
                continue
            if entry.code == FLUOROSCOPY:
                if covered is None:
                    covered = imaging_edits_cover(day, ctx)  # once per day, not per line
                if covered:
                    continue  # EPI-IMG-001/002
            billed = [e for e in day.entries if e is not entry and e.code]
            also = (
                f" Billed that day by this provider: {listing([where(e, entry.claim) for e in billed])}."
                if billed else ""
            )
            yield self.finding(
                entry.claim,
                f"{entry.code} is an add-on code, but none of its primary procedures "
                f"({listing(primaries, limit=8)}) is billed for this patient on "
                f"{day.service_date.isoformat()} by this rendering provider.{also}",
                fix=(
                    f"Bill {entry.code} only with its primary procedure ({listing(primaries, limit=8)}) on the "
                    "same date by the same provider; if the primary was billed under another provider or "
                    "date by mistake, correct that claim. If only one level was treated, report the "
                    "primary code instead of the add-on."
                ),
                line=entry.line,
                related=related(billed, entry.claim),
            )
