"""The ``claimscrub`` command."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from typing import Optional

import click

from claimscrub import __version__
from claimscrub.atomic import remove_temporaries
from claimscrub.errors import EXIT_FAILURE, EXIT_USAGE, ClaimscrubError, ConfigError
from claimscrub.history.cli import history_group
from claimscrub.history.store import history_error_reason
from sqlalchemy.exc import SQLAlchemyError
from claimscrub.textsafe import shorten, visible

# Exit status 2 means an unusable input; command-line mistakes get their own code.
click.UsageError.exit_code = EXIT_USAGE

#: the progress display of the running scrub, closed before an error line is printed
_display = None
#: the process that installed :func:`_on_terminate` (forked processes inherit the handler)
_main_pid = -1


def _fail(message: str, code: int) -> None:
    _close_display(_display)
    click.echo(f"claimscrub: {message}", err=True)
    sys.exit(code)


def _on_terminate(signum, frame) -> None:  # pragma: no cover - exercised by a subprocess test
    """SIGTERM or SIGINT: kill the validator workers, remove half-written outputs and the
    claim store (it holds patient data), say so in one line and exit 128 + signal.

    A process forked by the run (a worker, a writer) that gets the signal before it set its
    own handlers just ends: the run's files are the run's to clean up, not a worker's."""
    import sys as _sys

    if os.getpid() != _main_pid:
        os._exit(128 + signum)

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


#: ``--validator`` choices: the guide compiled from pyx12's map, or pyx12 itself.
VALIDATORS = ("compiled", "pyx12")
DEFAULT_VALIDATOR = "compiled"


def _patterns(values: tuple[str, ...]) -> Optional[list[str]]:
    """``--select EPI,X12 --select NCCI`` as ["EPI", "X12", "NCCI"] (None when not given)."""
    out = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return out or None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claimscrub")
def main() -> None:
    """Pre-submission scrubber for X12 837P professional claims."""


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the reports (NAME.json, NAME.html, NAME.999, NAME.277 per input). "
                   "Needed unless --format writes to standard output.")
@click.option("--format", "output_format", type=click.Choice(("text", "json", "jsonl", "csv")),
              help="Write the findings to standard output: text (a line per finding), json (an "
                   "array of the JSON reports), jsonl (a claim per line, streamed) or csv (a "
                   "finding per row). Without --out no file is written unless --emit asks.")
@click.option("--emit", "emit", metavar="LIST",
              help="Outputs written per input, comma-separated from json,html,999,277,accepted "
                   "(default: json,html,999,277, and accepted with --accepted-out).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Day the run is judged on (future dates of service); default today.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default: $CLAIMSCRUB_CONFIG, else claimscrub.toml or "
                   "[tool.claimscrub] in pyproject.toml in the working folder or its parents).")
@click.option("--select", "select", multiple=True, metavar="RULES",
              help="Rule ids or prefixes to run, comma-separated; replaces the configuration's select.")
@click.option("--ignore", "ignore", multiple=True, metavar="RULES",
              help="Rule ids or prefixes not to run, over the configuration's settings.")
@click.option("--extend-select", "extend_select", multiple=True, metavar="RULES",
              help="Rule ids or prefixes to run on top of the selection.")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule tables (bundled edits/ tables, or the CMS PTP/MUE/RVU files).")
@click.option("--work-dir", type=click.Path(file_okay=False),
              help="Where the run keeps its temporary claim store (default: the system temp folder).")
@click.option("--accepted-out", "accepted_dir", type=click.Path(file_okay=False),
              help="Folder for an 837P per input holding only its accepted claims (same file name).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes: the claims are read, validated and edited in N processes, "
                   "partitioned by patient (default: one per CPU; one for inputs under 1 MiB).")
@click.option("--engine", "engine_kind", type=click.Choice(("local", "dask")), default="local",
              show_default=True,
              help="Where the partitions run: worker processes here, or a Dask cluster (--scheduler; "
                   "the claimscrub[dask] extra, inputs and --work-dir on storage every worker sees).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Address of the Dask scheduler for --engine dask (tcp://HOST:8786).")
@click.option("--ack-control-number", "ack_control", type=click.IntRange(1, 999_999_999), default=None,
              help="Interchange control number of the first acknowledgment written; each 999 and "
                   "277CA of the run takes the next one (default: the history's sequence with "
                   "--history, else 1).")
