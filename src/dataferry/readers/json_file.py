"""JSON array and JSON Lines files -> records, streamed, numbers kept exact as Decimal.

ijson parses incrementally, so a file larger than memory streams with flat memory.
Numbers are never floats (DynamoDB cannot take them, and float rounding loses cents);
NaN, Infinity and repeated member names are errors, where Python's json accepts them.

ijson's C backend turns a lone UTF-16 surrogate escape (``"\\ud800"``) into ``?`` and
glues a high surrogate to whatever escape follows it: a key would land altered. A file
holding any surrogate escape is parsed by ijson's Python backend instead, which keeps
strings exact; the codec then rejects, per record, a string UTF-8 cannot encode.

No record (an array element or a JSON Lines line) may exceed MAX_RECORD_BYTES of text:
a larger one is refused without being held in memory whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import ijson

from ..errors import InputError
from ..sources import SourceFile

__all__ = ["MAX_RECORD_BYTES", "read_json_records"]

# 40 times DynamoDB's largest item (400 KB): room for whitespace and escapes, while a
# runaway record (a missing bracket, a binary file) is stopped long before memory is.
MAX_RECORD_BYTES = 16 << 20
MAX_PARSE_DEPTH = 64  # twice what DynamoDB stores: deeper is refused before it is built
_SAMPLE = 4096
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_CHUNK = 1 << 20


class _RecordTooLarge(Exception):
    pass


def _scan(source: SourceFile) -> tuple[bool, bool]:
    """(the file holds a surrogate escape, it may nest deeper than MAX_PARSE_DEPTH).

    The depth is counted naively, every 4 KiB, from brackets (those inside strings too):
    an over-estimate sends a file to the careful parser, never the other way round.
    ijson's parsers keep every level's path as text, so their memory grows with the
    square of the depth (1 GB at 20,000 levels): such a file must not reach them.
    """
    surrogates = deep = False
    depth = 0
    tail = b""
    with source.open() as f:
        while chunk := f.read(_CHUNK):
            if not surrogates:
                joined = tail + chunk[:5]  # an escape split across two blocks
                # most files hold no \\u escape at all: a plain search rules the block out
                surrogates = bool(
                    (b"\\u" in chunk and _SURROGATE_ESCAPE.search(chunk))
                    or _SURROGATE_ESCAPE.search(joined)
                )
                tail = chunk[-5:]
            if not deep:
                for at in range(0, len(chunk), _SAMPLE):
                    stop = at + _SAMPLE
                    depth += chunk.count(b"[", at, stop) + chunk.count(b"{", at, stop)
                    depth -= chunk.count(b"]", at, stop) + chunk.count(b"}", at, stop)
                    if depth > MAX_PARSE_DEPTH:
                        deep = True
                        break
            if surrogates and deep:
                break
    return surrogates, deep


class _TooDeep(Exception):
    pass


def _careful_items(events: Iterator[tuple[str, Any]]) -> Iterator[Any]:
    """The array's elements, built from ijson's basic events (which track no paths, so
    memory stays linear); an element nested deeper than MAX_PARSE_DEPTH is _TooDeep."""
    stack: list[Any] = []  # open containers; stack[0] is the top-level array
    keys: list[str | None] = []
    for event, value in events:
        if event in ("start_map", "start_array"):
            if len(stack) > MAX_PARSE_DEPTH:
                raise _TooDeep
            stack.append(_NotingDict() if event == "start_map" else [])
            keys.append(None)
            continue
        if event == "map_key":
            keys[-1] = value
            continue
        if event in ("end_map", "end_array"):
            value = stack.pop()
            keys.pop()
            if not stack:
                return  # the top-level array closed
        if len(stack) == 1:
            yield value  # an element of the top-level array
        elif isinstance(stack[-1], list):
            stack[-1].append(value)
        else:
            stack[-1][keys[-1]] = value


class _Bounded:
    """A file that refuses to be read further than MAX_RECORD_BYTES past the last
    record boundary the parser reported (``mark``)."""

    def __init__(self, f: IO[bytes], pending: bytes = b"") -> None:
        self.f = f
        self.pending = pending  # read already (to look for a byte order mark), not parsed
        self.since_mark = 0

    def read(self, size: int = -1) -> bytes:
        if self.pending and size != 0:  # ijson reads 0 bytes first, to learn the type
            data, self.pending = self.pending, b""
        else:
            data = self.f.read(size if size >= 0 else _CHUNK)
        self.since_mark += len(data)
        if self.since_mark > MAX_RECORD_BYTES + 2 * _CHUNK:
            raise _RecordTooLarge
        return data

    def mark(self) -> None:
        self.since_mark = 0


class _NotingDict(dict[str, Any]):
    """A mapping that notes a repeated member name. ijson's C parser cannot take an
    exception raised from inside it, so the reader looks for the note after each record
    (and only walks a record when some repeat was noted since the last one)."""

    repeated: str | None = None
    repeats_seen = 0  # on the class: any repeat anywhere, to skip walks when there is none

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self and self.repeated is None:
            self.repeated = key
            _NotingDict.repeats_seen += 1
        super().__setitem__(key, value)


def _first_repeat(value: Any) -> str | None:
    if isinstance(value, _NotingDict):
        if value.repeated is not None:
            return value.repeated
        return next((r for v in value.values() if (r := _first_repeat(v))), None)
    if isinstance(value, list):
        return next((r for v in value if (r := _first_repeat(v))), None)
    return None


def _no_constants(text: str) -> None:
    raise ValueError(f"{text} is not valid JSON")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"member {k!r} appears twice in one object")
        out[k] = v
    return out


OnBadLine = Callable[[int, str], None]


def _bounded_lines(f: IO[bytes]) -> Iterator[bytes | None]:
    """Each line, or None for a line longer than MAX_RECORD_BYTES (skipped unread)."""
    while raw := f.readline(MAX_RECORD_BYTES + 1):
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            while (rest := f.readline(_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield raw


def _jsonl(source: SourceFile, on_bad: OnBadLine | None) -> Iterator[tuple[int, dict[str, Any]]]:
    path = str(source)
    with source.open() as f:
        for lineno, raw in enumerate(_bounded_lines(f), start=1):
            if raw is None:
                problem = (
                    f"line longer than {MAX_RECORD_BYTES:,} bytes: no DynamoDB item can be "
                    "that large (400 KB)"
                )
                if on_bad is None:
                    raise InputError(path, problem, line=lineno)
                on_bad(lineno, problem)
                continue
            if lineno == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")  # line by line, so a bad byte names its line
                rec = json.loads(
                    line,
                    parse_float=Decimal,
                    parse_int=Decimal,
                    parse_constant=_no_constants,
                    object_pairs_hook=_unique_pairs,
                )
            except UnicodeDecodeError as e:
                problem = f"not valid utf-8: {e.reason} (byte 0x{raw[e.start]:02x})"
            except ValueError as e:
                problem = f"not valid JSON: {e}"
            except RecursionError:
                problem = "not valid JSON: nested too deeply to parse"
            else:
                if isinstance(rec, dict):
                    yield lineno, rec
                    continue
                problem = "each line must be a JSON object"
            if on_bad is None:
                raise InputError(path, problem, line=lineno)
            on_bad(lineno, problem)  # one bad line does not spoil the others


def _array(source: SourceFile) -> Iterator[tuple[int, dict[str, Any]]]:
    index = -1
    path = str(source)
    with source.open() as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head.startswith(b"["):
            raise InputError(path, "expected a JSON array of objects (or use .jsonl)")
    surrogates, deep = _scan(source)
    with source.open() as f:
        start = f.read(3)
        backend = ijson.get_backend("python") if surrogates else ijson
        bounded = _Bounded(f, b"" if start == b"\xef\xbb\xbf" else start)
        records = (
            _careful_items(backend.basic_parse(bounded, use_float=False))
            if deep
            else backend.items(bounded, "item", use_float=False, map_type=_NotingDict)
        )
        try:
            for index, rec in enumerate(records):
                bounded.mark()
                if _NotingDict.repeats_seen and (repeated := _first_repeat(rec)) is not None:
                    raise InputError(
                        str(path),
                        f"member {repeated!r} appears twice in one object",
                        record=index,
                    )
                if not isinstance(rec, dict):
                    raise InputError(str(path), "not a JSON object", record=index)
                yield index, rec
        except _RecordTooLarge:
            raise InputError(
                str(path),
                f"record larger than {MAX_RECORD_BYTES:,} bytes of JSON (or the array is "
                "not closed): no DynamoDB item can be that large (400 KB)",
                record=index + 1,
            ) from None
        except (_TooDeep, RecursionError):
            raise InputError(
                str(path),
                f"nested more than {MAX_PARSE_DEPTH} levels deep (DynamoDB stores 32): "
                "refused before it is built",
                record=index + 1,
            ) from None
        except (ijson.JSONError, ValueError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(
                str(path), f"not valid JSON after record {index}: {reason}", record=index + 1
            ) from None


def read_json_records(
    source: SourceFile | Path, fmt: str, on_bad: OnBadLine | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (position, record): the array index for ``json``, the line number for ``jsonl``.

    With ``on_bad``, a JSON Lines line that is not a JSON object is reported to it and
    skipped. A JSON array that is not valid JSON is unreadable as a whole: InputError.
    """
    source = SourceFile.of(source)
    if not source.exists():
        raise InputError(str(source), "no such file")
    records = _jsonl(source, on_bad) if fmt == "jsonl" else _array(source)
    return _read(source, records)


def _read(
    source: SourceFile, records: Iterator[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    with source.reading():
        yield from records
