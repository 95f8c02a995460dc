import filecmp
from pathlib import Path

from dataferry.generate import GenerateCounts, generate

REPO = Path(__file__).resolve().parents[2]


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", GenerateCounts(50, 13, 70), seed=3)
    b = generate(tmp_path / "b", GenerateCounts(50, 13, 70), seed=3)
    for pa_, pb in zip(a, b, strict=True):
        assert pa_.read_bytes() == pb.read_bytes()
    c = generate(tmp_path / "c", GenerateCounts(50, 13, 70), seed=4)
    assert c[0].read_bytes() != a[0].read_bytes()


def test_the_example_is_the_generators_output(tmp_path: Path) -> None:
    """examples/retail is exactly `dataferry generate examples/retail` (defaults)."""
    written = generate(tmp_path)
    for path in written:
        rel = path.relative_to(tmp_path)
        assert filecmp.cmp(path, REPO / "examples" / "retail" / rel, shallow=False), rel


def test_keys_stay_unique_at_scale(tmp_path: Path) -> None:
    import csv
    import json

    generate(tmp_path, GenerateCounts(customers=130_000, items=40, orders=10), seed=1)
    with (tmp_path / "data/sql/customer.csv").open(encoding="utf-8") as f:
        names = {(r["first_name"], r["last_name"]) for r in csv.DictReader(f)}
    assert len(names) == 130_000  # (first_name, last_name) is the DynamoDB key
    bought = json.loads((tmp_path / "data/nosql/orders.json").read_text(encoding="utf-8"))
    assert len({(b["item"], b["customer"]) for b in bought}) == len(bought)
    phones = (tmp_path / "data/sql/customer.csv").read_text(encoding="utf-8").splitlines()[1]
    assert len(phones.split(",")[3]) == 10


def test_the_dynamodb_purchases_are_sized_apart_from_the_csv_orders(tmp_path: Path) -> None:
    import json

    generate(tmp_path, GenerateCounts(customers=20, items=10, orders=50, nosql_orders=120))
    orders_csv = (tmp_path / "data/sql/orders.csv").read_text(encoding="utf-8").splitlines()
    bought = json.loads((tmp_path / "data/nosql/orders.json").read_text(encoding="utf-8"))
    assert (len(orders_csv) - 1, len(bought)) == (50, 120)
    capped = tmp_path / "capped"
    generate(capped, GenerateCounts(customers=3, items=4, orders=5, nosql_orders=100))
    bought = json.loads((capped / "data/nosql/orders.json").read_text(encoding="utf-8"))
    assert len(bought) == 12  # every (item, customer) pair once: the table's key
