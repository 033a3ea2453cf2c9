"""One rule table: its rows, their dates, and its provenance header.

The table format, the readers of the claimscrub CSV/YAML tables and the registry of loaders
for published layouts, without the folder logic (:mod:`claimscrub.tables`), so that the
loaders of the published layouts (:mod:`claimscrub.cms`) depend on this module only and
:mod:`claimscrub.tables` on them: no import cycle.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from claimscrub.errors import ConfigError

REQUIRED_PROVENANCE = ("source", "version")


def parse_table_date(value: Any, where: str) -> Optional[date]:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if text in ("", "*"):
        return None
    digits = text.replace("-", "")
    if len(digits) == 8 and digits.isdigit():
        try:
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError:
            pass
    raise ConfigError(f"{where}: {text!r} is not a date (use YYYY-MM-DD or YYYYMMDD)")


@dataclass
class Table:
    name: str
    provenance: dict[str, str]
    columns: list[str]
    rows: list[dict[str, Any]]
    path: str = ""
    _indexes: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for number, row in enumerate(self.rows, start=1):
            where = f"{self.path or self.name}: row {number}"
            row["effective"] = parse_table_date(row.get("effective"), where)
            row["deleted"] = parse_table_date(row.get("deleted"), where)

    @staticmethod
    def applies(row: dict, day: Optional[date]) -> bool:
        if day is None:
            return row["deleted"] is None
        effective, deleted = row["effective"], row["deleted"]
        return (effective is None or effective <= day) and (deleted is None or day <= deleted)

    def active(self, day: Optional[date]) -> list[dict]:
        return [row for row in self.rows if self.applies(row, day)]

    def index(self, *columns: str) -> dict[tuple, list[dict]]:
        key = columns
        if key not in self._indexes:
            built: dict[tuple, list[dict]] = {}
            for row in self.rows:
                built.setdefault(tuple(str(row.get(c, "")) for c in columns), []).append(row)
            self._indexes[key] = built
        return self._indexes[key]

    def lookup(self, day: Optional[date], **match: str) -> list[dict]:
        """Rows whose columns equal ``match`` and that apply on ``day``."""
        columns = tuple(sorted(match))
        rows = self.index(*columns).get(tuple(str(match[c]) for c in columns), [])
        return [row for row in rows if self.applies(row, day)]

    def first(self, day: Optional[date], **match: str) -> Optional[dict]:
        rows = self.lookup(day, **match)
        return rows[0] if rows else None

    def knows(self, **match: str) -> bool:
        """Whether any row (whatever its dates) matches: distinguishes 'not in the table'
        (unchecked) from 'in the table but not active on this date'."""
        columns = tuple(sorted(match))
        return bool(self.index(*columns).get(tuple(str(match[c]) for c in columns)))

    def version_info(self) -> dict[str, str]:
        info = {"table": self.name, "file": os.path.basename(self.path)}
        info.update({k: str(v) for k, v in self.provenance.items()})
        if "rows" not in info:  # (a table that counts its rows itself says so: never parse them all here)
            info["rows"] = str(len(self.rows))
        return info


def read_csv_table(path: str | Path, name: Optional[str] = None) -> Table:
    path = Path(path)
    provenance: dict[str, str] = {}
    body: list[str] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for raw in handle:
            if not body and raw.startswith("#"):
                key, sep, value = raw[1:].partition(":")
                if sep:
                    key = key.strip().lower()
                    value = value.strip()
                    provenance[key] = f"{provenance[key]} {value}" if key in provenance else value
                continue
            if not body and not raw.strip():
                continue
            body.append(raw)
    reader = csv.DictReader(io.StringIO("".join(body)))
    rows = [{k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k} for row in reader]
    table = Table(name or path.stem, provenance, list(reader.fieldnames or []), rows, str(path))
    _check_provenance(table)
    return table


def read_yaml_table(path: str | Path, name: Optional[str] = None) -> Table:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or "rows" not in data:
        raise ConfigError(f"{path}: a YAML table needs 'provenance' and 'rows'")
    rows = data.get("rows") or []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{path}: 'rows' must be a list of mappings")
    columns = sorted({k for row in rows for k in row})
    provenance = {str(k): str(v) for k, v in (data.get("provenance") or {}).items()}
    table = Table(name or path.stem, provenance, columns, [dict(r) for r in rows], str(path))
    _check_provenance(table)
    return table


def _check_provenance(table: Table) -> None:
    missing = [k for k in REQUIRED_PROVENANCE if not table.provenance.get(k)]
    if missing:
        raise ConfigError(f"{table.path}: provenance header lacks {', '.join(missing)}")


Detect = Callable[[Path, str], bool]
Load = Callable[[Path], Any]

#: The registry of rule files in published layouts (the CMS PTP, MUE and RVU files, the
#: ICD-10-CM release files): ``(table name, detect(path, head) -> bool, load(path) -> Table)``.
#: ``head`` is the file's first 4 KB as text (for a ZIP, its raw bytes: a detector that
#: accepts ZIPs looks inside). ``load`` is called once per table name with the first file
#: of the folder ``detect`` accepts and reads the others of the folder itself (one release
#: spread over several files, several years). Filled in by the modules that parse the
#: layouts (:mod:`claimscrub.cms` registers PTP, MUE and RVU); a new layout is one more
#: entry, through :func:`register_loader` or ``CMS_LOADERS.append``.
CMS_LOADERS: list[tuple[str, Detect, Load]] = []


def register_loader(name: str, detect: Detect, load: Load) -> None:
    """Add a layout to :data:`CMS_LOADERS` (once per name)."""
    if all(entry[0] != name for entry in CMS_LOADERS):
        CMS_LOADERS.append((name, detect, load))


def file_head(path: Path) -> str:
    """The first 4 KiB of a file as text, for recognising its layout."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
