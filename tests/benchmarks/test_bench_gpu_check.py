"""benchmarks/gpu_check.sh: the one GPU script parses on a CPU machine (--dry-run)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_gpu_check_dry_run_lists_every_step():
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run"],
        cwd=REPO,
        env={**os.environ, "PY": sys.executable},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    steps = [line for line in result.stdout.splitlines() if line.startswith(sys.executable)]
    assert len(steps) == 4
    assert any("--preset coco --device cuda" in s and "--amp bfloat16" in s for s in steps)
    assert any("matching.py --device cuda" in s for s in steps)
    assert "dry run: 4 steps parse" in result.stdout
