"""Packaging: the README's commands, requirements.txt, environment.yml and pyproject agree."""
import re
import subprocess
import sys


import pytest

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def _pins(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
        elif line.startswith("-e"):
            out["-e"] = line
    return out


def test_environment_yml_and_requirements_name_the_same_packages():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env_text = (ROOT / "environment.yml").read_text()
    pip_section = env_text.split("- pip:", 1)[1].splitlines()
    env = _pins(pip_section)
    assert req == env
    assert req["torch"] == "2.13.0"
    assert "python=3.11" in env_text


def test_pyproject_declares_ranges_that_the_pins_satisfy():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = meta["dependencies"] + sum(meta["optional-dependencies"].values(), [])
    pins = _pins((ROOT / "requirements.txt").read_text().splitlines())
    from packaging.requirements import Requirement

    for d in deps:
        r = Requirement(d)
        name = r.name.lower().replace("_", "-")
        assert "==" not in str(r.specifier), f"{d}: the package's own dependencies must be ranges"
        if name in pins:
            assert r.specifier.contains(pins[name]), f"pinned {name}=={pins[name]} does not satisfy {d}"
    assert meta["requires-python"] == ">=3.10"


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    setup = re.search(r"<!-- setup -->\s*```(?:bash)?\n(.+?)\n```", readme, re.S).group(1).strip()
    test = re.search(r"<!-- test -->\s*```(?:bash)?\n(.+?)\n```", readme, re.S).group(1).strip()
    assert "\n" not in setup and "\n" not in test, "the README's setup and test are one command each"
    assert setup in ci.splitlines() and test in ci.splitlines()


def test_import_is_light_and_public_names_exist():
    code = ("import sys, course; print(course.CourseError.__name__); "
            "print(sorted(m for m in ('torch', 'music21', 'matplotlib', 'IPython') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "CourseError" and out[1] == "[]"
    import course

    for sub in ("MusicError", "DataError", "ExerciseError"):
        assert issubclass(getattr(course, sub), course.CourseError)
