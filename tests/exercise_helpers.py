"""Helpers shared by the lesson check tests (tests/test_lesson_NN.py)."""
import contextlib
import io
import sys


def run_check(name: str, obj) -> str:
    """Call ``course.check.<name>(obj)`` and return the one line it printed."""
    from course import check

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        getattr(check, name)(obj)
    out = buf.getvalue()
    assert out.count("\n") == 1, f"a check must print exactly one line, got {out!r}"
    return out.strip()


def stub(*args, **kwargs):
    """What the build puts in place of a solution."""
    # YOUR CODE HERE
    raise NotImplementedError()


GRADING_SEEDS = ("spring-term", "autumn-term", "resit", "0")
JUDGED_SEED = "spring-term"       # the seed under which each contract is also decided by the grader's judge


def judged(name: str, obj, seed: str = JUDGED_SEED) -> str:
    """The line the grader's judge gives ``obj`` (``course.grading.judge.judge_here``): inputs pickled,
    the answer carried back as plain data, compared outside the call."""
    from course.grading.judge import judge_here

    return judge_here(name, obj, seed)


def contract_tests(names, solutions, wrong, *, stubs=None, expected_message=None):
    """The three tests every lesson's checks owe: the solution passes (with the notebook's cases and
    under several graders' seeds, whose random cases differ), the stub fails, and every known-wrong
    implementation fails with a hint (and, where given, a specific message) under every one of those seeds.

    Use in a test module as
    ``test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(...)``.
    """
    import pytest

    from course.checks import pass_line
    from course.checks.env import SEED as GRADING_SEED_ENV

    stubs = stubs or {}
    expected_message = expected_message or {}

    def use_seed(monkeypatch, seed):
        if seed is None:
            monkeypatch.delenv(GRADING_SEED_ENV, raising=False)
        else:
            monkeypatch.setenv(GRADING_SEED_ENV, seed)

    @pytest.mark.parametrize("seed", (None,) + GRADING_SEEDS)
    @pytest.mark.parametrize("name", names)
    def test_solution_passes(name, seed, monkeypatch):
        use_seed(monkeypatch, seed)
        assert run_check(name, solutions[name]) == pass_line(name)
        if seed == JUDGED_SEED:         # and as the grader's judge decides it: answers as plain data only
            assert judged(name, solutions[name], seed) == pass_line(name)

    @pytest.mark.parametrize("name", names)
    def test_stub_fails(name):
        out = run_check(name, stubs.get(name, stub))
        assert out.startswith(f"FAIL {name}: case ") and "not implemented yet" in out
        out = judged(name, stubs.get(name, stub), JUDGED_SEED)
        assert out.startswith(f"FAIL {name}: case ") and "not implemented yet" in out

    @pytest.mark.parametrize("name, wrong_impl", [(n, w) for n, ws in wrong.items() for w in ws],
                             ids=[w.__name__ for ws in wrong.values() for w in ws])
    @pytest.mark.parametrize("seed", (None,) + GRADING_SEEDS)
    def test_wrong_implementation_fails(name, wrong_impl, seed, monkeypatch):
        use_seed(monkeypatch, seed)
        out = run_check(name, wrong_impl)
        assert out.startswith(f"FAIL {name}: case '"), out
        assert "Hint:" in out
        if wrong_impl in expected_message:
            assert expected_message[wrong_impl] in out, out
        if seed == JUDGED_SEED:
            out = judged(name, wrong_impl, seed)
            assert out.startswith(f"FAIL {name}: case '"), out
            assert "Hint:" in out
            if wrong_impl in expected_message:
                assert expected_message[wrong_impl] in out, out

    return test_solution_passes, test_stub_fails, test_wrong_implementation_fails


def seen_then_graded(name, make, solution, key, monkeypatch):
    """The notebook's cases of exercise ``name`` (``make()`` with no grading seed) and the grader's
    (``make()`` under a grading seed), with a cheat that memorized the notebook's answers; asserts
    the cheat passes in the notebook. The caller asserts what must differ under grading.

    Returns ``(seen, graded, memorized)``; the grading seed stays set for the rest of the test.
    """
    from course.checks import pass_line
    from course.checks.env import SEED

    monkeypatch.delenv(SEED, raising=False)
    seen = make()
    memorized = memorize(solution, seen, key)
    assert run_check(name, memorized) == pass_line(name)
    monkeypatch.setenv(SEED, "grading-2024")
    return seen, make(), memorized


