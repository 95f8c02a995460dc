from pathlib import Path

import pytest
import yaml

from dataferry.errors import SpecError
from dataferry.spec import load_spec

BASE = """
version: 1
datasets:
  item:
    source: {path: item.csv}
    target: {store: postgres, table: item}
    columns:
      item_id: {type: integer, nullable: false}
      price: {type: PRICE_TYPE}
    primary_key: [item_id]
"""


DYNAMO = """
version: 1
datasets:
  x:
    source: {path: x.json}
    target: {store: dynamodb, table: TABLE}
    key: {hash: KEY}
"""


def write(tmp_path: Path, text: str, name: str = "dataferry.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_unknown_type_names_file_and_key_path(tmp_path: Path) -> None:
    p = write(tmp_path, BASE.replace("PRICE_TYPE", "flaot"))
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert str(e.value).startswith(f"{p}: datasets.item.columns.price.type: unknown type 'flaot'")


def test_unknown_key_is_an_error_with_its_path(tmp_path: Path) -> None:
    p = write(tmp_path, BASE.replace("PRICE_TYPE", "double").replace("primary_key", "primary_kee"))
    with pytest.raises(SpecError, match=r"datasets\.item\.primary_kee: unknown key"):
        load_spec(p)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "version: 1\ndatasets: [\n")
    with pytest.raises(SpecError, match=r"dataferry\.yaml:3: not valid YAML"):
        load_spec(p)


def test_missing_spec_file_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="-c/--config"):
        load_spec(tmp_path / "nope.yaml")


def test_env_interpolation_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = BASE.replace("PRICE_TYPE", '"${PRICE_TYPE:-numeric(10,2)}"').replace(
        "item.csv", '"${DATA_DIR}/item.csv"'
    )
    p = write(tmp_path, text)
    with pytest.raises(SpecError, match=r"source\.path: environment variable DATA_DIR is not set"):
        load_spec(p)
    monkeypatch.setenv("DATA_DIR", "/data")
    spec = load_spec(p)
    assert str(spec.datasets["item"].source.path) == "/data/item.csv"
    assert str(spec.datasets["item"].columns["price"].type) == "numeric(10,2)"
    monkeypatch.setenv("PRICE_TYPE", "double")
    assert load_spec(p).datasets["item"].columns["price"].type.name == "double"


def test_dollar_dollar_escapes(tmp_path: Path) -> None:
    p = write(tmp_path, BASE.replace("PRICE_TYPE", "double").replace("item.csv", "$$x.csv"))
    assert str(load_spec(p).datasets["item"].source.path) == "$x.csv"


def test_secrets_never_in_repr_or_dump(tmp_path: Path) -> None:
    sentinel = "s3cr3t-SENTINEL-value"
    text = BASE.replace("PRICE_TYPE", "double") + (
        f"stores:\n  postgres:\n    url: postgresql://u:{sentinel}@h/db\n    password: {sentinel}\n"
    )
    spec = load_spec(write(tmp_path, text))
    assert sentinel not in repr(spec)
    assert sentinel not in str(spec.model_dump(mode="json"))


def test_foreign_key_cycle_names_the_tables(tmp_path: Path) -> None:
    text = """
version: 1
datasets:
  a:
    source: {path: a.csv}
    target: {store: postgres, table: a}
    columns: {id: {type: integer}, b_id: {type: integer}}
    primary_key: [id]
    foreign_keys: [{columns: [b_id], references: {dataset: b, columns: [id]}}]
  b:
    source: {path: b.csv}
    target: {store: postgres, table: b}
    columns: {id: {type: integer}, a_id: {type: integer}}
    primary_key: [id]
    foreign_keys: [{columns: [a_id], references: {dataset: a, columns: [id]}}]
"""
    spec = load_spec(write(tmp_path, text))
    with pytest.raises(SpecError, match=r"foreign keys form a cycle: (a -> b -> a|b -> a -> b)"):
        spec.load_order()


