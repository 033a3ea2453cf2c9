"""``CompiledValidator``: the compiled 837P guide behind the ``TransactionValidator``
protocol (``claimscrub scrub --validator compiled``).

Each transaction set is walked whole by :class:`claimscrub.guide.walker.Walker`; the raw
errors it yields are exactly those :func:`claimscrub.validate.validate_interchange` reads
from pyx12, and they become ``IGError`` through the same code as the pyx12 path
(:class:`claimscrub.validate._Pending`: line mapping, private HL/LX codes redone on the
whole set, trailing separator as IK304 8, ordering and de-duplication). Where pyx12 raises
(a composite with more components than the guide defines), the result is the same "could
not be validated" error. Input the compiled walk does not reproduce (a segment that
pyx12's reader would see as an envelope segment or as the end of the data after stripping
leading white space, or delimiters that collide) is handed to pyx12 itself.

One difference from :class:`claimscrub.validate.Pyx12Validator`, by design: that class cuts
a transaction set of more than 4,000 segments into slices for its worker processes, which
gives the errors of the whole set except where pyx12 raises inside one slice (then the
other slices' errors are still listed beside "could not be validated"). The compiled guide
walks every set whole, so it gives what pyx12 gives on the whole set: only "could not be
validated". The verdict (IK5 R, IK502 1) is the same either way; see
tests/test_guide_pyx12_quirks.py.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Iterator, Optional

from claimscrub.guide.compile import load_guide
from claimscrub.guide.walker import NeedsPyx12, Pyx12Crash, Walker
from claimscrub.scrub import IGError
from claimscrub.x12.envelope import TransactionSet
from claimscrub.x12.reader import Delimiters

_walker: Optional[Walker] = None


def get_walker() -> Walker:
    global _walker
    if _walker is None:
        _walker = Walker(load_guide())
    return _walker


def raw_result(ts: TransactionSet, delimiters: Delimiters):
    """``(Pyx12Result, _Slice)`` of one whole transaction set, as the pyx12 path would
    produce them for a set validated in one piece."""
    from claimscrub.validate import Pyx12Result, _Slice

    segments = ts.segments
    repetition = delimiters.repetition or "^"
    terms = (delimiters.element, delimiters.component, repetition, delimiters.segment)
    # the line map of the whole set as one slice (ISA, GS, then ST.. at line 3, SE last)
    chunk = _Slice("", [(3, segments[0].pos, len(segments) - 1), (len(segments) + 2, segments[-1].pos, 1)])
    if len(set((delimiters.element, delimiters.component, delimiters.segment))) < 3 \
            or repetition in (delimiters.element, delimiters.segment, delimiters.component):
        return _pyx12(ts, delimiters)
    try:
        raw = get_walker().validate(segments, terms)
    except Pyx12Crash as exc:
        return Pyx12Result([], [], f"pyx12 failed ({exc})"), chunk
    except NeedsPyx12:
        return _pyx12(ts, delimiters)
    except Exception:  # noqa: BLE001 - never lose a set to a fault here: pyx12 decides
        if os.environ.get("CLAIMSCRUB_DEBUG"):
            raise
        return _pyx12(ts, delimiters)
    return Pyx12Result(raw, []), chunk


def _pyx12(ts: TransactionSet, delimiters: Delimiters):
    """pyx12 itself on the whole set, for input the compiled walk leaves to it."""
    from claimscrub.validate import _job, _slices, validate_interchange

    chunk = next(_slices(ts, delimiters, 0))
    return validate_interchange(*_job(chunk)), chunk


def validate_transaction_set(key: tuple[int, int], ts: TransactionSet,
                             delimiters: Delimiters) -> tuple[tuple[int, int], list[IGError], list[str]]:
    from claimscrub.validate import _Pending, hierarchy_errors

    pending = _Pending(key, ts.segments[0].pos, hierarchy_errors(ts.segments))
    result, chunk = raw_result(ts, delimiters)
    chunk.text = ""
    pending.slices[0] = chunk
    pending.results[0] = result
    pending.all_submitted = True
    return pending.finish()


class TransactionCheck:
    """One transaction set validated as it is read: :meth:`feed` each segment, ST to SE,
    then :meth:`finish`. The walk and the HL/LX checks hold what they need to go on
    (counters, the current loop), never the set's segments, so memory does not grow with
    the set. The verdict is :func:`validate_transaction_set`'s on the same set; where that
    hands the set to pyx12 itself, :meth:`finish` asks ``reread`` for the set's segments."""

    def __init__(self, key: tuple[int, int], st_pos: int, delimiters: Delimiters):
        from claimscrub.validate import HierarchyCheck

        self.key = key
        self.st_pos = st_pos
        self.se_pos = st_pos
        self.count = 0
        self.delimiters = delimiters
        self.hierarchy = HierarchyCheck(st_pos)
        self.raw: Optional[list] = None
        self.failure = ""
        self.to_pyx12 = False
        repetition = delimiters.repetition or "^"
        self._walk = None
        if len(set((delimiters.element, delimiters.component, delimiters.segment))) < 3 \
                or repetition in (delimiters.element, delimiters.segment, delimiters.component):
            self.to_pyx12 = True
        else:
            self._walk = get_walker().walk((delimiters.element, delimiters.component, repetition,
                                            delimiters.segment))
            next(self._walk)

    def feed(self, segment) -> None:
        self.count += 1
        self.se_pos = segment.pos
        self.hierarchy.feed(segment)
        if self._walk is not None:
            self._send(segment)

    def _send(self, segment) -> None:
        try:
            self._walk.send(segment)
        except StopIteration as done:
            self.raw, self._walk = done.value, None
        except Pyx12Crash as exc:
            self.failure, self._walk = f"pyx12 failed ({exc})", None
        except NeedsPyx12:
            self.to_pyx12, self._walk = True, None
        except Exception:  # noqa: BLE001 - never lose a set to a fault here: pyx12 decides
            if os.environ.get("CLAIMSCRUB_DEBUG"):
                raise
            self.to_pyx12, self._walk = True, None

    def finish(self, reread) -> tuple[tuple[int, int], list[IGError], list[str]]:
        """The set's ``(key, errors, transaction codes)``; ``reread()`` gives the set as a
        :class:`TransactionSet` when pyx12 itself must validate it."""
        from claimscrub.validate import Pyx12Result, _Pending, _Slice

        if self._walk is not None:
            self._send(None)
        chunk = _Slice("", [(3, self.st_pos, self.count - 1), (self.count + 2, self.se_pos, 1)])
        if self.to_pyx12:
            result, chunk = _pyx12(reread(), self.delimiters)
        elif self.failure:
            result = Pyx12Result([], [], self.failure)
        else:
            result = Pyx12Result(self.raw or [], [])
        pending = _Pending(self.key, self.st_pos, self.hierarchy.errors)
        chunk.text = ""
        pending.slices[0] = chunk
        pending.results[0] = result
        pending.all_submitted = True
        return pending.finish()


