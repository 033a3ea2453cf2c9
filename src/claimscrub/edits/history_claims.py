"""Claims that refer to an earlier claim, checked against the claim history.

A replacement (CLM05-3 = 7) or void (8) stands for a claim the payer already has. With a
claim history (``--history``), claimscrub knows which claims earlier runs forwarded, so a
replacement or void that matches none of them is reported. A match is recorded when the
run is written: the earlier claim's lines stop counting as billed, and a replacement's
lines take their place (:mod:`claimscrub.history.store`).
"""

from __future__ import annotations

from typing import Iterable

from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.model import Claim

WHAT = {"7": "replacement", "8": "void"}


@register
class ReplacementWithoutOriginal(Rule):
    """A replacement or void claim that matches no claim earlier runs forwarded.

    What it checks:
        With a claim history (``--history``), a claim whose frequency code CLM05-3 is 7
        (replacement of a prior claim) or 8 (void/cancel of a prior claim) is matched to the
        claims earlier runs forwarded for the same patient: an earlier claim whose CLM01
        equals this claim's REF*F8 (payer claim control number) or its CLM01. A claim that
        matches none gets a warning. Without a history the edit does not run (nothing can be
        matched).

        What could still change the verdict: the original may have been sent before the
        history began (load such files with ``claimscrub history import``), or under
        another patient identifier (a corrected member id), or REF*F8 holds the payer's own
        control number and CLM01 changed. The payer matches by its control number, which
        the history does not hold, so this is a warning, not an error.

    Why payers deny it:
        A replacement or void whose original the payer cannot find is rejected or denied
        (claim adjustment reason code 129, "prior processing information appears
        incorrect"); a replacement sent for a claim that was never billed leaves the
        service unpaid until it is resent as an original (CLM05-3 = 1).

    Failing example:
        history:
          - {id: C8, lines: [{code: "62323", charge: 650}]}
        claims:
          - {id: C9, frequency: "7", payer_claim_control_number: "C7", lines: [{code: "62323", charge: 650}]}

    Corrected example:
        history:
          - {id: C8, lines: [{code: "62323", charge: 650}]}
        claims:
          - {id: C9, frequency: "7", payer_claim_control_number: "C8", lines: [{code: "62323", charge: 650}]}

    Configuration:
        None beyond selection and severity overrides. Runs only with a claim history.

    Source:
        ASC X12 005010X222A1 TR3, 2300 CLM05-3 claim frequency type code (7 replacement, 8
        void; NUBC code source 235) and 2300 REF*F8 payer claim control number; CMS claim
        adjustment reason code 129.
    """

    id = "EPI-REF-002"
    name = "replacement-without-original"
    summary = "Replacement or void claim (CLM05-3 = 7 or 8) matching no claim earlier runs forwarded (with --history)"
    category = Category.SYNTAX
    severity = Severity.WARNING
    scope = Scope.CLAIM
    source = ("ASC X12 005010X222A1 2300 CLM05-3 (7 replacement, 8 void) and REF*F8 payer claim control "
              "number; CARC 129")
    status_code = "A7:464"
    #: reads ctx.history: a partitioned run runs it where the history is (claimscrub.partition)
    reads_history = True

    def check(self, claim: Claim, ctx: RuleContext) -> Iterable[Finding]:
        history = ctx.history
        if history is None:
            return
        originals = history.originals_of(claim)
        if originals is None or originals:
            return
        frequency = claim.frequency_code.strip()
        refs = [r for r in dict.fromkeys((claim.payer_claim_control_number.strip(), claim.claim_id.strip())) if r]
        yield self.finding(
            claim,
            f"This {WHAT[frequency]} claim (CLM05-3 = {frequency}) matches no claim forwarded in an earlier run "
            f"for this patient (looked for claim id {' or '.join(refs)}): the payer may not find the claim it "
            f"{'replaces' if frequency == '7' else 'voids'}.",
            fix=(
                "Put the original claim's payer claim control number in REF*F8 (835 CLP07 or the 277CA of the "
                "original) and check the patient's member id against the original; if the original was never "
                "sent, send this claim as an original (CLM05-3 = 1). Originals sent before the history began "
                "can be loaded with 'claimscrub history import'."
            ),
        )
