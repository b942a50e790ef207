"""Audio synthesis that always works: a fast pure-NumPy synthesizer, FluidSynth when installed.

The NumPy synthesizer is additive: each note is a few harmonics of its pitch (a
different mix of harmonics per part, so voices can be told apart), shaped by an
envelope (5 ms attack, a soft decay to a sustain level, a slow fade, a 60 ms
release). Notes of the same part and pitch share one oscillator and notes that
also share a length share one rendered waveform, so a chorale costs a few
milliseconds. Memory stays bounded: the output is at most ``max_seconds`` long
(and never more than ``MAX_RENDER_SAMPLES``), and a note held for longer than a
minute, silent by then, is not computed further.

Lesson: 00_welcome
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from ..errors import MusicError
from ._common import check_sample_rate, to_music

__all__ = ["synthesize", "backend_name", "fluidsynth_available", "BACKENDS", "MAX_RENDER_SAMPLES"]

BACKENDS = ("auto", "numpy", "fluidsynth")
PEAK = 0.9                        # normalized peak amplitude (never clips)
ATTACK = 0.005                    # seconds, linear rise from silence
RELEASE = 0.06                    # seconds, linear fall to silence after a note ends
DECAY = 0.15                      # seconds, time constant of the fall from the attack peak to the sustain level
SUSTAIN = 0.55                    # sustain level relative to the attack peak
FADE = 4.0                        # seconds, time constant of the slow fade of a held note
HELD = 60.0                       # seconds; a note held longer has faded to silence (exp(-HELD/FADE) < 1e-6)
MAX_RENDER_SAMPLES = 32_000_000   # a float32 buffer of at most 128 MB (2000 s at 16 kHz), whatever max_seconds asks
_BLOCK = 4096                     # oscillator phase is computed in blocks to keep float32 precise
_CHUNK = 256 * _BLOCK             # samples per chunk when computing a long oscillator

# Relative amplitudes of harmonics 1, 2, 3, ... for parts 0, 1, 2, 3 (then repeating).
TIMBRES = (
    (1.0, 0.45, 0.25, 0.12, 0.06),   # part 0: soft and round (soprano)
    (1.0, 0.08, 0.40, 0.05, 0.18),   # part 1: odd harmonics, reedy (alto)
    (1.0, 0.60, 0.30, 0.22, 0.10),   # part 2: bright (tenor)
    (1.0, 0.30, 0.10, 0.04),         # part 3: mellow (bass)
)


# ---------------------------------------------------------------------------------------- backends
@functools.lru_cache(maxsize=1)
def fluidsynth_available() -> bool:
    """True when FluidSynth can be used: the ``pyfluidsynth`` package and the system library load.

    Lesson: 00_welcome
    """
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loads libfluidsynth with ctypes)

        return hasattr(fluidsynth, "Synth")
    except Exception:  # ImportError, OSError (library missing), anything a broken install raises
        return False


def backend_name() -> str:
    """The backend ``synthesize(..., backend="auto")`` uses here: ``"fluidsynth"`` or ``"numpy"``.

    Lesson: 00_welcome
    """
    return "fluidsynth" if fluidsynth_available() else "numpy"


def synthesize(music, sample_rate: int = 16000, *, backend: str = "auto", max_seconds: float | None = 600.0) -> np.ndarray:
    """Render music to mono audio.

    Lesson: 00_welcome

    Args:
        music: anything ``course.music.as_music`` accepts: a ``Music`` (e.g. from ``read_midi``),
            a list of notes, a piano roll (T, 88) or (T, 128), a MIDI path or bytes, a
            ``PrettyMIDI``, a music21 stream.
        sample_rate: samples per second (1000-96000; 16000 is plenty for these lessons).
        backend: ``"auto"`` (FluidSynth if installed, else NumPy; see :func:`backend_name`),
            ``"numpy"`` or ``"fluidsynth"``.
        max_seconds: render at most this many seconds (default 600); longer music is cut there
            with a short fade-out and a warning. ``None`` means the whole piece, up to the hard
            limit of ``MAX_RENDER_SAMPLES`` samples (2000 s at 16 kHz), so memory stays bounded.

    Returns:
        float32 array of shape ``(samples,)``, peak amplitude 0.9 (or all zeros for silent
        music). Its length is the music's duration plus a 60 ms release tail, times
        ``sample_rate``.

    Raises:
        MusicError: input that is not music or has no notes, a bad sample rate, an unknown backend.
    """
    audio, clipped, total = _render(music, sample_rate, backend=backend, max_seconds=max_seconds)
    if clipped:
        warnings.warn(f"synthesize: the music lasts {total:.0f} s; rendered only the first "
                      f"{len(audio) / sample_rate:.0f} s (pass max_seconds=... to change this).", stacklevel=2)
    return audio


def _render(music, sample_rate, *, backend="auto", max_seconds=600.0, what="synthesize"):
    """``synthesize`` without the warning: returns ``(audio, clipped, duration_seconds)``."""
    rate = check_sample_rate(sample_rate)
    if backend not in BACKENDS:
        raise MusicError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}.")
    music = to_music(music, what)
    limit = MAX_RENDER_SAMPLES
    if max_seconds is not None:
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float, np.integer, np.floating)) \
                or not np.isfinite(max_seconds) or max_seconds <= 0:
            raise MusicError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}.")
        limit = min(limit, int(round(float(max_seconds) * rate)))
    limit = max(limit, 1)
    if backend == "fluidsynth" and not fluidsynth_available():
        raise MusicError("FluidSynth is not usable here: install the system library (e.g. `apt install "
                         "libfluidsynth3`) and `pip install pyfluidsynth`, or use backend='numpy'.")
    if backend == "auto":
        backend = backend_name()
    if backend == "fluidsynth":
        audio, clipped = _render_fluidsynth(music, rate, limit)
    else:
        audio, clipped = _render_numpy(music, rate, limit)
    return audio, clipped, music.duration


# ---------------------------------------------------------------------------------------- numpy
def _normalize(buf: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(buf))) if buf.size else 0.0
    if peak > 0 and np.isfinite(peak):
        buf *= np.float32(PEAK / peak)
    return buf


def _envelope(n: int, rate: int) -> np.ndarray:
    """The shared envelope of every note, sampled for ``n`` samples (float32)."""
    t = np.arange(n, dtype=np.float32) / np.float32(rate)
    env = np.float32(SUSTAIN) + np.float32(1 - SUSTAIN) * np.exp(-t / np.float32(DECAY))
    env *= np.exp(-t / np.float32(FADE))
    a = max(1, int(ATTACK * rate))
    env[:a] *= np.arange(a, dtype=np.float32) / np.float32(a)   # starts at exactly 0
    return env


def _oscillator(pitch: int, timbre: int, n: int, rate: int) -> np.ndarray:
    """``n`` samples of the harmonic mix of ``timbre`` at MIDI ``pitch`` (float32).

    The phase in cycles is ``k * f / rate``; it is split as ``block start + offset in block``
    with the block start reduced modulo 1 in float64, so float32 stays precise for hour-long
    notes. Long oscillators are computed a chunk at a time to keep temporaries small.
    """
    f = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    step = f / rate                                         # cycles per sample
    amps = [a for h, a in enumerate(TIMBRES[timbre % len(TIMBRES)], start=1) if h * f < 0.45 * rate and a > 0]
    if not amps:            # even the fundamental is above what this sample rate can carry: silence
        return np.zeros(n, dtype=np.float32)
    amps = np.asarray(amps, dtype=np.float32) / np.float32(np.sqrt(sum(a * a for a in amps)))
    offsets = np.arange(_BLOCK, dtype=np.float32) * np.float32(step)
    out = np.empty(n, dtype=np.float32)
    for c0 in range(0, n, _CHUNK):
        c1 = min(n, c0 + _CHUNK)
        first = c0 // _BLOCK
        blocks = -(-(c1 - c0) // _BLOCK)
        base = ((np.arange(first, first + blocks, dtype=np.float64) * (_BLOCK * step)) % 1.0).astype(np.float32)
        phase = (base[:, None] + offsets[None, :]).reshape(-1)[:c1 - c0]
        phase *= np.float32(2 * np.pi)                      # radians
        chunk = out[c0:c1]
        np.sin(phase, out=chunk)
        chunk *= amps[0]
        for h, a in enumerate(amps[1:], start=2):
            chunk += a * np.sin(np.float32(h) * phase)
    return out


def _noise_hit(n: int, rate: int) -> np.ndarray:
    """A short decaying noise burst for drum notes (deterministic)."""
    t = np.arange(n, dtype=np.float32) / np.float32(rate)
    noise = np.random.default_rng(12345).uniform(-1, 1, n).astype(np.float32)
    env = np.exp(-t / np.float32(0.03))
    a = max(1, int(0.002 * rate))
    env[:a] *= np.arange(a, dtype=np.float32) / np.float32(a)
    return noise * env


def _render_numpy(music, rate: int, limit: int):
    """Render into one float32 buffer of at most ``limit`` samples; returns ``(audio, clipped)``."""
    a = music.arrays()
    start = np.floor(a["start"] * rate + 0.5).astype(np.int64)
    length = np.maximum(np.floor((a["end"] - a["start"]) * rate + 0.5).astype(np.int64), 1)
    release = max(1, int(RELEASE * rate))
    clipped = bool(np.any(start + length > limit))
    keep = start < limit
    drum_parts = np.array([p.is_drum for p in music.parts], dtype=bool)
    is_drum = drum_parts[a["part"]]
    hit = int(0.12 * rate)
    length = np.where(is_drum, hit, np.minimum(length, limit - start))   # a note never runs past the limit
    pitch, part, vel = a["pitch"][keep], a["part"][keep], a["velocity"][keep]
    start, length, is_drum = start[keep], length[keep], is_drum[keep]
    total = int(np.where(is_drum, start + hit, start + length + release).max()) if start.size else limit
    # after HELD seconds the envelope is below -120 dB: render no further (keeps long notes cheap)
    length = np.minimum(length, int(HELD * rate))
    span = np.where(is_drum, hit, length + release)                       # samples written per note
    buf = np.zeros(max(total, int((start + span).max()) if start.size else 0), dtype=np.float32)
    if start.size:
        gain = (vel.astype(np.float32) / np.float32(127.0))
        env = _envelope(int(span.max()), rate)
        timbre = np.where(is_drum, -1, part % len(TIMBRES))
        # group notes by (timbre, pitch, length): one waveform per group, added at each start
        key = np.stack([timbre, np.where(is_drum, 0, pitch), length], axis=1)
        groups, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(groups) + 1))
        longest: dict = {}            # (timbre, pitch) -> samples its oscillator must cover
        for tb, p, n in groups.tolist():
            longest[(tb, p)] = max(longest.get((tb, p), 0), n + release)
        oscillators: dict = {}
        for g, (tb, p, n) in enumerate(groups.tolist()):
            members = order[bounds[g]:bounds[g + 1]]
            if tb < 0:
                wave = _noise_hit(n, rate)
            else:
                if (tb, p) not in oscillators:
                    oscillators[(tb, p)] = _oscillator(p, tb, longest[(tb, p)], rate)
                osc = oscillators[(tb, p)]
                wave = np.empty(n + release, dtype=np.float32)
                np.multiply(osc[:n], env[:n], out=wave[:n])
                np.multiply(osc[n:n + release], env[n - 1] * np.linspace(1.0, 0.0, release, dtype=np.float32),
                            out=wave[n:])
            w = wave.shape[0]
            for s, k in zip(start[members].tolist(), gain[members].tolist()):
                for c in range(0, w, _CHUNK):   # one slice for all but hour-long notes
                    buf[s + c:s + min(w, c + _CHUNK)] += np.float32(k) * wave[c:c + _CHUNK]
    if len(buf) > total:
        buf = buf[:total]
    if total > limit:
        buf = buf[:limit]
        fade = min(release, limit)
        buf[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return _normalize(buf), clipped


# ---------------------------------------------------------------------------------------- fluidsynth
def _render_fluidsynth(music, rate: int, limit: int):
    """Render with pretty_midi's FluidSynth binding and the General MIDI soundfont it ships."""
    from ..music import to_pretty_midi, trim

    seconds = limit / rate
    clipped = music.duration > seconds
    if clipped:
        music = trim(music, 0.0, seconds)
    try:
        audio = to_pretty_midi(music).fluidsynth(fs=rate)
    except Exception as e:  # a broken FluidSynth install must not stop the lesson
        raise MusicError(f"FluidSynth failed ({type(e).__name__}: {e}); use backend='numpy'.") from None
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)[:limit].copy()
    if clipped and audio.size:
        fade = min(int(RELEASE * rate), audio.size)
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return _normalize(audio), clipped
