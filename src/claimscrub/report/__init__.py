"""Writers: each turns a :class:`claimscrub.scrub.RunResult` into one output per input file."""
