"""course: a hands-on course in music generation with deep learning.

The package mirrors the lessons in ``notebooks/``:

- ``course.music``     one representation of music and its conversions (MIDI, music21, piano rolls, tokens)
- ``course.data``      data sets built from the music21 corpus, PyTorch ``Dataset`` helpers
- ``course.nn``        reference models the lessons build up to (RNNs, attention, Transformers, GANs)
- ``course.train``, ``course.generate``, ``course.metrics``  one training loop, sampling, evaluation
- ``course.listen``    synthesis, players, piano rolls, sheet music, widgets
- ``course.check``     the exercise checks students call from the notebooks (``check.NAME(f)``, ``check.notebook()``)
- ``course.checks``    the check modules behind it, written with the check kit (``course.checks.kit``)
- ``course.authoring`` notebook transforms and ``course build`` (solutions -> student notebooks)
- ``course.grading``   the instructor's grader (``course grade``) and the self-check; no lesson imports it

Submodules load on first use, so ``import course`` is quick and has no side effects.
"""
from __future__ import annotations

import importlib

from .errors import CourseError, DataError, ExerciseError, MusicError
from .runtime import device, fast_mode, seed_everything

__version__ = "0.1.0"

__all__ = [
    "CourseError", "MusicError", "DataError", "ExerciseError",
    "device", "fast_mode", "seed_everything", "__version__",
]

_SUBMODULES = {"music", "data", "nn", "listen", "check", "checks", "authoring", "grading", "train", "generate", "metrics",
               "cli"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'course' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
