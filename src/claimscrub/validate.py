"""Implementation-guide validation of 837P transaction sets with pyx12, in parallel.

:class:`Pyx12Validator` implements :class:`claimscrub.scrub.TransactionValidator`. Each
transaction set is validated on its own: its ST..SE segments are wrapped in a small
standalone interchange (a fixed ISA/GS, the input's delimiters, GE/IEA with the right counts)
and handed to ``pyx12.x12n_document`` with pyx12's ``005010X222A1`` map through
``io.StringIO`` (pyx12 decodes a *path* as ASCII and crashes on any other byte; through a
text stream a stray byte is an ordinary element error). What pyx12 finds comes back from its
JSON error visitor plus its segment callback (for the loop id), and is mapped back to the
segment ordinals of the input file (:class:`~claimscrub.scrub.IGError`).

What is deliberately *not* taken from pyx12:

* Envelope checks (ISA/IEA, GS/GE, SE01/SE02, duplicate control numbers): claimscrub's
  envelope module does them on the real envelope; the envelope handed to pyx12 is synthetic
  and its SE is rewritten with the right count, so they would only be reported twice.
* pyx12's private HL01/HL02/LX01 checks (``HL1``, ``HL2``, ``LX``): they are redone here on
  the whole transaction set with exactly pyx12's logic (:func:`hierarchy_errors`), because a
  large transaction set is validated in slices (below), and pyx12 sometimes hangs them on a
  later segment. They are reported as element errors (IK403 ``I12``) of HL01, HL02 or LX01,
  where pyx12's own 999 drops them.

Other handling of pyx12's quirks: its logger is silenced (every error is otherwise printed
to stderr); 005010X222A2 transaction sets are validated as A1 (pyx12 has no A2 map and
raises ``EngineError``); each process loads pyx12's maps once instead of on every call
(loading the 837 map costs about a quarter of a second); any exception pyx12 raises becomes
an :class:`IGError` of the transaction set (IK502 code ``1``) instead of a crash.

Large transaction sets. One ST may hold 50,000 claims; pyx12 checks about 8,000 segments per
second, so such a set is cut into slices of about :data:`SLICE_SEGMENTS` segments that are
validated in parallel. A slice is the header (ST through the segment before the first HL),
the billing-provider loop its claims belong to (2000A up to its first subscriber) and whole
subscriber loops (2000B with their 2000C, 2300 and 2400 loops); cuts fall only before a
2000A HL or before a 2000B HL that is not its billing provider's first. Errors map back
exactly:

* errors on a borrowed header or billing-provider loop are kept only from the slice where
  those segments are in place;
* a "required segment/loop missing" error (IK304 3, I6, I7, I8) that pyx12 reports at the
  first segment after the borrowed part is about the borrowed part, and was reported by the
  slice where it is in place, so it is dropped;
* a slice's synthetic SE stands for the segment that follows the slice in the input (an
  HL), so a missing segment at the end of a slice is reported where pyx12 reports it on the
  whole set, in that HL's loop, and errors pyx12 holds back for segments it could not place
  hang on that HL as they do on the whole set (:func:`_at_slice_end`);
* cuts are made only in a well-formed hierarchy (2000A, 2000B, 2000C levels in order).

``tests/test_ig_validation.py`` checks that slices cut after every subscriber give exactly
the errors of the whole transaction set on the corpus and on mutated batches (and a
randomized run of about 2,000 mutated batches with up to five mutations each found no
difference).
"""

from __future__ import annotations

import bisect
import io
import json
import logging
import os
import signal
import sys
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Optional

from claimscrub.scrub import IGError
from claimscrub.x12.envelope import TransactionSet
from claimscrub.x12.reader import Delimiters, Segment

