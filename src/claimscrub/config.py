"""Configuration: which edits run and at what severity, globally and per payer.

Read from ``claimscrub.toml`` or the ``[tool.claimscrub]`` table of ``pyproject.toml``::

    select = ["EPI", "X12"]          # rule ids or prefixes to run (default: all)
    ignore = ["EPI-LCD"]             # rule ids or prefixes not to run
    rules = "path/to/tables"         # rule tables to load instead of / on top of edits/
    history = "sqlite:///claimscrub-history.sqlite"   # claim history across runs (or postgresql://...)
    history_key_file = "/etc/claimscrub/history.key"  # key of the patient hashes (else $CLAIMSCRUB_HISTORY_KEY)
    extend-select = ["EPI-LCD-002"]  # rule ids or prefixes run on top of select

    [ack]                            # the 999's and 277CA's interchange and group ids
    sender = "ZZ:CLEARINGHOUSE1"     # ISA05:ISA06 and GS02 (default: the input's receiver)
    receiver = "ZZ:PRACTICE01"       # ISA07:ISA08 and GS03 (default: the input's sender)

    [severity]
    "EPI-MOD-004" = "error"

    [payer."00435"]                  # payer id (2010BB NM109)
    ignore = ["EPI-LCD-002"]
    [payer."00435".severity]
    "EPI-EM-003" = "error"

Selection and ignores match a rule id exactly or by prefix (``EPI-IMG`` matches
``EPI-IMG-001``); the most specific (longest) match wins, and ``ignore`` wins a tie.
Selections are layered as ruff layers them: the global settings, then the payer's section
for claims of that payer, then ``--select``/``--ignore``/``--extend-select`` of the command
line. A layer with ``select`` starts afresh (only what it selects runs); a layer without
one keeps what the layers under it decided, adding ``extend-select`` and removing
``ignore``. So a payer-level ``select`` runs only those edits for that payer's claims.
Unknown keys, a string where a list belongs, unknown severities and patterns that match no
rule are errors (exit 3, one line naming the file and the key).

The file is found as ruff finds its own: ``--config``, else ``$CLAIMSCRUB_CONFIG``, else
the first ``claimscrub.toml`` or ``pyproject.toml`` with ``[tool.claimscrub]`` in the
working folder or one of its parents (:func:`discover_config`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from claimscrub.errors import ConfigError
from claimscrub.findings import Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: A configuration is a few lines; anything larger is refused before it is parsed.
MAX_CONFIG_BYTES = 1 << 20
#: The syntax rules: a transaction set the 999 rejects has every claim rejected, whatever
#: the configuration selects, so no configuration can turn a broken file into exit 0.
ALWAYS_ON = ("X12-ENV", "X12-IG")
#: The environment variable naming the configuration file (after ``--config``).
CONFIG_ENV = "CLAIMSCRUB_CONFIG"


def _show(value: object, limit: int = 60) -> str:
    """A configuration value as an error line may quote it: printable and short."""
    from claimscrub.textsafe import shorten

    return shorten(value if isinstance(value, str) else repr(value), limit)


def always_on(rule_id: str) -> bool:
    return any(_matches(prefix, rule_id) for prefix in ALWAYS_ON)


@dataclass
class Selection:
    """One layer of rule selection (the global settings, a payer's section, the command line)."""

    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, Severity] = field(default_factory=dict)
    extend_select: list[str] = field(default_factory=list)

    def decision(self, rule_id: str) -> Optional[tuple[int, bool]]:
        """(specificity, enabled) of the most specific pattern matching ``rule_id``."""
        best: Optional[tuple[int, bool]] = None
        for patterns, enabled in ((self.select, True), (self.extend_select, True), (self.ignore, False)):
            for pattern in patterns:
                if _matches(pattern, rule_id):
                    candidate = (len(pattern), enabled)
                    if best is None or candidate[0] > best[0] or (candidate[0] == best[0] and not enabled):
                        best = candidate
        return best

    def apply(self, rule_id: str, enabled: bool) -> bool:
        """Whether ``rule_id`` runs after this layer, given what the layers under it decided."""
        decision = self.decision(rule_id)
        if decision is not None:
            return decision[1]
        return False if self.select else enabled

    def severity_for(self, rule_id: str) -> Optional[Severity]:
        best: Optional[tuple[int, Severity]] = None
        for pattern, severity in self.severity.items():
            if _matches(pattern, rule_id) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), severity)
        return best[1] if best else None


