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


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread; several threads on a busy CPU make them many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
