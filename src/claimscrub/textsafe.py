"""Input bytes made safe to show: control characters, bytes that were not text and
characters XML cannot hold become visible escapes (``\\x00``), and long values are cut.

Everything claimscrub echoes from an input (a file name on stderr, a value in the HTML
report) goes through here, so no control character or line break of the input reaches a
terminal, a log line or the report.
"""

from __future__ import annotations

import re

#: C0 controls, DEL, C1 controls, lone surrogates (undecodable bytes of a file name read
#: with ``surrogateescape``), U+FFFE/U+FFFF, the Unicode line and paragraph separators and
#: the replacement character (a byte of the input that was not UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u2028\u2029\ufffd]")


def _escape(match: re.Match) -> str:
    char = match.group(0)
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte surrogateescape could not decode
        return f"\\x{code - 0xDC00:02x}"
    if code == 0xFFFD:
        return "\\ufffd"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every unsafe character written as an escape (``\\x00``, ``\\udc9f``)."""
    if not text:
        return text
    return _UNSAFE.sub(_escape, text)


def has_unsafe(text: str) -> bool:
    return _UNSAFE.search(text) is not None


def shorten(text: str, limit: int = 120) -> str:
    """``visible(text)``, cut to ``limit`` characters with the size of what was left out."""
    text = visible(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"
