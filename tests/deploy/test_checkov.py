"""checkov on deploy/: no failed check, and every skip says why next to it.

checkov runs from .venv-tools (python3 dev.py test makes it: its pins clash with
dataferry's), with --skip-download so that it never calls out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.conftest import REPO

CHECKOV = REPO / ".venv-tools" / ("Scripts/checkov.cmd" if os.name == "nt" else "bin/checkov")


def test_every_skip_carries_its_reason() -> None:
    skips = []
    for tf in (REPO / "deploy").rglob("*.tf"):
        for check, reason in re.findall(r"#checkov:skip=(CKV\w+):?(.*)", tf.read_text()):
            skips.append(check)
            assert len(reason.strip()) >= 20, f"{tf.name}: skip of {check} without a reason"
    assert skips, "no skips at all: then delete this test's first half"


def test_checkov_reports_no_failed_check() -> None:
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed in .venv-tools (python3 dev.py test installs it)")
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(REPO / "deploy"),
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    assert sum(r.get("summary", {}).get("passed", 0) for r in reports) > 50
