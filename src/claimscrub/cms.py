"""Loaders for the rule files CMS publishes, in their published layouts.

A user with the complete quarterly files points ``--rules DIR`` (or ``rules =`` in the
configuration) at a folder holding them, as downloaded, and they replace the bundled tables
of the same name, without any conversion. Files are recognised by their **content**, not
their names (CMS download names vary: ``ccipra-v322r0-f1.zip``, ``rvu25d_0.zip``,
``MCR_MUE_PractitionerServices_Eff_07-01-2026.zip``, ...); a ZIP is recognised by the file
it holds. Columns are found by their header names, never by position.

``ptp``  the practitioner NCCI procedure-to-procedure edits: the tab-delimited
         ``ccipra-vNNNrN-fN.TXT``, the XLSX saved as CSV, or the ZIP CMS ships. Leading
         copyright lines and a header spread over several physical rows are skipped; the
         columns are ``Column 1``, ``Column 2``, ``*=in existence prior to 1996``,
         ``Effective Date``, ``Deletion Date *=no data``, ``Modifier 0=not allowed
         1=allowed 9=not applicable``, ``PTP Edit Rationale``. The parts of one release
         (``-f1`` .. ``-f4``) are combined into one table; a folder holding two releases, or
         the outpatient-hospital file (``ccioph``), is an error.
``mue``  the practitioner MUE file, ``MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY.csv`` or
         the ZIP holding it: an AMA copyright cell (possibly several lines), then the
         header ``HCPCS/CPT Code`` (possibly ``HCPCS/\\nCPT Code``), ``Practitioner Services
         MUE Values``, ``MUE Adjudication Indicator`` (text such as ``2 Date of Service Edit:
         Policy``: its leading digit is the MAI), ``MUE Rationale``. The outpatient-hospital
         and DME files are refused: their values are not the practitioner ones. Two
         releases in one folder are an error.
``rvu``  the MPFS relative value file ``PPRRVU{YYYY}_{Mon}[_nonQPP|_QPP].csv``, or the RVU
         bundle ZIP (``rvu25d_0.zip``: its PPRRVU CSV is read, not the GPCI, locality or
         anesthesia files beside it): title lines, then a header whose names are spread
         over several rows (``WORK`` over ``RVU``, ``NON-FAC`` over ``PE RVU``, ...), which
         are merged and matched by name, so the ``PRIC IND`` column added in 2026 changes
         nothing. Files of several years are combined, each year priced with its latest
         release (the non-QPP file when both are there); the files not used are named in
         the table's provenance.

Every table records where it came from: the file names and the release (``v322r0``, ``Eff
2026-07-01``, ``RVU25D``) appear in its provenance, which every report lists under
``tables`` and ``claimscrub tables`` prints. Rows from a CMS file are ``verified=yes``.

Dates: a PTP row carries its own effective and deletion dates. The MUE file has none: a
release is a snapshot whose rows apply to every date of service (its effective date is
recorded in the provenance), so scrub claims with the release that covers their dates. An
RVU file applies to the calendar year of its release.

The practitioner PTP table has about 2.5 million rows. It is not turned into Python
objects up front: the text of each file is kept and indexed by column-1 code, and the
rows of one column-1 code are parsed the first time a claim needs them.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Any, Iterator, Optional

from claimscrub.errors import ConfigError
from claimscrub.ruletable import CMS_LOADERS, Table, file_head, parse_table_date, register_loader  # noqa: F401

PTP_COLUMNS = [
    "column1", "column2", "prior_1996", "effective", "deleted", "modifier_indicator", "rationale", "verified",
]
MUE_COLUMNS = ["code", "mue", "mai", "rationale", "effective", "deleted", "verified"]
RVU_COLUMNS = [
    "code", "modifier", "year", "description", "status", "work_rvu", "pe_nonfacility", "pe_facility",
    "mp_rvu", "global_days", "pctc_indicator", "bilateral_indicator", "multiple_procedure",
    "conversion_factor", "source", "verified", "effective", "deleted",
]

PTP_NAME = re.compile(r"^(?P<kind>ccipra|ccioph)-(?P<release>v\d+r\d+)(?:-f(?P<part>\d+))?", re.I)
MUE_NAME = re.compile(r"MCR_MUE_(?P<kind>[A-Za-z]+)_Eff_(?P<m>\d{1,2})-(?P<d>\d{1,2})-(?P<y>\d{4})", re.I)
RVU_NAME = re.compile(r"^PPRRVU(?P<year>\d{4}|\d{2})_(?P<month>[A-Za-z]{3})(?P<rest>[^.]*)", re.I)
CODE = r"[0-9A-Za-z]{5}"
PTP_DATA_LINE = re.compile(rf'^[ \t]*"?({CODE})"?[ \t]*[\t,][ \t]*"?({CODE})"?[ \t]*[\t,]')
PTP_DATA_LINE_M = re.compile(PTP_DATA_LINE.pattern, re.M)
#: a run of consecutive PTP data lines with the same column-1 code
PTP_BLOCK = re.compile(rf'^[ \t]*"?({CODE})"?[ \t]*[\t,][^\n]*(?:\n[ \t]*"?\1"?[ \t]*[\t,][^\n]*)*', re.M)


# -- reading ------------------------------------------------------------------------------
def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


TEXT_SUFFIXES = (".txt", ".csv")


def _stat_key(path: Path) -> tuple:
    try:
        info = path.stat()
    except OSError:
        return (str(path),)
    return (str(path.resolve()), info.st_size, info.st_mtime_ns)


_zip_heads_cache: dict[tuple, list[tuple[str, str]]] = {}


def _zip_heads(path: Path) -> list[tuple[str, str]]:
    """(member name, first 4 KB as text) of each .txt/.csv member of a ZIP; [] when the
    file is not a readable ZIP."""
    key = _stat_key(path)
    cached = _zip_heads_cache.get(key)
    if cached is not None:
        return cached
    heads = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename
                if info.is_dir() or Path(name).name.startswith(".") or "__MACOSX" in name:
                    continue
                if Path(name).suffix.lower() in TEXT_SUFFIXES:
                    with archive.open(info) as handle:
                        heads.append((name, _decode(handle.read(4096))))
    except (OSError, zipfile.BadZipFile):
        heads = []
    _zip_heads_cache[key] = heads
    return heads


def _candidates(path: Path, head: str) -> list[tuple[Optional[str], str]]:
    """(member or None, head text) of what a file holds: itself for a text file, its text
    members for a ZIP."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return list(_zip_heads(path))
    if suffix in TEXT_SUFFIXES:
        return [(None, head)]
    return []


