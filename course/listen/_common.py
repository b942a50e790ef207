"""Helpers shared by the listening and seeing tools: input coercion, notebook detection, encodings.

Lesson: 00_welcome
"""
from __future__ import annotations

import base64
import io
import re
import sys

import numpy as np

from ..errors import MusicError
from ..music import Music, as_music

__all__ = ["to_music", "in_notebook", "wav_bytes", "png_bytes", "midi_data_uri", "safe_filename", "check_sample_rate"]

MIN_RATE, MAX_RATE = 1000, 96000   # samples per second


def to_music(x, what: str = "This function", *, steps_per_quarter: int = 4) -> Music:
    """``course.music.as_music`` with a message that names the caller, and a check for notes."""
    if x is None:
        raise MusicError(f"{what} needs some music, got None. Did a function forget to `return` its result?")
    try:
        music = as_music(x, steps_per_quarter=steps_per_quarter)
    except MusicError as e:
        raise MusicError(f"{what}: {e}") from None
    except (TypeError, ValueError) as e:
        raise MusicError(f"{what} could not read that {type(x).__name__} as music: {e}") from None
    if len(music.notes) == 0:
        raise MusicError(f"{what} got music with no notes, so there is nothing to play or show.")
    return music


def check_sample_rate(sample_rate) -> int:
    """A whole number of samples per second in a sensible range, else a MusicError."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise MusicError(f"sample_rate must be a number of samples per second such as 16000, got {sample_rate!r}.")
    if not np.isfinite(sample_rate) or float(sample_rate) != int(sample_rate):
        raise MusicError(f"sample_rate must be a whole number of samples per second, got {sample_rate!r}.")
    rate = int(sample_rate)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise MusicError(f"sample_rate={rate} is outside {MIN_RATE}..{MAX_RATE} samples per second; "
                         "16000 is plenty for these lessons.")
    return rate


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab), False in a plain script."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    if shell is None:
        return False
    name = type(shell).__name__
    return name in ("ZMQInteractiveShell", "Shell") or "google.colab" in sys.modules or hasattr(shell, "kernel")


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Encode mono float audio in [-1, 1] as a 16-bit PCM WAV file (bytes)."""
    import wave

    pcm = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    pcm = np.round(pcm * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def png_bytes(fig, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is left open)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def safe_filename(title: str, default: str = "music") -> str:
    """A file name stem made of letters, digits, ``-`` and ``_`` (``"bach/bwv269.mxl"`` -> ``"bwv269"``)."""
    stem = re.split(r"[\\/]", str(title or ""))[-1]
    stem = re.sub(r"\.(mxl|xml|musicxml|mid|midi|krn|abc)$", "", stem, flags=re.I)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60]
    return stem or default


def midi_data_uri(midi: bytes) -> str:
    """A ``data:`` URI holding a MIDI file, for a download link that needs no server."""
    return "data:audio/midi;base64," + base64.b64encode(midi).decode("ascii")


def new_figure(figsize):
    """A matplotlib Figure that is not registered with pyplot (so it never shows twice)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def show_in_place(handle, fig):
    """Show ``fig`` as a PNG in place of the one shown before through ``handle`` (None: a first one).

    Returns the display handle to pass next time (JupyterLab, Notebook, VS Code and Colab all update it).
    """
    from IPython.display import Image, display

    image = Image(data=png_bytes(fig), format="png")
    if handle is None:
        return display(image, display_id=True)
    handle.update(image)
    return handle
