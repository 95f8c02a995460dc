"""The crash harness's short form: SIGKILL at 21 random moments across the three stages
of a generated set of about 110k rows (fixed seed), each followed by one ordinary re-run
that must leave every target exact. The long form: `python -m tests.crash_harness`."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests import crash_harness
from tests.generated_pipeline import GeneratedPipeline

ORDERS = 50_000  # plus 5,000 customers and 500 items, in PostgreSQL and DynamoDB alike
POINTS = 15  # the CI form (about 60 s); the long form: python -m tests.crash_harness
SEED = 20261130


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory, dynalite_url: str) -> Iterator[GeneratedPipeline]:
    pipeline = GeneratedPipeline(tmp_path_factory.mktemp("crash"), dynalite_url, ORDERS)
    yield pipeline
    pipeline.stop_stack()


@pytest.mark.timeout(900)
def test_sigkill_at_any_moment_then_one_rerun_leaves_every_target_exact(
    gen: GeneratedPipeline,
) -> None:
    results = crash_harness.run(gen, POINTS, SEED, sys.stderr)
    print(crash_harness.summary(results), file=sys.stderr)
    assert len(results) == POINTS
    assert sum(r.died for r in results) >= POINTS // 2, "most kills must land mid-run"
    bad = [r.line() for r in results if not r.exact]
    assert not bad, "\n".join(bad)
