"""Drug supply codes on the professional claim.

EPI-DRUG-001: a steroid injection J-code billed by the physician for a service in a
facility setting, where the facility bills the drug.
"""

from __future__ import annotations

from typing import Iterable

from claimscrub.edits._codebook import family, procedure
from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity

STEROID_DRUG = "steroid-drug"
#: places of service where the facility, not the physician, bills the drug supply
#: (Medicare Claims Processing Manual ch. 12 section 20.4.2): off-campus and on-campus
#: outpatient hospital, inpatient hospital, emergency room, ambulatory surgical center
FACILITY_DRUG_POS = {
    "19": "off-campus outpatient hospital",
    "21": "inpatient hospital",
    "22": "on-campus outpatient hospital",
    "23": "emergency room",
    "24": "ambulatory surgical center",
}


@register
class SteroidDrugInFacility(Rule):
    """Steroid drug J-code on the professional claim for a facility place of service.

    What it checks:
        A line whose code the procedure table calls a steroid drug (J1020, J1030, J1040,
        J3301, J1100: family ``steroid-drug`` in ``edits/procedure_codes.csv``) with a place
        of service (SV105, else CLM05-1) of 19, 21, 22, 23 or 24.

        What could still change the verdict: a place of service on the claim that does not
        match where the service was given, or a payer arrangement under which the
        physician supplies the drug in the facility. Hence a warning.

    Why payers deny it:
        In a hospital outpatient department, inpatient stay, emergency room or ASC the
        facility supplies the drug and bills it on its own claim; the physician's claim
        carries only the professional service. A drug supply billed by the physician there
        is denied (or recouped) as billed by the wrong entity.

    Failing example:
        claims:
          - {id: C1, pos: "22", lines: [{code: "62323", charge: 500}, {code: "J3301", units: 8, charge: 40}]}

    Corrected example:
        claims:
          - {id: C1, pos: "22", lines: [{code: "62323", charge: 500}]}

    Configuration:
        Applies to every payer: the facility-bills-the-drug rule is the Medicare fee
        schedule's and commercial payers follow it; raise or silence it per payer in
        claimscrub.toml.

    Source:
        Medicare Claims Processing Manual (Pub. 100-04) ch. 12 section 20.4.2 (facility
        settings; MPFS drug supply payable to the physician only in non-facility settings).
    """

    id = "EPI-DRUG-001"
    name = "steroid-drug-in-facility"
    summary = "Steroid J-code on the professional claim with facility POS 19/21/22/23/24: the facility bills the drug"
    category = Category.PLACE_OF_SERVICE
    severity = Severity.WARNING
    scope = Scope.LINE
    source = "Medicare Claims Processing Manual (Pub. 100-04) ch. 12 section 20.4.2 (facility settings)"
    status_code = "A8:454"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        if family(procedure(ctx, line.procedure_code, line.service_date)) != STEROID_DRUG:
            return
        pos = (line.place_of_service or claim.place_of_service or "").strip()
        setting = FACILITY_DRUG_POS.get(pos)
        if setting is None:
            return
        yield self.finding(
            claim,
            f"{line.procedure_code} (steroid drug supply) is billed on the professional claim for place of "
            f"service {pos} ({setting}): in a facility setting the facility bills the drug.",
            fix=f"Remove the {line.procedure_code} line from the professional claim; the facility reports the drug.",
            line=line,
        )