def _matches(pattern: str, rule_id: str) -> bool:
    return rule_id == pattern or rule_id.startswith(pattern.rstrip("-") + "-")


@dataclass
class Config:
    default: Selection = field(default_factory=Selection)
    payers: dict[str, Selection] = field(default_factory=dict)
    rules_dir: Optional[str] = None
    #: the file as reports and error lines name it (printable), None without a file
    path: Optional[str] = None
    #: claim history URL or path as written (claimscrub.history.resolve_url), relative paths
    #: from the configuration's folder; the key file likewise
    history: Optional[str] = None
    history_key_file: Optional[str] = None
    base_dir: Optional[str] = None
    #: the file's absolute path (the JSON's ``config_file``), None without a file
    file: Optional[str] = None
    #: the acknowledgments' sender and receiver, "QUAL:ID" as written ([ack])
    ack_sender: Optional[str] = None
    ack_receiver: Optional[str] = None
    #: ``--select``/``--ignore``/``--extend-select`` of the command line: the top layer
    command_line: Optional[Selection] = None

    def layers(self, payer_id: str = "") -> list[Selection]:
        layers = [self.default]
        payer = self.payers.get(payer_id) if payer_id else None
        if payer is not None:
            layers.append(payer)
        if self.command_line is not None:
            layers.append(self.command_line)
        return layers

    def is_enabled(self, rule_id: str, payer_id: str = "") -> bool:
        if always_on(rule_id):
            return True
        enabled = True
        for layer in self.layers(payer_id):
            enabled = layer.apply(rule_id, enabled)
        return enabled

    def may_run(self, rule_id: str) -> bool:
        """Whether the rule can fire for any payer (so the engine may skip it entirely)."""
        if self.is_enabled(rule_id):
            return True
        return any(self.is_enabled(rule_id, payer) for payer in self.payers)

    def severity_for(self, rule_id: str, payer_id: str, default: Severity) -> Severity:
        payer = self.payers.get(payer_id)
        if payer is not None:
            override = payer.severity_for(rule_id)
            if override is not None:
                return override
        return self.default.severity_for(rule_id) or default

    def with_command_line(self, select: Optional[list[str]] = None, ignore: Optional[list[str]] = None,
                          extend_select: Optional[list[str]] = None) -> "Config":
        """This configuration under the command line's selection (ruff's precedence: the
        command line's ``select`` replaces the file's, its ``ignore`` and ``extend-select``
        apply on top of everything the file decides)."""
        if not (select or ignore or extend_select):
            return self
        from dataclasses import replace

        layer = Selection(select=list(select or []), ignore=list(ignore or []),
                          extend_select=list(extend_select or []))
        return replace(self, command_line=layer)

    def patterns(self) -> Iterable[tuple[str, str]]:
        """Every (where, pattern) in the configuration, for checking against the registry."""
        for where, selection in [("", self.default)] + [
            (f"payer.{name}.", sel) for name, sel in self.payers.items()
        ]:
            for key in ("select", "ignore", "extend_select"):
                for pattern in getattr(selection, key):
                    yield f"{where}{key.replace('_', '-')}", pattern
            for pattern in selection.severity:
                yield f"{where}severity", pattern

    def command_line_patterns(self) -> Iterable[tuple[str, str]]:
        if self.command_line is None:
            return
        for key in ("select", "ignore", "extend_select"):
            for pattern in getattr(self.command_line, key):
                yield f"--{key.replace('_', '-')}", pattern

    def check_against(self, rule_ids: Iterable[str]) -> None:
        ids = list(rule_ids)
        for source, patterns in ((self.path or "config", self.patterns()),
                                 ("command line", self.command_line_patterns())):
            for where, pattern in patterns:
                matched = [rule_id for rule_id in ids if _matches(pattern, rule_id)]
                if not matched:
                    raise ConfigError(f"{source}: {where} '{_show(pattern)}' matches no rule")
                if where.endswith("ignore"):
                    fixed = [rule_id for rule_id in matched if always_on(rule_id)]
                    if fixed:
                        raise ConfigError(
                            f"{source}: {where} '{_show(pattern)}' would ignore "
                            f"{', '.join(fixed)}, which cannot be ignored: a transaction set with "
                            "envelope or implementation-guide errors is rejected in the 999, so its "
                            "claims are rejected whatever the configuration")


