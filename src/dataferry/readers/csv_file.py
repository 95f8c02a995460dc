"""CSV files -> typed Arrow record batches, streamed; bad rows go to a RejectLog.

pyarrow's streaming CSV reader does the parsing (quotes, embedded delimiters and newlines,
CRLF) at C++ speed; columns are matched by header name, never by position. Rows that are
ragged, hold bytes invalid in UTF-8 or values their column cannot take are left out of the
batches and logged. Line numbers are found afterwards, with Python's csv module, and only
when something was rejected.

Before any row is read, the file's bytes are checked for what Arrow would accept
silently or could not hold: a line longer than MAX_LINE_BYTES (refused, named), a quoted
field that never closes (Arrow reads the rest of the file as that one value, swallowing
every row after it: refused, naming the line where the quote opened), and blank lines
(not rows: skipped, and counted in the log). A cheap count of quote characters and of
line-break pairs finds the last two; only then is the file scanned token by token.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .. import interrupt
from ..background import submit
from ..errors import InputError
from ..sources import SourceFile
from ..spec import CsvOptions, Dataset
from .convert import ROW_COLUMN, convert_column, typed_batch
from .rejects import RejectLog

__all__ = ["ROW_COLUMN", "csv_records", "lines_of_rows", "read_csv"]

BLOCK_SIZE = 1 << 20  # bigger blocks are no faster and hold more memory
# Arrow's reader cannot carry a row across more than two blocks; a file with a longer row
# is read again in larger blocks: first 4 MiB (values of a few MB: documents, pages), then
# MAX_ROW_BYTES (any row up to this size fits). Memory grows with the blocks: a load of
# 1M rows peaks at 0.21 GB; with one 3 MB value among them, at 0.32 GB in 4 MiB blocks
# and 0.51 GB in 32 MiB ones.
LARGER_BLOCK_SIZE = 4 << 20
MAX_ROW_BYTES = 32 << 20
_STRADDLES = "straddles two block boundaries"  # Arrow's message for such a row
# The longest line a file may have: a runaway one (no line breaks, a binary file) is
# refused before anything holds it in memory. Rows may span lines inside quotes.
MAX_LINE_BYTES = 16 << 20
csv.field_size_limit(MAX_LINE_BYTES)  # Python's csv module reads the header and line numbers
log = logging.getLogger("dataferry")


def _scan(source: SourceFile, quote: str, blank_lines: bool) -> tuple[bool, int]:
    """One cheap pass over the bytes (about 40 ms per 50 MB): refuse a line longer than
    MAX_LINE_BYTES, naming it; return (suspect, lines): suspect when the file has an odd
    number of quote characters or, when ``blank_lines`` are wanted, a line break right
    after another (an unclosed quote or blank lines, looked at closer by
    check_structure); lines, for the progress display."""
    q = quote.encode()
    quotes = 0
    breaks = 0
    last = b"\n"
    paired = not blank_lines  # True: not looked for
    run = 0  # bytes since the last line break
    offset = 0
    tail = b""
    with source.open() as f:
        while chunk := f.read(BLOCK_SIZE):
            interrupt.check()
            quotes += chunk.count(q)
            breaks += chunk.count(b"\n")
            last = chunk[-1:]
            if not paired:
                edge = tail + chunk[:2]  # a pair split across two blocks
                paired = (
                    b"\n\n" in chunk or b"\n\r\n" in chunk or b"\n\n" in edge or b"\n\r\n" in edge
                )
                tail = chunk[-2:]
            first = chunk.find(b"\n")
            run += len(chunk) if first < 0 else first
            if run > MAX_LINE_BYTES:
                raise InputError(
                    str(source),
                    f"line longer than {MAX_LINE_BYTES:,} bytes (the most one line may "
                    "hold); is this a CSV file, with its line breaks?",
                    line=_line_at(source, offset + (len(chunk) if first < 0 else first) - run),
                )
            if first >= 0:
                run = len(chunk) - 1 - chunk.rfind(b"\n")
            offset += len(chunk)
    lines = breaks + (0 if last == b"\n" else 1)
    return quotes % 2 == 1 or (paired and blank_lines), lines


def _line_at(source: SourceFile, position: int) -> int:
    """The number of the line that holds byte ``position`` (counted only on an error)."""
    breaks = 0
    with source.open() as f:
        while position > 0 and (chunk := f.read(min(BLOCK_SIZE, position))):
            interrupt.check()
            breaks += chunk.count(b"\n")
            position -= len(chunk)
    return breaks + 1


def check_structure(source: SourceFile, options: CsvOptions, dataset: str | None = None) -> int:
    """Refuse a file with a line over MAX_LINE_BYTES or that ends inside a quoted field;
    log the blank lines it skips (read_csv runs it beside the rows). Returns the file's
    lines (the rows, give or take a header, blank lines and quoted breaks)."""
    # Blank lines are only reported in the log: looked for when it will show them (-v).
    suspect, lines = _scan(source, options.quote, log.isEnabledFor(logging.INFO))
    if not suspect and options.escape is None:
        return lines
    blank, blanks = _look_closer(source, options)
    if blanks:
        more = f" and {blanks - len(blank)} more" if blanks > len(blank) else ""
        log.info(
            "%s: %d blank line(s) skipped (not rows): line(s) %s%s",
            dataset or source,
            blanks,
            ", ".join(map(str, blank)),
            more,
        )
    return lines


def _look_closer(source: SourceFile, options: CsvOptions) -> tuple[list[int], int]:
    """Scan the file token by token, in blocks (a compressed file is a stream): refuse a
    quoted field that never closes, naming the line where it opens; return (the first
    blank lines, how many there are)."""
    q, e = re.escape(options.quote.encode()), options.escape
    body = (
        rb"(?:[^%s\\%s]|%s.)*" % (q, re.escape(e.encode()), re.escape(e.encode()))
        if e
        else (rb"[^%s]*" % q)
    )
    # A quote opens a quoted field only at the start of a field, as Arrow reads it; one
    # inside an unquoted value is a character of that value.
    start = rb"(?:(?<=[%s\r\n])|^)" % re.escape(options.delimiter.encode())
    token = re.compile(rb"%s%s%s%s|%s(%s)|\n(?=\r?\n)" % (start, q, body, q, start, q), re.DOTALL)
    blank: list[int] = []
    blanks = 0
    line = 1  # the line of buf[counted]
    buf, at, counted = b"", 0, 0
    with source.open() as f:
        while True:
            interrupt.check()
            chunk = f.read(BLOCK_SIZE)
            eof = not chunk
            buf += chunk
            # Near the end of the block a token may go on in the next one: it is looked
            # at again with it (a blank line needs two bytes past its own).
            limit = len(buf) if eof else max(len(buf) - 2, at)
            cut = limit
            for m in token.finditer(buf, at):
                lone = m.group(1) is not None
                if m.start() >= limit or (not eof and (lone or m.end() > limit)):
                    cut = m.start()
                    break
                if m.group(0)[:1] == options.quote.encode() and not lone:
                    continue  # a whole quoted field: its line breaks are data
                line += buf.count(b"\n", counted, m.start())
                counted = m.start()
                if lone:
                    raise InputError(
                        str(source),
                        "a quoted field opens here and is never closed: the rest of the file "
                        "would be read as one value",
                        line=line,
                    )
                blanks += 1
                if len(blank) < 10:
                    blank.append(line + 1)
            if eof:
                return blank, blanks
            line += buf.count(b"\n", counted, cut)
            keep = max(cut - 1, 0)  # one byte before the cut: a field's start is told by it
            buf, at = buf[keep:], cut - keep
            counted = at
            if len(buf) > MAX_LINE_BYTES + BLOCK_SIZE:
                raise InputError(
                    str(source),
                    f"a quoted field opens here and does not close within {MAX_LINE_BYTES:,} "
                    "bytes (the most one value may hold)",
                    line=line,
                )


def _lines(source: SourceFile, options: CsvOptions) -> Iterator[str]:
    """Decoded physical lines; a byte the encoding rejects is an error naming its line.

    Lines are decoded one by one (not in big chunks) so that the line number is exact.
    """
    encoding = options.encoding
    with source.open() as f:
        for number, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(
                    str(source), f"line longer than {MAX_LINE_BYTES:,} bytes", line=number
                )
            if number == 1 and raw.startswith(codecs.BOM_UTF8) and "8" in encoding:
                raw = raw[len(codecs.BOM_UTF8) :]  # a BOM would glue onto the first name
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise InputError(
                    str(source),
                    f"not valid {encoding}: {e.reason} (byte 0x{raw[e.start]:02x})",
                    line=number,
                ) from None


def _records(
    source: SourceFile, options: CsvOptions, lines: Iterable[str] | None = None
) -> Generator[tuple[int, list[str]], None, None]:
    """(first line, fields) for each CSV record, as Python's csv module reads them."""
    reader = csv.reader(
        _lines(source, options) if lines is None else lines,
        delimiter=options.delimiter,
        quotechar=options.quote,
        escapechar=options.escape,
        doublequote=options.escape is None,
    )
    start = 1
    try:
        for n, record in enumerate(reader):
            if not n & 0xFFF:  # a whole-file pass in a worker thread, which Ctrl-C waits for
                interrupt.check()
            yield start, record
            start = reader.line_num + 1
    except csv.Error as e:
        why = str(e)
        if why.startswith("field larger than field limit"):
            why = f"a value longer than {MAX_LINE_BYTES:,} bytes (the most one value may hold)"
        elif why.startswith("new-line character seen in unquoted field"):
            why = (
                "a carriage return alone, outside quotes: lines must end with \\n or \\r\\n "
                "(a file saved with old Mac line breaks, CR only, needs them converted)"
            )
        raise InputError(str(source), why, line=start) from None


