"""The claim history: every run's files, claims and service lines, in SQLite or PostgreSQL.

Opened with :func:`open_history` (``sqlite:///PATH``, a bare path, or ``postgresql://...``),
which brings the schema to the newest Alembic revision shipped in the package. Reads go
through SQLAlchemy Core; a run is written in one transaction, its ``completed_at`` set last,
so a run that is killed leaves nothing. On SQLite every writing transaction takes the write
lock first (``BEGIN IMMEDIATE``), so two runs on one file take turns; on PostgreSQL a file
recorded by two runs at once collides on its unique identity, and the later run skips it.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from sqlalchemy import and_, create_engine, delete, event, func, inspect, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from claimscrub.errors import ClaimscrubError
from claimscrub.history import schema as s

#: environment variable holding the key of the patient hashes
KEY_VARIABLE = "CLAIMSCRUB_HISTORY_KEY"
MIN_KEY_LENGTH = 16
ACK_SEQUENCE = "ack_control_number"
KEY_CHECK = "key_check"
#: ISA13 is nine digits; the sequence wraps to 1 past this
ACK_MAX = 999_999_999
#: patients per bulk query (bound parameters stay well under every backend's limit)
CHUNK = 500
BILLED = "billed"
REJECTED = "rejected"


class HistoryError(ClaimscrubError):
    """A history that cannot be opened or used (exit 3, one line, no patient data)."""


# -- the key and the patient hash ---------------------------------------------------------
def load_key(key_file: Optional[str] = None, environ=os.environ) -> bytes:
    """The history key: ``CLAIMSCRUB_HISTORY_KEY``, else the key file the configuration
    names. Without one the history refuses to start."""
    value = environ.get(KEY_VARIABLE, "")
    source = KEY_VARIABLE
    if not value and key_file:
        try:
            value = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise HistoryError(f"history key file {key_file}: cannot be read ({exc.strerror})") from None
        source = f"key file {key_file}"
    if not value:
        raise HistoryError(
            f"the claim history needs a key for its patient hashes: set {KEY_VARIABLE} "
            "or history_key_file in the configuration"
        )
    if len(value) < MIN_KEY_LENGTH:
        raise HistoryError(f"the history key from {source} is too short (at least {MIN_KEY_LENGTH} characters)")
    return value.encode("utf-8")


def patient_hash(key: bytes, patient_key: Iterable[str]) -> str:
    """HMAC-SHA256 of payer + member id (+ last name, first name, birth date of a dependent),
    the patient-day key of :meth:`claimscrub.model.Claim.patient_key`."""
    message = "\x1f".join(part.strip().upper() for part in patient_key).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _key_check(key: bytes) -> str:
    return hmac.new(key, b"claimscrub history key check", hashlib.sha256).hexdigest()[:32]


# -- the URL ------------------------------------------------------------------------------
def resolve_url(value: str, base: Optional[str] = None) -> str:
    """``sqlite:///PATH`` or a bare path (relative to ``base``) -> SQLite;
    ``postgresql://...`` -> PostgreSQL through psycopg 3."""
    value = value.strip()
    if not value:
        raise HistoryError("the history URL is empty")
    if value.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if value.startswith("postgresql+"):
        return value
    if value.startswith("sqlite:///"):
        path = value[len("sqlite:///"):]
    elif "://" in value:
        scheme = value.split("://", 1)[0]
        raise HistoryError(f"history URL scheme {scheme!r} is not supported: use sqlite:///PATH, a path, or postgresql://")
    else:
        path = value
    if not os.path.isabs(path):
        path = os.path.join(base or os.getcwd(), path)
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        raise HistoryError(f"history {path}: folder {folder} does not exist")
    return "sqlite:///" + path


