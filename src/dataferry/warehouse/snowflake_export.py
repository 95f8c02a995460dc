"""A DynamoDB export typed inside Snowflake: the SQL that turns its items, landed from S3
as one VARIANT each, into the raw table's columns.

The scan path types items in Python (stores/dynamodb/wire_columns.py); this one must
give the same rows. Each declared attribute becomes one expression, and a query first
looks for any value the Python reader would refuse (a number with more decimals than
its column, text where a number is declared, a date Arrow would not parse), so a bad
value stops the merge with the same message instead of being rounded or nulled by a
Snowflake cast. json and set columns, and the undeclared attributes kept in
``_attributes``, are written as JSON by dynamodb_wire.js run as a temporary JavaScript
UDF, created only when a column or an item needs it.

Attribute names and patterns reach SQL as bound parameters, never pasted in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..types import LogicalType
from .identifiers import ident

__all__ = [
    "UNSUPPORTED",
    "Fragment",
    "TypedAttribute",
    "extras_value",
    "has_extras",
    "typed_attribute",
    "udf_sql",
]

ITEM = "item['Item']"  # a landed line is {"Item": {attribute: wire value}}
WIRE_JSON = "DATAFERRY_WIRE_JSON"
EXTRAS = "DATAFERRY_EXTRAS"
# real is float32 in the Python reader; Snowflake has no type to round to it in SQL.
UNSUPPORTED = frozenset({"real"})

# What Arrow's casts accept (readers/convert and wire_columns cast through Arrow); the
# TRY_ casts after them catch what the shape allows but the calendar does not.
_INTEGER = "-?[0-9]+"
_DECIMAL = "-?[0-9]+([.][0-9]+)?"
_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = "[T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?"
_TIMESTAMP = f"{_DATE}({_TIME})?"
_TIMESTAMPTZ = f"{_DATE}{_TIME}(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)"


@dataclass
class Fragment:
    """SQL text with %s placeholders and their values, in order."""

    sql: str
    params: list[Any] = field(default_factory=list)

    def format(self, **parts: Fragment) -> Fragment:
        """Substitute ``{name}`` in the text by each part, keeping the parameters in the
        order their placeholders appear."""
        out: list[Any] = []
        text = self.sql
        pieces = []
        rest = text
        own = iter(self.params)
        while rest:
            brace = rest.find("{")
            head = rest if brace < 0 else rest[:brace]
            pieces.append(head)
            out += [next(own) for _ in range(head.count("%s"))]
            if brace < 0:
                break
            close = rest.index("}", brace)
            part = parts[rest[brace + 1 : close]]
            pieces.append(part.sql)
            out += part.params
            rest = rest[close + 1 :]
        return Fragment("".join(pieces), out)

    @staticmethod
    def join(separator: str, parts: list[Fragment], wrap: str = "{}") -> Fragment:
        """The parts' SQL, each placed in ``wrap``, joined by ``separator``."""
        return Fragment(
            separator.join(wrap.format(p.sql) for p in parts), [x for p in parts for x in p.params]
        )


@dataclass
class TypedAttribute:
    """One declared attribute: its typed value and the test for a value it refuses."""

    value: Fragment
    bad: Fragment | None
    uses_udf: bool = False


def _attr(name: str) -> Fragment:
    return Fragment(f"{ITEM}[%s]", [name])


