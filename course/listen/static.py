"""Static views of the listening widgets, for a website of the course (``python -m course site``).

A widget needs a live kernel; a web page has none. :func:`static_view` turns a displayed object
(a :class:`~course.listen.Player`, the player :func:`~course.listen.play` returns, any core
ipywidget such as a Sampler, an ABTest or a BarScrubber) into plain JSON data: boxes of HTML,
images, controls shown as their settings, and players with their audio (16-bit WAV, base64), piano
roll (PNG) and MIDI. :func:`install` makes the running kernel display such objects that way, under
the MIME type :data:`MIME`, and the site builder (:mod:`course.authoring.site`) turns that data into
HTML, compressed audio clips and files beside the page.

Lesson: 00_welcome
"""
from __future__ import annotations

import base64
import html
import re

__all__ = ["MIME", "static_view", "install"]

MIME = "application/vnd.course.static-view+json"
_AUDIO_SRC_RE = re.compile(r"data:audio/(?:wav|x-wav);base64,([A-Za-z0-9+/=\s]+)")
_CONTROLS = ("FloatSlider", "IntSlider", "FloatRangeSlider", "IntRangeSlider", "BoundedIntText", "IntText",
             "FloatText", "BoundedFloatText", "Text", "Dropdown", "Checkbox", "ToggleButton", "ToggleButtons",
             "RadioButtons", "SelectionSlider", "Select", "Textarea", "Play")


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _hidden(widget) -> bool:
    layout = getattr(widget, "layout", None)
    return getattr(layout, "display", None) == "none" or getattr(layout, "visibility", None) == "hidden"


def _progress(widget) -> bool:
    """A progress bar, or the row that holds one (tqdm's): a page shows the cell's printed result instead."""
    import ipywidgets as widgets

    bars = (widgets.FloatProgress, widgets.IntProgress)
    return isinstance(widget, bars) or (isinstance(widget, widgets.Box)
                                        and any(isinstance(c, bars) for c in widget.children))


def _player(player) -> dict:
    """A :class:`~course.listen.Player` as one node: caption, audio, piano roll, MIDI."""
    from ._common import safe_filename, wav_bytes

    return {"kind": "player", "caption": player.children[0].value,
            "wav": _b64(wav_bytes(player.audio, player.sample_rate)),
            "roll": _b64(player.image.value) if player.image is not None else None,
            "midi": _b64(player.midi), "filename": safe_filename(player.title) + ".mid",
            "note": (f"The first {len(player.audio) / player.sample_rate:.0f} s." if player.clipped else "")}


def _played(audio) -> dict:
    """The ``IPython.display.Audio`` that :func:`~course.listen.play` returns, with its roll and MIDI."""
    music = getattr(audio, "music", None)
    node = {"kind": "player", "caption": "", "wav": _b64(audio.data), "roll": None, "midi": None,
            "filename": "music.mid", "note": ""}
    if music is None:
        return node
    from ..music import to_midi, trim
    from ._common import safe_filename
    from .widgets import _roll_png, describe

    shown = trim(music, 0.0, audio.seconds) if getattr(audio, "clipped", False) else music
    title = music.title or "music"
    node.update(caption=f"<b>{html.escape(title)}</b> <span style='color:#666'>({html.escape(describe(music))})</span>",
                roll=_b64(_roll_png(shown)), midi=_b64(to_midi(music)), filename=safe_filename(title) + ".mid")
    return node


