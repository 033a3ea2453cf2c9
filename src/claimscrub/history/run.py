"""The history as one run uses it: which files it already holds, what earlier nights
billed for the run's patients, which earlier claims the run's replacements and voids stand
for, and the run written back at the end."""

from __future__ import annotations

import pickle
import tempfile
from datetime import date
from typing import Iterable, Iterator, Optional

from claimscrub.grouping import REPLACEMENT_FREQUENCIES, DayLine, PatientHistory
from claimscrub.history.prior import prior_entries, window, with_prior
from claimscrub.history.store import (
    CHUNK,
    ClaimRecord,
    FileRecord,
    History,
    LineRecord,
    PriorLine,
    file_hash,
    gc_paused,
    patient_hash,
)
from claimscrub.model import Claim
from claimscrub.records import decimal_in, decimal_out



def claim_record(key: bytes, claim: Claim, billed: bool, patient: Optional[str] = None) -> ClaimRecord:
    """What the history keeps of a claim: no name, member id or birth date (``patient`` is
    the claim's patient hash when the caller has it already)."""
    record = unkeyed_record(claim, billed)
    record.patient = patient or patient_hash(key, claim.patient_key())
    return record


def unkeyed_record(claim: Claim, billed: bool) -> ClaimRecord:
    """:func:`claim_record` without the patient hash (left empty): what a worker process,
    which has no history key, makes of a claim for the parent to record."""
    record = ClaimRecord(
        claim_id=claim.claim_id,
        patient="",
        frequency_code=claim.frequency_code.strip(),
        billed=billed,
        payer_claim_control_number=claim.payer_claim_control_number.strip(),
        filing_indicator=claim.subscriber.claim_filing_indicator,
        payer_id=claim.payer.id,
        place_of_service=claim.place_of_service,
        charge=claim.charge,
        diagnoses=[dx.code for dx in sorted(claim.diagnoses, key=lambda dx: dx.position) if dx.code],
    )
    for line in claim.lines:
        if line.service_date is None or not line.procedure_code:
            continue
        record.lines.append(LineRecord(
            service_date=line.service_date,
            provider_npi=claim.line_provider_npi(line),
            line_number=line.number,
            code=line.procedure_code,
            modifiers=list(line.modifiers),
            units=line.units,
            charge=line.charge,
            rendering_taxonomy=claim.line_provider_taxonomy(line),
            billing_npi=claim.billing_provider.npi,
            billing_tax_id=claim.billing_provider.tax_id,
            payer_id=claim.payer.id,
            diagnoses=_pointed(claim, line),
        ))
    return record


def encode_record(record: ClaimRecord) -> tuple:
    """A claim record in plain values (dates as ordinals, amounts as their exact text), to
    pass between processes; :func:`decode_record` gives it back."""
    return (
        record.claim_id, record.patient, record.frequency_code, record.billed,
        record.payer_claim_control_number, record.filing_indicator, record.payer_id, record.place_of_service,
        decimal_in(record.charge), tuple(record.diagnoses),
        tuple((l.service_date.toordinal(), l.provider_npi, l.line_number, l.code, tuple(l.modifiers),
               decimal_in(l.units), decimal_in(l.charge), l.rendering_taxonomy, l.billing_npi, l.billing_tax_id,
               l.payer_id, tuple(l.diagnoses)) for l in record.lines),
    )


def decode_record(values: tuple) -> ClaimRecord:
    (claim_id, patient, frequency_code, billed, pccn, filing, payer_id, pos, charge, diagnoses, lines) = values
    return ClaimRecord(
        claim_id=claim_id, patient=patient, frequency_code=frequency_code, billed=billed,
        payer_claim_control_number=pccn, filing_indicator=filing, payer_id=payer_id, place_of_service=pos,
        charge=decimal_out(charge), diagnoses=list(diagnoses),
        lines=[LineRecord(service_date=date.fromordinal(day), provider_npi=npi, line_number=number, code=code,
                          modifiers=list(modifiers), units=decimal_out(units), charge=decimal_out(line_charge),
                          rendering_taxonomy=taxonomy, billing_npi=billing_npi, billing_tax_id=tax_id,
                          payer_id=line_payer, diagnoses=list(line_diagnoses))
               for (day, npi, number, code, modifiers, units, line_charge, taxonomy, billing_npi, tax_id,
                    line_payer, line_diagnoses) in lines],
    )


def _pointed(claim: Claim, line) -> list[str]:
    """The codes the line's diagnosis pointers name, in pointer order, each once."""
    codes: list[str] = []
    for pointer in line.diagnosis_pointers:
        dx = claim.diagnosis(pointer)
        if dx is not None and dx.code and dx.code not in codes:
            codes.append(dx.code)
    return codes