def csv_records(path: Path, options: CsvOptions | None = None) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) for each record of a file, header included, decoded as a load
    decodes it (a BOM dropped); a byte the encoding rejects, a value over MAX_LINE_BYTES
    or a broken quote is an InputError naming the line."""
    source = SourceFile.of(path)
    yield from _records(source, options or CsvOptions())


def _lenient_lines(
    source: SourceFile, options: CsvOptions, bad: list[int] | None = None
) -> Iterator[str]:
    """Decoded lines, a byte the encoding rejects replaced; ``bad`` gets those lines'
    numbers, in order."""
    with source.open() as f:
        for number, raw in enumerate(f, 1):
            try:
                yield raw.decode(options.encoding)
            except UnicodeDecodeError:
                if bad is not None:
                    bad.append(number)
                yield raw.decode(options.encoding, errors="replace")


def lines_of_rows(
    source: SourceFile, options: CsvOptions, ncols: int, rows: set[int]
) -> dict[int, int]:
    """The first line of each data row in ``rows``, counting rows as Arrow does (well-formed,
    non-empty records after the header), in one pass."""
    out: dict[int, int] = {}
    if not rows:
        return out
    last = max(rows)
    index = -1
    records = _records(source, options, _lenient_lines(source, options))
    if options.header:
        next(records, None)
    for line, record in records:
        if not record or len(record) != ncols:
            continue
        index += 1
        if index in rows:
            out[index] = line
            if index == last:
                break
    return out


class _SkipRaggedRows:
    """Arrow's invalid-row handler: skip each row with the wrong field count (logged with
    its line once the file is read), counting them."""

    def __init__(self) -> None:
        self.skipped = 0
        # pyarrow decodes a row's text before calling the handler; when the row is not
        # UTF-8, the handler is never called, the decode error is "unraisable" and the
        # read then fails. _unraisable notes it here instead of printing a traceback.
        self.undecodable = False

    def __call__(self, row: pacsv.InvalidRow) -> str:
        self.skipped += 1
        return "skip"


_hooked: list[Callable[[Any], None]] = []  # the unraisablehook _unraisable stands in front of


def _unraisable(unraisable: Any) -> None:
    if isinstance(unraisable.object, _SkipRaggedRows) and isinstance(
        unraisable.exc_value, UnicodeDecodeError
    ):
        unraisable.object.undecodable = True
        return
    (_hooked[-1] if _hooked else sys.__unraisablehook__)(unraisable)


def _hook_unraisable() -> None:
    """Put _unraisable in front of whatever hook is there now (a test runner swaps its
    own in and out around each test)."""
    if sys.unraisablehook is not _unraisable:
        _hooked[:] = [sys.unraisablehook]
        sys.unraisablehook = _unraisable


def _undecodable_ragged(source: SourceFile, options: CsvOptions, ncols: int) -> InputError:
    """The refusal of a file holding a row with the wrong field count whose bytes are not
    valid in its encoding: the reader cannot skip such a row, so it cannot be rejected on
    its own either. Names its line."""
    bad: list[int] = []  # the lines read so far that did not decode
    # the csv module reads a record's lines as it needs them: a bad line at or after the
    # record's first is one of its own
    for line, record in _records(source, options, _lenient_lines(source, options, bad)):
        if record and len(record) != ncols and bad and bad[-1] >= line:
            return InputError(
                str(source),
                f"expected {ncols} fields, found {len(record)}, in a row that is not valid "
                f"{options.encoding}: such a row cannot be set aside as a reject, so the "
                "file is refused; mend or remove the row",
                line=line,
            )
    return InputError(
        str(source), f"a row with the wrong field count is not valid {options.encoding}"
    )


def _ragged(source: SourceFile, options: CsvOptions, ncols: int, log: RejectLog) -> None:
    """Log every record whose field count is wrong (Arrow skipped them), with its line."""
    records = _records(source, options, _lenient_lines(source, options))
    if options.header:
        next(records, None)
    for line, record in records:
        if record and len(record) != ncols:
            log.add(
                None,
                None,
                options.delimiter.join(record)[:200],
                f"expected {ncols} fields, found {len(record)}",
                line=line,
            )


def _some(names: list[str], shown: int = 10) -> str:
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(n if len(n) <= 64 else n[:61] + "..." for n in names[:shown]) + more


def _header(source: SourceFile, ds: Dataset) -> list[str]:
    options = ds.source.csv
    if not options.header:
        return list(ds.columns)
    records = _records(source, options)
    try:
        first = next(records, None)
    finally:
        records.close()  # the file is closed now, not when the generator is collected
    header = first[1] if first else None
    if not header:
        raise InputError(str(source), "empty file: no header row", line=1)
    header = [h.strip() for h in header]
    present = set(header)
    missing = [c for c in ds.columns if c not in present]
    extra = [h for h in header if h and h not in ds.columns]
    unnamed = [str(i) for i, h in enumerate(header, 1) if not h]
    dupes = sorted(h for h, n in Counter(header).items() if n > 1 and h)
    problems = []
    if missing:
        problems.append(f"missing column(s) {_some(missing)}")
    if extra:
        problems.append(f"column(s) not in the spec: {_some(extra)}")
    if unnamed:
        trailing = " (a delimiter at the end of the line?)" if not header[-1] else ""
        columns = "column" if len(unnamed) == 1 else "columns"
        problems.append(f"no name for {columns} {_some(unnamed)}{trailing}")
    if dupes:
        problems.append(f"repeated column(s) {_some(dupes)}")
    if problems:
        raise InputError(str(source), "header: " + "; ".join(problems), line=1)
    return header


def _open(
    source: SourceFile,
    options: CsvOptions,
    header: list[str],
    on_invalid_row: _SkipRaggedRows,
    block_size: int,
) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        source.on_disk() if source.is_plain else source.native(),
        read_options=pacsv.ReadOptions(
            column_names=header,
            skip_rows=1 if options.header else 0,
            block_size=block_size,
            encoding=options.encoding,
            use_threads=True,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=options.delimiter,
            quote_char=options.quote,
            escape_char=options.escape or False,
            double_quote=options.escape is None,
            newlines_in_values=True,
            invalid_row_handler=on_invalid_row,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            null_values=[options.null],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            check_utf8=False,  # checked per batch below, so a bad row is rejected, not fatal
        ),
    )


def _invalid_utf8(batch: pa.RecordBatch, names: list[str], offset: int, log: RejectLog) -> set[int]:
    """Rows holding bytes that are not UTF-8 (only looked for when the batch fails validation)."""
    try:
        batch.validate(full=True)
        return set()
    except pa.ArrowInvalid:
        pass
    bad: set[int] = set()
    for name in names:
        for i, raw in enumerate(batch.column(name).cast(pa.binary()).to_pylist()):
            if raw is None or i in bad:
                continue
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad.add(i)
                log.add(
                    offset + i,
                    name,
                    raw.decode("utf-8", errors="replace"),
                    f"column {name}: not valid utf-8: {e.reason} (byte 0x{raw[e.start]:02x})",
                )
    return bad


class Structure:
    """check_structure running on another thread while the rows are read."""

    def __init__(self, future: Future[int]) -> None:
        self.future = future
        self.told = False  # whether the progress was given the file's lines

    def tell(self, expect: Callable[[int], None] | None, header_lines: int) -> None:
        """Once the check is done: a file it refused is refused now, and the progress
        learns the file's lines."""
        if not self.future.done():
            return
        lines = self.future.result()  # raises the check's InputError
        if expect is not None and not self.told:
            expect(max(0, lines - header_lines))
            self.told = True

    def wait(self) -> int:
        return self.future.result()


