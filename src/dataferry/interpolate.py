"""``${VAR}`` and ``${VAR:-default}`` interpolation of spec values from the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["UnsetVariable", "interpolate"]

# $$ escapes a literal dollar; ${NAME} and ${NAME:-default} read the environment.
_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class UnsetVariable(ValueError):
    """A ``${VAR}`` without a default names a variable that is not set."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(f"{path}: environment variable {name} is not set")
        self.path = path
        self.name = name


def _substitute(text: str, env: Mapping[str, str], path: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise UnsetVariable(path, name)
            return default
        return value

    return _PATTERN.sub(repl, text)


def interpolate(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Return ``node`` with every string interpolated; ``path`` names keys in errors."""
    if isinstance(node, str):
        return _substitute(node, env, path or "<root>")
    if isinstance(node, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    return node