def control_numbers(transactions: Iterable) -> list[str]:
    """ISA13/GS06/ST02 of each transaction set (TransactionInfo or TransactionSet)."""
    return [f"{t.group.interchange.control_number}/{t.group.control_number}/{t.control_number}"
            for t in transactions]


class RunHistory:
    """One run's view of the history (``RuleContext.history``)."""

    def __init__(self, history: History):
        self.history = history
        self.key = history.key
        self.content_hashes: dict[str, str] = {}
        self.recorded: dict[str, tuple[int, str]] = {}
        #: (file, claim index) of a replacement or void -> the earlier claims it matches
        self._originals: dict[tuple[str, int], list[dict]] = {}
        #: ids of the history's files with the run's content hashes (recorded before)
        self._own_files: set[int] = set()
        #: patient key -> patient hash: one HMAC per patient of the run, not per claim or read
        self._hashes: dict[tuple[str, ...], str] = {}
        #: patient key -> (earliest, latest) date of service of the run's lines
        self._dates: dict[tuple[str, ...], tuple] = {}
        #: what the run will record of each claim, spooled as it is read (see observe)
        self._spool = _RecordSpool()

    def patient(self, patient_key: tuple[str, ...]) -> str:
        """The keyed hash of a patient (computed once per run)."""
        value = self._hashes.get(patient_key)
        if value is None:
            value = self._hashes[patient_key] = patient_hash(self.key, patient_key)
        return value

    def begin(self, paths: list[str]) -> None:
        """Hash the inputs and look up which of them an earlier run already recorded."""
        for path in paths:
            try:
                self.content_hashes[path] = file_hash(path)
            except OSError:
                continue  # the reader reports an unreadable input
        self.recorded = self.history.recorded_files(self.content_hashes.values())
        if self.recorded:
            self._own_files = self.history.file_ids(self.recorded)

    def already_recorded(self, path: str) -> Optional[tuple[int, str]]:
        """(run id, date) of the earlier run that recorded this very file, if any."""
        content_hash = self.content_hashes.get(path)
        return self.recorded.get(content_hash) if content_hash else None

    # -- replacements and voids ------------------------------------------------------------
    def observe(self, claim: Claim) -> None:
        """As a claim is read: spool what the history will record of it (so the run's end
        need not read the claims back), and match a replacement or void claim to the
        earlier claims it stands for (by REF*F8 or CLM01, same patient)."""
        patient_key = claim.patient_key()
        patient = self.patient(patient_key)
        self._spool_record(claim.file_index, claim.index, patient_key, claim_record(self.key, claim, True, patient))
        if claim.frequency_code.strip() not in REPLACEMENT_FREQUENCIES:
            return
        refs = [claim.payer_claim_control_number, claim.claim_id]
        self._originals[(claim.file, claim.index)] = self.history.originals(patient, refs)

    def observe_record(self, file_index: int, claim_index: int, patient_key: tuple[str, ...],
                       record: ClaimRecord) -> None:
        """:meth:`observe` for a claim that is neither a replacement nor a void, from the
        record a worker made of it (:func:`unkeyed_record`): the claim need not be built."""
        record.patient = self.patient(patient_key)
        self._spool_record(file_index, claim_index, patient_key, record)

    def _spool_record(self, file_index: int, claim_index: int, patient_key: tuple[str, ...],
                      record: ClaimRecord) -> None:
        self._spool.add(file_index, claim_index, record)
        if record.lines:
            first = min(line.service_date for line in record.lines)
            last = max(line.service_date for line in record.lines)
            known = self._dates.get(patient_key)
            self._dates[patient_key] = (min(first, known[0]), max(last, known[1])) if known else (first, last)

    def originals_of(self, claim: Claim) -> Optional[list[dict]]:
        """The earlier billed claims a replacement or void matches ([] for none), or None
        for a claim that is neither."""
        return self._originals.get((claim.file, claim.index))

    # -- prior lines ---------------------------------------------------------------------
    def prior_for(self, patient_keys: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], list[DayLine]]:
        """The lines earlier runs billed for these patients, as prior entries, in one bulk read
        (see :meth:`prior_rows`)."""
        rows = self.prior_rows(patient_keys)
        with gc_paused():
            return {key: prior_entries(lines) for key, lines in rows.items()}

    def prior_rows(self, patient_keys: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], list[PriorLine]]:
        """The lines earlier runs billed for these patients, as the history holds them, in
        one bulk read (a partitioned run hands them to its workers as they are, and each
        worker makes its prior entries).

        Left out: lines of this run's own files recorded before (scrubbing a file again
        judges it as the first time) and the claims this run's replacements and voids
        stand for (the replacement takes their place)."""
        by_hash = {self.patient(key): key for key in patient_keys}
        replaced = {o["pk"] for items in self._originals.values() for o in items}
        # read again here, not only at the start: a concurrent run may have recorded one of
        # this run's files since, and a file is never a prior of itself
        own = self._own_files | self.history.file_ids(self.content_hashes.values())
        # only the lines that can matter to the run's dates (see claimscrub.history.prior)
        windows = {h: window(*self._dates[key]) for h, key in by_hash.items() if key in self._dates}
        with gc_paused():
            lines = self.history.prior_lines(by_hash, exclude_files=own, exclude_claims=replaced, windows=windows,
                                             exclude_hashes=self.content_hashes.values())
        return {by_hash[h]: rows for h, rows in lines.items()}

    def prior_loader(self, patient_keys: list[tuple[str, ...]]) -> "PriorLoader":
        """Prior entries for the run's patients, read in bulk ``CHUNK`` patients at a time
        in the order the run visits them (memory stays per chunk, not per history)."""
        return PriorLoader(self, patient_keys)

    @staticmethod
    def merge(history: PatientHistory, entries: Optional[list[DayLine]]) -> PatientHistory:
        return with_prior(history, entries or [])

    # -- the run written back ------------------------------------------------------------
    def file_records(self, run) -> list[FileRecord]:
        """The run's usable files; their claims are read back from the run's disk store
        while the history is written (memory stays flat with the batch), billed unless an
        error rejected them."""
        from claimscrub.scrub import REJECTED, disposition

        rejected = {key for key, findings in run.findings.items() if disposition(findings) == REJECTED}
        records = []
        for file in run.files:
            if not file.usable or file.path not in self.content_hashes:
                continue

            def claims(file=file) -> Iterator[ClaimRecord]:
                for claim_index, record in self._spool.read(file.index):
                    record.billed = (file.index, claim_index) not in rejected
                    yield record

            records.append(FileRecord(file.name, self.content_hashes[file.path],
                                      control_numbers(file.transactions), claims))
        return records


