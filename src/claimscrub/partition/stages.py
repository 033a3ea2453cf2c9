"""The two stage functions a partitioned run hands to its engine, and the spill files
between them. Both take a :class:`StageContext` first; they run in worker processes (or on
Dask workers) and return small summaries, the claims themselves going through spills."""

from __future__ import annotations

import hashlib
import marshal
import os
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Iterator, Optional

from claimscrub.claims import ClaimSpan, build_claims
from claimscrub.engine import Engine, RuleContext, Scope
from claimscrub.errors import InputError
from claimscrub.grouping import (
    REPLACEMENT_FREQUENCIES,
    PatientHistory,
    encode_key,
    line_group_key,
    patient_histories,
)
from claimscrub.pricing import price_claim, unpriced_charges
from claimscrub.records import decimal_in, decimal_out, dump_claim, dump_finding, dump_ref, load_claim
from claimscrub.store import ClaimRef, encode_texts
from claimscrub.x12.envelope import TransactionSet, iter_transaction_sets, stream_transaction_sets
from claimscrub.x12.reader import X12Reader

if TYPE_CHECKING:
    from claimscrub.history.store import PriorLine

#: The claims of a file split into parts are dealt to the parts in chunks of this many
#: (in file order), whatever transaction set they are in.
CLAIM_CHUNK = 256
#: Items per batch of a spill file (what a reader holds at a time).
SPILL_BATCH = 512
#: Claims a read unit holds in the buffers of its partition spills together: each spill's
#: batch is this shared out between the partitions, so what a worker holds does not grow
#: with the number of partitions (which grows with the batch).
PARTITION_BUFFER = 4096


