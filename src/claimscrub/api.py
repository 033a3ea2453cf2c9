"""The Python API: :func:`scrub` runs what ``claimscrub scrub`` runs and returns typed results.

    import claimscrub

    with claimscrub.scrub("claims.837", as_of="2026-11-22") as result:
        for claim in result.claims():
            if claim.rejected:
                print(claim.claim_id, [f.rule for f in claim.findings])
        print(result.summary.rejected, "rejected")
        document = result.to_json()          # the text of the CLI's claims.837.json
        ack = result.files[0].ack_999        # the 999, as the CLI writes it

The command line is a layer over this module: it resolves the same configuration, builds
the same scrubber (implementation-guide validation by the compiled guide unless
``validate=False``), runs it, and writes the outputs and the stdout formats from a
:class:`ScrubResult`. So the API and the CLI give the same JSON for the same input.

Inputs are paths (files or folders of them), ``bytes`` or binary streams. Bytes and
streams are copied to a private temporary file first (owner-only, removed when the result
is closed or the process is stopped), so a run never changes, locks or re-reads an input
it was handed; they are named ``input-1``, ``input-2``, ... (``<stdin>`` for the standard
input) in the reports.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO, Callable, Iterable, Iterator, Optional, Sequence, Union

from claimscrub.errors import (
    EXIT_ACCEPTED,
    EXIT_REJECTED,
    EXIT_UNUSABLE,
    ClaimscrubError,
    ConfigError,
)
from claimscrub.findings import Finding, Severity
from claimscrub.scrub import FileResult, RunResult, ScrubOptions, Scrubber, expand_inputs, input_names

#: One input: a path, the bytes of an 837P, or a binary stream holding one.
Input = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

#: What ``emit`` may name: the files a run writes per input.
EMIT_CHOICES = ("json", "html", "999", "277", "accepted")
#: Written to ``out`` when ``emit`` is not given (``accepted`` too when an accepted folder is).
DEFAULT_EMIT = ("json", "html", "999", "277")
#: ``validator`` choices: the guide compiled from pyx12's map, or pyx12 itself.
VALIDATORS = ("compiled", "pyx12")
DEFAULT_VALIDATOR = "compiled"
#: Below this much input a pyx12 worker pool costs more to start than it saves.
SMALL_BATCH_BYTES = 1 << 20
#: The name a spooled standard input takes in reports (``stdin`` in output file names).
STDIN_NAME = "<stdin>"
#: ``fail_on`` choices: the lowest severity that makes a run exit 1.
FAIL_ON = ("error", "warning")


# -- typed results ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimOutcome:
    """One claim's disposition and findings."""

    #: the input's name in the run (``<stdin>``, ``input-1`` for bytes)
    file: str
    claim_id: str
    #: ``accepted`` or ``rejected`` (rejected: at least one finding of severity error)
    status: str
    #: CLM02 (None when it is not a number)
    charge: Optional[Decimal]
    #: 1-based ordinal of the CLM segment in its input (ISA = 1)
    segment: int
    payer_id: str
    findings: tuple[Finding, ...]
    expected_allowed: Optional[Decimal] = None
    amount_at_risk: Decimal = Decimal(0)

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True)
class Summary:
    """Totals of a run (or of one input)."""

    files: int = 0
    unusable_files: int = 0
    claims: int = 0
    accepted: int = 0
    rejected: int = 0
    #: transaction sets holding no readable claim (rejected in the 999)
    empty_sets: int = 0
    findings: int = 0
    errors: int = 0
    warnings: int = 0
    infos: int = 0
    accepted_charge: Decimal = Decimal(0)
    rejected_charge: Decimal = Decimal(0)
    amount_at_risk: Decimal = Decimal(0)

    def __add__(self, other: "Summary") -> "Summary":
        return Summary(**{name: getattr(self, name) + getattr(other, name)
                          for name in self.__dataclass_fields__})


