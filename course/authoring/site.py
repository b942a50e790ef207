"""``python -m course site``: the course as a static website, every lesson with its results and sound.

One page per lesson of ``solutions/``, in order, made with nbconvert's ``basic`` HTML template inside
the course's own page (navigation, lesson list, styles), plus a landing page with the lesson table,
the Colab badges and the README's setup and test commands. The stored outputs are reused as they are
(figures, scores, check lines); only the cells that play sound are re-run, in fast mode with the
shipped weights (:mod:`course.authoring.site_media`), and each of their players becomes a short MP3
clip with its piano roll and a MIDI download beside it. An exercise shows its stub, with the solution
folded under it. Math is typeset by a copy of MathJax 2 (from the ``jupyter-server-mathjax``
package) inside the site, so every page works offline and on any static host.

Lesson: 00_welcome
"""
from __future__ import annotations

import html
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError
from . import notebooks as nbs
from .build import ROOT, lesson_files
from .site_assets import BADGE, MATHJAX_CONFIG, write_assets
from .site_media import MIME, Media, audio_format, live_cells, quiet_log, run_live_cells, static_html
from .transforms import BADGE_IMAGE, COLAB_URL, REPO_URL, normalize

__all__ = ["Page", "pages", "page_notebook", "exercise_markdown", "SiteReport", "build_site", "add_arguments", "run"]

MARKER = ".course-site"            # marks a folder this command built (so a rebuild may replace it)
_LESSON_LINK_RE = re.compile(r'href="(?:\.\./)?(?:solutions/|notebooks/)?(\d\d_\w+)\.ipynb(#[^"]*)?"')


@dataclass
class Page:
    """One lesson's page: ``lesson`` ("00_welcome"), its solution notebook, title and file name."""
    lesson: str
    source: Path
    title: str
    href: str


def _title(nb, lesson: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return lesson


def pages(solutions: str | Path, lessons: list[str] | None = None) -> list[Page]:
    """The pages of the site, in lesson order (``lessons``: only those, e.g. ``["00", "03"]``)."""
    solutions = Path(solutions)
    if not solutions.is_dir():
        raise CourseError(f"{solutions} is not a folder of lessons: pass --solutions DIR, the folder that holds "
                          "the solution notebooks NN_topic.ipynb (solutions/ in the repository).")
    files = lesson_files(solutions, lessons)
    if not files:
        raise CourseError(f"{solutions} holds no lesson notebook (NN_topic.ipynb).")
    return [Page(p.stem, p, _title(nbs.read_notebook(p), p.stem), f"{p.stem}.html") for p in files]


# ------------------------------------------------------------------------------------ exercises
def _solution_parts(source: str) -> list[str]:
    """The text inside each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region, markers left out."""
    parts, inside = [], None
    for line in source.splitlines():
        if line.strip() == nbs.BEGIN:
            inside = []
        elif line.strip() == nbs.END and inside is not None:
            parts.append("\n".join(inside))
            inside = None
        elif inside is not None:
            inside.append(line)
    return parts


def exercise_markdown(source: str, where: str = "a cell") -> str:
    """A markdown answer as a reader sees it: the student's invitation, the model answer folded under it."""
    answer = "\n\n".join(p.strip() for p in _solution_parts(source))
    return (nbs.stub_source(source, "markdown", where) + "\n\n<details class='course-solution'><summary>Show the "
            f"solution</summary>\n\n{answer}\n\n</details>\n")


def _solution_output(source: str):
    import nbformat
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    code = highlight(source, PythonLexer(), HtmlFormatter(cssclass="highlight hl-ipython3"))
    return nbformat.v4.new_output("display_data", data={
        "text/html": f"<details class='course-solution'><summary>Show the solution</summary>{code}</details>",
        "text/plain": source})


def page_notebook(nb, fresh: dict[int, list], media: Media):
    """The notebook a page shows (a copy): exercises as stub plus folded solution, live cells with the
    fresh outputs of :func:`~course.authoring.site_media.run_live_cells`, their views written by ``media``."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        where = f"cell {i}"
        if cell.cell_type == "markdown" and nbs.has_solution(cell.source):
            after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            if after is not None and after.cell_type == "markdown" and after.source.lstrip().startswith("<details"):
                cell.source = nbs.stub_source(cell.source, "markdown", where)     # the lesson's model answer follows
            else:
                cell.source = exercise_markdown(cell.source, where)
        if cell.cell_type != "code":
            continue
        outputs = fresh.get(i, cell.outputs)
        shown = []
        for out in outputs:
            view = out.get("data", {}).get(MIME) if out.get("output_type") in ("display_data", "execute_result") else None
            if view is not None:
                shown.append(nbformat.v4.new_output("display_data", data={"text/html": static_html(view, media)}))
            else:
                shown.append(out)
        if nbs.has_solution(cell.source):
            shown.insert(0, _solution_output(cell.source))
            cell.source = nbs.stub_source(cell.source, "code", where)
        cell.outputs = shown
    return nb


# ------------------------------------------------------------------------------------ pages
def _nav(all_pages: list[Page], current: str | None) -> str:
    here = " aria-current='page'"
    items = "".join(f"<li><a href='{p.href}'{here if p.lesson == current else ''}>{html.escape(p.title)}</a></li>"
                    for p in all_pages)
    return f"<nav class='site-nav' aria-label='Lessons'><a href='index.html'>Overview</a><ol>{items}</ol></nav>"


def _pager(all_pages: list[Page], i: int) -> str:
    prev = (f"<a class='prev' rel='prev' href='{all_pages[i - 1].href}'>&larr; {html.escape(all_pages[i - 1].title)}</a>"
            if i > 0 else "<a class='prev' rel='prev' href='index.html'>&larr; Overview</a>")
    nxt = (f"<a class='next' rel='next' href='{all_pages[i + 1].href}'>{html.escape(all_pages[i + 1].title)} &rarr;</a>"
           if i + 1 < len(all_pages) else "<span></span>")
    return f"<nav class='pager'>{prev}{nxt}</nav>"


def _document(title: str, nav: str, main: str, math: bool) -> str:
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><link rel='icon' href='data:,'>"
            "<link rel='stylesheet' href='assets/site.css'>" + (MATHJAX_CONFIG if math else "") + "</head><body>"
            "<header class='site-header'><a href='index.html'>Music generation with deep learning</a>"
            f" <span>a hands-on course</span></header><div class='layout'>{nav}<main>{main}</main></div>"
            "<footer class='site-footer'>Made from the course's solution notebooks by <code>python -m course site"
            "</code>; the audio is re-created in fast mode with the course's shipped weights. "
            f"<a href='{html.escape(REPO_URL)}'>The course's repository</a>.</footer></body></html>\n")


def _body(exporter, nb, known: set[str]) -> str:
    body, _ = exporter.from_notebook_node(nb)
    body = body.replace(f'src="{BADGE_IMAGE}"', f'src="{BADGE}"')
    return _LESSON_LINK_RE.sub(lambda m: (f'href="{m.group(1)}.html{m.group(2) or ""}"' if m.group(1) in known
                                          else m.group(0)), body)


def _readme(readme: Path) -> tuple[str, dict[str, str], str, str]:
    """The README's title, lesson topics by number, setup command and test command ("" where absent)."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return "", {}, "", ""
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), "")
    topics = dict(re.findall(r"^\|\s*(\d\d)\s*\|\s*([^|]+?)\s*\|", text, re.M))
    commands = [re.search(rf"<!-- {name} -->\s*```(?:bash)?\n(.+?)\n```", text, re.S) for name in ("setup", "test")]
    return (title, topics, *(m.group(1).strip() if m else "" for m in commands))


