"""JSON records <-> DynamoDB items: one codec, used for writing, reading and validation.

Numbers stay Decimal end to end (within DynamoDB's 38 significant digits, else rejected,
never rounded). Declared columns are checked against their logical types; undeclared
attributes pass through as they are (maps and lists included).

DynamoDB's documented limits are checked here, per record, before anything is sent, so
that no local server's leniency decides: items of at most 400 KB, numbers of at most 38
significant digits with a magnitude from 1E-130 to 9.99...E+125 (or zero), attribute
values nested at most 32 levels deep, key values of at most 2048 bytes (partition) and
1024 (sort), the table's and its indexes', attribute names of 1 byte to under 64 KB,
strings and names UTF-8 can encode.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import math
import re
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ...spec import Column, Dataset

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEM_BYTES",
    "ColumnRejected",
    "ItemCodec",
    "number_text",
    "plain_value",
    "to_json",
    "wire_from_json",
    "wire_json",
    "wire_json_default",
    "wire_value",
]

MAX_ITEM_BYTES = 400 * 1024
MAX_DEPTH = 32  # a map or list attribute is level 1; one inside it level 2; and so on
MAX_DIGITS = 38
# A key attribute's string or binary value, as UTF-8 (or raw) bytes: the table's and
# every global secondary index's partition key at most 2048, sort key at most 1024.
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_NAME_BYTES = 64 * 1024  # an attribute name: at least one character, under 64 KB
MAX_EXPONENT = 125  # the largest magnitude is 9.9999999999999999999999999999999999999E+125
MIN_EXPONENT = -130  # the smallest non-zero magnitude is 1E-130
# Dates and timestamps as the warehouse's cast (Arrow's) reads them; Python's
# fromisoformat takes more (20240101, week dates, 7 fractional digits) and, before 3.11,
# less (no Z). Checked against Arrow's cast in tests/unit/test_json_reader_and_codec.py.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?)?)?"
    r"(Z|[+-](\d{2})(?::?(\d{2}))?)?"
)


class ColumnRejected(ValueError):
    """A declared attribute's value does not fit its column: the reject names it, so
    that `init --infer` can relax that declaration alone."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column


def _check_value(name: str, col: Column, value: Any) -> Any:
    """``value`` as DynamoDB should store it (a set, bytes), or ValueError saying why not."""
    t = col.type
    if t.name == "binary":
        if not isinstance(value, str):
            raise ValueError(f"attribute {name}: binary values are base64 strings in JSON")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError(f"attribute {name}: not valid base64") from None
    if t.name in ("string_set", "number_set"):
        numbers = t.name == "number_set"
        ok = (
            (lambda v: isinstance(v, (int, Decimal)) and not isinstance(v, bool))
            if numbers
            else (lambda v: isinstance(v, str))
        )
        if not isinstance(value, list) or not value or not all(ok(v) for v in value):
            kind = "numbers" if numbers else "strings"
            raise ValueError(f"attribute {name}: a {t} is a non-empty JSON array of {kind}")
        as_set = {Decimal(v) for v in value} if numbers else set(value)
        if len(as_set) != len(value):
            raise ValueError(f"attribute {name}: a {t} cannot hold the same value twice")
        return as_set
    if t.name in ("text", "varchar"):
        if not isinstance(value, str):
            raise ValueError(f"attribute {name}: expected a string, got {_json_kind(value)}")
        if t.length is not None and len(value) > t.length:
            raise ValueError(f"attribute {name}: {len(value)} characters, longer than {t}")
    elif t.is_numeric:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise ValueError(f"attribute {name}: expected a number, got {_json_kind(value)}")
        d = Decimal(value)
        if t.name == "real":  # the warehouse's FLOAT: past its range, Infinity or 0
            narrowed = struct.unpack("f", struct.pack("f", float(d)))[0]
            if math.isinf(narrowed):
                raise ValueError(f"attribute {name}: {value} is out of range for real")
            if narrowed == 0 and d != 0:
                raise ValueError(f"attribute {name}: {value} is too close to zero for real")
        if t.int_range is not None:
            lo, hi = t.int_range
            if d != d.to_integral_value() or not lo <= d <= hi:
                raise ValueError(f"attribute {name}: {value} is not a {t}")
        elif t.name == "numeric":
            assert t.precision is not None
            assert t.scale is not None
            exponent = d.as_tuple().exponent
            scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            digits = len(d.as_tuple().digits)
            if scale > t.scale or digits - scale > t.precision - t.scale:
                raise ValueError(f"attribute {name}: {value} does not fit {t}")
    elif t.name == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"attribute {name}: expected true or false")
    elif t.name in ("date", "timestamp", "timestamptz"):
        if not isinstance(value, str):
            raise ValueError(f"attribute {name}: expected an ISO {t.name} string")
        problem = _iso_problem(t.name, value)
        if problem:
            raise ValueError(f"attribute {name}: {value!r} {problem}")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if value is None:
        return "null"
    kinds: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}
    return kinds.get(type(value), "a value")