class FileReport:
    """One input of a run: its name, whether it could be read, its claims, reports and
    acknowledgments."""

    def __init__(self, result: "ScrubResult", file: FileResult, position: Optional[int], source: Optional[str]):
        self._result = result
        self._file = file
        #: ordinal among the run's usable inputs (what its acknowledgments' numbers follow)
        self._position = position
        #: the path given, or None for bytes and streams
        self.path = source
        self.name = file.name

    @property
    def usable(self) -> bool:
        return self._file.usable

    @property
    def error(self) -> Optional[str]:
        """Why the input could not be read (one line naming file and segment), or None."""
        return str(self._file.error) if self._file.error is not None else None

    @property
    def file_result(self) -> FileResult:
        """The pipeline's own record of the input (:class:`claimscrub.scrub.FileResult`)."""
        return self._file

    @property
    def summary(self) -> Summary:
        file = self._file
        if not file.usable:
            return Summary(files=1, unusable_files=1)
        severities = {Severity.ERROR: 0, Severity.WARNING: 0, Severity.INFO: 0}
        for outcome in self.claims(flagged_only=True):
            for finding in outcome.findings:
                severities[finding.severity] += 1
        return Summary(
            files=1, claims=file.claim_count, accepted=file.accepted, rejected=file.rejected,
            empty_sets=len(file.empty_sets), findings=sum(severities.values()),
            errors=severities[Severity.ERROR], warnings=severities[Severity.WARNING],
            infos=severities[Severity.INFO], accepted_charge=file.accepted_charge,
            rejected_charge=file.rejected_charge, amount_at_risk=file.amount_at_risk,
        )

    def summary_document(self) -> dict:
        """The ``summary`` object of the input's JSON report."""
        from claimscrub.report.json_report import summary

        return summary(self._file)

    def claims(self, flagged_only: bool = False) -> Iterator[ClaimOutcome]:
        """The input's claims in file order (only those with findings, with ``flagged_only``),
        read back from the run's store one at a time."""
        run = self._result._open_run()
        for result in run.claim_results(self._file, flagged_only, with_segments=False):
            claim = result.claim
            yield ClaimOutcome(
                file=self._file.name, claim_id=claim.claim_id, status=result.status,
                charge=claim.charge, segment=claim.pos, payer_id=claim.payer.id,
                findings=tuple(result.findings), expected_allowed=result.expected_allowed,
                amount_at_risk=result.amount_at_risk,
            )

    def to_json(self) -> str:
        """The text of the JSON report the CLI writes for this input (``NAME.json``)."""
        from claimscrub.report import json_report

        self._require_usable("a JSON report")
        handle = io.StringIO()
        json_report._write(self._result._open_run(), self._file, handle)
        return handle.getvalue()

    @property
    def ack_999(self) -> Optional[str]:
        """The 999 the CLI writes for this input (None when it holds no transaction set)."""
        from claimscrub.report import ack999

        if not self.usable or not self._file.transactions:
            return None
        handle = io.StringIO()
        ack999._write(self._result._open_run(), self._file, handle, self._result._ack_options(self._position, 0))
        return handle.getvalue()

    @property
    def ack_277(self) -> Optional[str]:
        """The 277CA the CLI writes for this input (None when it holds no claim)."""
        from claimscrub.report import ack277

        if not self.usable or not any(info.claims for info in self._file.transactions):
            return None
        handle = io.StringIO()
        ack277._write(self._result._open_run(), self._file, handle, self._result._ack_options(self._position, 1))
        return handle.getvalue()

    def _require_usable(self, what: str) -> None:
        if not self.usable:
            raise ClaimscrubError(f"{self.name}: no {what}: {self.error}")

    def __repr__(self) -> str:
        return f"<FileReport {self.name!r} {'usable' if self.usable else 'unusable'}>"


