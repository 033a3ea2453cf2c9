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

    def completed(self, block: bool = False) -> Iterator[tuple[tuple[int, int], list[IGError], list[str]]]:
        while self._ready:
            yield self._ready.popleft()

    def close(self) -> None:
        self._ready.clear()
