"""Rule data: the effective-dated tables in ``edits/`` (and any folder given with ``--rules``).

Each table is a CSV file whose leading ``#`` lines are its provenance header::

    # source: CPT 2017 code set (62320-62327 replace 62310-62319)
    # version: claimscrub bundle 2026-11
    # effective: 2017-01-01
    code,region,imaging,catheter,effective,deleted
    62320,CT,no,no,2017-01-01,

or a YAML file with a ``provenance`` mapping and a ``rows`` list. ``source`` and
``version`` are required. Rows may carry ``effective`` and ``deleted`` dates (ISO
``YYYY-MM-DD`` or ``YYYYMMDD``; blank or ``*`` means none); the date of service selects the
rows that apply: ``effective <= DOS`` and, when deleted, ``DOS <= deleted`` (the deletion
date is the last day a row applies, as in the CMS NCCI files).

A folder given with ``--rules`` is read after the bundled one, and every file in it must be
recognised by its content: a file in a published layout (the CMS practitioner PTP, MUE and
PPRRVU files, as TXT, CSV or the ZIP CMS ships, whatever their names; ICD-10-CM release
files; see :data:`~claimscrub.ruletable.CMS_LOADERS`) is loaded under its table name, a
claimscrub CSV (``#`` provenance lines first) or YAML table under its file name, and a table
of the same name replaces the bundled one. Anything else, a folder included, is a
configuration error naming the file: nothing in the folder is silently ignored.

The table format itself lives in :mod:`claimscrub.ruletable`; its names are re-exported here.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Iterable, Optional

from claimscrub.errors import ConfigError
from claimscrub.ruletable import (  # noqa: F401  (re-exported)
    CMS_LOADERS,
    REQUIRED_PROVENANCE,
    Table,
    file_head,
    parse_table_date,
    read_csv_table,
    read_yaml_table,
    register_loader,
)

#: Modules that register loaders of published layouts in CMS_LOADERS when imported.
LOADER_MODULES = ["claimscrub.cms"]

#: What each registered layout is, for the message about a file recognised as none of them.
LAYOUT_NAMES = {
    "ptp": "the CMS NCCI practitioner PTP file (ccipra, TXT/CSV/ZIP)",
    "mue": "the CMS practitioner MUE file (CSV/ZIP)",
    "rvu": "the CMS PPRRVU relative value file (CSV/ZIP)",
    "icd10cm": "an ICD-10-CM release file (order file or code list, TXT/ZIP)",
}


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


def _is_claimscrub_csv(path: Path, head: str) -> bool:
    return path.suffix.lower() == ".csv" and head.lstrip("\ufeff \r\n").startswith("#")


def _is_claimscrub_yaml(path: Path, head: str) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _unrecognised(path: Path) -> ConfigError:
    known = [LAYOUT_NAMES.get(name, f"a {name} file") for name, _, _ in CMS_LOADERS]
    known.append("a claimscrub table (CSV starting with '# source:' and '# version:' lines, or YAML)")
    return ConfigError(
        f"{path}: not a rule file claimscrub recognises (expected {'; '.join(known)}); "
        "remove it from the rules folder"
    )


def _read_folder(folder: Path, into: dict[str, Table], strict: bool) -> None:
    """Load every file of ``folder``. A published-layout loader is called once, with the
    first of its files (it reads its other files of the folder itself). With ``strict``
    (a ``--rules`` folder), a file no loader recognises is an error."""
    loaded: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if not path.is_file():
            if strict:
                raise ConfigError(f"{path}: is a folder; put the rule files directly in {folder}")
            continue
        head = file_head(path)
        for name, detect, load in CMS_LOADERS:
            if detect(path, head):
                if name not in loaded:
                    into[name] = load(path)
                    loaded.add(name)
                break
        else:
            if _is_claimscrub_csv(path, head):
                into[path.stem] = read_csv_table(path)
            elif _is_claimscrub_yaml(path, head):
                into[path.stem] = read_yaml_table(path)
            elif strict:
                raise _unrecognised(path)


def load_tables(rules_dir: Optional[str] = None) -> RuleTables:
    """The bundled tables, overlaid with the tables in ``rules_dir``."""
    _import_loaders()
    tables: dict[str, Table] = {}
    _read_folder(bundled_tables_dir(), tables, strict=False)
    if rules_dir:
        folder = Path(rules_dir)
        if not folder.is_dir():
            raise ConfigError(f"{rules_dir}: rule table folder not found")
        _read_folder(folder, tables, strict=True)
    return RuleTables(tables)


def _import_loaders() -> None:
    for module in LOADER_MODULES:
        importlib.import_module(module)
