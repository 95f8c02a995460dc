"""Objects in S3 as a dataset's files: ``s3://bucket/prefix/...`` paths and globs.

Credentials are the AWS chain's (environment, profile, the ECS task's role); the
endpoint is chosen by connections.resolve_s3: the spec's, ``AWS_ENDPOINT_URL_S3`` (an
emulator, MinIO), or the embedded stack's S3. A glob lists the bucket under the
pattern's literal prefix (1,000 keys a page) and keeps the keys that match, with
pathlib's rules (``*`` within a folder, ``**`` across folders). An object's fingerprint
is its ETag and size, taken from the listing, so an object loaded before is skipped
without being read.

Reading: ``fetch_ahead`` downloads the next few objects to local files on worker threads
while the current one is parsed, and deletes each copy once the reader moves on; a
reader that comes back to an object later (to find the lines of rejects) streams it
again. Every GET names the ETag it expects: an object replaced while the load runs
fails the load instead of mixing two versions.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .. import interrupt
from ..errors import DataferryError, InputError, TargetUnavailable
from .naming import is_pattern

__all__ = ["S3Object", "fetch_ahead", "is_s3", "list_objects", "s3_client"]

PREFIX = "s3://"
FETCH_AHEAD = 4  # objects downloaded while one is parsed
_CHUNK = 1 << 20


def is_s3(path: str) -> bool:
    return path.startswith(PREFIX)


def split(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``."""
    bucket, _, key = url[len(PREFIX) :].partition("/")
    if not bucket:
        raise InputError(url, "an S3 path names its bucket: s3://bucket/key")
    return bucket, key


def s3_client(target: Any) -> Any:
    """A client for a dataset's objects, shared by them (clients are thread-safe), at
    ``target`` (connections.resolve_s3: its endpoint, region, and for the embedded S3
    its local credentials)."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3",
        **target.client_kwargs(),
        config=Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=FETCH_AHEAD * 2,
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def _error(url: str, err: Exception) -> DataferryError:
    """A dataferry error for a botocore one, naming the object (never a credential)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "404", "NotFound"):
            return InputError(url, "no such object")
        if code == "NoSuchBucket":
            return InputError(url, "no such bucket")
        if code in ("AccessDenied", "403", "Forbidden") or status == 403:
            return InputError(
                url,
                "access denied: the credentials in use may not read it (s3:ListBucket on "
                "the bucket for a pattern, s3:GetObject on the object)",
            )
        if code in ("PreconditionFailed", "412"):
            return InputError(url, "the object was replaced while it was being loaded; run again")
        if code in ("SlowDown", "ServiceUnavailable", "InternalError", "503", "500"):
            return TargetUnavailable(f"{url}: S3 answered {code}")
        message = err.response.get("Error", {}).get("Message", "")
        return InputError(url, f"S3 refused it: {code}: {message}")
    if isinstance(err, NoCredentialsError):
        return InputError(url, "no AWS credentials found to read it (the AWS credential chain)")
    if isinstance(err, EndpointConnectionError):
        return TargetUnavailable(f"{url}: cannot connect to S3 at {err.kwargs.get('endpoint_url')}")
    if isinstance(err, BotoCoreError):
        return TargetUnavailable(f"{url}: {err}")
    raise err


