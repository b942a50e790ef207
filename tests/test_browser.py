"""A real-browser test: JupyterLab runs a notebook with a Player and sheet music; Chromium shows them.

Starts JupyterLab on loopback with a random token in a temporary folder, opens a notebook in
Debian's Chromium driven by Playwright, runs all cells from the Run menu, and checks that the
page holds an ``<audio>`` element with a source, the piano-roll image and the notation SVG,
that a check's FAIL line wraps between words (JupyterLab's own style breaks output lines anywhere),
that Run All skipped the self-check cell and running that cell alone runs it, and that pressing a
Sampler's Generate button brings back a second player. Screenshots are saved in the test's
temporary folder.

Without /usr/bin/chromium the test is skipped, except under CI (``CI`` set), where it fails.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
START_TIMEOUT = 120      # seconds for JupyterLab to answer
OUTPUT_TIMEOUT = 120     # seconds for the kernel to start and the cells to produce output

CELLS = [
    "import music21\n"
    "from course import music as cm, listen\n"
    "chorale = cm.from_music21(music21.corpus.parse('bach/bwv269'))\n"
    "piece = cm.trim(chorale, 0.0, 8.0)\n"
    "piece",
    "listen.Player(piece, title='bwv269, first bars')",
    "listen.show_score(piece, measures=4)",
    "def generate(temperature, length, seed):\n"
    "    return cm.trim(chorale, 0.0, length / 4)\n"
    "listen.Sampler(generate, length=(4, 32, 8))",
    "from course import check\n"
    "check.pitch_range(lambda melody: (0, 0))",
    'check.notebook(lesson="00_welcome")',
]


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is required for the browser test under CI: pip install -e '.[test]'")
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop JupyterLab and every process it started (kernels run in their own sessions)."""
    if proc.poll() is not None:
        return
    try:
        import psutil

        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:
        children = []
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    for child in children:
        try:
            child.kill()
        except Exception:
            pass


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 with a random token; yields ``(url, token, root folder)``."""
    _need("jupyterlab")
    root = tmp_path / "root"
    root.mkdir()
    home = tmp_path / "jupyter"
    # no news pop-up; start the notebook's kernel without asking
    for ext, name, value in (("apputils-extension", "notification", {"fetchNews": "false", "checkForUpdates": False}),
                             ("notebook-extension", "tracker", {"autoStartDefaultKernel": True})):
        folder = home / "settings" / "@jupyterlab" / ext
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.jupyterlab-settings").write_text(json.dumps(value))
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), IPYTHONDIR=str(home / "ipython"),
               PYTHONUNBUFFERED="1")
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=None"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n"
                                   + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within {START_TIMEOUT} s:\n"
                                   + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, token, root
    finally:
        _stop(proc)
        log.close()


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nbformat.write(nb, path)


def _wait_for_idle_kernel(url: str, token: str, timeout: float) -> None:
    """Wait until the server has a session whose kernel is idle (the kernel has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=5) as r:
                sessions = json.load(r)
            if any((s.get("kernel") or {}).get("execution_state") == "idle" for s in sessions):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"no kernel became idle within {timeout} s")


def _outputs_text(page) -> str:
    try:
        return page.evaluate("Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
                             ".map(e => e.innerText.slice(0, 600)).join('\\n---\\n')")
    except Exception as e:  # the page itself may be gone
        return f"(could not read the outputs: {e})"


@contextlib.contextmanager
def _or_fail(page, shot: Path, what: str):
    """Fail the test saying ``what`` did not happen, with a screenshot and the page's outputs."""
    try:
        yield
    except Exception as e:
        page.screenshot(path=str(shot), full_page=True)
        pytest.fail(f"{what} ({type(e).__name__}); screenshot: {shot}\noutputs:\n{_outputs_text(page)}")


