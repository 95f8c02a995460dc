"""A DynamoDB Scan page's items, in wire form, to the raw table's typed columns: a value
another writer stored that its declared type cannot take names its item and says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataferry.errors import TargetError
from dataferry.spec import load_spec
from dataferry.stores.dynamodb.scan import _to_batch, columns

SPEC = """
version: 1
datasets:
  items:
    source: {path: items.json}
    target: {store: dynamodb, table: items}
    key: {hash: title, range: n}
    columns:
      title: {type: text, nullable: false}
      n: {type: integer, nullable: false}
      price: {type: "numeric(10,2)"}
      category: {type: text}
"""


def _batch(tmp_path: Path, items: list[dict[str, Any]]) -> Any:
    (tmp_path / "dataferry.yaml").write_text(SPEC)
    ds = load_spec(tmp_path / "dataferry.yaml").datasets["items"]
    return _to_batch(ds, columns(ds), items)


def _item(title: str, **more: Any) -> dict[str, Any]:
    return {"title": {"S": title}, "n": {"N": "1"}, **more}


def test_good_items_convert(tmp_path: Path) -> None:
    batch = _batch(tmp_path, [_item("a", price={"N": "1.5"}), _item("b", extra={"BOOL": True})])
    assert batch.column("price").to_pylist()[0] == pytest.approx(1.5)
    assert batch.column("_attributes").to_pylist() == [None, '{"extra":true}']


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"price": {"S": "cheap"}}, r'attribute price holds \{"S": "cheap"\}, not numeric\(10,2\)'),
        (
            {"price": {"N": "1.005"}},
            r"attribute price holds 1.005: more decimal places than numeric\(10,2\) keeps",
        ),
        (
            {"price": {"N": "123456789012"}},
            r"attribute price holds 123456789012: more digits than numeric\(10,2\) holds",
        ),
        ({"category": {"B": "AAE="}}, r'attribute category holds \{"B": "AAE="\}, not text'),
    ],
)
def test_a_value_its_type_cannot_take_names_the_item(
    tmp_path: Path, bad: dict[str, Any], reason: str
) -> None:
    items = [_item("fine", price={"N": "2"}), _item("odd one", **bad)]
    with pytest.raises(TargetError, match=r'table items: item title="odd one", n=1: ' + reason):
        _batch(tmp_path, items)