@contextlib.contextmanager
def _translated(url: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as e:
        raise _error(url, e) from None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A key pattern as pathlib reads globs: ``*`` and ``?`` stay within a folder, ``**``
    (a whole segment) spans any number of folders, ``[...]`` is a set."""
    out = []
    segments = pattern.split("/")
    for n, seg in enumerate(segments):
        last = n == len(segments) - 1
        if seg == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        i = 0
        while i < len(seg):
            c = seg[i]
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c == "[" and (end := seg.find("]", i + 2)) > 0:
                body = seg[i + 1 : end]
                negate = body.startswith("!")
                out.append("[" + ("^" if negate else "") + re.escape(body.lstrip("!")) + "]")
                i = end
            else:
                out.append(re.escape(c))
            i += 1
        if not last:
            out.append("/")
    return re.compile("".join(out))


@dataclass(eq=False)
class S3Object:
    """One object: where it is, the version listed (ETag), and its local copy once
    fetched."""

    bucket: str
    key: str
    etag: str
    size: int
    mtime: float
    client: Any = field(default=None, repr=False)
    copy: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{PREFIX}{self.bucket}/{self.key}"

    def open_stream(self) -> IO[bytes]:
        """The object's bytes from S3, this very version (If-Match its ETag)."""
        with _translated(self.url):
            body = self.client.get_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)[
                "Body"
            ]
        return io.BufferedReader(_Raw(body, self.url), _CHUNK)

    def fetch(self, folder: Path, stop: threading.Event) -> Path:
        """Download the object into ``folder`` (a file of its own); return its path.
        Ends early, with no copy, once ``stop`` is set or a signal came."""
        fd, name = tempfile.mkstemp(dir=folder, suffix=Path(self.key).name[-40:])
        os.close(fd)
        target = Path(name)
        with self.open_stream() as src, target.open("wb") as out:
            while chunk := src.read(_CHUNK):
                if stop.is_set() or interrupt.cancelled():
                    raise _Stopped
                out.write(chunk)
        return target


class _Stopped(Exception):
    pass


class _Raw(io.RawIOBase):
    """botocore's streaming body as a raw binary file, its read errors translated."""

    def __init__(self, body: Any, url: str) -> None:
        self.body, self.url = body, url

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        with _translated(self.url):
            data = self.body.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.body.close()
        super().close()


def list_objects(pattern_url: str, client: Any) -> list[S3Object]:
    """The objects a URL names: the one object, or those a glob matches (may be none)."""
    bucket, pattern = split(pattern_url)
    if not is_pattern(pattern):
        with _translated(pattern_url):
            head = client.head_object(Bucket=bucket, Key=pattern)
        return [
            S3Object(
                bucket,
                pattern,
                head["ETag"],
                int(head["ContentLength"]),
                head["LastModified"].timestamp(),
                client,
            )
        ]
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    prefix = literal[: literal.rfind("/") + 1]
    matcher = _glob_regex(pattern)
    found = []
    with _translated(f"{PREFIX}{bucket}/{prefix}"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            interrupt.check()
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/") or not matcher.fullmatch(key):
                    continue
                found.append(
                    S3Object(
                        bucket,
                        key,
                        obj["ETag"],
                        int(obj["Size"]),
                        obj["LastModified"].timestamp(),
                        client,
                    )
                )
    return found


def fetch_ahead(files: list[Any], depth: int = FETCH_AHEAD) -> Iterator[Any]:
    """``files`` in order; the S3 ones with a local copy made ahead of time (``depth``
    at once, on threads) and removed once the next file is taken."""
    remote = [f for f in files if f.remote is not None]
    if not remote:
        yield from files
        return
    folder = Path(tempfile.mkdtemp(prefix="dataferry-s3-"))
    pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="dataferry-s3")
    pending: dict[int, Future[Path]] = {}
    stop = threading.Event()
    try:
        for i, f in enumerate(files):
            for j in range(i, min(i + depth, len(files))):
                if j not in pending and files[j].remote is not None:
                    pending[j] = pool.submit(files[j].remote.fetch, folder, stop)
            if f.remote is not None:
                try:
                    f.remote.copy = pending.pop(i).result()
                except _Stopped:
                    interrupt.check()
                    raise
            try:
                yield f
            finally:
                if f.remote is not None and f.remote.copy is not None:
                    f.remote.copy.unlink(missing_ok=True)
                    f.remote.copy = None
    finally:
        stop.set()  # downloads under way end at their next chunk
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(folder, ignore_errors=True)
