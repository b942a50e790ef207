"""The environment variables through which the grader talks to a checking kernel, each named once.

The self-check and the grader set them for the kernel they start; the side channel reads and
removes them before any student code runs (see :mod:`course.grading.sidechannel`). Only
:data:`SEED` is read by the checks themselves: it changes the random cases under grading.

Lesson: 00_welcome
"""
from __future__ import annotations

PREFIX = "COURSE_GRADING_"
SEED = PREFIX + "SEED"                  # changes every exercise's random cases (see kit.case_seed)
RESULTS = PREFIX + "RESULTS"            # file the checks append their results to
TOKEN_FILE = PREFIX + "TOKEN_FILE"      # file holding the grader's secret (read once, then deleted)
MAX_OUTPUT = PREFIX + "MAX_OUTPUT"      # characters of stdout/stderr a cell may print
LESSON = PREFIX + "LESSON"              # the lesson graded: its checks' imports are preloaded
JOB_MARKER = "COURSE_JOB_MARKER"        # marks every process of a grading job (to find and end them)
