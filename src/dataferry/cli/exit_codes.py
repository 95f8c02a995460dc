"""One table from error class to exit code; the most specific class wins."""

from __future__ import annotations

from ..errors import (
    CheckFailed,
    DataferryError,
    InputError,
    NotSupported,
    SpecError,
    StackError,
    TargetBusy,
    TargetError,
    TargetUnavailable,
)

__all__ = ["EXIT_CODES", "INTERNAL_ERROR", "USAGE_ERROR", "exit_code_for"]

OK = 0
EXIT_CODES: dict[type[BaseException], int] = {
    TargetBusy: 10,  # before TargetUnavailable: subclasses come first
    TargetUnavailable: 6,  # before TargetError: subclasses come first
    CheckFailed: 9,
    SpecError: 3,
    InputError: 4,
    TargetError: 5,
    StackError: 7,
    NotSupported: 8,
    DataferryError: 1,
}
INTERNAL_ERROR = 70  # a bug: not one of ours (sysexits' EX_SOFTWARE)
USAGE_ERROR = 64  # the command line is wrong (sysexits' EX_USAGE); 2 is plan's "changes"


def exit_code_for(err: BaseException) -> int:
    for cls, code in EXIT_CODES.items():
        if isinstance(err, cls):
            return code
    return INTERNAL_ERROR