def test_load_order_puts_parents_first() -> None:
    spec = load_spec(Path(__file__).parents[2] / "examples" / "retail" / "dataferry.yaml")
    order = spec.load_order()
    assert order.index("customer") < order.index("orders")
    assert order.index("item") < order.index("orders")
    assert spec.load_order(["orders"]) == ["orders"]


def test_dynamodb_dataset_needs_a_key_and_a_valid_table_name(tmp_path: Path) -> None:
    text = DYNAMO.replace("TABLE", "ab").replace("KEY", "id")
    with pytest.raises(SpecError, match=r"datasets\.x: .*3-255"):
        load_spec(write(tmp_path, text))
    with pytest.raises(SpecError, match=r"datasets\.x: key: a dynamodb dataset needs key"):
        load_spec(
            write(
                tmp_path,
                text.replace("    key: {hash: id}\n", "").replace("table: ab}", "table: abc}"),
            )
        )


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("table: item}", f"table: {'t' * 64}}}", r"target\.table: 't+' is 64 bytes"),
        ("table: item}", f"table: item, schema: {'s' * 62}é}}", r"target\.schema: .* 64 bytes"),
        ("price: {", f"{'p' * 64}: {{", r"columns: 'p+' is 64 bytes"),
    ],
)
def test_a_postgres_name_past_63_bytes_is_refused_not_cut(
    tmp_path: Path, old: str, new: str, error: str
) -> None:
    """PostgreSQL would keep its first 63 bytes and drop the rest without a word: two
    such names would be one table."""
    text = BASE.replace("PRICE_TYPE", "integer")
    load_spec(write(tmp_path, text.replace("item_id", "i" * 63)))  # 63 bytes: fine
    with pytest.raises(SpecError, match=error):
        load_spec(write(tmp_path, text.replace(old, new)))


TWO = """
version: 1
datasets:
  a:
    source: {path: a.csv}
    target: {store: postgres, schema: sa, table: t}
    columns: {id: {type: integer, nullable: false}}
    primary_key: [id]
  b:
    source: {path: b.csv}
    target: {store: postgres, schema: SB, table: TB}
    columns: {id: {type: integer, nullable: false}}
    primary_key: [id]
"""


@pytest.mark.parametrize(
    ("schema", "table", "error"),
    [
        ("sa", "t", r"datasets\.b\.target: dataset a loads the same table"),
        # the etl merged b into a's raw table and marked a's other rows deleted
        ("sb", "t", r"datasets\.b\.target: dataset a has the same raw table, raw_postgres\.t"),
        ("sb", "T", r"dataset a has the same raw table, raw_postgres\.T"),
    ],
)
def test_two_datasets_on_one_table_or_one_raw_table_are_refused(
    tmp_path: Path, schema: str, table: str, error: str
) -> None:
    load_spec(write(tmp_path, TWO))
    with pytest.raises(SpecError, match=error):
        load_spec(
            write(
                tmp_path, TWO.replace("schema: SB, table: TB", f"schema: {schema}, table: {table}")
            )
        )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("schema: SB, table: TB", "schema: DataFerry, table: TB"),
        ("version: 1\n", "version: 1\nwarehouse: {naming: original, raw_schema: dataferry}\n"),
        ("version: 1\n", "version: 1\nmodels: {schema: dataferry}\n"),
    ],
)
def test_dataferrys_own_schema_is_not_a_target(tmp_path: Path, old: str, new: str) -> None:
    with pytest.raises(SpecError, match=r"dataferry.* (hold|holds) .*ledger"):
        load_spec(write(tmp_path, TWO.replace(old, new)))


def test_the_dynamodb_ledger_table_is_not_a_target(tmp_path: Path) -> None:
    text = DYNAMO.replace("TABLE", "my_ledger").replace("KEY", "id")
    text = text.replace(
        "version: 1\n", "version: 1\nstores: {dynamodb: {ledger_table: my_ledger}}\n"
    )
    with pytest.raises(SpecError, match=r"datasets\.x\.target: .*ledger table \(my_ledger\)"):
        load_spec(write(tmp_path, text))