def _iso_problem(kind: str, text: str) -> str | None:
    """Why ``text`` is not an ISO date, timestamp or timestamptz, or None."""
    m = _ISO.fullmatch(text)
    if m is None:
        return f"is not an ISO {kind}"
    year, month, day, hour, minute, second, zone, zone_hours, zone_minutes = m.groups()
    try:
        dt.date(int(year), int(month), int(day))  # no year 0, no 30 February
    except ValueError:
        return f"is not an ISO {kind}"
    clock = [(hour, 23), (minute, 59), (second, 59), (zone_hours, 23), (zone_minutes, 59)]
    if any(part is not None and int(part) > most for part, most in clock):
        return f"is not an ISO {kind}"
    if kind == "date" and (hour or zone):
        return "is not an ISO date (it has a time)"
    if kind == "timestamp" and zone:
        return "has a time zone offset; a timestamp holds none (declare timestamptz)"
    if kind == "timestamptz" and not (hour and zone):
        return "has no time zone offset"
    return None


def number_text(value: int | Decimal) -> str:
    """The text DynamoDB is sent for a number; ValueError if DynamoDB cannot hold it."""
    text = str(value)
    # Plain digits, 38 characters at most: within every limit (the common case, cheaply).
    if len(text) <= MAX_DIGITS and "E" not in text and text[-1].isdigit():
        return text
    d = value if isinstance(value, Decimal) else Decimal(value)
    if not d.is_finite():
        raise ValueError(f"{text} is not a number DynamoDB can store")
    if d.is_zero():
        return "0"
    digits = d.as_tuple().digits  # a non-zero Decimal has no leading zero digits
    significant = len("".join(map(str, digits)).rstrip("0"))
    if significant > MAX_DIGITS:
        raise ValueError(
            f"{_short(text)} has {significant} significant digits, more than DynamoDB's "
            f"{MAX_DIGITS}"
        )
    if d.adjusted() > MAX_EXPONENT:
        raise ValueError(
            f"{_short(text)} is larger in magnitude than DynamoDB's largest number, "
            "9.9999999999999999999999999999999999999E+125"
        )
    if d.adjusted() < MIN_EXPONENT:
        raise ValueError(
            f"{_short(text)} is smaller in magnitude than DynamoDB's smallest non-zero "
            "number, 1E-130"
        )
    # Trailing zeros do not count as digits in DynamoDB; sent without them, so that no
    # server counts them either.
    return text if len(digits) <= MAX_DIGITS else str(d.normalize(_EXACT))


_EXACT = decimal.Context(prec=MAX_DIGITS)  # only trailing zeros are dropped: checked above


def _short(text: str) -> str:
    return text if len(text) <= 60 else f"{text[:25]}...{text[-25:]} ({len(text)} characters)"