def test_player_and_score_render_in_jupyterlab(jupyterlab, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must install it (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run this test")
    _need("playwright")
    from playwright.sync_api import sync_playwright

    url, token, root = jupyterlab
    _write_notebook(root / "listen_demo.ipynb")
    shot = tmp_path / "jupyterlab.png"
    ms = OUTPUT_TIMEOUT * 1000
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(ms)
            page.goto(f"{url}/lab/tree/listen_demo.ipynb?token={token}", timeout=ms)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=ms)
            _wait_for_idle_kernel(url, token, OUTPUT_TIMEOUT)
            page.wait_for_function(
                "() => { const e = document.querySelector('.jp-Notebook-ExecutionIndicator');"
                " return e !== null && e.getAttribute('data-status') === 'idle'; }", timeout=ms)
            page.wait_for_timeout(1000)
            page.click(".lm-MenuBar-itemLabel:text-is('Run')")
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
            # should the frontend still ask which kernel to use, take the notebook's own
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            try:
                dialog.wait_for(state="visible", timeout=3000)
                dialog.click()
            except Exception:
                pass
            with _or_fail(page, shot, "the outputs did not appear"):
                page.wait_for_selector(".jp-OutputArea audio", state="attached", timeout=ms)
                page.wait_for_selector(".jp-OutputArea .course-score svg", state="attached", timeout=ms)
                page.wait_for_function(
                    "() => Array.from(document.querySelectorAll('.jp-OutputArea img'))"
                    ".some(i => i.src && i.naturalWidth > 100)", timeout=ms)
            # Run All skipped the self-check cell; run alone, it checks the saved notebook (lesson 00's check cell in
            # it names the lesson)
            with _or_fail(page, shot, "Run All ran the self-check, or it did not run alone"):
                page.wait_for_function("() => document.body.innerText.includes('Self-check skipped')", timeout=ms)
                page.locator(".jp-Notebook .jp-CodeCell").last.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Shift+Enter")
                page.wait_for_function("() => document.body.innerText.includes('Self-check of listen_demo.ipynb')",
                                       timeout=ms)
            page.locator(".jp-OutputArea-output:has-text('FAIL pitch_range')").first.screenshot(
                path=str(tmp_path / "fail_line.png"))
            fail_style = page.evaluate(
                "(() => { const pre = Array.from(document.querySelectorAll('.jp-OutputArea-output pre'))"
                ".find(p => p.innerText.startsWith('FAIL pitch_range')); if (!pre) return null;"
                " const s = getComputedStyle(pre); return [s.wordBreak, s.whiteSpace]; })()")
            # the Sampler's button reaches the kernel and its result comes back as a second player
            page.locator(".jp-OutputArea button:has-text('Generate')").click()
            with _or_fail(page, shot, "pressing Generate showed no new player"):
                page.wait_for_function("() => document.querySelectorAll('.jp-OutputArea audio').length >= 2",
                                       timeout=ms)
            page.locator(".jp-OutputArea .course-score").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(shot), full_page=True)
            page.locator(".jp-OutputArea .course-score").first.screenshot(path=str(tmp_path / "score.png"))
            sources = page.evaluate("Array.from(document.querySelectorAll('.jp-OutputArea audio')).map(a => a.src)")
            images = page.evaluate("Array.from(document.querySelectorAll('.jp-OutputArea img'))"
                                   ".map(i => [i.src.slice(0, 30), i.naturalWidth, i.naturalHeight])")
            svg_notes = page.evaluate("document.querySelectorAll('.jp-OutputArea .course-score svg g.note').length")
            link = page.evaluate("(() => { const a = document.querySelector('.jp-OutputArea a[download]');"
                                 " return a ? [a.getAttribute('download'), a.href.slice(0, 30)] : null; })()")
            text = _outputs_text(page)
        finally:
            browser.close()
    print(f"screenshots: {shot}, {tmp_path / 'score.png'}, {tmp_path / 'fail_line.png'}")
    assert sources and all(s.startswith(("blob:", "data:audio")) for s in sources), sources
    assert any(w > 100 and h > 50 for _, w, h in images), images
    assert svg_notes > 10, f"the sheet music has {svg_notes} notes"
    assert link is not None and link[0].endswith(".mid") and link[1].startswith("data:audio/midi;base64,"), link
    assert "Error displaying widget" not in text and "Traceback" not in text, text
    assert "generate(temperature=1.00, length=8, seed=0)" in text, text
    assert fail_style is not None and fail_style[0] != "break-all" and "wrap" in fail_style[1], fail_style
    assert "Self-check of listen_demo.ipynb (lesson 00_welcome" in text, text
    assert shot.stat().st_size > 10_000
