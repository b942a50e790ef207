"""Sound for the course's website: re-run the cells that play, and turn what they show into files.

A lesson's audio is not stored in git (:func:`course.authoring.notebooks.sanitize_outputs` strips it),
so the site build re-creates it. The cells to re-run (:func:`live_cells`) are those marked
``# NBVAL_IGNORE_OUTPUT`` whose stored outputs hold no figure or result: a player, a Sampler or an
ABTest whose view was stripped. :func:`run_live_cells` executes the lesson in fast mode, in a fresh
kernel of this environment, up to the last such cell, skipping what no later cell needs (check cells,
the self-check, other display-only cells); there the course's widgets and players display as static
data (:mod:`course.listen.static`). :class:`Media` writes that data as files beside the page: a
compressed clip (MP3, 16 kHz mono), the piano roll (PNG) and the MIDI file, and
:func:`static_html` is the HTML that shows them.

Lesson: 00_welcome
"""
from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import shutil
import tempfile
import wave
from pathlib import Path

import numpy as np

from ..checks import env
from . import notebooks as nbs
from .kernels import current_env_kernel

__all__ = ["MIME", "live_cells", "run_live_cells", "Media", "static_html", "audio_format", "quiet_log"]

MIME = "application/vnd.course.static-view+json"     # = course.listen.static.MIME (listen is not imported here)
_SKIP_TAG = "skip-execution"
_PREAMBLE = ("%matplotlib inline\n"
             "from course.listen import static as _course_static_view\n"
             "_course_static_view.install()\n"
             "del _course_static_view")
SAMPLE_RATE = 16000        # samples per second of the clips (the players' own rate)


def _marked(cell, marker: str, tag: str) -> bool:
    tags = cell.get("metadata", {}).get("tags", []) or []
    return tag in tags or any(ln.strip().startswith("#") and ln.strip().lstrip("#").strip() == marker
                              for ln in cell.get("source", "").splitlines())


def _rich(outputs) -> bool:
    return any(o.get("output_type") in ("display_data", "execute_result") for o in outputs)


