"""Claim scenarios written compactly, run through the whole pipeline.

The same notation serves the rule documentation (the "Failing example" and "Corrected
example" sections of every edit's docstring), the declarative case files of the test
suite, and ``claimscrub explain``. A scenario is a mapping::

    claims:                 # claims of one file (see claimscrub.synth for the keys)
      - id: C1
        lines: [{code: "62323"}, {code: "77003"}]
    files: [[...], [...]]   # instead of claims: several files in one run
    as_of: 2026-11-22       # day the run is judged on (default 2026-11-22)
    config: {ignore: [...]} # a claimscrub.toml, as a mapping
    mutate: [["SE*20", "SE*19"]]   # text replacements applied to every generated file
    validate: false         # skip implementation-guide (pyx12) validation (default: on)
    history: [...]          # claims billed in an earlier run: the scenario runs with a claim
                            # history (SQLite, in the scenario's temporary folder) holding them;
                            # an empty list is an empty history
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from typing import Any, Optional

import yaml

from claimscrub.config import parse_config
from claimscrub.findings import Finding
from claimscrub.scrub import ScrubOptions, Scrubber
from claimscrub.synth import write_837

DEFAULT_AS_OF = date(2026, 11, 22)
#: the patient-hash key of the scenarios' throwaway histories (examples only, not a secret)
EXAMPLE_HISTORY_KEY = b"claimscrub-example-history-key-not-a-secret"


def parse_example(text: str) -> dict:
    data = yaml.safe_load(text)
    if isinstance(data, list):
        data = {"claims": data}
    if not isinstance(data, dict) or not ({"claims", "files"} & set(data)):
        raise ValueError("an example is a mapping with 'claims' or 'files'")
    return data


def render(scenario: dict) -> list[str]:
    """The 837P text of each file of the scenario."""
    files = scenario.get("files") or [scenario["claims"]]
    texts = []
    for number, claims in enumerate(files, start=1):
        text = write_837(claims, control=number)
        for old, new in scenario.get("mutate", []):
            if old not in text:
                raise ValueError(f"mutate: {old!r} is not in the generated file")
            text = text.replace(old, new)
        texts.append(text)
    return texts


def claim_text(scenario: dict) -> str:
    """Just the claim loops (CLM to the end of the claim) of the scenario, for documentation."""
    out = []
    for text in render(scenario):
        keep = False
        for segment in text.split("~"):
            segment = segment.strip()
            if segment.startswith(("CLM*", "HL*")):
                keep = segment.startswith("CLM*")
            if segment.startswith(("SE*", "GE*", "IEA*")):
                keep = False
            if keep and segment:
                out.append(segment + "~")
    return "\n".join(out)


def run_scenario(scenario: dict, tables: Any = None) -> list[Finding]:
    """Every finding of the run over the scenario's files."""
    as_of = scenario.get("as_of", DEFAULT_AS_OF)
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of)
    config = parse_config(scenario["config"], "scenario") if scenario.get("config") else None
    with tempfile.TemporaryDirectory(prefix="claimscrub-example-") as tmp:
        paths = []
        for number, text in enumerate(render(scenario), start=1):
            path = os.path.join(tmp, f"file{number}.837")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            paths.append(path)
        validator = _validator() if scenario.get("validate", True) else None
        history = _history(scenario, tmp)
        scrubber = Scrubber(
            ScrubOptions(as_of=as_of, config=config, tables=tables, work_dir=tmp, validator=validator,
                         history=history)
        )
        run = scrubber.run(paths)
        try:
            for file in run.files:
                if not file.usable:
                    raise ValueError(f"scenario file is unusable: {file.error}")
            return [f for file in run.files for result in run.claim_results(file) for f in result.findings]
        finally:
            run.close()


def _history(scenario: dict, tmp: str):
    """A claim history holding the scenario's ``history`` claims as one earlier run, or None."""
    if "history" not in scenario:
        return None
    from claimscrub.history.importer import import_files
    from claimscrub.history.run import RunHistory
    from claimscrub.history.store import History

    history = History("sqlite:///" + os.path.join(tmp, "history.sqlite"), EXAMPLE_HISTORY_KEY)
    if scenario["history"]:
        path = os.path.join(tmp, "earlier-run.837")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(write_837(scenario["history"], control=900))
        import_files(history, [path], [])
    return RunHistory(history)


def _validator():
    """Implementation-guide validation in-process, as the command runs it by default."""
    try:
        from claimscrub.validate import Pyx12Validator
    except ModuleNotFoundError:  # pragma: no cover - validation module not installed
        return None
    return Pyx12Validator(jobs=1)


def findings_of(rule_id: str, scenario: dict, tables: Any = None) -> list[Finding]:
    return [f for f in run_scenario(scenario, tables) if f.rule == rule_id]


def example_of(rule_cls: type, which: str) -> Optional[dict]:
    """The parsed 'Failing example' / 'Corrected example' of a rule's documentation."""
    text = rule_cls.documentation().get(which)
    return parse_example(text) if text else None
