"""Atomic output: a file either appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

_live_temporaries: set[str] = set()
#: final path -> the temporary the parent reserved for it, in a writer process that fills
#: reserved temporaries (:func:`filling_reserved`); the parent publishes them
_reserved: dict[str, str] = {}


def _default_mode() -> int:
    """The mode an ordinary ``open(path, "w")`` would give: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(path: str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    If the block raises (or the process is interrupted), the temporary file is removed and
    ``path`` is left as it was.
    """
    reserved = _reserved.get(os.path.abspath(path))
    if reserved is not None:
        with _fill(reserved, path, mode, encoding) as handle:
            yield handle
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # a short temporary name: the final name may already be as long as the file system allows
    with _signals_held():  # a termination signal between the two would leave it unknown
        fd, tmp = tempfile.mkstemp(prefix=".claimscrub-", suffix=".tmp", dir=directory)
        _live_temporaries.add(tmp)
    try:
        kwargs = {"encoding": encoding, "newline": ""} if "b" not in mode else {}
        try:
            with os.fdopen(fd, mode, **kwargs) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            if exc.filename is None:  # a write that failed (disk full): name the output
                raise OSError(exc.errno, exc.strerror, path) from None
            raise
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        _live_temporaries.discard(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def _fill(tmp: str, path: str, mode: str, encoding: str | None) -> Iterator[IO]:
    """Write a temporary another process reserved (and will publish or remove). It is
    opened without being created: a reservation the other process has already removed (it
    gave up on this process and writes the output itself) fails here instead of leaving a
    temporary behind that nobody will remove."""
    kwargs = {"encoding": encoding, "newline": ""} if "b" not in mode else {}
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if exc.filename is None or exc.filename == tmp:
            raise OSError(exc.errno, exc.strerror, path) from None
        raise


def reserve(path: str) -> str:
    """Create (empty) and track the temporary that a write of ``path`` done by another
    process fills: a termination signal of this process removes it, as it does the
    temporaries of this process's own writes. :func:`publish` or :func:`discard` it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with _signals_held():
        fd, tmp = tempfile.mkstemp(prefix=".claimscrub-", suffix=".tmp", dir=directory)
        _live_temporaries.add(tmp)
    os.close(fd)
    return tmp


def publish(tmp: str, path: str) -> None:
    """Rename a filled reserved temporary into place (as :func:`atomic_writer` does)."""
    try:
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        discard(tmp)


def discard(tmp: str) -> None:
    """Remove a reserved temporary that was not published."""
    _live_temporaries.discard(tmp)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def filling_reserved(reserved: dict[str, str]) -> Iterator[None]:
    """In a writer process: writes of the paths ``reserved`` maps go into the temporaries
    the parent reserved for them, never renamed here (the parent publishes the whole ones)."""
    previous = dict(_reserved)
    _reserved.clear()
    _reserved.update({os.path.abspath(path): tmp for path, tmp in reserved.items()})
    try:
        yield
    finally:
        _reserved.clear()
        _reserved.update(previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT held back (delivered when the block ends), so that a temporary
    file is never created without being known to :func:`remove_temporaries`."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGTERM, signal.SIGINT}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def remove_temporaries() -> None:
    """Remove temporaries of writes still in progress (called on a termination signal)."""
    for tmp in list(_live_temporaries):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def track_temporary(path: str) -> None:
    """Have :func:`remove_temporaries` remove ``path`` too (a spooled standard input)."""
    _live_temporaries.add(path)


def untrack_temporary(path: str) -> None:
    _live_temporaries.discard(path)
