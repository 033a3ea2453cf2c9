"""Claim history across runs (issue 10): what earlier nights billed, in SQLite or PostgreSQL.

* :mod:`claimscrub.history.store` - the store: open, read prior lines, record a run;
* :mod:`claimscrub.history.prior` - prior lines as read-only entries of the run's patient-days;
* :mod:`claimscrub.history.record` - a scrubbed (or imported) run as the records to write.
"""

from claimscrub.history.store import (  # noqa: F401
    KEY_VARIABLE,
    History,
    HistoryError,
    load_key,
    open_history,
    patient_hash,
    resolve_url,
)
