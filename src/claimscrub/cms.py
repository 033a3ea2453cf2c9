"""Loaders for the rule files CMS publishes, in their published layouts.

A user with the complete quarterly files points ``--rules DIR`` (or ``rules =`` in the
configuration) at a folder holding them, and they replace the bundled tables of the same
name, without any conversion:

``ptp``  the practitioner NCCI procedure-to-procedure edits, ``ccipra-vNNNrN-fN.txt`` (tab
         delimited) or ``.csv``, or the ``.zip`` CMS ships (its ``.txt`` member is read).
         Leading copyright lines and a header spread over several physical rows are
         skipped; the columns are, in order, ``Column 1``, ``Column 2``, ``*=in existence
         prior to 1996``, ``Effective Date``, ``Deletion Date *=no data``, ``Modifier
         0=not allowed 1=allowed 9=not applicable``, ``PTP Edit Rationale``. The parts of
         one release (``-f1`` .. ``-f4``) are combined into one table; a folder holding two
         releases, or the outpatient-hospital file (``ccioph``), is an error.
``mue``  the practitioner MUE file, ``MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY.csv`` (or a
         ZIP of that name holding it):
         an AMA copyright cell (possibly several lines), then the header ``HCPCS/CPT Code``
         (possibly ``HCPCS/\\nCPT Code``), ``Practitioner Services MUE Values``, ``MUE
         Adjudication Indicator`` (text such as ``2 Date of Service Edit: Policy``: its
         leading digit is the MAI), ``MUE Rationale``. The outpatient-hospital and DME
         files are refused: their values are not the practitioner ones.
``rvu``  the MPFS relative value file ``PPRRVU{YYYY}_{Mon}_nonQPP.csv`` (or ``_QPP``, which
         differs only in the conversion factor; the non-QP file is preferred when both are
         there): title lines, then a header whose names are spread over two or three rows
         (``WORK`` over ``RVU``, ``NON-FAC`` over ``PE RVU``, ...), which are merged and
         matched by keyword.

Every table records where it came from: the file names and the release (``v322r0``, ``Eff
2026-01-01``, ``2026 Jan``) appear in its provenance, which every report lists under
``tables``. Rows from a CMS file are ``verified=yes``: edits that report bundled,
UNVERIFIED rows as warnings report them at their full severity.

Dates: a PTP row carries its own effective and deletion dates. The MUE file has none: a
release is a snapshot whose rows apply to every date of service (its effective date is
recorded in the provenance), so scrub claims with the release that covers their dates. An
RVU file applies to the calendar year in its name.

The practitioner PTP table has about two million rows. It is not turned into Python
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
from claimscrub.tables import CMS_LOADERS, Table, parse_table_date

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
PTP_LINE_START = re.compile(rf'^[ \t]*"?({CODE})"?[ \t]*[\t,]', re.M)


# -- reading ------------------------------------------------------------------------------
def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _read_text(path: Path) -> tuple[str, str]:
    """The text of a file, or of the ``.txt`` (else ``.csv``) member of a ZIP, and the name read."""
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                for suffix in (".txt", ".csv"):
                    members = [n for n in names if n.lower().endswith(suffix)]
                    if members:
                        return _decode(archive.read(members[0])), f"{path.name}:{members[0]}"
                raise ConfigError(f"{path}: the ZIP holds no .txt or .csv file (found {', '.join(names) or 'nothing'})")
        return _decode(path.read_bytes()), path.name
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None


def _norm(text: str) -> str:
    return " ".join(str(text).replace("\n", " ").split()).upper()


def _looks_bundled(head: str) -> bool:
    """Bundled-format tables start with '# key: value' provenance lines."""
    return head.lstrip("\ufeff \r\n").startswith("#")


# -- PTP ------------------------------------------------------------------------------------
class _PtpPart:
    """One PTP file: the text after its header, with its column positions."""

    def __init__(self, path: Path):
        text, self.label = _read_text(path)
        self.path = path
        first = PTP_DATA_LINE_M.search(text)
        if first is None:
            raise ConfigError(f"{path}: no PTP edit rows found (expected lines starting 'code<TAB>code')")
        sample = text[first.start():].split("\n", 1)[0]
        self.delimiter = "\t" if "\t" in sample else ","
        header_lines = [line for line in text[: first.start()].splitlines() if line.strip()]
        starts = [i for i, line in enumerate(header_lines) if "COLUMN 1" in _norm(line)]
        self.positions, self.layout = self._columns(header_lines[starts[0]:] if starts else [])
        self.data = text[first.start():]
        del text
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
        """(column-1 code, start, end) of each run of consecutive lines with that code."""
        current, start = None, 0
        self.row_count = 0
        for match in PTP_LINE_START.finditer(self.data):
            self.row_count += 1
            code = match.group(1).upper()
            if code != current:
                if current is not None:
                    yield current, start, match.start()
                current, start = code, match.start()
        if current is not None:
            yield current, start, len(self.data)

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


def _ptp_files(folder: Path) -> list[tuple[Path, re.Match]]:
    out = []
    for path in sorted(folder.iterdir()):
        match = PTP_NAME.match(path.name)
        if match and path.is_file() and path.suffix.lower() in (".txt", ".csv", ".zip"):
            out.append((path, match))
    return out


def detect_ptp(path: Path, head: str) -> bool:
    if PTP_NAME.match(path.name) and path.suffix.lower() in (".txt", ".csv", ".zip"):
        return True
    if path.suffix.lower() not in (".txt", ".csv") or _looks_bundled(head):
        return False
    text = _norm(head)
    return "COLUMN 1" in text and "COLUMN 2" in text and "MODIFIER" in text and "DELETION" in text


def load_ptp(path: Path) -> Table:
    match = PTP_NAME.match(path.name)
    if match and match.group("kind").lower() == "ccioph":
        raise ConfigError(
            f"{path}: this is the outpatient hospital PTP file (ccioph); 837P professional claims "
            "are edited with the practitioner file (ccipra-...). Remove it from the rules folder."
        )
    if match:
        siblings = [(p, m) for p, m in _ptp_files(path.parent) if m.group("kind").lower() == "ccipra"]
        releases = sorted({m.group("release").lower() for _, m in siblings})
        if len(releases) > 1:
            raise ConfigError(
                f"{path.parent}: holds practitioner PTP files of several releases ({', '.join(releases)}); "
                "keep the files of one release in the rules folder"
            )
        files = [p for p, _ in siblings]
        release = match.group("release").lower()
    else:
        files, release = [path], path.stem
    # A ZIP and its extracted TXT may both be there: read the extracted file only.
    extracted = {p.stem.lower() for p in files if p.suffix.lower() != ".zip"}
    files = [p for p in files if p.suffix.lower() != ".zip" or p.stem.lower() not in extracted]
    key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    table = _ptp_cache.get(key)
    if table is None:
        parts = [_PtpPart(p) for p in files]
        provenance = {
            "source": "CMS NCCI procedure-to-procedure edits, practitioner services",
            "version": f"ccipra-{release}" if match else release,
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
def detect_mue(path: Path, head: str) -> bool:
    if path.suffix.lower() == ".zip":
        return bool(MUE_NAME.search(path.name))
    if path.suffix.lower() != ".csv":
        return False
    if MUE_NAME.search(path.name):
        return True
    if _looks_bundled(head):
        return False
    text = _norm(head)
    return "HCPCS" in text and "MUE VALUES" in text and "ADJUDICATION INDICATOR" in text


def load_mue(path: Path) -> Table:
    text, label = _read_text(path)
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
    name_match = MUE_NAME.search(path.name)
    effective = ""
    if name_match:
        effective = date(int(name_match.group("y")), int(name_match.group("m")), int(name_match.group("d"))).isoformat()
    provenance = {
        "source": "CMS Medically Unlikely Edits, practitioner services",
        "version": path.stem,
        "release": f"Eff {effective}" if effective else path.stem,
        "effective": effective,
        "files": label,
        "rows": str(len(rows)),
        "notes": "a release is a snapshot without row dates: its rows apply to every date of service",
    }
    return Table("mue", provenance, list(MUE_COLUMNS), rows, str(path))


# -- RVU ------------------------------------------------------------------------------------
_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}


def detect_rvu(path: Path, head: str) -> bool:
    return path.suffix.lower() == ".csv" and bool(RVU_NAME.match(path.name))


def _rvu_year_month(path: Path) -> tuple[int, str]:
    match = RVU_NAME.match(path.name)
    assert match is not None
    year = int(match.group("year"))
    if year < 100:
        year += 2000
    return year, match.group("month").title()


def load_rvu(path: Path) -> Table:
    year, month = _rvu_year_month(path)
    # The QPP and non-QPP files of a release differ only in the conversion factor; the
    # non-qualifying-participant file is the one claimscrub prices with.
    same_release = [
        p for p in sorted(path.parent.iterdir())
        if p.is_file() and detect_rvu(p, "") and _rvu_year_month(p) == (year, month)
    ]
    preferred = [p for p in same_release if "NONQP" in p.name.upper()]
    source_path = preferred[0] if preferred else path
    text, label = _read_text(source_path)
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
    provenance = {
        "source": "CMS Medicare Physician Fee Schedule relative value file (PPRRVU)",
        "version": source_path.stem,
        "release": f"{year} {month}",
        "effective": effective.isoformat(),
        "files": label,
        "rows": str(len(rows)),
        "notes": f"national RVUs applied to dates of service in {year}",
    }
    return Table("rvu", provenance, list(RVU_COLUMNS), rows, str(source_path))


CMS_LOADERS.extend([
    ("ptp", detect_ptp, load_ptp),
    ("mue", detect_mue, load_mue),
    ("rvu", detect_rvu, load_rvu),
])

# ICD-10-CM release files (CDC/CMS order file or code list, or a ZIP holding one), recognised by
# their content; all releases of the folder load as one table (claimscrub.icd10).
from claimscrub import icd10  # noqa: E402

CMS_LOADERS.append((icd10.TABLE, icd10.detect_release_file, icd10.load_release_files))