class ScrubResult:
    """What :func:`scrub` returns. The claims stay in the run's temporary store on disk
    until :meth:`close` (or the end of a ``with`` block, or garbage collection)."""

    def __init__(self, run: RunResult, settings: "Settings", sources: list[Optional[str]],
                 spooled: list[str], timings: dict[str, float]):
        self._run: Optional[RunResult] = run
        self.settings = settings
        #: seconds spent in each stage (read, validate, edit, write)
        self.timings = timings
        position = 0
        self.files: list[FileReport] = []
        for file, source in zip(run.files, sources):
            self.files.append(FileReport(self, file, position if file.usable else None, source))
            position += 1 if file.usable else 0
        #: the first acknowledgment control number (from the history when it allocated one)
        self.ack_start: Optional[int] = settings.ack_control
        self._spooled = spooled
        self._finalizer = weakref.finalize(self, _cleanup, run, list(spooled), settings.history_store)

    # -- reading ------------------------------------------------------------------------
    @property
    def run(self) -> RunResult:
        """The pipeline's own result (:class:`claimscrub.scrub.RunResult`)."""
        return self._open_run()

    def _open_run(self) -> RunResult:
        if self._run is None:
            raise ClaimscrubError("the scrub result was closed; read it inside the `with` block")
        return self._run

    @property
    def config_file(self) -> Optional[str]:
        """The configuration file the run used (absolute path), or None."""
        return self.settings.config_file

    @property
    def summary(self) -> Summary:
        total = Summary()
        for report in self.files:
            total = total + report.summary
        return total

    def claims(self, flagged_only: bool = False) -> Iterator[ClaimOutcome]:
        """Every claim of every usable input, in input and file order."""
        for report in self.files:
            if report.usable:
                yield from report.claims(flagged_only)

    def to_json(self) -> str:
        """The JSON report the CLI writes for the run's one input; with several inputs, use
        ``result.files[i].to_json()``."""
        if len(self.files) != 1:
            raise ClaimscrubError(f"the run has {len(self.files)} inputs; use result.files[i].to_json()")
        return self.files[0].to_json()

    def exit_code(self, fail_on: str = "error", exit_zero: bool = False) -> int:
        """The CLI's exit status for this run: 2 when an input is unusable, 1 when a claim is
        rejected or a transaction set holds no claim (``fail_on="warning"``: also when a
        claim has a warning), else 0; ``exit_zero`` turns 1 into 0."""
        if fail_on not in FAIL_ON:
            raise ConfigError(f"fail_on must be one of {', '.join(FAIL_ON)}")
        files = [report.file_result for report in self.files]
        if any(not file.usable for file in files):
            return EXIT_UNUSABLE
        failed = any(file.rejected or file.empty_sets for file in files)
        if not failed and fail_on == "warning":
            failed = any(finding.severity == Severity.WARNING
                         for claim in self.claims(flagged_only=True) for finding in claim.findings)
        return EXIT_REJECTED if failed and not exit_zero else EXIT_ACCEPTED

    # -- writing ------------------------------------------------------------------------
    def _ack_options(self, position: Optional[int], offset: int):
        from claimscrub.report.ack277 import Ack277Options
        from claimscrub.report.ack999 import Ack999Options

        start = self.ack_start or 1
        number = start + 2 * (position or 0) + offset
        kind = Ack999Options if offset == 0 else Ack277Options
        return kind(control_number=number, sender=self.settings.ack_sender, receiver=self.settings.ack_receiver)

    def write(self, out_dir: Optional[str] = None, emit: Iterable[str] = DEFAULT_EMIT,
              accepted_dir: Optional[str] = None, on_written: Optional[Callable[[str], None]] = None) -> list[str]:
        """Write the outputs ``emit`` names (``json``, ``html``, ``999``, ``277`` into
        ``out_dir``; ``accepted``, an 837P per input holding only its accepted claims, into
        ``accepted_dir`` or else ``out_dir``), as the CLI does; returns the paths written.
        With a claim history the run is recorded in the same transaction as the writes."""
        emit = check_emit(emit)
        started = time.perf_counter()
        progress = self.settings.progress
        written: list[str] = []

        def write_all(ack_start: Optional[int]) -> None:
            if self.settings.ack_control is None and ack_start is not None:
                self.ack_start = ack_start
            written.extend(self._write_files(out_dir, emit, accepted_dir, on_written))

        run = self._open_run()
        if progress is not None:
            usable = [f for f in self.files if f.usable]
            progress.stage("write", total=sum(f.file_result.claim_count for f in usable) * max(len(emit), 1))
        if self.settings.history_store is not None:
            from claimscrub.history.cli import record_scrub

            usable_count = sum(1 for report in self.files if report.usable)
            acks = "999" in emit or "277" in emit
            count = 0 if self.settings.ack_control or not acks else 2 * usable_count
            record_scrub(self.settings.history_store, self.settings.run_history, run, count, write_all)
        else:
            write_all(None)
        self.timings["write"] = self.timings.get("write", 0.0) + time.perf_counter() - started
        return written

    def _write_files(self, out_dir: Optional[str], emit: Sequence[str], accepted_dir: Optional[str],
                     on_written: Optional[Callable[[str], None]]) -> list[str]:
        from claimscrub.report.accepted837 import write_accepted_837
        from claimscrub.report.ack277 import write_277
        from claimscrub.report.ack999 import write_999
        from claimscrub.report.html_report import write_html
        from claimscrub.report.json_report import write_json

        run = self._open_run()
        progress = self.settings.progress
        writers = {"json": write_json, "html": write_html, "999": write_999, "277": write_277,
                   "accepted": write_accepted_837}
        jobs = []  # (report, kind, write, path), in the order one process writes them
        for report in self.files:
            if not report.usable:
                continue
            file = report.file_result
            for kind in emit:
                if kind == "999":
                    args = (run, file, _need(out_dir, kind), self._ack_options(report._position, 0))
                elif kind == "277":
                    args = (run, file, _need(out_dir, kind), self._ack_options(report._position, 1))
                elif kind == "accepted":
                    args = (run, file, accepted_dir or _need(out_dir, kind))
                else:
                    args = (run, file, _need(out_dir, kind))
                path = file.output_path(args[2], OUTPUT_SUFFIX[kind])
                jobs.append((report, kind, functools.partial(writers[kind], *args), path))
        written = []

        def done(index: int, path: Optional[str]) -> None:
            report, kind = jobs[index][:2]
            file = report.file_result
            if path:
                written.append(path)
                if on_written is not None:
                    on_written(path)
            if progress is not None:  # the claims are counted once, the bar per output
                progress.advance(file.claim_count, claims=file.claim_count if kind == emit[0] else 0)

        processes = self._writer_processes(len(jobs), [job[3] for job in jobs])
        if processes > 1:
            from claimscrub.partition.writers import write_parallel

            run.store.commit()
            costs = [WRITER_COST[job[1]] * max(1, job[0].file_result.claim_count) for job in jobs]
            write_parallel([(job[2], job[3]) for job in jobs], processes, run.store.reopen_for_reading, done,
                           costs=costs)
        else:
            for index, job in enumerate(jobs):
                done(index, job[2]())
        if "html" in emit and written:  # the run's index.html, beside the reports it links
            from claimscrub.report.html_report import write_index

            path = write_index(run, _need(out_dir, "html"))
            written.append(path)
            if on_written is not None:
                on_written(path)
        return written

    def _writer_processes(self, jobs: int, paths: list[str]) -> int:
        """How many processes write the outputs: as many as the run's local workers (one per
        CPU for a large batch, ``jobs``), never more than there are outputs; one for a run
        in one process, on a Dask cluster, or where processes cannot be forked."""
        from claimscrub.partition.writers import can_fork

        settings = self.settings
        if jobs < 2 or settings.engine != "local" or not can_fork() or len(set(paths)) < len(paths):
            return 1
        input_bytes = sum(report.file_result.byte_count for report in self.files)
        return min(_jobs(settings, input_bytes), jobs)

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Remove the run's temporary claim store and spooled inputs, close the history."""
        self._finalizer()
        self._run = None

    def __enter__(self) -> "ScrubResult":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ScrubResult {len(self.files)} input(s)>"


