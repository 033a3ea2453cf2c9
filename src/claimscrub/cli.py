"""The ``claimscrub`` command."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from functools import partial
from datetime import date
from typing import Callable, Optional

import click

from claimscrub import __version__
from claimscrub.atomic import remove_temporaries
from claimscrub.errors import (
    EXIT_ACCEPTED,
    EXIT_REJECTED,
    EXIT_FAILURE,
    EXIT_UNUSABLE,
    EXIT_USAGE,
    ClaimscrubError,
    ConfigError,
)
from claimscrub.history.cli import history_group, open_history, record_scrub
from claimscrub.history.run import RunHistory
from claimscrub.history.store import history_error_reason
from claimscrub.scrub import FileResult, RunResult, ScrubOptions, Scrubber, expand_inputs
from sqlalchemy.exc import SQLAlchemyError
from claimscrub.textsafe import shorten, visible

# Exit status 2 means an unusable input; command-line mistakes get their own code.
click.UsageError.exit_code = EXIT_USAGE

#: Writers run for every usable input file: (run, file, out_dir) -> path written.
Writer = Callable[[RunResult, FileResult, str], str]


def output_writers(ack_control: int, position: int) -> list[Writer]:
    """The writers for the ``position``-th usable input; its 999 and 277CA take the
    interchange control numbers ``ack_control + 2 * position`` and the next one."""
    from claimscrub.report.ack277 import Ack277Options, write_277
    from claimscrub.report.ack999 import Ack999Options, write_999
    from claimscrub.report.html_report import write_html
    from claimscrub.report.json_report import write_json

    number = ack_control + 2 * position
    return [
        write_json,
        write_html,
        partial(write_999, options=Ack999Options(control_number=number)),
        partial(write_277, options=Ack277Options(control_number=number + 1)),
    ]


class Progress:
    """A progress bar over bytes read, shown only on a terminal for a large batch."""

    LARGE = 8 << 20

    def __init__(self, total: int, enabled: bool):
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled and total >= self.LARGE
        self._last = -1

    def __call__(self, count: int) -> None:
        if not self.enabled:
            return
        self.done += count
        percent = min(100, self.done * 100 // self.total)
        if percent != self._last:
            self._last = percent
            bar = "#" * (percent // 4)
            sys.stderr.write(f"\rreading {bar:<25} {percent:3d}%  {self.done >> 20} MiB")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled and self._last >= 0:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _fail(message: str, code: int) -> None:
    click.echo(f"claimscrub: {message}", err=True)
    sys.exit(code)


def _on_terminate(signum, frame) -> None:  # pragma: no cover - exercised by a subprocess test
    """SIGTERM or SIGINT: kill the validator workers, remove half-written outputs and the
    claim store (it holds patient data), say so in one line and exit 128 + signal."""
    import sys as _sys

    for module in ("claimscrub.validate", "claimscrub.partition.local"):
        workers = _sys.modules.get(module)
        if workers is not None:
            workers.kill_workers()
    remove_temporaries()
    store = _sys.modules.get("claimscrub.store")
    if store is not None:
        store.remove_live_stores()
    name = signal.Signals(signum).name
    try:
        os.write(2, f"claimscrub: stopped by {name}; no reports were left half-written\n".encode())
    except OSError:
        pass
    os._exit(128 + signum)


def _load_tables(rules_dir: Optional[str]):
    try:
        from claimscrub.tables import load_tables
    except ImportError:
        return None
    return load_tables(rules_dir)


#: Below this much input a worker pool costs more to start than it saves.
SMALL_BATCH_BYTES = 1 << 20


#: ``--validator`` choices: the guide compiled from pyx12's map, or pyx12 itself.
VALIDATORS = ("compiled", "pyx12")
DEFAULT_VALIDATOR = "compiled"


def _validator(jobs: Optional[int], input_bytes: int, kind: str = DEFAULT_VALIDATOR):
    """The run's validator; with more than one job the partition workers validate, each
    in its own process (the parent's validator only names the kind)."""
    if kind == "compiled":
        from claimscrub.guide import CompiledValidator

        return CompiledValidator()
    from claimscrub.validate import Pyx12Validator

    return Pyx12Validator(jobs=1)


def _jobs(jobs: Optional[int], input_bytes: int) -> int:
    """Worker processes of a local run: --jobs, else one per CPU (one for a small batch)."""
    if jobs is None:
        return 1 if input_bytes < SMALL_BATCH_BYTES else (os.cpu_count() or 1)
    return jobs


#: ``--engine`` choices: worker processes of this machine, or a Dask cluster.
ENGINES = ("local", "dask")


def _engine(kind: str, scheduler: Optional[str], jobs: int):
    """Where the partitioned stages run, or None for one process (claimscrub.partition)."""
    if kind == "dask":
        from claimscrub.partition.dask_engine import DaskEngine

        if not scheduler:
            raise ConfigError("--engine dask needs --scheduler ADDRESS (the Dask scheduler, tcp://HOST:8786)")
        return DaskEngine(scheduler)
    if scheduler:
        raise ConfigError("--scheduler is for --engine dask")
    if jobs <= 1:
        return None
    from claimscrub.partition.local import LocalEngine

    return LocalEngine(jobs)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claimscrub")
def main() -> None:
    """Pre-submission scrubber for X12 837P professional claims."""


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the reports (NAME.json, NAME.html, ... per input file).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Day the run is judged on (future dates of service); default today.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="claimscrub.toml (default: ./claimscrub.toml or [tool.claimscrub] in ./pyproject.toml).")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule tables (bundled edits/ tables, or the CMS PTP/MUE/RVU files).")
@click.option("--work-dir", type=click.Path(file_okay=False),
              help="Where the run keeps its temporary claim store (default: the system temp folder).")
