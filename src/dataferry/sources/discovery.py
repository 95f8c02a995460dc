"""A dataset's files: its ``source.path`` (a path, a glob, or a list of them, local or
``s3://``) expanded into the files it names, in the order they are to be loaded.

Globs follow pathlib: ``*`` within a folder, ``**`` across folders. A glob that matches
nothing is an error, as a missing path is: an empty landing folder must not read as "the
table is empty" (which ``mode: replace`` would act on).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, TargetUnavailable
from .naming import is_pattern
from .s3 import is_s3, list_objects, s3_client
from .source_file import SourceFile

if TYPE_CHECKING:
    from ..spec import Source, Spec

__all__ = ["dataset_files", "is_pattern", "source_files"]


def _key(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _matches(pattern: str, base: Path) -> list[Path]:
    """The files a glob names, relative to ``base`` unless absolute."""
    parts = Path(pattern).parts
    first = next(i for i, p in enumerate(parts) if is_pattern(p))
    root = Path(*parts[:first]) if first else Path()
    root = root if root.is_absolute() else base / root
    rest = "/".join(parts[first:])
    return sorted(p for p in root.glob(rest) if p.is_file())


def source_files(
    source: Source, base: Path, s3: Callable[[], Any] | None = None
) -> list[SourceFile]:
    """The files of ``source``, resolved against ``base`` (the spec's folder), ordered
    by ``source.order``; each once, however many entries name it. ``s3://`` entries are
    objects, listed with the client ``s3()`` makes (asked for only when needed)."""
    found: dict[Path | str, SourceFile] = {}
    client = None
    for entry in source.paths:
        if is_s3(entry):
            if client is None:
                if s3 is None:
                    raise InputError(entry, "S3 sources need an S3 endpoint (stores.s3)")
                client = s3()
            objects = list_objects(entry, client)
            if not objects:
                raise InputError(entry, "no object matches this pattern")
            for obj in objects:
                found.setdefault(obj.url, SourceFile.s3(obj, source.codec))
            continue
        if is_pattern(entry):
            paths = _matches(entry, base)
            if not paths:
                shown = entry if Path(entry).is_absolute() else str(base / entry)
                raise InputError(shown, "no file matches this pattern")
        else:
            p = Path(entry)
            paths = [p if p.is_absolute() else base / p]
        for p in paths:
            if p not in found:
                found[p] = SourceFile.local(p, _key(p, base), source.codec)
    files = list(found.values())
    return _ordered(files, source)


def _ordered(files: list[SourceFile], source: Source) -> list[SourceFile]:
    order = source.order
    if order == "mtime":
        return sorted(files, key=lambda f: (f.mtime, f.key))
    if isinstance(order, str):  # name
        return sorted(files, key=lambda f: f.key)
    date = order.date
    pattern = re.compile(date)

    def when(f: SourceFile) -> tuple[tuple[int, ...], str]:
        m = pattern.search(f.key)
        if m is None:
            raise InputError(str(f), f"its name holds no date matching source.order.date {date!r}")
        groups = m.groups() or (m.group(0),)
        try:
            return tuple(int(g) for g in groups if g is not None), f.key
        except ValueError:
            raise InputError(
                str(f),
                f"source.order.date {date!r}: the groups it captures must be "
                f"numbers (year, month, day...), got {m.group(0)!r}",
            ) from None

    return sorted(files, key=when)


def dataset_files(spec: Spec, name: str, start: bool = True) -> list[SourceFile]:
    """The files of dataset ``name`` of ``spec``, in load order. ``start``: the embedded
    S3 may be started to list ``s3://`` sources (plan starts nothing)."""

    def client() -> Any:
        from ..connections import resolve_s3, say_chosen

        target = resolve_s3(spec, start=start)
        if target.embedded and not target.endpoint_url:
            raise TargetUnavailable(
                "the embedded S3 is not running; `dataferry stack up` starts it"
            )
        say_chosen("S3", target)
        return s3_client(target)

    return source_files(spec.datasets[name].source, spec.base_dir, client)
