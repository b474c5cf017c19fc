"""Progress on long work (README "Progress on a terminal"): ingest per file, metrics per stage,
the monthly and evidence reports per stage, payer packets one by one.

A `rich` display on standard error appears only when standard error is a terminal, `--quiet`
was not given, and the work has already run for DELAY seconds (short commands stay as they
were); it is transient, so the summary printed afterwards is what remains on screen. It shows
file names, stage names and counts, never an identifier or a value from the data; a file name
is shown as text (no markup) with its control characters made inert, as every printed line. Library code
opens a `tracking` block and reports into the Tracker it yields; outside a terminal the
Tracker does nothing.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

from pipeline.console import console_text

DELAY = 2.0  # seconds of work before the display appears
_state: dict[str, Any] = {"quiet": False, "display": None}
_lock = threading.Lock()


def set_quiet(quiet: bool) -> None:
    """`--quiet`: no progress display, whatever the terminal."""
    _state["quiet"] = quiet


def shown() -> bool:
    """Whether a display may appear: standard error is a terminal and not `--quiet`."""
    return not _state["quiet"] and sys.stderr.isatty()


class Tracker:
    """One piece of work: a line of the display with its stage text and a bar of done / total
    (files, packets, or the named `stages` of the work: reaching stage i means i are done)."""

    def __init__(self, display: Display | None, title: str, total: int,
                 stages: tuple[str, ...]) -> None:
        self.display, self.title, self.stages = display, console_text(title), stages
        self.task = display.progress.add_task(self.title, total=total) if display else None

    def stage(self, text: str) -> None:
        """What the work is doing now (a file name, a stage), shown after the title."""
        if self.display and self.task is not None:
            done = self.stages.index(text) if text in self.stages else None
            description = f"{self.title}: {console_text(text)}"
            # drawn at once (when shown): a stage may be over before the next regular redraw
            self.display.progress.update(self.task, description=description, completed=done,
                                         refresh=self.display.started)

    def advance(self, steps: int = 1) -> None:
        if self.display and self.task is not None:
            self.display.progress.advance(self.task, steps)


class Display:
    """The rich Progress on standard error, started by a timer after DELAY seconds."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn())
        # printed lines go above the display when they reach this terminal; printed into a
        # file they stay where they were sent
        self.progress = Progress(*columns, console=Console(stderr=True), transient=True,
                                 redirect_stdout=sys.stdout.isatty())
        self.started = False
        self.timer = threading.Timer(DELAY, self.start)
        self.timer.daemon = True

    def start(self) -> None:
        with _lock:
            if not self.started and _state["display"] is self:
                self.progress.start()
                self.started = True

    def remove(self, task: Any) -> None:
        """Remove a finished line (and redraw, so it goes before anything else is printed)."""
        with _lock:
            self.progress.remove_task(task)
            if self.started:
                self.progress.refresh()

    def stop(self) -> None:
        self.timer.cancel()
        with _lock:
            if self.started:
                self.progress.stop()
            self.started = False


@contextlib.contextmanager
def tracking(title: str, total: int | None = None, stages: tuple[str, ...] = ()
             ) -> Iterator[Tracker]:
    """A Tracker for the work of the block: `total` steps (advance) or the named `stages`
    (stage). The first (outermost) block owns the display; a block inside it (`outcomes run`
    runs every step) adds its own line and removes it after."""
    total = len(stages) if total is None else total
    display = _state["display"]
    if display is not None:
        tracker = Tracker(display, title, total, stages)
        try:
            yield tracker
        finally:
            if tracker.task is not None:
                display.remove(tracker.task)
        return
    if not shown():
        yield Tracker(None, title, total, stages)
        return
    display = Display()
    _state["display"] = display
    if DELAY > 0:
        display.timer.start()
    else:
        display.start()
    try:
        yield Tracker(display, title, total, stages)
    finally:
        _state["display"] = None
        display.stop()
