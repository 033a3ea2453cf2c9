"""The scrub pipeline: read, build claims, edit, group, edit again, decide.

    bytes -> segments -> transaction sets -> claims -> line/claim edits -> store
          -> patient-days -> patient-day/patient edits -> dispositions

Writers (JSON, HTML, 999, 277CA, accepted 837P) read a :class:`RunResult`; they run after
every file of the run has been read, because a patient-day can span files.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Callable, Iterable, Iterator, Optional, Protocol

from claimscrub.claims import build_claims
from claimscrub.engine import Engine, RuleContext, Scope
from claimscrub.errors import InputError
from claimscrub.findings import Finding, Severity
from claimscrub.grouping import decode_key
from claimscrub.model import Claim
from claimscrub.pricing import (
    claim_amount_at_risk,
    claim_unpriced_at_risk,
    price_claim,
    total_allowed,
    unpriced_charges,
    with_amount_at_risk,
)
from claimscrub.store import ClaimRef, ClaimStore, FindingStore, StoredRefs
from claimscrub.partition.stages import read_spill
from claimscrub.records import dump_finding, load_claim
from claimscrub.textsafe import visible
from claimscrub.x12.envelope import (
    EnvelopeIssue,
    FunctionalGroup,
    TransactionSet,
    TransactionStream,
    stream_transaction_sets,
)
from claimscrub.x12.reader import Delimiters, Segment, X12Reader

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass
class IGError:
    """An implementation-guide error reported by the validator for one segment.

    ``segment`` is the file ordinal of the segment; ``seg_count`` its position within the
    transaction set (ST = 1), as a 999 IK302 needs. ``element`` is ``None`` for a
    segment-level error (``code`` is then an IK304 code), else the element position as
    ``"5"`` or ``"5:1"`` with ``element_ref`` the data element number (``code`` an IK403).
    """

    segment: Optional[int]
    seg_count: Optional[int]
    seg_id: str
    code: str
    message: str
    element: Optional[str] = None
    element_ref: str = ""
    bad_value: str = ""
    loop_id: str = ""


@dataclass
class TransactionInfo:
    index: int
    control_number: str
    version: str
    st_pos: int
    se_pos: int
    segment_count: int
    group: FunctionalGroup
    issues: list[EnvelopeIssue]
    file_index: int = -1
    store: Optional[ClaimStore] = field(default=None, repr=False, compare=False)
    ig_errors: list[IGError] = field(default_factory=list)
    ig_checked: bool = False
    #: transaction-level codes the validator reported (IK502: "2", "3", "4", "5", ...)
    ig_transaction_codes: list[str] = field(default_factory=list)

    @property
    def claims(self) -> "StoredRefs | list[ClaimRef]":
        """The claims of this transaction set, read from the store one at a time each time
        they are iterated (``len`` and truth work too)."""
        if self.store is None:
            return []
        return StoredRefs(self.store, self.file_index, self.index)

    def all_issues(self) -> list[EnvelopeIssue]:
        return self.issues + self.group.issues + self.group.interchange.issues

    @classmethod
    def of_stream(cls, stream: TransactionStream, file_index: int,
                  store: Optional[ClaimStore] = None) -> "TransactionInfo":
        """The set a stream starts; its end (``se_pos``, ``segment_count``) is filled in
        once the stream has reached SE, its trailer issues as they are read."""
        return cls(index=stream.index, control_number=stream.control_number, version=stream.version,
                   st_pos=stream.st_pos, se_pos=stream.st_pos, segment_count=0, group=stream.group,
                   issues=stream.issues, file_index=file_index, store=store)


@dataclass
class FileResult:
    index: int
    path: str
    name: str
    error: Optional[InputError] = None
    delimiters: Optional[Delimiters] = None
    transactions: list[TransactionInfo] = field(default_factory=list)
    claim_count: int = 0
    segment_count: int = 0
    byte_count: int = 0
    accepted: int = 0
    rejected: int = 0
    accepted_charge: Decimal = Decimal(0)
    rejected_charge: Decimal = Decimal(0)
    findings_by_rule: Counter = field(default_factory=Counter)
    findings_by_category: Counter = field(default_factory=Counter)
    #: money at stake (claimscrub.pricing): expected allowed over priced lines, what the
    #: error findings put at risk (each line once), and the lines that could not be priced
    expected_allowed: Decimal = Decimal(0)
    amount_at_risk: Decimal = Decimal(0)
    unpriced_lines: int = 0
    #: billed charges and count of the unpriced lines that error findings put at risk
    unpriced_charge_at_risk: Decimal = Decimal(0)
    unpriced_lines_at_risk: int = 0

    #: where the outputs go below --out: ``name`` as the file system spells it (a relative
    #: path when base names repeat in the run); ``name`` is its printable form
    out_name: str = ""
    #: transaction sets holding no claim: rejected, with no claim to carry the finding
    empty_sets: list = field(default_factory=list)
    #: (size, modification time, SHA-256) of the bytes scrubbed (X12Reader.fingerprint)
    fingerprint: Optional[tuple] = None
    #: what follows each segment terminator in the input (CRLF, LF, CR or nothing)
    line_break: str = ""

    @property
    def usable(self) -> bool:
        return self.error is None

    def output_path(self, out_dir: str, suffix: str = "") -> str:
        """``out_dir/NAME + suffix``; NAME keeps the folders that tell apart inputs of the
        same base name (``d1/x.837``), so no two inputs share an output."""
        return output_path(out_dir, self.out_name or self.name, suffix)


#: The longest file name most file systems take, in bytes.
NAME_MAX = 255


def output_path(out_dir: str, name: str, suffix: str = "") -> str:
    """Where the output ``suffix`` of the input ``name`` goes. A name that would pass the
    file system's limit with its suffix is cut and given a digest of the whole name, so it
    stays unique (``nnnn...~1a2b3c4d.json``)."""
    parts = name.split("/")
    last = parts[-1] + suffix
    raw = os.fsencode(last)
    if len(raw) > NAME_MAX:
        import hashlib

        digest = hashlib.sha256(os.fsencode(parts[-1])).hexdigest()[:10]
        keep = NAME_MAX - len(os.fsencode(suffix)) - len(digest) - 1
        head = os.fsencode(parts[-1])[:keep]
        last = os.fsdecode(head) + "~" + digest + suffix
    return os.path.join(out_dir, *parts[:-1], last)


@dataclass
class ClaimResult:
    claim: Claim
    segments: list[str]
    findings: list[Finding]
    #: expected allowed amount of each line by LX01 (claimscrub.pricing); None = not priced
    line_allowed: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return disposition(self.findings)

    @property
    def expected_allowed(self) -> Optional[Decimal]:
        return total_allowed(self.line_allowed)

    @property
    def amount_at_risk(self) -> Decimal:
        return claim_amount_at_risk(self.findings, self.line_allowed)

    @property
    def unpriced_at_risk(self) -> tuple[Decimal, int]:
        """Billed charges and count of the unpriced lines the error findings put at risk."""
        return claim_unpriced_at_risk(self.findings, unpriced_charges(self.claim, self.line_allowed))


def disposition(findings: Iterable[Finding]) -> str:
    return REJECTED if any(f.severity == Severity.ERROR for f in findings) else ACCEPTED


class TransactionValidator(Protocol):
    """Implementation-guide validation of transaction sets (pyx12), possibly in parallel."""

    def submit(self, key: tuple[int, int], ts: TransactionSet, delimiters: Delimiters) -> None: ...

    def completed(self, block: bool = False) -> Iterator[tuple[tuple[int, int], list[IGError], list[str]]]: ...

    def close(self) -> None: ...


ENVELOPE_RULE = "X12-ENV-001"
IG_RULE = "X12-IG-001"


@dataclass
class ScrubOptions:
    as_of: date = field(default_factory=date.today)
    config: object = None
    tables: object = None
    validator: Optional[TransactionValidator] = None
    work_dir: Optional[str] = None
    on_progress: Optional[Callable[[int], None]] = None
    #: the claim history of earlier runs (claimscrub.history.run.RunHistory), or None
    history: object = None
    #: stage and progress reports (:class:`RunProgress`), or None
    progress: Optional["RunProgress"] = None
    #: where the partitioned stages run (claimscrub.partition: LocalEngine, DaskEngine), or
    #: None to run every stage in this process
    engine: object = None


class RunProgress(Protocol):
    """What a progress display hears from a run: the stage starts (``read``, ``validate``,
    ``edit``; the writers add ``write``), with a total in the stage's unit when known, and
    how far it got (``done`` in that unit, ``claims`` claims handled)."""

    def stage(self, name: str, total: Optional[int] = None, unit: str = "claims") -> None: ...

    def advance(self, done: int = 0, claims: int = 0) -> None: ...


class RunResult:
    """Everything the writers need; the claims themselves stay in the store."""

    def __init__(self, store: ClaimStore, files: list[FileResult], findings: FindingStore, engine: Engine):
        self.store = store
        self.files = files
        self.findings = findings
        self.engine = engine

    def claim_results(self, file: FileResult, flagged_only: bool = False,
                      with_segments: bool = True) -> Iterator[ClaimResult]:
        """The claims of a file in order, with their findings (only those that have any,
        with ``flagged_only``) and the text of their segments (left empty, and not read,
        without ``with_segments``: for the writers that never show it)."""
        if not file.usable:
            return
        # the file's findings read alongside its claims, both in claim order
        found = self.store.file_findings(file.index)
        next_index, next_findings = next(found, (None, []))
        for claim, segments, ref in self.store.claims(file.index, flagged_only, with_segments):
            while next_index is not None and next_index < claim.index:
                next_index, next_findings = next(found, (None, []))
            findings = next_findings if next_index == claim.index else []
            yield ClaimResult(claim, segments, findings, line_allowed=ref.line_allowed)

    def close(self) -> None:
        self.store.close()

    @property
    def table_versions(self) -> list[dict]:
        return table_versions(self.engine.ctx.tables)


def table_versions(tables) -> list[dict]:
    """Every rule table a run uses, with its provenance: the loaded tables and the
    ICD-10-CM releases the diagnosis edits judge codes by (reports and ``claimscrub tables``)."""
    from claimscrub import icd10

    versions = list(getattr(tables, "versions", lambda: [])()) if tables is not None else []
    return [v for v in versions if v.get("table") != icd10.TABLE] + icd10.versions(tables)


def expand_inputs(paths: Iterable[str], exclude: Iterable[Optional[str]] = ()) -> list[str]:
    """Files given, and every file below folders given, in a stable order; hidden files
    and folders are left out, and so are the folders in ``exclude`` (claimscrub's own
    --out and --accepted-out, so a run never scrubs the reports of an earlier one)."""
    skip = {os.path.realpath(d) for d in exclude if d}
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(
                    d for d in dirs
                    if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) not in skip
                )
                out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
        else:
            out.append(path)
    return unique_inputs(out)


def input_names(paths: list[str]) -> list[str]:
    """A unique name for each input: its base name, or, when base names repeat in the run,
    the shortest end of its path that tells it apart (``d1/x.837`` and ``d2/x.837``), so
    outputs never collide and say where they came from. Paths that are the same file
    should be given once (:func:`unique_inputs`); any that are left get ``#2``, ``#3``."""
    parts = [os.path.abspath(p).split(os.sep) for p in paths]
    names: list[Optional[str]] = [None] * len(paths)
    depth = 1
    pending = list(range(len(paths)))
    while pending:
        candidates: dict[str, list[int]] = {}
        for i in pending:
            tail = [p for p in parts[i][-depth:] if p]
            candidates.setdefault("/".join(tail), []).append(i)
        still = []
        for name, owners in candidates.items():
            if len(owners) == 1:
                names[owners[0]] = name
            elif all(depth >= len(parts[i]) for i in owners):
                for n, i in enumerate(owners, start=1):
                    names[i] = name if n == 1 else f"{name}#{n}"
            else:
                still.extend(owners)
        pending = still
        depth += 1
    return [n or os.path.basename(p) for n, p in zip(names, paths)]