#: The implementation guide pyx12 validates 837P against (it has no A2 map).
IG_VERSION = "005010X222A1"
#: Versions validated as :data:`IG_VERSION`.
VALIDATED_AS_A1 = ("005010X222A1", "005010X222A2")
#: Target size of one slice of a large transaction set, in segments.
SLICE_SEGMENTS = 4000

#: IK304 codes for "something required is missing before this point".
MISSING_CODES = frozenset({"3", "I6", "I7", "I8"})
#: IK502 code for a transaction set pyx12 could not validate at all.
UNVALIDATED_CODE = "1"
#: ST-level codes of the envelope module's own checks (not reported twice).
ENVELOPE_TS_CODES = frozenset({"2", "3", "4", "23"})
#: pyx12's private segment codes redone by :func:`hierarchy_errors`, and its code for a
#: trailing element separator, which its own 999 writes as IK304 8.
PRIVATE_CODES = frozenset({"HL1", "HL2", "LX"})
TRAILING_SEPARATOR = "SEG1"

_LOGGER_NAME = "pyx12"


# --------------------------------------------------------------------------------------
# pyx12, inside the worker process
# --------------------------------------------------------------------------------------

_params = None
_map_cache: dict = {}


def _prepare_pyx12() -> None:
    """Silence pyx12's logger and make it load each map once per process."""
    global _params
    logger = logging.getLogger(_LOGGER_NAME)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    if _params is not None:
        return
    import pyx12.map_if
    import pyx12.params

    _params = pyx12.params.params()
    original = pyx12.map_if.load_map_file
    if getattr(original, "_claimscrub_cache", False):
        return

    def load_map_file(map_file, param, map_path=None):
        # Only our own calls are cached; pyx12's walker keeps its state in its own
        # counters, so a loaded map is read-only and can serve every validation.
        if param is not _params:
            return original(map_file, param, map_path)
        key = (map_file, map_path)
        if key not in _map_cache:
            _map_cache[key] = original(map_file, param, map_path)
        return _map_cache[key]

    load_map_file._claimscrub_cache = True  # type: ignore[attr-defined]
    pyx12.map_if.load_map_file = load_map_file


#: One error as the worker returns it: (line in the validated text, segment id, code,
#: message, element position or None, component position or None, data element number,
#: bad value, loop id).
RawError = tuple


class Pyx12Result(NamedTuple):
    """What pyx12 said about one interchange text."""

    errors: list  # of RawError
    ts_errors: list  # of (code, text)
    #: why pyx12 could not validate the text at all, or ""
    failure: str = ""
    #: loop id of the line asked for as ``loop_line``
    loop: str = ""
    #: (segment id, loop id) of the map node pyx12 stood on at ``node_line``
    node: tuple = ("", "")