@click.option("--ack-sender", "ack_sender", metavar="QUAL:ID",
              help="Sender of the 999 and 277CA (ISA05:ISA06, GS02), e.g. ZZ:CLEARINGHOUSE "
                   "(default: [ack] sender in the configuration, else the input's receiver).")
@click.option("--ack-receiver", "ack_receiver", metavar="QUAL:ID",
              help="Receiver of the 999 and 277CA (ISA07:ISA08, GS03) (default: [ack] receiver "
                   "in the configuration, else the input's sender).")
@click.option("--history", "history_option", metavar="URL",
              help="Claim history across runs: sqlite:///PATH (or a path) or postgresql://...; "
                   "needs CLAIMSCRUB_HISTORY_KEY (default: history in the configuration).")
@click.option("--no-validate", "no_validate", is_flag=True,
              help="Skip implementation-guide validation; envelope checks still run.")
@click.option("--validator", "validator_kind", type=click.Choice(VALIDATORS), default=DEFAULT_VALIDATOR,
              show_default=True,
              help="Implementation-guide validator: 'compiled' runs pyx12's 837P map compiled into "
                   "tables (pyx12's verdicts, about 50 times faster); 'pyx12' runs pyx12 itself.")
@click.option("--exit-zero", is_flag=True,
              help="Exit 0 even when claims are rejected (unusable inputs and errors keep their codes).")
@click.option("--fail-on", "fail_on", type=click.Choice(("error", "warning")), default="error",
              show_default=True,
              help="Lowest finding severity that makes the run exit 1.")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="Progress display on standard error (default: only when it is a terminal).")
@click.option("-q", "--quiet", "quiet", is_flag=True,
              help="Print only errors on standard error (no per-file summary).")
@click.option("-v", "--verbose", "verbose", is_flag=True,
              help="Also print the configuration file used (or that none was found) and the "
                   "time each stage took.")