def _badge(lesson: str) -> str:
    return (f"<a href='{html.escape(COLAB_URL)}/notebooks/{lesson}.ipynb'>"
            f"<img src='{BADGE}' alt='Open In Colab' width='117' height='20'></a>")


def _landing(all_pages: list[Page], readme: Path) -> str:
    title, topics, setup, test = _readme(readme)
    rows = "".join(f"<tr><td>{p.lesson[:2]}</td><td><a href='{p.href}'>{html.escape(p.title)}</a></td>"
                   f"<td>{html.escape(topics.get(p.lesson[:2], ''))}</td><td>{_badge(p.lesson)}</td></tr>"
                   for p in all_pages)
    steps = ""
    if setup or test:
        steps = ("<h2>On your own machine</h2><p>Clone the <a href='" + html.escape(REPO_URL) + "'>repository</a>, "
                 "make a virtual environment (<code>python3 -m venv .venv &amp;&amp; . .venv/bin/activate</code>), "
                 "then:</p>" + (f"<pre class='command'>{html.escape(setup)}</pre>" if setup else "")
                 + "<p>Start with <code>python -m course start</code>. To run the course's tests:</p>"
                 + (f"<pre class='command'>{html.escape(test)}</pre>" if test else ""))
    main = (f"<h1>{html.escape(title or 'Music generation with deep learning: a hands-on course')}</h1>"
            "<p>Progressive lessons that teach recurrent networks, attention and GANs by building models that "
            "generate music. Each page below is a lesson with its results, plots, scores and sound; run a lesson "
            "yourself on Colab (the badges) or on your own machine.</p>"
            "<table class='lessons'><thead><tr><th>lesson</th><th>page</th><th>topic</th><th>run it</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{steps}")
    return _document(title or "Music generation with deep learning", _nav(all_pages, None), main, math=False)