def validate_interchange(text: str, loop_line: int = 0, node_line: int = 0) -> Pyx12Result:
    """Run pyx12 on one interchange text and collect its errors by line.

    Runs in a worker process; never raises.
    """
    node_at = ["", ""]
    try:
        _prepare_pyx12()
        import pyx12.x12n_document

        loops: list[str] = [""]

        def callback(seg, src, node, valid) -> None:
            line = src.get_cur_line()
            while len(loops) <= line:
                loops.append("")
            parent = node.get_parent() if node is not None else None
            loops[line] = getattr(parent, "id", "") or ""
            if line == node_line and node is not None:
                node_at[:] = [getattr(node, "id", "") or "", loops[line]]

        fd_json = io.StringIO()
        pyx12.x12n_document.x12n_document(
            param=_params, src_file=io.StringIO(text), fd_997=None, fd_html=None,
            fd_xmldoc=None, fd_json=fd_json, callback=callback,
        )
        raw = fd_json.getvalue()
        if not raw:
            return Pyx12Result([], [], "pyx12 did not read the transaction set as X12")
        doc = json.loads(raw)
    except Exception as exc:  # pyx12 raises EngineError and, on odd input, anything
        return Pyx12Result([], [], f"pyx12 failed ({type(exc).__name__}: {_one_line(str(exc))})")

    errors: list[RawError] = []
    ts_errors: list[tuple[str, str]] = []
    seen_st = False
    for interchange in doc.get("interchanges", []):
        for group in interchange.get("groups", []):
            for st in group.get("transactions", []):
                seen_st = True
                ts_errors.extend((e["err_cde"], e["err_str"]) for e in st.get("errors", []))
                for seg in st.get("segments", []):
                    line = seg.get("cur_line")
                    seg_id = seg.get("seg_id") or ""
                    loop = loops[line] if isinstance(line, int) and 0 < line < len(loops) else ""
                    for e in seg.get("errors", []):
                        errors.append((line, seg_id, e["err_cde"], e["err_str"], None, None, "",
                                       e.get("err_val") or "", loop))
                    for ele in seg.get("elements", []):
                        for e in ele.get("errors", []):
                            errors.append((line, seg_id, e["err_cde"], e["err_str"],
                                           ele.get("ele_pos"), ele.get("subele_pos"),
                                           ele.get("ele_ref_num") or "", e.get("err_val") or "",
                                           loop))
    if not seen_st:
        return Pyx12Result([], [], "pyx12 found no transaction set in the text it was given")
    loop = loops[loop_line] if 0 < loop_line < len(loops) else ""
    return Pyx12Result(errors, ts_errors, "", loop, tuple(node_at))