@click.option("--accepted-out", "accepted_dir", type=click.Path(file_okay=False),
              help="Folder for an 837P per input holding only its accepted claims (same file name).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes: the claims are read, validated and edited in N processes, "
                   "partitioned by patient (default: one per CPU; one for inputs under 1 MiB).")
@click.option("--engine", "engine_kind", type=click.Choice(ENGINES), default="local", show_default=True,
              help="Where the partitions run: worker processes here, or a Dask cluster (--scheduler; "
                   "the claimscrub[dask] extra, inputs and --work-dir on storage every worker sees).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Address of the Dask scheduler for --engine dask (tcp://HOST:8786).")
@click.option("--ack-control-number", "ack_control", type=click.IntRange(1, 999_999_999), default=None,
              help="Interchange control number of the first acknowledgment written; each 999 and "
                   "277CA of the run takes the next one (default: the history's sequence with "
                   "--history, else 1).")
@click.option("--history", "history_option", metavar="URL",
              help="Claim history across runs: sqlite:///PATH (or a path) or postgresql://...; "
                   "needs CLAIMSCRUB_HISTORY_KEY (default: history in the configuration).")
@click.option("--no-validate", "no_validate", is_flag=True,
              help="Skip implementation-guide validation; envelope checks still run.")
@click.option("--validator", "validator_kind", type=click.Choice(VALIDATORS), default=DEFAULT_VALIDATOR,
              show_default=True,
              help="Implementation-guide validator: 'compiled' runs pyx12's 837P map compiled into "
                   "tables (pyx12's verdicts, about 50 times faster); 'pyx12' runs pyx12 itself.")
