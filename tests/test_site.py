"""The course as a website (``python -m course site``): the pieces, then two lessons in a real browser.

The browser test builds the site of lessons 00 and 01 (their audio cells re-run in fast mode), serves it
on loopback and opens every page in Debian's headless Chromium (as tests/test_browser.py does): no
console error and no failed request, math typeset by the site's own MathJax, every audio element with
a positive duration, and the prev/next links between the two lessons. Without /usr/bin/chromium it is
skipped, except under CI (``CI`` set), where it fails.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from course import CourseError
from course.authoring import site, site_media
from course.authoring import notebooks as nbs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LESSONS = ["00", "01"]
EXERCISE = '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION
'''


# ------------------------------------------------------------------------------------ the pieces
def test_pages_are_the_lessons_in_order_with_their_titles():
    pages = site.pages(ROOT / "solutions")
    assert [p.lesson[:2] for p in pages] == sorted(p.lesson[:2] for p in pages) and pages[0].lesson == "00_welcome"
    assert pages[0].title == "Lesson 00: Welcome" and pages[0].href == "00_welcome.html"
    assert [p.lesson for p in site.pages(ROOT / "solutions", ["01", "00"])] == ["00_welcome", "01_music_as_data"]


def test_bad_input_is_refused_with_a_reason(tmp_path):
    with pytest.raises(CourseError, match="not a folder of lessons"):
        site.pages(tmp_path / "nowhere")
    with pytest.raises(CourseError, match="no lesson notebook"):
        site.pages(tmp_path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(CourseError, match="is a file"):
        site.build_site(tmp_path / "a_file", lessons=["00"], execute=False, progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    with pytest.raises(CourseError, match="did not write"):
        site.build_site(tmp_path / "mine", lessons=["00"], execute=False, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my notes"


def test_the_command_builds_the_stored_outputs_quickly_and_names_bad_input(tmp_path, capsys):
    from course.cli import main

    out = tmp_path / "site"
    assert main(["site", "--out", str(out), "--lessons", "00", "--no-execute", "--no-progress"]) == 0
    assert "Built 1 lesson page(s)" in capsys.readouterr().out
    assert (out / "00_welcome.html").exists() and (out / "assets" / "mathjax" / "MathJax.js").exists()
    assert main(["site", "--out", str(out), "--lessons", "00", "--no-execute", "--no-progress"]) == 0, "rebuilds its own"
    assert main(["site", "--out", str(out), "--solutions", str(tmp_path / "nowhere")]) == 1
    assert "not a folder of lessons" in capsys.readouterr().err
    assert main(["site", "--out", str(out), "--lessons", "42", "--no-execute"]) == 1
    assert "42" in capsys.readouterr().err


def test_an_exercise_shows_its_stub_with_the_solution_folded_under_it(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(EXERCISE),
                                         nbformat.v4.new_markdown_cell("Why?\n### BEGIN SOLUTION\nBecause *so*.\n"
                                                                       "### END SOLUTION")])
    shown = site.page_notebook(nb, {}, site_media.Media(tmp_path, "00_x"))
    code, text = shown.cells
    assert "raise NotImplementedError()" in code.source and "2 * x" not in code.source
    solution = code.outputs[0]["data"]["text/html"]
    assert solution.startswith("<details class='course-solution'>") and "return" in solution and "NotImplemented" not in solution
    assert text.source.startswith("Why?\n" + nbs.MARKDOWN_STUB) and "<details" in text.source and "Because *so*." in text.source
    assert nb.cells[0].source == EXERCISE, "the input notebook is unchanged"
    nb.cells.append(nbformat.v4.new_markdown_cell("<details><summary>A model answer</summary>\n\nBecause.\n</details>"))
    shown = site.page_notebook(nb, {}, site_media.Media(tmp_path, "00_x"))
    assert shown.cells[1].source == "Why?\n" + nbs.MARKDOWN_STUB, "the lesson's own model answer is enough"


def test_the_cells_to_rerun_are_the_stripped_players():
    nb = nbs.read_notebook(ROOT / "solutions" / "00_welcome.ipynb")
    live = site_media.live_cells(nb)
    assert live and all("NBVAL_IGNORE_OUTPUT" in nb.cells[i].source for i in live)
    assert any("listen.play(" in nb.cells[i].source for i in live)
    assert not any(nbs.is_check_cell(nb.cells[i]) or "check.notebook" in nb.cells[i].source for i in live)
    skipped = site_media._skipped(nb, live)
    assert all(i in skipped for i, c in enumerate(nb.cells)
               if c.cell_type == "code" and (nbs.is_check_cell(c) or i > max(live)))
    assert not skipped & set(live)


def test_a_player_becomes_a_clip_a_roll_and_a_midi_file(tmp_path):
    pytest.importorskip("ipywidgets")
    from course import listen, music
    from course.listen.static import static_view

    piece = music.from_text("C4 E4 G4 C5:2", title="arpeggio")
    media = site_media.Media(tmp_path, "00_x")
    for shown in (listen.Player(piece), listen.play(piece)):
        node = static_view(shown)
        assert node["kind"] == "player" and node["roll"] and node["midi"] and "arpeggio" in node["caption"]
        page = site_media.static_html(node, media)
        assert page.count("<audio") == 1 and "piano roll" in page and "Download MIDI (arpeggio.mid)" in page
    files = sorted(p.suffix for p in (tmp_path / "media" / "00_x").iterdir())
    assert files == sorted([f".{media.format}", ".png", ".mid"] * 2)
    assert media.clips == 2 and 2.5 < media.seconds / 2 < 4.5
    sampler = static_view(listen.Sampler(lambda t, n, s: piece))        # a page shows one result
    text = site_media.static_html(sampler, media)
    assert "Generate" in text and "<audio" in text and "A static view" in text
    from tqdm.notebook import tqdm

    assert static_view(tqdm(total=3).container) is None, "a progress bar is no part of a page"
    if media.format == "mp3":
        head = (tmp_path / "media" / "00_x" / "001.mp3").read_bytes()[:3]
        assert head == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0), head     # a tag or an MPEG frame


def test_play_keeps_the_music_it_played():
    from course import listen, music

    piece = music.from_text("C4 D4")
    assert listen.play(piece).music.notes == piece.notes


# ------------------------------------------------------------------------------------ in a browser
def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is required for the browser test under CI: pip install -r requirements.txt")
        pytest.skip(f"{module} is not installed (pip install -r requirements.txt)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "_site"
    report = site.build_site(out, lessons=LESSONS, progress=False)
    assert not report.problems, report.problems
    return out, report


@pytest.fixture
def served(built):
    out, _ = built
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_site_of_two_lessons_builds(built):
    out, report = built
    assert report.pages == 2 and report.clips >= 4 and report.size < 20e6
    assert {p.name for p in out.glob("*.html")} == {"index.html", "00_welcome.html", "01_music_as_data.html"}
    page = (out / "00_welcome.html").read_text()
    assert not re.findall(r"""\ssrc=["']?(?:https?:)?//""", page), "everything a page loads is inside the site"
    assert re.search(r"<details class=[\"']course-solution", page) and "NotImplementedError" in page
    index = (out / "index.html").read_text()
    assert "python -m pip install -r requirements.txt" in index and "python -m pytest" in index
    assert "notebooks/01_music_as_data.ipynb" in index


