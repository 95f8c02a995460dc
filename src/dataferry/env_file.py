"""The environment from a ``.env`` file, as the original project's dev container read it.

Read once, before the spec: ``DATAFERRY_ENV_FILE`` names the file, else ``.env`` in the
current folder is used when there is one. A variable already in the environment always
wins: the file fills in only what is missing, so CI and containers, which set their own,
are never overridden by a file someone left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["load_env_file"]


def load_env_file(environ: dict[str, str] | None = None) -> Path | None:
    """Load the file into ``environ`` (os.environ) without overriding; the file read."""
    env = os.environ if environ is None else environ
    named = env.get("DATAFERRY_ENV_FILE")
    path = Path(named) if named else Path(".env")
    if not path.is_file():
        if named:
            from .errors import SpecError

            raise SpecError(f"DATAFERRY_ENV_FILE={named}: no such file")
        return None
    from dotenv import dotenv_values

    for key, value in dotenv_values(path).items():
        if value is not None and key not in env:
            env[key] = value
    return path