#: Every worker process of this process's pools (killed on SIGTERM/SIGINT, see cli).
_live_pools: "set[ProcessPoolExecutor]" = set()


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive the run that started it, even after kill -9 of it.

    On Linux the kernel kills the worker when its parent dies (PR_SET_PDEATHSIG); anywhere,
    a daemon thread checks every second that the parent is still the one that started it.
    """
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread below
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="claimscrub-parent-watch", daemon=True).start()


def _worker_init(parent: int = 0) -> None:
    # Ctrl-C and SIGTERM are the main process's to handle: it kills the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if parent:
        _die_with_parent(parent)
    _prepare_pyx12()


def kill_workers() -> None:
    """Kill every validator worker of this process at once (a termination signal)."""
    for pool in list(_live_pools):
        for process in list(getattr(pool, "_processes", {}).values()):
            try:
                process.kill()
            except (OSError, AttributeError, ValueError):
                pass


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


# --------------------------------------------------------------------------------------
# Building the text pyx12 reads, and mapping its lines back
# --------------------------------------------------------------------------------------


def _envelope(delimiters: Delimiters, usage: str) -> tuple[list[str], list[str]]:
    """A fixed ISA/GS and GE/IEA around one transaction set, in the input's delimiters.

    The values are constants: the 837P map does not depend on them, and envelope errors
    are claimscrub's envelope module's business, not pyx12's here.
    """
    e = delimiters.element
    usage = usage if usage in ("P", "T", "I") else "P"
    repetition = delimiters.repetition or "^"
    isa = e.join([
        "ISA", "00", " " * 10, "00", " " * 10, "ZZ", "CLAIMSCRUB".ljust(15), "ZZ",
        "VALIDATOR".ljust(15), "000101", "0000", repetition, "00501", "000000001", "0", usage,
        delimiters.component,
    ])
    gs = e.join(["GS", "HC", "CLAIMSCRUB", "VALIDATOR", "20000101", "0000", "1", "X", IG_VERSION])
    return [isa, gs], [e.join(["GE", "1", "1"]), e.join(["IEA", "1", "000000001"])]


@dataclass
class _Slice:
    """One piece of a transaction set as pyx12 reads it."""

    text: str
    #: runs of (first line, first file ordinal, count): line -> input segment
    runs: list[tuple[int, int, int]]
    #: lines 1..borrowed_last stand for segments that are in place in another slice
    borrowed_last: int = 0
    #: the segment after the slice is a subscriber HL (2000B)
    before_subscriber: bool = False

    @property
    def se_line(self) -> int:
        """The line of the synthetic SE (it stands for the segment after the slice)."""
        return self.runs[-1][0]

    def position(self, line: Optional[int]) -> Optional[int]:
        if not isinstance(line, int):
            return None
        index = bisect.bisect_right(self.runs, (line, float("inf"), 0)) - 1
        if index < 0:
            return None
        first_line, first_pos, count = self.runs[index]
        if line - first_line < count:
            return first_pos + (line - first_line)
        return None


def _slice_text(pieces: list[list[Segment]], delimiters: Delimiters, st_control: str,
                version_fix: bool, usage: str, after_pos: int,
                borrowed: int) -> _Slice:
    """The interchange text of ``pieces`` (ST first) and its line map; the synthetic SE
    stands for the input segment ``after_pos``."""
    e, term = delimiters.element, delimiters.segment
    end = term if term in "\r\n" else term + "\n"
    head, tail = _envelope(delimiters, usage)
    out = [h + end for h in head]
    runs: list[tuple[int, int, int]] = []
    line = len(head) + 1
    count = 0
    for piece in pieces:
        if not piece:
            continue
        run_start = (line, piece[0].pos)
        run_len = 0
        previous = None
        for segment in piece:
            if previous is not None and segment.pos != previous + 1:
                runs.append((run_start[0], run_start[1], run_len))
                run_start, run_len = (line, segment.pos), 0
            elements = segment.elements
            if version_fix and count == 0 and segment.id == "ST" and len(elements) > 3:
                elements = [*elements[:3], IG_VERSION, *elements[4:]]
            out.append(e.join(elements) + end)
            previous = segment.pos
            run_len += 1
            line += 1
            count += 1
        runs.append((run_start[0], run_start[1], run_len))
    count += 1
    out.append(e.join(["SE", str(count), st_control]) + end)
    runs.append((line, after_pos, 1))
    out.extend(t + end for t in tail)
    return _Slice("".join(out), runs, borrowed)


def _hl_code(segment: Segment) -> str:
    return segment.get(3) if segment.id == "HL" else ""


#: HL03 levels and the level the HL before each may have ("" = first HL of the set).
_HL_FOLLOWS = {"20": ("", "22", "23"), "22": ("20", "22", "23"), "23": ("22", "23")}


def plan_slices(segments: list[Segment], slice_segments: int) -> list[tuple[int, int]]:
    """Cut points of a transaction set: ``(start, end)`` index ranges of the body
    (``segments[1:-1]`` in file order) that make whole subscriber loops; one range when the
    set is small or cannot be cut."""
    body_end = len(segments) - 1  # index of SE
    if slice_segments <= 0 or body_end - 1 <= slice_segments:
        return [(1, body_end)]
    # pyx12 treats the synthetic SE that ends a slice like the HL that follows the slice in
    # the input only when the hierarchy is well formed (around an HL of an unexpected level
    # it reports missing loops differently), so a set whose hierarchy is not is validated
    # whole.
    cuts: list[int] = []
    previous_level = ""
    for index in range(1, body_end):
        segment = segments[index]
        if segment.id != "HL":
            continue
        level = _hl_code(segment)
        if _HL_FOLLOWS.get(level) is None or previous_level not in _HL_FOLLOWS[level]:
            return [(1, body_end)]
        if level in ("20", "22") and previous_level in ("22", "23"):
            cuts.append(index)
        previous_level = level
    if not previous_level or previous_level == "20":
        return [(1, body_end)]
    ranges: list[tuple[int, int]] = []
    start = 1
    for cut in cuts:
        if cut - start >= slice_segments:
            ranges.append((start, cut))
            start = cut
    ranges.append((start, body_end))
    return ranges


def _slices(ts: TransactionSet, delimiters: Delimiters, slice_segments: int) -> Iterator[_Slice]:
    segments = ts.segments
    st = segments[0]
    version_fix = st.get(3) == "005010X222A2"
    usage = ts.interchange.usage
    control = st.get(2)
    ranges = plan_slices(segments, slice_segments)
    if len(ranges) == 1:
        yield _slice_text([segments[:-1]], delimiters, control, version_fix, usage,
                          segments[-1].pos, 0)
        return
    first_hl = next(i for i in range(1, len(segments)) if segments[i].id == "HL")
    header = segments[:first_hl]
    # the billing-provider loop (2000A up to its first subscriber) each range starts under
    provider_start = None
    provider_end = None
    next_start = 0
    for number, (start, end) in enumerate(ranges):
        # advance the billing-provider loop to the one in force at ``start``
        for index in range(next_start, start):
            segment = segments[index]
            if segment.id == "HL" and _hl_code(segment) == "20":
                provider_start, provider_end = index, None
            elif segment.id == "HL" and provider_start is not None and provider_end is None:
                provider_end = index
        next_start = start
        after = segments[end].pos
        before_subscriber = _hl_code(segments[end]) == "22"
        if number == 0:
            chunk = _slice_text([segments[:end]], delimiters, control, version_fix, usage, after, 0)
            chunk.before_subscriber = before_subscriber
            yield chunk
            continue
        pieces = [header]
        if _hl_code(segments[start]) != "20" and provider_start is not None and provider_end is not None:
            pieces.append(segments[provider_start:provider_end])
        pieces.append(segments[start:end])
        borrowed = 2 + sum(len(p) for p in pieces[:-1])  # ISA, GS, header, provider loop
        chunk = _slice_text(pieces, delimiters, control, version_fix, usage, after, borrowed)
        chunk.before_subscriber = before_subscriber
        yield chunk


# --------------------------------------------------------------------------------------
# pyx12's private HL / LX checks, on the whole transaction set
# --------------------------------------------------------------------------------------


def _int(value: str) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def hierarchy_errors(segments: list[Segment]) -> list[IGError]:
    """HL01 counting, HL02 parents and LX01 numbering, exactly as pyx12's reader checks
    them (``X12Base._parse_segment``), for one transaction set."""
    check = HierarchyCheck(segments[0].pos)
    for segment in segments:
        check.feed(segment)
    return check.errors


class HierarchyCheck:
    """:func:`hierarchy_errors` one segment at a time (a set validated as it is read)."""

    def __init__(self, st_pos: int):
        self.st_pos = st_pos
        self.errors: list[IGError] = []
        self.hl_count = 0
        self.hl_stack: list[Optional[int]] = []
        self.lx_count = 0

    def feed(self, segment: Segment) -> None:
        seg_id = segment.id
        if seg_id == "HL":
            st_pos = self.st_pos
            self.hl_count += 1
            hl_count = self.hl_count
            hl_stack = self.hl_stack
            hl01 = segment.get(1)
            if hl_count != _int(hl01):
                self.errors.append(IGError(
                    segment.pos, segment.pos - st_pos + 1, "HL", "I12",
                    f"Hierarchical ID Number (HL01) {_short(hl01)} is out of sequence: "
                    f"HL01 must count the HL segments from 1 (expected {hl_count})",
                    element="1", element_ref="628", bad_value=hl01, loop_id=_hl_loop(segment),
                ))
            hl02 = segment.get(2)
            if hl02 != "":
                parent = _int(hl02)
                if parent not in hl_stack:
                    self.errors.append(IGError(
                        segment.pos, segment.pos - st_pos + 1, "HL", "I12",
                        f"Hierarchical Parent ID Number (HL02) {_short(hl02)} is not the ID of "
                        f"an enclosing HL",
                        element="2", element_ref="734", bad_value=hl02, loop_id=_hl_loop(segment),
                    ))
                while hl_stack and parent != hl_stack[-1]:
                    del hl_stack[-1]
            hl_stack.append(hl_count)
        elif seg_id == "CLM":
            self.lx_count = 0
        elif seg_id == "LX":
            self.lx_count += 1
            lx_count = self.lx_count
            lx01 = segment.get(1)
            if lx01 != f"{lx_count:d}":
                self.errors.append(IGError(
                    segment.pos, segment.pos - self.st_pos + 1, "LX", "I12",
                    f"Service Line Number (LX01) {_short(lx01)} is out of sequence: "
                    f"LX01 must count the claim's service lines from 1 (expected {lx_count})",
                    element="1", element_ref="554", bad_value=lx01, loop_id="2400",
                ))


def _short(value: str) -> str:
    return repr(value[:12]) if value else "(empty)"


def _hl_loop(segment: Segment) -> str:
    return {"20": "2000A", "22": "2000B", "23": "2000C"}.get(segment.get(3), "")


# --------------------------------------------------------------------------------------
# From pyx12's words to IGError
# --------------------------------------------------------------------------------------

#: Segments whose first element may be a name, an address or a date.
_PHI_SEGMENTS = frozenset({"N3", "N4", "DMG", "K3", "NTE", "MSG", "PAT"})
#: Data elements whose values are never repeated in a message: names, ids, addresses,
#: dates, free text, phone numbers, postal codes.
_PHI_ELEMENTS = frozenset({
    "93", "1035", "1036", "1037", "1038", "1039", "67", "127", "166", "19", "116", "26",
    "1251", "373", "352", "364", "443", "80", "81", "1068", "1066", "1067", "933", "1470",
})
#: AN/N/R data elements whose values are codes or amounts, safe to repeat.
_CODE_LIKE = frozenset({"1331", "234", "1271", "782", "380", "1328", "628", "734", "554",
                        "1339", "1250"})

_types: Optional[dict[str, str]] = None


def data_element_type(number: str) -> str:
    """The X12 data type of a data element number (``ID``, ``AN``, ``R``, ...), from
    pyx12's ``dataele.xml``."""
    global _types
    if _types is None:
        import importlib.resources
        import xml.etree.ElementTree as ET

        types: dict[str, str] = {}
        try:
            with importlib.resources.files("pyx12").joinpath("map", "dataele.xml").open("rb") as fh:
                for node in ET.parse(fh).getroot().iter("data_ele"):
                    types[node.get("ele_num", "")] = node.get("data_type", "")
        except (OSError, ET.ParseError):  # pragma: no cover - pyx12 always ships it
            pass
        _types = types
    return _types.get(number, "")