def _outputs(outputs) -> list[dict]:
    """The displayed outputs inside an ``ipywidgets.Output``."""
    nodes = []
    for out in outputs:
        if out.get("output_type") == "stream":
            nodes.append({"kind": "text", "text": out.get("text", "")})
            continue
        data = out.get("data", {})
        page = data.get("text/html", "")
        page = "".join(page) if isinstance(page, list) else page
        found = _AUDIO_SRC_RE.search(page) if "<audio" in page else None
        if found:
            nodes.append({"kind": "player", "caption": "", "wav": re.sub(r"\s", "", found.group(1)), "roll": None,
                          "midi": None, "filename": "music.mid", "note": ""})
        elif "image/png" in data:
            nodes.append({"kind": "image", "format": "png", "data": data["image/png"]})
        elif page:
            nodes.append({"kind": "html", "html": page})
        elif "text/plain" in data:
            nodes.append({"kind": "text", "text": data["text/plain"]})
    return nodes


def static_view(obj) -> dict | None:
    """``obj`` as a tree of plain data a web page can show, or None if it is not a widget or a player.

    Lesson: 00_welcome

    Nodes: ``box`` (``direction`` "v" or "h", ``children``), ``player`` (``caption`` HTML, ``wav``
    base64 16-bit WAV, ``roll`` base64 PNG or None, ``midi`` base64 MIDI or None, ``filename``, ``note``),
    ``html``, ``image`` (``format``, base64 ``data``), ``control`` (``label``, ``value``), ``button``
    (``label``) and ``text``. Hidden widgets, progress bars and empty images or audio are left out. A
    :class:`~course.listen.Sampler` that has generated nothing yet generates once, with its starting settings.
    """
    import ipywidgets as widgets
    from IPython.display import Audio

    from .widgets import Player, Sampler

    if isinstance(obj, Audio):
        return _played(obj)
    if not isinstance(obj, widgets.Widget) or _hidden(obj) or _progress(obj):
        return None
    if isinstance(obj, Player):
        return _player(obj)
    if isinstance(obj, Sampler) and obj.player is None and obj.error is None:
        obj.run()           # a page cannot press Generate: show one result of the starting settings
    if isinstance(obj, widgets.Audio):
        return {"kind": "player", "caption": "", "wav": _b64(obj.value), "roll": None, "midi": None,
                "filename": "music.mid", "note": ""} if obj.value else None
    if isinstance(obj, widgets.Image):
        return {"kind": "image", "format": obj.format, "data": _b64(obj.value)} if obj.value else None
    if isinstance(obj, widgets.Output):
        nodes = _outputs(obj.outputs)
        return {"kind": "box", "direction": "v", "children": nodes} if nodes else None
    if isinstance(obj, (widgets.HTML, widgets.HTMLMath, widgets.Label)):
        value = obj.value if not isinstance(obj, widgets.Label) else html.escape(obj.value)
        return {"kind": "html", "html": value} if value else None
    if isinstance(obj, widgets.Button):
        return {"kind": "button", "label": obj.description}
    if isinstance(obj, widgets.Box):
        children = [node for node in (static_view(c) for c in obj.children) if node is not None]
        direction = "h" if isinstance(obj, widgets.HBox) else "v"
        return {"kind": "box", "direction": direction, "children": children} if children else None
    if type(obj).__name__ in _CONTROLS or hasattr(obj, "value"):
        value = getattr(obj, "value", "")
        if isinstance(value, float):
            value = f"{value:.3g}"
        return {"kind": "control", "label": getattr(obj, "description", "") or "", "value": str(value)}
    return {"kind": "text", "text": repr(obj)}


def install(shell=None) -> None:
    """Make this kernel display widgets and players as :func:`static_view` data (``MIME``) plus plain text.

    Lesson: 00_welcome

    Called by the site builder in the kernel that re-runs a lesson; a notebook never needs it.
    """
    import ipywidgets as widgets
    from IPython import get_ipython
    from IPython.display import Audio

    shell = shell or get_ipython()
    if shell is None:
        return

    def bundle(obj, include=None, exclude=None):
        view = static_view(obj)
        if view is None:
            return None
        return {MIME: view, "text/plain": repr(obj)}

    formatter = shell.display_formatter.mimebundle_formatter
    formatter.for_type(widgets.Widget, bundle)
    formatter.for_type(Audio, bundle)