def read_csv(
    source: SourceFile | Path,
    ds: Dataset,
    log: RejectLog | None = None,
    expect: Callable[[int], None] | None = None,
    first_row: int = 0,
) -> Iterator[pa.RecordBatch]:
    """Yield typed batches (spec column order, plus ROW_COLUMN) of the rows that are valid.

    With a ``log``, bad rows are logged and left out; without one, the first bad row is an
    InputError naming its line. ``expect`` is told the rows the file appears to hold.
    Row indexes start at ``first_row`` (a dataset's files number their rows on).
    """
    source = SourceFile.of(source, ds.source.codec)
    options = ds.source.csv
    if not source.exists():
        raise InputError(str(source), "no such file")
    strict = log is None
    log = log if log is not None else RejectLog(str(source))
    with source.reading():
        header = _header(source, ds)
        # The structure check reads the whole file once more (decompressing it again): it
        # runs beside the rows being read and sent, not before them. Everything is sent
        # inside the load's transaction, so a file it then refuses changes nothing; its
        # message, which names the cause, wins over the parser's.
        structure = Structure(submit(check_structure, source, options, ds.target.table))
        log.begin(source, first_row, lambda rows: lines_of_rows(source, options, len(header), rows))
        try:
            yield from _batches(source, ds, header, log, strict, first_row, structure, expect)
        except InputError:
            structure.wait()
            raise
        lines = structure.wait()
        if expect is not None and not structure.told:
            expect(max(0, lines - (1 if options.header else 0)))
        if strict and len(log):
            first = log.first()
            assert first is not None
            value = (
                ""
                if first.value is None or "fields" in first.reason
                else (f" (value {first.value!r})")
            )
            raise InputError(str(source), first.reason + value, line=first.line)


