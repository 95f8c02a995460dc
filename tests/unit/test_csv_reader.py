from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from dataferry.errors import InputError
from dataferry.readers import ROW_COLUMN, RejectLog, csv_file, read_csv
from tests.conftest import PipelineFactory

DATASET = {
    "t": {
        "source": {"path": "t.csv"},
        "target": {"store": "postgres", "table": "t"},
        "columns": {
            "id": {"type": "smallint", "nullable": False},
            "name": {"type": "varchar(8)", "nullable": False},
            "price": {"type": "numeric(6,2)"},
            "at": {"type": "date"},
            "note": {"type": "text"},
        },
        "primary_key": ["id"],
    }
}


def load(pipeline: PipelineFactory, text: str | bytes, **csv_opts: object) -> pa.Table:
    if isinstance(text, bytes):
        pipeline.write_bytes("t.csv", text)
    else:
        pipeline.write("t.csv", text)
    ds = (
        {**DATASET["t"], "source": {"path": "t.csv", "csv": csv_opts}} if csv_opts else DATASET["t"]
    )
    spec = pipeline.spec({"t": ds})
    batches = list(read_csv(spec.resolve(spec.datasets["t"].source.path), spec.datasets["t"]))
    return pa.Table.from_batches(batches)


def error(pipeline: PipelineFactory, text: str | bytes) -> InputError:
    with pytest.raises(InputError) as e:
        load(pipeline, text)
    return e.value


def test_real_csv_quoting_bom_crlf_and_column_order(pipeline: PipelineFactory) -> None:
    data = (
        "\ufeffname,id,price,at,note\r\n"
        'Ana,1,10.50,2024-03-04,"a, b"\r\n'
        'Bo,2,,2024-03-05,"line1\r\nline2 ""quoted"""\r\n'
        'Cy,3,0.01,,""\r\n'
    ).encode()
    t = load(pipeline, data)
    assert t.column("id").to_pylist() == [1, 2, 3]
    assert t.column("name").to_pylist() == ["Ana", "Bo", "Cy"]  # matched by name, not position
    assert t.column("price").to_pylist() == [Decimal("10.50"), None, Decimal("0.01")]
    assert t.column("note").to_pylist() == ["a, b", 'line1\r\nline2 "quoted"', ""]  # "" != NULL
    assert t.column("at").to_pylist()[2] is None
    assert t.column(ROW_COLUMN).to_pylist() == [0, 1, 2]


def test_row_numbers_run_on_across_batches_of_any_size_from_the_first_row(
    pipeline: PipelineFactory,
) -> None:
    # rows of varying width over several 1 MB blocks: batches of different lengths
    rows = [f"{i % 30000},n{i % 7},1.00,,{'x' * (i % 97)}" for i in range(60_000)]
    pipeline.write("t.csv", "id,name,price,at,note\n" + "\n".join(rows) + "\n")
    spec = pipeline.spec(DATASET)
    ds = spec.datasets["t"]
    batches = list(read_csv(spec.resolve(ds.source.path), ds, first_row=7))
    assert len({b.num_rows for b in batches}) > 1
    numbers = pa.Table.from_batches(batches).column(ROW_COLUMN)
    assert numbers.type == pa.int64()
    assert numbers.to_pylist() == list(range(7, 60_007))


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("x,Ana,1.00,2024-01-01,\n", 2, "column id: not a valid smallint (value 'x')"),
        ("1,Ana,1.00,2024-01-01,\n40000,Bo,1,,\n", 3, "column id: out of range for smallint"),
        ("1,Ana,1.005,,\n", 2, "column price: more decimal places than numeric(6,2) keeps"),
        ("1,Ana,99999.00,,\n", 2, "more digits than numeric(6,2) holds"),
        ("1,Ana,NaN,,\n", 2, "column price"),
        ("1,Ana,1,2021-02-30,\n", 2, "column at: not a valid date"),
        ("1,Ana,1,03/04/2024,\n", 2, "column at: not a valid date"),
        # PostgreSQL has no year 0: COPY would have refused the whole load, naming no line
        ("1,Ana,1,0000-12-31,\n", 2, "column at: before the year 1"),
        ("1,,1,,\n", 2, "column name: missing required value"),
        ("1,Ana Banana,1,,\n", 2, "column name: 10 characters, longer than varchar(8)"),
        ("1,Ana,1,,\n2,Bo,1\n", 3, "expected 5 fields, found 3"),
        ("1,Ana,1,,,extra\n", 2, "expected 5 fields, found 6"),
    ],
)
def test_bad_rows_name_line_and_reason(
    pipeline: PipelineFactory, body: str, line: int, reason: str
) -> None:
    err = error(pipeline, "id,name,price,at,note\n" + body)
    assert err.line == line
    assert reason in err.reason
    assert str(err).startswith(f"{err.path}:{line}: ")


