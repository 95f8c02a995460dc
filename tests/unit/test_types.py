import pyarrow as pa
import pytest

from dataferry.types import LogicalType, parse_type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("integer", LogicalType("integer")),
        ("INT", LogicalType("integer")),
        ("varchar(64)", LogicalType("varchar", length=64)),
        ("numeric(10,2)", LogicalType("numeric", precision=10, scale=2)),
        ("decimal( 12 , 3 )", LogicalType("numeric", precision=12, scale=3)),
        ("float", LogicalType("double")),
        ("timestamp with time zone", LogicalType("timestamptz")),
    ],
)
def test_parse_type_accepts_sql_spellings(text: str, expected: LogicalType) -> None:
    assert parse_type(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("flaot", "unknown type 'flaot'"),
        ("numeric(39,2)", "precision must be 1..38"),
        ("numeric(4,5)", "scale cannot exceed"),
        ("varchar(0)", "at least 1"),
        ("integer(3)", "takes no parameters"),
        ("numeric(10", "quote it"),
    ],
)
def test_parse_type_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_type(text)


def test_engine_types_derive_from_one_logical_type() -> None:
    money = parse_type("numeric(10,2)")
    assert money.arrow() == pa.decimal128(10, 2)
    assert money.postgres() == "numeric(10,2)"
    assert money.duckdb() == "DECIMAL(10,2)"
    assert money.dynamodb() == "N"
    assert parse_type("varchar(5)").postgres() == "varchar(5)"
    assert parse_type("timestamptz").arrow() == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    ("old", "new", "widens"),
    [
        ("smallint", "integer", True),
        ("bigint", "integer", False),
        ("integer", "numeric(12,2)", True),
        ("integer", "numeric(10,2)", False),
        ("numeric(10,2)", "numeric(12,3)", True),
        ("numeric(10,2)", "numeric(10,3)", False),
        ("varchar(10)", "varchar(20)", True),
        ("varchar(10)", "text", True),
        ("text", "varchar(10)", False),
        ("real", "double", True),
        ("date", "timestamp", False),
    ],
)
def test_widening_is_only_where_no_value_can_change(old: str, new: str, widens: bool) -> None:
    assert parse_type(old).widens_to(parse_type(new)) is widens


def test_postgres_format_type_round_trip() -> None:
    from dataferry.types import from_postgres

    for text in ("varchar(64)", "numeric(10,2)", "double", "timestamptz", "json", "date"):
        t = parse_type(text)
        assert (
            from_postgres(
                {
                    "varchar(64)": "character varying(64)",
                    "double": "double precision",
                    "timestamptz": "timestamp with time zone",
                    "json": "jsonb",
                }.get(text, t.postgres())
            )
            == t
        )
    assert from_postgres("numeric") is None