def value_is_safe(seg_id: str, element_ref: str) -> bool:
    """Whether a bad value of this element may be repeated in a finding (codes and amounts
    may; names, ids, addresses, dates and free text may not)."""
    if seg_id in _PHI_SEGMENTS or element_ref in _PHI_ELEMENTS:
        return False
    return data_element_type(element_ref) == "ID" or element_ref in _CODE_LIKE


def _safe_message(raw: RawError) -> str:
    _line, seg_id, code, message, ele_pos, _sub, ele_ref, bad_value, _loop = raw
    message = _one_line(message)
    if ele_pos is None:
        if code == "1" and message.startswith("Segment ") and " not found" in message:
            # "Segment NM1*IL not found.  Started at ..." names the first element
            head, _, rest = message[len("Segment "):].partition(" not found")
            seg, _, first = head.partition("*")
            if seg == "HL" or (first and len(first) <= 3 and first.isalnum()
                               and seg not in _PHI_SEGMENTS):
                shown = head
            else:
                shown = seg or "(no id)"
            message = f"Segment {shown} not found{rest}"
        if bad_value and bad_value in message and not value_is_safe(seg_id, ""):
            message = message.replace(bad_value, "(value withheld)")
        return message
    if bad_value and not value_is_safe(seg_id, ele_ref):
        message = message.replace(bad_value, "(value withheld)")
    return message


