"""course.device, course.fast_mode, course.seed_everything."""
import random

import numpy as np
import pytest
import torch

import course


def test_fast_mode_reads_the_environment(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("0", False), ("", False), ("no", False)]:
        monkeypatch.setenv("COURSE_FAST", value)
        assert course.fast_mode() is expected
    monkeypatch.delenv("COURSE_FAST")
    assert course.fast_mode() is False


def test_device_says_what_it_picked(capsys):
    dev = course.device()
    assert isinstance(dev, torch.device)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert dev.type == expected
    assert f"using {expected}" in capsys.readouterr().out
    assert course.device(verbose=False, prefer="cpu").type == "cpu"
    with pytest.raises(course.CourseError):
        course.device(prefer="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(course.CourseError, match="not available"):
            course.device(prefer="cuda")


def test_seed_everything_makes_draws_repeat():
    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    course.seed_everything(7)
    a = draws()
    course.seed_everything(7)
    assert draws() == a
    course.seed_everything(8)
    assert draws() != a
    with pytest.raises(course.CourseError):
        course.seed_everything("seven")
