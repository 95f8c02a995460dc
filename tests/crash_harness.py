"""SIGKILL a stage at random moments, run it again, and check every target is exact.

For each kill point the stage is started and killed with SIGKILL after a random delay
within its measured duration (no handler runs: this is a crash, a lost machine, an OOM
kill), then run again as a user would. Half the points kill a first load into emptied
targets; the other half kill a full re-load over loaded ones (`--force`, or the etl's
`--full-refresh`), the merge path. The targets must
then hold exactly what one clean run puts there: the same rows in every table (compared
by content, order-free), every dataset's ledger saying its data is in place, the DuckDB
file opening, and no lock left behind to stop the re-run.

The short form runs in the test suite (tests/cli/test_crash_safety.py, fixed seed). The
long form is this script:

    .venv/bin/python -m tests.crash_harness --points 200 --orders 100000 --seed 1

It needs dynalite (dataferry installs its own on first use) and prints one line
per kill point, then a summary by stage.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.generated_pipeline import STAGES, GeneratedPipeline

RELOAD_FLAG = {"load sql": "--force", "load nosql": "--force", "etl": "--full-refresh"}


@dataclass
class KillPoint:
    stage: str
    reload: bool  # killed while re-loading loaded targets, not while filling empty ones
    delay_s: float
    died: bool  # False: the stage had finished before the kill landed
    rerun_s: float
    exact: bool
    problem: str = ""

    def line(self) -> str:
        state = "killed" if self.died else "ended before the kill"
        verdict = "exact" if self.exact else f"NOT EXACT: {self.problem}"
        kind = "re-load" if self.reload else "first load"
        return (
            f"{self.stage:<10} {kind:<10} kill at {self.delay_s:6.3f}s ({state}); re-run "
            f"{self.rerun_s:5.2f}s: {verdict}"
        )


def reference(pipeline: GeneratedPipeline) -> dict[str, dict[str, str]]:
    """Clean runs of every stage: what each target must hold, and how long each took."""
    out = {}
    pipeline.durations = {}  # type: ignore[attr-defined]
    for stage in STAGES:
        pipeline.durations[stage] = pipeline.timed(stage)  # type: ignore[attr-defined]
        out[stage] = pipeline.fingerprint(stage)
    return out


def kill_point(
    pipeline: GeneratedPipeline,
    expected: dict[str, dict[str, str]],
    stage: str,
    reload: bool,
    delay_s: float,
) -> KillPoint:
    extra = [RELOAD_FLAG[stage]] if reload else []
    if not reload:
        pipeline.reset(stage)
    proc = subprocess.Popen(
        pipeline.argv(*stage.split(), "-c", str(pipeline.config), "-q", *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=pipeline.environ(),
    )
    time.sleep(delay_s)
    died = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    began = time.monotonic()
    rerun = pipeline.stage(stage, "--wait", "30", check=False)
    took = time.monotonic() - began
    if rerun.returncode:
        return KillPoint(
            stage,
            reload,
            delay_s,
            died,
            took,
            False,
            f"re-run exit {rerun.returncode}: {rerun.stderr.strip()[-300:]}",
        )
    got = pipeline.fingerprint(stage)
    want = expected[stage]
    wrong = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    problem = "; ".join(f"{k}: {got.get(k)} (want {want.get(k)})" for k in wrong)
    return KillPoint(stage, reload, delay_s, died, took, not wrong, problem)


def run(pipeline: GeneratedPipeline, points: int, seed: int, out: object = None) -> list[KillPoint]:
    """``points`` kill points spread over the three stages, delays drawn with ``seed``."""
    rng = random.Random(seed)
    expected = reference(pipeline)
    durations: dict[str, float] = pipeline.durations  # type: ignore[attr-defined]
    results = []
    for n in range(points):
        stage = STAGES[n % len(STAGES)]
        reload = (n // len(STAGES)) % 2 == 1
        delay = rng.uniform(0.0, durations[stage])
        point = kill_point(pipeline, expected, stage, reload, delay)
        results.append(point)
        if out is not None:
            print(f"{n + 1:4d} {point.line()}", file=out, flush=True)  # type: ignore[call-overload]
    # Every target is exact at the end, the other stages' ones included.
    for stage in STAGES:
        assert pipeline.fingerprint(stage) == expected[stage], stage
    return results


def summary(results: list[KillPoint]) -> str:
    lines = []
    for stage in STAGES:
        mine = [r for r in results if r.stage == stage]
        killed = sum(r.died for r in mine)
        exact = sum(r.exact for r in mine)
        reloads = sum(r.reload for r in mine)
        lines.append(
            f"{stage:<10} {len(mine)} kill points ({killed} mid-run; {reloads} during a "
            f"re-load), {exact} exact after one re-run"
        )
    outcomes = Counter(r.exact for r in results)
    lines.append(
        f"all        {len(results)} kill points, {outcomes[True]} exact, {outcomes[False]} not"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=60)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dataferry-crash-") as tmp:
        root = Path(tmp)
        from tests.conftest import start_dynalite

        dynalite, url = start_dynalite(root / "dynalite.log", root / "dynalite")
        pipeline = GeneratedPipeline(root / "data", url, args.orders)
        try:
            results = run(pipeline, args.points, args.seed, sys.stdout)
        finally:
            pipeline.stop_stack()
            dynalite.terminate()
            dynalite.wait()
    print(summary(results))
    return 0 if all(r.exact for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
