"""The course's exceptions.

Every error the package raises for bad input is a :class:`CourseError`, so a
notebook can catch one name and a student always gets a sentence, not a traceback
from deep inside a library.

Lesson: 00_welcome
"""
from __future__ import annotations


class CourseError(Exception):
    """Base class of every error raised by ``course`` for bad input.

    The message says what was wrong and what to do about it.
    """


class MusicError(CourseError, ValueError):
    """Music that cannot be read, converted or played (bad MIDI, no notes, ...)."""


class DataError(CourseError, ValueError):
    """A data set that is missing, unknown or inconsistent."""


class ExerciseError(CourseError):
    """A problem with an exercise notebook or a submission (not a wrong answer)."""
