"""dataferry: CSV -> PostgreSQL, JSON -> DynamoDB, both -> DuckDB or Snowflake, from one spec.

The library is usable without the CLI::

    from dataferry import load_spec, stages
    spec = load_spec("dataferry.yaml")
    stages.run(spec)
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    DataferryError,
    InputError,
    NotSupported,
    SpecError,
    StackError,
    TargetError,
    TargetUnavailable,
)

if TYPE_CHECKING:
    from .spec import Spec, load_spec

__version__ = "0.1.0"
__all__ = [
    "DataferryError",
    "InputError",
    "NotSupported",
    "Spec",
    "SpecError",
    "StackError",
    "TargetError",
    "TargetUnavailable",
    "__version__",
    "load_spec",
]


def __getattr__(name: str) -> Any:
    # The spec's model is pydantic: imported when a spec is read, not by --version.
    if name in ("Spec", "load_spec"):
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
