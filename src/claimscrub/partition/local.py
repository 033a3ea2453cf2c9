"""The local engine: the stage functions in forked worker processes of this machine.

Workers are forked when the run starts, after the rule tables are loaded, so they share
them with the parent instead of loading them again. They ignore Ctrl-C and die with the
parent (PR_SET_PDEATHSIG, see :func:`claimscrub.validate._die_with_parent`), even after
``kill -9`` of it. A worker that dies during the run (killed, out of memory) loses no
work: its task runs again in the parent.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Optional

from claimscrub.partition.stages import StageContext

#: The context of the run, set in the parent before the workers are forked.
_context: Optional[StageContext] = None
#: The pools of this process (killed on SIGTERM/SIGINT, see claimscrub.cli).
_live_pools: "set[ProcessPoolExecutor]" = set()


def _worker_init(parent: int) -> None:
    # Ctrl-C and SIGTERM are the main process's to handle: it kills the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from claimscrub.gcsettings import tune_forked
    from claimscrub.validate import _die_with_parent

    _die_with_parent(parent)
    tune_forked()


def _call(fn: Callable, args: tuple):
    assert _context is not None, "the worker was not forked from a partitioned run"
    return fn(_context, *args)


def kill_workers() -> None:
    """Kill every worker of this process's pools at once (a termination signal)."""
    for pool in list(_live_pools):
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                process.kill()
            except (OSError, AttributeError, ValueError):
                pass


class _Task:
    def __init__(self, future: Optional[Future], fn: Callable, args: tuple, ctx: StageContext):
        self.future, self.fn, self.args, self.ctx = future, fn, args, ctx

    def result(self):
        if self.future is not None:
            try:
                return self.future.result()
            except BrokenProcessPool:
                pass  # a worker died: the task runs here instead, from the start
        return self.fn(self.ctx, *self.args)


class LocalEngine:
    """``jobs`` worker processes on this machine."""

    name = "local"
    #: workers are forked from the parent: what it loads before start() they share
    forks = True

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self._pool: Optional[ProcessPoolExecutor] = None
        self._ctx: Optional[StageContext] = None

    @property
    def workers(self) -> int:
        return self.jobs

    def start(self, ctx: StageContext) -> None:
        global _context
        _context = self._ctx = ctx
        if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not Linux/macOS
            return  # the stages run in this process
        self._pool = ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_init, initargs=(os.getpid(),),
        )
        _live_pools.add(self._pool)

    def submit(self, fn: Callable, *args) -> _Task:
        assert self._ctx is not None
        future = None
        if self._pool is not None:
            try:
                future = self._pool.submit(_call, fn, args)
            except (BrokenProcessPool, RuntimeError):
                future = None
        return _Task(future, fn, args, self._ctx)

    def close(self) -> None:
        global _context
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            _live_pools.discard(self._pool)
            self._pool = None
        _context = self._ctx = None
