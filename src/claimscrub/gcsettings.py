"""The garbage collector as a run's processes use it.

A run allocates millions of small objects that live for one claim (segments, element
lists, claim models, findings) and forms almost no reference cycles. CPython's default
(a young collection every 700 net allocations, older generations every 10) spends a
measurable share of a run scanning objects that reference counting frees anyway, and its
full collections walk the rule tables and code sets every time. A run's processes
therefore collect the young generation every :data:`YOUNG` allocations, and the worker
processes, forked after the tables are loaded, move what they inherit to the permanent
generation (:func:`gc.freeze`), which the collector no longer walks. Cycles are still
collected: only less often.

The CLI sets this for its own process (:func:`tune`); the local engine's workers and the
writer processes set it when they start (:func:`tune_forked`). A program that imports
claimscrub keeps its own settings.
"""

from __future__ import annotations

import gc

#: net allocations between collections of the young generation (CPython's default: 700)
YOUNG = 50_000
#: young collections per collection of the middle generation, and those per full one
MIDDLE, OLD = 20, 100


def tune() -> None:
    """Collect less often in this process (see the module's documentation)."""
    gc.set_threshold(YOUNG, MIDDLE, OLD)


def tune_forked() -> None:
    """:func:`tune`, in a process forked from a run: what it inherited (the rule tables,
    code sets, the compiled guide) is moved out of the collector's reach."""
    gc.freeze()
    tune()
