"""The long steps of `scte up` (the broker and provisioning, the services' first start with their
database migrations, the seed data), shown with Rich while they run.

On a terminal each step is a live line: a spinner, what is happening now, a count and a bar where
the total is known, the time so far; it is replaced by one line when the step ends. In a log (no
terminal: `scte up > log`, the tests) only those end lines are written, so the log stays readable:

    ✓ broker on 127.0.0.1:9324, topics and queues provisioned (2.1 s)
    ✓ 10 services ready (first start: database migrations) (14.8 s)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["Step", "step"]


class Step:
    """One running step: `advance()` when one more of its parts is done, `note(...)` to say which."""

    def __init__(self, progress: Progress, task: TaskID, description: str) -> None:
        self._progress = progress
        self._task = task
        self.description = description
        self.done_text: str | None = None

    def advance(self, note: str | None = None) -> None:
        self._progress.advance(self._task)
        if note is not None:
            self.note(note)

    def note(self, text: str) -> None:
        """What the step is doing now, after its description."""
        self._progress.update(self._task, description=f"{escape(self.description)}: {escape(text)}")

    def finish(self, text: str) -> None:
        """The line written when the step ends (default: its description)."""
        self.done_text = text


@contextmanager
def step(console: Console, description: str, total: int | None = None) -> Iterator[Step]:
    """Show `description` running (with `total` parts: a bar and a count) until the block ends; then
    one line with the time it took, marked as failed when the block raised."""
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(bar_width=24), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
    task = progress.add_task(escape(description), total=total)
    current = Step(progress, task, description)
    started = time.monotonic()
    ok = False
    try:
        with progress:
            yield current
        ok = True
    finally:
        took = time.monotonic() - started
        text = escape(current.done_text or description)
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        console.print(f"{mark} {text} ({took:.1f} s)", highlight=False)