def scrub(inputs, out_dir, as_of, config_path, rules_dir, work_dir, accepted_dir, jobs, engine_kind,
          scheduler, no_validate, ack_control, validator_kind, history_option) -> None:
    """Scrub 837P files (or folders of them) and write a report per file into --out.

    Exit status: 0 every claim accepted, 1 some claim rejected, 2 some input unusable,
    3 a usage or configuration error, 4 the reports could not be written.
    """
    signal.signal(signal.SIGTERM, _on_terminate)
    signal.signal(signal.SIGINT, _on_terminate)
    from claimscrub.config import find_config, load_config

    try:
        path = config_path or find_config()
        config = load_config(path) if path else None
        tables = _load_tables(rules_dir or (config.rules_dir if config else None))
        history = open_history(history_option, config)
    except ClaimscrubError as exc:
        _fail(str(exc), EXIT_USAGE)
        return
    except RecursionError:
        _fail(f"{visible(str(path))}: nested too deeply to be a configuration", EXIT_USAGE)
        return
    if work_dir and not os.path.isdir(work_dir):
        _fail(f"--work-dir {visible(work_dir)} is not a folder", EXIT_USAGE)
    paths = expand_inputs(inputs, exclude=(out_dir, accepted_dir))
    if not paths:
        _fail("no input files found (the --out and --accepted-out folders are not read)", EXIT_USAGE)
    clash = output_clash(paths, out_dir, accepted_dir)
    if clash:
        _fail(clash, EXIT_USAGE)
    input_bytes = sum(os.path.getsize(p) for p in paths if os.path.isfile(p))
    progress = Progress(input_bytes, sys.stderr.isatty())
    try:
        engine = _engine(engine_kind, scheduler, _jobs(jobs, input_bytes))
    except ClaimscrubError as exc:
        _fail(str(exc), EXIT_USAGE)
        return
    options = ScrubOptions(
        as_of=as_of.date() if as_of else date.today(),
        config=config,
        tables=tables,
        work_dir=work_dir,
        on_progress=progress,
        validator=None if no_validate else _validator(jobs, input_bytes, validator_kind),
        history=RunHistory(history) if history is not None else None,
        engine=engine,
    )
    try:
        scrubber = Scrubber(options)
        if config is not None:
            config.check_against(scrubber.engine.rules)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
        return
    if config is not None:
        click.echo(f"configuration: {config.path}", err=True)
    try:
        run = scrubber.run(paths)
        progress.finish()

        def write(ack_start: Optional[int]) -> None:
            _write_outputs(run, out_dir, ack_control or ack_start or 1)
            if accepted_dir:
                _write_accepted(run, accepted_dir)

        try:
            if history is not None:
                usable = sum(1 for file in run.files if file.usable)
                record_scrub(history, options.history, run, 0 if ack_control else 2 * usable, write)
            else:
                write(None)
        finally:
            run.close()
            if history is not None:
                history.close()
    except OSError as exc:
        progress.finish()
        where = f"{visible(str(exc.filename))}: " if exc.filename else ""
        _fail(f"cannot write the reports: {where}{exc.strerror or exc}", EXIT_FAILURE)
        return
    except SQLAlchemyError as exc:
        progress.finish()
        _fail(f"the claim history could not be read or written ({history_error_reason(exc)}); "
              "nothing of this run was recorded", EXIT_FAILURE)
        return
    except ClaimscrubError as exc:
        progress.finish()
        _fail(str(exc), EXIT_FAILURE)
        return
    except sqlite3.Error as exc:
        progress.finish()
        where = visible(work_dir) if work_dir else "the system temporary folder"
        _fail(f"cannot keep the run's claims in {where} (--work-dir): {shorten(str(exc), 80)}; "
              "free some space there or point --work-dir at another folder", EXIT_FAILURE)
        return
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        progress.finish()
        if os.environ.get("CLAIMSCRUB_DEBUG"):
            raise
        _fail(
            f"internal error ({type(exc).__name__}: {exc}); no reports were left half-written. "
            "Rerun with CLAIMSCRUB_DEBUG=1 for the traceback and report it.",
            EXIT_FAILURE,
        )
        return
    sys.exit(_report(run))


#: What each input gets in --out (``accepted``: its name in --accepted-out).
REPORT_SUFFIXES = (".json", ".html", ".999", ".277")


def output_clash(paths: list[str], out_dir: str, accepted_dir: Optional[str]) -> Optional[str]:
    """Why the run would overwrite an input or write two outputs to one file, or ``None``.
    Paths are compared after links are resolved, so a folder reached through a symbolic
    link to an input folder is caught."""
    from claimscrub.scrub import input_names, output_path

    inputs = {os.path.realpath(p): p for p in paths}
    written: dict[str, str] = {}
    for name in input_names(paths):
        targets = [(output_path(out_dir, name, suffix), "--out") for suffix in REPORT_SUFFIXES]
        if accepted_dir:
            targets.append((output_path(accepted_dir, name), "--accepted-out"))
        for target, option in targets:
            real = os.path.realpath(target)
            if real in inputs:
                return (f"{option} would overwrite the input {visible(name)} "
                        f"({visible(target)} is that file); choose a folder outside the inputs")
            if real in written:
                return (f"two outputs would be written to {visible(target)} "
                        f"({visible(written[real])} and {visible(name)}); choose separate folders")
            written[real] = name
    return None


def _write_outputs(run: RunResult, out_dir: str, ack_control: int) -> None:
    usable = [file for file in run.files if file.usable]
    for position, file in enumerate(usable):
        for writer in output_writers(ack_control, position):
            writer(run, file, out_dir)


def _write_accepted(run: RunResult, accepted_dir: str) -> None:
    from claimscrub.report.accepted837 import write_accepted_837

    for file in run.files:
        if file.usable:
            write_accepted_837(run, file, accepted_dir)