def partition_of(encoded_patient_key: str, partitions: int) -> int:
    """The partition of a patient: a stable hash of the patient key (the same in every
    process and on every machine, unlike Python's ``hash``)."""
    digest = hashlib.blake2b(encoded_patient_key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


# -- spills --------------------------------------------------------------------------------


class SpillWriter:
    """Appends items to a file in batches of :data:`SPILL_BATCH`, written with :mod:`marshal`.

    Items are plain values only (tuples, lists, strings, bytes, numbers): claims and
    findings go in as their compact records (:mod:`claimscrub.records`), never as pickled
    models. A spill lives only as long as the run that wrote it."""

    def __init__(self, path: str, batch: int = 0):
        self.path = path
        self.batch = batch or SPILL_BATCH
        self.count = 0
        self._batch: list = []
        self._handle = open(path, "wb")

    def add(self, item) -> None:
        self._batch.append(item)
        self.count += 1
        if len(self._batch) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            marshal.dump(self._batch, self._handle)
            self._batch = []

    def close(self) -> None:
        if self._handle is not None:
            self._flush()
            self._handle.close()
            self._handle = None


def read_spill(path: str, remove: bool = False) -> Iterator:
    """The items of a spill file in the order written, a batch in memory at a time."""
    with open(path, "rb") as handle:
        while True:
            try:
                batch = marshal.load(handle)
            except EOFError:
                break
            yield from batch
    if remove:
        try:
            os.remove(path)
        except OSError:
            pass


# -- what a worker needs -------------------------------------------------------------------


@dataclass
class StageContext:
    """The run's settings, as every worker needs them (pickled once per worker)."""

    as_of: date
    config: object
    tables: object
    #: "compiled", "pyx12" or None (no implementation-guide validation)
    validator: Optional[str]
    spill_dir: str
    partitions: int
    #: whether the run has a claim history (the parent then reads each partition's
    #: patients' earlier lines, so the read units name their patients)
    history: bool = False
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


_engines: dict[str, Engine] = {}


def stage_engine(ctx: StageContext) -> Engine:
    """The edit engine of this worker for the run (built once per process). It has no
    claim history: the parent runs the edits that read the history (see
    :func:`history_rules`) and hands stage 2 the prior lines."""
    engine = _engines.get(ctx.token)
    if engine is None:
        _engines.clear()
        engine = Engine(RuleContext(tables=ctx.tables, config=ctx.config, as_of=ctx.as_of, history=None))
        _engines[ctx.token] = engine
    return engine


def history_rules(engine: Engine) -> dict:
    """The claim- and line-scope edits that read the claim history (``reads_history``):
    the parent runs them on the replacement and void claims it matched to the history."""
    return {
        rule_id: type(rule) for rule_id, rule in engine.rules.items()
        if getattr(rule, "reads_history", False) and rule.scope in (Scope.CLAIM, Scope.LINE)
    }


def warm(ctx: StageContext, path: str, name: str) -> None:
    """Load what the edits load on first use (code sets, tables) by checking the first
    claim of ``path`` here, before the workers are forked, so they share it."""
    from claimscrub.scrub import _StreamView

    engine = stage_engine(ctx)
    try:
        reader = X12Reader(path, name)
        for stream in stream_transaction_sets(reader):  # streamed: only the first claim is read
            for claim in build_claims(_StreamView(stream, stream.segments()), reader.delimiters, name, 0, 0):
                price_claim(claim, ctx.tables)
                engine.check_claim(claim)
                return
    except Exception:  # noqa: BLE001 - the reading stage reports what is wrong with the file
        return


def _validator(kind: Optional[str]):
    if kind is None:
        return None
    if kind == "compiled":
        from claimscrub.guide import CompiledValidator

        return CompiledValidator()
    from claimscrub.validate import Pyx12Validator

    return Pyx12Validator(jobs=1)


# -- stage 1: read ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadUnit:
    file_index: int
    path: str
    name: str
    part: int
    parts: int

    def spill(self, ctx: StageContext, what: str) -> str:
        return os.path.join(ctx.spill_dir, f"f{self.file_index}-u{self.part}-{what}.spill")


@dataclass
class ReadSummary:
    unit: ReadUnit
    #: (file, detail, segment) of the InputError that made the file unusable
    error: Optional[tuple] = None
    delimiters: object = None
    size: int = 0
    fingerprint: Optional[tuple] = None
    #: every transaction set's TransactionInfo (part 0 only; envelope issues complete)
    transactions: Optional[list] = None
    #: ts index -> (ig_errors, ig_transaction_codes, ig_checked) for the sets this part validated
    validation: dict = field(default_factory=dict)
    #: ts indexes of the sets holding no claim (part 0 only)
    empty_sets: list = field(default_factory=list)
    claim_count: int = 0
    #: partition -> encoded patient keys of this part's dated lines (with a claim history)
    patients: dict = field(default_factory=dict)
    #: the spill of this part's claims, encoded as the store keeps them: (ts index, claim
    #: index, claim, segment texts, ref, findings)
    claims_spill: str = ""
    #: with a claim history, the spill of what the history will record of this part's
    #: claims: (claim index, record draft, claim) with the claim only for a replacement or
    #: void (see :func:`_history_draft`)
    history_spill: str = ""
    #: what follows a segment terminator in the file ("", "\n", "\r\n"): the accepted 837 keeps it
    line_break: str = ""
    #: the spill of the segments outside claims this part keeps: (ordinal, texts) runs
    others_spill: str = ""
    #: partition -> spill of (claim, day rows) for stage 2
    partition_spills: dict = field(default_factory=dict)


def read_unit(ctx: StageContext, unit: ReadUnit) -> ReadSummary:
    """Stage 1 of one read unit: what :meth:`claimscrub.scrub.Scrubber._read_file` does for
    a whole file, for this part's share of it. Every part streams the whole file (each
    transaction set read as it goes by, never held whole); the file's claims are dealt
    between the parts in chunks of :data:`CLAIM_CHUNK`, each part building, pricing and
    editing only its own, and each transaction set is validated by one part (dealt round
    robin), which also keeps the set's segments outside claims; part 0 keeps the
    envelope's. What a part holds is one claim's worth, whatever the size of the set."""
    from claimscrub.scrub import TransactionInfo, _as_set, _merge_errors, _StreamView, _watch, character_errors

    engine = stage_engine(ctx)
    validator = _validator(ctx.validator)
    streaming = getattr(validator, "stream", None)
    summary = ReadSummary(unit=unit, claims_spill=unit.spill(ctx, "claims"), others_spill=unit.spill(ctx, "others"))
    main = SpillWriter(summary.claims_spill)
    drafts: Optional[SpillWriter] = None
    if ctx.history:
        summary.history_spill = unit.spill(ctx, "history")
        drafts = SpillWriter(summary.history_spill)
    spills: dict[int, SpillWriter] = {}
    reader = X12Reader(unit.path, unit.name)
    recorder = _PartRecorder(reader, SpillWriter(summary.others_spill), envelope=unit.part == 0)
    infos = []
    claim_index = 0
    chunk, parts, part = CLAIM_CHUNK, unit.parts, unit.part
    batch = max(16, min(SPILL_BATCH, PARTITION_BUFFER // max(1, ctx.partitions)))

    def mine(index: int) -> bool:
        return (index // chunk) % parts == part

    try:
        for stream in stream_transaction_sets(recorder):  # type: ignore[arg-type]
            summary.delimiters = delimiters = reader.delimiters
            info = TransactionInfo.of_stream(stream, unit.file_index)
            infos.append(info)
            own_set = stream.index % parts == part
            recorder.begin_set(stream.st_pos, own_set)
            check = whole = None
            if own_set and validator is not None:
                if streaming is not None:
                    check = streaming((unit.file_index, stream.index), stream.st_pos, delimiters)
                else:
                    whole = []  # a validator of whole sets (pyx12 itself)
            unsafe_ids: dict[int, str] = {}
            segments = _watch(stream.segments(), reader, unsafe_ids, check, whole)
            before = claim_index
            for claim in build_claims(_StreamView(stream, segments), delimiters, unit.name, claim_index,
                                      unit.file_index, wanted=mine):
                claim_index += 1
                if isinstance(claim, ClaimSpan):
                    recorder.take(claim.pos, claim.last_pos, keep=False)
                    continue
                claim_texts = recorder.take(claim.pos, claim.last_pos, keep=True)
                line_allowed = price_claim(claim, ctx.tables)
                ref = ClaimRef(
                    unit.name, claim.index, claim.claim_id, claim.pos, claim.last_pos, claim.charge,
                    line_allowed=line_allowed, unpriced_charge=unpriced_charges(claim, line_allowed),
                    file_index=unit.file_index,
                )
                # encoded once for both spills (the parent's and the partition's)
                blob = dump_claim(claim)
                rows = []
                for line_idx, line in enumerate(claim.lines):
                    key = line_group_key(claim, line)
                    if key is not None:
                        patient, day, provider = key
                        rows.append((encode_key(patient), day.isoformat(), provider,
                                     unit.file_index, claim.index, line_idx))
                # the parent stores the claim as encoded here (its patient-days are the
                # partitions' alone: the parent never groups them)
                main.add((stream.index, claim.index, blob, encode_texts(claim_texts), dump_ref(ref),
                          [dump_finding(f) for f in engine.check_claim(claim)]))
                if drafts is not None:
                    draft = _history_draft(claim)
                    drafts.add((claim.index, draft, blob if draft is None else None))
                if rows:
                    # one patient per claim: every line of the claim goes to one partition
                    partition = partition_of(rows[0][0], ctx.partitions)
                    spill = spills.get(partition)
                    if spill is None:
                        spill = spills[partition] = SpillWriter(unit.spill(ctx, f"p{partition}"), batch=batch)
                    spill.add((blob, rows))
                    if ctx.history:
                        summary.patients.setdefault(partition, set()).update(row[0] for row in rows)
            for _ in segments:  # the rest of the set, up to SE
                pass
            recorder.end_set(stream.se_pos)
            info.se_pos = stream.se_pos
            info.segment_count = stream.segment_count
            info.ig_errors = character_errors(reader, info, unsafe_ids)
            if claim_index == before:
                summary.empty_sets.append(stream.index)
            if own_set:
                errors, codes, checked = info.ig_errors, [], False
                if validator is not None:
                    if check is not None:
                        validator.done(check, lambda index=stream.index: _reread_set(unit, index))
                    else:
                        validator.submit((unit.file_index, stream.index), _as_set(stream, whole), delimiters)
                    for _key, found, ts_codes in validator.completed(block=True):
                        errors, codes, checked = _merge_errors(info.ig_errors, found), ts_codes, True
                summary.validation[stream.index] = (errors, codes, checked)
        recorder.flush()
    except InputError as error:
        summary.error = (error.file, error.detail, error.segment)
    finally:
        recorder.spill.close()
        main.close()
        if drafts is not None:
            drafts.close()
        for spill in spills.values():
            spill.close()
        if validator is not None:
            validator.close()
    summary.partition_spills = {p: s.path for p, s in spills.items()}
    summary.claim_count = claim_index
    summary.size = reader.size
    summary.fingerprint = reader.fingerprint
    summary.line_break = reader.line_break
    if unit.part == 0:
        summary.transactions = infos
    return summary


def _history_draft(claim) -> Optional[tuple]:
    """What the claim history will record of a claim, without the patient hash (this
    process has no history key): the parent hashes the patient and records it without
    building the claim again. None for a replacement or void, which the parent builds
    to match to the claims it stands for."""
    from claimscrub.history.run import encode_record, unkeyed_record  # not imported without a history

    if claim.frequency_code.strip() in REPLACEMENT_FREQUENCIES:
        return None
    return claim.patient_key(), encode_record(unkeyed_record(claim, True))


def _reread_set(unit: ReadUnit, index: int) -> TransactionSet:
    """Transaction set ``index`` of the unit's file read again whole, for the rare set the
    compiled guide hands to pyx12 itself."""
    for ts in iter_transaction_sets(X12Reader(unit.path, unit.name)):
        if ts.index == index:
            return ts
    raise InputError(unit.name, "the file changed while it was read; it is still being written")


class _PartRecorder:
    """The reader's segments, passed on as they come, with the text of each held until it
    is known to be in one of this part's claims (:meth:`take` returns it), in another
    part's claim (dropped) or outside claims (spilled when this part keeps it: the
    envelope's segments in part 0, a set's in the part that owns the set). With the claims'
    own segments they are every segment that was scrubbed, which the accepted-claims 837 is
    written from, as :class:`claimscrub.scrub._Recorder` keeps them in one process. What is
    held is one claim's worth of text, not a set's."""

    def __init__(self, reader: X12Reader, spill: "SpillWriter", envelope: bool):
        self.reader = reader
        self.name = reader.name
        self.spill = spill
        self.envelope = envelope
        self.window: deque = deque()
        self._st_pos: Optional[int] = None
        self._own_set = False

    def __getattr__(self, name: str):
        return getattr(self.reader, name)

    def __iter__(self):
        window = self.window
        element = None
        for segment in self.reader:
            raw = segment.raw
            if raw is None:
                if element is None:
                    element = self.reader.delimiters.element
                raw = element.join(segment.elements)
            window.append((segment.pos, raw))
            yield segment

    def begin_set(self, st_pos: int, own_set: bool) -> None:
        self._st_pos, self._own_set = st_pos, own_set

    def take(self, first: int, last: int, keep: bool) -> list[str]:
        """The text of segments ``first``..``last`` (a claim's; empty unless ``keep``),
        after what came before them and belongs to no claim is spilled or dropped."""
        self._outside(first)
        window = self.window
        out: list[str] = []
        while window and window[0][0] <= last:
            text = window.popleft()[1]
            if keep:
                out.append(text)
        return out

    def end_set(self, se_pos: int) -> None:
        self._outside(se_pos + 1)
        self._st_pos = None

    def flush(self) -> None:
        self._outside(None)

    def _outside(self, before: Optional[int]) -> None:
        """Segments outside claims read before ordinal ``before`` (all with None): kept
        in runs of consecutive ordinals, or dropped."""
        window = self.window
        st_pos = self._st_pos
        run: list[str] = []
        start = 0
        while window and (before is None or window[0][0] < before):
            pos, text = window.popleft()
            inside = st_pos is not None and pos >= st_pos
            if not (self._own_set if inside else self.envelope):
                continue
            if run and pos != start + len(run):
                self.spill.add((start, run))
                run = []
            if not run:
                start = pos
            run.append(text)
        if run:
            self.spill.add((start, run))


# -- stage 2: patient-days and patients ------------------------------------------------------


def partition_histories(rows: list[tuple], claims: dict) -> Iterator[PatientHistory]:
    """Every patient of the partition with their patient-days, in key order: the same
    histories, in the same order, as :meth:`claimscrub.store.ClaimStore.patients` gives
    for these patients."""
    rows.sort()
    return patient_histories(rows, lambda file_idx, claim_idx: claims[(file_idx, claim_idx)])


def group_partition(ctx: StageContext, partition: int, sources: list[str],
                    prior_spill: Optional[str]) -> tuple[str, int]:
    """Stage 2 of one partition: the patient-day and patient edits of its patients, with
    the lines earlier runs billed for them (``prior_spill``: patient key -> prior entries,
    or None without a claim history). Returns the spill of its findings, in batches of
    ``(file index, claim index, encoded finding)``, and the number of batches."""
    from claimscrub.history.prior import prior_entries, with_prior
    from claimscrub.history.store import gc_paused

    engine = stage_engine(ctx)
    claims: dict[tuple[int, int], object] = {}
    rows: list[tuple] = []
    for source in sources:
        # not removed here: a task whose worker dies runs again from the same spills
        for blob, claim_rows in read_spill(source):
            claim = load_claim(blob)
            claims[(claim.file_index, claim.index)] = claim
            rows.extend(claim_rows)
    priors: Optional[dict] = None
    if prior_spill is not None:
        with gc_paused():
            priors = {tuple(key): prior_entries(decode_prior_lines(data)) for key, data in read_spill(prior_spill)}
    out = SpillWriter(os.path.join(ctx.spill_dir, f"p{partition}-findings.spill"))
    try:
        if engine.by_scope[Scope.PATIENT_DAY] or engine.by_scope[Scope.PATIENT]:
            for history in partition_histories(rows, claims):
                if priors is not None:
                    history = with_prior(history, priors.pop(history.patient_key, None) or [])
                produced = []
                for day in history.days:
                    if day.has_own_entries:
                        produced.extend(engine.check_patient_day(day))
                produced.extend(engine.check_patient(history))
                if produced:
                    # with the claim each is on, so the parent stores them as encoded here
                    out.add([(f.file_index, f.claim_index, dump_finding(f)) for f in produced])
    finally:
        out.close()
    return out.path, out.count


# -- earlier nights' lines in a spill --------------------------------------------------------


def encode_prior_lines(lines: list[PriorLine]) -> tuple:
    """Lines earlier nights billed, as the history holds them, in plain values (dates as
    ordinals, amounts as their exact text): the worker makes the prior entries itself."""
    return tuple(
        (l.claim_pk, l.claim_id, l.frequency_code, l.filing_indicator, l.place_of_service, l.patient,
         l.service_date.toordinal(), l.provider_npi, l.line_number, l.code, tuple(l.modifiers),
         decimal_in(l.units), decimal_in(l.charge),
         l.rendering_taxonomy, l.billing_npi, l.billing_tax_id, l.payer_id, l.run_id, l.run_date.toordinal(),
         l.file_name)
        for l in lines
    )


def decode_prior_lines(data: tuple) -> list[PriorLine]:
    from claimscrub.history.store import PriorLine

    fromordinal = date.fromordinal
    return [
        PriorLine(pk, claim_id, frequency, filing, pos, patient, fromordinal(day), npi, number, code,
                  list(modifiers), decimal_out(units), decimal_out(charge), taxonomy, billing_npi, tax_id, payer,
                  run_id, fromordinal(run_date), file_name)
        for (pk, claim_id, frequency, filing, pos, patient, day, npi, number, code, modifiers, units, charge,
             taxonomy, billing_npi, tax_id, payer, run_id, run_date, file_name) in data
    ]