#: what each output adds to the input's name (the accepted-claims 837 keeps it as it is)
OUTPUT_SUFFIX = {"json": ".json", "html": ".html", "999": ".999", "277": ".277", "accepted": ""}
#: the work of each output per claim, relative to the JSON's (seen on the benchmark batch:
#: the 277CA close to the JSON, the HTML of flagged claims and the 999 far less), so that
#: parallel writer processes are handed the costliest outputs first
WRITER_COST = {"json": 1.0, "277": 0.8, "accepted": 0.4, "html": 0.3, "999": 0.1}


def _need(out_dir: Optional[str], kind: str) -> str:
    if not out_dir:
        raise ConfigError(f"writing the {kind} output needs an output folder (--out)")
    return out_dir


def _cleanup(run: RunResult, spooled: list[str], history) -> None:
    from claimscrub.atomic import untrack_temporary

    try:
        run.close()
    finally:
        for path in spooled:
            untrack_temporary(path)
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        if history is not None:
            history.close()


def check_emit(emit: Union[str, Iterable[str]]) -> tuple[str, ...]:
    """``emit`` as a tuple of known output kinds (a comma-separated string is split)."""
    if isinstance(emit, str):
        emit = [part for part in (p.strip() for p in emit.split(",")) if part]
    kinds = tuple(dict.fromkeys(part.lower() for part in emit))
    unknown = [kind for kind in kinds if kind not in EMIT_CHOICES]
    if unknown:
        raise ConfigError(f"--emit: unknown output {', '.join(unknown)}; choose from {','.join(EMIT_CHOICES)}")
    return kinds