def _media_abort(request) -> bool:
    """Chromium cancels a clip's first request once it has the metadata (and asks again for the rest):
    ERR_ABORTED on a clip is how media load, not a failure (the durations below prove each clip loaded)."""
    return "/media/" in request.url and "ERR_ABORTED" in str(request.failure)


WAIT_MATH = ("() => new Promise(done => MathJax.Hub.Queue(() => done("
             "document.querySelectorAll('span.MathJax, div.MathJax_Display').length)))")
DURATIONS = ("() => Promise.all(Array.from(document.querySelectorAll('audio')).map(a => new Promise(done => {"
             " if (a.readyState >= 1) return done(a.duration);"
             " a.addEventListener('loadedmetadata', () => done(a.duration)); a.addEventListener('error', () => done(-1));"
             " })))")


def test_every_page_works_offline_in_chromium(served, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must install it (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run this test")
    _need("playwright")
    from playwright.sync_api import sync_playwright

    url = served
    problems: list[str] = []
    found = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.set_default_timeout(60_000)
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: None if _media_abort(r) else problems.append(f"failed request: {r.url} "
                                                                                             f"({r.failure})"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            for name in ("index.html", "00_welcome.html", "01_music_as_data.html"):
                page.goto(f"{url}/{name}", wait_until="load")
                math = page.evaluate(WAIT_MATH) if name != "index.html" else None
                found[name] = (math, page.evaluate(DURATIONS),
                               page.evaluate("document.querySelectorAll('details.course-solution:not([open])').length"))
                page.screenshot(path=str(tmp_path / name.replace(".html", ".png")), full_page=False)
            page.goto(f"{url}/00_welcome.html")
            page.locator("nav.pager a[rel=next]").first.click()
            page.wait_for_load_state("load")
            after_next = page.url
            page.locator("nav.pager a[rel=prev]").first.click()
            page.wait_for_load_state("load")
            after_prev = page.url
            page.locator(".site-nav a", has_text="Overview").click()
            page.wait_for_load_state("load")
            page.locator("table.lessons a", has_text="Lesson 01").click()
            page.wait_for_load_state("load")
            from_table = page.url
        finally:
            browser.close()
    print(f"screenshots in {tmp_path}")
    assert not problems, problems
    for name in ("00_welcome.html", "01_music_as_data.html"):
        math, durations, folded = found[name]
        assert math > 5, f"{name}: MathJax typeset {math} formulas"
        assert durations and all(d > 0 for d in durations), f"{name}: audio durations {durations}"
        assert folded >= 3, f"{name}: {folded} folded solutions"
    assert found["index.html"][1] == []
    assert after_next.endswith("/01_music_as_data.html") and after_prev.endswith("/00_welcome.html")
    assert from_table.endswith("/01_music_as_data.html")
