"""The run's outputs written side by side in forked processes.

Each output of each input (its JSON, HTML, 999, 277CA, accepted-claims 837) is one job,
written by the same writer function as in one process, from the same claim store. The
processes are forked once everything is decided (dispositions tallied, the store
committed), so they see the run as the parent has it and only read it, each through its
own connection to the store.

Nothing about the files changes: this process reserves each output's temporary beside it
(so a termination signal here removes it, as for its own writes), a writer process fills
it, and this process renames it into place once the writer says it is whole, in the same
order as one process would. A job whose process fails in any way (an error, a killed
process) is written again here, from the start, so an error reads as it does in one
process. Writer processes ignore Ctrl-C and die with this process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Optional, Sequence

from claimscrub.atomic import discard, filling_reserved, publish, reserve

#: A writer job: ``(write, expected output path)``; ``write()`` returns the path written
#: (the expected one) or None when that output is not made (a 277CA of no claim, an
#: accepted-claims 837 with nothing accepted).
Job = tuple[Callable[[], Optional[str]], str]

#: the jobs of the run being written, set before the writer processes are forked
_jobs: Sequence[Job] = ()
_reserved: dict[str, str] = {}
_reopen: Optional[Callable[[], None]] = None


def _writer_init(parent: int) -> None:
    # the run's own handlers first: a termination signal now just ends this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from claimscrub.gcsettings import tune_forked
    from claimscrub.validate import _die_with_parent

    _die_with_parent(parent)
    tune_forked()
    if _reopen is not None:
        _reopen()


def _run_job(index: int) -> Optional[str]:
    write, _path = _jobs[index]
    with filling_reserved(_reserved):
        return write()


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def write_parallel(jobs: Sequence[Job], processes: int, reopen: Callable[[], None],
                   done: Callable[[int, Optional[str]], None], costs: Optional[Sequence[float]] = None) -> None:
    """Run ``jobs`` in ``processes`` forked processes; ``done(i, path)`` is called here for
    each job in job order once its output is in place (``path`` None: no output).
    ``reopen`` runs first in each process (its own connection to the store). With
    ``costs`` (an estimate of each job's work), the costliest jobs are handed out first, so
    the processes finish close together (a batch's JSON is several of its 999s); what is
    written, and the order outputs are put in place, do not change."""
    global _jobs, _reserved, _reopen
    from claimscrub.partition.local import _live_pools

    reserved: dict[str, str] = {}
    pending: dict[str, str] = {}
    pool: Optional[ProcessPoolExecutor] = None
    try:
        for _write, path in jobs:
            if path not in reserved:
                reserved[path] = pending[path] = reserve(path)
        _jobs, _reserved, _reopen = jobs, reserved, reopen
        pool = ProcessPoolExecutor(max_workers=max(1, min(processes, len(jobs))),
                                   mp_context=multiprocessing.get_context("fork"),
                                   initializer=_writer_init, initargs=(os.getpid(),))
        _live_pools.add(pool)
        futures: list[Optional[Future]] = [None] * len(jobs)
        order = range(len(jobs)) if costs is None else sorted(range(len(jobs)), key=lambda i: -costs[i])
        for index in order:
            try:
                futures[index] = pool.submit(_run_job, index)
            except RuntimeError:  # the pool broke (a process was killed): written here
                pass
        for index, future in enumerate(futures):
            write, path = jobs[index]
            tmp = pending.pop(path)
            again = future is None
            written: Optional[str] = None
            if future is not None:
                try:
                    written = future.result()
                except Exception:  # noqa: BLE001 - any failure there: written again here, from the start
                    if os.environ.get("CLAIMSCRUB_DEBUG"):
                        raise
                    again = True
            if again:
                discard(tmp)
                written = write()  # its error, if any, is the one a run in one process gives
            elif written == path:
                publish(tmp, path)
            else:  # not made (None), or written in place by the process itself
                discard(tmp)
            done(index, written)
    finally:
        for tmp in pending.values():
            discard(tmp)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            _live_pools.discard(pool)
        _jobs, _reserved, _reopen = (), {}, None