def display_url(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


# -- what a run records -------------------------------------------------------------------
@dataclass(slots=True)
class LineRecord:
    service_date: date
    provider_npi: str
    line_number: str
    code: str
    modifiers: list[str]
    units: Optional[Decimal]
    charge: Optional[Decimal]
    rendering_taxonomy: str
    billing_npi: str
    billing_tax_id: str
    payer_id: str
    #: ICD-10-CM codes the line points at (SV107), in pointer order
    diagnoses: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ClaimRecord:
    claim_id: str
    patient: str
    frequency_code: str
    billed: bool
    payer_claim_control_number: str
    filing_indicator: str
    payer_id: str
    place_of_service: str
    charge: Optional[Decimal]
    lines: list[LineRecord] = field(default_factory=list)
    #: the claim's diagnosis codes (HI) in position order
    diagnoses: list[str] = field(default_factory=list)


@dataclass
class FileRecord:
    name: str
    content_hash: str
    control_numbers: list[str]
    #: the file's claims, read when the run is written (a file's claims can be many)
    claims: Callable[[], Iterator[ClaimRecord]]

    @property
    def identity(self) -> str:
        return hashlib.sha256(f"{self.content_hash}|{','.join(self.control_numbers)}".encode()).hexdigest()


@dataclass
class RecordOutcome:
    run_id: int
    #: name -> (run id, date) of files an earlier run had already recorded
    skipped: dict[str, tuple[int, str]]
    #: first acknowledgment control number allocated to the run (None when none was asked)
    ack_start: Optional[int]
    claims: int = 0
    billed: int = 0
    lines: int = 0
    replaced: int = 0
    voided: int = 0


@dataclass(slots=True)
class PriorLine:
    """A line already billed in an earlier run, as the patient-day edits see it."""

    claim_pk: int
    claim_id: str
    frequency_code: str
    filing_indicator: str
    place_of_service: str
    patient: str
    service_date: date
    provider_npi: str
    line_number: str
    code: str
    modifiers: list[str]
    units: Optional[Decimal]
    charge: Optional[Decimal]
    rendering_taxonomy: str
    billing_npi: str
    billing_tax_id: str
    payer_id: str
    run_id: int
    run_date: date
    file_name: str


@contextmanager
def gc_paused():
    """Run a bulk step (thousands of short-lived, acyclic rows and models) without the cyclic
    garbage collector, which would otherwise scan the run's whole heap (rule tables, claims)
    again and again as the objects are made: about half the cost of building prior lines.
    Memory is still freed by reference counting; the collector resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _within(bounds: Optional[tuple[date, date]], day: date) -> bool:
    return bounds is not None and bounds[0] <= day <= bounds[1]


def _codes(codes: list[str], limit: int) -> str:
    """Codes comma-separated, as many whole codes as fit in ``limit`` characters."""
    text = ""
    for code in codes:
        candidate = f"{text},{code}" if text else code
        if len(candidate) > limit:
            break
        text = candidate
    return text


def file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return datetime.fromisoformat(value).date()
    return value


# -- the store ----------------------------------------------------------------------------
class History:
    """An open claim history (see the module docstring)."""

    def __init__(self, url: str, key: bytes):
        self.url = url
        self.key = key
        self.is_sqlite = url.startswith("sqlite")
        self._files: dict[int, tuple[str, int, date]] = {}
        try:
            self.engine = self._create_engine(url)
            self._retry(self._migrate)
            self._retry(self._check_key)
        except HistoryError:
            raise
        except DBAPIError as exc:
            raise HistoryError(f"history {display_url(url)}: cannot be opened ({_reason(exc)})") from None

    def _create_engine(self, url: str) -> Engine:
        if not self.is_sqlite:
            return create_engine(url, pool_pre_ping=True)
        engine = create_engine(url, connect_args={"timeout": 600})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, record):  # pragma: no cover - called by SQLAlchemy
            # let SQLAlchemy's begin event issue BEGIN itself (pysqlite's recipe)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover - called by SQLAlchemy
            # a writing transaction takes the write lock first, so concurrent runs queue
            # instead of failing half-way with "database is locked"
            write = conn.get_execution_options().get("claimscrub_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self):
        """A connection whose transaction writes (takes SQLite's write lock at BEGIN)."""
        return self.engine.connect().execution_options(claimscrub_write=True)

    def _retry(self, action, attempts: int = 5):
        """Run ``action`` again when a concurrent opener or writer got there first."""
        for attempt in range(attempts):
            try:
                return action()
            except (IntegrityError, DBAPIError) as exc:
                if attempt == attempts - 1 or not _transient(exc):
                    raise
                time.sleep(0.2 * (attempt + 1))

    def _migrate(self) -> None:
        """Bring the schema to the newest revision; a history already there is only read
        (one query, without loading Alembic: opening is part of every nightly run)."""
        with self.engine.connect() as conn:
            if inspect(conn).has_table(s.alembic_version.name):
                if conn.execute(select(s.alembic_version.c.version_num)).scalar() == s.SCHEMA_HEAD:
                    return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).with_name("alembic")))
        with self._write() as conn, conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def _check_key(self) -> None:
        check = _key_check(self.key)
        with self._write() as conn, conn.begin():
            stored = conn.execute(select(s.setting.c.text_value).where(s.setting.c.name == KEY_CHECK)).scalar()
            if stored is None:
                conn.execute(s.setting.insert().values(name=KEY_CHECK, text_value=check))
            elif stored != check:
                raise HistoryError(
                    f"history {display_url(self.url)}: the history key is not the one this history was "
                    "created with (its patient hashes would not match)"
                )

    # -- reads ------------------------------------------------------------------------
    def recorded_files(self, content_hashes: Iterable[str]) -> dict[str, tuple[int, str]]:
        """content hash -> (run id, run date) of the files already recorded."""
        hashes = sorted(set(content_hashes))
        out: dict[str, tuple[int, str]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(hashes), CHUNK):
                rows = conn.execute(
                    select(s.file.c.content_hash, s.run.c.id, s.run.c.completed_at)
                    .join(s.run, s.run.c.id == s.file.c.run_id)
                    .where(s.file.c.content_hash.in_(hashes[start:start + CHUNK]), s.run.c.completed_at.is_not(None))
                )
                for content_hash, run_id, completed in rows:
                    out.setdefault(content_hash, (run_id, _as_date(completed).isoformat()))
        return out

    def file_ids(self, content_hashes: Iterable[str]) -> set[int]:
        hashes = sorted(set(content_hashes))
        with self.engine.connect() as conn:
            return set(conn.execute(select(s.file.c.id).where(s.file.c.content_hash.in_(hashes))).scalars())

    def _file_info(self, conn: Connection, file_ids: set[int]) -> None:
        """file id -> (name, run id, run date), cached: a history has few files per night."""
        missing = sorted(i for i in file_ids if i not in self._files)
        for start in range(0, len(missing), CHUNK):
            rows = conn.execute(
                select(s.file.c.id, s.file.c.name, s.run.c.id, s.run.c.completed_at)
                .join(s.run, s.run.c.id == s.file.c.run_id).where(s.file.c.id.in_(missing[start:start + CHUNK]))
            )
            for file_id, name, run_id, completed in rows:
                if completed is not None:
                    self._files[file_id] = (name, run_id, _as_date(completed))

    def prior_lines(self, patients: Iterable[str], exclude_files: Iterable[int] = (),
                    exclude_claims: Iterable[int] = (),
                    windows: Optional[dict[str, tuple[date, date]]] = None,
                    exclude_hashes: Iterable[str] = ()) -> dict[str, list[PriorLine]]:
        """The active billed lines of the given patients, by patient, in bulk (one query per
        ``CHUNK`` patients, on the patient-day index), leaving out the given files (the
        run's own files recorded before), the files of the given content hashes (left out
        by the query itself, so a concurrent run that commits one of them between two
        queries cannot slip it in) and claims (the ones the run replaces or voids).
        With ``windows`` (patient -> first and last date), only the lines of those dates
        (a patient without a window has none). A run's rows only exist once its transaction
        committed, complete."""
        wanted = sorted(set(patients))
        excluded_files = set(exclude_files)
        excluded_claims = set(exclude_claims)
        hashes = sorted(set(exclude_hashes))
        out: dict[str, list[PriorLine]] = {}
        L, C, F = s.line, s.claim, s.file
        columns = (
            C.c.id, C.c.file_id, C.c.claim_id, C.c.frequency_code, C.c.filing_indicator, C.c.place_of_service,
            L.c.patient, L.c.service_date, L.c.provider_npi, L.c.line_number, L.c.code, L.c.modifiers,
            L.c.units, L.c.charge, L.c.rendering_taxonomy, L.c.billing_npi, L.c.billing_tax_id, L.c.payer_id,
        )
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start:start + CHUNK]
                query = (
                    select(*columns)
                    .select_from(L.join(C, C.c.id == L.c.claim_pk))
                    .where(L.c.patient.in_(chunk), L.c.active.is_(True))
                    .order_by(L.c.patient, L.c.service_date, C.c.id, L.c.id)
                )
                if hashes:
                    query = query.where(C.c.file_id.not_in(select(F.c.id).where(F.c.content_hash.in_(hashes))))
                if windows is not None:
                    bounds = [windows[p] for p in chunk if p in windows]
                    if not bounds:
                        continue
                    query = query.where(L.c.service_date >= min(b[0] for b in bounds),
                                        L.c.service_date <= max(b[1] for b in bounds))
                rows = [tuple(r) for r in conn.execute(query)
                        if r[1] not in excluded_files and r[0] not in excluded_claims]
                if windows is not None:
                    rows = [r for r in rows if _within(windows.get(r[6]), _as_date(r[7]))]
                self._file_info(conn, {r[1] for r in rows})
                for (pk, file_id, claim_id, frequency, filing, pos, patient, day, npi, number, code, modifiers,
                     units, charge, taxonomy, billing_npi, tax_id, payer) in rows:
                    info = self._files.get(file_id)
                    if info is None:
                        continue
                    out.setdefault(patient, []).append(PriorLine(
                        pk, claim_id, frequency, filing, pos, patient, _as_date(day), npi, number, code,
                        [m for m in modifiers.split(",") if m], units, charge, taxonomy, billing_npi, tax_id,
                        payer, info[1], info[2], info[0],
                    ))
        return out

    def originals(self, patient: str, references: Iterable[str]) -> list[dict]:
        """Active billed claims of the patient whose CLM01 is one of ``references`` (the
        replacement's REF*F8 or CLM01), newest first."""
        refs = sorted({r.strip() for r in references if r and r.strip()})
        if not refs:
            return []
        C, R = s.claim, s.run
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(C.c.id, C.c.claim_id, R.c.completed_at, R.c.id.label("run_id"))
                .join(R, R.c.id == C.c.run_id)
                .where(C.c.patient == patient, C.c.claim_id.in_(refs), C.c.disposition == BILLED,
                       C.c.status == "active", R.c.completed_at.is_not(None))
                .order_by(R.c.id.desc(), C.c.id.desc())
            )
            return [
                {"pk": r.id, "claim_id": r.claim_id, "run_id": r.run_id, "run_date": _as_date(r.completed_at)}
                for r in rows
            ]

    def stats(self) -> dict:
        R, F, C, L = s.run, s.file, s.claim, s.line
        with self.engine.connect() as conn:
            runs = conn.execute(select(func.count(), func.min(R.c.completed_at), func.max(R.c.completed_at))
                                .where(R.c.completed_at.is_not(None))).one()
            files = conn.execute(select(func.count()).select_from(F)).scalar()
            by_disposition = dict(conn.execute(select(C.c.disposition, func.count()).group_by(C.c.disposition)).all())
            by_status = dict(conn.execute(select(C.c.status, func.count()).where(C.c.disposition == BILLED)
                                          .group_by(C.c.status)).all())
            lines = conn.execute(select(func.count(), func.sum(func.cast(L.c.active, s.Integer)),
                                        func.min(L.c.service_date), func.max(L.c.service_date))).one()
            ack = conn.execute(select(s.setting.c.int_value).where(s.setting.c.name == ACK_SEQUENCE)).scalar()
        return {
            "runs": runs[0], "first_run": _as_date(runs[1]).isoformat() if runs[1] else "",
            "last_run": _as_date(runs[2]).isoformat() if runs[2] else "",
            "files": files, "claims_billed": by_disposition.get(BILLED, 0),
            "claims_rejected": by_disposition.get(REJECTED, 0),
            "claims_replaced": by_status.get("replaced", 0), "claims_voided": by_status.get("voided", 0),
            "lines": lines[0], "lines_active": int(lines[1] or 0),
            "first_service_date": _as_date(lines[2]).isoformat() if lines[2] else "",
            "last_service_date": _as_date(lines[3]).isoformat() if lines[3] else "",
            "last_ack_control_number": ack or 0,
        }

    # -- writes -----------------------------------------------------------------------
    def purge(self, before: date) -> dict:
        """Remove the claims (and their lines) whose dates of service all fall before
        ``before``, then files and runs left empty. One transaction."""
        C, L, F, R = s.claim, s.line, s.file, s.run
        with self._write() as conn, conn.begin():
            old = select(C.c.id).where(C.c.first_service_date < before)
            # a claim with any line on or after the cut-off is kept whole
            keep = select(L.c.claim_pk).where(L.c.service_date >= before)
            doomed = select(C.c.id).where(C.c.id.in_(old), C.c.id.not_in(keep))
            lines = conn.execute(delete(L).where(L.c.claim_pk.in_(doomed))).rowcount
            claims = conn.execute(delete(C).where(C.c.id.in_(old), C.c.id.not_in(keep))).rowcount
            files = conn.execute(delete(F).where(F.c.id.not_in(select(C.c.file_id)))).rowcount
            runs = conn.execute(delete(R).where(R.c.id.not_in(select(F.c.run_id)))).rowcount
        return {"claims": claims, "lines": lines, "files": files, "runs": runs}

    def record(self, kind: str, table_versions: list, files: list[FileRecord], ack_count: int = 0,
               started_at: Optional[datetime] = None, before_commit: Optional[Callable[[RecordOutcome], None]] = None,
               version: str = "") -> RecordOutcome:
        """Write one run in one transaction: the run, each file not recorded before, its
        claims and lines; apply replacements and voids; take ``ack_count`` numbers of the
        acknowledgment sequence; call ``before_commit`` (the run's writers) and mark the
        run complete last. A file another run recorded meanwhile is skipped, not counted twice."""
        started_at = started_at or _now()

        def attempt() -> RecordOutcome:
            with self._write() as conn, conn.begin():
                with gc_paused():
                    outcome = self._record(conn, kind, table_versions, files, ack_count, started_at, version)
                if before_commit is not None:
                    before_commit(outcome)
                conn.execute(update(s.run).where(s.run.c.id == outcome.run_id).values(completed_at=_now()))
            return outcome

        return self._retry(attempt, attempts=3)

    def _record(self, conn: Connection, kind: str, table_versions: list, files: list[FileRecord],
                ack_count: int, started_at: datetime, version: str) -> RecordOutcome:
        from claimscrub import __version__

        run_id = conn.execute(s.run.insert().values(
            kind=kind, started_at=started_at, completed_at=None, claimscrub_version=version or __version__,
            table_versions=json.dumps(table_versions, default=str, sort_keys=True),
        )).inserted_primary_key[0]
        outcome = RecordOutcome(run_id=run_id, skipped={}, ack_start=None)
        identities = [f.identity for f in files]
        done = {
            identity: (rid, _as_date(completed).isoformat() if completed else "")
            for identity, rid, completed in conn.execute(
                select(s.file.c.identity, s.run.c.id, s.run.c.completed_at)
                .join(s.run, s.run.c.id == s.file.c.run_id).where(s.file.c.identity.in_(identities))
            )
        }
        for record in files:
            if record.identity in done:
                outcome.skipped[record.name] = done[record.identity]
                continue
            self._record_file(conn, run_id, record, outcome)
            done[record.identity] = (run_id, "")
        if ack_count:
            outcome.ack_start = self._take_ack_numbers(conn, ack_count)
        return outcome

    def _record_file(self, conn: Connection, run_id: int, record: FileRecord, outcome: RecordOutcome) -> None:
        file_id = conn.execute(s.file.insert().values(
            run_id=run_id, name=record.name[:255], content_hash=record.content_hash,
            control_numbers=",".join(record.control_numbers), identity=record.identity, claims=0,
        )).inserted_primary_key[0]
        count = 0
        last_id = 0
        batch: list[ClaimRecord] = []
        for claim in record.claims():
            batch.append(claim)
            count += 1
            if len(batch) >= 1000:
                last_id = self._insert_claims(conn, run_id, file_id, batch, outcome, last_id)
                batch = []
        if batch:
            self._insert_claims(conn, run_id, file_id, batch, outcome, last_id)
        conn.execute(update(s.file).where(s.file.c.id == file_id).values(claims=count))

    def _insert_claims(self, conn: Connection, run_id: int, file_id: int, claims: list[ClaimRecord],
                       outcome: RecordOutcome, after_id: int) -> int:
        """Insert a batch of the file's claims and their lines; returns the last claim id.

        The claims go in as one executemany, without RETURNING (which SQLite can only keep in
        parameter order one row per statement), and their ids are read back: the file row
        is this transaction's own, so its claims with ids above the previous batch's are
        exactly this batch, in insertion order (ids only grow)."""
        rows = [{
            "run_id": run_id, "file_id": file_id, "claim_id": c.claim_id[:38], "patient": c.patient,
            "frequency_code": c.frequency_code[:2], "disposition": BILLED if c.billed else REJECTED,
            "status": "active", "replaced_by": None,
            "payer_claim_control_number": c.payer_claim_control_number[:50],
            "filing_indicator": c.filing_indicator[:2], "payer_id": c.payer_id[:80],
            "place_of_service": c.place_of_service[:2], "charge": c.charge,
            "first_service_date": min((l.service_date for l in c.lines), default=None),
            "diagnoses": _codes(c.diagnoses, 200),
        } for c in claims]
        conn.execute(s.claim.insert(), rows)
        ids = conn.execute(
            select(s.claim.c.id).where(s.claim.c.file_id == file_id, s.claim.c.id > after_id).order_by(s.claim.c.id)
        ).scalars().all()
        if len(ids) != len(claims):  # pragma: no cover - would mean another writer in this file's rows
            raise HistoryError(f"history: {len(ids)} claim rows read back for {len(claims)} written")
        lines = []
        for pk, c in zip(ids, claims):
            # a void stands for nothing billed; a rejected claim was not sent
            active = c.billed and c.frequency_code != "8"
            for l in c.lines:
                lines.append({
                    "claim_pk": pk, "patient": c.patient, "service_date": l.service_date,
                    "provider_npi": l.provider_npi[:15], "active": active, "line_number": l.line_number[:6],
                    "code": l.code[:48], "modifiers": ",".join(l.modifiers)[:20], "units": l.units,
                    "charge": l.charge, "rendering_taxonomy": l.rendering_taxonomy[:10],
                    "billing_npi": l.billing_npi[:15], "billing_tax_id": l.billing_tax_id[:15],
                    "payer_id": l.payer_id[:80], "diagnoses": _codes(l.diagnoses, 40),
                })
            if c.billed and c.frequency_code in ("7", "8"):
                self._apply_replacement(conn, pk, c, outcome)
        if lines:
            conn.execute(s.line.insert(), lines)
        outcome.claims += len(claims)
        outcome.billed += sum(1 for c in claims if c.billed)
        outcome.lines += len(lines)
        return ids[-1]

    def _apply_replacement(self, conn: Connection, pk: int, claim: ClaimRecord, outcome: RecordOutcome) -> None:
        C, L = s.claim, s.line
        refs = sorted({r for r in (claim.payer_claim_control_number.strip(), claim.claim_id.strip()) if r})
        originals = conn.execute(
            select(C.c.id).where(C.c.patient == claim.patient, C.c.claim_id.in_(refs), C.c.id != pk,
                                 C.c.disposition == BILLED, C.c.status == "active",
                                 C.c.frequency_code != "8")
        ).scalars().all()
        if not originals:
            return
        status = "voided" if claim.frequency_code == "8" else "replaced"
        conn.execute(update(C).where(C.c.id.in_(originals)).values(status=status, replaced_by=pk))
        conn.execute(update(L).where(L.c.claim_pk.in_(originals)).values(active=False))
        if status == "voided":
            outcome.voided += len(originals)
        else:
            outcome.replaced += len(originals)

    def _take_ack_numbers(self, conn: Connection, count: int) -> int:
        """The first of ``count`` consecutive acknowledgment control numbers; the sequence
        row is locked for the rest of the transaction (FOR UPDATE on PostgreSQL, the write
        lock on SQLite)."""
        T = s.setting
        current = conn.execute(select(T.c.int_value).where(T.c.name == ACK_SEQUENCE).with_for_update()).scalar()
        if current is None:
            conn.execute(T.insert().values(name=ACK_SEQUENCE, int_value=0))
            current = 0
        start = current + 1
        if start + count - 1 > ACK_MAX:
            start = 1
        conn.execute(update(T).where(T.c.name == ACK_SEQUENCE).values(int_value=start + count - 1))
        return start


def history_error_reason(exc: Exception) -> str:
    """One line about a database error, without the statement or its parameters."""
    return _reason(exc)


def _reason(exc: Exception) -> str:
    text = str(exc.orig) if getattr(exc, "orig", None) is not None else str(exc)
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


def _transient(exc: DBAPIError) -> bool:
    """A collision with a concurrent writer or opener, worth one more try."""
    if isinstance(exc, IntegrityError):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return any(word in text for word in ("locked", "already exists", "deadlock", "could not serialize",
                                         "duplicate key"))


def open_history(url: str, key: bytes, base: Optional[str] = None) -> History:
    return History(resolve_url(url, base), key)
