"""``claimscrub history import``: record files already sent, without scrubbing them.

Every claim of an imported file counts as billed (it was sent), so a pipeline that starts
using claimscrub can load its last year and have tonight's run see it.
"""

from __future__ import annotations

import os

from claimscrub.claims import build_claims
from claimscrub.history.run import claim_record, control_numbers
from claimscrub.history.store import FileRecord, History, file_hash
from claimscrub.x12.envelope import iter_transaction_sets
from claimscrub.x12.reader import X12Reader


def read_file_record(key: bytes, path: str) -> FileRecord:
    """A file's claims as history records (raises InputError for an unusable file)."""
    name = os.path.basename(path)
    reader = X12Reader(path, name)
    transactions = []
    claims = []
    index = 0
    for ts in iter_transaction_sets(reader):
        transactions.append(ts)
        for claim in build_claims(ts, reader.delimiters, name, index):
            index += 1
            claims.append(claim_record(key, claim, billed=True))
        ts.segments = []  # the claims are built: the segments are not needed any more
    return FileRecord(name, file_hash(path), control_numbers(transactions), lambda: iter(claims))


def import_files(history: History, paths: list[str], table_versions: list) -> tuple:
    records = [read_file_record(history.key, path) for path in paths]
    outcome = history.record("import", table_versions, records)
    return records, outcome
