"""dynamodb_wire.js, the JavaScript Snowflake runs to write json, set and _attributes
columns when it copies an export from S3, against wire_columns.wire_json, which writes
them on the scan path: the same values through Node.js, a real JavaScript engine (the
Snowflake emulator in the tests cannot run JavaScript UDFs)."""

import json
import subprocess
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dataferry.stores.dynamodb.wire_columns import extras_array, wire_json

try:
    from dataferry.stack.dynalite_install import find_node

    NODE = find_node()[0]
except Exception:  # no Node.js here: nothing to run the file with
    NODE = None

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js (dataferry[embedded])")

RUNNER = """
const body = require("fs").readFileSync(process.argv[1], "utf8");
const { wireJson, extras } = new Function(body + "\\nreturn { wireJson, extras };")();
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const { values, items } = JSON.parse(input);
  const out = {
    values: values.map(wireJson),
    items: items.map(([item, declared]) => extras(item, declared)),
  };
  process.stdout.write(JSON.stringify(out));
});
"""


def run_js(values: list[Any], items: list[tuple[dict[str, Any], list[str]]]) -> dict[str, Any]:
    body = resources.files("dataferry.warehouse").joinpath("dynamodb_wire.js")
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", RUNNER, str(body)],
        input=json.dumps({"values": values, "items": items}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


def parsed(text: str | None) -> Any:
    """JSON with each number kept as its exact text, told apart from strings."""
    if text is None:
        return None
    return json.loads(text, parse_float=lambda x: ("number", x), parse_int=lambda x: ("number", x))


digits = st.text("0123456789", min_size=1, max_size=20)
plain_numbers = st.builds(
    lambda sign, whole, frac: sign + (whole.lstrip("0") or "0") + ("." + frac if frac else ""),
    st.sampled_from(["", "-"]),
    digits,
    st.one_of(st.just(""), digits),
)
exponent_numbers = st.builds(
    lambda sign, whole, frac, e: f"{sign}{whole}{'.' + frac if frac is not None else ''}E{e}",
    st.sampled_from(["", "-", "+"]),
    digits,
    st.one_of(st.none(), st.text("0123456789", max_size=8)),
    st.integers(-40, 40).map(lambda e: f"{e:+d}" if e % 2 else str(e)),
)
numbers = st.one_of(plain_numbers, exponent_numbers)
# every plane: the set order must be Python's (by code point), not UTF-16's
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
base64s = st.binary(max_size=12).map(lambda b: __import__("base64").b64encode(b).decode())
scalars = st.one_of(
    texts.map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    base64s.map(lambda b: {"B": b}),
    st.lists(texts, min_size=1, max_size=5, unique=True).map(lambda v: {"SS": v}),
    st.lists(numbers, min_size=1, max_size=5, unique=True).map(lambda v: {"NS": v}),
    st.lists(base64s, min_size=1, max_size=4, unique=True).map(lambda v: {"BS": v}),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda v: {"L": v}),
        st.dictionaries(texts, inner, max_size=4).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)


@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each try starts Node.js
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(values, min_size=40, max_size=40),
    st.lists(
        st.tuples(st.dictionaries(texts, values, max_size=5), st.lists(texts, max_size=3)),
        min_size=10,
        max_size=10,
    ),
)
def test_the_udf_writes_what_the_scan_path_writes(
    vals: list[dict[str, Any]], items: list[tuple[dict[str, Any], list[str]]]
) -> None:
    js = run_js(vals, items)
    for v, text in zip(vals, js["values"], strict=True):
        assert parsed(text) == parsed(wire_json(v)), v
    for (item, declared), text in zip(items, js["items"], strict=True):
        (expected,) = extras_array(set(declared), [item]).to_pylist()
        assert parsed(text) == parsed(expected), item


def test_exponent_numbers_and_set_order_in_detail() -> None:
    cases = [
        {"N": "1.000E+2"},
        {"N": "1.5E-7"},
        {"N": "1.5E-6"},
        {"N": "-0E+2"},
        {"N": "12.5E-1"},
        {"N": "0.00E0"},
        {"N": "98765432109876543210987654321098765432"},
        {"SS": ["\ue000", "\U00010000", "a", "A"]},  # U+E000 sorts before U+10000
        {"NS": ["10", "9", "-1"]},
        {"M": {"é": {"S": 'a"b\\c\n'}, "2": {"L": [{"NULL": True}]}}},
    ]
    js = run_js(cases, [])
    for v, text in zip(cases, js["values"], strict=True):
        assert text == wire_json(v) or parsed(text) == parsed(wire_json(v)), (v, text)
    assert js["values"][:2] == ["100.0", "1.5E-7"]
    assert parsed(js["values"][7]) == ["A", "a", "\ue000", "\U00010000"]