def _text_batches(
    source: SourceFile, options: CsvOptions, header: list[str], ragged: _SkipRaggedRows
) -> Iterator[pa.RecordBatch]:
    """Arrow's batches of the file's rows, every value as text. When a row is longer than
    Arrow can carry across blocks, the file is read again from its start in larger
    blocks, the rows already yielded passed over (rows are counted alike whatever the
    blocks), so no row is yielded twice."""
    _hook_unraisable()
    yielded = 0
    for block_size in (BLOCK_SIZE, LARGER_BLOCK_SIZE, MAX_ROW_BYTES):
        read = 0  # rows of this reading
        try:
            # the first block is read on opening (a transcoding error, a long row)
            for batch in _open(source, options, header, ragged, block_size):
                if read + batch.num_rows > yielded:
                    yield batch.slice(max(0, yielded - read))
                    yielded = read + batch.num_rows
                read += batch.num_rows
            return
        except pa.ArrowInvalid as e:
            if ragged.undecodable:
                raise _undecodable_ragged(source, options, len(header)) from None
            if _STRADDLES not in str(e):
                raise InputError(str(source), str(e)) from None
            log.info(
                "%s: a row longer than %d bytes: read again in larger blocks", source, block_size
            )
    raise _row_too_long(source, options)


def _row_too_long(source: SourceFile, options: CsvOptions) -> InputError:
    """The refusal of a file with a row longer than MAX_ROW_BYTES, naming its line."""
    why = (
        f"a row longer than {MAX_ROW_BYTES:,} bytes (the most one row may hold, its "
        "quoted line breaks included)"
    )
    for line, record in _records(source, options, _lenient_lines(source, options)):
        # the values' bytes, and a delimiter and two quotes each: about the row's bytes
        if sum(len(v.encode()) + 3 for v in record) > MAX_ROW_BYTES:
            return InputError(str(source), why, line=line)
    return InputError(str(source), why)


def _batches(
    source: SourceFile,
    ds: Dataset,
    header: list[str],
    log: RejectLog,
    strict: bool,
    first_row: int,
    structure: Structure,
    expect: Callable[[int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    options = ds.source.csv
    ragged = _SkipRaggedRows()
    names = list(ds.columns)
    offset = first_row
    for batch in _text_batches(source, options, header, ragged):
        bad_rows = _invalid_utf8(batch, names, offset, log)
        if bad_rows:  # blank them out so the conversions below see valid strings only
            keep = pa.array([i not in bad_rows for i in range(batch.num_rows)])
            batch = pa.RecordBatch.from_arrays(
                [
                    pc.if_else(keep, batch.column(n), pa.scalar(None, pa.string()))
                    for n in batch.schema.names
                ],
                names=batch.schema.names,
            )
        structure.tell(expect, 1 if options.header else 0)
        good = typed_batch(batch, ds, offset, log, convert_column, bad_rows)
        offset += batch.num_rows
        log.next_row = offset
        if strict and len(log):
            break
        if good.num_rows:
            yield good
    if ragged.skipped:
        _ragged(source, options, len(header), log)
    log.resolve()