def _element(ele_pos, subele_pos) -> Optional[str]:
    if ele_pos is None:
        return None
    return f"{ele_pos}:{subele_pos}" if subele_pos else f"{ele_pos}"


def to_ig_errors(raw_errors: list[RawError], chunk: _Slice, st_pos: int,
                 first_body_line: int) -> list[IGError]:
    """pyx12's errors of one slice as :class:`IGError` of the input file."""
    out: list[IGError] = []
    for raw in raw_errors:
        line, seg_id, code, message, ele_pos, subele_pos, ele_ref, bad_value, loop = raw
        if code in PRIVATE_CODES:
            continue
        if chunk.borrowed_last and isinstance(line, int):
            if line <= chunk.borrowed_last:
                continue
            if line == first_body_line and ele_pos is None and code in MISSING_CODES:
                continue
        pos = chunk.position(line)
        if code == TRAILING_SEPARATOR:
            code = "8"
        out.append(IGError(
            segment=pos,
            seg_count=pos - st_pos + 1 if pos is not None else None,
            seg_id=seg_id,
            code=str(code),
            message=_safe_message(raw),
            element=_element(ele_pos, subele_pos),
            element_ref=str(ele_ref or ""),
            bad_value=bad_value or "",
            loop_id=loop or "",
        ))
    return out