# -- settings: what the CLI options and the API's keyword arguments resolve to --------------


@dataclass
class Settings:
    """A run's resolved settings (configuration, tables, validator, history, acknowledgments)."""

    as_of: date
    config: object = None
    config_file: Optional[str] = None
    tables: object = None
    validate: bool = True
    validator: str = DEFAULT_VALIDATOR
    jobs: Optional[int] = None
    #: where the partitioned stages run: "local" (worker processes here) or "dask"
    engine: str = "local"
    scheduler: Optional[str] = None
    work_dir: Optional[str] = None
    ack_sender: object = None
    ack_receiver: object = None
    ack_control: Optional[int] = None
    #: the opened claim history (claimscrub.history.store.History) and this run's view of it
    history_store: object = None
    run_history: object = None
    progress: object = None


def resolve_settings(
    *,
    as_of: Union[date, datetime, str, None] = None,
    config: object = None,
    select: Optional[Sequence[str]] = None,
    ignore: Optional[Sequence[str]] = None,
    extend_select: Optional[Sequence[str]] = None,
    rules: Optional[str] = None,
    validate: bool = True,
    validator: str = DEFAULT_VALIDATOR,
    jobs: Optional[int] = None,
    engine: str = "local",
    scheduler: Optional[str] = None,
    history: Optional[str] = None,
    ack_sender: Optional[str] = None,
    ack_receiver: Optional[str] = None,
    ack_control_number: Optional[int] = None,
    work_dir: Optional[str] = None,
    progress: object = None,
) -> Settings:
    """Resolve the options as ``claimscrub scrub`` does; :class:`ConfigError` (and the
    history's errors, all :class:`ClaimscrubError`) in one line for anything unusable."""
    from claimscrub.config import Config, discover_config, load_config
    from claimscrub.report.x12out import parse_party

    if config is False:
        loaded = None
    elif isinstance(config, Config):
        loaded = config
    else:
        path = discover_config(os.fspath(config) if config is not None else None)
        try:
            loaded = load_config(path) if path else None
        except RecursionError:
            raise ConfigError(f"{path}: nested too deeply to be a configuration") from None
    for name, value in (("select", select), ("ignore", ignore), ("extend_select", extend_select)):
        if isinstance(value, str):
            raise ConfigError(f"{name} must be a list of rule ids or prefixes, not a string")
    if select or ignore or extend_select:
        loaded = (loaded or Config()).with_command_line(select, ignore, extend_select)
    if validator not in VALIDATORS:
        raise ConfigError(f"validator must be one of {', '.join(VALIDATORS)}")
    if isinstance(engine, str) and engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}")
    if engine == "dask" and not scheduler:
        raise ConfigError("--engine dask needs --scheduler ADDRESS (the Dask scheduler, tcp://HOST:8786)")
    if scheduler and engine != "dask" and isinstance(engine, str):
        raise ConfigError("--scheduler is for --engine dask")
    if jobs is not None and int(jobs) < 1:
        raise ConfigError("--jobs must be at least 1")
    if work_dir and not os.path.isdir(work_dir):
        from claimscrub.textsafe import visible

        raise ConfigError(f"--work-dir {visible(work_dir)} is not a folder")
    if ack_control_number is not None and not 1 <= int(ack_control_number) <= 999_999_999:
        raise ConfigError("--ack-control-number must be 1 to 999999999")
    if loaded is not None:
        from claimscrub.engine import load_rules

        loaded.check_against(load_rules())
    sender = ack_sender or getattr(loaded, "ack_sender", None)
    receiver = ack_receiver or getattr(loaded, "ack_receiver", None)
    tables = _load_tables(rules or getattr(loaded, "rules_dir", None))
    settings = Settings(
        as_of=_as_date(as_of),
        config=loaded,
        config_file=getattr(loaded, "file", None),
        tables=tables,
        validate=validate,
        validator=validator,
        jobs=jobs,
        engine=engine,
        scheduler=scheduler,
        work_dir=work_dir,
        ack_sender=parse_party(sender, "--ack-sender" if ack_sender else f"{loaded.path}: ack.sender") if sender else None,
        ack_receiver=parse_party(receiver, "--ack-receiver" if ack_receiver else f"{loaded.path}: ack.receiver") if receiver else None,
        ack_control=ack_control_number,
        progress=progress,
    )
    from claimscrub.history.cli import open_history

    settings.history_store = open_history(history, loaded)
    return settings