# -- the file's shape (pydantic) ----------------------------------------------------------

Patterns = list[StrictStr]


class _Section(BaseModel):
    """What the global settings and a payer's section may hold."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    select: Patterns = Field(default_factory=list)
    ignore: Patterns = Field(default_factory=list)
    extend_select: Patterns = Field(default_factory=list, alias="extend-select")
    severity: dict[str, Severity] = Field(default_factory=dict)


class _Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sender: Optional[StrictStr] = None
    receiver: Optional[StrictStr] = None


class _File(_Section):
    """The whole configuration file (or ``[tool.claimscrub]``)."""

    payer: dict[str, _Section] = Field(default_factory=dict)
    rules: Optional[StrictStr] = None
    history: Optional[StrictStr] = Field(default=None, min_length=1)
    history_key_file: Optional[StrictStr] = Field(default=None, min_length=1)
    ack: _Ack = Field(default_factory=_Ack)


_WHAT = {
    "select": "a list of rule ids or prefixes",
    "ignore": "a list of rule ids or prefixes",
    "extend-select": "a list of rule ids or prefixes",
    "extend_select": "a list of rule ids or prefixes",
    "severity": "a table of rule id = severity",
    "payer": "a table of payer sections",
    "rules": "a folder path",
    "history": "a non-empty string",
    "history_key_file": "a non-empty string",
    "ack": "a table (sender, receiver)",
    "sender": 'a string "QUALIFIER:ID"',
    "receiver": 'a string "QUALIFIER:ID"',
}


def _key_path(loc: tuple) -> str:
    parts = [str(part) for part in loc if not isinstance(part, int)]
    return ".".join(parts)


def _one_line(error: dict, path: str, data: dict) -> str:
    """A pydantic error as one line naming the file and the key, values masked to printable."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    key = _key_path(loc)
    if kind == "extra_forbidden":
        where = _key_path(loc[:-1])
        return f"{path}: {where + ': ' if where else ''}unknown key {_show(str(loc[-1]))}"
    if kind == "enum" and len(loc) >= 2 and loc[-2] == "severity":
        where = _key_path(loc[:-2])
        return (f"{path}: {where + ': ' if where else ''}severity for '{_show(str(loc[-1]))}' is "
                f"'{_show(error.get('input'))}'; use error, warning or info")
    # the innermost named key: a list item's own error names its list
    named = [part for part in loc if isinstance(part, str)]
    last = named[-1] if named else ""
    if len(loc) >= 2 and loc[-2] in ("severity", "payer") and kind != "model_type":
        last = str(loc[-2])
    what = _WHAT.get(last) or _WHAT.get(str(loc[0]) if loc else "", "")
    given = error.get("input")
    if isinstance(given, str) and what.startswith("a list"):
        return (f"{path}: {key} must be {what}, not a string "
                f"(write {last} = [\"{_show(given, 30)}\"])")
    if kind == "string_too_short":
        return f"{path}: {key} must be {what or 'a non-empty string'}"
    kind_of = type(given).__name__ if given is not None else "nothing"
    kind_of = {"str": "a string", "int": "a number", "float": "a number", "bool": "true/false",
               "dict": "a table", "list": "a list"}.get(kind_of, kind_of)
    if loc and isinstance(loc[-1], int):
        return f"{path}: {key} must be {what or 'a list of strings'}; item {loc[-1] + 1} is {kind_of}"
    return f"{path}: {key} must be {what or 'something else'}, not {kind_of}"


