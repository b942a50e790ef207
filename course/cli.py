"""The command line: ``python -m course <command>``.

Each command lives in the module that owns it; that module provides
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS = {
    "start": ("course.workspace", "copy the lessons into your own work folder (never replacing a file) and open JupyterLab"),
    "doctor": ("course.doctor", "check this environment: versions, device, audio, widgets, what to fix"),
    "build": ("course.authoring.build", "make student notebooks/ from solutions/ (--check: verify, write nothing; never "
                                        "replaces student work without --force)"),
    "check": ("course.grading.selfcheck", "self-check a saved notebook in a fresh kernel"),
    "grade": ("course.grading.grade", "grade a folder of submitted notebooks into a gradebook"),
    "pretrain": ("course.pretrained.command", "retrain a pretrained model (course/pretrained/) with its lesson's settings"),
    "data": ("course.data.build", "data sets: 'data build' rebuilds datasets/ from the music21 corpus"),
    "site": ("course.authoring.site", "the course as a static website (_site/): every lesson with its outputs and audio"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description="A hands-on course in music generation.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (modname, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=modname)
        try:
            importlib.import_module(modname).add_arguments(p)
        except ImportError as e:  # a command whose module is not installed yet
            p.set_defaults(_import_error=str(e))
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_import_error", None):
        print(f"course {args.command}: not available ({args._import_error})", file=sys.stderr)
        return 2
    from .errors import CourseError

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except CourseError as e:
        print(f"course {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