def _as_date(value: Union[date, datetime, str, None]) -> date:
    if value is None:
        return date.today()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"as_of {value!r} is not a date (YYYY-MM-DD)") from None


def _load_tables(rules_dir: Optional[str]):
    from claimscrub.tables import load_tables

    return load_tables(rules_dir)


#: ``engine`` choices: worker processes of this machine, or a Dask cluster.
ENGINES = ("local", "dask")


def _jobs(settings: Settings, input_bytes: int) -> int:
    """Worker processes of a local run: ``jobs``, else one per CPU (one for a small batch)."""
    if settings.jobs is None:
        return 1 if input_bytes < SMALL_BATCH_BYTES else (os.cpu_count() or 1)
    return settings.jobs


def _engine(settings: Settings, input_bytes: int):
    """Where the partitioned stages run (claimscrub.partition), or None for one process."""
    if not isinstance(settings.engine, str):
        return settings.engine  # an engine object of the caller's (a DaskEngine on its client)
    if settings.engine == "dask":
        from claimscrub.partition.dask_engine import DaskEngine

        return DaskEngine(settings.scheduler)
    jobs = _jobs(settings, input_bytes)
    if jobs <= 1:
        return None
    from claimscrub.partition.local import LocalEngine

    return LocalEngine(jobs)


def _validator(settings: Settings):
    """The run's validator; with a partitioned run the workers validate, each with its own
    validator of the same kind."""
    if not settings.validate:
        return None
    if settings.validator == "compiled":
        from claimscrub.guide import CompiledValidator

        return CompiledValidator()
    from claimscrub.validate import Pyx12Validator

    return Pyx12Validator(jobs=1)


def build_scrubber(settings: Settings, input_bytes: int) -> Scrubber:
    """The scrubber for ``settings``; checks the configuration's patterns against the rules
    (:class:`ConfigError` for a pattern that matches none)."""
    from claimscrub.history.run import RunHistory

    settings.run_history = RunHistory(settings.history_store) if settings.history_store is not None else None
    options = ScrubOptions(
        as_of=settings.as_of,
        config=settings.config,
        tables=settings.tables,
        work_dir=settings.work_dir,
        validator=None,
        history=settings.run_history,
        progress=settings.progress,
    )
    scrubber = Scrubber(options)
    if settings.config is not None:
        settings.config.check_against(scrubber.engine.rules)
    options.validator = _validator(settings)
    options.engine = _engine(settings, input_bytes)
    return scrubber


