"""Errors that make an input unusable, and the exit codes the command returns."""

from __future__ import annotations

from typing import Optional

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_UNUSABLE = 2
EXIT_USAGE = 3
EXIT_FAILURE = 4


class ClaimscrubError(Exception):
    """Base class for errors claimscrub reports as one line."""


class InputError(ClaimscrubError):
    """An input file claimscrub cannot read as 837P.

    The message is one line naming the file, the segment (when there is one) and what
    is wrong; it never carries member ids or names.
    """

    def __init__(self, file: str, message: str, segment: Optional[int] = None):
        self.file = file
        self.segment = segment
        self.detail = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        from claimscrub.textsafe import shorten

        where = f"{self.file}: segment {self.segment}: " if self.segment else f"{self.file}: "
        # the file name is printable already; the detail never carries a line break or a
        # control character of the input, nor a value without end
        return shorten(where, 600) + shorten(self.detail, 400)


class ConfigError(ClaimscrubError):
    """A configuration file or rule table that cannot be used."""
