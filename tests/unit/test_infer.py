"""Key inference over whole files, without a target: pairs anywhere in a wide file."""

from __future__ import annotations

from pathlib import Path

from dataferry.infer import infer_files


def test_a_key_pair_is_found_past_the_first_columns(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    header = [f"c{i}" for i in range(10)] + ["store", "day"]
    rows = [
        # ten columns that repeat (few values each), then a (store, day) pair that is unique
        [str(r % 3) for _ in range(10)] + [f"s{r % 7}", f"2026-01-{1 + r // 7:02d}"]
        for r in range(140)
    ]
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    (data / "sales.csv").write_text(text, encoding="utf-8")
    (sales,) = infer_files(data, tmp_path)
    assert sales.key == ["store", "day"]
    assert sales.key_why == "(store, day): unique together in every row"


def test_no_key_is_said_when_no_pair_is_unique(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "log.csv").write_text("a,b,c\n1,1,1\n1,1,1\n", encoding="utf-8")
    (log,) = infer_files(data, tmp_path)
    assert log.key == []
    assert "no column, nor pair of columns" in log.key_why
