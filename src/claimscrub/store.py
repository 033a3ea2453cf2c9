"""A disk-backed store of the run's claims and findings, so memory does not grow with
the batch.

Claims are read one transaction set at a time and written here as compact records (plain
tuples, :mod:`claimscrub.records`; never pickles of models), with the text of their own
segments and a small reference record: id, span, charge, priced lines. Grouping
into patient-days is an indexed query; the envelope, validation and tally stages read the
references of one transaction set at a time; the writers read claims and findings back in
file order. What stays in memory is per transaction set, not per claim.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Iterator, Optional

from claimscrub.grouping import (
    PatientHistory,
    decode_key,
    encode_key,
    line_group_key,
    patient_histories,
)
from claimscrub.findings import Finding
from claimscrub.model import Claim
from claimscrub.pricing import total_allowed
from claimscrub.records import dump_claim, dump_finding, dump_ref, load_claim, load_finding, load_ref

_SCHEMA = """
CREATE TABLE claim (
    file_idx INTEGER NOT NULL,
    claim_idx INTEGER NOT NULL,
    ts_idx INTEGER NOT NULL,
    -- the small reference first: reading it (refs, per transaction set) never walks the
    -- overflow pages of the claim's body and segments
    ref BLOB NOT NULL,
    body BLOB NOT NULL,
    segments BLOB NOT NULL,
    PRIMARY KEY (file_idx, claim_idx)
) WITHOUT ROWID;
CREATE INDEX claim_by_ts ON claim (file_idx, ts_idx, claim_idx);
CREATE TABLE other (
    file_idx INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    segments BLOB NOT NULL,
    PRIMARY KEY (file_idx, pos)
) WITHOUT ROWID;
CREATE TABLE finding (
    file_idx INTEGER NOT NULL,
    claim_idx INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX finding_by_claim ON finding (file_idx, claim_idx);
CREATE TABLE day_line (
    patient TEXT NOT NULL,
    day TEXT NOT NULL,
    provider TEXT NOT NULL,
    file_idx INTEGER NOT NULL,
    claim_idx INTEGER NOT NULL,
    line_idx INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class ClaimRef:
    """Enough of a claim to attach a finding to it without loading it."""

    file: str
    index: int
    claim_id: str
    pos: int
    last_pos: int
    charge: Optional[Decimal] = None
    #: expected allowed amount of each line by LX01 (claimscrub.pricing); None = not priced
    line_allowed: dict = field(default_factory=dict, compare=False)
    #: billed charge of each line that could not be priced, by LX01 (claimscrub.pricing)
    unpriced_charge: dict = field(default_factory=dict, compare=False)
    #: the input's ordinal in the run
    file_index: int = -1

    @property
    def expected_allowed(self) -> Optional[Decimal]:
        return total_allowed(self.line_allowed)


def encode_texts(segments: list[str]) -> bytes:
    """Segment texts as one value (any character may be in a segment of bad input)."""
    return marshal.dumps(tuple(segments))


#: Prefix of a run's private store folder (mode 0700) in --work-dir or the temp folder.
STORE_PREFIX = "claimscrub-run-"
_LOCK = "in-use.lock"
#: store folders of this process, removed on SIGTERM/SIGINT (claimscrub.cli)
_live_dirs: set[str] = set()


def remove_stale_stores(directory: Optional[str] = None) -> int:
    """Remove store folders a killed run (kill -9, power loss) left behind: those whose
    lock no live process holds. They hold patient data. Returns how many were removed."""
    import fcntl
    import shutil

    base = directory or tempfile.gettempdir()
    removed = 0
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(STORE_PREFIX):
            continue
        path = os.path.join(base, name)
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
            fd = os.open(os.path.join(path, _LOCK), os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a running claimscrub holds it
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)
        removed += 1
    return removed


def remove_live_stores() -> None:
    """Remove this process's store folders (called on a termination signal)."""
    import shutil

    for path in list(_live_dirs):
        shutil.rmtree(path, ignore_errors=True)
        _live_dirs.discard(path)


class ClaimStore:
    """The run's claims in SQLite, in a private folder (0700) holding a lock for as long as
    the run lives, so the next run can tell a folder left by a killed run and remove it."""

    def __init__(self, directory: Optional[str] = None, cache_size: int = 512):
        import fcntl

        remove_stale_stores(directory)
        self._dir = tempfile.TemporaryDirectory(prefix=STORE_PREFIX, dir=directory)
        _live_dirs.add(self._dir.name)
        self._lock = os.open(os.path.join(self._dir.name, _LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = os.path.join(self._dir.name, "claims.sqlite")
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA temp_store=FILE")
        self.db.executescript(_SCHEMA)
        self.db.execute("BEGIN")
        self._cache: OrderedDict[tuple[int, int], Claim] = OrderedDict()
        self._cache_size = cache_size
        self._indexed = False
        #: the references of the last few transaction sets read, when small (edits and
        #: writers walk a set's claims several times; a large set is read each time)
        self._refs: OrderedDict[tuple[int, int], list[ClaimRef]] = OrderedDict()

    def commit(self) -> None:
        """Make everything added so far visible to other connections (the writer processes
        of :mod:`claimscrub.partition.writers`), indexed as the readers need it, and go on
        in a new transaction."""
        self._finish_loading()
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def reopen_for_reading(self) -> None:
        """In a process forked from the run's: a connection of its own, reading only (an
        inherited SQLite connection must not be used across a fork)."""
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA query_only=ON")

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()
        _live_dirs.discard(self._dir.name)
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def __enter__(self) -> "ClaimStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, file_idx: int, ts_idx: int, claim: Claim, segments: list[str], ref: ClaimRef) -> None:
        self._refs.pop((file_idx, ts_idx), None)
        self.db.execute(
            "INSERT INTO claim (file_idx, claim_idx, ts_idx, body, segments, ref) VALUES (?, ?, ?, ?, ?, ?)",
            (file_idx, claim.index, ts_idx, dump_claim(claim), encode_texts(segments), dump_ref(ref)),
        )
        rows = []
        for line_idx, line in enumerate(claim.lines):
            key = line_group_key(claim, line)
            if key is None:
                continue
            patient, day, provider = key
            rows.append((encode_key(patient), day.isoformat(), provider, file_idx, claim.index, line_idx))
        if rows:
            self.db.executemany("INSERT INTO day_line VALUES (?, ?, ?, ?, ?, ?)", rows)

    def add_encoded(self, file_idx: int, rows: list[tuple[int, int, bytes, bytes, bytes]]) -> None:
        """:meth:`add` of claims already encoded, as a worker of a partitioned run sends
        them: ``(ts index, claim index, claim, segment texts, ref)`` with the claim as
        :func:`claimscrub.records.dump_claim` encodes it, the texts as :func:`encode_texts`
        and the ref as ``dump_ref``. Their patient-day rows are not kept: the run's patient
        partitions group them, not this store."""
        self._refs.clear()
        self.db.executemany(
            "INSERT INTO claim (file_idx, ts_idx, claim_idx, body, segments, ref) VALUES (?, ?, ?, ?, ?, ?)",
            [(file_idx, *row) for row in rows],
        )

    def add_segments(self, file_idx: int, pos: int, segments: list[str]) -> None:
        """Keep the text of segments outside any claim (envelopes, headers, HL loops):
        ``segments`` follow each other in the file from ordinal ``pos``. With the claims'
        own segments, the store holds every segment that was scrubbed, in order."""
        if segments:
            self.db.execute("INSERT INTO other VALUES (?, ?, ?)", (file_idx, pos, encode_texts(segments)))

    def segment_texts(self, file_idx: int, first: int = 1, last: Optional[int] = None,
                      ts_idx: Optional[int] = None) -> Iterator[tuple[int, str]]:
        """``(ordinal, text)`` of every segment of the file that was scrubbed, from ``first``
        to ``last`` (the whole file by default), in file order, as the claims and
        :meth:`add_segments` stored them (a segment of a claim and a segment outside
        claims are told apart by nothing: this is the file as it was read). With
        ``ts_idx``, ``first``..``last`` lie in that transaction set, and only its claims
        and the stored runs around it are read (a set costs its own size, not the file's)."""
        import heapq

        high = last if last is not None else (1 << 62)
        if ts_idx is None:
            claims = self.db.execute(
                "SELECT ref, segments FROM claim WHERE file_idx = ? ORDER BY claim_idx", (file_idx,))
            low = 0
        else:
            claims = self.db.execute(
                "SELECT ref, segments FROM claim INDEXED BY claim_by_ts WHERE file_idx = ? AND ts_idx = ? "
                "ORDER BY claim_idx",
                (file_idx, ts_idx))
            # the run of segments outside claims holding ``first`` starts at or before it
            low = self.db.execute("SELECT MAX(pos) FROM other WHERE file_idx = ? AND pos <= ?",
                                  (file_idx, first)).fetchone()[0] or 0
        others = self.db.execute(
            "SELECT pos, segments FROM other WHERE file_idx = ? AND pos >= ? AND pos <= ? ORDER BY pos",
            (file_idx, low, high))
        runs = heapq.merge(((load_ref(ref).pos, text) for ref, text in claims), iter(others))
        for pos, text in runs:
            if pos > high:
                break
            for offset, segment in enumerate(marshal.loads(text)):
                if first <= pos + offset <= high:
                    yield pos + offset, segment

    def drop_file(self, file_idx: int) -> None:
        """Forget the claims of a file that turned out to be unusable."""
        self._refs.clear()
        self.db.execute("DELETE FROM other WHERE file_idx = ?", (file_idx,))
        self.db.execute("DELETE FROM claim WHERE file_idx = ?", (file_idx,))
        self.db.execute("DELETE FROM day_line WHERE file_idx = ?", (file_idx,))
        self.db.execute("DELETE FROM finding WHERE file_idx = ?", (file_idx,))

    def refs(self, file_idx: int, ts_idx: int) -> list[ClaimRef]:
        """The claims of one transaction set, in file order."""
        return list(self.iter_refs(file_idx, ts_idx))

    #: sets of at most this many claims have their references kept (REFS_KEPT sets at most)
    REFS_CACHED_CLAIMS = 1024
    REFS_KEPT = 8

    def iter_refs(self, file_idx: int, ts_idx: int) -> Iterator[ClaimRef]:
        """:meth:`refs` one at a time (a set of any size in bounded memory)."""
        key = (file_idx, ts_idx)
        kept = self._refs.get(key)
        if kept is not None:
            self._refs.move_to_end(key)
            yield from kept
            return
        cursor = self.db.execute(
            # by the set's index: SQLite would otherwise walk every claim of the file in key
            # order for each set (a file's sets cost the file's size times their number)
            "SELECT ref FROM claim INDEXED BY claim_by_ts WHERE file_idx = ? AND ts_idx = ? ORDER BY claim_idx",
            (file_idx, ts_idx),
        )
        read: Optional[list[ClaimRef]] = []
        for row in cursor:
            ref = load_ref(row[0])
            if read is not None:
                read.append(ref)
                if len(read) > self.REFS_CACHED_CLAIMS:
                    read = None
            yield ref
        if read is not None:
            self._refs[key] = read
            if len(self._refs) > self.REFS_KEPT:
                self._refs.popitem(last=False)

    def count_refs(self, file_idx: int, ts_idx: int) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM claim WHERE file_idx = ? AND ts_idx = ?", (file_idx, ts_idx)
        ).fetchone()[0]

    # -- findings ------------------------------------------------------------------------
    def add_findings(self, file_idx: int, claim_idx: int, findings: Iterable[Finding]) -> None:
        self.db.executemany(
            "INSERT INTO finding VALUES (?, ?, ?)",
            [(file_idx, claim_idx, dump_finding(f)) for f in findings],
        )

    def add_encoded_findings(self, rows: Iterable[tuple[int, int, bytes]]) -> None:
        """:meth:`add_findings` of findings already encoded (``dump_finding``), as
        ``(file index, claim index, finding)``; a claim's are read back in the order given."""
        self.db.executemany("INSERT INTO finding VALUES (?, ?, ?)", rows)

    def findings(self, file_idx: int, claim_idx: int) -> list[Finding]:
        return self.findings_between(file_idx, claim_idx, claim_idx).get(claim_idx, [])

    def findings_between(self, file_idx: int, first: int, last: int) -> dict[int, list[Finding]]:
        """claim index -> findings of the file's claims ``first`` to ``last`` that have any
        (one query for a run of claims, not one per claim)."""
        out: dict[int, list[Finding]] = {}
        for claim_idx, body in self.db.execute(
            "SELECT claim_idx, body FROM finding WHERE file_idx = ? AND claim_idx BETWEEN ? AND ? "
            "ORDER BY claim_idx, rowid", (file_idx, first, last)
        ).fetchall():
            out.setdefault(claim_idx, []).append(load_finding(body))
        return out

    def file_findings(self, file_idx: int) -> Iterator[tuple[int, list[Finding]]]:
        """``(claim index, findings)`` of every claim of the file that has findings, in
        claim order (one query for the file, not one per claim)."""
        cursor = self.db.execute(
            "SELECT claim_idx, body FROM finding WHERE file_idx = ? ORDER BY claim_idx, rowid", (file_idx,))
        current: Optional[int] = None
        batch: list[Finding] = []
        for claim_idx, body in cursor:
            if claim_idx != current:
                if current is not None:
                    yield current, batch
                current, batch = claim_idx, []
            batch.append(load_finding(body))
        if current is not None:
            yield current, batch

    def replace_findings(self, file_idx: int, claim_idx: int, findings: Iterable[Finding]) -> None:
        self.db.execute("DELETE FROM finding WHERE file_idx = ? AND claim_idx = ?", (file_idx, claim_idx))
        self.add_findings(file_idx, claim_idx, findings)

    def all_findings(self) -> Iterator[tuple[tuple[int, int], list[Finding]]]:
        """Every claim that has findings, in (file, claim) order, with its findings."""
        cursor = self.db.execute(
            "SELECT file_idx, claim_idx, body FROM finding ORDER BY file_idx, claim_idx, rowid"
        )
        key: Optional[tuple[int, int]] = None
        batch: list[Finding] = []
        for file_idx, claim_idx, body in cursor:
            if (file_idx, claim_idx) != key:
                if key is not None:
                    yield key, batch
                key, batch = (file_idx, claim_idx), []
            batch.append(load_finding(body))
        if key is not None:
            yield key, batch

    def _finish_loading(self) -> None:
        if not self._indexed:
            # covering, in the order :meth:`patients` reads: one pass over the index, with
            # no lookup of each row in the table and no sort
            self.db.execute("CREATE INDEX day_line_order ON day_line "
                            "(patient, day, provider, file_idx, claim_idx, line_idx)")
            self._indexed = True

    def get(self, file_idx: int, claim_idx: int) -> Claim:
        key = (file_idx, claim_idx)
        claim = self._cache.get(key)
        if claim is not None:
            self._cache.move_to_end(key)
            return claim
        row = self.db.execute(
            "SELECT body FROM claim WHERE file_idx = ? AND claim_idx = ?", key
        ).fetchone()
        claim = load_claim(row[0])
        self._cache[key] = claim
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return claim

    def patient_keys(self) -> list[tuple[str, ...]]:
        """Every patient of the run, in the order :meth:`patients` visits them (for bulk reads
        of their claim history)."""
        self._finish_loading()
        return [decode_key(row[0]) for row in
                self.db.execute("SELECT DISTINCT patient FROM day_line ORDER BY patient")]

    def patients(self) -> Iterator[PatientHistory]:
        """Every patient of the run with their patient-days, in key order."""
        self._finish_loading()
        cursor = self.db.execute(
            "SELECT patient, day, provider, file_idx, claim_idx, line_idx FROM day_line "
            "ORDER BY patient, day, provider, file_idx, claim_idx, line_idx"
        )
        return patient_histories(cursor, self.get)

    def claims(self, file_idx: int, flagged_only: bool = False,
               with_segments: bool = True) -> Iterator[tuple[Claim, list[str], ClaimRef]]:
        """The claims of one file in file order, with the text of their segments (an empty
        list for each without ``with_segments``: the text is then not read at all); with
        ``flagged_only``, just the claims that have findings."""
        self._finish_loading()
        flagged = (
            " AND EXISTS (SELECT 1 FROM finding f WHERE f.file_idx = c.file_idx AND f.claim_idx = c.claim_idx)"
            if flagged_only else ""
        )
        texts = "segments" if with_segments else "NULL"
        cursor = self.db.execute(
            f"SELECT ref, body, {texts} FROM claim c WHERE file_idx = ?{flagged} ORDER BY claim_idx",
            (file_idx,),
        )
        loads = marshal.loads
        for ref, body, segments in cursor:
            yield load_claim(body), (list(loads(segments)) if with_segments else []), load_ref(ref)


class StoredRefs:
    """The claims of one transaction set as the store holds them: iterated from the store
    each time (never a list of the whole set), with ``len`` and truth counted there."""

    def __init__(self, store: ClaimStore, file_idx: int, ts_idx: int):
        self._store = store
        self._key = (file_idx, ts_idx)

    def __iter__(self) -> Iterator[ClaimRef]:
        return self._store.iter_refs(*self._key)

    def __len__(self) -> int:
        return self._store.count_refs(*self._key)

    def __bool__(self) -> bool:
        return len(self) > 0


class FindingStore:
    """The run's findings by ``(file index, claim index)``, kept in the claim store.

    Reads like the dict it replaces (``get``, ``[]``, ``items``), so writers need not care
    where the findings live.
    """

    def __init__(self, store: ClaimStore):
        self._store = store

    def add(self, key: tuple[int, int], findings: Iterable[Finding]) -> None:
        findings = list(findings)
        if findings:
            self._store.add_findings(key[0], key[1], findings)

    def get(self, key: tuple[int, int], default=None) -> list[Finding]:
        found = self._store.findings(*key)
        return found if found else ([] if default is None else default)

    def between(self, file_idx: int, first: int, last: int) -> dict[int, list[Finding]]:
        """claim index -> findings of the file's claims ``first`` to ``last`` that have any."""
        return self._store.findings_between(file_idx, first, last)

    def __getitem__(self, key: tuple[int, int]) -> list[Finding]:
        return self._store.findings(*key)

    def __setitem__(self, key: tuple[int, int], findings: list[Finding]) -> None:
        self._store.replace_findings(key[0], key[1], findings)

    def items(self) -> Iterator[tuple[tuple[int, int], list[Finding]]]:
        return self._store.all_findings()