def typed_attribute(name: str, t: LogicalType) -> TypedAttribute:
    """The SQL for attribute ``name`` declared as ``t``: the typed value (NULL where the
    attribute is absent or NULL) and the condition under which an item holds a value the
    Python reader would refuse."""
    a = _attr(name)
    held = Fragment("{a} IS NOT NULL AND {a}['NULL'] IS NULL").format(a=a)
    if t.name in ("json", "string_set", "number_set"):
        # wire_json takes any kind of value: no wrong one to look for
        value = Fragment(
            f"CASE WHEN {{held}} THEN PARSE_JSON({ident(WIRE_JSON)}({{a}})) END"
        ).format(held=held, a=a)
        return TypedAttribute(value, None, uses_udf=True)
    if t.name == "boolean":
        raw = Fragment("{a}['BOOL']").format(a=a)
        return TypedAttribute(
            Fragment("{raw}::BOOLEAN").format(raw=raw),
            # DynamoDB's BOOL always holds a boolean: only another kind of value is wrong
            Fragment("{held} AND {raw} IS NULL").format(held=held, raw=raw),
        )
    if t.name == "binary":
        text = Fragment("{a}['B']::VARCHAR").format(a=a)
        return TypedAttribute(
            Fragment("TO_BINARY({t}, 'BASE64')").format(t=text),
            Fragment("{held} AND TRY_TO_BINARY({t}, 'BASE64') IS NULL").format(held=held, t=text),
        )
    if t.is_numeric:
        n = Fragment("{a}['N']::VARCHAR").format(a=a)
        if t.name == "double":
            value = Fragment("TO_DOUBLE({n})").format(n=n)
            wrong = Fragment("TRY_TO_DOUBLE({n}) IS NULL").format(n=n)
        elif t.name == "numeric":
            assert t.precision is not None
            assert t.scale is not None
            value = Fragment(f"TO_NUMBER({{n}}, {t.precision:d}, {t.scale:d})").format(n=n)
            wrong = Fragment(
                "NOT REGEXP_LIKE({n}, %s) "
                f"OR LENGTH(RTRIM(SPLIT_PART({{n}}, '.', 2), '0')) > {t.scale:d} "
                f"OR LENGTH(LTRIM(REPLACE(SPLIT_PART({{n}}, '.', 1), '-', ''), '0')) "
                f"> {t.precision - t.scale:d}",
                [_DECIMAL],
            ).format(n=n)
        else:
            lo, hi = t.int_range or (0, 0)
            value = Fragment("TO_NUMBER({n}, 38, 0)").format(n=n)
            wrong = Fragment(
                "NOT REGEXP_LIKE({n}, %s) "
                f"OR COALESCE(TRY_TO_NUMBER({{n}}, 38, 0) NOT BETWEEN {lo:d} AND {hi:d}, TRUE)",
                [_INTEGER],
            ).format(n=n)
        return TypedAttribute(
            value,
            Fragment("{held} AND ({n} IS NULL OR {wrong})").format(held=held, n=n, wrong=wrong),
        )
    s = Fragment("{a}['S']::VARCHAR").format(a=a)
    wrong = Fragment("FALSE")
    value = s
    if t.name == "varchar" and t.length:
        wrong = Fragment(f"LENGTH({{s}}) > {t.length:d}").format(s=s)
    elif t.name == "date":
        value = Fragment("TO_DATE({s}, 'YYYY-MM-DD')").format(s=s)
        wrong = Fragment(
            "NOT REGEXP_LIKE({s}, %s) OR TRY_TO_DATE({s}, 'YYYY-MM-DD') IS NULL", [_DATE]
        ).format(s=s)
    elif t.name == "timestamp":
        value = Fragment("{s}::TIMESTAMP_NTZ").format(s=s)
        wrong = Fragment(
            "NOT REGEXP_LIKE({s}, %s) OR TRY_CAST({s} AS TIMESTAMP_NTZ) IS NULL", [_TIMESTAMP]
        ).format(s=s)
    elif t.name == "timestamptz":
        value = Fragment("CONVERT_TIMEZONE('UTC', {s}::TIMESTAMP_TZ)").format(s=s)
        wrong = Fragment(
            "NOT REGEXP_LIKE({s}, %s) OR TRY_CAST({s} AS TIMESTAMP_TZ) IS NULL", [_TIMESTAMPTZ]
        ).format(s=s)
    return TypedAttribute(
        value, Fragment("{held} AND ({s} IS NULL OR {wrong})").format(held=held, s=s, wrong=wrong)
    )


def extras_value(declared: list[str]) -> Fragment:
    """``_attributes``: the item's undeclared attributes as one JSON object, or NULL."""
    marks = ", ".join(["%s"] * len(declared))
    return Fragment(f"PARSE_JSON({ident(EXTRAS)}({ITEM}, ARRAY_CONSTRUCT({marks})))", declared)


def has_extras(landing: str, declared: list[str]) -> Fragment:
    """A query: does any item in ``landing`` hold an attribute no column declares?"""
    marks = ", ".join(["%s"] * len(declared))
    return Fragment(
        f"SELECT COUNT(*) FROM {landing}, LATERAL FLATTEN(input => {ITEM}) AS f "
        f"WHERE f.key NOT IN ({marks})",
        declared,
    )


def udf_sql() -> list[str]:
    """CREATE statements for the two temporary UDFs (they end with the session)."""
    body = resources.files(__package__).joinpath("dynamodb_wire.js").read_text("utf-8")
    assert "$$" not in body  # the body's own delimiter
    return [
        f"CREATE OR REPLACE TEMPORARY FUNCTION {ident(WIRE_JSON)}(V VARIANT) RETURNS VARCHAR "
        f"LANGUAGE JAVASCRIPT STRICT IMMUTABLE AS $${body}\nreturn wireJson(V);\n$$",
        f"CREATE OR REPLACE TEMPORARY FUNCTION {ident(EXTRAS)}(ITEM VARIANT, DECLARED ARRAY) "
        "RETURNS VARCHAR LANGUAGE JAVASCRIPT STRICT IMMUTABLE AS "
        f"$${body}\nreturn extras(ITEM, DECLARED);\n$$",
    ]
