"""Vectorised conversion of text columns to their declared types, with exact reasons.

The fast path casts a whole column at once; only when a cast fails is the column walked
value by value to name the first offending row and why. Nothing is rounded or truncated:
a value that does not fit its declared type is an error, never a silent change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ..spec import Column

__all__ = ["BadValue", "convert_column"]


@dataclass
class BadValue(Exception):
    """Row ``index`` of a batch holds a value its column cannot take."""

    index: int
    column: str
    value: object
    reason: str

    def __str__(self) -> str:
        return f"column {self.column}: {self.reason} (value {self.value!r})"


def _first_true(mask: pa.Array) -> int | None:
    hits = pc.indices_nonzero(pc.fill_null(mask, False))
    return int(hits[0].as_py()) if len(hits) else None


def _cast_or_locate(arr: pa.Array, target: pa.DataType, name: str, label: str) -> pa.Array:
    try:
        return pc.cast(arr, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for i, value in enumerate(arr.to_pylist()):
        if value is None:
            continue
        try:
            pc.cast(pa.array([value], pa.string()), target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            text = str(e)
            # Arrow's own words for range and scale problems are clear; parse failures less so.
            unparsable = "parse" in text.lower() or "not a valid" in text.lower()
            reason = f"not a valid {label}" if unparsable else text
            raise BadValue(i, name, value, reason) from None
    raise AssertionError("cast failed but no single value fails")  # pragma: no cover


def _reject_json_constant(text: str) -> None:
    raise ValueError(f"{text} is not valid JSON")


def convert_column(arr: pa.Array, name: str, column: Column) -> pa.Array:
    """Cast a string column to ``column``'s type; raise BadValue for the first bad value."""
    ltype = column.type
    if not column.nullable and arr.null_count:
        i = _first_true(pc.is_null(arr))
        assert i is not None
        raise BadValue(i, name, None, "missing required value")
    if ltype.int_range is not None:
        as_int = _cast_or_locate(arr, pa.int64(), name, str(ltype))
        lo, hi = ltype.int_range
        i = _first_true(pc.or_(pc.less(as_int, lo), pc.greater(as_int, hi)))
        if i is not None:
            raise BadValue(i, name, arr[i].as_py(), f"out of range for {ltype} ({lo}..{hi})")
        return pc.cast(as_int, ltype.arrow())
    if ltype.name in ("real", "double"):
        as_float = _cast_or_locate(arr, pa.float64(), name, str(ltype))
        i = _first_true(pc.or_(pc.is_nan(as_float), pc.is_inf(as_float)))
        if i is not None:
            raise BadValue(i, name, arr[i].as_py(), "NaN and Infinity are not allowed")
        return pc.cast(as_float, ltype.arrow())
    if ltype.name in ("text", "varchar", "json"):
        i = _first_true(pc.match_substring(arr, "\x00"))
        if i is not None:
            raise BadValue(i, name, arr[i].as_py(), "NUL characters cannot be stored")
        if ltype.length is not None:
            i = _first_true(pc.greater(pc.utf8_length(arr), ltype.length))
            if i is not None:
                value = arr[i].as_py()
                raise BadValue(i, name, value, f"{len(value)} characters, longer than {ltype}")
        if ltype.name == "json":
            for i, value in enumerate(arr.to_pylist()):
                if value is not None:
                    try:
                        json.loads(value, parse_constant=_reject_json_constant)
                    except ValueError as e:
                        raise BadValue(i, name, value, f"not valid JSON: {e}") from None
        return arr
    # numeric (exact, no rounding), boolean, date, timestamp, timestamptz
    return _cast_or_locate(arr, ltype.arrow(), name, str(ltype))
