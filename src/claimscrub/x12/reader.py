"""Streaming X12 tokenizer.

Delimiters come from the ISA header: the element separator is the character after
``ISA``, the component separator is ISA16, the segment terminator is the character right
after ISA16, and the repetition separator is ISA11 (00501 and later). A line break after a
terminator is allowed (LF or CRLF), and so is none. The file is read in chunks, so memory
does not grow with the file.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional

from claimscrub.errors import InputError

CHUNK_SIZE = 1 << 20
#: How much is read looking for the ISA header before the file is judged not to have one.
MAX_HEADER = 1 << 20
#: The longest segment accepted (the 837P's longest is far under a kilobyte; a binary or
#: unterminated file would otherwise be held whole in memory).
MAX_SEGMENT = 1 << 20
#: How far a file may grow past the size it had when opened before it is refused.
MAX_GROWTH = 64 << 20
WHAT_WE_READ = "claimscrub reads X12 837P files (005010X222A1)"


@dataclass(frozen=True)
class Delimiters:
    element: str
    component: str
    repetition: str
    segment: str


class Segment:
    """One segment: its 1-based ordinal in the file and its elements (``elements[0]`` is the
    id); ``raw``, when the reader made it, is its text as read (the elements joined by the
    element separator), so that what keeps the text need not join them again."""

    __slots__ = ("pos", "elements", "raw")

    def __init__(self, pos: int, elements: list[str], raw: Optional[str] = None):
        self.pos = pos
        self.elements = elements
        self.raw = raw

    @property
    def id(self) -> str:
        return self.elements[0]

    def get(self, index: int) -> str:
        """Element ``index`` (1-based, as in ``CLM01``), or ``""`` when absent."""
        elements = self.elements
        return elements[index] if index < len(elements) else ""

    def text(self, delimiters: Delimiters) -> str:
        """The segment as written, without its terminator."""
        return delimiters.element.join(self.elements)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Segment({self.pos}, {self.elements!r})"


def _unsafe_pattern(delimiters: Delimiters) -> "re.Pattern[str]":
    """Characters no X12 element may hold: C0 controls, DEL, C1 controls and the
    replacement character (a byte that was not UTF-8), less the file's own delimiters."""
    own = {delimiters.element, delimiters.component, delimiters.repetition, delimiters.segment}
    chars = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), 0xFFFD) if chr(c) not in own]
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]")


def unsafe_places(elements: list[str], component: str,
                  pattern: "re.Pattern[str]") -> list[tuple[int, int, str]]:
    """(element index, component index (1-based, 0 when the element has no components),
    first offending character) of each element of a segment holding one."""
    places = []
    for index, value in enumerate(elements):
        match = pattern.search(value)
        if match is None:
            continue
        parts = value.split(component) if component and component in value else None
        sub = 0
        if parts is not None:
            sub = next((i for i, part in enumerate(parts, start=1) if pattern.search(part)), 0)
        places.append((index, sub, match.group(0)))
    return places


def _describe_non_x12(head: bytes) -> str:
    """Say what a file that does not start with ISA looks like."""
    if not head.strip():
        return "the file is empty"
    if b"\x00" in head[:4096]:
        return "binary data, not X12 text"
    sample = head[:4096]
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    if printable < 0.9 * len(sample):
        return "binary data, not X12 text"
    text = sample.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    first_line = text.splitlines()[0] if text else ""
    upper = text[:3].upper()
    if upper in ("GS*", "ST*") or text[:2] in ("GS", "ST") and len(text) > 2 and not text[2].isalnum():
        return f"no ISA interchange header (the file starts with a {text[:2]} segment)"
    if first_line.count(",") >= 2 and "*" not in first_line[:20]:
        return "comma-separated text (CSV), not X12"
    if text.startswith("<") or text.startswith("{"):
        return "XML or JSON text, not X12"
    return "text that does not start with an ISA interchange header"


