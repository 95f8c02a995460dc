"""Property: any table of typed values survives CSV -> PostgreSQL -> DuckDB, unchanged.

Unicode, quotes, delimiters and newlines inside values, NULL versus the empty string,
the edges of every integer type, exact decimals, dates across the calendar and
timestamps with offsets.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataferry import stages
from tests.conftest import PipelineFactory

JSON_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=5
)
COLUMNS: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "i16": ("smallint", st.integers(-(2**15), 2**15 - 1)),
    "i32": ("integer", st.integers(-(2**31), 2**31 - 1)),
    "i64": ("bigint", st.integers(-(2**63), 2**63 - 1)),
    "money": (
        "numeric(12,3)",
        st.decimals(
            min_value=Decimal("-999999999.999"),
            max_value=Decimal("999999999.999"),
            places=3,
            allow_nan=False,
            allow_infinity=False,
        ),
    ),
    # Past 18 digits a numeric no longer travels as its unscaled bigint: the other path.
    "wide": (
        "numeric(38,9)",
        st.decimals(
            min_value=Decimal("-" + "9" * 29 + "." + "9" * 9),
            max_value=Decimal("9" * 29 + "." + "9" * 9),
            places=9,
            allow_nan=False,
            allow_infinity=False,
        ),
    ),
    "ratio": ("double", st.floats(allow_nan=False, allow_infinity=False)),
    "ratio32": ("real", st.floats(allow_nan=False, allow_infinity=False, width=32)),
    "flag": ("boolean", st.booleans()),
    "words": (
        "text",
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
        ),
    ),
    # COPY's text format escapes backslash, tab, newline and carriage return; \N is its NULL
    # and \. its end of data: each may appear in a value, alone or together.
    "code": ("varchar(10)", st.text(st.sampled_from('ab,"\n\r\t\\.N é€😀'), max_size=10)),
    "day": ("date", st.dates()),
    "local": ("timestamp", st.datetimes(min_value=dt.datetime(1, 1, 1))),
    # NUL cannot be stored in jsonb: dataferry rejects it (tests/unit), so none here.
    "doc": (
        "json",
        st.recursive(
            st.none() | st.booleans() | st.integers(-(10**20), 10**20) | JSON_TEXT,
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(JSON_TEXT, inner, max_size=3)
            ),
            max_leaves=6,
        ).map(lambda v: JsonDoc(json.dumps(v))),
    ),
    "at": (
        "timestamptz",
        st.datetimes(
            min_value=dt.datetime(1, 1, 2),
            max_value=dt.datetime(9999, 12, 30),
            timezones=st.builds(
                dt.timezone, st.integers(-12 * 60, 14 * 60).map(lambda m: dt.timedelta(minutes=m))
            ),
        ),
    ),
}

ROWS = st.lists(
    st.fixed_dictionaries({name: st.none() | strategy for name, (_, strategy) in COLUMNS.items()}),
    max_size=25,
)
_counter = itertools.count()


class JsonDoc(str):
    """JSON text; PostgreSQL's jsonb gives back the parsed value."""


def field(value: Any) -> str:
    """CSV as dataferry reads it: NULL unquoted and empty, every string quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_typed_values_survive_the_round_trip(
    rows: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory, stack_dir: Path
) -> None:
    pipeline = PipelineFactory(tmp_path_factory.mktemp("roundtrip"), stack_dir)
    schema = f"rt_{next(_counter)}"
    header = ["id", *COLUMNS]
    lines = [",".join(header)]
    lines += [",".join([str(i), *(field(r[c]) for c in COLUMNS)]) for i, r in enumerate(rows)]
    pipeline.write_bytes("t.csv", ("\n".join(lines) + "\n").encode("utf-8"))
    columns = {"id": {"type": "integer", "nullable": False}}
    columns |= {name: {"type": t} for name, (t, _) in COLUMNS.items()}
    spec = pipeline.spec(
        {
            "t": {
                "source": {"path": "t.csv"},
                "target": {"store": "postgres", "table": "t", "schema": schema},
                "columns": columns,
                "primary_key": ["id"],
            }
        }
    )
    (rec,) = stages.load_sql(spec)
    assert rec.counts.inserted == len(rows)
    from dataferry.connections import resolve_postgres

    with psycopg.connect(resolve_postgres(spec).conninfo) as conn:
        got = conn.execute(f'SELECT * FROM "{schema}".t ORDER BY id').fetchall()
    assert len(got) == len(rows)
    for i, (row, back) in enumerate(zip(rows, got, strict=True)):
        assert back[0] == i
        for (name, _), value in zip(COLUMNS.items(), back[1:], strict=True):
            want = row[name]
            if isinstance(want, JsonDoc):
                want = json.loads(want)
            if name == "ratio32" and want is not None:
                # float4 comes back as the shortest decimal that names it, which Python
                # widens to a different double: compare the stored 32-bit values.
                want, value = struct.pack("<f", want), struct.pack("<f", value)
            assert want == value, (name, want, value)
    # ... and on through the etl into the warehouse's raw table, value for value.
    (etl,) = stages.etl(spec)
    assert etl.counts.inserted == len(rows)
    import duckdb

    with duckdb.connect(str(spec.duckdb_path), read_only=True) as wh:
        cols = ", ".join(f'"{c}"' for c in header)
        raw = wh.execute(f"SELECT {cols} FROM raw_postgres.t ORDER BY id").fetchall()
    for back, there in zip(got, raw, strict=True):
        for (name, _), pg_value, wh_value in zip(COLUMNS.items(), back[1:], there[1:], strict=True):
            if name == "doc" and wh_value is not None:
                wh_value = json.loads(wh_value)
            # -0.0 and 0.0 are one value (DuckDB 1.5, on Python 3.10, stores -0.0 as 0.0).
            if name == "ratio32" and pg_value:
                pg_value, wh_value = struct.pack("<f", pg_value), struct.pack("<f", wh_value)
            assert pg_value == wh_value, (name, pg_value, wh_value)


def test_what_copy_text_format_escapes_arrives_as_it_was(
    pipeline: PipelineFactory, stack_dir: Path
) -> None:
    values = ["\\N", "\\.", "\\", "a\tb", "a\r\nb", "\n", "", "\\t", 'say "hi", \\x41']
    rows = ["id,v"] + [f'{i},"{v.replace(chr(34), chr(34) * 2)}"' for i, v in enumerate(values)]
    rows.append(f"{len(values)},")  # NULL, beside the empty string above
    pipeline.write_bytes("t.csv", ("\n".join(rows) + "\n").encode())
    spec = pipeline.spec(
        {
            "t": {
                "source": {"path": "t.csv"},
                "target": {"store": "postgres", "table": "t", "schema": "copy_text"},
                "columns": {"id": {"type": "integer", "nullable": False}, "v": {"type": "text"}},
                "primary_key": ["id"],
            }
        }
    )
    (rec,) = stages.load_sql(spec)
    assert rec.counts.inserted == len(values) + 1
    from dataferry.connections import resolve_postgres

    with psycopg.connect(resolve_postgres(spec).conninfo) as conn:
        got = [v for (v,) in conn.execute("SELECT v FROM copy_text.t ORDER BY id")]
    assert got == [*values, None]


def test_every_logical_type_is_in_the_property() -> None:
    from dataferry.types import DYNAMODB_ONLY, TYPE_NAMES

    assert {t.split("(")[0] for t, _ in COLUMNS.values()} == set(TYPE_NAMES) - DYNAMODB_ONLY