def failure_error(reason: str) -> IGError:
    return IGError(
        segment=None, seg_count=None, seg_id="ST", code=UNVALIDATED_CODE,
        message=f"the transaction set could not be validated against the implementation "
                f"guide: {reason}",
    )


# --------------------------------------------------------------------------------------
# The validator
# --------------------------------------------------------------------------------------


def _job(chunk: _Slice) -> tuple[str, int, int]:
    """Arguments of :func:`validate_interchange` for a slice: its text, its first own line
    (whose loop the previous slice's end needs) and its last body line."""
    return chunk.text, chunk.borrowed_last + 1, chunk.se_line - 1


def _at_slice_end(raw_errors: list[RawError], chunk: _Slice, result: Pyx12Result,
                  following: Pyx12Result) -> list[RawError]:
    """Errors pyx12 reports at a slice's synthetic SE, as it reports them at the HL that
    follows the slice in the input: in that HL's loop; none of the "missing" ones when
    pyx12 still stood on the previous subscriber's HL (with nothing of that loop in place,
    a subscriber HL re-enters the loop without checking what it lacks); and the errors of
    segments it could not place, which it holds back until it places one, hung on that HL
    (at the SE they would hang on whatever segment it reported last)."""
    stuck = chunk.before_subscriber and result.node == ("HL", "2000B")
    out = []
    for raw in raw_errors:
        if raw[0] == chunk.se_line:
            missing = raw[4] is None and raw[2] in MISSING_CODES
            if stuck and missing:
                continue
            raw = (raw[0], raw[1] if missing else "HL", *raw[2:8], following.loop)
        out.append(raw)
    return out


