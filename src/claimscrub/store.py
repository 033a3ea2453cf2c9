"""A disk-backed store of the run's claims, so memory does not grow with the batch.

Claims are read one transaction set at a time and written here (pickled, with the text of
their own segments). Grouping into patient-days is an indexed query, and the writers read
the claims back in file order. Only findings are held in memory, and only for claims that
have any.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import tempfile
from collections import OrderedDict
from datetime import date
from typing import Iterator, Optional

from claimscrub.grouping import (
    DayLine,
    PatientDay,
    PatientHistory,
    decode_key,
    encode_key,
    line_group_key,
)
from claimscrub.model import Claim

_SCHEMA = """
CREATE TABLE claim (
    file_idx INTEGER NOT NULL,
    claim_idx INTEGER NOT NULL,
    body BLOB NOT NULL,
    segments TEXT NOT NULL,
    PRIMARY KEY (file_idx, claim_idx)
) WITHOUT ROWID;
CREATE TABLE day_line (
    patient TEXT NOT NULL,
    day TEXT NOT NULL,
    provider TEXT NOT NULL,
    file_idx INTEGER NOT NULL,
    claim_idx INTEGER NOT NULL,
    line_idx INTEGER NOT NULL
);
"""


class ClaimStore:
    def __init__(self, directory: Optional[str] = None, cache_size: int = 512):
        self._dir = tempfile.TemporaryDirectory(prefix="claimscrub-", dir=directory)
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

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def __enter__(self) -> "ClaimStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, file_idx: int, claim: Claim, segments: list[str]) -> None:
        self.db.execute(
            "INSERT INTO claim VALUES (?, ?, ?, ?)",
            (file_idx, claim.index, pickle.dumps(claim, pickle.HIGHEST_PROTOCOL), "\n".join(segments)),
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

    def drop_file(self, file_idx: int) -> None:
        """Forget the claims of a file that turned out to be unusable."""
        self.db.execute("DELETE FROM claim WHERE file_idx = ?", (file_idx,))
        self.db.execute("DELETE FROM day_line WHERE file_idx = ?", (file_idx,))

    def _finish_loading(self) -> None:
        if not self._indexed:
            self.db.execute("COMMIT")
            self.db.execute("CREATE INDEX day_line_order ON day_line (patient, day, provider)")
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
        claim = pickle.loads(row[0])
        self._cache[key] = claim
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return claim

    def patients(self) -> Iterator[PatientHistory]:
        """Every patient of the run with their patient-days, in key order."""
        self._finish_loading()
        cursor = self.db.execute(
            "SELECT patient, day, provider, file_idx, claim_idx, line_idx FROM day_line "
            "ORDER BY patient, day, provider, file_idx, claim_idx, line_idx"
        )
        history: Optional[PatientHistory] = None
        current_day: Optional[PatientDay] = None
        for patient, day, provider, file_idx, claim_idx, line_idx in cursor:
            if history is None or encode_key(history.patient_key) != patient:
                if history is not None:
                    yield history
                history = PatientHistory(decode_key(patient))
                current_day = None
            if (
                current_day is None
                or current_day.service_date.isoformat() != day
                or current_day.provider_npi != provider
            ):
                current_day = PatientDay(history.patient_key, date.fromisoformat(day), provider)
                history.days.append(current_day)
            claim = self.get(file_idx, claim_idx)
            current_day.entries.append(DayLine(claim, claim.lines[line_idx]))
        if history is not None:
            yield history

    def claims(self, file_idx: int) -> Iterator[tuple[Claim, list[str]]]:
        """The claims of one file in file order, with the text of their segments."""
        self._finish_loading()
        cursor = self.db.execute(
            "SELECT body, segments FROM claim WHERE file_idx = ? ORDER BY claim_idx", (file_idx,)
        )
        for body, segments in cursor:
            yield pickle.loads(body), segments.split("\n") if segments else []