def test_floats_that_the_declared_type_would_change_are_rejected_not_stored_changed(
    pipeline: PipelineFactory,
) -> None:
    """A real holds about 3.4E+38: past it, float32 made Infinity of a finite value, and
    short of its smallest, 0; a double's text can underflow to 0 too. PostgreSQL refuses
    all of them; the reader rejects them by row instead of storing another number."""
    pipeline.write(
        "f.csv",
        "id,r,d,ts,tz\n"
        "1,3.4028236e38,1,,\n"
        "2,1e-50,1,,\n"
        "3,1,1e-400,,\n"
        "4,1,1e309,,\n"
        "5,-inf,1,,\n"
        "6,1,1,0000-12-31 23:00:00,\n"
        "7,1,1,,0001-01-01 00:30:00+01:00\n"
        "8,3.4028234e38,-0.0,0001-01-01 00:00:00,0001-01-01 00:00:00Z\n"
        "9,1e-45,0e10,,\n",
    )
    spec = pipeline.spec(
        {
            "f": {
                "source": {"path": "f.csv"},
                "target": {"store": "postgres", "table": "f"},
                "columns": {
                    "id": {"type": "integer", "nullable": False},
                    "r": {"type": "real"},
                    "d": {"type": "double"},
                    "ts": {"type": "timestamp"},
                    "tz": {"type": "timestamptz"},
                },
                "primary_key": ["id"],
            }
        }
    )
    log = RejectLog("f.csv")
    table = pa.Table.from_batches(list(read_csv(spec.resolve("f.csv"), spec.datasets["f"], log)))
    assert [(r.line, r.reason) for r in log.sorted()] == [
        (2, "column r: out of range for real"),
        (3, "column r: too close to zero for real (it would be 0)"),
        (4, "column d: too close to zero for double (it would be 0)"),
        (5, "column d: out of range for double"),
        (6, "column r: Infinity is not allowed"),
        (
            7,
            "column ts: before the year 1, which PostgreSQL does not read in this form "
            "(it has no year 0)",
        ),
        (
            8,
            "column tz: before the year 1, which PostgreSQL does not read in this form "
            "(it has no year 0)",
        ),
    ]
    assert table.column("id").to_pylist() == [8, 9]
    # a real's own precision (PostgreSQL's too): 1e-45 is its smallest, 1.4E-45
    assert table.column("r").to_pylist() == [
        pytest.approx(3.4028234e38, rel=1e-7),
        pytest.approx(1.4e-45, rel=0.01),
    ]
    assert table.column("d").to_pylist() == [-0.0, 0.0]


def test_line_numbers_count_newlines_inside_quotes(pipeline: PipelineFactory) -> None:
    err = error(pipeline, 'id,name,price,at,note\n1,Ana,1,,"two\nlines"\nbad,Bo,1,,\n')
    assert err.line == 4


def test_invalid_utf8_names_the_line(pipeline: PipelineFactory) -> None:
    err = error(pipeline, b"id,name,price,at,note\n1,Ana,1,,\n2,B\xffo,1,,\n")
    assert err.line == 3
    assert "not valid utf-8" in err.reason


