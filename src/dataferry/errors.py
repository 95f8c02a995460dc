"""The exceptions dataferry raises, and whether retrying can help.

::

    DataferryError                  root: catch this to catch everything of ours
    ├── SpecError                   the pipeline spec is invalid (file, key path, reason)
    ├── InputError                  a data file is unreadable or holds a bad row/record
    │   └── RejectedRows            more rows were rejected than --max-rejects allows
    ├── TargetError                 a target refused the load (schema mismatch, key violation)
    │   ├── TargetUnavailable       transient: the target cannot be reached yet; retrying may help
    │   │   └── TargetBusy          another dataferry run holds the target's writer lock
    │   └── CheckFailed             the data arrived but a check on it failed (reconciliation,
    │                               a model's keys); the change was rolled back
    ├── StackError                  the embedded local stack could not be started or stopped
    └── NotSupported                the spec asks for something this version does not do

    Interrupted (KeyboardInterrupt) SIGINT or SIGTERM: the run was cancelled; it passes
                                    every `except Exception`, and drivers that clean up
                                    on Ctrl-C (psycopg cancels the running query) do so

Driver exceptions (psycopg, botocore, duckdb) are translated into these at one boundary
per driver, so callers never need to import a driver to handle an error.
"""

from __future__ import annotations

__all__ = [
    "CheckFailed",
    "DataferryError",
    "InputError",
    "Interrupted",
    "NotSupported",
    "RejectedRows",
    "SpecError",
    "StackError",
    "TargetBusy",
    "TargetError",
    "TargetUnavailable",
]


class DataferryError(Exception):
    """Root of every error dataferry raises on purpose."""

    transient: bool = False


class SpecError(DataferryError):
    """The pipeline spec is invalid; the message names the file and the key path."""


class InputError(DataferryError):
    """A data file is unreadable or holds a row or record that cannot be loaded."""

    def __init__(
        self, path: str, reason: str, *, line: int | None = None, record: int | None = None
    ) -> None:
        where = path
        if line is not None:
            where += f":{line}"
        elif record is not None:
            where += f": record {record}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.reason = reason
        self.line = line
        self.record = record


class RejectedRows(InputError):
    """More rows of a file were rejected than the dataset allows; nothing was loaded."""

    def __init__(self, path: str, count: int, allowed: int, first: str, dest: str | None) -> None:
        where = f"; every rejected row is in {dest}" if dest else ""
        reason = (
            f"{count} row(s) rejected, more than the {allowed} allowed (--max-rejects); "
            f"nothing was loaded. First: {first}{where}"
        )
        DataferryError.__init__(self, f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.line = None
        self.record = None
        self.count = count


class TargetError(DataferryError):
    """A target store or warehouse refused the load."""


class TargetUnavailable(TargetError):
    """A target cannot be reached (yet); waiting and retrying may help."""

    transient = True


class TargetBusy(TargetUnavailable):
    """Another dataferry run holds the target's writer lock past the --wait deadline."""


class CheckFailed(TargetError):
    """A check on loaded data failed (reconciliation, a model's keys); nothing changed."""


class StackError(DataferryError):
    """The embedded local stack could not be started, stopped or inspected."""


class NotSupported(DataferryError):
    """The spec asks for a feature this version of dataferry does not provide."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM cancelled the run; open transactions are rolled back.

    A KeyboardInterrupt (for SIGTERM too), so that no ``except Exception`` on the way up
    (a retry loop, a driver's cleanup) can swallow it, and so that drivers do what they
    do on Ctrl-C: psycopg cancels the query in the server and waits for it to stop.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")