def _wire(value: Any, size: list[int], depth: int = 0) -> dict[str, Any]:
    """DynamoDB's wire form of a JSON value, adding its size (as DynamoDB counts it) to
    ``size[0]``. The common types are dispatched directly (this runs once per attribute
    of every record); anything else goes to boto3's TypeSerializer."""
    t = type(value)
    if t is str:
        size[0] += len(value.encode())
        return {"S": value}
    if t is Decimal or t is int:
        text = number_text(value)
        size[0] += len(text) // 2 + 2
        return {"N": text}
    if t is bool:
        size[0] += 1
        return {"BOOL": value}
    if value is None:
        size[0] += 1
        return {"NULL": True}
    # exact types first (the common case, cheaply); then subclasses, such as the JSON
    # reader's mapping that notes repeated member names
    if t is dict or t is list or isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            raise ValueError(f"nested more than DynamoDB's {MAX_DEPTH} levels deep")
        size[0] += 3
        if isinstance(value, list):
            return {"L": [_wire(v, size, depth + 1) for v in value]}
        out = {}
        for k, v in value.items():
            size[0] += len(k.encode()) + 1
            out[k] = _wire(v, size, depth + 1)
        return {"M": out}
    if t is set and value and all(type(v) in (int, Decimal) for v in value):
        texts = [number_text(v) for v in value]
        size[0] += sum(len(x) // 2 + 2 for x in texts)
        return {"NS": texts}
    wire = wire_value(value)
    size[0] += len(json.dumps(wire, default=str))
    return wire


def wire_value(value: Any) -> dict[str, Any]:
    """DynamoDB's wire form of a Python value, as boto3's TypeSerializer writes it (which
    dataferry no longer imports: boto3 costs every command a tenth of a second, and the
    client is botocore's): str S, int and Decimal N (number_text checks the limits), bool
    BOOL, None NULL, bytes B, mappings M, lists and tuples L, non-empty sets SS, NS or BS.
    TypeError names any other type, as boto3 does."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, Decimal)):
        return {"N": number_text(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): wire_value(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [wire_value(v) for v in value]}
    if isinstance(value, (set, frozenset)) and value:
        if all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        if all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in value):
            return {"NS": [number_text(v) for v in value]}
        if all(isinstance(v, (bytes, bytearray)) for v in value):
            return {"BS": [bytes(v) for v in value]}
    raise TypeError(f"unsupported type {type(value).__name__} for value {_short(repr(value))}")


def plain_value(wire: dict[str, Any]) -> Any:
    """The Python value of a wire value, as boto3's TypeDeserializer gives it (numbers as
    exact Decimals; binary as bytes, where boto3 wraps them in its Binary)."""
    ((kind, v),) = wire.items()
    if kind == "S":
        return v
    if kind == "N":
        return Decimal(v)
    if kind == "BOOL":
        return bool(v)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: plain_value(x) for k, x in v.items()}
    if kind == "L":
        return [plain_value(x) for x in v]
    if kind == "SS":
        return set(v)
    if kind == "NS":
        return {Decimal(x) for x in v}
    if kind == "B":
        return bytes(v)
    if kind == "BS":
        return {bytes(x) for x in v}
    raise TypeError(f"unknown DynamoDB type {kind}")


class ItemCodec:
    """Validates and converts one dataset's records."""

    def __init__(self, ds: Dataset) -> None:
        assert ds.key is not None
        self.ds = ds
        self.key_attributes = ds.key.attributes
        # looked up once: encode runs per item (a million times for a million items)
        self._columns = list(ds.columns.items())
        # every key a value must fit: the table's and its indexes', the tightest kept
        limits: dict[str, int] = {}
        for hash_key, range_key in [(ds.key.hash, ds.key.range)] + [
            (ix.hash, ix.range) for ix in ds.indexes
        ]:
            for attr, most in (
                (hash_key, MAX_PARTITION_KEY_BYTES),
                (range_key, MAX_SORT_KEY_BYTES),
            ):
                if attr is not None:
                    limits[attr] = min(most, limits.get(attr, most))
        self._key_kinds = [
            (a, ds.key_type(a).dynamodb(), limits[a] // 4) for a in ds.key.attributes
        ]
        # a string of at most a quarter of the limit in characters is surely within it
        self._index_keys = [
            (a, most // 4) for a, most in limits.items() if a not in ds.key.attributes
        ]
        self._limits = limits

    def encode(self, record: dict[str, Any]) -> dict[str, Any]:
        """The DynamoDB item for ``record``; ValueError names what is wrong."""
        for attr, want, quarter in self._key_kinds:
            value = record.get(attr)
            if value is None:
                raise ValueError(f"key attribute {attr} is missing")
            if want == "S" and (not isinstance(value, str) or value == ""):
                raise ValueError(f"key attribute {attr} must be a non-empty string")
            if want == "N" and (isinstance(value, bool) or not isinstance(value, (int, Decimal))):
                raise ValueError(f"key attribute {attr} must be a number")
            if want == "B" and (not isinstance(value, str) or value == ""):
                raise ValueError(f"key attribute {attr} must be non-empty base64")
            if want != "N" and len(value) > quarter:
                self._check_key_size(attr, value)
        for attr, quarter in self._index_keys:
            value = record.get(attr)
            if isinstance(value, str) and len(value) > quarter:
                self._check_key_size(attr, value)
        converted = {}
        for name, col in self._columns:
            value = record.get(name)
            if value is None:
                if not col.nullable:
                    raise ColumnRejected(name, f"attribute {name} is required")
                continue
            try:
                new = _check_value(name, col, value)
            except ValueError as e:
                raise ColumnRejected(name, str(e)) from None
            if new is not value:
                converted[name] = new
        if converted:
            record = {**record, **converted}
        size = [0]
        item = {}
        try:
            for k, v in record.items():
                item[k] = _wire(v, size)
                name_bytes = len(k.encode())
                if not name_bytes or name_bytes >= MAX_NAME_BYTES:
                    raise ValueError(
                        f"an attribute name of {name_bytes} bytes: DynamoDB takes 1 byte to "
                        "under 64 KB"
                    )
                size[0] += name_bytes
        except UnicodeEncodeError as e:
            bad = e.object[e.start : e.end].encode("unicode_escape").decode()
            raise ValueError(
                f"a string holds a lone UTF-16 surrogate ({bad}), which UTF-8 cannot "
                "encode: DynamoDB cannot store it, and dataferry will not alter it"
            ) from None
        except RecursionError:
            raise ValueError(f"nested more than DynamoDB's {MAX_DEPTH} levels deep") from None
        except (TypeError, ValueError, decimal.DecimalException) as e:
            raise ValueError(f"cannot be stored in DynamoDB: {e}") from None
        if size[0] > MAX_ITEM_BYTES:
            raise ValueError(f"item is {size[0]} bytes, over DynamoDB's 400 KB limit")
        return item

    def _check_key_size(self, attr: str, value: str) -> None:
        most = self._limits[attr]
        column = self.ds.columns.get(attr)
        if column is not None and column.type.name == "binary":  # base64 in JSON
            n_bytes = len(value) * 3 // 4 - value[-2:].count("=")
        else:
            n_bytes = len(value.encode("utf-8", "surrogatepass"))
        if n_bytes > most:
            kind = "partition" if most == MAX_PARTITION_KEY_BYTES else "sort"
            raise ValueError(
                f"key attribute {attr} is {n_bytes} bytes, over DynamoDB's {most} for a {kind} key"
            )

    def key_of(self, item: dict[str, Any]) -> tuple[Any, ...]:
        """A hashable key: key attributes are S, N or B, one (type, value) pair each.
        Numbers compare as numbers (1 and 1.0 are one key to DynamoDB)."""
        out = []
        for a in self.key_attributes:
            ((kind, value),) = item[a].items()
            out.append((kind, Decimal(value) if kind == "N" else value))
        return tuple(out)

    @staticmethod
    def decode(item: dict[str, Any]) -> dict[str, Any]:
        return {k: plain_value(v) for k, v in item.items()}


def to_json(value: Any) -> str:
    """JSON text for a decoded DynamoDB value, numbers written exactly (no float)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)) or type(value).__name__ == "Binary":
        raw = bytes(value.value) if hasattr(value, "value") else bytes(value)
        return json.dumps(base64.b64encode(raw).decode())
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return "[" + ",".join(to_json(v) for v in items) + "]"
    raise TypeError(f"cannot express {type(value).__name__} as JSON")


def wire_json_default(value: Any) -> str:
    """json's default for wire-form items: binary attributes (B, BS) travel
    base64-encoded, as botocore would send them (and as DynamoDB JSON files hold them)."""
    raw = value.value if hasattr(value, "value") else value
    if isinstance(raw, (bytes, bytearray)):
        return base64.b64encode(raw).decode()
    raise TypeError(f"cannot send {type(value).__name__} to DynamoDB")


# UTF-8, not ASCII escapes: a character outside ASCII takes 2-4 bytes instead of 6 or 12
# (25 items of 400 KB of such text would otherwise make a request body of 30 MB). Every
# string is valid UTF-8: encode() refuses lone surrogates. No cycle check: an item is a
# tree.
_ENCODER = json.JSONEncoder(
    default=wire_json_default, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def wire_json(item: dict[str, Any]) -> bytes:
    """A wire-form item as the JSON text DynamoDB's API takes (and ImportTable's
    DYNAMODB_JSON lines hold under "Item"), in UTF-8."""
    return _ENCODER.encode(item).encode()


def wire_from_json(text: bytes) -> dict[str, Any]:
    """The wire-form item ``wire_json`` wrote, binary values as bytes again."""
    return {k: _unbase64(v) for k, v in json.loads(text).items()}


def _unbase64(wire: dict[str, Any]) -> dict[str, Any]:
    ((kind, v),) = wire.items()
    if kind == "B":
        return {"B": base64.b64decode(v)}
    if kind == "BS":
        return {"BS": [base64.b64decode(x) for x in v]}
    if kind == "M":
        return {"M": {k: _unbase64(x) for k, x in v.items()}}
    if kind == "L":
        return {"L": [_unbase64(x) for x in v]}
    return wire
