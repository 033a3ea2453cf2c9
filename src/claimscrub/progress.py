"""The progress display of ``claimscrub scrub`` on a terminal (rich).

One row per stage (load: rule tables and validator; read, validate, edit, write) as the run reaches it, each with its bar,
the claims handled, claims per second, elapsed time and time left; rich redraws it ten
times a second, so it shows from the first second. It is written to standard error only
when that is a terminal, unless ``--progress``/``--no-progress`` says otherwise.
"""

from __future__ import annotations

from typing import Optional

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _ClaimsColumn(ProgressColumn):
    """Claims handled so far and claims per second in this stage."""

    def render(self, task: Task) -> Text:
        claims = task.fields.get("claims", 0)
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = claims / elapsed if elapsed else 0.0
        return Text(f"{claims:>7,} · {rate:>6,.0f} claims/s", style="progress.data.speed")


class ProgressDisplay:
    """A :class:`claimscrub.scrub.RunProgress` drawn with rich on standard error."""

    def __init__(self, console: Optional[Console] = None, force: bool = False):
        self.console = console or Console(stderr=True, force_terminal=True if force else None)
        self.progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(bar_width=14),
            TextColumn("{task.percentage:>3.0f}%"),
            _ClaimsColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=10,
            transient=False,
        )
        self._task = None
        self._claims = 0
        self._name: Optional[str] = None
        self._started = False

    def stage(self, name: str, total: Optional[int] = None, unit: str = "claims") -> None:
        if name == self._name and self._task is not None:
            return  # already shown (the command line starts "load" before the run does)
        self._name = name
        if not self._started:
            self.progress.start()
            self._started = True
        self._finish_task()
        self._claims = 0
        self._task = self.progress.add_task(name, total=total or None, claims=0, unit=unit)

    def advance(self, done: int = 0, claims: int = 0) -> None:
        if self._task is None:
            return
        self._claims += claims
        self.progress.update(self._task, advance=done, claims=self._claims)

    def _finish_task(self) -> None:
        if self._task is not None:
            task = next(t for t in self.progress.tasks if t.id == self._task)
            if task.total is None:
                self.progress.update(self._task, total=max(task.completed, 1), completed=max(task.completed, 1))
            else:
                self.progress.update(self._task, completed=task.total)
            self.progress.stop_task(self._task)
            self._task = None

    def close(self) -> None:
        if self._started:
            self._finish_task()
            self.progress.stop()
            self._started = False


def timing_line(timings: dict[str, float]) -> str:
    """``timings: read 1.20 s, validate 0.00 s, edit 0.02 s, write 0.31 s`` (-v)."""
    order = ("read", "validate", "edit", "write")
    parts = [f"{name} {timings[name]:.2f} s" for name in order if name in timings]
    return "timings: " + ", ".join(parts)


__all__ = ["ProgressDisplay", "timing_line"]
