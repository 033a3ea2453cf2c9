"""Procedure pairs on one patient-day: the NCCI PTP table, and the epidural family rules.

* EPI-PTP-001 applies the loaded NCCI procedure-to-procedure table (bundled
  ``edits/ptp.csv`` or the CMS practitioner PTP files) to every pair of lines of a
  Medicare patient-day.
* The policy rules hold whatever the table says: EPI-PTP-002 (96372 with an epidural),
  EPI-PTP-003 (trigger points or facets with an epidural), EPI-FAM-001 (two codes of
  62320-62327 for one region), EPI-FAM-002 (two spinal regions), EPI-FAM-003
  (interlaminar and transforaminal in one region).

One problem, one finding: EPI-PTP-001 skips a pair when a policy rule that covers both
codes is registered and enabled for the payer (see :data:`POLICY_PAIRS`: imaging with
62320-62327, or with any code whose descriptor includes imaging guidance, is EPI-IMG-*; an E/M with a 0- or 10-day global procedure is EPI-EM-001, and
the pairs of this module's own family rules). Those rules consult the same PTP row and
name it in their message; when the row comes from a CMS file (verified) and denies the
pair, a warning-level family rule reports an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from claimscrub.engine import REGISTRY, Rule, RuleContext, Scope, register
from claimscrub.findings import Category, Finding, Severity
from claimscrub.grouping import DayLine, PatientDay, paired
from claimscrub.edits._codebook import related
from claimscrub.edits.units import EPIDURAL_FAMILY, procedure_info, where

TRANSFORAMINAL_FAMILY = "epidural-transforaminal"
REGION_NAMES = {"CT": "cervical/thoracic", "LS": "lumbar/sacral"}
DISTINCT_MODIFIERS = ("XS", "XE", "XU", "59")

#: (families of one code, families of the other, rules that cover the pair). A pair of
#: codes whose families match is left to those rules by EPI-PTP-001.
IMAGING_FAMILIES = frozenset({"imaging-guidance", "epidurography", "ultrasound-guidance"})
IMAGING_RULES = ("EPI-IMG-001", "EPI-IMG-002", "EPI-IMG-003", "EPI-IMG-004")
POLICY_PAIRS: list[tuple[frozenset, frozenset, tuple[str, ...]]] = [
    (frozenset({EPIDURAL_FAMILY}), IMAGING_FAMILIES, IMAGING_RULES),
    (frozenset({EPIDURAL_FAMILY}), frozenset({EPIDURAL_FAMILY}), ("EPI-FAM-001", "EPI-FAM-002")),
    (frozenset({EPIDURAL_FAMILY}), frozenset({TRANSFORAMINAL_FAMILY}), ("EPI-FAM-002", "EPI-FAM-003")),
    (frozenset({EPIDURAL_FAMILY}), frozenset({"drug-administration"}), ("EPI-PTP-002",)),
    (frozenset({EPIDURAL_FAMILY}), frozenset({"trigger-point", "facet"}), ("EPI-PTP-003",)),
]
#: An E/M with a procedure of one of these global periods is EPI-EM-001's.
EM_POLICY = (("000", "010"), ("EPI-EM-001",))


def _region(ctx: RuleContext, entry: DayLine, day) -> str:
    info = procedure_info(ctx, entry.code, day)
    return str(info.get("region", "")) if info else ""


def _family(ctx: RuleContext, code: str, day) -> str:
    info = procedure_info(ctx, code, day)
    return str(info.get("family", "")) if info else ""


def is_em(ctx: RuleContext, code: str, day) -> bool:
    """E/M by ``procedure_codes.is_em``; a code the table does not know is E/M when it is in
    the CPT E/M section (99202-99499)."""
    info = procedure_info(ctx, code, day)
    if info is not None:
        return str(info.get("is_em", "")) == "yes"
    return code.isdigit() and 99202 <= int(code) <= 99499


def _enabled(ctx: RuleContext, rule_id: str, payer: str) -> bool:
    if rule_id not in REGISTRY:
        return False
    return ctx.is_enabled(rule_id, payer)


def covering_rules(ctx: RuleContext, code1: str, code2: str, day, payer: str) -> list[str]:
    """The registered, enabled policy rules that report the pair ``code1``/``code2``."""
    rules: list[str] = []
    family1, family2 = _family(ctx, code1, day), _family(ctx, code2, day)
    for families_a, families_b, ids in POLICY_PAIRS:
        if (family1 in families_a and family2 in families_b) or (family2 in families_a and family1 in families_b):
            rules.extend(ids)
    for guided, other in ((code1, code2), (code2, code1)):
        # a code whose descriptor includes imaging guidance: guidance beside it is EPI-IMG-*'s
        info = procedure_info(ctx, guided, day)
        if (info is not None and str(info.get("imaging", "")).strip().lower() == "yes"
                and str(info.get("family", "")) not in IMAGING_FAMILIES
                and _family(ctx, other, day) in IMAGING_FAMILIES):
            rules.extend(IMAGING_RULES)
    globals_, ids = EM_POLICY
    for em_code, other in ((code1, code2), (code2, code1)):
        if is_em(ctx, em_code, day) and not is_em(ctx, other, day):
            info = procedure_info(ctx, other, day)
            if info is not None and str(info.get("global_days", "")) in globals_:
                rules.extend(ids)
    return [r for r in dict.fromkeys(rules) if _enabled(ctx, r, payer)]


def bypass_modifiers(ctx: RuleContext, day) -> dict[str, str]:
    """NCCI-associated modifiers active on ``day``: modifier -> what it bypasses
    (``em``, ``procedure`` or ``no``), from ``edits/ncci_modifiers.csv``."""
    cache = ctx.extras.setdefault("ptp.bypass_modifiers", {})
    if day not in cache:
        table = ctx.tables.get("ncci_modifiers") if ctx.tables is not None else None
        rows = table.active(day) if table is not None else []
        if len(cache) > 10_000:
            cache.clear()
        cache[day] = {str(row["modifier"]).upper(): str(row.get("bypasses", "")) for row in rows}
    return cache[day]


@dataclass
class PairEdit:
    """One active PTP row applied to two lines of a patient-day."""

    row: dict
    column1: DayLine
    column2: DayLine
    indicator: str
    verified: bool
    column2_is_em: bool
    bypass: Optional[str] = None  # the modifier that bypasses an indicator-1 edit
    bypass_entry: Optional[DayLine] = None
    table_version: str = ""

    @property
    def denies(self) -> bool:
        """The edit denies the column-2 line: indicator 0, or 1 without a bypass."""
        return self.indicator == "0" or (self.indicator == "1" and self.bypass is None)

    def describe(self) -> str:
        deleted = self.row.get("deleted")
        dates = f"effective {self.row['effective'].isoformat()}" if self.row.get("effective") else "no effective date"
        if deleted:
            dates += f", deleted {deleted.isoformat()}"
        return (
            f"NCCI PTP table {self.table_version}: column 1 {self.column1.code} / column 2 "
            f"{self.column2.code}, modifier indicator {self.indicator}, {dates}"
        )


def pair_edit(ctx: RuleContext, day: PatientDay, first: DayLine, second: DayLine) -> Optional[PairEdit]:
    """The active PTP edit with ``first`` as column 1 and ``second`` as column 2, evaluated
    against the modifiers of both lines; ``None`` when there is none or it is indicator 9.

    Modifier choice: CMS accepts the NCCI-associated modifier on either line of the pair
    (MLN1783722), so either line bypasses an indicator-1 edit; the column-2 line is
    preferred when both carry one. On an E/M column-2 line only the E/M bypasses count
    (25, 57); 59 and X{EPSU} never bypass for an E/M, and nothing bypasses indicator 0.
    """
    table = ctx.tables.get("ptp") if ctx.tables is not None else None
    if table is None or first.code == second.code:
        return None
    rows = [r for r in table.lookup(day.service_date, column1=first.code, column2=second.code)
            if str(r.get("modifier_indicator", "")).strip() in ("0", "1")]
    if not rows:
        return None
    row = min(rows, key=lambda r: str(r["modifier_indicator"]))  # indicator 0 wins over 1
    edit = PairEdit(
        row=row,
        column1=first,
        column2=second,
        indicator=str(row["modifier_indicator"]).strip(),
        verified=str(row.get("verified", "")).strip().lower() == "yes",
        column2_is_em=is_em(ctx, second.code, day.service_date),
        table_version=table.provenance.get("version", table.name),
    )
    if edit.indicator == "1":
        modifiers = bypass_modifiers(ctx, day.service_date)
        wanted = "em" if edit.column2_is_em else "procedure"
        candidates = [second] if edit.column2_is_em else [second, first]
        for entry in candidates:
            found = next((m for m in entry.modifiers if modifiers.get(m.upper()) == wanted), None)
            if found:
                edit.bypass, edit.bypass_entry = found, entry
                break
    return edit


def column2_codes(ctx: RuleContext, column1: str, day) -> frozenset:
    """The column-2 codes the PTP table pairs with ``column1`` on ``day`` (memoised)."""
    table = ctx.tables.get("ptp") if ctx.tables is not None else None
    if table is None:
        return frozenset()
    cache = ctx.extras.setdefault("ptp.column2_codes", {})
    key = (id(table), column1, day)
    if key not in cache:
        if len(cache) > 50_000:
            cache.clear()
        cache[key] = frozenset(str(row["column2"]) for row in table.lookup(day, column1=column1))
    return cache[key]


def find_pair(ctx: RuleContext, day: PatientDay, a: DayLine, b: DayLine) -> Optional[PairEdit]:
    """The PTP edit between two lines, in whichever order the table lists them."""
    return pair_edit(ctx, day, a, b) or pair_edit(ctx, day, b, a)


def ncci_note(edit: Optional[PairEdit]) -> str:
    if edit is None:
        return ""
    state = "confirm this row in the CMS PTP release" if not edit.verified else "from the CMS file"
    if edit.indicator == "0":
        effect = "never paid together"
    elif edit.bypass:
        effect = f"bypassed by modifier {edit.bypass}"
    else:
        effect = "denied without an NCCI-associated modifier, and none is reported"
    return (
        f" The NCCI PTP table pairs them too (column 1 {edit.column1.code}, column 2 {edit.column2.code}, "
        f"modifier indicator {edit.indicator}: {effect}; {state})."
    )


def escalate(edit: Optional[PairEdit], severity: Severity) -> Severity:
    """A verified PTP row that denies the pair makes a warning-level policy finding an error."""
    if edit is not None and edit.verified and edit.denies:
        return Severity.ERROR
    return severity


@register
class NcciProcedurePairs(Rule):
    """NCCI procedure-to-procedure pairs from the loaded PTP table, by modifier indicator.

    What it checks:
        For Medicare claims, every two lines of a patient-day (same patient, date and
        rendering provider, across claims and files) whose codes are a column 1 / column 2
        pair of the loaded PTP table active on the date of service (effective on or before
        it; deletion date, the last day the edit applies, on or after it):

        * modifier indicator 0: error on the column-2 line whatever the modifiers (59 and
          X{EPSU} never bypass indicator 0);
        * modifier indicator 1 without an NCCI-associated modifier: error on the column-2
          line. A modifier on either line bypasses (CMS accepts it on either code of the
          pair; the column-2 line is the usual place); for an E/M column-2 code only 25
          or 57 bypass, never 59 or X{EPSU};
        * modifier indicator 1 with such a modifier: info, documentation required;
        * modifier indicator 9: never fires (the edit was deleted).

        Pairs that a policy rule covers are left to it: imaging codes with 62320-62327
        (EPI-IMG-001..004), an E/M with a 0- or 10-day global procedure (EPI-EM-001), two
        codes of 62320-62327 (EPI-FAM-001/002), 62320-62327 with 64479-64484
        (EPI-FAM-002/003), with 96372 (EPI-PTP-002), with trigger-point or facet codes
        (EPI-PTP-003). A pair is left to a policy rule only when that rule is registered
        and enabled for the payer; otherwise this edit reports it.

    Why payers deny it:
        The column-2 code of an NCCI pair is denied when both codes are billed for one
        beneficiary on one day by one provider, unless the indicator allows a modifier
        and the modifier shows a distinct service (NCCI; MLN1783722).

    Failing example:
        claims:
          - {id: C1, date: "2016-06-01", lines: [{code: "62311"}, {code: "96372"}]}

    Corrected example:
        claims:
          - {id: C1, date: "2016-06-01", lines: [{code: "62311"}]}

    Configuration:
        The PTP table: ``--rules DIR`` with the CMS practitioner files (ccipra-vNNNrN-f1 ..
        f4, TXT, CSV or ZIP) replaces the bundled table. What could still change the
        verdict: a bundled row not checked against the CMS release (``verified`` column)
        might not exist or carry another indicator, so its findings are warnings that ask to
        confirm it; rows checked against or loaded from the CMS release give errors. The
        NCCI-associated modifiers are ``edits/ncci_modifiers.csv``. Other payers: not checked
        (NCCI is a Medicare edit set; commercial payers license similar but different pairs).

    Source:
        CMS NCCI procedure-to-procedure edits (practitioner); NCCI Policy Manual for
        Medicare Services ch. I (modifier indicators 0/1/9, NCCI-associated modifiers);
        MLN1783722 "Proper Use of Modifiers 59, XE, XP, XS & XU".
    """

    id = "EPI-PTP-001"
    name = "ncci-ptp-pairs"
    summary = "NCCI PTP pairs on one patient-day: indicator 0 never bypassed, 1 only with an NCCI modifier, 9 never"
    category = Category.PTP
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = "CMS NCCI PTP edits (practitioner); NCCI Policy Manual for Medicare Services ch. I; MLN1783722"
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.tables is None or ctx.tables.get("ptp") is None:
            return
        entries = [e for e in day.entries if e.claim.is_medicare and e.code]
        by_code: dict[str, list[DayLine]] = {}
        for entry in entries:
            by_code.setdefault(entry.code, []).append(entry)
        # Only the code pairs the table holds are looked at, so a day of many lines costs
        # (distinct codes x their column-2 codes), not every pair of lines.
        for code1, lines1 in by_code.items():
            # a column-1 line matters to a pair only through its modifiers (a bypass may sit
            # on either line), so one line per modifier set stands for the rest
            firsts = list({tuple(e.modifiers): e for e in reversed(lines1)}.values())[::-1]
            for code2 in sorted(column2_codes(ctx, code1, day.service_date) & by_code.keys()):
                if code2 == code1:
                    continue
                if covering_rules(ctx, code1, code2, day.service_date, day.payer_id):
                    continue
                for second in by_code[code2]:
                    # one finding per column-2 line and column-1 code: the payer denies the
                    # line once, however many lines of the column-1 code the day holds
                    edits = [e for e in (pair_edit(ctx, day, first, second) for first in firsts) if e]
                    if edits:
                        yield self._finding(day, next((e for e in edits if e.denies), edits[0]))

    def _finding(self, day: PatientDay, edit: PairEdit) -> Finding:
        c1, c2 = edit.column1.code, edit.column2.code
        other = where(edit.column1, edit.column2)
        rationale = str(edit.row.get("rationale", "")).strip()
        because = f" Rationale: {rationale}." if rationale else ""
        caveat = "" if edit.verified else (
            " (confirm this pair in the CMS practitioner PTP release: without it the verdict could change, "
            "so this is a warning)"
        )
        severity = Severity.ERROR if edit.verified else Severity.WARNING
        head = (
            f"{c2} (column 2) is paired with {c1} (column 1, {other}) on {day.service_date.isoformat()} "
            f"by an NCCI procedure-to-procedure edit"
        )
        present = [m for m in edit.column2.modifiers if m.upper() in ("59", "XE", "XS", "XP", "XU")]
        if edit.indicator == "0":
            note = (f" Modifier {'/'.join(present)} does not bypass an indicator-0 edit." if present else "")
            message = f"{head}: modifier indicator 0, the two are never paid together.{note}{because}{caveat}"
            fix = (
                f"Remove {c2}: it is not separately payable with {c1} on the same day, whatever the modifier. "
                f"If {c1} was billed in error, correct that line instead."
            )
        elif edit.bypass is None:
            if edit.column2_is_em:
                note = (f" Modifier {'/'.join(present)} does not apply to an E/M; only 25 or 57 bypass."
                        if present else "")
                fix = (
                    f"Append 25 to {c2} only if a significant, separately identifiable E/M service is documented "
                    f"(57 if it was the decision for a 90-day surgery); 59 and X modifiers do not apply to E/M. "
                    f"Otherwise remove {c2}."
                )
            else:
                note = ""
                fix = (
                    f"If {c2} was a distinct service (separate site or organ, separate encounter, or "
                    f"non-overlapping), append the specific X modifier (XS, XE or XU; 59 only when none fits) "
                    f"to {c2} and keep the documentation; otherwise remove {c2}."
                )
            message = (
                f"{head}: modifier indicator 1, {c2} is denied unless an NCCI-associated modifier shows a "
                f"distinct service, and none is reported.{note}{because}{caveat}"
            )
        else:
            # a column-2 line billed on an earlier night is named in full: its finding goes on
            # tonight's column-1 line (claimscrub.grouping.rehome_prior_findings)
            on = ("this line" if edit.bypass_entry is edit.column2 and edit.column2.prior is None
                  else where(edit.bypass_entry, edit.column2))
            message = (
                f"{head}: modifier indicator 1, bypassed by modifier {edit.bypass} on {on}. Documentation "
                f"required: the edit is bypassed only if the records support a distinct service.{because}"
            )
            fix = (
                f"Keep documentation that supports {c2} as distinct from {c1} (site, session or practitioner); "
                "some payers read the modifier only on the column-2 line."
            )
            severity = Severity.INFO
        return paired(self.finding(
            edit.column2.claim,
            message,
            fix=fix,
            line=edit.column2.line,
            severity=severity,
            source=f"{edit.describe()}; NCCI Policy Manual ch. I; MLN1783722",
            related=related([edit.column1] + ([edit.bypass_entry] if edit.bypass_entry is not None else []),
                            edit.column2.claim),
        ), edit.column2, [edit.column1])


@register
class DrugAdministrationWithEpidural(Rule):
    """96372 (IM/SC injection) on the day of an interlaminar epidural (62320-62327).

    What it checks:
        A 96372 line on a patient-day (same patient, date and rendering provider, across
        claims and files) that also has a 62320-62327 line. Error on the 96372 line, unless
        it carries XS, 59, XE or XU (a separate site or drug): then info, documentation
        required.

    Why payers deny it:
        Injecting the drug is part of the epidural procedure; a separate 96372 for the same
        drug is unbundling, and the NCCI pair (column 1 epidural, column 2 96372, modifier
        indicator 1) denies it unless a distinct intramuscular or subcutaneous injection of
        another drug or at another site is documented.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323"}, {code: "96372"}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323"}]}

    Configuration:
        None. Applies to every payer: 96372 describes an intramuscular or subcutaneous
        injection, so using it for the epidural drug is wrong coding everywhere; the CMS
        NCCI edit 62323/96372 (modifier indicator 1, "misuse of column two code with column
        one code") agrees. What could still change the verdict: XS/59 on 96372 for a
        documented injection of another drug at another site. EPI-PTP-001 leaves this pair
        to this edit.

    Source:
        NCCI Policy Manual for Medicare Services ch. I general correct coding policy
        (services integral to a procedure); CPT 96372 descriptor; CMS NCCI practitioner PTP
        edit 62323/96372, release effective 2024-07-01.
    """

    id = "EPI-PTP-002"
    name = "drug-administration-with-epidural"
    summary = "96372 on the day of an interlaminar epidural is included unless XS/59 shows a separate site or drug"
    category = Category.PTP
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = (
        "NCCI Policy Manual for Medicare Services ch. I (integral services); CPT 96372 descriptor; "
        "CMS NCCI PTP edit 62323/96372 (release effective 2024-07-01)"
    )
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        epidurals = [e for e in day.entries if _family(ctx, e.code, day.service_date) == EPIDURAL_FAMILY]
        if not epidurals:
            return
        for entry in day.entries:
            if _family(ctx, entry.code, day.service_date) != "drug-administration":
                continue
            epidural = epidurals[0]
            note = ncci_note(find_pair(ctx, day, epidural, entry))
            distinct = next((m for m in entry.modifiers if m.upper() in DISTINCT_MODIFIERS), None)
            if distinct:
                yield paired(self.finding(
                    entry.claim,
                    f"{entry.code} with modifier {distinct} on the day of epidural {epidural.code} "
                    f"({where(epidural, entry)}): payable only for a separate injection (another drug or site). "
                    f"Documentation required.{note}",
                    fix="Keep documentation of the separate intramuscular or subcutaneous injection "
                        "(drug, site and reason) with the claim.",
                    line=entry.line,
                    severity=Severity.INFO,
                ), entry, [epidural])
            else:
                yield paired(self.finding(
                    entry.claim,
                    f"{entry.code} (intramuscular/subcutaneous injection) is billed on the day of epidural "
                    f"{epidural.code} ({where(epidural, entry)}): injecting the drug is part of the epidural "
                    f"procedure and is not paid separately.{note}",
                    fix=f"Remove {entry.code}. If a separate injection of another drug or at another site was "
                        f"given, append XS (or 59) to {entry.code} and document it.",
                    line=entry.line,
                ), entry, [epidural])


@register
class OtherBlocksWithEpidural(Rule):
    """Trigger-point (20552/20553) or facet (64490-64495) injections in the session of an epidural.

    What it checks:
        For Medicare claims, a 20552, 20553 or 64490-64495 line on a patient-day that also
        has a 62320-62327 line: a warning on the trigger-point or facet line. When the
        loaded PTP table has a CMS (verified) edit for the pair that denies it (indicator
        0, or 1 without an NCCI-associated modifier), the finding is an error.

    Why payers deny it:
        The Medicare ESI LCDs treat different blocks in one session as not medically
        necessary (exception: an ESI with a facet synovial cyst), and NCCI pairs these
        codes with the epidural; a distinct site (XS/59) and a separate diagnosis must be
        documented if both are billed.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323"}, {code: "20552"}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323"}]}

    Configuration:
        Other payers: not checked (LCD and NCCI are Medicare policy). What could still
        change the verdict: the LCD exception for a facet synovial cyst, and a distinct site
        documented with XS/59, which only the record shows; hence a warning, and an error
        when a CMS NCCI edit denies the pair. EPI-PTP-001 leaves these pairs to this edit.

    Source:
        LCD L39240 / A58993 family (multiple different blocks in one session not medically
        necessary); CMS NCCI practitioner PTP edits with 20552/20553 and 64490-64495.
    """

    id = "EPI-PTP-003"
    name = "other-blocks-with-epidural"
    summary = "Trigger-point or facet injections in the same session as an epidural (Medicare LCD; NCCI)"
    category = Category.MEDICAL_NECESSITY
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = "LCD L39240 / A58993 family (one block type per session); CMS NCCI PTP edits with 20552-20553/64490-64495"
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        entries = [e for e in day.entries if e.claim.is_medicare]
        epidurals = [e for e in entries if _family(ctx, e.code, day.service_date) == EPIDURAL_FAMILY]
        if not epidurals:
            return
        for entry in entries:
            family = _family(ctx, entry.code, day.service_date)
            if family not in ("trigger-point", "facet"):
                continue
            epidural = epidurals[0]
            edit = find_pair(ctx, day, epidural, entry)
            kind = "trigger-point injection" if family == "trigger-point" else "facet joint injection"
            distinct = next((m for m in entry.modifiers if m.upper() in DISTINCT_MODIFIERS), None)
            documented = (
                f" Modifier {distinct} is present: the distinct site and a separate diagnosis must be documented."
                if distinct else ""
            )
            yield paired(self.finding(
                entry.claim,
                f"{kind.capitalize()} {entry.code} is billed in the same session as epidural {epidural.code} "
                f"({where(epidural, entry)}): the Medicare ESI LCDs treat different blocks in one session as "
                f"not medically necessary (except an ESI with a facet synovial cyst).{documented}{ncci_note(edit)}",
                fix=(
                    f"Bill {entry.code} on another date if it was a separate session; if both were necessary in this "
                    f"session, document the distinct site and diagnosis and append XS (or 59) to {entry.code}."
                ),
                line=entry.line,
                severity=escalate(edit, self.severity),
            ), entry, [epidural])


def _right_code(ctx: RuleContext, day, region: str, imaging: bool, catheter: bool) -> Optional[str]:
    table = ctx.tables.get("procedure_codes") if ctx.tables is not None else None
    if table is None:
        return None
    for row in table.active(day):
        if (row.get("family") == EPIDURAL_FAMILY and row.get("region") == region
                and (row.get("imaging") == "yes") == imaging and (row.get("catheter") == "yes") == catheter):
            return str(row["code"])
    return None


@register
class EpiduralFamilySameRegion(Rule):
    """Two different codes of 62320-62327 for the same spinal region on one day.

    What it checks:
        On a patient-day (same patient, date and rendering provider, across claims and
        files), two or more different codes of 62320-62327 for one region (cervical/
        thoracic 62320/62321/62324/62325, lumbar/sacral 62322/62323/62326/62327). The
        finding is an error on each line whose code is not the single right one, and the
        fix names that code: the with-imaging code when any line says imaging was used;
        when a single-injection and a catheter code are mixed, both candidates are named.

    Why payers deny it:
        The codes are alternatives for one injection session in one region (with or
        without imaging guidance, single injection or indwelling catheter): only one is
        payable, and the second is denied as mutually exclusive.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62322"}, {code: "62323"}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "62323"}]}

    Configuration:
        None. Applies to every payer (CPT code structure). The same code twice is
        EPI-MUE-002; two regions are EPI-FAM-002. EPI-PTP-001 leaves these pairs to this
        edit. Nothing a claim shows changes the verdict: the CMS NCCI edits for these pairs
        carry modifier indicator 0 (62323/62322, 62321/62320, 62325/62323, 62327/62326) or 1,
        and one session in one region has one right code either way.

    Source:
        CPT 62320-62327 descriptors (2017 restructuring: region x imaging x catheter);
        CMS NCCI practitioner PTP edits within 62320-62327, release effective 2024-07-01.
    """

    id = "EPI-FAM-001"
    name = "epidural-family-same-region"
    summary = "Two different codes of 62320-62327 for one region on one day: report the single right code"
    category = Category.PTP
    severity = Severity.ERROR
    scope = Scope.PATIENT_DAY
    source = "CPT 62320-62327 descriptors (one code per region per session); CMS NCCI PTP edits within 62320-62327"
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        by_region: dict[str, list[tuple[DayLine, dict]]] = {}
        for entry in day.entries:
            info = procedure_info(ctx, entry.code, day.service_date)
            if info is not None and info.get("family") == EPIDURAL_FAMILY and info.get("region"):
                by_region.setdefault(str(info["region"]), []).append((entry, info))
        for region, items in by_region.items():
            codes = list(dict.fromkeys(entry.code for entry, _ in items))
            if len(codes) < 2:
                continue
            imaging = any(info.get("imaging") == "yes" for _, info in items)
            catheters = {info.get("catheter") == "yes" for _, info in items}
            if len(catheters) == 1:
                right = _right_code(ctx, day.service_date, region, imaging, catheters.pop())
                keep = right if right in codes else codes[0]
                fix_code = (
                    f"Report only {right}"
                    + (" (imaging guidance was used, so the with-imaging code)" if imaging else "")
                    + "; remove the other code."
                ) if right else "Report a single code for the region; remove the other."
            else:
                single = _right_code(ctx, day.service_date, region, imaging, False)
                catheter = _right_code(ctx, day.service_date, region, imaging, True)
                keep = next((c for c in codes if c in (single, catheter)), codes[0])
                fix_code = (
                    f"Report {catheter} if an indwelling catheter was left for continuous infusion or "
                    f"intermittent bolus, otherwise {single} (catheter placed and removed the same day); "
                    "remove the other code."
                )
            keeper = next(entry for entry, _ in items if entry.code == keep)
            for entry, _ in items:
                if entry.code == keep:
                    continue
                yield paired(self.finding(
                    entry.claim,
                    f"{entry.code} and {keep} ({where(keeper, entry)}) are both reported for the "
                    f"{REGION_NAMES.get(region, region)} region on {day.service_date.isoformat()}: they are "
                    "alternatives (with or without imaging guidance, single injection or indwelling catheter) "
                    f"and only one code per region per session is payable.{ncci_note(find_pair(ctx, day, keeper, entry))}",
                    fix=fix_code,
                    line=entry.line,
                ), entry, [keeper])


@register
class EpiduralTwoRegions(Rule):
    """Epidural injections in two spinal regions on one day (incl. interlaminar in one, transforaminal in the other).

    What it checks:
        For Medicare claims, a patient-day (same patient, date and rendering provider,
        across claims and files) with epidural codes (62320-62327, 64479-64484) of both
        the cervical/thoracic and the lumbar/sacral region. A warning on the first line of
        the second region, naming the lines of the first. When the loaded PTP table has a
        CMS (verified) edit between the two lines that denies the pair, an error.

    Why payers deny it:
        The Medicare ESI LCDs allow one spinal region per session; the second region's
        injection is denied as not medically necessary.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62321"}, {code: "64483"}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483"}]}

    Configuration:
        Other payers: not checked (LCD policy applies to Medicare Part B). The session
        limit is VERIFIED across the ESI LCD billing articles (A58745, A58731, A56651,
        A56681 summaries); the rule is a warning because a second session on the same day
        is possible and must be documented.

    Source:
        ESI LCD billing articles A58745, A58731, A56651, A56681 (one spinal region per session);
        LCD L39240 / A58993 region definitions.
    """

    id = "EPI-FAM-002"
    name = "epidural-two-regions"
    summary = "Epidurals in two spinal regions on one day (Medicare ESI LCDs: one region per session)"
    category = Category.MEDICAL_NECESSITY
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = "ESI LCD billing articles A58745/A58731/A56651/A56681 (one spinal region per session); A58993 regions"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        regions: dict[str, list[DayLine]] = {}
        for entry in day.entries:
            if not entry.claim.is_medicare:
                continue
            family = _family(ctx, entry.code, day.service_date)
            region = _region(ctx, entry, day.service_date)
            if family in (EPIDURAL_FAMILY, TRANSFORAMINAL_FAMILY) and region in REGION_NAMES:
                regions.setdefault(region, []).append(entry)
        if len(regions) < 2:
            return
        (first_region, first_lines), (second_region, second_lines) = list(regions.items())[:2]
        target = second_lines[0]
        edit = next((e for e in (find_pair(ctx, day, other, target) for other in first_lines) if e), None)
        listed = ", ".join(f"{e.code} ({where(e, target)})" for e in first_lines)
        yield paired(self.finding(
            target.claim,
            f"Epidural {target.code} ({REGION_NAMES[second_region]}) is billed on "
            f"{day.service_date.isoformat()} with {listed} ({REGION_NAMES[first_region]}): the Medicare ESI "
            f"LCDs allow one spinal region per session.{ncci_note(edit)}",
            fix=(
                "Bill the injections of one region for this session; if the second region was treated in a "
                "separate, documented session, make sure the records show it (otherwise expect a medical-"
                "necessity denial, and use GA only with a signed ABN)."
            ),
            line=target.line,
            severity=escalate(edit, self.severity),
        ), target, first_lines)


@register
class InterlaminarAndTransforaminal(Rule):
    """An interlaminar (62320-62327) and a transforaminal (64479-64484) epidural in one region on one day.

    What it checks:
        For Medicare claims, a patient-day (same patient, date and rendering provider,
        across claims and files) with a 62320-62327 line and a 64479-64484 line of the same
        region (C/T: 62320/62321/62324/62325 with 64479/64480; L/S: 62322/62323/62326/62327
        with 64483/64484). A warning on the interlaminar line (the code the NCCI pair is
        believed to deny). When the loaded PTP table has a CMS (verified) edit that denies
        the pair, an error.

    Why payers deny it:
        ILESI and TFESI in the same session are subject to NCCI edits and to the LCD
        session limits (one approach per region per session); one of them is denied
        unless medical necessity for both is documented.

    Failing example:
        claims:
          - {id: C1, lines: [{code: "62323"}, {code: "64483"}]}

    Corrected example:
        claims:
          - {id: C1, lines: [{code: "64483"}]}

    Configuration:
        Other payers: not checked (LCD and NCCI are Medicare policy). What could still
        change the verdict: the NCCI edit pairing the two approaches carries modifier
        indicator 1 (mutually exclusive procedures), so documented medical necessity with
        an NCCI-associated modifier may be paid; hence a warning, and an error when a CMS
        NCCI edit denies the pair. EPI-PTP-001 leaves these pairs to this edit.

    Source:
        LCD L39240 / A58993 (multiple different blocks in one session); ESI LCD billing
        articles A58745, A58731, A56651 (session limits); CMS NCCI practitioner PTP edit
        62323/64483 (mutually exclusive procedures).
    """

    id = "EPI-FAM-003"
    name = "interlaminar-and-transforaminal"
    summary = "Interlaminar and transforaminal epidurals in the same region on one day (LCD session limits; NCCI)"
    category = Category.PTP
    severity = Severity.WARNING
    scope = Scope.PATIENT_DAY
    source = "LCD L39240 / A58993; ESI LCD billing articles (session limits); CMS NCCI PTP edit 62323/64483"
    status_code = "A8:448"

    def check(self, day: PatientDay, ctx: RuleContext) -> Iterable[Finding]:
        entries = [e for e in day.entries if e.claim.is_medicare]
        interlaminar = [e for e in entries if _family(ctx, e.code, day.service_date) == EPIDURAL_FAMILY]
        transforaminal = [e for e in entries if _family(ctx, e.code, day.service_date) == TRANSFORAMINAL_FAMILY]
        for il in interlaminar:
            region = _region(ctx, il, day.service_date)
            same = [tf for tf in transforaminal if _region(ctx, tf, day.service_date) == region]
            if not same or region not in REGION_NAMES:
                continue
            edit = next((e for e in (find_pair(ctx, day, tf, il) for tf in same) if e), None)
            listed = ", ".join(f"{tf.code} ({where(tf, il)})" for tf in same)
            yield paired(self.finding(
                il.claim,
                f"Interlaminar epidural {il.code} and transforaminal epidural {listed} are billed for the "
                f"{REGION_NAMES[region]} region on {day.service_date.isoformat()}: both approaches in one session "
                f"are subject to NCCI edits and the LCD session limits.{ncci_note(edit)}",
                fix=(
                    "Bill the one approach performed for this region; if both were medically necessary in the "
                    "session, document why and append XS (or 59) only if the documentation supports a distinct site."
                ),
                line=il.line,
                severity=escalate(edit, self.severity),
            ), il, same)