def unique_inputs(paths: list[str]) -> list[str]:
    """``paths`` without repeats of the same file (given twice, or a file and its folder)."""
    seen: set = set()
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            key: object = (st.st_dev, st.st_ino)
        except OSError:
            key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


class Scrubber:
    def __init__(self, options: ScrubOptions):
        self.options = options
        #: validation results of files other than the one being read (see _collect_validation)
        self._unclaimed: list = []
        if options.tables is None:
            from claimscrub.tables import load_tables

            options.tables = load_tables()
        self.engine = Engine(
            RuleContext(tables=options.tables, config=options.config, as_of=options.as_of,
                        history=options.history)
        )

    def run(self, paths: list[str], names: Optional[list[str]] = None,
            out_names: Optional[list[str]] = None) -> RunResult:
        """Scrub ``paths``; ``names`` (default :func:`input_names`) are what reports call
        them (``<stdin>`` for a spooled standard input), ``out_names`` (default ``names``)
        what their outputs are called."""
        if self.options.engine is not None:
            return self._run_partitioned(paths, names, out_names)
        store, findings, files = self._start(paths, names, out_names)
        progress = self.options.progress
        if self.options.history is not None:
            self.options.history.begin(paths)
        try:
            for file in files:
                self._read_file(file, store, findings)
            if progress is not None and self.options.validator is not None:
                progress.stage("validate", unit="transaction sets")
            self._collect_validation(files, findings, block=True)
            if progress is not None:
                progress.stage("edit", total=sum(f.claim_count for f in files))
            for file in files:
                if file.usable:
                    self._envelope_findings(file, findings)
            self._grouped_edits(store, files, findings)
        except BaseException:
            store.close()
            if self.options.validator is not None:
                self.options.validator.close()
            raise
        if self.options.validator is not None:
            self.options.validator.close()
        for file in files:
            self._tally(file, findings)
        return RunResult(store, files, findings, self.engine)

    def _start(self, paths: list[str], names: Optional[list[str]],
               out_names: Optional[list[str]]) -> tuple[ClaimStore, FindingStore, list[FileResult]]:
        """The run's store and its files (named as :meth:`run` says); the read stage begins."""
        store = ClaimStore(self.options.work_dir)
        names = names or input_names(paths)
        files = [
            FileResult(index=i, path=p, name=visible(n), out_name=o)
            for i, (p, n, o) in enumerate(zip(paths, names, out_names or names))
        ]
        if self.options.progress is not None:
            self.options.progress.stage("read", total=sum(_file_size(p) for p in paths), unit="bytes")
        return store, FindingStore(store), files

    # -- a partitioned run (claimscrub.partition) ---------------------------------------
    def _run_partitioned(self, paths: list[str], names: Optional[list[str]] = None,
                         out_names: Optional[list[str]] = None) -> RunResult:
        """The run's stages on ``options.engine``: read units and patient partitions in
        worker processes (or on a Dask cluster), the store, the history and the decisions
        here. The result is the same as :meth:`run` in one process, byte for byte."""
        from claimscrub.partition.stages import StageContext, group_partition, read_unit, warm

        engine = self.options.engine
        kind = validator_kind(self.options.validator)
        if self.options.validator is not None and kind is None:
            # a validator of the caller's own cannot be sent to the workers
            self.options.engine = None
            try:
                return self.run(paths, names, out_names)
            finally:
                self.options.engine = engine
        store, findings, files = self._start(paths, names, out_names)
        progress = self.options.progress
        run_history = self.options.history
        if run_history is not None:
            run_history.begin(paths)
        started = False
        try:
            spill_dir = os.path.join(os.path.dirname(store.path), "partitions")
            os.mkdir(spill_dir, 0o700)
            sizes = [_file_size(p) for p in paths]
            workers = engine.workers
            ctx = StageContext(as_of=self.options.as_of, config=self.options.config, tables=self.options.tables,
                               validator=kind, spill_dir=spill_dir,
                               partitions=partition_count(sum(sizes), workers), history=run_history is not None)
            if paths and getattr(engine, "forks", False):
                warm(ctx, paths[0], files[0].name)
            engine.start(ctx)
            started = True
            # stage 1: read units, in input order
            by_file: dict[int, list] = {file.index: [] for file in files}
            for task in [engine.submit(read_unit, unit) for unit in plan_units(files, sizes, workers)]:
                summary = task.result()
                by_file[summary.unit.file_index].append(summary)
            for file in files:
                self._assemble(file, by_file[file.index], store)
            # With a claim history each claim is observed first, in input order (its record
            # spooled, a replacement or void matched), as the run in one process does while
            # reading, so that the priors of each partition are read for the run's patients
            # and dates; the claims themselves go into the store while stage 2 runs.
            checker = self._history_checker()
            history_findings: dict[tuple[int, int], list[Finding]] = {}
            if run_history is not None:
                history_findings = self._observe_all(files, by_file, checker)
            tasks = []
            grouped = self.engine.by_scope[Scope.PATIENT_DAY] or self.engine.by_scope[Scope.PATIENT]
            if grouped:
                sources: dict[int, list[str]] = {}
                patients: dict[int, set] = {}
                for file in files:
                    if not file.usable:
                        continue
                    for summary in by_file[file.index]:
                        for partition, path in summary.partition_spills.items():
                            sources.setdefault(partition, []).append(path)
                            patients.setdefault(partition, set()).update(summary.patients.get(partition, ()))
                for partition in sorted(sources):
                    prior = self._prior_spill(ctx, partition, patients[partition])
                    done = sources[partition] + ([prior] if prior else [])
                    tasks.append((engine.submit(group_partition, partition, sources[partition], prior), done))
            if progress is not None:
                progress.stage("edit", total=sum(f.claim_count for f in files))
            # the claims go into the store while the partitions' stage 2 runs
            self._ingest_all(files, by_file, store, findings, history_findings)
            for file in files:
                if file.usable:
                    self._envelope_findings(file, findings)
            for task, done in tasks:
                path, _count = task.result()
                for produced in read_spill(path, remove=True):
                    # stored as the worker encoded them, a claim's in the order it found them
                    store.add_encoded_findings(produced)
                for spill in done:
                    _remove(spill)
        except BaseException:
            store.close()
            if started:
                engine.close()
            if self.options.validator is not None:
                self.options.validator.close()
            raise
        engine.close()
        if self.options.validator is not None:
            self.options.validator.close()
        for file in files:
            self._tally(file, findings)
        return RunResult(store, files, findings, self.engine)

    def _assemble(self, file: FileResult, summaries: list, store: ClaimStore) -> None:
        """A file's results from the summaries of its read units (part 0 first)."""
        first = summaries[0]
        progress = self.options.on_progress
        if progress is not None and first.size:
            progress(first.size)
        if self.options.progress is not None:
            self.options.progress.advance(first.size, claims=first.claim_count)
        file.byte_count = first.size
        file.fingerprint = first.fingerprint
        file.line_break = first.line_break
        file.delimiters = first.delimiters
        error = next((s.error for s in summaries if s.error is not None), None)
        if error is None and len({s.fingerprint for s in summaries}) > 1:
            # the parts of a split file read different bytes: it changed during the run
            error = (file.name, "the file changed while it was read; it is still being written", None)
        if error is not None:
            file.error = InputError(*error)
            return
        infos = first.transactions
        for summary in summaries:
            for ts_idx, (errors, codes, checked) in summary.validation.items():
                info = infos[ts_idx]
                info.ig_errors, info.ig_transaction_codes, info.ig_checked = errors, codes, checked
        for info in infos:
            info.store = store
        file.transactions = infos
        file.empty_sets = [infos[i] for i in first.empty_sets]
        file.claim_count = first.claim_count

    def _history_checker(self) -> Optional[Engine]:
        """The claim edits that read the claim history, run here on the replacement and void
        claims (the workers' engines have no history), or None."""
        from claimscrub.partition.stages import history_rules

        if self.options.history is None:
            return None
        rules = history_rules(self.engine)
        return Engine(self.engine.ctx, rules=rules) if rules else None

    def _ingest_all(self, files: list[FileResult], by_file: dict, store: ClaimStore, findings: FindingStore,
                    history_findings: dict) -> None:
        for file in files:
            if file.usable:
                self._ingest(file, by_file[file.index], store, findings, history_findings)

    def _observe_all(self, files: list[FileResult], by_file: dict,
                     checker: Optional[Engine]) -> dict[tuple[int, int], list[Finding]]:
        """With a claim history, every claim observed in input order (its record spooled, a
        replacement or void matched), as the run in one process does while reading, before
        the priors of each partition are read for the run's patients and dates. Returns
        the findings of the edits that read the history, run here on the replacements and
        voids (few), for :meth:`_ingest` to store after the claim's own."""
        from claimscrub.history.run import decode_record

        run_history = self.options.history
        produced: dict[tuple[int, int], list[Finding]] = {}
        for file in files:
            if not file.usable:
                continue
            streams = [read_spill(summary.history_spill, remove=True) for summary in by_file[file.index]]
            for index, draft, blob in heapq.merge(*streams, key=lambda item: item[0]):
                if draft is not None:
                    patient_key, record = draft
                    run_history.observe_record(file.index, index, tuple(patient_key), decode_record(record))
                    continue
                # a replacement or void (the worker drafted no record of it): built, to be
                # matched to the claims it stands for
                claim = load_claim(blob)
                run_history.observe(claim)
                if checker is not None:
                    found = list(checker.check_claim(claim))
                    if found:
                        produced[(file.index, index)] = found
        return produced

    def _prior_spill(self, ctx, partition: int, patients: set) -> Optional[str]:
        """The lines earlier runs billed for the partition's patients, spilled for its
        stage 2 (read here, a chunk of patients at a time), or None without a history."""
        from claimscrub.history.store import CHUNK
        from claimscrub.partition.stages import SpillWriter, encode_prior_lines

        run_history = self.options.history
        if run_history is None:
            return None
        keys = [decode_key(k) for k in sorted(patients)]
        spill = SpillWriter(os.path.join(ctx.spill_dir, f"p{partition}-prior.spill"))
        try:
            for start in range(0, len(keys), CHUNK):
                for key, lines in run_history.prior_rows(keys[start:start + CHUNK]).items():
                    if lines:
                        spill.add((key, encode_prior_lines(lines)))
        finally:
            spill.close()
        return spill.path

    def _ingest(self, file: FileResult, summaries: list, store: ClaimStore, findings: FindingStore,
                history_findings: dict) -> None:
        """The claims of a file into the store in file order, merged from its read units,
        with their claim and line findings, then the findings of the edits that read the
        claim history (``history_findings``, from :meth:`_observe_all`)."""
        for summary in summaries:  # the segments outside claims, for the accepted-claims 837
            for pos, texts in read_spill(summary.others_spill, remove=True):
                store.add_segments(file.index, pos, texts)
        streams = [read_spill(summary.claims_spill, remove=True) for summary in summaries]
        claims: list[tuple] = []
        found_rows: list[tuple[int, int, bytes]] = []
        for item in heapq.merge(*streams, key=lambda item: item[1]):
            # stored as the worker encoded it (the claim is not built here), a batch at a time
            index = item[1]
            claims.append(item[:5])
            found_rows.extend((file.index, index, body) for body in item[5])
            found = history_findings.pop((file.index, index), None)
            if found:
                found_rows.extend((file.index, index, dump_finding(f)) for f in found)
            if len(claims) >= INGEST_BATCH:
                store.add_encoded(file.index, claims)
                store.add_encoded_findings(found_rows)
                claims, found_rows = [], []
        store.add_encoded(file.index, claims)
        store.add_encoded_findings(found_rows)

    # -- stage 1: read ----------------------------------------------------------------
    def _read_file(self, file: FileResult, store: ClaimStore, findings: FindingStore) -> None:
        """Read one file claim by claim: each transaction set is streamed (never held
        whole), its claims built, priced, edited and stored as they end, the segments
        outside claims stored beside them, and the set validated as it goes by."""
        reader = X12Reader(file.path, file.name)
        recorder = _Recorder(reader, store, file.index)
        validator = self.options.validator
        streaming = getattr(validator, "stream", None)
        progress = self.options.on_progress
        claim_index = 0
        last_bytes = seen_bytes = 0
        try:
            for stream in stream_transaction_sets(recorder):  # type: ignore[arg-type]
                file.delimiters = reader.delimiters
                delimiters = reader.delimiters
                assert delimiters is not None
                info = TransactionInfo.of_stream(stream, file.index, store)
                file.transactions.append(info)
                key = (file.index, stream.index)
                check = streaming(key, stream.st_pos, delimiters) if streaming is not None else None
                whole: Optional[list] = [] if validator is not None and check is None else None
                segments = _watch(stream.segments(), reader, recorder.unsafe_ids, check, whole)
                before = claim_index
                for claim in build_claims(_StreamView(stream, segments), delimiters, file.name,
                                          claim_index, file.index):
                    claim_index += 1
                    claim_segments = recorder.take(claim.pos, claim.last_pos)
                    line_allowed = price_claim(claim, self.engine.ctx.tables)
                    ref = ClaimRef(
                        file.name, claim.index, claim.claim_id, claim.pos, claim.last_pos, claim.charge,
                        line_allowed=line_allowed, unpriced_charge=unpriced_charges(claim, line_allowed),
                        file_index=file.index,
                    )
                    store.add(file.index, stream.index, claim, claim_segments, ref)
                    if self.options.history is not None:
                        self.options.history.observe(claim)
                    findings.add((file.index, claim.index), self.engine.check_claim(claim))
                    if self.options.progress is not None:
                        self.options.progress.advance(reader.bytes_read - seen_bytes, claims=1)
                        seen_bytes = reader.bytes_read
                for _ in segments:  # the rest of the set, up to SE
                    pass
                recorder.flush()
                info.se_pos = stream.se_pos
                info.segment_count = stream.segment_count
                info.ig_errors = character_errors(reader, info, recorder.unsafe_ids)
                recorder.unsafe_ids.clear()
                if claim_index == before:
                    file.empty_sets.append(info)
                if check is not None:
                    validator.done(check, lambda: _stored_set(store, file.index, stream, delimiters))
                    self._collect_validation([file], findings, block=False)
                elif whole is not None:
                    validator.submit(key, _as_set(stream, whole), delimiters)
                    self._collect_validation([file], findings, block=False)
                if progress is not None and reader.bytes_read != last_bytes:
                    progress(reader.bytes_read - last_bytes)
                    last_bytes = reader.bytes_read
            recorder.flush()
        except InputError as error:
            file.error = error
            store.drop_file(file.index)
            file.transactions = []
            file.empty_sets = []
        file.claim_count = claim_index if file.usable else 0
        file.byte_count = reader.size
        file.fingerprint = reader.fingerprint
        file.line_break = reader.line_break
        if progress is not None and reader.size > last_bytes:
            progress(reader.size - last_bytes)
        if self.options.progress is not None and reader.size > seen_bytes:
            self.options.progress.advance(reader.size - seen_bytes)

    # -- stage 1b: implementation-guide validation --------------------------------------
    def _collect_validation(self, files: list[FileResult], findings: FindingStore, block: bool) -> None:
        validator = self.options.validator
        if validator is None:
            return
        by_index = {f.index: f for f in files}
        results = self._unclaimed + list(validator.completed(block=block))
        self._unclaimed = []
        for (file_idx, ts_idx), errors, ts_codes in results:
            file = by_index.get(file_idx)
            if file is None:
                # validated in parallel, finished while a later file was read: keep it
                self._unclaimed.append(((file_idx, ts_idx), errors, ts_codes))
                continue
            if not file.usable or ts_idx >= len(file.transactions):
                continue
            info = file.transactions[ts_idx]
            info.ig_errors = _merge_errors(info.ig_errors, errors)
            info.ig_transaction_codes = ts_codes
            info.ig_checked = True

    # -- stage 1c: envelope and IG findings on every claim they reject ---------------------
    def _envelope_findings(self, file: FileResult, findings: FindingStore) -> None:
        envelope_rule = self.engine.rules.get(ENVELOPE_RULE)
        ig_rule = self.engine.rules.get(IG_RULE)
        for info in file.transactions:
            produced: list[Finding] = []
            if envelope_rule is not None:
                produced.extend(envelope_rule.check(info, self.engine.ctx))
            if ig_rule is not None and info.ig_errors:
                produced.extend(ig_rule.check(info, self.engine.ctx))
            _add_by_claim(findings, produced, lambda finding: file.index)

    # -- stage 2: patient-days ---------------------------------------------------------
    def _grouped_edits(self, store: ClaimStore, files: list[FileResult], findings: FindingStore) -> None:
        if not (self.engine.by_scope[Scope.PATIENT_DAY] or self.engine.by_scope[Scope.PATIENT]):
            return
        # lines billed in earlier runs, read in bulk a chunk of patients at a time
        run_history = self.options.history
        prior = run_history.prior_loader(store.patient_keys()) if run_history is not None else None
        for history in store.patients():
            if prior is not None:
                history = run_history.merge(history, prior.take(history.patient_key))
            produced: list[Finding] = []
            for day in history.days:
                # a day of earlier nights' lines only can have no finding on this run's claims
                if day.has_own_entries:
                    produced.extend(self.engine.check_patient_day(day))
            produced.extend(self.engine.check_patient(history))
            _add_by_claim(findings, produced, lambda finding: finding.file_index)

    # -- stage 3: dispositions ---------------------------------------------------------
    def _tally(self, file: FileResult, findings: FindingStore) -> None:
        if not file.usable:
            return
        for info in file.transactions:
            for refs in _chunks(info.claims, TALLY_CHUNK):
                # the findings of a run of claims in one read (the reads are done before
                # this run's findings are written back)
                found = findings.between(file.index, refs[0].index, refs[-1].index)
                for ref in refs:
                    self._tally_claim(file, findings, ref, found.get(ref.index, []))

    def _tally_claim(self, file: FileResult, findings: FindingStore, ref: ClaimRef,
                     stored: list[Finding]) -> None:
        # (most claims have no finding: nothing to order or price)
        claim_findings = [with_amount_at_risk(f, ref.line_allowed) for f in _dedupe(stored)] if stored else []
        file.expected_allowed += ref.expected_allowed or Decimal(0)
        file.unpriced_lines += sum(1 for amount in ref.line_allowed.values() if amount is None)
        file.amount_at_risk += claim_amount_at_risk(claim_findings, ref.line_allowed)
        unpriced_charge, unpriced_count = claim_unpriced_at_risk(claim_findings, ref.unpriced_charge)
        file.unpriced_charge_at_risk += unpriced_charge
        file.unpriced_lines_at_risk += unpriced_count
        if claim_findings:
            findings[(file.index, ref.index)] = claim_findings
        for finding in claim_findings:
            file.findings_by_rule[finding.rule] += 1
            file.findings_by_category[finding.category.value] += 1
        charge = ref.charge or Decimal(0)
        if self.options.progress is not None:
            self.options.progress.advance(1, claims=1)
        if disposition(claim_findings) == REJECTED:
            file.rejected += 1
            file.rejected_charge += charge
        else:
            file.accepted += 1
            file.accepted_charge += charge


