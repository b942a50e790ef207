"""``play``: music to an audio player in the notebook, short and light.

Lesson: 00_welcome
"""
from __future__ import annotations

import numpy as np

from ..errors import MusicError
from ._common import check_sample_rate, to_music
from .synth import _render

__all__ = ["play", "render_clip"]


def _check_seconds(max_seconds, name: str = "max_seconds") -> float:
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float, np.integer, np.floating)) \
            or not np.isfinite(max_seconds) or max_seconds <= 0:
        raise MusicError(f"{name} must be a positive number of seconds, got {max_seconds!r}.")
    return float(max_seconds)


def render_clip(music, sample_rate: int = 16000, max_seconds: float = 30.0, *, backend: str = "auto",
                what: str = "play"):
    """Synthesize at most ``max_seconds`` of ``music``.

    Returns ``(audio, note)``: float32 samples and a sentence saying what was cut (``""`` if nothing).
    """
    seconds = _check_seconds(max_seconds)
    rate = check_sample_rate(sample_rate)
    music = to_music(music, what)
    audio, clipped, total = _render(music, rate, backend=backend, max_seconds=seconds, what=what)
    note = ""
    if clipped:
        note = (f"Playing the first {len(audio) / rate:.0f} s of {total:.0f} s "
                f"(pass max_seconds=... to hear more).")
    return audio, note


def play(music, sample_rate: int = 16000, max_seconds: float = 30.0, *, backend: str = "auto"):
    """An audio player for ``music`` that displays in any notebook.

    Lesson: 00_welcome

    The clip is at most ``max_seconds`` long (a note is printed when the music was cut), mono,
    16-bit WAV at ``sample_rate`` samples per second: 30 s at 16 kHz is about 1 MB of notebook.

    Args:
        music: anything ``course.music.as_music`` accepts (a ``Music`` from ``read_midi``,
            notes, a piano roll, a MIDI path, a music21 stream, ...).
        sample_rate: samples per second.
        max_seconds: the longest clip to embed, in seconds.
        backend: synthesizer, see :func:`course.listen.synthesize`.

    Returns:
        an ``IPython.display.Audio`` (with extra attributes ``clipped``, ``seconds`` and ``music``, the
        piece as a ``Music``).
    """
    from IPython.display import Audio

    music = to_music(music, "play")
    audio, note = render_clip(music, sample_rate, max_seconds, backend=backend, what="play")
    if note:
        print(note)
    player = Audio(data=audio, rate=int(sample_rate), normalize=False)
    player.clipped = bool(note)
    player.seconds = len(audio) / int(sample_rate)
    player.music = music
    return player