def _member(path: Path, head: str, test) -> Optional[tuple[Optional[str], str]]:
    """The first candidate (see :func:`_candidates`) whose head passes ``test``, a .txt
    member before a .csv one."""
    found = [(m, h) for m, h in _candidates(path, head) if test(h)]
    found.sort(key=lambda item: (item[0] is not None and not item[0].lower().endswith(".txt"), item[0] or ""))
    return found[0] if found else None


def _folder_files(folder: Path, detect) -> list[Path]:
    """The files of ``folder`` that ``detect`` accepts."""
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".") and detect(p, file_head(p))]


def _read_text(path: Path, member: Optional[str] = None) -> tuple[str, str]:
    """The text of a file, or of ``member`` of a ZIP (default: its first .txt, else .csv,
    member), and the name read."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                if member is None:
                    names = archive.namelist()
                    for suffix in TEXT_SUFFIXES:
                        members = [n for n in names if n.lower().endswith(suffix)]
                        if members:
                            member = members[0]
                            break
                    else:
                        raise ConfigError(
                            f"{path}: the ZIP holds no .txt or .csv file (found {', '.join(names) or 'nothing'})")
                return _decode(archive.read(member)), f"{path.name}:{member}"
        return _decode(path.read_bytes()), path.name
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ConfigError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None


def _norm(text: str) -> str:
    return " ".join(str(text).replace("\n", " ").split()).upper()


def _looks_bundled(head: str) -> bool:
    """Bundled-format tables start with '# key: value' provenance lines."""
    return head.lstrip("\ufeff \r\n").startswith("#")


# -- PTP ------------------------------------------------------------------------------------
class _PtpPart:
    """One PTP file: the text after its header, with its column positions."""

    def __init__(self, path: Path, member: Optional[str] = None):
        text, self.label = _read_text(path, member)
        self.path = path
        first = PTP_DATA_LINE_M.search(text)
        if first is None:
            raise ConfigError(f"{path}: no PTP edit rows found (expected lines starting 'code<TAB>code')")
        line_end = text.find("\n", first.start())
        sample = text[first.start(): line_end if line_end >= 0 else len(text)]
        self.delimiter = "\t" if "\t" in sample else ","
        header_lines = [line for line in text[: first.start()].splitlines() if line.strip()]
        starts = [i for i, line in enumerate(header_lines) if "COLUMN 1" in _norm(line)]
        self.positions, self.layout = self._columns(header_lines[starts[0]:] if starts else [])
        # the whole text is kept (no copy of it from the first row on): every position
        # below is an offset into it, and the preamble is skipped by starting there
        self.data = text
        self.offset = first.start()
        self._check(sample)
        self.row_count = 0  # counted while the table indexes the blocks

    def _columns(self, header_lines: list[str]) -> tuple[dict[str, int], str]:
        """Column positions from the header (its rows merged cell by cell), else the
        published order (the order is fixed; only the header's line breaks vary)."""
        rows = [self._split(line) for line in header_lines if self.delimiter in line]
        width = max((len(r) for r in rows), default=0)
        merged = [_norm(" ".join(r[i] for r in rows if i < len(r) and r[i].strip())) for i in range(width)]
        wanted = {
            "column1": lambda n: "COLUMN 1" in n,
            "column2": lambda n: "COLUMN 2" in n,
            "prior_1996": lambda n: "1996" in n,
            "effective": lambda n: "EFFECTIVE" in n,
            "deleted": lambda n: "DELETION" in n,
            "modifier_indicator": lambda n: "MODIFIER" in n,
            "rationale": lambda n: "RATIONALE" in n,
        }
        found: dict[str, int] = {}
        for key, test in wanted.items():
            for index, name in enumerate(merged):
                if test(name) and index not in found.values():
                    found[key] = index
                    break
        if all(k in found for k in ("column1", "column2", "effective", "deleted", "modifier_indicator")):
            return found, "header"
        return {key: index for index, key in enumerate(PTP_COLUMNS[:7])}, "published column order"

    def _check(self, sample: str) -> None:
        cells = self._split(sample)
        pos = self.positions
        ok = len(cells) > max(pos["effective"], pos["modifier_indicator"])
        if ok:
            effective = cells[pos["effective"]].replace("-", "")
            ok = len(effective) == 8 and effective.isdigit() and cells[pos["modifier_indicator"]][:1] in ("0", "1", "9")
        if not ok:
            raise ConfigError(
                f"{self.path}: the first PTP row {sample.strip()[:80]!r} does not have the columns Column 1, "
                "Column 2, *=in existence prior to 1996, Effective Date (YYYYMMDD), Deletion Date, "
                "Modifier (0/1/9), PTP Edit Rationale"
            )

    def _split(self, line: str) -> list[str]:
        line = line.rstrip("\r\n")
        if self.delimiter == "\t":
            return [cell.strip().strip('"') for cell in line.split("\t")]
        return [cell.strip() for cell in next(csv.reader([line]))]

    def blocks(self) -> Iterator[tuple[str, int, int]]:
        """(column-1 code, start, end) of each run of consecutive lines with that code.

        One regular-expression match per run (the lines of a run are matched in C, with a
        back-reference to the run's code), and the rows counted with ``str.count``: the
        2.5 million rows of a release are indexed in about a second, not parsed."""
        self.row_count = 0
        data = self.data
        for match in PTP_BLOCK.finditer(data, self.offset):
            start, end = match.span()
            self.row_count += data.count("\n", start, end) + 1
            yield match.group(1).upper(), start, end

    def rows(self, start: int, end: int) -> Iterator[dict]:
        pos = self.positions
        width = max(pos.values()) + 1
        for line in self.data[start:end].splitlines():
            if not PTP_DATA_LINE.match(line):
                continue
            cells = self._split(line)
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            where = f"{self.label}: row {cells[pos['column1']]}/{cells[pos['column2']]}"
            indicator = cells[pos["modifier_indicator"]].strip()[:1]
            if indicator not in ("0", "1", "9"):
                raise ConfigError(f"{where}: modifier indicator {cells[pos['modifier_indicator']]!r} is not 0, 1 or 9")
            yield {
                "column1": cells[pos["column1"]].upper(),
                "column2": cells[pos["column2"]].upper(),
                "prior_1996": "yes" if "prior_1996" in pos and cells[pos["prior_1996"]].strip() == "*" else "",
                "effective": parse_table_date(cells[pos["effective"]], where),
                "deleted": parse_table_date(cells[pos["deleted"]], where),
                "modifier_indicator": indicator,
                "rationale": cells[pos["rationale"]] if "rationale" in pos else "",
                "verified": "yes",
            }


class PairTable(Table):
    """The PTP table of one CMS release, parsed on demand by column-1 code.

    Behaves as a :class:`~claimscrub.tables.Table`; ``lookup``/``first``/``knows`` with a
    ``column1`` parse only that code's rows. ``rows``, ``active`` and lookups without
    ``column1`` parse the whole release (slow: avoid them in edits).
    """

    def __init__(self, name: str, provenance: dict[str, str], parts: list[_PtpPart]):  # noqa: D107
        self.name = name
        self.provenance = provenance
        self.columns = list(PTP_COLUMNS)
        self.path = str(parts[0].path)
        self._indexes = {}
        self._parts = parts
        self._blocks: dict[str, list[tuple[int, int, int]]] = {}
        for number, part in enumerate(parts):
            for code, start, end in part.blocks():
                self._blocks.setdefault(code, []).append((number, start, end))
        self._parsed: dict[str, list[dict]] = {}

    @property
    def rows(self) -> list[dict]:  # type: ignore[override]
        return [row for code in sorted(self._blocks) for row in self._rows_for(code)]

    def _rows_for(self, column1: str) -> list[dict]:
        column1 = str(column1).upper()
        rows = self._parsed.get(column1)
        if rows is None:
            seen: set[tuple] = set()
            rows = []
            for number, start, end in self._blocks.get(column1, []):
                for row in self._parts[number].rows(start, end):
                    key = tuple(row[c] for c in PTP_COLUMNS)
                    if row["column1"] == column1 and key not in seen:
                        seen.add(key)
                        rows.append(row)
            self._parsed[column1] = rows
        return rows

    def _matching(self, match: dict[str, Any]) -> list[dict]:
        rows = self._rows_for(match["column1"])
        others = {k: str(v) for k, v in match.items() if k != "column1"}
        return [row for row in rows if all(str(row.get(k, "")) == v for k, v in others.items())]

    def lookup(self, day: Optional[date], **match: str) -> list[dict]:
        if "column1" not in match:
            return super().lookup(day, **match)
        return [row for row in self._matching(match) if self.applies(row, day)]

    def knows(self, **match: str) -> bool:
        if "column1" not in match:
            return super().knows(**match)
        return bool(self._matching(match))

    def knows_code(self, code: str) -> bool:
        return str(code).upper() in self._blocks


_ptp_cache: dict[tuple, PairTable] = {}

PTP_RELEASE = re.compile(r"v\d+r\d+", re.I)


def _is_ptp_text(head: str) -> bool:
    if _looks_bundled(head):
        return False
    text = _norm(head)
    return "COLUMN 1" in text and "COLUMN 2" in text and "MODIFIER" in text and "DELETION" in text


def detect_ptp(path: Path, head: str) -> bool:
    """A practitioner (or outpatient hospital, refused when loaded) PTP file by its header,
    or a ZIP holding one; a text file named like a CMS PTP part counts too, so that a
    damaged one is reported as such."""
    if _member(path, head, _is_ptp_text) is not None:
        return True
    return path.suffix.lower() in TEXT_SUFFIXES and bool(PTP_NAME.match(path.name))


def _ptp_identity(path: Path, member: Optional[str]) -> tuple[str, str]:
    """(kind, release) from the file or member name: ('ccipra', 'v322r0'); the release
    is '' when no name carries one."""
    for name in (Path(member).name if member else None, path.name):
        if not name:
            continue
        match = PTP_NAME.match(name)
        if match:
            return match.group("kind").lower(), match.group("release").lower()
    for name in (member, path.name):
        found = PTP_RELEASE.search(name or "")
        if found:
            kind = "ccioph" if "ccioph" in (name or "").lower() else "ccipra"
            return kind, found.group(0).lower()
    return "ccipra", ""


def load_ptp(path: Path) -> Table:
    """Every PTP file of ``path``'s folder, as one table (one release only)."""
    sources = []
    for file in _folder_files(path.parent, detect_ptp):
        found = _member(file, file_head(file), _is_ptp_text)
        member = found[0] if found else None
        kind, release = _ptp_identity(file, member)
        if kind == "ccioph":
            raise ConfigError(
                f"{file}: this is the outpatient hospital PTP file (ccioph); 837P professional claims "
                "are edited with the practitioner file (ccipra-...). Remove it from the rules folder."
            )
        sources.append((file, member, release))
    # Files whose names carry no release (renamed parts) count as parts of the named one.
    releases = sorted({release for _, _, release in sources if release})
    if len(releases) > 1:
        raise ConfigError(
            f"{path.parent}: holds practitioner PTP files of several releases ({', '.join(releases)}); "
            "keep the files of one release in the rules folder"
        )
    # A ZIP and the file extracted from it may both be there: read the extracted file only.
    extracted = {f.stem.lower() for f, m, _ in sources if m is None}
    sources = [(f, m, r) for f, m, r in sources
               if m is None or (f.stem.lower() not in extracted and Path(m).stem.lower() not in extracted)]
    release = releases[0] if releases else sources[0][0].stem
    key = tuple(_stat_key(f) + (m,) for f, m, _ in sources)
    table = _ptp_cache.get(key)
    if table is None:
        parts = [_PtpPart(f, m) for f, m, _ in sources]
        named = bool(PTP_RELEASE.fullmatch(release))
        provenance = {
            "source": "CMS NCCI procedure-to-procedure edits, practitioner services",
            "version": f"ccipra-{release}" if named else release,
            "release": release,
            "files": ", ".join(part.label for part in parts),
            "notes": "rows carry their own effective and deletion dates; modifier indicator 9 rows never apply",
        }
        table = PairTable("ptp", provenance, parts)
        table.provenance["rows"] = str(sum(part.row_count for part in parts))
        _ptp_cache.clear()
        _ptp_cache[key] = table
    return table


# -- MUE ------------------------------------------------------------------------------------
def _is_mue_text(head: str) -> bool:
    if _looks_bundled(head):
        return False
    text = _norm(head)
    return "HCPCS" in text and "MUE VALUES" in text and "ADJUDICATION INDICATOR" in text


def detect_mue(path: Path, head: str) -> bool:
    """An MUE file by its header, or a ZIP holding one; a CSV named like a CMS MUE file
    counts too, so that a damaged one is reported as such."""
    if _member(path, head, _is_mue_text) is not None:
        return True
    return path.suffix.lower() == ".csv" and bool(MUE_NAME.search(path.name))


def _mue_effective(path: Path, member: Optional[str]) -> str:
    for name in (member, path.name):
        match = MUE_NAME.search(name or "")
        if match:
            return date(int(match.group("y")), int(match.group("m")), int(match.group("d"))).isoformat()
    return ""


_mue_cache: dict[tuple, Table] = {}


def load_mue(path: Path) -> Table:
    """The practitioner MUE file of ``path``'s folder (one release; a ZIP and the file
    extracted from it count once)."""
    sources = []
    for file in _folder_files(path.parent, detect_mue):
        found = _member(file, file_head(file), _is_mue_text)
        member = found[0] if found else None
        sources.append((file, member, _mue_effective(file, member) or file.stem))
    releases = sorted({release for _, _, release in sources})
    if len(releases) > 1:
        raise ConfigError(
            f"{path.parent}: holds MUE files of several releases ({', '.join(releases)}); "
            "keep one practitioner MUE release in the rules folder"
        )
    extracted = {f.stem.lower() for f, m, _ in sources if m is None}
    chosen = [(f, m) for f, m, _ in sources
              if m is None or (f.stem.lower() not in extracted and Path(m).stem.lower() not in extracted)]
    file, member = chosen[0]
    key = _stat_key(file) + (member,)
    if key not in _mue_cache:
        _mue_cache.clear()
        _mue_cache[key] = _load_mue_file(file, member)
    return _mue_cache[key]


def _load_mue_file(path: Path, member: Optional[str] = None) -> Table:
    text, label = _read_text(path, member)
    records = list(csv.reader(io.StringIO(text)))
    header_at = None
    for number, record in enumerate(records):
        names = [_norm(cell) for cell in record]
        if any(n.startswith("HCPCS") for n in names) and any("MUE VALUES" in n for n in names):
            header_at = number
            break
    if header_at is None:
        raise ConfigError(
            f"{path}: no MUE header row found (expected 'HCPCS/CPT Code', "
            "'Practitioner Services MUE Values', 'MUE Adjudication Indicator', 'MUE Rationale')"
        )
    names = [_norm(cell) for cell in records[header_at]]
    values_name = next(n for n in names if "MUE VALUES" in n)
    if "PRACTITIONER" not in values_name:
        raise ConfigError(
            f"{path}: this MUE file holds {values_name.title()}; 837P professional claims are edited "
            "with the Practitioner Services MUE file. Remove it from the rules folder."
        )

    def column(test) -> Optional[int]:
        return next((i for i, n in enumerate(names) if test(n)), None)

    code_at = column(lambda n: n.startswith("HCPCS"))
    value_at = column(lambda n: "MUE VALUES" in n)
    mai_at = column(lambda n: "ADJUDICATION" in n)
    rationale_at = column(lambda n: "RATIONALE" in n)
    if mai_at is None:
        raise ConfigError(f"{path}: the MUE header has no 'MUE Adjudication Indicator' column")
    rows = []
    for number, record in enumerate(records[header_at + 1 :], start=header_at + 2):
        if not record or not any(cell.strip() for cell in record):
            continue
        cells = record + [""] * (max(code_at, value_at, mai_at, rationale_at or 0) + 1 - len(record))
        code = cells[code_at].strip().upper()
        if not code:
            continue
        value = cells[value_at].strip()
        mai = re.match(r"\s*([123])\b", cells[mai_at])
        if not value.isdigit() or mai is None:
            raise ConfigError(
                f"{label}: record {number} ({code}): MUE {value!r} / adjudication indicator "
                f"{cells[mai_at]!r} not understood (expected a number and '1 Line Edit', '2 Date of "
                "Service Edit: Policy' or '3 Date of Service Edit: Clinical')"
            )
        rows.append({
            "code": code,
            "mue": value,
            "mai": mai.group(1),
            "rationale": cells[rationale_at].strip() if rationale_at is not None else "",
            "effective": None,
            "deleted": None,
            "verified": "yes",
        })
    effective = _mue_effective(path, member)
    version = Path(member).stem if member else path.stem
    provenance = {
        "source": "CMS Medically Unlikely Edits, practitioner services",
        "version": version,
        "release": f"Eff {effective}" if effective else version,
        "effective": effective,
        "files": label,
        "rows": str(len(rows)),
        "notes": "a release is a snapshot without row dates: its rows apply to every date of service",
    }
    return Table("mue", provenance, list(MUE_COLUMNS), rows, str(path))


# -- RVU ------------------------------------------------------------------------------------
_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}


