"""The last line of every command that writes: what the run did, and what to do next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import (
    InputError,
    Interrupted,
    SpecError,
    StackError,
    TargetBusy,
    TargetUnavailable,
)

__all__ = ["Verdict", "next_step"]


@dataclass(frozen=True)
class Verdict:
    run_id: str | None
    seconds: float
    records: Sequence[Any]  # the LoadRecords that ended, in order
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def written(self) -> int:
        return sum(r.counts.written for r in self.records)

    @property
    def rejected(self) -> int:
        return sum(r.counts.rejected for r in self.records)

    @property
    def rejects_files(self) -> list[str]:
        return [r.rejects_file for r in self.records if r.rejects_file]

    def line(self) -> str:
        """``ok: run 1f2e3d4c5b6a in 27.9s: 1,504,000 rows written, 0 rejected``"""
        state = "ok" if self.ok else ("interrupted" if self._interrupted else "failed")
        run = f"run {self.run_id}" if self.run_id else "run"
        text = f"{state}: {run} in {self.seconds:.1f}s: {self.written:,} rows written"
        text += f", {self.rejected:,} rejected"
        if self.rejects_files:
            text += f" (listed in {', '.join(self.rejects_files)})"
        if self.ok:
            return text
        done = [r.dataset for r in self.records if r.status in ("ok", "skipped")]
        stopped = [r.dataset for r in self.records if r.status in ("failed", "interrupted")]
        text += f"; done: {', '.join(done) or 'nothing'}"
        if stopped:
            text += f"; not done: {', '.join(stopped)}"
        assert self.error is not None
        return text + f". Next: {next_step(self.error)}"

    @property
    def _interrupted(self) -> bool:
        return isinstance(self.error, Interrupted)

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "rows_written": self.written,
            "rows_rejected": self.rejected,
            "rejects_files": self.rejects_files,
        }


def next_step(err: BaseException) -> str:
    """One sentence: what a user does now. Loads already done are not done again."""
    again = "run the same command again (what was loaded is not loaded twice)"
    if isinstance(err, Interrupted):
        return again + " to finish the work."
    if isinstance(err, TargetBusy):
        return "wait for the other run to finish (it is named above), then " + again + "."
    if isinstance(err, TargetUnavailable):
        return (
            "check the target with `dataferry status` (is it up, reachable?), then " + again + "."
        )
    if isinstance(err, SpecError):
        return "fix the spec at the key named above; `dataferry validate` checks it."
    if isinstance(err, InputError):
        return (
            "fix the file at the line named above (the rejects file lists every bad row), "
            "or allow rejects with --max-rejects; then " + again + "."
        )
    if isinstance(err, StackError):
        return "see `dataferry stack status` and the server's log named above."
    return "fix what the error names, then " + again + "."
