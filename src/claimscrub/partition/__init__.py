"""The scrub run split into partitions, on local worker processes or a Dask cluster.

    inputs ──read units──▶ stage 1 (read, build claims, price, claim edits, validate)
                               │ claims, in input order ─────────────▶ the run's store (parent)
                               │ claims with dated lines, by patient ─▶ partition spills
    partition spills ────────▶ stage 2 (patient-days and patients, with their prior lines)
                               │ findings ───────────────────────────▶ the run's store (parent)

* A **read unit** is an input file, or one of ``k`` parts of a large one: every part reads
  the whole file's envelope (so envelope verdicts and claim numbering are the file's own)
  but builds findings only for its share of the claims (chunks of :data:`CLAIM_CHUNK`
  claims, dealt round-robin) and validates only its share of the transaction sets.
* A **partition** holds every claim of the patients whose key hashes to it
  (:func:`partition_of`), so every patient-day, and every patient with their claim history,
  is whole in one partition.
* The parent process keeps the run's claim store, the claim history (reads and writes) and
  the writers: it merges the claims back per input file in input order, adds the findings of
  both stages, and decides the dispositions exactly as a run in one process does.

Spills are files of marshalled batches of compact records (:mod:`claimscrub.records`) in
the run's private store folder (``--work-dir``), written by the workers and read back in
bounded batches. The engines differ only in where
the stage functions run: :class:`claimscrub.partition.local.LocalEngine` (forked worker
processes that die with the run) or :class:`claimscrub.partition.dask_engine.DaskEngine`
(tasks on a Dask distributed cluster; the ``claimscrub[dask]`` extra).
"""

from claimscrub.partition.stages import CLAIM_CHUNK, partition_of

__all__ = ["CLAIM_CHUNK", "partition_of"]