#: Claims a partitioned run puts into its store at a time (one statement for them all).
INGEST_BATCH = 512
#: Claims whose findings the tally reads at a time (one query for them all).
TALLY_CHUNK = 512


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of up to ``size``, in order."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: A file of at least this many bytes is read by several workers when the run has few files.
SPLIT_BYTES = 1 << 20
#: About this much input per patient partition: a stage-2 task holds its partition's claims
#: (about 23 KiB each as objects, some 65 MiB per MiB of input), so partitions are many and
#: small and memory does not grow with the batch.
PARTITION_BYTES = 1 << 20


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def validator_kind(validator) -> Optional[str]:
    """The name a worker builds its own validator from ("compiled", "pyx12"), None
    without one or for a validator of the caller's own."""
    if validator is None:
        return None
    return {"CompiledValidator": "compiled", "Pyx12Validator": "pyx12"}.get(type(validator).__name__)


def partition_count(input_bytes: int, workers: int) -> int:
    """Patient partitions for a run: one per worker at least, more for a large batch so
    that what one partition holds stays bounded."""
    return max(workers, -(-input_bytes // PARTITION_BYTES))


def plan_units(files: list[FileResult], sizes: list[int], workers: int) -> list:
    """The read units of a run: a file each, and, when the run has fewer files than twice
    the workers, each large file split into one part per worker."""
    from claimscrub.partition.stages import ReadUnit

    split = len(files) < 2 * workers
    units = []
    for file, size in zip(files, sizes):
        # a file over SPLIT_BYTES is shared by the workers: one of 1.5 MiB by two
        parts = min(workers, max(1, -(-size // SPLIT_BYTES))) if split else 1
        units.extend(ReadUnit(file.index, file.path, file.name, part, parts) for part in range(parts))
    return units


def character_errors(reader: X12Reader, info: TransactionInfo, ids: dict[int, str]) -> list[IGError]:
    """Implementation-guide errors (IK403 6, invalid character) for the elements of the
    transaction set that hold a control character or a byte that is not text. They are
    found while reading, so they reject the claim with or without pyx12 validation.
    ``ids`` gives the segment id at each ordinal the reader found such a character at."""
    unsafe = reader.unsafe
    if not unsafe:
        return []
    errors = []
    for pos in [p for p in unsafe if p <= info.se_pos]:
        places = unsafe.pop(pos)
        if pos < info.st_pos:
            continue  # envelope segments: the acknowledgments clean what they copy
        for element, component, char in places:
            what = (f"a control character (0x{ord(char):02X})" if char != "\ufffd"
                    else "a byte that is not text")
            if element == 0:
                errors.append(IGError(pos, pos - info.st_pos + 1, "", "1",
                                      f"the segment identifier holds {what}"))
                continue
            errors.append(IGError(
                pos, pos - info.st_pos + 1, ids.get(pos, ""), "6",
                f"the element holds {what}, which X12 does not allow",
                element=f"{element}:{component}" if component else str(element),
            ))
    return errors


class _Recorder:
    """The reader's segments, passed on as they come, with their text kept until the claim
    they belong to is stored (:meth:`take`) or, for segments outside claims (envelopes,
    headers, HL loops), stored as they are (:meth:`flush`): what is held is one claim's
    worth of text, not a transaction set's."""

    def __init__(self, reader: X12Reader, store: ClaimStore, file_index: int):
        self.reader = reader
        self.name = reader.name
        self.store = store
        self.file_index = file_index
        self.window: deque = deque()
        #: segment ids at the ordinals where the reader found an unsafe character
        self.unsafe_ids: dict[int, str] = {}

    @property
    def delimiters(self) -> Optional[Delimiters]:
        return self.reader.delimiters

    def __iter__(self) -> Iterator[Segment]:
        window = self.window
        delimiters: Optional[Delimiters] = None
        for segment in self.reader:
            raw = segment.raw
            if raw is None:
                if delimiters is None:
                    delimiters = self.reader.delimiters
                    assert delimiters is not None
                    element = delimiters.element
                raw = element.join(segment.elements)
            window.append((segment.pos, raw))
            yield segment

    def take(self, first: int, last: int) -> list[str]:
        """The text of segments ``first``..``last`` (a claim's); what came before them
        and belongs to no claim is stored."""
        window = self.window
        gap: list[str] = []
        gap_pos = window[0][0] if window else first
        while window and window[0][0] < first:
            gap.append(window.popleft()[1])
        self.store.add_segments(self.file_index, gap_pos, gap)
        out: list[str] = []
        while window and window[0][0] <= last:
            out.append(window.popleft()[1])
        return out

    def flush(self) -> None:
        """Store what is held (called at the end of a set, when every segment read so far
        is either in a stored claim or outside claims)."""
        window = self.window
        if window:
            pos = window[0][0]
            texts = [text for _, text in window]
            window.clear()
            self.store.add_segments(self.file_index, pos, texts)


class _StreamView:
    """What :func:`claimscrub.claims.build_claims` reads of a transaction set, over a stream."""

    def __init__(self, stream: TransactionStream, segments: Iterator[Segment]):
        self.group = stream.group
        self.version = stream.version
        self.control_number = stream.control_number
        self.index = stream.index
        self.st_pos = stream.st_pos
        self.segments = segments


def _watch(segments: Iterator[Segment], reader: X12Reader, ids: dict[int, str], check,
           whole: Optional[list]) -> Iterator[Segment]:
    """The set's segments on their way to the claim builder: each is also fed to the
    streaming validator (or kept for a validator that takes whole sets), and the id of a
    segment holding an unsafe character is noted in ``ids`` for :func:`character_errors`."""
    unsafe = reader.unsafe
    feed = check.feed if check is not None else None
    for segment in segments:
        if feed is not None:
            feed(segment)
        elif whole is not None:
            whole.append(segment)
        if unsafe and segment.pos in unsafe:
            ids[segment.pos] = segment.id
        yield segment


def _as_set(stream: TransactionStream, segments: list[Segment]) -> TransactionSet:
    return TransactionSet(control_number=stream.control_number, version=stream.version,
                          segments=segments, group=stream.group, index=stream.index,
                          issues=stream.issues)


def _stored_set(store: ClaimStore, file_index: int, stream: TransactionStream,
                delimiters: Delimiters) -> TransactionSet:
    """A transaction set read back from the store (the text that was scrubbed), for the
    rare set only pyx12 itself validates."""
    element = delimiters.element
    segments = [Segment(pos, text.split(element))
                for pos, text in store.segment_texts(file_index, stream.st_pos, stream.se_pos, ts_idx=stream.index)]
    return _as_set(stream, segments)


def _merge_errors(own: list[IGError], validator: list[IGError]) -> list[IGError]:
    """The reader's character errors and the validator's, one per (segment, element, code),
    in segment order."""
    if not own:
        return validator
    seen = {(e.segment, e.element, e.code) for e in validator}
    merged = validator + [e for e in own if (e.segment, e.element, e.code) not in seen]
    return sorted(merged, key=lambda e: (e.segment is None, e.segment or 0))


def _add_by_claim(findings: FindingStore, produced: list[Finding], file_of) -> None:
    by_claim: dict[tuple[int, int], list[Finding]] = {}
    for finding in produced:
        by_claim.setdefault((file_of(finding), finding.claim_index), []).append(finding)
    for key, batch in by_claim.items():
        findings.add(key, batch)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop exact repeats (a patient-day edit may see the same pair twice) and order the
    findings by segment, errors first at the same segment."""
    seen = set()
    out = []
    for finding in findings:
        key = (finding.rule, finding.line, finding.segment, finding.message)
        if key not in seen:
            seen.add(key)
            out.append(finding)
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    out.sort(key=lambda f: (f.segment or 0, rank[f.severity], f.rule))
    return out
