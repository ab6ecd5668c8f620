"""Engine tests import ``tests.helpers`` and ``train_net``: put the repository root on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where ``train_net.py`` lives)."""
    return REPO_ROOT