# -- inputs -------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The run's input files: paths to read, the names reports give them, where each came
    from (None for bytes and streams), and the private copies to remove afterwards."""

    paths: list[str]
    names: list[str]
    sources: list[Optional[str]]
    spooled: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(os.path.getsize(p) for p in self.paths if os.path.isfile(p))

    def discard(self) -> None:
        from claimscrub.atomic import untrack_temporary

        for path in self.spooled:
            untrack_temporary(path)
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        self.spooled = []


def spool(source: Union[bytes, bytearray, memoryview, BinaryIO], work_dir: Optional[str] = None) -> str:
    """Copy bytes or a binary stream to a new owner-only temporary file and return its path.
    Termination signals remove it (:func:`claimscrub.atomic.remove_temporaries`)."""
    from claimscrub.atomic import track_temporary

    folder = tempfile.mkdtemp(prefix="claimscrub-input-", dir=work_dir)
    path = os.path.join(folder, "input.837")
    track_temporary(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(source, (bytes, bytearray, memoryview)):
                handle.write(source)
            else:
                shutil.copyfileobj(source, handle, 1 << 20)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return path


def collect_inputs(inputs: Union[Input, Sequence[Input]], exclude: Iterable[Optional[str]] = (),
                   work_dir: Optional[str] = None, stdin: Optional[BinaryIO] = None) -> Inputs:
    """Paths (folders expanded, as the CLI does), bytes and streams as input files; ``-``
    is the standard input (``stdin``) when given."""
    if isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(inputs, "read"):
        items: list = [inputs]
    else:
        items = list(inputs)
    collected = Inputs([], [], [])
    path_items: list[str] = []
    # the order of the inputs is kept: runs of paths are expanded together
    order: list[tuple[str, object]] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)) and not (stdin is not None and os.fspath(item) == "-"):
            order.append(("path", os.fspath(item)))
        else:
            order.append(("data", item))
    count = 0
    try:
        for kind, item in order:
            if kind == "path":
                for path in expand_inputs([item], exclude=exclude):
                    path_items.append(path)
                    collected.paths.append(path)
                    collected.sources.append(path)
                    collected.names.append("")
            else:
                count += 1
                is_stdin = isinstance(item, str) and item == "-"
                data = stdin if is_stdin else item
                if not isinstance(data, (bytes, bytearray, memoryview)) and not hasattr(data, "read"):
                    raise ConfigError(f"input {count}: not a path, bytes or a binary stream "
                                      f"({type(data).__name__})")
                path = spool(data, work_dir)
                collected.spooled.append(path)
                collected.paths.append(path)
                collected.sources.append(None)
                collected.names.append(STDIN_NAME if is_stdin else f"input-{count}")
    except BaseException:
        collected.discard()
        raise
    _name_paths(collected, path_items)
    return collected


def _name_paths(collected: Inputs, path_items: list[str]) -> None:
    names = iter(input_names(path_items)) if path_items else iter(())
    taken = {name for name in collected.names if name}
    for i, name in enumerate(collected.names):
        if not name:
            own = next(names)
            candidate, n = own, 1
            while candidate in taken:
                n += 1
                candidate = f"{own}#{n}"
            taken.add(candidate)
            collected.names[i] = candidate


def out_names(inputs: Inputs) -> list[str]:
    """What each input's outputs are called below --out (``stdin`` for the standard input)."""
    return ["stdin" if name == STDIN_NAME else name for name in inputs.names]


# -- the run ------------------------------------------------------------------------------


def run_scrub(settings: Settings, inputs: Inputs) -> ScrubResult:
    """Scrub ``inputs`` with ``settings``: the code path of both :func:`scrub` and the CLI."""
    timings: dict[str, float] = {}
    clock = _StageClock(settings.progress, timings)
    settings.progress = clock
    try:
        clock.stage("load", unit="tables")
        scrubber = build_scrubber(settings, inputs.total_bytes)
        run = scrubber.run(inputs.paths, inputs.names, out_names(inputs))
    except BaseException:
        inputs.discard()
        if settings.history_store is not None:
            settings.history_store.close()
        raise
    clock.stop()
    return ScrubResult(run, settings, inputs.sources, inputs.spooled, timings)


class _StageClock:
    """Times each stage and passes the run's progress on to a display (``progress``)."""

    def __init__(self, display, timings: dict[str, float]):
        self.display = display
        self.timings = timings
        self._stage: Optional[str] = None
        self._since = 0.0

    def stage(self, name: str, total: Optional[int] = None, unit: str = "claims") -> None:
        self.stop()
        self._stage, self._since = name, time.perf_counter()
        if self.display is not None:
            self.display.stage(name, total=total, unit=unit)

    def advance(self, done: int = 0, claims: int = 0) -> None:
        if self.display is not None:
            self.display.advance(done, claims=claims)

    def stop(self) -> None:
        if self._stage is not None and self._stage != "write":
            self.timings[self._stage] = self.timings.get(self._stage, 0.0) + time.perf_counter() - self._since
        self._stage = None


