"""The `dataferry` command's entry point: SIGINT and SIGTERM are handled from the first
instant. Until a command installs its own handlers (dataferry.interrupt), nothing is
open, so a signal just ends the process with its exit code, without a traceback from
whatever import it interrupted."""

from __future__ import annotations

import os
import signal
import sys


def _leave(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGINT, _leave)
    signal.signal(signal.SIGTERM, _leave)
    # pydantic looks for plugins in every installed distribution's entry points the first
    # time a model is built (10 ms and more on each command); the spec's models want none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from .main import main as run

    run()