def test_a_ragged_row_that_is_not_utf8_refuses_the_file_at_its_line_without_a_traceback(
    pipeline: PipelineFactory,
) -> None:
    """pyarrow decodes a bad row's text before handing it to the skip handler; a row that
    is not UTF-8 never reaches it, the decode error is "unraisable" (a traceback on
    stderr; under pytest, whose filterwarnings is "error", a failed test) and the read
    fails. The file is refused, naming the row's first line; other files' rows are kept."""
    body = b'id,name,price,at,note\n1,Ana,1,,\n2,"B\no",1,,caf\xe9,extra\n3,Cy,1,,\n'
    err = error(pipeline, body)
    assert err.line == 3
    assert "expected 5 fields, found 6, in a row that is not valid utf-8" in err.reason
    # each defect on its own is a reject of its row, not a refusal of the file
    log = RejectLog("t.csv")
    pipeline.write_bytes("t.csv", b"id,name,price,at,note\n1,Ana,1,,x,y\n2,B\xffo,1,,\n3,Cy,1,,\n")
    spec = pipeline.spec(DATASET)
    rows = (
        pa.Table.from_batches(list(read_csv(spec.resolve("t.csv"), spec.datasets["t"], log)))
        .column("id")
        .to_pylist()
    )
    assert rows == [3]
    assert sorted((r.line, r.reason.split(":")[0]) for r in log.items) == [
        (2, "expected 5 fields, found 6"),
        (3, "column name"),
    ]


def test_a_row_longer_than_the_reader_carries_is_read_in_larger_blocks_once_each(
    pipeline: PipelineFactory,
) -> None:
    """Arrow's reader carries a row across at most two of its 1 MiB blocks and then fails
    ("straddles two block boundaries"). The file is read again in MAX_ROW_BYTES blocks,
    the rows already yielded passed over: each row once, each reject once, at its line."""
    rows = [f"{i},n{i % 7},1.5,,note {i}" for i in range(1, 40_001)]  # about 1 MB
    rows[4] = "x5,n,1,,"  # line 6: a bad id
    rows[6] = "7,n,1,,,extra"  # line 8: ragged
    rows[30_000] = '30001,n,1,,"' + "long value\n" * 400_000 + '"'  # line 30002: 4.4 MB
    rows[39_000] = "39001,n,bad,,"  # a bad price, after the long row
    pipeline.write("t.csv", "id,name,price,at,note\n" + "\n".join(rows) + "\n")
    spec = pipeline.spec(
        {"t": {**DATASET["t"], "columns": {**DATASET["t"]["columns"], "id": {"type": "integer"}}}}
    )
    log = RejectLog("t.csv")
    table = pa.Table.from_batches(list(read_csv(spec.resolve("t.csv"), spec.datasets["t"], log)))
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 40_000 - 3
    assert set(ids) == set(range(1, 40_001)) - {5, 7, 39_001}
    long = table.filter(pa.compute.equal(table.column("id"), 30_001)).column("note")[0]
    assert long.as_py() == "long value\n" * 400_000
    assert sorted((r.line, r.reason) for r in log.items) == [
        (6, "column id: not a valid integer"),
        (8, "expected 5 fields, found 6"),
        (39_002 + 400_000, "column price: not a valid numeric(6,2)"),
    ]


