"""Rule data: the effective-dated tables in ``edits/`` (and any folder given with ``--rules``).

Each table is a CSV file whose leading ``#`` lines are its provenance header::

    # source: CPT 2017 code set (62320-62327 replace 62310-62319); domain-rules.md section 1
    # version: claimscrub bundle 2026-11
    # effective: 2017-01-01
    code,region,imaging,catheter,effective,deleted
    62320,CT,no,no,2017-01-01,

or a YAML file with a ``provenance`` mapping and a ``rows`` list. ``source`` and
``version`` are required. Rows may carry ``effective`` and ``deleted`` dates (ISO
``YYYY-MM-DD`` or ``YYYYMMDD``; blank or ``*`` means none); the date of service selects the
rows that apply: ``effective <= DOS`` and, when deleted, ``DOS <= deleted`` (the deletion
date is the last day a row applies, as in the CMS NCCI files).

A folder given with ``--rules`` is read after the bundled one: a table of the same name
replaces the bundled table, and files in the CMS published layouts (practitioner PTP, MUE,
RVU) are recognised by :data:`CMS_LOADERS` and loaded under their table names.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import yaml

from claimscrub.errors import ConfigError

REQUIRED_PROVENANCE = ("source", "version")


def bundled_tables_dir() -> Path:
    """The ``edits/`` folder: ``$CLAIMSCRUB_EDITS``, else the one beside ``src/``."""
    env = os.environ.get("CLAIMSCRUB_EDITS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "edits", here.parent / "data" / "edits"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the bundled rule tables (edits/) were not found; set CLAIMSCRUB_EDITS")


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


#: (name, detect(path, first_kb_text) -> bool, load(path) -> Table) for files in the
#: CMS published layouts; filled in by the modules that parse them.
CMS_LOADERS: list[tuple[str, Callable[[Path, str], bool], Callable[[Path], Table]]] = []


class RuleTables:
    def __init__(self, tables: dict[str, Table]):
        self._tables = tables

    def table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise ConfigError(f"rule table {name!r} is not loaded") from None

    def get(self, name: str) -> Optional[Table]:
        return self._tables.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._tables

    def names(self) -> list[str]:
        return sorted(self._tables)

    def versions(self) -> Iterable[dict[str, str]]:
        return [self._tables[name].version_info() for name in sorted(self._tables)]


def _read_folder(folder: Path, into: dict[str, Table]) -> None:
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        suffix = path.suffix.lower()
        head = ""
        try:
            with open(path, "rb") as handle:
                head = handle.read(4096).decode("utf-8", "replace")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
        for name, detect, load in CMS_LOADERS:
            if detect(path, head):
                into[name] = load(path)
                break
        else:
            if suffix == ".csv":
                into[path.stem] = read_csv_table(path)
            elif suffix in (".yaml", ".yml"):
                into[path.stem] = read_yaml_table(path)


def load_tables(rules_dir: Optional[str] = None) -> RuleTables:
    """The bundled tables, overlaid with the tables in ``rules_dir``."""
    _import_cms_loaders()
    tables: dict[str, Table] = {}
    _read_folder(bundled_tables_dir(), tables)
    if rules_dir:
        folder = Path(rules_dir)
        if not folder.is_dir():
            raise ConfigError(f"{rules_dir}: rule table folder not found")
        _read_folder(folder, tables)
    return RuleTables(tables)


def _import_cms_loaders() -> None:
    try:
        import claimscrub.cms  # noqa: F401  (registers CMS_LOADERS)
    except ModuleNotFoundError as exc:
        if exc.name != "claimscrub.cms":
            raise
