"""The build: student notebooks are exactly what the build makes from the solutions; stubs, setup
cell, badge and metadata are right; ``--execute`` runs, cleans and verifies solution notebooks; and
every generated student notebook fails every one of its checks (no check is vacuous)."""
import concurrent.futures as cf
import os

import nbformat
import pytest

from course.cli import main
from course.authoring import notebooks as nbs
from course.authoring import transforms as build
from course.checks import pass_line
from course.grading.checkrun import find_lessons, prepare, run_prepared


def _nb(cells, **meta):
    nb = nbformat.v4.new_notebook(cells=cells, metadata=meta)
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i}"
    return nb


SOLVED = '''def pitch_range(melody):
    """Lowest and highest."""
    ### BEGIN SOLUTION
    p = [n.pitch for n in melody.notes]
    return min(p), max(p)
    ### END SOLUTION'''


def tiny_lesson(correct: bool = True, audio: bool = False):
    """A small lesson notebook using lesson 00's pitch_range check."""
    body = SOLVED if correct else SOLVED.replace("return min(p), max(p)", "return p[0], p[-1]")
    cells = [
        nbformat.v4.new_markdown_cell("# Lesson 98: Tiny\n\nA lesson for the tests.\n\n**Objectives**: none."),
        nbformat.v4.new_code_cell("# SETUP"),
        nbformat.v4.new_code_cell("from course import check, music"),
        nbformat.v4.new_code_cell(body),
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\ncheck.pitch_range(pitch_range)"),
    ]
    if audio:
        cells.append(nbformat.v4.new_code_cell(
            "# NBVAL_IGNORE_OUTPUT\nimport numpy as np\nfrom IPython.display import Audio\n"
            "Audio(np.sin(np.arange(8000) * 0.1), rate=8000)"))
    cells.append(nbformat.v4.new_code_cell("# NBVAL_SKIP\nraise RuntimeError('must not run')"))
    nb = _nb(cells, kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.cells[4].outputs = [nbs.pass_output("pitch_range")]
    nb.cells[4].execution_count = 3
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2024-01-01"}
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nb.cells[2].execution_count = 2
    return nb


# ------------------------------------------------------------------------------------ the repository
def test_notebooks_are_exactly_what_the_build_makes(repo_root, capsys):
    """`python -m course build --check` passes: notebooks/ has not drifted from solutions/."""
    code = main(["build", "--check"])
    out = capsys.readouterr().out
    assert code == 0, f"notebooks/ is out of date; run `python -m course build`:\n{out}"


def test_every_solution_has_a_student_notebook(repo_root):
    sols = sorted(p.name for p in (repo_root / "solutions").glob("[0-9][0-9]_*.ipynb"))
    stud = sorted(p.name for p in (repo_root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sols and sols == stud


@pytest.fixture(scope="module")
def checked_lessons(repo_root):
    """Every solution and every student notebook, run the way the self-check and the grader run them
    (lesson check cells, injected pass lines, a fresh kernel under the default limits), in parallel."""
    lessons = find_lessons(repo_root / "solutions")
    paths = sorted((repo_root / "solutions").glob("[0-9][0-9]_*.ipynb"))
    paths += sorted((repo_root / "notebooks").glob("[0-9][0-9]_*.ipynb"))

    def run(path):
        prepared = prepare(nbs.read_notebook(path), lessons[path.stem])
        return f"{path.parent.name}/{path.name}", run_prepared(prepared, cell_timeout=600, notebook_timeout=1200,
                                                                seed="build-test")

    with cf.ThreadPoolExecutor(max(1, min(len(paths), os.cpu_count() or 1))) as pool:
        return dict(pool.map(run, paths))


def test_every_student_notebook_fails_every_check(checked_lessons):
    """Each notebooks/NN_*.ipynb in a fresh kernel: every check prints a FAIL line (the grader's "not attempted"
    when it says the stub is still there).

    This is the proof that no check is vacuous: a stub must fail, and a check cell whose pass line
    was not injected with an execution count would "pass" here (nbval would not compare it).
    """
    problems = []
    student = {k: v for k, v in checked_lessons.items() if k.startswith("notebooks/")}
    assert student
    for name, result in student.items():
        assert result.results, f"{name} has no check cells"
        for r in result.results:
            if not (r.status in ("failed", "not attempted") and r.message.startswith(f"FAIL {r.exercise}:")):
                problems.append(f"{name} {r.exercise}: {r.status}: {r.message[:200]}")
    assert not problems, "student notebooks whose checks did not print a FAIL line:\n" + "\n".join(problems)


def test_every_solution_passes_as_the_grader_runs_it(checked_lessons):
    """The solutions pass every check with the grader's new random cases and default limits
    (memory, time, display-only cells skipped): an honest student is never failed by the machinery."""
    problems = [f"{name} {r.exercise}: {r.status}: {r.message[:200]} {result.notes}"
                for name, result in checked_lessons.items() if name.startswith("solutions/")
                for r in result.results if r.status != "passed"]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------ the transformation
def test_stub_keeps_indentation_and_replaces_every_region():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\n" \
          "class A:\n    def g(self):\n        ### BEGIN SOLUTION\n        pass\n        ### END SOLUTION"
    out = nbs.stub_source(src)
    assert out == ("def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n"
                   "class A:\n    def g(self):\n        # YOUR CODE HERE\n        raise NotImplementedError()")
    assert "return x + y" not in out and "BEGIN" not in out


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_broken_solution_markers_are_an_error(bad):
    from course.errors import ExerciseError

    with pytest.raises(ExerciseError):
        nbs.stub_source(bad)


def test_markdown_answers_are_hidden_too():
    out = nbs.stub_source("Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION\n", "markdown")
    assert "Because" not in out and nbs.MARKDOWN_STUB in out


def test_student_notebook_from_a_solution():
    sol = tiny_lesson()
    before = nbs.dumps(sol)
    stu = build.build_notebook(sol, "98_tiny")
    assert nbs.dumps(sol) == before, "the build must not change its input"
    code = [c for c in stu.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "raise NotImplementedError()" in code[2].source and "min(p)" not in code[2].source
    assert '    # YOUR CODE HERE\n    raise NotImplementedError()' in code[2].source
    assert code[0].source == build.setup_source("notebooks/98_tiny.ipynb")
    assert code[3].metadata.get("editable") is False and code[3].metadata.get("deletable") is False
    assert "execution" not in code[1].metadata
    assert "widgets" not in stu.metadata
    assert stu.metadata["course"]["lesson"] == "98_tiny"
    title = stu.cells[0].source.splitlines()
    assert title[0] == "# Lesson 98: Tiny" and title[2] == build.badge_line("notebooks/98_tiny.ipynb")
    assert "notebooks/98_tiny.ipynb" in title[2] and build.COLAB_URL in title[2]


def test_badge_is_rewritten_not_duplicated():
    sol = tiny_lesson()
    sol.cells[0].source = ("# Lesson 98: Tiny\n\n[![Open In Colab](https://colab.research.google.com/assets/"
                           "colab-badge.svg)](https://colab.research.google.com/github/x/y/blob/main/old.ipynb)\n\nText")
    src = build.build_notebook(sol, "98_tiny").cells[0].source
    assert src.count("colab-badge.svg") == 1 and "old.ipynb" not in src and "notebooks/98_tiny.ipynb" in src


def test_setup_text_installs_on_colab_only():
    text = build.setup_source("notebooks/00_welcome.ipynb")
    assert text.startswith("# SETUP notebooks/00_welcome.ipynb")
    assert build.REPO_URL in text and '"google.colab" in sys.modules' in text
    assert "--depth" in text and "/content/course" in text and "pip" in text
    ns = {}
    exec(compile(text, "setup", "exec"), ns)          # outside Colab: does nothing, prints nothing


def test_build_is_deterministic_and_check_detects_drift(tmp_path, capsys):
    sol_dir, nb_dir = tmp_path / "solutions", tmp_path / "notebooks"
    sol_dir.mkdir()
    (sol_dir / "98_tiny.ipynb").write_text(nbs.dumps(tiny_lesson()), encoding="utf-8")
    args = ["--solutions", str(sol_dir), "--notebooks", str(nb_dir)]
    assert main(["build", "--check", *args]) == 1 and "missing" in capsys.readouterr().out
    assert not nb_dir.exists() or not any(nb_dir.iterdir()), "--check must write nothing"
    assert main(["build", *args]) == 0
    first = (nb_dir / "98_tiny.ipynb").read_bytes()
    assert first.endswith(b"}\n")
    assert main(["build", *args]) == 0
    assert (nb_dir / "98_tiny.ipynb").read_bytes() == first
    assert main(["build", "--check", *args]) == 0
    (nb_dir / "98_tiny.ipynb").write_text(first.decode().replace("Tiny", "Changed"), encoding="utf-8")
    (nb_dir / "97_stale.ipynb").write_text(first.decode(), encoding="utf-8")
    capsys.readouterr()
    assert main(["build", "--check", *args]) == 1
    out = capsys.readouterr().out
    assert "98_tiny.ipynb" in out and "97_stale.ipynb" in out


# ------------------------------------------------------------------------------------ --execute
def test_execute_runs_cleans_verifies_and_builds(tmp_path, capsys):
    sol_dir, nb_dir = tmp_path / "solutions", tmp_path / "notebooks"
    sol_dir.mkdir()
    (sol_dir / "98_tiny.ipynb").write_text(nbs.dumps(tiny_lesson(audio=True)), encoding="utf-8")
    (sol_dir / "97_other.ipynb").write_text(nbs.dumps(tiny_lesson()), encoding="utf-8")
    (sol_dir / "96_not_run.ipynb").write_text(nbs.dumps(tiny_lesson(correct=False)), encoding="utf-8")
    code = main(["build", "--execute", "98", "--only", "97", "--jobs", "2", "--cell-timeout", "120",
                 "--solutions", str(sol_dir), "--notebooks", str(nb_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 of 2 solution notebook(s) executed and verified" in out
    assert not (nb_dir / "96_not_run.ipynb").exists(), "only the lessons asked for"
    sol = nbs.read_notebook(sol_dir / "98_tiny.ipynb")
    cells = [c for c in sol.cells if c.cell_type == "code"]
    assert cells[0].source == build.setup_source("solutions/98_tiny.ipynb")
    check_cell = cells[3]
    assert nbs.cell_text_output(check_cell) == pass_line("pitch_range") + "\n"
    assert isinstance(check_cell.execution_count, int)
    assert cells[4].outputs == [], "the audio player must be removed"
    assert "must not run" not in nbs.cell_text_output(cells[5]), "NBVAL_SKIP cells are not executed"
    assert "skip-execution" not in cells[5].metadata.get("tags", [])
    assert "widgets" not in sol.metadata and sol.metadata["course"]["lesson"] == "98_tiny"
    assert (nb_dir / "98_tiny.ipynb").exists() and (nb_dir / "97_other.ipynb").exists()


def test_execute_refuses_a_solution_that_fails_its_check(tmp_path, capsys):
    sol_dir, nb_dir = tmp_path / "solutions", tmp_path / "notebooks"
    sol_dir.mkdir()
    path = sol_dir / "98_tiny.ipynb"
    path.write_text(nbs.dumps(tiny_lesson(correct=False)), encoding="utf-8")
    before = path.read_bytes()
    from course.authoring.execute import execute_notebook

    report = execute_notebook(path, cell_timeout=120, failed_dir=tmp_path / "failed")
    assert not report.ok
    assert any("pitch_range" in p and "not its pass line" in p for p in report.problems)
    assert path.read_bytes() == before, "a failing solution is left as it was"
    assert (tmp_path / "failed" / "98_tiny.ipynb").exists()


def test_sanitize_drops_heavy_outputs_and_keeps_text():
    nb = tiny_lesson()
    big = "<div>" + "x" * 60_000 + "</div>"
    nb.cells[2].outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": big, "text/plain": "Score(...)"}),
        nbformat.v4.new_output("display_data", data={"text/html": "<audio src='data:'></audio>", "text/plain": "A"}),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                                     "text/plain": "Player()"}),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
    ]
    notes = nbs.sanitize_outputs(nb)
    outs = nb.cells[2].outputs
    assert len(outs) == 2
    assert outs[0]["data"] == {"text/plain": "Score(...)"}
    assert "image/png" in outs[1]["data"]
    assert "widgets" not in nb.metadata
    assert len(notes) == 3


def test_kernels_talk_over_private_socket_files_not_shared_ports(tmp_path):
    """Kernels started together cannot collide on a TCP port: their sockets are files in their job's folder."""
    import nbval.kernel

    from course.grading import nbval_runner
    from course.authoring.kernels import current_env_kernel, socket_options

    assert socket_options(tmp_path) == {"transport": "ipc", "ip": str(tmp_path.resolve() / ".kernel")}
    assert socket_options(tmp_path / ("x" * 100)) == {}        # too long for a socket name: TCP
    km = current_env_kernel(tmp_path)
    km.start_kernel(cwd=str(tmp_path))
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive("x = 6 * 7", timeout=60)
        assert reply["content"]["status"] == "ok"
        assert km.transport == "ipc"
        assert len(list(tmp_path.glob(".kernel-*"))) == 5      # shell, iopub, stdin, control, heartbeat: files
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)

    original = nbval.kernel.KernelManager
    try:
        nbval_runner._private_kernel_sockets(str(tmp_path / "job"))
        manager = nbval.kernel.KernelManager(kernel_name="python3")
        assert (manager.transport, manager.ip) == ("ipc", str((tmp_path / "job").resolve() / ".kernel"))
    finally:
        nbval.kernel.KernelManager = original


def test_the_repository_url_is_one_setting_in_pyproject(tmp_path):
    """Badges and Colab install cells come from [project.urls] Repository and [tool.course] colab-branch."""
    from course.authoring import transforms

    url, branch = transforms.repository()
    assert transforms.REPO_URL == url and transforms.COLAB_URL.endswith(f"/blob/{branch}")
    fork = tmp_path / "pyproject.toml"
    fork.write_text('[project]\nname = "x"\n\n[project.urls]\nRepository = "https://github.com/someone/my-fork/"\n'
                    '\n[tool.course]\ncolab-branch = "spring"\n')
    assert transforms.repository(fork) == ("https://github.com/someone/my-fork", "spring")
    fork.write_text('[project.urls]\nRepository = "https://gitlab.com/someone/fork"\n')
    with pytest.raises(ValueError, match="github.com/OWNER/NAME"):
        transforms.repository(fork)
    assert transforms.repository(tmp_path / "missing.toml") == (transforms.DEFAULT_REPO_URL, "main")


def test_no_notebook_text_holds_control_characters(repo_root):
    """A stray form feed or backspace (a "\\frac" or "\\big" written in a plain Python string) breaks the maths."""
    for folder in ("solutions", "notebooks"):
        for path in sorted((repo_root / folder).glob("[0-9][0-9]_*.ipynb")):
            for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
                bad = sorted({repr(ch) for ch in cell.source if ord(ch) < 32 and ch not in "\n\t"})
                assert not bad, f"{folder}/{path.name} cell {i} holds control characters {bad}"
