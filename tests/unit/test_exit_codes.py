import re

import pytest

from dataferry.cli.exit_codes import EXIT_CODES, INTERNAL_ERROR, exit_code_for
from dataferry.errors import (
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
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (SpecError("x"), 3),
        (InputError("f", "bad"), 4),
        (TargetError("x"), 5),
        (TargetUnavailable("x"), 6),
        (TargetBusy("x"), 10),
        (StackError("x"), 7),
        (NotSupported("x"), 8),
        (CheckFailed("x"), 9),
        (DataferryError("x"), 1),
        (RuntimeError("bug"), INTERNAL_ERROR),
    ],
)
def test_each_error_class_has_its_code(err: BaseException, code: int) -> None:
    assert exit_code_for(err) == code


def test_every_exit_code_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for code in [0, 2, INTERNAL_ERROR, 130, 143, *EXIT_CODES.values()]:
        assert re.search(rf"^\| {code} \|", readme, re.M), f"exit code {code} not in README"