def parse_config(data: dict, path: str = "config") -> Config:
    try:
        model = _File.model_validate(data)
    except ValidationError as exc:
        unknown = [e for e in exc.errors() if e.get("type") == "extra_forbidden"]
        if len(unknown) > 1 and all(tuple(e["loc"][:-1]) == tuple(unknown[0]["loc"][:-1]) for e in unknown):
            where = _key_path(tuple(unknown[0]["loc"][:-1]))
            names = ", ".join(sorted(str(e["loc"][-1]) for e in unknown))
            raise ConfigError(f"{path}: {where + ': ' if where else ''}unknown keys {_show(names)}") from None
        raise ConfigError(_one_line(exc.errors()[0], path, data)) from None
    config = Config(path=path)
    config.default = _selection(model)
    config.payers = {str(payer_id): _selection(section) for payer_id, section in model.payer.items()}
    exists = os.path.exists(path)
    config.base_dir = os.path.dirname(os.path.abspath(path)) if exists else os.getcwd()
    config.file = os.path.abspath(path) if exists else None
    if model.rules is not None:
        config.rules_dir = os.path.join(config.base_dir, model.rules)
    config.history = model.history
    if model.history_key_file:
        config.history_key_file = os.path.join(config.base_dir, model.history_key_file)
    for key in ("sender", "receiver"):
        value = getattr(model.ack, key)
        if value is not None:
            from claimscrub.report.x12out import parse_party

            parse_party(value, f"{path}: ack.{key}")  # one line naming the key when wrong
            setattr(config, f"ack_{key}", value)
    return config


def _selection(section: _Section) -> Selection:
    return Selection(
        select=[v.strip() for v in section.select],
        ignore=[v.strip() for v in section.ignore],
        extend_select=[v.strip() for v in section.extend_select],
        severity=dict(section.severity),
    )


def _read_toml(path: str) -> dict:
    """The TOML document at ``path``; one-line :class:`ConfigError` for anything else (too
    large, not UTF-8, nested past what the parser can follow, not TOML)."""
    shown = _show(path, 200)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_CONFIG_BYTES >> 20} MiB; a configuration is a few lines")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML ({_show(str(exc), 120)})") from None
    except RecursionError:
        raise ConfigError(f"{shown}: nested too deeply to be a configuration") from None


def load_config(path: str) -> Config:
    data = _read_toml(path)
    if os.path.basename(path) == "pyproject.toml":
        tool = data.get("tool", {})
        data = tool.get("claimscrub", {}) if isinstance(tool, dict) else {}
        if not isinstance(data, dict):
            raise ConfigError(f"{_show(path, 200)}: [tool.claimscrub] must be a table")
    return parse_config(data, _show(path, 200))


def _in_folder(folder: str) -> Optional[str]:
    """``claimscrub.toml`` in ``folder``, else its ``pyproject.toml`` when it has
    ``[tool.claimscrub]``; ``None`` when neither."""
    candidate = os.path.join(folder, "claimscrub.toml")
    if os.path.isfile(candidate):
        return candidate
    pyproject = os.path.join(folder, "pyproject.toml")
    if os.path.isfile(pyproject):
        try:
            tool = _read_toml(pyproject).get("tool", {})
        except ConfigError:
            return None
        if isinstance(tool, dict) and "claimscrub" in tool:
            return pyproject
    return None


def find_config(start: str = ".") -> Optional[str]:
    """The first ``claimscrub.toml`` (or ``pyproject.toml`` with ``[tool.claimscrub]``) in
    ``start`` or one of its parents, as ruff looks for its own; ``None`` when none has one.
    A file in ``start`` itself is returned as ``start/NAME`` (relative when ``start`` is)."""
    found = _in_folder(start)
    if found is not None:
        return found
    folder = os.path.abspath(start)
    while True:
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
        found = _in_folder(folder)
        if found is not None:
            return found


def discover_config(explicit: Optional[str] = None, start: str = ".") -> Optional[str]:
    """The configuration file a run uses: ``explicit`` (``--config``), else
    ``$CLAIMSCRUB_CONFIG``, else :func:`find_config` from ``start``; ``None`` when none."""
    if explicit:
        return explicit
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    if from_env:
        return from_env
    return find_config(start)
