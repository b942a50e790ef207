"""Test-suite settings: fast mode everywhere (also in notebook kernels, which inherit the
environment), a non-interactive matplotlib backend, and the repository root as a fixture."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
