"""DynamoDB items in wire form ({"S": ...}, {"N": "1.50"}, ...) straight to Arrow columns.

The Scan reader gets each page as the JSON DynamoDB sent, parsed by json.loads, and turns
it into columns here without building Python values item by item first: numbers go from
their text to Decimal, int or float once; undeclared attributes become one JSON object
text per item, numbers written exactly as DynamoDB sent them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ...types import LogicalType

__all__ = ["BadAttribute", "column_array", "extras_array", "wire_json"]


class BadAttribute(ValueError):
    """A declared attribute's value that is not of its type, in the item at ``index``."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _number_text(text: str) -> str:
    if "e" in text or "E" in text:  # DynamoDB sends plain digits; keep JSON exact anyway
        d = Decimal(text)
        return format(d, "f") if d == d.to_integral_value() else str(d)
    return text


def _blob_text(value: Any) -> str:
    # botocore's parsed form holds bytes; the raw JSON already holds base64 text
    return value if isinstance(value, str) else base64.b64encode(bytes(value)).decode()


def wire_json(value: dict[str, Any]) -> str:
    """JSON text for one wire value; sets as sorted arrays, binary as base64 strings."""
    ((kind, v),) = value.items()
    if kind == "S":
        return str(_dumps(v))
    if kind == "N":
        return _number_text(v)
    if kind == "BOOL":
        return "true" if v else "false"
    if kind == "NULL":
        return "null"
    if kind == "M":
        return "{" + ",".join(f"{json.dumps(k)}:{wire_json(x)}" for k, x in v.items()) + "}"
    if kind == "L":
        return "[" + ",".join(wire_json(x) for x in v) + "]"
    if kind == "SS":
        return "[" + ",".join(_dumps(x) for x in sorted(v)) + "]"
    if kind == "NS":
        return "[" + ",".join(_number_text(x) for x in sorted(v, key=str)) + "]"
    if kind == "B":
        return str(_dumps(_blob_text(v)))
    if kind == "BS":
        return "[" + ",".join(_dumps(x) for x in sorted(_blob_text(b) for b in v)) + "]"
    raise ValueError(f"unknown DynamoDB type {kind}")


def _converter(t: LogicalType) -> tuple[str | None, Callable[[dict[str, Any]], Any], pa.DataType]:
    """(the wire key a plain value sits under, or None; wire value -> Python value Arrow
    takes; the Arrow type to build before casting to the column's)."""
    if t.is_numeric:
        # The number's text, cast by Arrow in C++: exact for decimals (a value that does
        # not fit the declared scale fails the cast), and far cheaper than a Decimal or
        # int object per value.
        return "N", (lambda v: v["N"]), pa.string()
    if t.name == "boolean":
        return "BOOL", (lambda v: v["BOOL"]), t.arrow()
    if t.name == "binary":
        return (
            None,
            (lambda v: base64.b64decode(v["B"]) if isinstance(v["B"], str) else bytes(v["B"])),
            t.arrow(),
        )
    if t.name in ("json", "string_set", "number_set"):
        return None, wire_json, pa.string()
    # text, varchar; dates and timestamps are ISO strings, cast by Arrow below
    return "S", (lambda v: v["S"]), pa.string()


def column_array(name: str, t: LogicalType, items: list[dict[str, Any]]) -> pa.Array:
    """One declared attribute of every item, typed; ValueError names a value that is not
    of the declared type."""
    key, convert, build = _converter(t)
    values: list[Any] | None = None
    if key is not None:
        # The common case in one comprehension; a NULL or a value of another type makes
        # it fail, and the careful loop below then says which.
        try:
            values = [None if (v := item.get(name)) is None else v[key] for item in items]
        except (KeyError, TypeError):
            values = None
    if values is None:
        values = []
        append = values.append
        for i, item in enumerate(items):
            v = item.get(name)
            if v is None or "NULL" in v:
                append(None)
                continue
            try:
                append(convert(v))
            except (KeyError, ValueError, TypeError, ArithmeticError):
                raise BadAttribute(
                    f"attribute {name} holds {json.dumps(v)[:80]}, not {t}", i
                ) from None
    from ...readers.convert import cast_or_locate

    try:
        array = pa.array(values, type=build)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"attribute {name} holds a value that is not {t}: {e}") from None
    if build == t.arrow():
        return array
    out = cast_or_locate(array, t.arrow(), str(t))  # the first bad value, and why
    if out.bad:
        i, (value, why) = min(out.bad.items())
        raise BadAttribute(f"attribute {name} holds {str(value)[:80]}: {why}", i)
    return out.array


def extras_array(declared: set[str], items: list[dict[str, Any]]) -> pa.Array:
    """The attributes no column declares, one JSON object per item (None when none)."""
    out: list[str | None] = []
    for item in items:
        if item.keys() <= declared:
            out.append(None)
            continue
        rest = [f"{json.dumps(k)}:{wire_json(v)}" for k, v in item.items() if k not in declared]
        out.append("{" + ",".join(rest) + "}")
    return pa.array(out, type=pa.string())