def scrub(
    inputs: Union[Input, Sequence[Input]],
    *,
    as_of: Union[date, datetime, str, None] = None,
    config: object = None,
    select: Optional[Sequence[str]] = None,
    ignore: Optional[Sequence[str]] = None,
    extend_select: Optional[Sequence[str]] = None,
    rules: Optional[str] = None,
    validate: bool = True,
    validator: str = DEFAULT_VALIDATOR,
    jobs: Optional[int] = None,
    engine: str = "local",
    scheduler: Optional[str] = None,
    history: Optional[str] = None,
    ack_sender: Optional[str] = None,
    ack_receiver: Optional[str] = None,
    ack_control_number: Optional[int] = None,
    work_dir: Optional[str] = None,
    out: Optional[str] = None,
    emit: Union[str, Iterable[str], None] = None,
    accepted_out: Optional[str] = None,
    progress: object = None,
) -> ScrubResult:
    """Scrub 837P inputs as ``claimscrub scrub`` does and return a :class:`ScrubResult`.

    ``inputs``: one input or a list of them: paths (files, or folders scrubbed file by
    file), ``bytes``, or binary streams (copied to a private temporary file; named
    ``input-1``, ``input-2``, ... in the reports). The keyword arguments match the CLI's
    options:

    - ``as_of``: the day the run is judged on (``date`` or ``"YYYY-MM-DD"``; default today);
    - ``config``: a configuration file path, a :class:`claimscrub.config.Config`, ``False``
      for none, or ``None`` to find one as the CLI does (``$CLAIMSCRUB_CONFIG``, then
      ``claimscrub.toml``/``pyproject.toml`` in the working folder and its parents);
    - ``select``, ``ignore``, ``extend_select``: lists of rule ids or prefixes over the
      configuration's (``--select`` ...);
    - ``rules``: a folder of rule tables (``--rules``);
    - ``validate``: implementation-guide validation, on by default with the compiled guide
      (``validator="pyx12"`` runs pyx12 itself);
    - ``jobs``: worker processes, the claims read, validated and edited in partitions by
      patient (default one per CPU, one for inputs under 1 MiB); ``engine="dask"`` with
      ``scheduler="tcp://HOST:8786"`` runs the partitions on a Dask cluster instead
      (the ``claimscrub[dask]`` extra), and an engine object runs them there
      (``DaskEngine(client=client)`` of :mod:`claimscrub.partition.dask_engine` on a
      ``distributed.Client`` of the caller's);
    - ``history``: the claim history URL (``--history``; needs ``CLAIMSCRUB_HISTORY_KEY``);
      with a history the run is recorded when its outputs are written (``out``) or, without
      ``out``, at once;
    - ``ack_sender``, ``ack_receiver``: ``"QUAL:ID"`` of the acknowledgments (ISA05/06 and
      GS02, ISA07/08 and GS03); ``ack_control_number`` the first interchange number;
    - ``work_dir``: where the run keeps its temporary claim store;
    - ``out``, ``emit``, ``accepted_out``: write the outputs as the CLI does
      (:meth:`ScrubResult.write`);
    - ``progress``: an object with ``stage(name, total=None, unit="claims")`` and
      ``advance(done=0, claims=0)`` (:class:`claimscrub.scrub.RunProgress`).

    Unusable inputs do not raise: ``result.files[i].error`` says why (one line). A bad
    option or configuration raises :class:`claimscrub.errors.ConfigError` (one line).
    Close the result (or use ``with``) to remove the run's temporary files.
    """
    settings = resolve_settings(
        as_of=as_of, config=config, select=select, ignore=ignore, extend_select=extend_select,
        rules=rules, validate=validate, validator=validator, jobs=jobs, engine=engine,
        scheduler=scheduler, history=history,
        ack_sender=ack_sender, ack_receiver=ack_receiver, ack_control_number=ack_control_number,
        work_dir=work_dir, progress=progress,
    )
    try:
        emitted = check_emit(emit) if emit is not None else (DEFAULT_EMIT if out else ())
        if accepted_out and "accepted" not in emitted:
            emitted = emitted + ("accepted",)
        collected = collect_inputs(inputs, exclude=(out, accepted_out), work_dir=work_dir)
        if not collected.paths:
            raise ConfigError("no input files found")
    except BaseException:
        if settings.history_store is not None:
            settings.history_store.close()
        raise
    result = run_scrub(settings, collected)
    if emitted or settings.history_store is not None:
        try:
            result.write(out, emitted, accepted_out)
        except BaseException:
            result.close()
            raise
    return result