class PriorLoader:
    """Reads the history of the run's patients a chunk at a time, ahead of the patient the
    run is judging; ``patient_keys`` must be in the order the run visits the patients."""

    def __init__(self, run_history: RunHistory, patient_keys: list[tuple[str, ...]]):
        self.run_history = run_history
        self.keys = patient_keys
        self.position = 0
        self.loaded: dict[tuple[str, ...], list[DayLine]] = {}
        self.pending: set[tuple[str, ...]] = set()

    def take(self, patient_key: tuple[str, ...]) -> list[DayLine]:
        while patient_key not in self.pending and self.position < len(self.keys):
            chunk = self.keys[self.position:self.position + CHUNK]
            self.position += len(chunk)
            self.loaded = self.run_history.prior_for(chunk)
            self.pending = set(chunk)
        self.pending.discard(patient_key)
        return self.loaded.pop(patient_key, [])


class _RecordSpool:
    """The claim records of a run in an unnamed temporary file (deleted when closed or when
    the process ends), in read order, pickled a batch at a time (a batch never spans two
    inputs), with each input's span: memory stays flat with the batch, and the run's end
    reads small records instead of whole claims. Records hold patient hashes, codes, dates
    and provider numbers only."""

    BATCH = 256

    def __init__(self):
        self._file = None
        self._spans: dict[int, list[int]] = {}
        self._buffer: list[tuple[int, ClaimRecord]] = []
        self._buffer_file: Optional[int] = None

    def add(self, file_index: int, claim_index: int, record: ClaimRecord) -> None:
        if self._buffer_file != file_index or len(self._buffer) >= self.BATCH:
            self._flush()
            self._buffer_file = file_index
        self._buffer.append((claim_index, record))

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="claimscrub-history-")
        self._file.seek(0, 2)
        span = self._spans.get(self._buffer_file)
        if span is None:
            span = self._spans[self._buffer_file] = [self._file.tell(), 0]
        pickle.dump(self._buffer, self._file, pickle.HIGHEST_PROTOCOL)
        span[1] = self._file.tell()
        self._buffer = []

    def read(self, file_index: int) -> Iterator[tuple[int, ClaimRecord]]:
        self._flush()
        span = self._spans.get(file_index)
        if span is None or self._file is None:
            return
        self._file.flush()
        position = span[0]
        while position < span[1]:
            self._file.seek(position)
            batch = pickle.load(self._file)
            position = self._file.tell()
            yield from batch

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