def test_a_row_longer_than_max_row_bytes_refuses_the_file_at_its_line(
    pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit made 4 MiB for the test: a row over twice the larger block always fails.
    monkeypatch.setattr(csv_file, "MAX_ROW_BYTES", 4 << 20)
    value = '"' + ("v" * 1_000 + "\n") * 3_000 + '"'  # 3 MB: a value may hold 16 MiB
    err = error(pipeline, f"id,name,price,at,note\n1,a,1,,\n2,{value},1,{value},{value}\n")
    assert err.line == 3
    assert "a row longer than 4,194,304 bytes (the most one row may hold" in err.reason


def test_header_problems(pipeline: PipelineFactory) -> None:
    err = error(pipeline, "id,name,price,extra\n1,a,1,x\n")
    assert err.line == 1
    assert "missing column(s) at, note" in err.reason
    assert "not in the spec: extra" in err.reason


def test_empty_file(pipeline: PipelineFactory) -> None:
    assert "empty file" in error(pipeline, "").reason


def test_options_delimiter_null_marker_and_latin1(pipeline: PipelineFactory) -> None:
    data = "id;name;price;at;note\n1;José;\\N;2024-01-01;\\N\n".encode("latin-1")
    t = load(pipeline, data, delimiter=";", null="\\N", encoding="latin-1")
    assert t.column("name").to_pylist() == ["José"]
    assert t.column("price").to_pylist() == [None]
    assert t.column("note").to_pylist() == [None]


def test_missing_file(pipeline: PipelineFactory, tmp_path: Path) -> None:
    spec = pipeline.spec(DATASET)
    with pytest.raises(InputError, match="no such file"):
        list(read_csv(tmp_path / "t.csv", spec.datasets["t"]))


def test_reject_log_collects_every_bad_row_and_keeps_the_rest(pipeline: PipelineFactory) -> None:
    from dataferry.readers import RejectLog

    data = (
        b"id,name,price,at,note\n"
        b"1,Ana,1.00,2024-01-01,ok\n"
        b"\n"  # blank lines are skipped, not rows
        b"x,Bo,1.00,,bad id\n"
        b'2,Cy,1.00,,"multi\nline"\n'
        b"3,D\xffe,1.00,,bad byte\n"
        b"4,Ed\n"
        b"5,Flo,99999.99,2024-02-30,two bad values\n"
        b"6,Gus,2.50,,ok\n"
    )
    pipeline.write_bytes("t.csv", data)
    spec = pipeline.spec(DATASET)
    log = RejectLog(pipeline.root / "t.csv")
    t = pa.Table.from_batches(list(read_csv(pipeline.root / "t.csv", spec.datasets["t"], log)))
    assert t.column("id").to_pylist() == [1, 2, 6]
    assert t.column("note").to_pylist() == ["ok", "multi\nline", "ok"]
    got = [(r.line, r.column, r.reason) for r in log.sorted()]
    assert got == [
        (4, "id", "column id: not a valid smallint"),
        (7, "name", "column name: not valid utf-8: invalid start byte (byte 0xff)"),
        (8, None, "expected 5 fields, found 2"),
        (9, "price", "column price: more digits than numeric(6,2) holds"),
    ]
    assert len(log) == 4
    dest = pipeline.root / "rejects.csv"
    log.write(dest)
    assert dest.read_text(encoding="utf-8").splitlines()[1] == (
        f"{pipeline.root / 't.csv'},4,id,x,column id: not a valid smallint"
    )


def test_json_column_rejects_what_jsonb_cannot_store(pipeline: PipelineFactory) -> None:
    from dataferry.readers import RejectLog

    pipeline.write("j.csv", 'id,doc\n1,"{""a"": 1}"\n2,"{""a"": ""x\\u0000""}"\n3,"{""a"": NaN}"\n')
    spec = pipeline.spec(
        {
            "j": {
                "source": {"path": "j.csv"},
                "target": {"store": "postgres", "table": "j"},
                "columns": {"id": {"type": "integer"}, "doc": {"type": "json"}},
                "primary_key": ["id"],
            }
        }
    )
    log = RejectLog(pipeline.root / "j.csv")
    t = pa.Table.from_batches(list(read_csv(pipeline.root / "j.csv", spec.datasets["j"], log)))
    assert t.column("id").to_pylist() == [1]
    reasons = [(r.line, r.reason) for r in log.sorted()]
    assert reasons[0] == (
        3,
        "column doc: JSON with \\u0000 in a string, which PostgreSQL's jsonb cannot store",
    )
    assert reasons[1][0] == 4
    assert "NaN is not valid JSON" in reasons[1][1]


def test_blank_lines_are_skipped_and_logged_with_their_lines(
    pipeline: PipelineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    text = 'id,name,price,at,note\n1,a,,,\n\n2,b,,,"two\n\nlines"\n\r\n3,c,,,\n'
    with caplog.at_level("INFO", logger="dataferry"):
        table = load(pipeline, text)
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("note").to_pylist() == [None, "two\n\nlines", None]
    assert "2 blank line(s) skipped (not rows): line(s) 3, 7" in caplog.text


def test_blank_lines_are_not_looked_for_when_the_log_would_not_show_them(
    pipeline: PipelineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="dataferry"):
        table = load(pipeline, "id,name,price,at,note\n1,a,,,\n\n2,b,,,\n")
    assert table.num_rows == 2
    assert "blank" not in caplog.text


def test_a_quote_that_never_closes_fails_the_file_at_its_line(pipeline: PipelineFactory) -> None:
    e = error(pipeline, 'id,name,price,at,note\n1,a,,,ok\n2,b,,,"open\n3,c,,,swallowed\n')
    assert e.line == 3
    assert "never closed" in e.reason


def _closer_look(
    path: Path, options: object, block: int, monkeypatch: pytest.MonkeyPatch
) -> object:
    from dataferry.readers import csv_file
    from dataferry.sources import SourceFile

    monkeypatch.setattr(csv_file, "BLOCK_SIZE", block)
    try:
        return csv_file._look_closer(SourceFile.local(path), options)  # type: ignore[arg-type]
    except InputError as e:
        return str(e)


@pytest.mark.parametrize("escape", [None, "\\"])
def test_the_token_scan_reads_a_stream_in_blocks_as_it_reads_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, escape: str | None
) -> None:
    """Compressed files are streams: the unclosed-quote and blank-line scan reads them in
    blocks. Tokens cut by a block's end (a quoted field, an escape, a blank line, a
    field's first byte) must come out as they do when the file is scanned in one piece."""
    import random

    from dataferry.spec import CsvOptions

    options = CsvOptions(escape=escape)
    rng = random.Random(15)
    alphabet = ["a", "b", ",", '"', '"', "\n", "\n", "\r\n", "\\"]
    path = tmp_path / "f.csv"
    for _ in range(300):
        path.write_text("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
        whole = _closer_look(path, options, 1 << 20, monkeypatch)
        for block in (1, 2, 3, 5, 8):
            assert _closer_look(path, options, block, monkeypatch) == whole, path.read_text()


def test_varchar_counts_characters_not_bytes_and_nul_is_found_late_or_early(
    pipeline: PipelineFactory,
) -> None:
    """A value's bytes are counted first (cheap) and its characters only when some value
    has more bytes than the limit; a column's values are searched for NUL only when its
    bytes hold a 0, in whichever batch, early or late."""
    ok = load(pipeline, "id,name,price,at,note\n1,ññññññññ,1,,\n2,abcdefgh,1,,\n")
    assert ok.column("name").to_pylist() == ["ññññññññ", "abcdefgh"]  # 16 and 8 bytes
    err = error(pipeline, "id,name,price,at,note\n1,ñññññññññ,1,,\n")
    assert "9 characters, longer than varchar(8)" in err.reason
    # a NUL late in a file larger than the first batch
    rows = "".join(f"{i},n{i % 1000},1,,x\n" for i in range(1, 30_000))
    err = error(pipeline, "id,name,price,at,note\n" + rows + "30000,z,1,,a\x00b\n")
    assert (err.line, "NUL characters cannot be stored" in err.reason) == (30_001, True)
    # ... and early, in the first batch, before anything else has read the file
    err = error(pipeline, "id,name,price,at,note\n0,z,1,,a\x00b\n" + rows)
    assert (err.line, "NUL characters cannot be stored" in err.reason) == (2, True)


def test_the_whole_file_passes_stop_at_a_signal_in_a_worker_thread(tmp_path: Path) -> None:
    """The passes that read a whole file with Python's csv module (rejects' line numbers,
    ragged rows) or block by block (the structure scan) run in worker threads, which the
    main thread joins once Ctrl-C has stopped it: they look at the cancellation as they
    go. The signal is real (SIGINT to this process, under the CLI's handlers)."""
    import os
    import signal
    import threading
    import time

    from dataferry import interrupt
    from dataferry.errors import Interrupted
    from dataferry.sources import SourceFile
    from dataferry.spec import CsvOptions

    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "1,2\n" * 50_000)
    source = SourceFile.of(path)
    stopped: list[str] = []

    def whole_file_passes() -> None:
        for name, run in (
            ("records", lambda: sum(1 for _ in csv_file._records(source, CsvOptions()))),
            ("scan", lambda: csv_file._scan(source, '"', True)),
        ):
            try:
                run()
            except Interrupted:
                stopped.append(name)

    def interrupt_this_process() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises in this (the main) thread at once

    try:
        with interrupt.handle_signals(), pytest.raises(Interrupted):
            interrupt_this_process()
        worker = threading.Thread(target=whole_file_passes)
        worker.start()
        worker.join(timeout=30)
    finally:
        with interrupt.handle_signals():  # a new run starts uncancelled
            pass
    assert stopped == ["records", "scan"]
