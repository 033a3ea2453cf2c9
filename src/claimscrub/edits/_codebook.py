"""What the rule tables say about a procedure code or a modifier, for the family edits.

A private helper of the imaging, modifier, E/M and claim-split edits (the leading
underscore keeps :func:`claimscrub.engine.load_rules` from importing it as an edit module).
The facts live in ``edits/procedure_codes.csv`` and ``edits/modifiers.csv``; the line's date
of service selects the row.

A code that the procedure table does not know is not judged here (the edits skip it):
EPI-TBL-001 reports it as unchecked.

``verified=no`` in a row marks a value not yet checked against its CMS source; a finding
whose verdict that value could change is a warning, not an error (see :func:`severity_for`).
A table without a ``verified`` column (for example a complete CMS file loaded with
``--rules``) counts as verified.
"""

from __future__ import annotations

from datetime import date
from typing import Iterable, Optional

from claimscrub.engine import RuleContext
from claimscrub.findings import RelatedClaim, Severity
from claimscrub.grouping import DayLine, related_claim
from claimscrub.icd10 import add_months
from claimscrub.model import Claim, ServiceLine

PROCEDURES = "procedure_codes"
MODIFIERS = "modifiers"

#: families of edits/procedure_codes.csv the edits refer to
INTERLAMINAR = "epidural-interlaminar"
TRANSFORAMINAL = "epidural-transforaminal"
IMAGING_GUIDANCE = "imaging-guidance"
EPIDUROGRAPHY = "epidurography"
ULTRASOUND_GUIDANCE = "ultrasound-guidance"

#: global periods (MPFS GLOB DAYS) that carry a surgical package
MINOR_GLOBALS = ("000", "010")
MAJOR_GLOBAL = "090"
ADD_ON_GLOBAL = "ZZZ"


def procedure(ctx: RuleContext, code: str, day: Optional[date]) -> Optional[dict]:
    """The procedure-table row for ``code`` that applies on ``day``, if any.

    Memoised for the run in ``ctx.extras`` (the tables do not change during a run, and
    every patient-day edit asks about the same few codes and dates)."""
    cache = ctx.extras.setdefault("claimscrub.edits._codebook.procedure", {})
    key = (code, day)
    if key not in cache:
        table = ctx.tables.get(PROCEDURES) if ctx.tables is not None else None
        cache[key] = table.first(day, code=code) if table is not None and code else None
    return cache[key]


def procedure_any_date(ctx: RuleContext, code: str, day: Optional[date]) -> Optional[dict]:
    """The row that applies on ``day``, else the code's latest row whatever its dates.

    For facts that do not change when a code is deleted (is it an E/M, what global
    period did it carry); whether the code is valid on the date is another edit's business.
    """
    row = procedure(ctx, code, day)
    if row is not None:
        return row
    table = ctx.tables.get(PROCEDURES) if ctx.tables is not None else None
    if table is None or not code:
        return None
    rows = table.index("code").get((code,), [])
    return max(rows, key=lambda r: r.get("effective") or date.min) if rows else None


def flag(row: Optional[dict], column: str) -> bool:
    """A yes/no column of a row."""
    return row is not None and str(row.get(column, "")).strip().lower() in ("yes", "y", "1", "true")


def is_em(row: Optional[dict]) -> bool:
    return flag(row, "is_em")


def family(row: Optional[dict]) -> str:
    return str(row.get("family", "")) if row is not None else ""


def global_days(row: Optional[dict]) -> str:
    return str(row.get("global_days", "")).strip().upper() if row is not None else ""


def is_verified(row: Optional[dict]) -> bool:
    if row is None:
        return False
    value = str(row.get("verified", "yes")).strip().lower()
    return value not in ("no", "n", "false", "0")


def severity_for(rows: Iterable[Optional[dict]], strong: Severity = Severity.ERROR) -> Severity:
    """``strong`` when every row the finding rests on is verified, else a warning."""
    return strong if all(is_verified(r) for r in rows) else Severity.WARNING


def unverified_note(rows: Iterable[Optional[dict]], what: str) -> str:
    """A sentence asking to confirm the table value a warning rests on, or ''."""
    codes = sorted({str(r.get("code")) for r in rows if r is not None and not is_verified(r)})
    if not codes:
        return ""
    return (
        f" Confirm {what} of {', '.join(codes)} in the CMS PFS relative value file for the date of "
        "service: a different value would change this verdict, so it is a warning."
    )


def one_cycle_after(day: date) -> date:
    """The same calendar day a year later (28 February for 29 February): CPT and ICD-10-CM
    change codes once a year, so a change date not checked against its source is off by
    one annual cycle at most."""
    return add_months(day, 12)


def modifier(ctx: RuleContext, code: str, day: Optional[date]) -> Optional[dict]:
    table = ctx.tables.get(MODIFIERS) if ctx.tables is not None else None
    if table is None:
        return None
    return table.first(day, modifier=code)


def pointed_diagnoses(claim: Claim, line: ServiceLine) -> set[str]:
    """The ICD-10-CM codes a line points at (SV107 resolved against the claim's HI)."""
    codes = set()
    for pointer in line.diagnosis_pointers:
        dx = claim.diagnosis(pointer)
        if dx is not None and dx.code:
            codes.add(dx.code)
    return codes


def same_claim(a: Claim, b: Claim) -> bool:
    return (a.file_index, a.index, a.file) == (b.file_index, b.index, b.file)


def where(entry: DayLine, relative_to: Optional[Claim] = None) -> str:
    """``62323 on line 1`` or ``62323 on claim C2 line 1`` (naming the file when it differs)."""
    text = f"{entry.code} on "
    if entry.prior is not None:
        return text + (f"claim {entry.claim.claim_id} line {entry.line.number} (file {entry.prior.file_name}, "
                       f"billed in the run of {entry.prior.run_date.isoformat()})")
    if relative_to is None or not same_claim(entry.claim, relative_to):
        text += f"claim {entry.claim.claim_id}"
        if relative_to is not None and entry.claim.file != relative_to.file:
            text += f" (file {entry.claim.file})"
        text += " "
    return text + f"line {entry.line.number}"


def related(entries: Iterable[DayLine], relative_to: Optional[Claim] = None) -> list[RelatedClaim]:
    """The claims of ``entries`` other than ``relative_to``, as a finding names them in its
    ``related`` field (the structured twin of :func:`where`): claim id, file, line, and the
    run that billed it when the line comes from the claim history."""
    out: dict[RelatedClaim, None] = {}
    for entry in entries:
        if entry.prior is None and relative_to is not None and same_claim(entry.claim, relative_to):
            continue
        out[related_claim(entry.claim, entry)] = None
    return list(out)


def listing(items: list[str], limit: int = 6) -> str:
    """``a``, ``a and b``, ``a, b and c``; past ``limit`` items, ``a, b, ... and 7 more``."""
    items = list(dict.fromkeys(items))
    if len(items) > limit:
        items = items[: limit - 1] + [f"{len(items) - limit + 1} more"]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
