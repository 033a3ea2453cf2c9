"""Money at stake: the expected Medicare allowed amount of each service line.

    allowed = (work RVU + PE RVU + MP RVU) x conversion factor   [x units for per-unit codes]

* RVUs: the ``rvu`` table (bundled ``edits/rvu.csv`` or the CMS PPRRVU file) row of the
  line's code active on its date of service; the row of the line's 26 or TC modifier when
  the table has one, else the code's global row.
* PE RVU: facility or non-facility by the line's place of service (SV105, else CLM05-1)
  in ``edits/pos_facility.csv``; a place of service not listed there is non-facility
  (Pub. 100-04 ch. 12 section 20.4.2 lists the facility settings).
* Conversion factor: the ``conversion_factor`` table row for the date of service (the
  calendar year's non-QP factor), else the CONV FACTOR column of a CMS RVU row.
* Units: add-on codes (global ``ZZZ``) are paid per unit and multiplied by the units;
  every other code is one payment per line (units above one are the unit edits' business).
* National and unadjusted: no GPCI (locality), no multiple-procedure, bilateral or
  assistant adjustments, no sequestration or coinsurance split. A code whose MPFS status is
  not payable (status other than A, R, T) is not priced.

``None`` means not priced (code or year not in the tables, no date, no units): unknown,
never zero. Amounts are rounded to the cent, half up.

Money at risk has two parts that are never added together: the expected allowed amount of
the priced lines that error findings deny (:func:`claim_amount_at_risk`), and the billed
charges (SV102) of the denied lines that could not be priced (:func:`claim_unpriced_at_risk`).
A rejected claim whose lines are not priced therefore shows its billed charges at risk and
how many lines they are, never "$0.00".
"""

from __future__ import annotations

import weakref
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Iterable, Optional

from claimscrub.findings import Finding, Severity
from claimscrub.model import Claim, ServiceLine

CENT = Decimal("0.01")
PAYABLE_STATUS = ("", "A", "R", "T")
PER_UNIT_GLOBAL = ("ZZZ",)
SPLIT_MODIFIERS = ("26", "TC")


def _number(value: Any) -> Optional[Decimal]:
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def place_of_service(claim: Claim, line: ServiceLine) -> str:
    """SV105 when the line has one, else the claim's CLM05-1 (``line.place_of_service``)."""
    return (line.place_of_service or claim.place_of_service or "").strip()


def is_facility(tables: Any, pos: str, day: Optional[date]) -> bool:
    table = tables.get("pos_facility") if tables is not None else None
    if table is None or not pos:
        return False
    row = table.first(day, pos=pos)
    return row is not None and str(row.get("facility", "")).strip().lower() == "yes"


def conversion_factor(tables: Any, day: date, rvu_row: Optional[dict] = None) -> Optional[Decimal]:
    table = tables.get("conversion_factor") if tables is not None else None
    if table is not None:
        rows = [r for r in table.active(day) if _number(r.get("cf"))]
        if rows:
            return _number(rows[0]["cf"])
    if rvu_row is not None:
        value = _number(rvu_row.get("conversion_factor"))
        if value is not None and value > 0:
            return value
    return None


def rvu_row(tables: Any, code: str, modifiers: Iterable[str], day: date) -> Optional[dict]:
    table = tables.get("rvu") if tables is not None else None
    if table is None:
        return None
    for modifier in [m for m in modifiers if m in SPLIT_MODIFIERS] + [""]:
        row = table.first(day, code=code, modifier=modifier)
        if row is not None:
            return row
    return None


#: prices already worked out, per loaded tables: a batch repeats a few lines many times
_PRICES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def line_allowed(claim: Claim, line: ServiceLine, tables: Any) -> Optional[Decimal]:
    """The expected national allowed amount of one line, or ``None`` when not priced."""
    day = line.service_date
    code = line.procedure_code.strip().upper()
    if day is None or not code or tables is None:
        return None
    modifiers = tuple(m.upper() for m in line.modifiers if m.upper() in SPLIT_MODIFIERS)
    key = (code, modifiers, place_of_service(claim, line), day, line.units)
    try:
        cache = _PRICES.setdefault(tables, {})
    except TypeError:  # tables that cannot be weakly referenced: no cache
        cache = {}
    if key not in cache:
        if len(cache) > 100_000:
            cache.clear()
        cache[key] = _price(claim, line, tables, code, modifiers, day)
    return cache[key]