RVU_TITLE = re.compile(r"(?P<year>\d{4}) NATIONAL PHYSICIAN FEE SCHEDULE RELATIVE VALUE FILE (?P<month>[A-Z]+) RELEASE")
RVU_BUNDLE = re.compile(r"^RVU(?P<yy>\d{2})(?P<quarter>[A-D])", re.I)
_QUARTER_MONTH = {"A": "Jan", "B": "Apr", "C": "Jul", "D": "Oct"}


def _is_rvu_text(head: str) -> bool:
    if _looks_bundled(head):
        return False
    words = set(re.split(r"[^A-Z0-9]+", _norm(head)))
    return {"HCPCS", "WORK", "RVU", "PCTC", "GLOB"} <= words


def detect_rvu(path: Path, head: str) -> bool:
    """A PPRRVU relative value file by its header, or a ZIP holding one (the RVU bundle);
    a CSV named like a PPRRVU file counts too, so that a damaged one is reported as such."""
    if _member(path, head, _is_rvu_text) is not None:
        return True
    return path.suffix.lower() == ".csv" and bool(RVU_NAME.match(path.name))


def _rvu_identity(path: Path, member: Optional[str], head: str) -> tuple[int, int, bool, str]:
    """(year, release month 1-12, QPP file?, release label) from the file or member name
    (PPRRVU2025_Oct.csv, PPRRVU26_Jan_nonQPP.csv, rvu25d_0.zip), else from the file's
    title line ("2025 National Physician Fee Schedule Relative Value File October Release")."""
    names = [Path(member).name if member else "", path.name]
    qpp = any(re.search(r"_QPP", n, re.I) and not re.search(r"NONQPP", n, re.I) for n in names)
    for name in names:
        match = RVU_NAME.match(name)
        if match:
            year = int(match.group("year"))
            year += 2000 if year < 100 else 0
            month = _MONTHS.get(match.group("month").upper())
            if month:
                return year, month, qpp, f"{year} {match.group('month').title()}"
    title = RVU_TITLE.search(_norm(head))
    if title:
        month = _MONTHS.get(title.group("month")[:3])
        if month:
            return int(title.group("year")), month, qpp, f"{title.group('year')} {title.group('month').title()}"
    bundle = RVU_BUNDLE.match(path.name)
    if bundle:
        year = 2000 + int(bundle.group("yy"))
        month_name = _QUARTER_MONTH[bundle.group("quarter").upper()]
        return year, _MONTHS[month_name.upper()], qpp, f"{year} {month_name}"
    raise ConfigError(
        f"{path}: the RVU file's year is neither in its name (PPRRVU{{YYYY}}_{{Mon}}) nor in its title line"
    )


