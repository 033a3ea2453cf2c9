"""The same service billed twice: a line repeated on another claim of the run.

A duplicate is the most common front-end rejection: the same patient, date of service,
procedure code, modifiers and rendering provider on two claims, often a whole claim
resent or a file scrubbed together with a copy of itself. The patient-day already holds
patient, date and rendering provider, so a duplicate is a line of the day whose code and
modifiers repeat a line of an earlier claim (:func:`claimscrub.grouping.find_duplicates`).

With a claim history (``--history``), the lines billed in earlier runs are prior entries of
the patient-day (:mod:`claimscrub.history.prior`) and come first, so a line that repeats one
billed on an earlier night is a duplicate of it, named with its claim id and run date.

The duplicate is rejected by this edit alone. The other patient-day edits see each claim's
own lines once (:func:`claimscrub.grouping.duplicate_views`): a copy never turns its
original into two units or two codes, and the copy is still judged on its own merits.
"""

from __future__ import annotations

from typing import Iterable

from claimscrub.edits._codebook import related, where
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import PatientDay, find_duplicates


@register
class DuplicateLine(Rule):
    """A service line billed again on another claim: same patient, date, code, modifiers
    and rendering provider.

    What it checks:
        On one patient-day (same patient, date of service and rendering provider, across
        every claim and file of the run), a line whose procedure code and modifiers (in any
        order) repeat a line of an earlier claim of the run, in run order (file, then
        claim). With a claim history (``--history``), lines billed and forwarded in earlier
        runs count as earlier claims too (not rejected ones, nor claims replaced or voided
        since). The finding goes on the later line and names the earlier one; a claim
        whose every line repeats another claim's is a resent claim, and a claim id seen
        twice is said so. Lines of one claim are not compared with each other (the units
        edits judge those), and replacement or void claims (CLM05-3 = 7 or 8) are never
        duplicates: they stand for the claim they replace.

        What could still change the verdict: the service may really have been performed
        twice on the day, which the record shows; it is then reported with a repeat
        modifier (76, 77, 91) or as units, which makes the lines differ. As billed, the
        payer denies the second line as an exact duplicate, so this is an error.

    Why payers deny it:
        Payers reject or deny an exact duplicate of a claim or line already received
        (claim adjustment reason code 18, "exact duplicate claim/service"; 277CA status
        78). A resent claim delays the original's payment and is counted against the
        billing office in duplicate-billing audits.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}
          - {id: C2, lines: [{code: "62323", charge: 500}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323", charge: 500}]}

    Configuration:
        None beyond selection and severity overrides. Replacement claims are matched to
        their originals by CLM05-3, not by this edit.

    Source:
        CMS claim adjustment reason code 18 (exact duplicate claim/service) and Medicare
        Claims Processing Manual ch. 1 section 120 (detection of duplicate claims); ASC X12
        claim status code 78 (duplicate of a previously processed claim/line).
    """

    id = "EPI-DUP-001"
    name = "duplicate-line"
    summary = "The same patient, date, code, modifiers and rendering provider on two claims"
    category = Category.DUPLICATE
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = (
        "CARC 18 (exact duplicate claim/service); Medicare Claims Processing Manual ch. 1 section 120 "
        "(duplicate claims); claim status code 78"
    )
    status_code = "A7:78"
    sees_duplicates = True

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        for duplicate in find_duplicates(day):
            entry, original = duplicate.entry, duplicate.original
            same_id = entry.claim.claim_id == original.claim.claim_id
            modifiers = "-".join(entry.modifiers)
            billed = entry.code + (f"-{modifiers}" if modifiers else "")
            message = (
                f"{billed} on {day.service_date.isoformat()} repeats {where(original, entry.claim)} for the "
                "same patient and rendering provider: an exact duplicate of a service already billed."
            )
            if same_id:
                message += f" Claim {entry.claim.claim_id} appears more than once in the run."
            yield self.finding(
                entry.claim,
                message,
                fix=(
                    "Remove the duplicate line, or do not send this claim again if it is a resend. If the "
                    "service was really performed twice, report it with the repeat-procedure modifier "
                    "(76 or 77) and keep the documentation."
                ),
                line=entry.line,
                related=related([original], entry.claim),
            )
