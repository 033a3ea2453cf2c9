"""The edit engine: rule registry, scopes, and dispatch.

An edit is a small class in a module of :mod:`claimscrub.edits`, registered with
:func:`register`. It declares a stable rule id, a category, a default severity, a scope and
its source, and its docstring documents it in fixed sections (see ``DOC_SECTIONS``), which
``claimscrub explain RULE`` prints and a test checks.

Scopes:

* ``line``: called once per service line, with ``(claim, line)``;
* ``claim``: once per claim;
* ``patient-day``: once per :class:`~claimscrub.grouping.PatientDay`, every line of one
  patient on one date from one rendering provider, across all claims and files of the run;
* ``patient``: once per patient with all of that patient's days in the run (frequency);

With a claim history (``--history``), the patient-days also hold lines billed in earlier
runs as read-only prior entries (``DayLine.prior``, :mod:`claimscrub.history.prior`): they
can cause findings on the run's claims; a finding on one moves onto the run's side of its
pair, or is dropped (:func:`claimscrub.grouping.rehome_prior_findings`).
* ``transaction-set``: once per transaction set, for envelope and implementation-guide
  errors, which reject every claim of the set.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import textwrap
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Optional

from claimscrub.findings import Category, Finding, RelatedClaim, Severity
from claimscrub.grouping import rehome_prior_findings
from claimscrub.model import Claim, ServiceLine

if TYPE_CHECKING:  # pragma: no cover
    from claimscrub.config import Config
    from claimscrub.grouping import PatientDay, PatientHistory


class Scope(str, Enum):
    LINE = "line"
    CLAIM = "claim"
    PATIENT_DAY = "patient-day"
    PATIENT = "patient"
    #: called by the pipeline once per transaction set, with its envelope and
    #: implementation-guide results (:class:`claimscrub.scrub.TransactionInfo`)
    TRANSACTION = "transaction-set"


DOC_SECTIONS = (
    "What it checks",
    "Why payers deny it",
    "Failing example",
    "Corrected example",
    "Configuration",
    "Source",
)

RULE_ID = re.compile(r"^[A-Z][A-Z0-9]{1,4}(-[A-Z0-9]{2,6})+$")


@dataclass
class RuleContext:
    """What an edit may consult besides its subject."""

    tables: Any = None
    config: Optional["Config"] = None
    as_of: date = field(default_factory=date.today)
    extras: dict = field(default_factory=dict)
    #: the claim history of earlier runs (:class:`claimscrub.history.run.RunHistory`), or
    #: None without ``--history``; patient-day edits see its lines as prior entries
    history: Any = None
    _decisions: Optional["_Decisions"] = field(default=None, init=False, repr=False, compare=False)

    @property
    def decisions(self) -> "_Decisions":
        """The configuration's decisions, resolved once per (rule, payer) and cached."""
        cache = self._decisions
        if cache is None or cache.config is not self.config:
            cache = self._decisions = _Decisions(self.config)
        return cache

    def is_enabled(self, rule_id: str, payer_id: str = "") -> bool:
        """Whether the configuration runs ``rule_id`` for ``payer_id`` (always, without one)."""
        return self.decisions.enabled(rule_id, payer_id)


class _Decisions:
    """What the configuration decides for each (rule, payer), asked of it once.

    The configuration is read through its public methods only (``is_enabled``,
    ``severity_for``, ``may_run``); a finding's severity is resolved once per (rule, payer,
    severity the edit gave it), so the configuration is consulted a bounded number of times
    per run however many findings there are.
    """

    def __init__(self, config: Optional["Config"]):
        self.config = config
        self._enabled: dict[tuple[str, str], bool] = {}
        self._may_run: dict[str, bool] = {}
        self._severity: dict[tuple[str, str, Severity], Severity] = {}

    def enabled(self, rule_id: str, payer_id: str = "") -> bool:
        if self.config is None:
            return True
        key = (rule_id, payer_id)
        found = self._enabled.get(key)
        if found is None:
            found = self._enabled[key] = bool(self.config.is_enabled(rule_id, payer_id))
        return found

    def may_run(self, rule_id: str) -> bool:
        if self.config is None:
            return True
        found = self._may_run.get(rule_id)
        if found is None:
            found = self._may_run[rule_id] = bool(self.config.may_run(rule_id))
        return found

    def severity(self, rule_id: str, payer_id: str, given: Severity) -> Severity:
        key = (rule_id, payer_id, given)
        found = self._severity.get(key)
        if found is None:
            found = self._severity[key] = Severity(self.config.severity_for(rule_id, payer_id, given))
        return found


