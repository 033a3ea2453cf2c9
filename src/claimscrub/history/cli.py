"""The history's part of the command line: ``scrub --history`` and ``claimscrub history``.

Nothing here prints patient data: counts, dates, run ids, file names and claim counts only.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from typing import Callable, Optional

import click

from claimscrub.errors import EXIT_FAILURE, EXIT_UNUSABLE, EXIT_USAGE, ClaimscrubError
from claimscrub.history.store import History, HistoryError, RecordOutcome, display_url, load_key, resolve_url


def _fail(message: str, code: int) -> None:
    click.echo(f"claimscrub: {message}", err=True)
    sys.exit(code)


def history_url(option: Optional[str], config) -> Optional[tuple[str, Optional[str]]]:
    """(URL, base folder) from ``--history``, else the configuration's ``history``."""
    if option:
        return option, None
    if config is not None and getattr(config, "history", None):
        return config.history, config.base_dir
    return None


def open_history(option: Optional[str], config) -> Optional[History]:
    """The history the command line or configuration names, or None; raises HistoryError
    (exit 3) for a missing key, a bad URL or a history that cannot be opened."""
    where = history_url(option, config)
    if where is None:
        return None
    url, base = where
    key = load_key(getattr(config, "history_key_file", None) if config is not None else None)
    return History(resolve_url(url, base), key)


def record_scrub(history: History, run_history, run, ack_count: int,
                 write: Callable[[Optional[int]], None]) -> RecordOutcome:
    """Write the run to the history and the reports in one transaction: the reports are
    written with the acknowledgment numbers the history allocated, and the run is marked
    complete only after they are, so a run that fails or is killed leaves nothing."""
    outcome = history.record(
        "scrub", run.table_versions, run_history.file_records(run), ack_count=ack_count,
        before_commit=lambda outcome: write(outcome.ack_start),
    )
    report_outcome(outcome)
    return outcome


def report_outcome(outcome: RecordOutcome) -> None:
    for name, (run_id, day) in sorted(outcome.skipped.items()):
        when = f" of {day}" if day else ""
        click.echo(f"history: {name} was already recorded by run {run_id}{when}; its claims are not counted again",
                   err=True)
    extra = []
    if outcome.replaced:
        extra.append(f"{outcome.replaced} earlier claim{'s' if outcome.replaced != 1 else ''} replaced")
    if outcome.voided:
        extra.append(f"{outcome.voided} voided")
    if outcome.ack_start is not None:
        extra.append(f"acknowledgments from control number {outcome.ack_start}")
    click.echo(
        f"history: run {outcome.run_id} recorded {outcome.claims} claims ({outcome.billed} billed, "
        f"{outcome.claims - outcome.billed} rejected), {outcome.lines} lines"
        + (f"; {', '.join(extra)}" if extra else ""),
        err=True,
    )


_HISTORY_OPTION = click.option(
    "--history", "history_option", metavar="URL",
    help="sqlite:///PATH (or a path) or postgresql://...; default: history in the configuration.")
_CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False),
    help="Configuration file (default: $CLAIMSCRUB_CONFIG, else claimscrub.toml or [tool.claimscrub] in pyproject.toml in the working folder or its parents).")


def _open(history_option: Optional[str], config_path: Optional[str]) -> History:
    return _open_with_config(history_option, config_path)[0]


def _open_with_config(history_option: Optional[str], config_path: Optional[str]) -> tuple[History, object]:
    from claimscrub.config import discover_config, load_config

    try:
        path = discover_config(config_path)
        config = load_config(path) if path else None
        history = open_history(history_option, config)
    except ClaimscrubError as exc:
        _fail(str(exc), EXIT_USAGE)
        raise AssertionError  # unreachable
    if history is None:
        _fail("no history: give --history URL or history = \"...\" in the configuration", EXIT_USAGE)
    return history, config


def _table_versions(rules_dir: Optional[str], config) -> list:
    """The rule tables a scrub run with the same options would judge by (bundled, overlaid
    with --rules or the configuration's rules folder), recorded with an import as with a
    scrub run, so the history says what the rules were when each night was loaded."""
    from claimscrub.scrub import table_versions
    from claimscrub.tables import load_tables

    try:
        return table_versions(load_tables(rules_dir or (getattr(config, "rules_dir", None) if config else None)))
    except ClaimscrubError as exc:
        _fail(str(exc), EXIT_USAGE)
        raise AssertionError  # unreachable


@click.group("history")
def history_group() -> None:
    """The claim history across runs: stats, import of files already sent, purge."""


@history_group.command("stats")
@_HISTORY_OPTION
@_CONFIG_OPTION
def stats_command(history_option, config_path) -> None:
    """Runs, files, claims and the range of dates of service in the history."""
    history = _open(history_option, config_path)
    with history:
        info = history.stats()
    click.echo(f"history:   {display_url(history.url)}")
    click.echo(f"runs:      {info['runs']}" + (f" ({info['first_run']} to {info['last_run']})" if info["runs"] else ""))
    click.echo(f"files:     {info['files']}")
    click.echo(f"claims:    {info['claims_billed']} billed ({info['claims_replaced']} replaced, "
               f"{info['claims_voided']} voided since), {info['claims_rejected']} rejected")
    click.echo(f"lines:     {info['lines']} ({info['lines_active']} billed and in force)")
    if info["first_service_date"]:
        click.echo(f"dates of service: {info['first_service_date']} to {info['last_service_date']}")
    click.echo(f"last acknowledgment control number: {info['last_ack_control_number']}")


@history_group.command("import")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@_HISTORY_OPTION
@_CONFIG_OPTION
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Rule table folder whose versions the import records (default: the configuration's).")
def import_command(inputs, history_option, config_path, rules_dir) -> None:
    """Record 837P files already sent, without scrubbing: all their claims count as billed.

    Exit status 2 when an input cannot be read (nothing is recorded then), 3 for a usage,
    configuration or key error.
    """
    from claimscrub.errors import InputError
    from claimscrub.history.importer import import_files
    from claimscrub.scrub import expand_inputs

    paths = expand_inputs(inputs)
    if not paths:
        _fail("no input files found", EXIT_USAGE)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        _fail(f"{missing[0]}: no such file", EXIT_UNUSABLE)
    history, config = _open_with_config(history_option, config_path)
    versions = _table_versions(rules_dir, config)
    with history:
        try:
            records, outcome = import_files(history, paths, versions)
        except InputError as exc:
            _fail(f"{exc}; nothing was recorded", EXIT_UNUSABLE)
            return
        except OSError as exc:
            _fail(f"{exc.filename or ''}: cannot be read ({exc.strerror or exc}); nothing was recorded", EXIT_UNUSABLE)
            return
    for record in records:
        if record.name not in outcome.skipped:
            click.echo(f"{record.name}: recorded as billed", err=True)
    report_outcome(outcome)


@history_group.command("purge")
@click.option("--before", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Remove claims whose dates of service are all before this date (YYYY-MM-DD).")
@_HISTORY_OPTION
@_CONFIG_OPTION
def purge_command(before, history_option, config_path) -> None:
    """Remove claims (and their lines) whose dates of service all fall before --before."""
    history = _open(history_option, config_path)
    with history:
        counts = history.purge(before.date())
    click.echo(f"purged {counts['claims']} claims, {counts['lines']} lines, {counts['files']} files, "
               f"{counts['runs']} runs with dates of service before {before.date().isoformat()}")
