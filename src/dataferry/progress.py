"""Progress of a run: one line per (stage, dataset), right whatever the threads.

Stages report through a ``StageProgress`` (bound to its stage's name): ``expect`` when a
dataset's size becomes known (the CSV's lines, the items that passed validation, the
source table's rows), ``advance`` as rows are done (from any thread), ``done`` when the
dataset ends. A display shows them:

- ``bar``: rich's live bars on a terminal: rows done, rows/s, percent and ETA when the size
  is known; a finished line stops its timer and stays;
- ``plain``: for CI, cron and pipes: a line to stderr per dataset every ``interval_s`` while
  it runs, and one when it ends;
- ``none``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Literal

__all__ = ["Display", "Mode", "StageProgress", "make_display"]

Mode = Literal["auto", "bar", "plain", "none"]
PLAIN_INTERVAL_S = 10.0


@dataclass
class _Line:
    stage: str
    dataset: str
    started: float = field(default_factory=time.monotonic)
    rows: int = 0
    total: int | None = None
    ended: float | None = None
    printed: float = field(default_factory=time.monotonic)


class Display:
    """No display: what every display does, doing nothing."""

    def __init__(self) -> None:
        self._lines: dict[tuple[str, str], _Line] = {}
        self._lock = threading.Lock()

    def _line(self, stage: str, dataset: str) -> _Line:
        key = (stage, dataset)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(stage, dataset)
            self._opened(line)
        return line

    def expect(self, stage: str, dataset: str, total: int) -> None:
        with self._lock:
            line = self._line(stage, dataset)
            line.total = total
            self._changed(line)

    def advance(self, stage: str, dataset: str, rows: int) -> None:
        with self._lock:
            line = self._line(stage, dataset)
            line.rows += rows
            self._changed(line)

    def done(self, stage: str, dataset: str) -> None:
        with self._lock:
            line = self._lines.get((stage, dataset))
            if line is None or line.ended is not None:
                return
            line.ended = time.monotonic()
            self._ended(line)

    def rows(self, stage: str, dataset: str) -> int:
        line = self._lines.get((stage, dataset))
        return 0 if line is None else line.rows

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    # what a display does; called under the lock
    def _opened(self, line: _Line) -> None:
        pass

    def _changed(self, line: _Line) -> None:
        pass

    def _ended(self, line: _Line) -> None:
        pass


def describe(line: _Line, now: float | None = None) -> str:
    """``[load sql] orders: 412,000 / 1,000,000 rows (41%), 98,000 rows/s, ETA 6s``."""
    end = line.ended if line.ended is not None else (now or time.monotonic())
    seconds = max(end - line.started, 1e-9)
    rate = line.rows / seconds
    text = f"[{line.stage}] {line.dataset}: {line.rows:,}"
    if line.total:
        text += f" / {line.total:,} rows ({min(100.0, 100.0 * line.rows / line.total):.0f}%)"
    else:
        text += " rows"
    text += f", {rate:,.0f} rows/s"
    if line.ended is not None:
        return text + f", done in {seconds:.1f}s"
    if line.total and rate > 0 and line.rows < line.total:
        text += f", ETA {(line.total - line.rows) / rate:.0f}s"
    return text


class PlainDisplay(Display):
    def __init__(self, out: IO[str], interval_s: float = PLAIN_INTERVAL_S) -> None:
        super().__init__()
        self.out = out
        self.interval_s = interval_s

    def _print(self, line: _Line, now: float) -> None:
        line.printed = now
        print(describe(line, now), file=self.out, flush=True)

    def _changed(self, line: _Line) -> None:
        now = time.monotonic()
        if now - line.printed >= self.interval_s:
            self._print(line, now)

    def _ended(self, line: _Line) -> None:
        self._print(line, time.monotonic())


class LogDisplay(PlainDisplay):
    """Plain progress as log records (``--log-format json``): the same pace, with the
    numbers as fields."""

    def __init__(self, interval_s: float = PLAIN_INTERVAL_S) -> None:
        super().__init__(None, interval_s)  # type: ignore[arg-type]

    def _print(self, line: _Line, now: float) -> None:
        line.printed = now
        fields = {"stage": line.stage, "dataset": line.dataset, "rows": line.rows}
        if line.total:
            fields["total"] = line.total
        if line.ended is not None:
            fields["done"] = True
        logging.getLogger("dataferry.progress").info(describe(line, now), extra=fields)


class BarDisplay(Display):
    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        super().__init__()
        self.bar = Progress(
            TextColumn("[bold]{task.fields[stage]}[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}{task.fields[of]} rows"),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            # each redraw of every line costs a few ms: four a second is smooth enough
            refresh_per_second=4,
        )
        self._tasks: dict[tuple[str, str], Any] = {}

    def _opened(self, line: _Line) -> None:
        self._tasks[(line.stage, line.dataset)] = self.bar.add_task(
            line.dataset, total=None, stage=line.stage, of="", rate=""
        )

    def _changed(self, line: _Line) -> None:
        seconds = max(time.monotonic() - line.started, 1e-9)
        self.bar.update(
            self._tasks[(line.stage, line.dataset)],
            completed=line.rows,
            total=line.total,
            of=f" / {line.total:,}" if line.total else "",
            rate=f"{line.rows / seconds:,.0f} rows/s",
        )

    def _ended(self, line: _Line) -> None:
        task = self._tasks[(line.stage, line.dataset)]
        self._changed(line)
        # a finished line stays, its timer stopped; the size is now what was done
        self.bar.update(task, total=line.rows, of=f" / {line.rows:,}")
        self.bar.stop_task(task)

    def start(self) -> None:
        self.bar.start()

    def stop(self) -> None:
        self.bar.stop()


def make_display(mode: Mode, console: Any, quiet: bool, json_logs: bool = False) -> Display:
    """The display for ``--progress``: auto is bars on a terminal, plain lines elsewhere,
    nothing with -q or --json; log records when the logs are JSON lines."""
    if mode == "none" or (mode == "auto" and quiet):
        return Display()
    if json_logs:
        return LogDisplay()
    if mode == "bar" or (mode == "auto" and console.is_terminal):
        return BarDisplay(console)
    return PlainDisplay(console.file)


@dataclass(frozen=True)
class StageProgress:
    """A display bound to one stage, as the stages call it."""

    display: Display = field(default_factory=Display)
    stage: str = ""

    def expect(self, dataset: str, total: int) -> None:
        self.display.expect(self.stage, dataset, total)

    def advance(self, dataset: str, rows: int) -> None:
        self.display.advance(self.stage, dataset, rows)

    def done(self, dataset: str) -> None:
        self.display.done(self.stage, dataset)