class Rule:
    """Base class of every edit. Subclasses set the class attributes and ``check``."""

    id: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    category: ClassVar[Category]
    severity: ClassVar[Severity]
    scope: ClassVar[Scope]
    source: ClassVar[str]
    #: 277CA status for findings of this rule, "category:status" (e.g. "A7:454").
    status_code: ClassVar[str] = ""
    #: a patient-day edit that must see lines repeated on other claims (the duplicate
    #: edit); every other patient-day edit sees each claim's own lines once (see
    #: :func:`claimscrub.grouping.duplicate_views`)
    sees_duplicates: ClassVar[bool] = False

    def check(self, subject: Any, ctx: RuleContext) -> Iterable[Finding]:  # pragma: no cover
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------------
    def finding(
        self,
        claim: Claim,
        message: str,
        fix: str = "",
        line: Optional[ServiceLine] = None,
        segment: Optional[int] = None,
        severity: Optional[Severity] = None,
        source: Optional[str] = None,
        amount_at_risk: Optional[Decimal] = None,
        status_code: Optional[str] = None,
        related: Iterable[RelatedClaim] = (),
    ) -> Finding:
        if segment is None:
            segment = (line.sv1_pos or line.pos) if line is not None else claim.pos
        return Finding(
            rule=self.id,
            category=self.category,
            severity=severity or self.severity,
            message=message,
            fix=fix,
            source=source or self.source,
            file=claim.file,
            file_index=getattr(claim, "file_index", -1),
            claim_id=claim.claim_id,
            claim_index=claim.index,
            line=line.number if line is not None else None,
            segment=segment,
            amount_at_risk=amount_at_risk,
            status_code=status_code or self.status_code or None,
            related=tuple(dict.fromkeys(related)),
        )

    @classmethod
    def documentation(cls) -> dict[str, str]:
        """The docstring's sections, by heading."""
        return parse_doc_sections(inspect.getdoc(cls) or "")


REGISTRY: dict[str, type[Rule]] = {}


def register(rule: type[Rule]) -> type[Rule]:
    """Class decorator: add an edit to the registry under its stable id."""
    for attr in ("id", "name", "summary", "category", "severity", "scope", "source"):
        if not hasattr(rule, attr):
            raise TypeError(f"{rule.__name__} must define {attr}")
    if not RULE_ID.match(rule.id):
        raise TypeError(f"{rule.__name__}: rule id {rule.id!r} is not of the form EPI-IMG-001")
    if rule.id in REGISTRY and REGISTRY[rule.id] is not rule:
        raise TypeError(f"rule id {rule.id} registered twice")
    REGISTRY[rule.id] = rule
    return rule


_loaded = False


def load_rules() -> dict[str, type[Rule]]:
    """Import every module of :mod:`claimscrub.edits` so their edits register."""
    global _loaded
    if not _loaded:
        import claimscrub.edits as package

        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{package.__name__}.{module.name}")
        _loaded = True
    return dict(sorted(REGISTRY.items()))