class CompiledValidator:
    """Validates transaction sets against the compiled guide, in this process.

    ``jobs`` is accepted for symmetry with :class:`claimscrub.validate.Pyx12Validator`;
    validation here is fast enough that a worker pool would cost more than it saves on
    the sizes measured (see benchmarks/run.py), so it runs in the calling process.
    """

    def __init__(self, jobs: Optional[int] = None):
        self.jobs = jobs or 1
        self._ready: deque = deque()
        self.segments = 0
        get_walker()

    def submit(self, key: tuple[int, int], ts: TransactionSet, delimiters: Delimiters) -> None:
        self.segments += len(ts.segments)
        self._ready.append(validate_transaction_set(key, ts, delimiters))

    def stream(self, key: tuple[int, int], st_pos: int, delimiters: Delimiters) -> TransactionCheck:
        """A set validated as it is read (see :class:`TransactionCheck`); hand it back to
        :meth:`done` with its result."""
        return TransactionCheck(key, st_pos, delimiters)

    def done(self, check: TransactionCheck, reread) -> None:
        self.segments += check.count
        self._ready.append(check.finish(reread))

    def completed(self, block: bool = False) -> Iterator[tuple[tuple[int, int], list[IGError], list[str]]]:
        while self._ready:
            yield self._ready.popleft()

    def close(self) -> None:
        self._ready.clear()