def memorize(solution, cases, key):
    """A cheat that returns the answers ``solution`` gave on ``cases`` (looked up by ``key(args)``)
    and None otherwise: it passes the notebook's cases and must fail under a grading seed."""
    answers = {key(c.args): solution(*c.args, **c.kwargs) for c in cases}

    def memorized(*args, **kwargs):
        return answers.get(key(args), None)

    return memorized


def peek_at_the_check(*args, **kwargs):
    """A cheat: walk up the call stack to the check and return an answer it holds for the case it is
    running (an ``expected``/``answer`` local, or one set on a ``Case``), if it finds one."""
    frame = getattr(sys, "_get" + "frame")(1)
    while frame is not None:
        for key, value in list(frame.f_locals.items()):
            if key in ("expected", "answer", "want") and value is not None:
                return value
            held = getattr(value, "expected", None) if type(value).__name__ == "Case" else None
            if held is not None:
                return held
        frame = frame.f_back
    return None


def peeking_cheat(name: str):
    """:func:`peek_at_the_check` under a name of its own per exercise (for test ids)."""
    def peek(*args, **kwargs):
        return peek_at_the_check(*args, **kwargs)

    peek.__name__ = f"peek_at_the_checks_stack_{name}"
    return peek


def also_correct_test(also_correct: dict):
    """The test that correct answers written another way pass: ``also_correct`` maps an exercise name to
    a list of functions. Use as ``test_a_correct_answer_written_another_way_passes = also_correct_test(...)``.
    """
    import pytest

    from course.checks import pass_line

    cases = [(n, f) for n, fs in also_correct.items() for f in fs]

    @pytest.mark.parametrize("name, impl", cases, ids=[f.__name__ for _, f in cases])
    def test_a_correct_answer_written_another_way_passes(name, impl):
        assert run_check(name, impl) == pass_line(name)
        assert judged(name, impl) == pass_line(name)

    return test_a_correct_answer_written_another_way_passes


def named_mistakes_test(names, module_mistakes: dict, differs, *, random_exempt=None):
    """The test that an exercise's cases tell every named mistake from the right answer: each mistake of
    ``module_mistakes[name] = (reference, {mistake: message})`` gives another answer (``differs(a, b)``) on
    some case, and on the first such case no mistake named before it gives the same answer (so the fail
    line names the right one), under the notebook's seed and the graders'. With ``random_exempt`` (a set of
    mistakes) given, the random cases alone must catch every other mistake too."""
    import pytest

    from course.checks import load
    from course.checks.env import SEED

    @pytest.mark.parametrize("seed", (None,) + GRADING_SEEDS)
    @pytest.mark.parametrize("name", names)
    def test_the_cases_tell_every_named_mistake_from_the_right_answer(name, seed, monkeypatch):
        if seed is None:
            monkeypatch.delenv(SEED, raising=False)
        else:
            monkeypatch.setenv(SEED, seed)
        reference, mistakes = module_mistakes[name]
        cases = load(name).cases()
        assert len(mistakes) >= 2
        for i, mistake in enumerate(mistakes):
            values = [(c, reference(*c.args, **c.kwargs), mistake(*c.args, **c.kwargs)) for c in cases]
            wrong = [(c, ref, got) for c, ref, got in values if differs(ref, got)]
            assert wrong, f"{mistake.__name__} passes every case"
            first = wrong[0][0]
            for earlier in list(mistakes)[:i]:
                assert differs(earlier(*first.args, **first.kwargs), wrong[0][2]), (mistake.__name__, earlier.__name__)
            if random_exempt is not None and mistake not in random_exempt:
                assert any(c.name.startswith("random") for c, _, _ in wrong), mistake.__name__

    return test_the_cases_tell_every_named_mistake_from_the_right_answer