_rvu_cache: dict[tuple, Table] = {}


def load_rvu(path: Path) -> Table:
    """The PPRRVU files of ``path``'s folder as one table: for each calendar year, its
    latest release, the non-QPP file when the QPP one is there too."""
    found = []
    for file in _folder_files(path.parent, detect_rvu):
        head = file_head(file)
        candidates = [(m, h) for m, h in _candidates(file, head) if _is_rvu_text(h)] or [(None, head)]
        for member, member_head in candidates:
            year, month, qpp, label = _rvu_identity(file, member, member_head)
            found.append((year, month, qpp, file, member, label))
    by_year: dict[int, list] = {}
    for item in found:
        by_year.setdefault(item[0], []).append(item)
    chosen, unused = [], []
    for year in sorted(by_year):
        # latest release of the year; then the non-QPP file; then an extracted file over a ZIP
        items = sorted(by_year[year], key=lambda i: (-i[1], i[2], i[4] is not None, i[3].name))
        chosen.append(items[0])
        unused.extend(f"{i[3].name}{':' + i[4] if i[4] else ''}" for i in items[1:])
    key = tuple(_stat_key(i[3]) + (i[4],) for i in chosen)
    if key in _rvu_cache:
        return _rvu_cache[key]
    rows: list[dict] = []
    files, releases = [], []
    for year, _month, qpp, file, member, label in chosen:
        file_rows, read = _load_rvu_file(file, member, year)
        rows.extend(file_rows)
        files.append(read)
        releases.append(label + (" QPP" if qpp else ""))
    first_year, last_year = chosen[0][0], chosen[-1][0]
    provenance = {
        "source": "CMS Medicare Physician Fee Schedule relative value file (PPRRVU)",
        "version": ", ".join(Path(f.split(":")[-1]).stem for f in files),
        "release": ", ".join(releases),
        "effective": date(first_year, 1, 1).isoformat(),
        "files": ", ".join(files),
        "rows": str(len(rows)),
        "notes": (
            f"national RVUs, each file applied to the dates of service of its year ({first_year}"
            + (f"-{last_year}" if last_year != first_year else "") + ")"
            + (f"; not used (an older release or the QPP file of a year already loaded): {', '.join(unused)}"
               if unused else "")
        ),
    }
    table = Table("rvu", provenance, list(RVU_COLUMNS), rows, str(chosen[0][3]))
    _rvu_cache.clear()
    _rvu_cache[key] = table
    return table


