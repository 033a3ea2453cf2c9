"""Frequency: epidural steroid injection sessions per spinal region in a rolling 12 months.

EPI-LCD-001 counts, for one patient, the dates of service with an ESI in each spinal region
across every claim and file of the run and, with a claim history (``--history``), the
sessions billed in earlier runs (prior entries of the patient's days, see
:mod:`claimscrub.history.prior`). Without a history the count can only be too low, never
too high.
"""

from __future__ import annotations

from datetime import date
from typing import Iterable, Optional

from claimscrub.edits._codebook import (
    related,
    INTERLAMINAR,
    TRANSFORAMINAL,
    family,
    flag,
    global_days,
    procedure,
    same_claim,
)
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import DayLine, PatientHistory

#: sessions per spinal region allowed in a rolling 12 months (L39240 family)
MAX_SESSIONS = 4
REGION_NAMES = {"CT": "cervical/thoracic", "LS": "lumbar/sacral"}


def year_before(day: date) -> date:
    """The same calendar day one year earlier (February 29 -> February 28)."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def counts_as_session(row: Optional[dict]) -> bool:
    """An ESI the LCD frequency limit counts: the A58993 region codes, i.e. interlaminar
    single injection with imaging (62321, 62323) and transforaminal (64479-64484)."""
    if family(row) == TRANSFORAMINAL:
        return True
    return family(row) == INTERLAMINAR and flag(row, "imaging") and not flag(row, "catheter")


FIX = ("Check the patient's injection history and the documented relief from the earlier sessions. This "
       "session is expected to be denied as not reasonable and necessary: with an ABN on file append GA (GZ "
       "without one).")


def _carrier_rank(ctx: RuleContext, entry: DayLine, day) -> tuple[bool, bool]:
    """Which line of a session date carries a finding: the run's own before a prior one,
    then a primary before an add-on."""
    return entry.prior is not None, global_days(procedure(ctx, entry.code, day.service_date)) == "ZZZ"


@register
class EpiduralSessionFrequency(Rule):
    """More than four ESI sessions in one spinal region in a rolling 12 months.

    What it checks:
        For one patient (same payer and member, across every claim, file and rendering
        provider of the run), the dates of service with an epidural steroid injection on a
        Medicare claim, per spinal region from ``edits/procedure_codes.csv``: 62321 and
        64479/64480 cervical/thoracic, 62323 and 64483/64484 lumbar/sacral (the region codes
        of A58993). A date is one session, whatever the number of lines or levels. A session
        is reported when it is the 5th or later in that region within the 12 months ending
        on its date (the earlier session must be after the same calendar day one year
        before). The finding goes on the session's ESI line and lists the earlier dates.
        A session billed out of order, dated before sessions billed on earlier nights, is
        reported when it makes more than four in a 12-month window ending on one of those
        later sessions (within a year after it): the payer has already paid them, so the
        session that arrives last is the one over the limit.

        Not counted: the without-imaging codes 62320/62322 (not covered under the LCD at all:
        EPI-LCD-002 reports them, and counting them would report one problem twice) and the
        catheter codes 62324-62327 (continuous infusion, not an ESI session). With a claim
        history (``--history``) the sessions billed in earlier runs count as well (they are
        named with their claim and run); a finding only ever goes on this run's claims.

    Why payers deny it:
        The Medicare ESI LCDs allow at most four ESI sessions per spinal region in a rolling
        12-month period, regardless of the number of levels; a fifth session is denied as
        not reasonable and necessary.

    Failing example:
        claims:
          - {id: C1, date: "2025-01-06", lines: [{code: "62323", charge: 500}]}
          - {id: C2, date: "2025-03-03", lines: [{code: "62323", charge: 500}]}
          - {id: C3, date: "2025-05-05", lines: [{code: "64483", charge: 500}]}
          - {id: C4, date: "2025-07-07", lines: [{code: "62323", charge: 500}]}
          - {id: C5, date: "2025-09-08", lines: [{code: "62323", charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, date: "2025-01-06", lines: [{code: "62323", charge: 500}]}
          - {id: C2, date: "2025-03-03", lines: [{code: "62323", charge: 500}]}
          - {id: C3, date: "2025-05-05", lines: [{code: "64483", charge: 500}]}
          - {id: C4, date: "2025-07-07", lines: [{code: "62323", charge: 500}]}
          - {id: C5, date: "2026-01-07", lines: [{code: "62323", charge: 500}]}

    Configuration:
        A warning: the LCDs allow more sessions when the record documents the need, which
        no claim shows. Medicare only (SBR09 = MB); other payers' lines are not counted.
        Sessions billed in earlier runs are counted only with a claim history (``--history``).

    Source:
        LCD L39240 / A58993 and the sister ESI articles A58745, A58731, A56651, A56681,
        A58777 (at most 4 sessions per spinal region in a rolling 12 months).
    """

    id = "EPI-LCD-001"
    name = "epidural-session-frequency"
    summary = "More than 4 ESI sessions per spinal region in a rolling 12 months (Medicare ESI LCDs)"
    category = Category.FREQUENCY
    severity = Severity.WARNING
    scope = Scope.PATIENT
    source = (
        "Medicare ESI LCD L39240 / A58993 and sister articles A58745, A58731, A56651, A56681, A58777 "
        "(4 sessions per spinal region per rolling 12 months)"
    )

    def check(self, history: PatientHistory, ctx: RuleContext) -> Iterable[Finding]:
        sessions: dict[str, dict[date, DayLine]] = {}
        for day in history.days:
            for entry in day.entries:
                if not entry.claim.is_medicare:
                    continue
                row = procedure(ctx, entry.code, day.service_date)
                region = str(row.get("region", "")) if row is not None else ""
                if not counts_as_session(row) or region not in REGION_NAMES:
                    continue
                by_date = sessions.setdefault(region, {})
                current = by_date.get(day.service_date)
                # the run's own line (not one billed in an earlier run) carries the finding,
                # and of those the primary (non-add-on) line
                if current is None or _carrier_rank(ctx, entry, day) < _carrier_rank(ctx, current, day):
                    by_date[day.service_date] = entry
        for region, by_date in sorted(sessions.items()):
            dates = sorted(by_date)
            billed = [d for d in dates if by_date[d].prior is not None]
            for index, session in enumerate(dates):
                entry = by_date[session]
                if entry.prior is not None:
                    continue  # billed on an earlier night: findings go on this run's claims only
                start = year_before(session)
                window = [d for d in dates[: index + 1] if d > start]
                if len(window) > MAX_SESSIONS:
                    earlier = ", ".join(self._where(d, by_date[d], entry) for d in window[:-1])
                    yield self.finding(
                        entry.claim,
                        f"This is the {_ordinal(len(window))} {REGION_NAMES[region]} ESI session for this patient "
                        f"in the 12 months ending {session.isoformat()} (earlier sessions: {earlier}); the Medicare "
                        f"ESI LCDs allow at most {MAX_SESSIONS} per spinal region in a rolling 12 months.",
                        fix=FIX,
                        line=entry.line,
                        related=related([by_date[d] for d in window[:-1]], entry.claim),
                    )
                    continue
                later = self._later_window(session, dates[: index + 1], billed)
                if later is not None:
                    end, window = later
                    others = ", ".join(self._where(d, by_date[d], entry) for d in window if d != session)
                    yield self.finding(
                        entry.claim,
                        f"This {REGION_NAMES[region]} ESI session of {session.isoformat()} is billed after later "
                        f"sessions already were: with it, this patient has {len(window)} sessions in the 12 months "
                        f"ending {end.isoformat()} (the others: {others}); the Medicare ESI LCDs allow at most "
                        f"{MAX_SESSIONS} per spinal region in a rolling 12 months.",
                        fix=FIX,
                        line=entry.line,
                        related=related([by_date[d] for d in window if d != session], entry.claim),
                    )

    @staticmethod
    def _later_window(session: date, before: list[date], billed: list[date]) -> Optional[tuple[date, list[date]]]:
        """A session billed out of order (its date before sessions billed on earlier nights):
        the first 12-month window ending on one of those later billed sessions (within a year
        after ``session``) that holds ``session`` and more than the limit, counting the
        sessions billed before and this run's sessions up to ``session``, or None."""
        counted = sorted(set(before) | set(billed))
        for end in counted:
            if end <= session or year_before(end) >= session:
                continue
            window = [d for d in counted if year_before(end) < d <= end]
            if len(window) > MAX_SESSIONS:
                return end, window
        return None

    @staticmethod
    def _where(day: date, entry: DayLine, relative_to: DayLine) -> str:
        text = f"{day.isoformat()} ({entry.code}"
        if entry.prior is not None:
            return text + (f", claim {entry.claim.claim_id} billed in the run of "
                           f"{entry.prior.run_date.isoformat()})")
        if not same_claim(entry.claim, relative_to.claim):
            text += f", claim {entry.claim.claim_id}"
            if entry.claim.file != relative_to.claim.file:
                text += f" in {entry.claim.file}"
        return text + ")"
