"""claimscrub: a pre-submission scrubber for X12 837P professional claims."""

__version__ = "0.1.0"