def test_the_reserved_schema_is_the_ledgers() -> None:
    from dataferry.spec import RESERVED_SCHEMA
    from dataferry.stores.postgres.ledger import LEDGER
    from dataferry.warehouse import duckdb_warehouse, snowflake_warehouse

    assert LEDGER.as_string() == f'"{RESERVED_SCHEMA}"."loads"'
    assert duckdb_warehouse._LEDGER[0] == snowflake_warehouse._LEDGER[0] == RESERVED_SCHEMA


def test_a_model_cannot_be_a_raw_table(tmp_path: Path) -> None:
    text = TWO + "models:\n  schema: raw_postgres\n  tables:\n    T: {sql: t.sql}\n"
    with pytest.raises(SpecError, match=r"models\.tables\.T: a raw table of the warehouse"):
        load_spec(write(tmp_path, text))


@pytest.mark.parametrize(
    ("column", "store", "error"),
    [
        ("_dataferry_row", "postgres", "names starting with _dataferry are dataferry's own"),
        ("_DataFerry_loaded_at", "dynamodb", "names starting with _dataferry are dataferry's own"),
        ("_attributes", "dynamodb", "keeps a DynamoDB item's undeclared attributes"),
        ("ID", "postgres", "'id': another column has the same name but for its case"),
    ],
)
def test_column_names_the_warehouse_could_not_keep_apart_are_refused(
    tmp_path: Path, column: str, store: str, error: str
) -> None:
    target = (
        "{store: postgres, table: t}\n    primary_key: [id]"
        if store == "postgres"
        else "{store: dynamodb, table: tab}\n    key: {hash: id}"
    )
    text = f"""
version: 1
datasets:
  x:
    source: {{path: x.{"csv" if store == "postgres" else "json"}}}
    target: {target}
    columns:
      id: {{type: integer, nullable: false}}
      {column}: {{type: text}}
"""
    with pytest.raises(SpecError, match=error):
        load_spec(write(tmp_path, text))


def test_the_reserved_column_names_are_the_ones_dataferry_adds() -> None:
    from dataferry.readers import ROW_COLUMN
    from dataferry.spec import DYNAMODB_EXTRA_COLUMN, RESERVED_PREFIX
    from dataferry.stores.dynamodb.scan import EXTRA_COLUMN
    from dataferry.warehouse.duckdb_warehouse import META_COLUMNS
    from dataferry.warehouse.snowflake_warehouse import META_COLUMNS as SNOWFLAKE_META

    for name in [ROW_COLUMN, *META_COLUMNS, *SNOWFLAKE_META]:
        assert name.startswith(RESERVED_PREFIX), name
    assert EXTRA_COLUMN == DYNAMODB_EXTRA_COLUMN


def test_dynamodb_index_and_key_names_are_checked_as_dynamodb_would(tmp_path: Path) -> None:
    text = DYNAMO.replace("TABLE", "abc") + "    indexes: [{name: INDEX, hash: id}]\n"
    load_spec(write(tmp_path, text.replace("KEY", "k" * 255).replace("INDEX", "by.id-1")))
    with pytest.raises(SpecError, match=r"indexes\[0\]\.name: DynamoDB index names are 3-255"):
        load_spec(write(tmp_path, text.replace("KEY", "id").replace("INDEX", "by id")))
    with pytest.raises(SpecError, match=r"key attribute 'k+': .* 1 to 255 bytes"):
        load_spec(write(tmp_path, text.replace("KEY", "k" * 256).replace("INDEX", "byid")))


def test_foreign_key_to_unknown_dataset(tmp_path: Path) -> None:
    text = BASE.replace("PRICE_TYPE", "double") + (
        "    foreign_keys: [{columns: [item_id], references: {dataset: nope, columns: [id]}}]\n"
    )
    with pytest.raises(SpecError, match=r"foreign_keys\[0\]\.references: no postgres dataset"):
        load_spec(write(tmp_path, text))