def _report(run: RunResult) -> int:
    totals = {"claims": 0, "accepted": 0, "rejected": 0, "unusable": 0, "empty_sets": 0}
    for file in run.files:
        if not file.usable:
            totals["unusable"] += 1
            click.echo(f"claimscrub: {file.error}", err=True)
            continue
        totals["claims"] += file.claim_count
        totals["accepted"] += file.accepted
        totals["rejected"] += file.rejected
        for info in file.empty_sets:
            totals["empty_sets"] += 1
            click.echo(
                f"claimscrub: {file.name}: segment {info.st_pos}: transaction set "
                f"{shorten(info.control_number, 15)} holds no readable claim (no CLM segment; a "
                "corrupted segment identifier?); the set is rejected",
                err=True,
            )
        errors = sum(file.findings_by_rule.values())
        click.echo(
            f"{file.name}: {file.claim_count} claims, {file.accepted} accepted, "
            f"{file.rejected} rejected, {errors} findings",
            err=True,
        )
    files = len(run.files)
    line = (
        f"total: {files} file{'s' if files != 1 else ''}, {totals['claims']} claims, "
        f"{totals['accepted']} accepted, {totals['rejected']} rejected"
    )
    if totals["unusable"]:
        line += f", {totals['unusable']} unusable file{'s' if totals['unusable'] != 1 else ''}"
    click.echo(line, err=True)
    if totals["unusable"]:
        return EXIT_UNUSABLE
    # a transaction set with no claim is rejected (the 999 says so), never a clean run
    return EXIT_REJECTED if totals["rejected"] or totals["empty_sets"] else EXIT_ACCEPTED


@main.command("tables")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule tables to load over the bundled ones, as `scrub --rules`.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="claimscrub.toml (default: ./claimscrub.toml or [tool.claimscrub] in ./pyproject.toml).")
def tables_command(rules_dir: Optional[str], config_path: Optional[str]) -> None:
    """List every rule table a scrub would load: source, release and row count (no scrubbing).

    Exit status 3 when a table or a file of the rules folder cannot be used.
    """
    from claimscrub.config import find_config, load_config
    from claimscrub.scrub import table_versions

    try:
        path = config_path or find_config()
        config = load_config(path) if path else None
        tables = _load_tables(rules_dir or (config.rules_dir if config else None))
        versions = table_versions(tables)
    except ClaimscrubError as exc:
        _fail(str(exc), EXIT_USAGE)
        return
    for info in versions:
        rows = info.get("rows", "")
        count = f"{int(rows):,} rows" if str(rows).isdigit() else "-"
        release = info.get("release") or info.get("version", "")
        click.echo(f"{info.get('table', ''):<18} {count:>16}  {release}")
        click.echo(f"{'':<18} {'':>16}  source: {info.get('source', '')}")
        if info.get("release") and info.get("version") and info["version"] != info["release"]:
            click.echo(f"{'':<18} {'':>16}  version: {info['version']}")
        files = info.get("files") or info.get("file")
        if files:
            click.echo(f"{'':<18} {'':>16}  files: {files}")


@main.command("rules")
def rules_command() -> None:
    """List every edit: id, scope, category, default severity and summary."""
    from claimscrub.engine import load_rules

    registry = load_rules()
    width = max(len(rule_id) for rule_id in registry)
    for rule_id, rule in registry.items():
        click.echo(
            f"{rule_id:<{width}}  {rule.scope.value:<15} {rule.category.value:<17} "
            f"{rule.severity.value:<7}  {rule.summary}"
        )


@main.command()
@click.argument("rule_id")
def explain(rule_id: str) -> None:
    """Print the documentation of one edit (like `ruff rule CODE`)."""
    from claimscrub.engine import load_rules

    registry = load_rules()
    rule = registry.get(rule_id.upper())
    if rule is None:
        close = [r for r in registry if r.startswith(rule_id.upper()[:7])]
        hint = f"; did you mean {', '.join(close)}?" if close else "; `claimscrub rules` lists them"
        _fail(f"no rule {rule_id!r}{hint}", EXIT_USAGE)
        return
    docs = rule.documentation()
    click.echo(f"{rule.id}  {rule.name}")
    click.echo(f"{rule.summary}")
    click.echo(
        f"category: {rule.category.value}   severity: {rule.severity.value}   scope: {rule.scope.value}"
        + (f"   277CA: {rule.status_code}" if rule.status_code else "")
    )
    for heading, text in docs.items():
        if heading == "Summary":
            continue
        click.echo(f"\n{heading}:")
        for line in text.splitlines():
            click.echo(f"  {line}" if line.strip() else "")
        if heading in ("Failing example", "Corrected example"):
            _echo_example_segments(text)


def _echo_example_segments(text: str) -> None:
    """Show a documentation example as the 837P claim segments it stands for."""
    from claimscrub.examples import claim_text, parse_example

    try:
        segments = claim_text(parse_example(text))
    except (ValueError, KeyError, TypeError):
        return
    click.echo("  as 837P:")
    for line in segments.splitlines():
        click.echo(f"    {line}")


main.add_command(history_group)