# ------------------------------------------------------------------------------------ output folder
def _prepare(out: Path) -> None:
    """Make ``out`` ready for a fresh site: new, empty, or a site this command built (then cleared)."""
    if out.exists() and not out.is_dir():
        raise CourseError(f"{out} is a file; --out needs a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise CourseError(f"{out} holds files this command did not write; pass --out with a new or empty "
                              "folder (a site built there before is replaced).")
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("built by python -m course site; the next build replaces this folder\n")
        (out / ".nojekyll").write_text("")       # GitHub Pages: serve the folder as it is
    except OSError as e:
        raise CourseError(f"cannot write the site to {out}: {e.strerror or e}.") from None


# ------------------------------------------------------------------------------------ build
@dataclass
class SiteReport:
    out: Path
    pages: int = 0
    clips: int = 0
    audio_seconds: float = 0.0
    size: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def _lesson_notebook(page: Page):
    return normalize(nbs.read_notebook(page.source), page.lesson, f"notebooks/{page.lesson}.ipynb", student=False)


def _execute(page: Page, cell_timeout: float) -> tuple[dict[int, list], list[str]]:
    nb = _lesson_notebook(page)
    return run_live_cells(nb, live_cells(nb), cell_timeout)


def _executed(all_pages: list[Page], execute: bool, jobs: int, cell_timeout: float):
    """``(index, fresh outputs, problems)`` of each page, as each lesson's run ends (``jobs`` lessons at a time)."""
    if not execute:
        yield from ((i, {}, []) for i in range(len(all_pages)))
    elif jobs <= 1 or len(all_pages) == 1:
        yield from ((i, *_execute(page, cell_timeout)) for i, page in enumerate(all_pages))
    else:
        import concurrent.futures as cf
        import multiprocessing

        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_execute, page, cell_timeout): i for i, page in enumerate(all_pages)}
            for fut in cf.as_completed(futures):
                try:
                    yield (futures[fut], *fut.result())
                except Exception as e:  # a worker that died: the page keeps its stored outputs
                    yield futures[fut], {}, [f"execution failed: {type(e).__name__}: {e}"]


def build_site(out: str | Path = "_site", solutions: str | Path = ROOT / "solutions", lessons: list[str] | None = None,
               *, execute: bool = True, jobs: int = 1, readme: str | Path = ROOT / "README.md", progress: bool = True,
               cell_timeout: float = 600.0) -> SiteReport:
    """Build the site into ``out``; see the module's docstring. ``execute=False`` skips re-running the
    cells that play (no audio, quick); ``jobs`` lessons run at a time. Returns what was built and the problems met."""
    from nbconvert import HTMLExporter
    from tqdm.auto import tqdm

    t0 = time.monotonic()
    out = Path(out)
    all_pages = pages(solutions, lessons)
    _prepare(out)
    write_assets(out)
    report = SiteReport(out)
    known = {p.lesson for p in all_pages}
    exporter = HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True,
                            log=quiet_log())
    fmt = audio_format()
    runs = _executed(all_pages, execute, jobs, cell_timeout)
    for i, fresh, problems in tqdm(runs, total=len(all_pages), desc="site", unit="lesson", disable=not progress):
        page = all_pages[i]
        report.problems += [f"{page.lesson}: {p}" for p in problems]
        media = Media(out, page.lesson, fmt)
        body = _body(exporter, page_notebook(_lesson_notebook(page), fresh, media), known)
        main = _pager(all_pages, i) + f"<article class='lesson'>{body}</article>" + _pager(all_pages, i)
        (out / page.href).write_text(_document(page.title, _nav(all_pages, page.lesson), main, math=True),
                                     encoding="utf-8")
        report.pages += 1
        report.clips += media.clips
        report.audio_seconds += media.seconds
    (out / "index.html").write_text(_landing(all_pages, Path(readme)), encoding="utf-8")
    report.size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    report.seconds = time.monotonic() - t0
    return report


def add_arguments(p) -> None:
    p.add_argument("--out", default="_site", help="the folder to write the site to (default: _site)")
    p.add_argument("--solutions", default=str(ROOT / "solutions"), help="the folder of solution notebooks")
    p.add_argument("--lessons", nargs="+", metavar="NN", help="only these lessons (e.g. 00 03)")
    p.add_argument("--no-execute", action="store_true", help="stored outputs only: no audio, no kernel")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="lessons to re-run at a time (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    nbs.skip_slow_optional_imports()
    if args.jobs < 1:
        raise CourseError(f"--jobs must be at least 1, got {args.jobs}.")
    report = build_site(args.out, args.solutions, args.lessons, execute=not args.no_execute, jobs=args.jobs,
                        progress=not args.no_progress)
    print(f"Built {report.pages} lesson page(s) and the overview with {report.clips} audio clip(s) "
          f"({report.audio_seconds:.0f} s of sound, {audio_format().upper()}) in {report.seconds:.0f} s: "
          f"{report.size / 1e6:.1f} MB in {report.out}/ (open {report.out / 'index.html'}).")
    for problem in report.problems:
        print(f"problem: {problem}")
    return 1 if report.problems else 0