@dataclass
class _Pending:
    """One submitted transaction set waiting for its slices."""

    key: tuple[int, int]
    st_pos: int
    native: list[IGError]
    slices: dict[int, _Slice] = field(default_factory=dict)
    results: dict[int, Pyx12Result] = field(default_factory=dict)
    all_submitted: bool = False

    @property
    def complete(self) -> bool:
        return self.all_submitted and len(self.results) == len(self.slices)

    def finish(self) -> tuple[tuple[int, int], list[IGError], list[str]]:
        errors: list[tuple[tuple, IGError]] = []
        ts_codes: list[str] = []
        failures: list[str] = []
        last = len(self.slices) - 1
        for number in sorted(self.slices):
            chunk = self.slices[number]
            result = self.results[number]
            if result.failure:
                failures.append(result.failure)
                continue
            for code, _text in result.ts_errors:
                if code not in ENVELOPE_TS_CODES and code not in ts_codes:
                    ts_codes.append(code)
            raw_errors = result.errors
            if number < last:
                raw_errors = _at_slice_end(raw_errors, chunk, result, self.results[number + 1])
            converted = to_ig_errors(raw_errors, chunk, self.st_pos, chunk.borrowed_last + 1)
            for order, error in enumerate(converted):
                errors.append(((error.segment or 0, 0, number, order), error))
        for order, error in enumerate(self.native):
            errors.append(((error.segment or 0, 1, 0, order), error))
        errors.sort(key=lambda item: item[0])
        out: list[IGError] = []
        seen: set = set()
        for _key, error in errors:
            identity = (error.segment, error.seg_id, error.code, error.element, error.message)
            if identity not in seen:
                seen.add(identity)
                out.append(error)
        if failures:
            out.append(failure_error(failures[0]))
            if UNVALIDATED_CODE not in ts_codes:
                ts_codes.append(UNVALIDATED_CODE)
        return self.key, out, ts_codes


class Pyx12Validator:
    """Validates transaction sets with pyx12 in ``jobs`` worker processes.

    ``submit`` blocks while more than ``2 * jobs`` slices are in flight, so memory stays
    bounded however large the batch; ``jobs=1`` validates in this process, without a pool.
    """

    def __init__(self, jobs: Optional[int] = None, slice_segments: int = SLICE_SEGMENTS,
                 max_pending: Optional[int] = None):
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.slice_segments = slice_segments
        self.max_pending = max_pending or 2 * self.jobs
        self._pool: Optional[ProcessPoolExecutor] = None
        self._futures: dict[Future, tuple[_Pending, int]] = {}
        self._ready: deque = deque()
        #: segments validated (for throughput figures)
        self.segments = 0

    # -- TransactionValidator ------------------------------------------------------------
    def submit(self, key: tuple[int, int], ts: TransactionSet, delimiters: Delimiters) -> None:
        pending = _Pending(key, ts.segments[0].pos, hierarchy_errors(ts.segments))
        self.segments += len(ts.segments)
        for number, chunk in enumerate(_slices(ts, delimiters, self.slice_segments)):
            pending.slices[number] = chunk
            if self.jobs == 1:
                pending.results[number] = validate_interchange(*_job(chunk))
            else:
                self._submit_slice(pending, number, _job(chunk))
            chunk.text = ""  # the text is no longer needed here
        pending.all_submitted = True
        if pending.complete:
            self._ready.append(pending.finish())

    def completed(self, block: bool = False) -> Iterator[tuple[tuple[int, int], list[IGError], list[str]]]:
        if self._futures:
            if block:
                wait(list(self._futures))
            self._harvest()
        while self._ready:
            yield self._ready.popleft()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            _live_pools.discard(self._pool)
            self._pool = None
        self._futures.clear()

    # -- internals -----------------------------------------------------------------------
    def _submit_slice(self, pending: _Pending, number: int, job: tuple) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, initializer=_worker_init,
                                             initargs=(os.getpid(),))
            _live_pools.add(self._pool)
        while len(self._futures) >= self.max_pending:
            wait(list(self._futures), return_when=FIRST_COMPLETED)
            self._harvest()
        try:
            future = self._pool.submit(validate_interchange, *job)
        except BrokenProcessPool:
            # a worker died (killed, out of memory): validate here rather than not at all
            pending.results[number] = validate_interchange(*job)
            return
        self._futures[future] = (pending, number)

    def _harvest(self) -> None:
        for future in [f for f in self._futures if f.done()]:
            pending, number = self._futures.pop(future)
            try:
                pending.results[number] = future.result()
            except Exception as exc:  # a worker died (BrokenProcessPool) or similar
                pending.results[number] = Pyx12Result([], [], f"validator process failed ({type(exc).__name__})")
            if pending.complete:
                self._ready.append(pending.finish())
