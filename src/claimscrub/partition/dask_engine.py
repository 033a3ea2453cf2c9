"""The Dask engine: the same stage functions as tasks on a Dask distributed cluster
(``claimscrub scrub --engine dask --scheduler ADDRESS``; the ``claimscrub[dask]`` extra).

Every worker needs claimscrub installed (the same version), the input files at the same
path, and the run's folder in ``--work-dir`` at the same path: the stages read the inputs
and write their spills there. The claim store, the claim history and the writers stay in
the process that runs ``claimscrub scrub``. Nothing else of claimscrub imports Dask.
"""

from __future__ import annotations

from typing import Callable, Optional

from claimscrub.errors import ConfigError
from claimscrub.partition.stages import StageContext

#: What a missing extra says (exit status 3).
MISSING_EXTRA = ("--engine dask needs the Dask extra: pip install 'claimscrub[dask]' "
                 "(dask[distributed]) on this machine and on every worker")


def _client_class():
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None
    return Client


class DaskEngine:
    """Stage tasks on the cluster whose scheduler listens at ``address``
    (``tcp://host:8786``), or on an existing ``distributed.Client``."""

    name = "dask"

    def __init__(self, address: Optional[str] = None, client=None, timeout: float = 20):
        if client is None:
            Client = _client_class()
            try:
                client = Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {address} "
                                  f"({type(exc).__name__}); is it running?") from None
            self._own = True
        else:
            self._own = False
        self.client = client
        self._ctx = None

    @property
    def workers(self) -> int:
        """Threads of the cluster's workers: units and partitions are planned for them."""
        return max(1, sum(self.client.nthreads().values()))

    def start(self, ctx: StageContext) -> None:
        # sent once to every worker, not once per task
        self._ctx = self.client.scatter(ctx, broadcast=True)

    def submit(self, fn: Callable, *args):
        return self.client.submit(fn, self._ctx, *args, pure=False)

    def close(self) -> None:
        self._ctx = None
        if self._own:
            self.client.close()