def test_dynamodb_only_types_and_keys(tmp_path: Path) -> None:
    pg = BASE.replace("PRICE_TYPE", "binary")
    with pytest.raises(SpecError, match=r"price\.type: binary is a DynamoDB type"):
        load_spec(write(tmp_path, pg))
    text = DYNAMO.replace("TABLE", "things").replace("KEY", "tags")
    text += "    columns: {tags: {type: string_set}}\n"
    with pytest.raises(SpecError, match="key attribute tags must be a string, number or binary"):
        load_spec(write(tmp_path, text))


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (
            "    etl: {cursor: updated_at}\n",
            r"datasets\.item: etl\.cursor: unknown column 'updated_at'",
        ),
        ("    etl: {deletes: purge}\n", r"datasets\.item\.etl\.deletes: Input should be"),
        (
            "models:\n  tables:\n    item: {sql: item.sql}\n",
            r"models\.tables\.item: a dataset has this name",
        ),
        (
            "models:\n  tables:\n    dim:\n      sql: dim.sql\n      foreign_keys:\n"
            "        - {columns: [a], references: {model: nope, columns: [a]}}\n",
            r"models\.tables\.dim\.foreign_keys\[0\]\.references: no model 'nope'",
        ),
        (
            "models:\n  tables:\n    dim:\n      sql: dim.sql\n      foreign_keys:\n"
            "        - {columns: [a, b], references: {model: dim, columns: [a]}}\n",
            r"foreign_keys\[0\]: columns and references differ in count",
        ),
    ],
)
def test_etl_options_and_models_are_checked(tmp_path: Path, extra: str, error: str) -> None:
    text = BASE.replace("PRICE_TYPE", "integer") + extra
    with pytest.raises(SpecError, match=error):
        load_spec(write(tmp_path, text))


def test_a_cursor_is_for_postgres_datasets(tmp_path: Path) -> None:
    text = """
version: 1
datasets:
  bought:
    source: {path: b.json}
    target: {store: dynamodb, table: bought}
    key: {hash: item}
    etl: {cursor: item}
"""
    with pytest.raises(SpecError, match=r"etl\.cursor: is for postgres datasets"):
        load_spec(write(tmp_path, text))


def test_the_readmes_spec_excerpt_is_the_example_files() -> None:
    """The first YAML block of the README's spec section: each of its lines (comments
    aside) is a line of examples/retail/dataferry.yaml, in the file's order."""
    import re

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The pipeline spec") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None

    def lines(text: str) -> list[str]:
        return [ln.split(" #")[0].rstrip() for ln in text.splitlines() if ln.split("#")[0].strip()]

    example = lines((root / "examples/retail/dataferry.yaml").read_text(encoding="utf-8"))
    at = 0
    for line in lines(block.group(1)):
        assert line in example[at:], f"not in the example (in this order): {line!r}"
        at = example.index(line, at) + 1


def test_the_production_spec_is_the_example_with_production_targets() -> None:
    """examples/retail/production.yaml (what the ECS task runs) cannot drift from the
    example: same datasets and models; only where the data goes differs."""
    retail = Path(__file__).parents[2] / "examples" / "retail"
    env = {
        "DATAFERRY_RDS_HOST": "shop.abc123.us-west-2.rds.amazonaws.com",
        "DATAFERRY_RDS_DATABASE": "shop",
        "AWS_REGION": "us-west-2",
        "SNOWFLAKE_ACCOUNT": "acme-x1",
    }
    example = load_spec(retail / "dataferry.yaml", env={})
    production = load_spec(retail / "production.yaml", env=env)
    assert production.datasets == example.datasets
    assert production.models == example.models
    pg = production.stores.postgres
    assert (pg.user, pg.iam_auth, pg.password, pg.password_secret) == (
        "dataferry",
        True,
        None,
        None,
    )
    assert production.stores.dynamodb.endpoint == "aws"
    assert production.stores.dynamodb.export_bucket is None  # "" from the environment: none
    assert production.warehouse.kind == "snowflake"
    prefixed = load_spec(retail / "production.yaml", env={**env, "DATAFERRY_TABLE_PREFIX": "prod-"})
    assert prefixed.datasets["items_data"].target.table == "prod-items_data"