def _load_rvu_file(source_path: Path, member: Optional[str], year: int) -> tuple[list[dict], str]:
    text, label = _read_text(source_path, member)
    records = list(csv.reader(io.StringIO(text)))
    header_at = next(
        (i for i, r in enumerate(records) if r and _norm(r[0]) in ("HCPCS", "HCPCS CODE", "HCPCS/CPT CODE")), None
    )
    if header_at is None:
        raise ConfigError(f"{source_path}: no header row starting with 'HCPCS' found in the RVU file")
    header_rows = [records[header_at]]
    for record in reversed(records[:header_at]):
        if record and not record[0].strip() and sum(1 for c in record if c.strip()) >= 2:
            header_rows.insert(0, record)
        else:
            break
    width = max(len(r) for r in header_rows)
    names = [_norm(" ".join(r[i] for r in header_rows if i < len(r) and r[i].strip())) for i in range(width)]

    def column(test) -> Optional[int]:
        return next((i for i, n in enumerate(names) if test(n)), None)

    def words(name: str) -> set[str]:
        return set(re.split(r"[^A-Z0-9]+", name))

    at = {
        "code": column(lambda n: n.startswith("HCPCS")),
        "modifier": column(lambda n: n in ("MOD", "MODIFIER")),
        "description": column(lambda n: "DESCRIPTION" in n),
        "status": column(lambda n: "STATUS" in n),
        "work_rvu": column(lambda n: "WORK" in n and "RVU" in n),
        "pe_nonfacility": column(lambda n: "PE RVU" in n and "NON" in n and "FAC" in n
                                 and not ({"NA", "INDICATOR", "TOTAL"} & words(n))),
        "pe_facility": column(lambda n: "PE RVU" in n and "FAC" in n and "NON" not in n
                              and not ({"NA", "INDICATOR", "TOTAL"} & words(n))),
        "mp_rvu": column(lambda n: ("MP" in words(n) and "RVU" in n) or "MALPRACTICE" in n),
        "global_days": column(lambda n: "GLOB" in n),
        "pctc_indicator": column(lambda n: "PCTC" in n),
        "bilateral_indicator": column(lambda n: "BILAT" in n),
        "multiple_procedure": column(lambda n: "MULT" in n),
        "conversion_factor": column(lambda n: "CONV" in n),
    }
    missing = [k for k in ("code", "work_rvu", "pe_nonfacility", "pe_facility", "mp_rvu") if at[k] is None]
    if missing:
        raise ConfigError(
            f"{source_path}: the RVU header does not name the columns {', '.join(missing)} "
            f"(header read as: {', '.join(n for n in names if n)})"
        )
    effective, deleted = date(year, 1, 1), date(year, 12, 31)
    rows = []
    for record in records[header_at + 1 :]:
        if not record or not record[at["code"]].strip():
            continue
        row: dict[str, Any] = {}
        for key, index in at.items():
            row[key] = record[index].strip() if index is not None and index < len(record) else ""
        row["code"] = row["code"].upper()
        row["modifier"] = row["modifier"].upper()
        row.update(year=str(year), source=label, verified="yes", effective=effective, deleted=deleted)
        rows.append(row)
    return rows, label


for _name, _detect, _load in (("ptp", detect_ptp, load_ptp), ("mue", detect_mue, load_mue),
                              ("rvu", detect_rvu, load_rvu)):
    register_loader(_name, _detect, _load)

# ICD-10-CM release files (CDC/CMS order file or code list, or a ZIP holding one), recognised by
# their content; all releases of the folder load as one table (claimscrub.icd10).
from claimscrub import icd10  # noqa: E402

register_loader(icd10.TABLE, icd10.detect_release_file, icd10.load_release_files)
