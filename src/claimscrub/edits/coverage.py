"""Coverage of the rule data: a procedure code no loaded table knows is reported, never passed.

The billing edits judge a code by what the tables say about it (its family and region,
its MUE, its NCCI pairs, its RVUs). A code that none of the procedure tables knows was
not judged by them, and a clean report for it would be a silent pass; EPI-TBL-001 says so
once per line, and is the only edit that does (the others skip codes they cannot judge).
"""

from __future__ import annotations

from typing import Iterable

from claimscrub.engine import Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity

#: The tables that describe procedure codes. A code known to any one of them (whatever the
#: row's dates) is checked by the edits that read it.
PROCEDURE_TABLES = ("procedure_codes", "rvu", "mue")


@register
class UncheckedProcedureCode(Rule):
    """A procedure code that no loaded procedure table knows: its billing edits did not run.

    What it checks:
        For each service line, whether its procedure code (SV101-2) is in at least one of
        the loaded procedure tables: ``procedure_codes`` (the specialty's codes), ``rvu``
        (MPFS relative values) and ``mue``, bundled in ``edits/`` or given with
        ``--rules``. A code in none of them is reported as unchecked (info), once per line.
        The row dates do not matter here: a code known but deleted for the date of service
        is judged by the code-validity edits, not reported as unchecked.

    Why payers deny it:
        This is not a payer denial. The scrubber's edits judge a code by what the tables say
        about it; for a code no table knows, the unit limits, pairs, family and pricing
        rules could not run, and an accepted claim would only mean "not checked".

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323"}, {code: "27447"}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323"}]}

    Configuration:
        Load complete tables to cover every code: ``--rules DIR`` with the CMS PPRRVU
        relative value file (every payable HCPCS/CPT code), the practitioner MUE file and
        the PTP files. ``ignore = ["EPI-TBL-001"]`` turns the report off.

    Source:
        claimscrub rule data coverage (edits/procedure_codes.csv, edits/rvu.csv,
        edits/mue.csv or the CMS PPRRVU / MUE files); design: a lookup miss is unchecked,
        never a silent pass.
    """

    id = "EPI-TBL-001"
    name = "unchecked-procedure-code"
    summary = "Procedure code unknown to every loaded procedure table: its billing edits did not run"
    category = Category.CODE_VALIDITY
    severity = Severity.INFO
    scope = Scope.LINE
    source = "claimscrub rule tables procedure_codes, rvu, mue (bundled edits/ or --rules); unchecked, not passed"

    def check(self, subject, ctx: RuleContext) -> Iterable[Finding]:
        claim, line = subject
        code = line.procedure_code.strip().upper()
        if not code:
            return
        tables = ctx.tables
        loaded = [tables.get(name) for name in PROCEDURE_TABLES] if tables is not None else []
        loaded = [t for t in loaded if t is not None]
        known = ctx.extras.setdefault("coverage.known", {})
        if code not in known:
            if len(known) > 100_000:
                known.clear()
            known[code] = any(table.knows(code=code) for table in loaded)
        if known[code]:
            return
        names = ", ".join(t.name for t in loaded) or "none"
        yield self.finding(
            claim,
            f"Unchecked: no loaded table knows {code}; its billing edits did not run "
            f"(procedure tables loaded: {names}).",
            fix=(
                f"Check {code} for a typo; if it is right, load tables that cover it (--rules DIR with the "
                "CMS PPRRVU, practitioner MUE and PTP files) and scrub again."
            ),
            line=line,
        )