def _price(claim: Claim, line: ServiceLine, tables: Any, code: str, modifiers: tuple, day: date) -> Optional[Decimal]:
    row = rvu_row(tables, code, modifiers, day)
    if row is None or str(row.get("status", "")).strip().upper() not in PAYABLE_STATUS:
        return None
    facility = is_facility(tables, place_of_service(claim, line), day)
    work = _number(row.get("work_rvu"))
    pe = _number(row.get("pe_facility" if facility else "pe_nonfacility"))
    mp = _number(row.get("mp_rvu"))
    cf = conversion_factor(tables, day, row)
    if None in (work, pe, mp, cf):
        return None
    amount = (work + pe + mp) * cf
    if str(row.get("global_days", "")).strip().upper() in PER_UNIT_GLOBAL:
        if line.units is None or line.units <= 0:
            return None
        amount *= line.units
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def price_claim(claim: Claim, tables: Any) -> dict[str, Optional[Decimal]]:
    """Expected allowed amount of every line of a claim, by line number (LX01)."""
    return {line.number: line_allowed(claim, line, tables) for line in claim.lines}


def total_allowed(line_amounts: dict[str, Optional[Decimal]]) -> Optional[Decimal]:
    """The sum over the priced lines; ``None`` when no line is priced."""
    known = [v for v in line_amounts.values() if v is not None]
    return sum(known, Decimal(0)) if known else None


def with_amount_at_risk(finding: Finding, line_amounts: dict[str, Optional[Decimal]]) -> Finding:
    """An error finding without an amount gets what it puts at risk: its line's expected
    allowed amount, or the claim's total for a claim-level finding."""
    if finding.severity != Severity.ERROR or finding.amount_at_risk is not None:
        return finding
    amount = line_amounts.get(finding.line) if finding.line is not None else total_allowed(line_amounts)
    return finding if amount is None else finding.model_copy(update={"amount_at_risk": amount})


def unpriced_charges(claim: Claim, line_amounts: dict[str, Optional[Decimal]]) -> dict[str, Decimal]:
    """The billed charge (SV102) of each line that could not be priced, by line number
    (a line without a readable charge counts with 0.00)."""
    return {
        line.number: line.charge if line.charge is not None else Decimal(0)
        for line in claim.lines
        if line_amounts.get(line.number) is None
    }


def claim_unpriced_at_risk(findings: Iterable[Finding], unpriced: dict[str, Decimal]) -> tuple[Decimal, int]:
    """The billed charges and the number of the unpriced lines that the claim's error
    findings put at risk: a line with an error of its own, or every unpriced line of the
    claim when an error is claim-level (the whole claim is rejected)."""
    errors = [f for f in findings if f.severity == Severity.ERROR]
    if not errors or not unpriced:
        return Decimal(0), 0
    if any(f.line is None for f in errors):
        lines = set(unpriced)
    else:
        lines = {f.line for f in errors if f.line in unpriced}
    return sum((unpriced[n] for n in lines), Decimal(0)), len(lines)


def claim_amount_at_risk(findings: Iterable[Finding], line_amounts: dict[str, Optional[Decimal]]) -> Decimal:
    """What a claim's error findings put at risk, each line counted once: a line denied by
    two edits loses its amount once. A claim-level error puts the whole claim at risk."""
    errors = [f for f in findings if f.severity == Severity.ERROR]
    per_line: dict[str, Decimal] = {}
    for finding in errors:
        if finding.line is not None and finding.amount_at_risk is not None:
            per_line[finding.line] = max(per_line.get(finding.line, Decimal(0)), finding.amount_at_risk)
    lines_total = sum(per_line.values(), Decimal(0))
    claim_level = [f.amount_at_risk for f in errors if f.line is None and f.amount_at_risk is not None]
    return max([lines_total, *claim_level])