def test_the_original_snowflake_spec_keeps_the_originals_objects_and_datasets() -> None:
    original = Path(__file__).parents[2] / "examples" / "original"
    env = {"SNOWFLAKE_ACCOUNT": "acme-x1", "SNOWFLAKE_USER": "svc"}
    duck = load_spec(original / "dataferry.yaml", env={})
    snow = load_spec(original / "snowflake.yaml", env=env)
    assert snow.datasets == duck.datasets
    sf = snow.warehouse.snowflake
    assert sf is not None
    # the original named them unquoted: Snowflake holds them in upper case
    assert (sf.role, sf.warehouse, sf.database, sf.schema_) == (
        "SYSADMIN",
        "TEST_WAREHOUSE",
        "BANKAYA_DB",
        "TEST_SCHEMA",
    )
    assert snow.raw_table("customer") == ("TEST_SCHEMA", "customer")
    assert snow.raw_table("customers_data") == ("TEST_SCHEMA", "customers_data_dynamodb")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"ttl_attribute": "price"}, "DynamoDB expires items by a number"),
        ({"ttl_attribute": "item"}, "a key attribute cannot be the time to live"),
    ],
)
def test_a_time_to_live_that_cannot_work_is_refused(
    tmp_path: Path, change: dict[str, str], why: str
) -> None:
    ds = {
        "source": {"path": "b.json"},
        "target": {"store": "dynamodb", "table": "bought"},
        "key": {"hash": "item"},
        "columns": {"item": {"type": "text"}, "price": {"type": "text"}},
        **change,
    }
    (tmp_path / "dataferry.yaml").write_text(yaml.safe_dump({"version": 1, "datasets": {"b": ds}}))
    with pytest.raises(SpecError, match=why):
        load_spec(tmp_path / "dataferry.yaml", env={})


def test_the_time_to_live_goes_into_the_terraform_export(tmp_path: Path) -> None:
    from dataferry.terraform import dynamodb_tables

    ds = {
        "source": {"path": "b.json"},
        "target": {"store": "dynamodb", "table": "bought"},
        "key": {"hash": "item"},
        "ttl_attribute": "expires_at",
    }
    (tmp_path / "dataferry.yaml").write_text(yaml.safe_dump({"version": 1, "datasets": {"b": ds}}))
    tables = dynamodb_tables(load_spec(tmp_path / "dataferry.yaml", env={}))
    assert tables["bought"]["ttl_attribute"] == "expires_at"


def test_a_source_may_be_a_glob_or_a_list_of_one_format(tmp_path: Path) -> None:
    base = BASE.replace("PRICE_TYPE", "text")
    listed = base.replace("path: item.csv", "path: [a/*.csv.gz, b.csv], order: mtime")
    source = load_spec(write(tmp_path, listed)).datasets["item"].source
    assert source.paths == ["a/*.csv.gz", "b.csv"]
    assert source.file_format == "csv"
    mixed = base.replace("path: item.csv", "path: [a.csv, b.jsonl]")
    with pytest.raises(SpecError, match="different formats"):
        load_spec(write(tmp_path, mixed))
    empty = base.replace("path: item.csv", "path: []")
    with pytest.raises(SpecError, match="names no file"):
        load_spec(write(tmp_path, empty))
    bad = base.replace("path: item.csv", "path: x.csv, order: {date: '(\\\\d+'}")
    with pytest.raises(SpecError, match="not a regular expression"):
        load_spec(write(tmp_path, bad))
    zipped = base.replace("path: item.csv", "path: x.csv.zst")
    assert load_spec(write(tmp_path, zipped)).datasets["item"].source.file_format == "csv"
    json_into_sql = base.replace("path: item.csv", "path: x.jsonl.zst")
    with pytest.raises(SpecError, match="reads CSV or Parquet files, not jsonl"):
        load_spec(write(tmp_path, json_into_sql))
