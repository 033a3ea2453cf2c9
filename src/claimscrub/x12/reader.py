"""Streaming X12 tokenizer.

Delimiters come from the ISA header: the element separator is the character after
``ISA``, the component separator is ISA16, the segment terminator is the character right
after ISA16, and the repetition separator is ISA11 (00501 and later). A line break after a
terminator is allowed (LF or CRLF), and so is none. The file is read in chunks, so memory
does not grow with the file.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional

from claimscrub.errors import InputError

CHUNK_SIZE = 1 << 20
WHAT_WE_READ = "claimscrub reads X12 837P files (005010X222A1)"


@dataclass(frozen=True)
class Delimiters:
    element: str
    component: str
    repetition: str
    segment: str


class Segment:
    """One segment: its 1-based ordinal in the file and its elements (``elements[0]`` is the id)."""

    __slots__ = ("pos", "elements")

    def __init__(self, pos: int, elements: list[str]):
        self.pos = pos
        self.elements = elements

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
        self.delimiters: Optional[Delimiters] = None
        self.isa_version = ""

    def _fail(self, message: str, segment: Optional[int] = None) -> InputError:
        return InputError(self.name, message, segment)

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "rb")
        except OSError as exc:
            raise self._fail(f"cannot be read ({exc.strerror.lower()})") from None

    def _read_header(self, handle: BinaryIO) -> tuple[str, "codecs.IncrementalDecoder"]:
        head = handle.read(max(CHUNK_SIZE, 1024))
        while True:  # the whole ISA header must be in hand, however small the chunks
            stripped = head.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
            if len(stripped) >= 4 and stripped.count(stripped[3:4]) >= 17:
                break
            more = handle.read(max(CHUNK_SIZE, 1024))
            if not more:
                break
            head += more
        self.bytes_read = len(head)
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
            strip_chars = "\r\n" if terminator not in "\r\n" else ""
            pos = 0
            while True:
                pieces = buffer.split(terminator)
                buffer = pieces.pop()
                for piece in pieces:
                    if strip_chars:
                        piece = piece.strip(strip_chars)
                    if not piece or piece.isspace():
                        continue
                    pos += 1
                    yield Segment(pos, piece.split(element))
                chunk = handle.read(CHUNK_SIZE)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                buffer += decoder.decode(chunk)
            buffer += decoder.decode(b"", final=True)
            rest = buffer.strip(" \t\r\n\x1a")
            if rest:
                pos += 1
                yield Segment(pos, rest.split(element))