def scrub(inputs, out_dir, output_format, emit, as_of, config_path, select, ignore, extend_select,
          rules_dir, work_dir, accepted_dir, jobs, engine_kind, scheduler, no_validate, ack_control,
          ack_sender, ack_receiver,
          validator_kind, history_option, exit_zero, fail_on, show_progress, quiet, verbose) -> None:
    """Scrub 837P files (or folders of them; - reads standard input) and write a report per
    file into --out, or the findings to standard output with --format.

    Exit status: 0 every claim accepted, 1 some claim rejected, 2 some input unusable,
    3 a usage or configuration error, 4 the reports could not be written.
    """
    global _main_pid
    _main_pid = os.getpid()
    signal.signal(signal.SIGTERM, _on_terminate)
    signal.signal(signal.SIGINT, _on_terminate)
    from claimscrub import api
    from claimscrub.gcsettings import tune

    tune()

    try:
        emitted = api.check_emit(emit) if emit is not None else None
    except ClaimscrubError as exc:
        _fail(str(exc), EXIT_USAGE)
        return
    if emitted is None:
        emitted = () if output_format and not out_dir else api.DEFAULT_EMIT
    if accepted_dir and "accepted" not in emitted:
        emitted = emitted + ("accepted",)
    if not out_dir and any(kind != "accepted" or not accepted_dir for kind in emitted):
        _fail("--out is needed to write reports (or give --format to write the findings to "
              "standard output)", EXIT_USAGE)
    if inputs.count("-") > 1:
        _fail("- (standard input) can be given once", EXIT_USAGE)
    display = None
    if show_progress or (show_progress is None and sys.stderr.isatty()):
        from claimscrub.progress import ProgressDisplay

        global _display
        display = _display = ProgressDisplay(force=bool(show_progress))
        display.stage("load", unit="tables")  # rule tables and the validator, before the first claim
    try:
        settings = api.resolve_settings(
            as_of=as_of, config=config_path, select=_patterns(select), ignore=_patterns(ignore),
            extend_select=_patterns(extend_select), rules=rules_dir, validate=not no_validate,
            validator=validator_kind, jobs=jobs, engine=engine_kind, scheduler=scheduler,
            history=history_option, ack_sender=ack_sender, ack_receiver=ack_receiver, ack_control_number=ack_control, work_dir=work_dir,
            progress=display,
        )
    except ClaimscrubError as exc:
        _close_display(display)
        _fail(str(exc), EXIT_USAGE)
        return
    except RecursionError:
        _close_display(display)
        _fail(f"{visible(str(config_path))}: nested too deeply to be a configuration", EXIT_USAGE)
        return
    try:
        collected = api.collect_inputs(list(inputs), exclude=(out_dir, accepted_dir), work_dir=work_dir,
                                       stdin=sys.stdin.buffer)
    except ClaimscrubError as exc:
        _fail(str(exc), EXIT_USAGE)
        return
    except OSError as exc:
        _fail(f"cannot read the standard input: {exc.strerror or exc}", EXIT_FAILURE)
        return
    if not collected.paths:
        _fail("no input files found (the --out and --accepted-out folders are not read)", EXIT_USAGE)
    clash = output_clash(collected, out_dir, accepted_dir, emitted)
    if clash:
        collected.discard()
        _fail(clash, EXIT_USAGE)
    if settings.config is not None and settings.config.path and not quiet:
        click.echo(f"configuration: {settings.config.path}", err=True)
    elif verbose:
        click.echo("configuration: none found (every edit at its default severity)", err=True)
    result = None
    try:
        try:
            result = api.run_scrub(settings, collected)
        except ConfigError as exc:
            collected.discard()
            _fail(str(exc), EXIT_USAGE)
            return
        if emitted or settings.history_store is not None:
            result.write(out_dir, emitted, accepted_dir)
        if display is not None:
            display.close()
        if output_format:
            from claimscrub.report.formats import write_format

            try:
                write_format(result, output_format, sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:
                # the reader went away (`| head`): stop writing, as other tools do
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
        _report(result, quiet)
        code = result.exit_code(fail_on, exit_zero)
        if verbose:
            from claimscrub.progress import timing_line

            click.echo(timing_line(result.timings), err=True)
    except OSError as exc:
        _close_display(display)
        where = f"{visible(str(exc.filename))}: " if exc.filename else ""
        _fail(f"cannot write the reports: {where}{exc.strerror or exc}", EXIT_FAILURE)
        return
    except SQLAlchemyError as exc:
        _close_display(display)
        _fail(f"the claim history could not be read or written ({history_error_reason(exc)}); "
              "nothing of this run was recorded", EXIT_FAILURE)
        return
    except ClaimscrubError as exc:
        _close_display(display)
        _fail(str(exc), EXIT_FAILURE)
        return
    except sqlite3.Error as exc:
        _close_display(display)
        where = visible(work_dir) if work_dir else "the system temporary folder"
        _fail(f"cannot keep the run's claims in {where} (--work-dir): {shorten(str(exc), 80)}; "
              "free some space there or point --work-dir at another folder", EXIT_FAILURE)
        return
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        _close_display(display)
        if os.environ.get("CLAIMSCRUB_DEBUG"):
            raise
        _fail(
            f"internal error ({type(exc).__name__}: {exc}); no reports were left half-written. "
            "Rerun with CLAIMSCRUB_DEBUG=1 for the traceback and report it.",
            EXIT_FAILURE,
        )
        return
    finally:
        if result is not None:
            result.close()
        else:
            collected.discard()
    sys.exit(code)


def _close_display(display) -> None:
    if display is not None:
        try:
            display.close()
        except Exception:  # noqa: BLE001 - the display never hides the error being reported
            pass


#: What each input gets in --out per --emit kind (``accepted``: its name in --accepted-out).
REPORT_SUFFIXES = {"json": ".json", "html": ".html", "999": ".999", "277": ".277", "accepted": ""}


def output_clash(inputs, out_dir: Optional[str], accepted_dir: Optional[str],
                 emitted: tuple[str, ...]) -> Optional[str]:
    """Why the run would overwrite an input or write two outputs to one file, or ``None``.
    Paths are compared after links are resolved, so a folder reached through a symbolic
    link to an input folder is caught. ``inputs``: :class:`claimscrub.api.Inputs`."""
    from claimscrub.api import out_names
    from claimscrub.scrub import output_path

    real_inputs = {os.path.realpath(p): p for p, source in zip(inputs.paths, inputs.sources) if source}
    written: dict[str, str] = {}
    for name in out_names(inputs):
        targets = []
        for kind in emitted:
            if kind == "accepted":
                folder, option = (accepted_dir, "--accepted-out") if accepted_dir else (out_dir, "--out")
            else:
                folder, option = out_dir, "--out"
            if folder:
                targets.append((output_path(folder, name, REPORT_SUFFIXES[kind]), option))
        for target, option in targets:
            real = os.path.realpath(target)
            if real in real_inputs:
                return (f"{option} would overwrite the input {visible(name)} "
                        f"({visible(target)} is that file); choose a folder outside the inputs")
            if real in written:
                return (f"two outputs would be written to {visible(target)} "
                        f"({visible(written[real])} and {visible(name)}); choose separate folders")
            written[real] = name
    return None


def _report(result, quiet: bool = False) -> None:
    """The per-input lines and the total on standard error (errors even with -q)."""
    totals = {"claims": 0, "accepted": 0, "rejected": 0, "unusable": 0}
    for report in result.files:
        file = report.file_result
        if not file.usable:
            totals["unusable"] += 1
            click.echo(f"claimscrub: {file.error}", err=True)
            continue
        totals["claims"] += file.claim_count
        totals["accepted"] += file.accepted
        totals["rejected"] += file.rejected
        for info in file.empty_sets:
            click.echo(
                f"claimscrub: {file.name}: segment {info.st_pos}: transaction set "
                f"{shorten(info.control_number, 15)} holds no readable claim (no CLM segment; a "
                "corrupted segment identifier?); the set is rejected",
                err=True,
            )
        if quiet:
            continue
        errors = sum(file.findings_by_rule.values())
        click.echo(
            f"{file.name}: {file.claim_count} claims, {file.accepted} accepted, "
            f"{file.rejected} rejected, {errors} findings",
            err=True,
        )
    if quiet:
        return
    files = len(result.files)
    line = (
        f"total: {files} file{'s' if files != 1 else ''}, {totals['claims']} claims, "
        f"{totals['accepted']} accepted, {totals['rejected']} rejected"
    )
    if totals["unusable"]:
        line += f", {totals['unusable']} unusable file{'s' if totals['unusable'] != 1 else ''}"
    click.echo(line, err=True)


@main.command("tables")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule tables to load over the bundled ones, as `scrub --rules`.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default: $CLAIMSCRUB_CONFIG, else claimscrub.toml or [tool.claimscrub] in pyproject.toml in the working folder or its parents).")
def tables_command(rules_dir: Optional[str], config_path: Optional[str]) -> None:
    """List every rule table a scrub would load: source, release and row count (no scrubbing).

    Exit status 3 when a table or a file of the rules folder cannot be used.
    """
    from claimscrub.config import discover_config, load_config
    from claimscrub.scrub import table_versions

    try:
        path = discover_config(config_path)
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
@click.option("--format", "output_format", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="json: an array of the edits, one object each.")
def rules_command(output_format: str) -> None:
    """List every edit: id, scope, category, default severity and summary."""
    from claimscrub.engine import load_rules

    registry = load_rules()
    if output_format == "json":
        import json

        click.echo(json.dumps([
            {"id": rule_id, "name": rule.name, "summary": rule.summary, "category": rule.category.value,
             "severity": rule.severity.value, "scope": rule.scope.value, "source": rule.source,
             "status_code_277": rule.status_code or None}
            for rule_id, rule in registry.items()
        ], indent=2))
        return
    width = max(len(rule_id) for rule_id in registry)
    for rule_id, rule in registry.items():
        click.echo(
            f"{rule_id:<{width}}  {rule.scope.value:<15} {rule.category.value:<17} "
            f"{rule.severity.value:<7}  {rule.summary}"
        )


@main.command("schema")
@click.option("--for", "kind", type=click.Choice(("json", "jsonl")), default="json", show_default=True,
              help="json: the JSON report (NAME.json, --format json); jsonl: one line of --format jsonl.")
def schema_command(kind: str) -> None:
    """Print the JSON Schema of the JSON report (NAME.json), whose schema_version it gives."""
    import json

    from claimscrub.report.schema import json_schema

    click.echo(json.dumps(json_schema(kind), indent=2))


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
