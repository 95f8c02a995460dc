"""dataferry: CSV -> PostgreSQL, JSON -> DynamoDB, both -> DuckDB or Snowflake, from one spec.

The library is usable without the CLI::

    from dataferry import load_spec, stages
    spec = load_spec("dataferry.yaml")
    stages.run(spec)
"""

from .errors import (
    DataferryError,
    InputError,
    NotSupported,
    SpecError,
    StackError,
    TargetError,
    TargetUnavailable,
)
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