class X12Reader:
    """Iterate the segments of one X12 file without loading it whole.

    ``bytes_read`` grows as the file is consumed, for progress reporting.
    """

    def __init__(self, path: str | os.PathLike, display_name: Optional[str] = None):
        self.path = os.fspath(path)
        self.name = display_name or os.path.basename(self.path)
        try:
            self.size = os.path.getsize(self.path)
        except OSError:
            self.size = 0
        self.bytes_read = 0
        self.mtime_ns = 0
        self._digest = hashlib.sha256()
        self.delimiters: Optional[Delimiters] = None
        self.isa_version = ""
        #: segment ordinal -> [(element index, component index or 0, character)] of each
        #: element holding a character X12 does not allow (a control character, a byte
        #: that is not text); filled as segments are read (see :func:`unsafe_places`)
        self.unsafe: dict[int, list[tuple[int, int, str]]] = {}
        self.line_break = ""

    def _fail(self, message: str, segment: Optional[int] = None) -> InputError:
        return InputError(self.name, message, segment)

    def _open(self) -> BinaryIO:
        """Open the file without blocking: a FIFO, socket or device (given as an input or
        found in an input folder) would never end, so it is refused, not read."""
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            raise self._fail(f"cannot be read ({(exc.strerror or str(exc)).lower()})") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode)
                    else "a socket" if stat.S_ISSOCK(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "not a regular file")
            raise self._fail(f"skipped: {kind}, not a regular file; {WHAT_WE_READ}")
        self.size = info.st_size
        self.mtime_ns = info.st_mtime_ns
        self._digest = hashlib.sha256()
        return os.fdopen(fd, "rb")

    def _take(self, data: bytes) -> bytes:
        """Count and fingerprint bytes as they are read."""
        self.bytes_read += len(data)
        self._digest.update(data)
        if self.bytes_read > self.size + MAX_GROWTH:
            raise self._fail("the file kept growing while it was read; it is still being written")
        return data

    @property
    def fingerprint(self) -> tuple[int, int, str]:
        """(size, modification time, SHA-256) of what was read."""
        return (self.bytes_read, self.mtime_ns, self._digest.hexdigest())

    def _read_header(self, handle: BinaryIO) -> tuple[str, "codecs.IncrementalDecoder"]:
        head = self._take(handle.read(max(CHUNK_SIZE, 1024)))
        while True:  # the whole ISA header must be in hand, however small the chunks
            stripped = head.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
            if len(stripped) >= 4 and stripped.count(stripped[3:4]) >= 17:
                break
            if len(head) >= MAX_HEADER:
                break  # an ISA header is 106 bytes; this is not one (reported below)
            more = self._take(handle.read(max(CHUNK_SIZE, 1024)))
            if not more:
                break
            head += more
        stripped = head.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
        if not stripped.startswith(b"ISA"):
            raise self._fail(f"{_describe_non_x12(head)}; {WHAT_WE_READ}")
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(stripped)
        if len(text) < 4:
            raise self._fail(f"the ISA header is cut off; {WHAT_WE_READ}", 1)
        element = text[3]
        if element.isalnum() or element.isspace():
            raise self._fail(
                f"ISA header has no usable element separator ({element!r}); {WHAT_WE_READ}", 1
            )
        # ISA has 16 elements: find the 16th separator; ISA16 follows it, then the terminator.
        index = 0
        for _ in range(16):
            index = text.find(element, index + 1)
            if index < 0:
                raise self._fail(
                    f"the ISA header is cut off or malformed (fewer than 16 elements); {WHAT_WE_READ}",
                    1,
                )
        if index + 2 >= len(text):
            raise self._fail(f"the ISA header is cut off before its segment terminator; {WHAT_WE_READ}", 1)
        component = text[index + 1]
        terminator = text[index + 2]
        after = text[index + 3 : index + 5]
        #: what follows each segment terminator (after the ISA's): CRLF, LF, CR or nothing;
        #: the accepted-claims 837 is written in the same style
        self.line_break = "\r\n" if after.startswith("\r\n") else after[:1] if after[:1] in ("\n", "\r") else ""
        fields = text[: index + 1].split(element)
        self.isa_version = fields[12].strip()
        repetition = fields[11] if self.isa_version >= "00501" else ""
        if terminator.isalnum() or terminator in (" ", element, component):
            raise self._fail(
                f"the ISA header is malformed: no segment terminator after ISA16 "
                f"(found {terminator!r}); {WHAT_WE_READ}",
                1,
            )
        self.delimiters = Delimiters(element, component, repetition, terminator)
        return text, decoder

    def __iter__(self) -> Iterator[Segment]:
        with self._open() as handle:
            buffer, decoder = self._read_header(handle)
            delimiters = self.delimiters
            assert delimiters is not None
            terminator = delimiters.segment
            element = delimiters.element
            # line breaks around segments; with a line-break terminator, the other one
            # (CRLF files terminated by LF), so no element ends in a stray CR
            strip_chars = "".join(c for c in "\r\n" if c != terminator)
            unsafe = _unsafe_pattern(delimiters)
            pos = 0
            while True:
                pieces = buffer.split(terminator)
                buffer = pieces.pop()
                check = unsafe.search(terminator.join(pieces)) is not None
                for piece in pieces:
                    if strip_chars:
                        piece = piece.strip(strip_chars)
                    if not piece or piece.isspace():
                        continue
                    pos += 1
                    elements = piece.split(element)
                    if check and unsafe.search(piece):
                        self.unsafe[pos] = unsafe_places(elements, delimiters.component, unsafe)
                    yield Segment(pos, elements, piece)
                if len(buffer) > MAX_SEGMENT:
                    raise self._fail(
                        f"no segment terminator ({terminator!r}, from the ISA header) in "
                        f"{MAX_SEGMENT >> 20} MiB after segment {pos}: the file is not "
                        f"usable as X12; {WHAT_WE_READ}", pos + 1)
                chunk = self._take(handle.read(CHUNK_SIZE))
                if not chunk:
                    break
                buffer += decoder.decode(chunk)
            buffer += decoder.decode(b"", final=True)
            rest = buffer.strip(" \t\r\n\x1a")
            if rest:
                pos += 1
                elements = rest.split(element)
                if unsafe.search(rest):
                    self.unsafe[pos] = unsafe_places(elements, delimiters.component, unsafe)
                yield Segment(pos, elements, rest)
