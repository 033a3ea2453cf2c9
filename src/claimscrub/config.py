"""Configuration: which edits run and at what severity, globally and per payer.

Read from ``claimscrub.toml`` or the ``[tool.claimscrub]`` table of ``pyproject.toml``::

    select = ["EPI", "X12"]          # rule ids or prefixes to run (default: all)
    ignore = ["EPI-LCD"]             # rule ids or prefixes not to run
    rules = "path/to/tables"         # rule tables to load instead of / on top of edits/
    history = "sqlite:///claimscrub-history.sqlite"   # claim history across runs (or postgresql://...)
    history_key_file = "/etc/claimscrub/history.key"  # key of the patient hashes (else $CLAIMSCRUB_HISTORY_KEY)

    [severity]
    "EPI-MOD-004" = "error"

    [payer."00435"]                  # payer id (2010BB NM109)
    ignore = ["EPI-LCD-002"]
    [payer."00435".severity]
    "EPI-EM-003" = "error"

Selection and ignores match a rule id exactly or by prefix (``EPI-IMG`` matches
``EPI-IMG-001``); the most specific (longest) match wins, and ``ignore`` wins a tie.
A payer section applies on top of the global settings for claims of that payer.
Unknown keys, unknown severities and patterns that match no rule are errors.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Iterable, Optional

from claimscrub.errors import ConfigError
from claimscrub.findings import Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TOP_KEYS = {"select", "ignore", "severity", "payer", "rules", "history", "history_key_file"}
#: A configuration is a few lines; anything larger is refused before it is parsed.
MAX_CONFIG_BYTES = 1 << 20
#: The syntax rules: a transaction set the 999 rejects has every claim rejected, whatever
#: the configuration selects, so no configuration can turn a broken file into exit 0.
ALWAYS_ON = ("X12-ENV", "X12-IG")


def _show(value: object, limit: int = 60) -> str:
    """A configuration value as an error line may quote it: printable and short."""
    from claimscrub.textsafe import shorten

    return shorten(value if isinstance(value, str) else repr(value), limit)


def always_on(rule_id: str) -> bool:
    return any(_matches(prefix, rule_id) for prefix in ALWAYS_ON)
_PAYER_KEYS = {"select", "ignore", "severity"}


@dataclass
class Selection:
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, Severity] = field(default_factory=dict)

    def decision(self, rule_id: str) -> Optional[tuple[int, bool]]:
        """(specificity, enabled) of the most specific pattern matching ``rule_id``."""
        best: Optional[tuple[int, bool]] = None
        for patterns, enabled in ((self.select, True), (self.ignore, False)):
            for pattern in patterns:
                if _matches(pattern, rule_id):
                    candidate = (len(pattern), enabled)
                    if best is None or candidate[0] > best[0] or (candidate[0] == best[0] and not enabled):
                        best = candidate
        return best

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
    path: Optional[str] = None
    #: claim history URL or path as written (claimscrub.history.resolve_url), relative paths
    #: from the configuration's folder; the key file likewise
    history: Optional[str] = None
    history_key_file: Optional[str] = None
    base_dir: Optional[str] = None

    def is_enabled(self, rule_id: str, payer_id: str = "") -> bool:
        if always_on(rule_id):
            return True
        payer = self.payers.get(payer_id)
        if payer is not None:
            decision = payer.decision(rule_id)
            if decision is not None:
                return decision[1]
        decision = self.default.decision(rule_id)
        if decision is not None:
            return decision[1]
        return not self.default.select

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

    def patterns(self) -> Iterable[tuple[str, str]]:
        """Every (where, pattern) in the configuration, for checking against the registry."""
        for where, selection in [("", self.default)] + [
            (f"payer.{name}.", sel) for name, sel in self.payers.items()
        ]:
            for key in ("select", "ignore"):
                for pattern in getattr(selection, key):
                    yield f"{where}{key}", pattern
            for pattern in selection.severity:
                yield f"{where}severity", pattern

    def check_against(self, rule_ids: Iterable[str]) -> None:
        ids = list(rule_ids)
        for where, pattern in self.patterns():
            matched = [rule_id for rule_id in ids if _matches(pattern, rule_id)]
            if not matched:
                raise ConfigError(f"{self.path or 'config'}: {where} '{_show(pattern)}' matches no rule")
            if where.endswith("ignore"):
                fixed = [rule_id for rule_id in matched if always_on(rule_id)]
                if fixed:
                    raise ConfigError(
                        f"{self.path or 'config'}: {where} '{_show(pattern)}' would ignore "
                        f"{', '.join(fixed)}, which cannot be ignored: a transaction set with "
                        "envelope or implementation-guide errors is rejected in the 999, so its "
                        "claims are rejected whatever the configuration")


def _selection(data: dict, where: str, allowed: set[str]) -> Selection:
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{_show(', '.join(sorted(map(str, unknown))))}")
    selection = Selection()
    for key in ("select", "ignore"):
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of rule ids or prefixes")
        setattr(selection, key, [v.strip() for v in value])
    severities = data.get("severity", {})
    if not isinstance(severities, dict):
        raise ConfigError(f"{where}: severity must be a table of rule id = severity")
    for pattern, value in severities.items():
        try:
            selection.severity[pattern] = Severity(value)
        except ValueError:
            raise ConfigError(
                f"{where}: severity for '{_show(pattern)}' is '{_show(value)}'; use error, warning or info"
            ) from None
    return selection


def parse_config(data: dict, path: str = "config") -> Config:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{_show(', '.join(sorted(map(str, unknown))))}")
    config = Config(path=path)
    config.default = _selection({k: v for k, v in data.items() if k in _PAYER_KEYS}, path, _PAYER_KEYS)
    payers = data.get("payer", {})
    if not isinstance(payers, dict):
        raise ConfigError(f"{path}: payer must be a table of payer sections")
    for payer_id, section in payers.items():
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: payer.{_show(payer_id)} must be a table")
        config.payers[str(payer_id)] = _selection(section, f"{path}: payer.{_show(payer_id)}", _PAYER_KEYS)
    rules = data.get("rules")
    if rules is not None:
        if not isinstance(rules, str):
            raise ConfigError(f"{path}: rules must be a folder path")
        base = os.path.dirname(os.path.abspath(path)) if os.path.exists(path) else os.getcwd()
        config.rules_dir = os.path.join(base, rules)
    config.base_dir = os.path.dirname(os.path.abspath(path)) if os.path.exists(path) else os.getcwd()
    for key in ("history", "history_key_file"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{path}: {key} must be a non-empty string")
    config.history = data.get("history")
    if data.get("history_key_file"):
        config.history_key_file = os.path.join(config.base_dir, data["history_key_file"])
    return config


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


def find_config(start: str = ".") -> Optional[str]:
    """``claimscrub.toml`` in ``start``, else a ``pyproject.toml`` there with
    ``[tool.claimscrub]``; ``None`` when neither."""
    candidate = os.path.join(start, "claimscrub.toml")
    if os.path.isfile(candidate):
        return candidate
    pyproject = os.path.join(start, "pyproject.toml")
    if os.path.isfile(pyproject):
        try:
            tool = _read_toml(pyproject).get("tool", {})
        except ConfigError:
            return None
        if isinstance(tool, dict) and "claimscrub" in tool:
            return pyproject
    return None
