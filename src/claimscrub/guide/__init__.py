"""Implementation-guide validation compiled from pyx12's own 837P map (see
:mod:`claimscrub.guide.compile`, :mod:`claimscrub.guide.walker`)."""

from claimscrub.guide.validator import CompiledValidator

__all__ = ["CompiledValidator"]