def parse_doc_sections(doc: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    current = "Summary"
    buffer: list[str] = []
    for raw in doc.splitlines():
        heading = raw.strip().rstrip(":")
        if heading in DOC_SECTIONS and raw.strip().endswith(":"):
            sections[current] = textwrap.dedent("\n".join(buffer)).strip()
            current, buffer = heading, []
        else:
            buffer.append(raw)
    sections[current] = textwrap.dedent("\n".join(buffer)).strip()
    return sections


class Engine:
    """Runs the registered edits, honouring the configuration's selection and severities."""

    def __init__(self, ctx: RuleContext, rules: Optional[dict[str, type[Rule]]] = None):
        self.ctx = ctx
        registry = rules if rules is not None else load_rules()
        self.rules = {rule_id: cls() for rule_id, cls in registry.items()}
        self.by_scope: dict[Scope, list[Rule]] = {scope: [] for scope in Scope}
        for rule in self.rules.values():
            self.by_scope[rule.scope].append(rule)
        self._runnable_for: Optional[_Decisions] = None
        self._runnable_by_scope: dict[Scope, list[Rule]] = {}

    def _apply_config(self, rule: Rule, payer_id: str, findings: Iterable[Finding]) -> Iterator[Finding]:
        decisions = self.ctx.decisions
        if decisions.config is None:
            yield from findings
            return
        if not decisions.enabled(rule.id, payer_id):
            return
        for finding in findings:
            severity = decisions.severity(rule.id, payer_id, finding.severity)
            yield finding if severity == finding.severity else finding.model_copy(update={"severity": severity})

    def _runnable(self, scope: Scope) -> list[Rule]:
        """The rules of ``scope`` the configuration lets run for some payer (decided once
        per configuration, not once per claim)."""
        decisions = self.ctx.decisions
        if self._runnable_for is not decisions:
            self._runnable_for = decisions
            self._runnable_by_scope = {
                each: [rule for rule in self.by_scope[each] if decisions.may_run(rule.id)] for each in Scope
            }
        return self._runnable_by_scope[scope]

    def check_claim(self, claim: Claim) -> list[Finding]:
        """Line- and claim-scope edits of one claim."""
        out: list[Finding] = []
        payer = claim.payer.id
        ctx = self.ctx
        # without a configuration, every finding stands as the edit gave it
        configured = ctx.decisions.config is not None
        for rule in self._runnable(Scope.CLAIM):
            found = rule.check(claim, ctx)
            out.extend(self._apply_config(rule, payer, found) if configured else found)
        lines = claim.lines
        for rule in self._runnable(Scope.LINE):
            for line in lines:
                found = rule.check((claim, line), ctx)
                out.extend(self._apply_config(rule, payer, found) if configured else found)
        return out

    def check_patient_day(self, day: "PatientDay") -> list[Finding]:
        from claimscrub.grouping import duplicate_views, find_duplicates

        duplicates = find_duplicates(day)
        if not duplicates:
            return self._run_grouped(Scope.PATIENT_DAY, day, day.payer_id)
        out = self._run_grouped(Scope.PATIENT_DAY, day, day.payer_id, sees_duplicates=True)
        base, views = duplicate_views(day, duplicates)
        out += self._run_grouped(Scope.PATIENT_DAY, base, day.payer_id, sees_duplicates=False)
        for claim_key, view in views.items():
            out += [
                f for f in self._run_grouped(Scope.PATIENT_DAY, view, day.payer_id, sees_duplicates=False)
                if (f.file_index, f.claim_index) == claim_key
            ]
        return out

    def check_patient(self, history: "PatientHistory") -> list[Finding]:
        return self._run_grouped(Scope.PATIENT, history, history.payer_id)

    def _run_grouped(self, scope: Scope, subject: Any, payer: str,
                     sees_duplicates: Optional[bool] = None) -> list[Finding]:
        out: list[Finding] = []
        ctx = self.ctx
        configured = ctx.decisions.config is not None
        for rule in self._runnable(scope):
            if sees_duplicates is not None and rule.sees_duplicates != sees_duplicates:
                continue
            found = rule.check(subject, ctx)
            out.extend(self._apply_config(rule, payer, found) if configured else found)
        # lines billed in earlier runs are context only: findings attach to the run's claims
        # (a finding on an earlier night's side of a pair moves onto tonight's side)
        return rehome_prior_findings(out)
