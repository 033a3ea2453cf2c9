"""Split claims: one session's services billed on several claims.

The other patient-day edits still see the services together (a fluoroscopy code on a
second claim is still bundled into the injection on the first); this edit tells the billing
team that the session was split, which payers review and which is how such pairs slip through
claim-by-claim scrubbers.
"""

from __future__ import annotations

from typing import Iterable

from claimscrub.edits._codebook import listing, related_claim
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import PatientDay
from claimscrub.model import Claim

#: other claims named in one message; the rest are counted
MAX_NAMED = 5


def _label(claim: Claim, relative_to: Claim) -> str:
    text = f"claim {claim.claim_id}"
    if claim.file != relative_to.file:
        text += f" in file {claim.file}"
    return text


@register
class SplitPatientDay(Rule):
    """The services of one patient-day are spread over several claims.

    What it checks:
        A patient-day (same patient, same date of service, same rendering provider) whose
        service lines come from more than one claim, in one file or across the files of the
        run: for example 62323 on one claim and 77003 or an E/M on another. Each claim
        involved gets one finding naming the other claims and their codes for that day (the
        first five; the rest are counted), and saying so when the same claim id appears
        twice (a duplicate submission rather than a split).
        Lines with a different date or a different rendering provider are other
        patient-days and do not count.

    Why payers deny it:
        NCCI edits, MUE date-of-service limits and the global surgery rules apply to the
        patient-day, not to one claim: the payer pairs the claims in adjudication and
        denies the bundled line, and a pattern of split sessions draws review as
        unbundling. Billing the session on one claim lets the scrubber and the payer see
        the same thing.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}
          - {id: C2, lines: [{code: "J3301", units: 8, charge: 40}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}, {code: "J3301", units: 8, charge: 40}]}

    Configuration:
        A warning. Payers that require one claim per encounter can make it an error with
        a per-payer severity override.

    Source:
        NCCI Policy Manual ch. I (edits apply per beneficiary, provider and date of service
        across claims); CMS MUE date-of-service adjudication (MAI 2/3 sum across claims).
    """

    id = "EPI-SPLIT-001"
    name = "split-patient-day"
    summary = "One patient-day's services are billed on several claims"
    category = Category.CLAIM_SPLIT
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = "NCCI Policy Manual for Medicare Services ch. I (same beneficiary, provider, date of service); CMS MUE MAI 2/3"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        claims = day.claims()
        if len(claims) < 2:
            return
        codes: dict[tuple[str, int], list[str]] = {}
        for entry in day.entries:
            codes.setdefault((entry.claim.file, entry.claim.index), []).append(entry.code)
        for claim in claims:
            mine = codes[(claim.file, claim.index)]
            others = [other for other in claims if other is not claim]
            named = [
                f"{_label(other, claim)} ({listing(codes[(other.file, other.index)])})"
                for other in others[:MAX_NAMED]
            ]
            if len(others) > MAX_NAMED:
                rest = len(others) - MAX_NAMED
                named.append(f"{rest} more claim{'s' if rest != 1 else ''}")
            duplicate = ""
            if any(other.claim_id == claim.claim_id for other in others):
                duplicate = (
                    f" Claim id {claim.claim_id} appears more than once for this session: if it is the "
                    "same claim sent twice, the payer denies the second as a duplicate."
                )
            yield self.finding(
                claim,
                f"This claim's services on {day.service_date.isoformat()} ({listing(mine)}) belong to "
                f"the same session as {listing(named, limit=MAX_NAMED + 1)}: same patient, date and rendering provider."
                + duplicate,
                fix=(
                    "Bill the session's services on one claim, once (void and replace the others as "
                    "needed)."
                ),
                related=[related_claim(other) for other in others],
            )