def live_cells(nb) -> list[int]:
    """Indices of the cells whose view must be re-created: marked ``# NBVAL_IGNORE_OUTPUT``, not
    ``# NBVAL_SKIP``, with no figure or result among their stored outputs (the audio or widget was stripped)."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and _marked(c, "NBVAL_IGNORE_OUTPUT", "nbval-ignore-output")
            and not _marked(c, "NBVAL_SKIP", "nbval-skip") and not _rich(c.outputs)]


def _skipped(nb, live: list[int]) -> set[int]:
    """Cells the run leaves out: after the last live cell, skipped ones, check cells, display-only cells
    that are not live (no later cell depends on them: checking runs skip them too)."""
    last = max(live) if live else -1
    out = set()
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        tags = c.metadata.get("tags", []) or []
        if (i > last or _marked(c, "NBVAL_SKIP", "nbval-skip") or nbs.is_check_cell(c)
                or (nbs.DISPLAY_ONLY_TAG in tags and i not in live)):
            out.add(i)
    return out


@contextlib.contextmanager
def _fast_mode():
    """``COURSE_FAST=1`` and the kernel's own inline figures for kernels started inside; restored after."""
    saved = {k: os.environ.get(k) for k in ("COURSE_FAST", "MPLBACKEND", env.SEED)}
    os.environ["COURSE_FAST"] = "1"
    os.environ.pop("MPLBACKEND", None)
    os.environ.pop(env.SEED, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_live_cells(nb, live: list[int], cell_timeout: float = 600.0) -> tuple[dict[int, list], list[str]]:
    """Execute ``nb`` (not changed) up to its last live cell in fast mode; return the fresh outputs of
    the live cells that showed a static view, and the problems met (a cell that raised, a dead kernel)."""
    import copy

    import nbformat
    from nbclient import NotebookClient

    if not live:
        return {}, []
    run = copy.deepcopy(nb)
    for i in _skipped(nb, live):
        tags = run.cells[i].metadata.setdefault("tags", [])
        if _SKIP_TAG not in tags:
            tags.append(_SKIP_TAG)
    run.cells.insert(0, nbformat.v4.new_code_cell(_PREAMBLE))
    problems: list[str] = []
    workdir = tempfile.mkdtemp(prefix="course-site-")
    try:
        with _fast_mode():
            km = current_env_kernel(workdir)
            client = NotebookClient(run, km=km, timeout=cell_timeout, allow_errors=True, record_timing=False,
                                    store_widget_state=False, startup_timeout=120, log=quiet_log(),
                                    resources={"metadata": {"path": workdir}})
            try:
                client.execute()
            except Exception as e:  # a dead kernel or a time limit: the stored outputs stay
                last = str(e).strip().splitlines()[-1][:300] if str(e).strip() else ""
                problems.append(f"execution stopped: {type(e).__name__}: {last}")
            finally:
                with contextlib.suppress(Exception):
                    if km.has_kernel:
                        km.shutdown_kernel(now=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    first = run.cells[0].outputs
    if any(o.get("output_type") == "error" for o in first):
        problems.append("the kernel could not show static views: " + nbs.cell_text_output(run.cells[0])[-300:])
    fresh = {}
    for i in live:
        outputs = run.cells[i + 1].outputs
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if errors:
            problems.append(f"cell {i} raised {errors[0].get('ename')}: {str(errors[0].get('evalue', ''))[:200]}")
        elif any(MIME in o.get("data", {}) for o in outputs):
            fresh[i] = outputs
    return fresh, problems


def quiet_log():
    """The logger given to nbconvert and nbclient: errors only (not their notes on alt texts and zmq contexts)."""
    import logging

    log = logging.getLogger("course.site")
    log.setLevel(logging.ERROR)
    return log


def audio_format() -> str:
    """``"mp3"`` when the installed ``soundfile`` (libsndfile 1.1 or newer) writes MP3, else ``"wav"``."""
    try:
        import soundfile
    except (ImportError, OSError):
        return "wav"
    return "mp3" if "MP3" in soundfile.available_formats() else "wav"


def _samples(wav: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(wav)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"a {8 * width}-bit WAV clip (16-bit expected)")
    x = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return (x.reshape(-1, channels).mean(axis=1) if channels > 1 else x), rate


class Media:
    """Files of one page's clips, rolls and MIDI, in ``site/media/<lesson>/``; URLs relative to the page.

    Lesson: 00_welcome
    """

    def __init__(self, site: Path, lesson: str, fmt: str | None = None):
        self.folder = Path(site) / "media" / lesson
        self.url = f"media/{lesson}"
        self.format = fmt or audio_format()
        self.count = 0
        self.clips = 0
        self.seconds = 0.0

    def _write(self, data: bytes, suffix: str, stem: str = "") -> str:
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.count:03d}" + (f"-{stem}" if stem else "") + suffix
        (self.folder / name).write_bytes(data)
        return f"{self.url}/{name}"

    def clip(self, wav: bytes) -> str:
        """Write one clip (16-bit WAV bytes in), as MP3 when possible; its URL."""
        x, rate = _samples(wav)
        if rate != SAMPLE_RATE:        # players may use another rate: bring every clip to 16 kHz
            t = np.arange(int(len(x) * SAMPLE_RATE / rate)) * (rate / SAMPLE_RATE)
            x, rate = np.interp(t, np.arange(len(x)), x).astype(np.float32), SAMPLE_RATE
        self.clips += 1
        self.seconds += len(x) / rate
        if self.format == "mp3":
            import soundfile

            buf = io.BytesIO()
            soundfile.write(buf, x, rate, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.5)
            return self._write(buf.getvalue(), ".mp3")
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.round(np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        return self._write(out.getvalue(), ".wav")

    def file(self, b64: str, suffix: str, stem: str = "") -> str:
        """Write base64 ``b64`` as ``NNN[-stem]suffix``; its URL."""
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:60]
        return self._write(base64.b64decode(b64), suffix, safe)


def _has_controls(node: dict) -> bool:
    return node.get("kind") in ("control", "button") or any(_has_controls(c) for c in node.get("children", []))


def _node_html(node: dict, media: Media) -> str:
    kind = node.get("kind")
    if kind == "box":
        inner = "".join(_node_html(c, media) for c in node.get("children", []))
        return f"<div class='course-box course-{'h' if node.get('direction') == 'h' else 'v'}'>{inner}</div>"
    if kind == "player":
        parts = [f"<div class='course-caption'>{node['caption']}</div>"] if node.get("caption") else []
        parts.append(f"<audio controls preload='metadata' src='{media.clip(base64.b64decode(node['wav']))}'>"
                     "Your browser does not play this audio.</audio>")
        if node.get("roll"):
            parts.append(f"<img class='course-roll' alt='piano roll' src='{media.file(node['roll'], '.png')}'>")
        links = []
        if node.get("midi"):
            name = html.escape(node.get("filename") or "music.mid")
            url = media.file(node["midi"], ".mid", Path(node.get("filename") or "music.mid").stem)
            links.append(f"<a download='{name}' href='{html.escape(url)}'>Download MIDI ({name})</a>")
        if node.get("note"):
            links.append(f"<span class='course-note'>{html.escape(node['note'])}</span>")
        if links:
            parts.append(f"<div class='course-links'>{' '.join(links)}</div>")
        return f"<figure class='course-player'>{''.join(parts)}</figure>"
    if kind == "html":
        return f"<div class='course-html'>{node.get('html', '')}</div>"
    if kind == "image":
        fmt = "svg" if "svg" in str(node.get("format")) else str(node.get("format") or "png")
        return f"<img class='course-image' alt='' src='{media.file(node['data'], '.' + fmt)}'>"
    if kind == "control":
        return (f"<span class='course-control'>{html.escape(node.get('label', ''))} "
                f"<b>{html.escape(node.get('value', ''))}</b></span>")
    if kind == "button":
        return f"<button class='course-button' disabled>{html.escape(node.get('label', ''))}</button>"
    return f"<pre class='course-text'>{html.escape(str(node.get('text', '')))}</pre>"


def static_html(node: dict, media: Media) -> str:
    """The HTML of one static view (see :func:`course.listen.static.static_view`), its files written by ``media``."""
    body = _node_html(node, media)
    if _has_controls(node):
        body += ("<p class='course-static-note'>A static view: the sliders and buttons work when you run the "
                 "notebook; here they show the settings that made what you hear.</p>")
    return f"<div class='course-static'>{body}</div>"
