"""claimscrub: a pre-submission scrubber for X12 837P professional claims.

The Python API (:mod:`claimscrub.api`) runs what ``claimscrub scrub`` runs::

    import claimscrub

    with claimscrub.scrub("claims.837", as_of="2026-11-22") as result:
        for claim in result.claims(flagged_only=True):
            print(claim.claim_id, claim.status, [f.rule for f in claim.findings])
        document = result.to_json()   # the CLI's claims.837.json, as text

:func:`scrub` takes paths, bytes or binary streams and the CLI's options as keyword
arguments; it returns a :class:`ScrubResult` (claims with dispositions and findings, the
999 and 277CA as text, the summary).
"""

__version__ = "0.1.0"

# The API is bound here, after ``claimscrub.scrub`` (the pipeline module of the same name)
# is imported by it, so ``claimscrub.scrub`` is the function.
from claimscrub.api import ClaimOutcome, FileReport, ScrubResult, Summary, scrub  # noqa: E402

__all__ = [
    "ClaimOutcome",
    "FileReport",
    "ScrubResult",
    "Summary",
    "scrub",
    "__version__",
]
