"""One file of a dataset's source: where it is, how it is compressed, how to read it.

A file is read as a stream of its decompressed bytes, through Arrow's compressed streams
(gzip, zstd, bz2), so a compressed file is never whole in memory or on disk. Its
fingerprint is of the bytes as stored: a file recompressed differently is a changed file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import InputError
from ..ledger import file_fingerprint
from .naming import compression_of

if TYPE_CHECKING:
    from .s3 import S3Object

__all__ = ["SourceFile"]

_BUFFER = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """A file to load. ``key`` names it in the ledgers: its path relative to the spec's
    folder (posix), or its absolute path outside it, so that a run from another folder or
    another machine recognises it; errors name ``path``."""

    key: str
    path: Path
    compression: str | None = None
    size: int = 0
    mtime: float = 0.0
    remote: S3Object | None = None  # an object in S3 (``key`` is its URL)

    @classmethod
    def local(
        cls, path: Path, key: str | None = None, compression: str | None = "auto"
    ) -> SourceFile:
        """A local file; ``compression`` "auto" is told by its name, None is none."""
        try:
            st = path.stat()
        except FileNotFoundError:
            raise InputError(str(path), "no such file") from None
        except OSError as e:
            raise InputError(str(path), f"cannot be read ({e.strerror or e})") from None
        if not path.is_file():
            raise InputError(str(path), "not a file")
        return cls(
            key=key if key is not None else path.as_posix(),
            path=path,
            compression=compression_of(path.name) if compression == "auto" else compression,
            size=st.st_size,
            mtime=st.st_mtime,
        )

    @classmethod
    def of(cls, source: SourceFile | Path, compression: str | None = "auto") -> SourceFile:
        """``source`` itself, or the local file at that path."""
        if isinstance(source, SourceFile):
            return source
        if not source.exists():
            return cls(key=source.as_posix(), path=source)  # its reader says "no such file"
        return cls.local(source, compression=compression)

    @classmethod
    def s3(cls, obj: S3Object, compression: str | None = "auto") -> SourceFile:
        """An S3 object, its compression told by its key unless given."""
        return cls(
            key=obj.url,
            path=Path(obj.key),
            compression=compression_of(obj.key) if compression == "auto" else compression,
            size=obj.size,
            mtime=obj.mtime,
            remote=obj,
        )

    def __str__(self) -> str:
        return self.key if self.remote is not None else str(self.path)

    def on_disk(self) -> Path | None:
        """Where the stored bytes are on this machine: the file, or an S3 object's copy
        while it is being read (sources.s3.fetch_ahead); None for an object not fetched."""
        return self.path if self.remote is None else self.remote.copy

    @property
    def is_plain(self) -> bool:
        """Uncompressed on the local disk: readers may map it or let Arrow open it."""
        return self.compression is None and self.on_disk() is not None

    def exists(self) -> bool:
        return self.remote is not None or self.path.is_file()

    def fingerprint(self) -> tuple[int, str]:
        """(size, SHA-256) of the bytes as stored; for an S3 object, its size and ETag
        from the listing ("etag:..."), known without reading it."""
        if self.remote is not None:
            return self.size, "etag:" + self.remote.etag.strip('"')
        return file_fingerprint(self.path)

    def _raw(self) -> IO[bytes]:
        local = self.on_disk()
        if local is not None:
            return local.open("rb")
        assert self.remote is not None
        return self.remote.open_stream()

    def native(self) -> Any:
        """The decompressed bytes as an Arrow input stream (for Arrow's own readers)."""
        import pyarrow as pa

        local = self.on_disk()
        raw = pa.OSFile(str(local)) if local is not None else pa.PythonFile(self._raw(), "r")
        if self.compression is None:
            return raw
        return pa.CompressedInputStream(raw, self.compression)

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The decompressed bytes as a buffered binary file. A stream the codec cannot
        decode (a corrupt or truncated file) is an InputError naming the file."""
        with self.reading():
            if self.compression is None:
                f: IO[bytes] = self._raw()
            else:
                f = io.BufferedReader(self.native(), _BUFFER)
            with f:
                yield f

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Turn an error of the file's bytes (a truncated or corrupt compressed stream,
        a read error) raised in the block into an InputError naming the file."""
        try:
            yield
        except InputError:
            raise
        except OSError as e:
            what = f"{self.compression} stream" if self.compression else "file"
            reason = e.strerror or str(e) or type(e).__name__
            raise InputError(str(self), f"the {what} cannot be read: {reason}") from None
