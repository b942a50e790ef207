"""Event tokens: a melody vocabulary (pitch, duration, rest) and a polyphonic frame encoding.

Melody tokens (lesson 03)::

    BOS  (PITCH | REST) DUR+  (PITCH | REST) DUR+ ...  EOS

Consecutive duration tokens add up, so any length is encoded exactly.

Frame tokens (lesson 04/06): a piano roll is written frame by frame, each frame as its
active pitches in ascending order followed by ``FRAME``. The encoding is one-to-one, so the
sum of a token model's log-probabilities over one frame's tokens is the log-probability of
that frame, and a token model can report NLL in nats per frame, comparable with piano-roll models.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import MusicError
from .core import Music, Note, Part

__all__ = ["MelodyVocab", "to_melody_tokens", "from_melody_tokens", "FrameVocab", "to_frame_tokens",
           "from_frame_tokens", "frame_index", "to_text", "from_text", "pitch_name", "parse_pitch"]

_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def pitch_name(pitch: int) -> str:
    """MIDI number to a name: 60 -> 'C4', 61 -> 'C#4'."""
    return f"{_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def parse_pitch(name: str) -> int:
    """A note name to a MIDI number: 'C4' -> 60, 'F#3' -> 54, 'Bb4'/'B-4' -> 70."""
    m = re.fullmatch(r"\s*([A-Ga-g])([#b\-]*)(-?\d+)\s*", str(name))
    if not m:
        raise MusicError(f"{name!r} is not a note name; write a letter, an optional # or b, and an octave, e.g. 'E4' or 'F#3'.")
    letter, acc, octave = m.groups()
    p = 12 * (int(octave) + 1) + _STEP[letter.upper()] + acc.count("#") - acc.count("b") - acc.count("-")
    if not 0 <= p <= 127:
        raise MusicError(f"{name!r} is outside the MIDI range (C-1 to G9).")
    return p


@dataclass(frozen=True)
class MelodyVocab:
    """Token ids for monophonic melodies on a grid of ``steps_per_quarter`` steps.

    ids: PAD=0, BOS=1, EOS=2, REST=3, then 128 pitch tokens (MIDI 0..127), then
    ``max_steps`` duration tokens for 1..max_steps steps.
    """

    steps_per_quarter: int = 4
    max_steps: int = 32

    PAD = 0
    BOS = 1
    EOS = 2
    REST = 3
    PITCH0 = 4

    @property
    def dur0(self) -> int:
        return self.PITCH0 + 128

    def __len__(self) -> int:
        return self.dur0 + self.max_steps

    @property
    def size(self) -> int:
        return len(self)

    def pitch(self, midi: int) -> int:
        return self.PITCH0 + int(midi)

    def duration(self, steps: int) -> list[int]:
        """Duration tokens (one or more) summing to ``steps``."""
        out = []
        steps = int(steps)
        while steps > 0:
            k = min(steps, self.max_steps)
            out.append(self.dur0 + k - 1)
            steps -= k
        return out

    def is_pitch(self, t: int) -> bool:
        return self.PITCH0 <= t < self.dur0

    def is_duration(self, t: int) -> bool:
        return self.dur0 <= t < len(self)

    def steps_of(self, t: int) -> int:
        return t - self.dur0 + 1

    def name(self, t: int) -> str:
        """A readable name for a token id: 'BOS', 'REST', 'E4', 'd4' (4 steps)."""
        t = int(t)
        if t in (self.PAD, self.BOS, self.EOS, self.REST):
            return ("PAD", "BOS", "EOS", "REST")[t]
        if self.is_pitch(t):
            return pitch_name(t - self.PITCH0)
        if self.is_duration(t):
            return f"d{self.steps_of(t)}"
        raise MusicError(f"{t} is not a token id of this vocabulary (0..{len(self) - 1}).")

    def names(self, tokens) -> list[str]:
        return [self.name(t) for t in np.asarray(tokens).tolist()]


def to_melody_tokens(music: Music, vocab: MelodyVocab | None = None, *, bos: bool = True, eos: bool = True) -> np.ndarray:
    """Encode a monophonic melody as token ids (int64 array).

    The melody is quantized to the vocabulary's grid; gaps become REST tokens.
    Raises MusicError if two notes overlap (use ``course.music.monophonic`` first).
    """
    vocab = vocab or MelodyVocab()
    s, e = music.steps(vocab.steps_per_quarter)
    e = np.maximum(e, s + 1)
    pitches = [n.pitch for n in music.notes]
    out = [vocab.BOS] if bos else []
    t = 0
    for p, a, b in zip(pitches, s.tolist(), e.tolist()):
        if a < t:
            raise MusicError(f"The melody has overlapping notes at step {a} (pitch {pitch_name(p)}); "
                             "melody tokens need one note at a time: use course.music.monophonic(music).")
        if a > t:
            out += [vocab.REST] + vocab.duration(a - t)
        out += [vocab.pitch(p)] + vocab.duration(b - a)
        t = b
    if eos:
        out.append(vocab.EOS)
    return np.asarray(out, dtype=np.int64)


def from_melody_tokens(tokens, vocab: MelodyVocab | None = None, *, qpm: float = 120.0, strict: bool = False,
                       title: str = "") -> Music:
    """Decode token ids back into a :class:`Music`.

    With ``strict=False`` (for model samples) stray tokens are skipped: a duration with no
    pitch before it, a pitch with no duration (it gets one step), anything after EOS.
    With ``strict=True`` such a sequence raises MusicError.
    """
    vocab = vocab or MelodyVocab()
    if hasattr(tokens, "detach"):
        tokens = tokens.detach().cpu().numpy()
    toks = np.asarray(tokens).reshape(-1).tolist()
    step = 60.0 / qpm / vocab.steps_per_quarter
    notes, t, cur, dur = [], 0, None, 0

    def flush():
        nonlocal t, cur, dur
        if cur is not None:
            d = dur if dur > 0 else 1
            if dur == 0 and strict:
                raise MusicError("A pitch or REST token is not followed by a duration token.")
            if cur != vocab.REST:
                notes.append(Note(cur - vocab.PITCH0, t * step, (t + d) * step, 80, 0))
            t += d
        cur, dur = None, 0

    for i, x in enumerate(toks):
        if not 0 <= x < len(vocab):
            raise MusicError(f"Token {x} at position {i} is not in the vocabulary (0..{len(vocab) - 1}).")
        if x == vocab.EOS:
            break
        if x in (vocab.BOS, vocab.PAD):
            continue
        if vocab.is_duration(x):
            if cur is None:
                if strict:
                    raise MusicError(f"Duration token at position {i} has no pitch or REST before it.")
                continue
            dur += vocab.steps_of(x)
        else:
            flush()
            cur = x
    flush()
    return Music(notes=tuple(notes), qpm=qpm, parts=(Part(),), title=title, steps_per_quarter=vocab.steps_per_quarter)


@dataclass(frozen=True)
class FrameVocab:
    """Token ids for the frame encoding of an ``n_pitches``-wide piano roll.

    ids: 0..n_pitches-1 a pitch column, then FRAME (end of a time step), BOS, EOS, PAD.
    """

    n_pitches: int = 88

    @property
    def FRAME(self) -> int:
        return self.n_pitches

    @property
    def BOS(self) -> int:
        return self.n_pitches + 1

    @property
    def EOS(self) -> int:
        return self.n_pitches + 2

    @property
    def PAD(self) -> int:
        return self.n_pitches + 3

    def __len__(self) -> int:
        return self.n_pitches + 4

    @property
    def size(self) -> int:
        return len(self)


def to_frame_tokens(roll, *, bos: bool = True, eos: bool = True) -> np.ndarray:
    """Encode a binary piano roll ``(T, P)`` as frame tokens (int64): per frame, active columns
    ascending then FRAME."""
    roll = np.asarray(roll.detach().cpu().numpy() if hasattr(roll, "detach") else roll)
    if roll.ndim != 2:
        raise MusicError(f"A piano roll is 2-D (time steps, pitches); got shape {roll.shape}.")
    vocab = FrameVocab(roll.shape[1])
    on = roll > 0.5
    counts = on.sum(axis=1)
    _, cols = np.nonzero(on)
    # positions: each frame contributes counts[t] pitch tokens then one FRAME token
    total = int(counts.sum() + len(counts))
    out = np.full(total, vocab.FRAME, dtype=np.int64)
    ends = np.cumsum(counts + 1) - 1          # index of each frame's FRAME token
    starts = ends - counts
    idx = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), ends.tolist())]) if total else np.zeros(0, int)
    out[idx.astype(np.int64)] = cols
    parts = ([np.array([vocab.BOS])] if bos else []) + [out] + ([np.array([vocab.EOS])] if eos else [])
    return np.concatenate(parts).astype(np.int64)


def from_frame_tokens(tokens, n_pitches: int = 88, *, strict: bool = False) -> np.ndarray:
    """Decode frame tokens back into a ``(T, n_pitches)`` uint8 piano roll.

    A trailing frame without FRAME is kept. With ``strict=False`` repeated or out-of-order
    pitches inside a frame are accepted (a set is a set).
    """
    vocab = FrameVocab(n_pitches)
    toks = np.asarray(tokens.detach().cpu().numpy() if hasattr(tokens, "detach") else tokens).reshape(-1).tolist()
    frames, cur = [], []
    for i, x in enumerate(toks):
        if not 0 <= x < len(vocab):
            raise MusicError(f"Token {x} at position {i} is not a frame token (0..{len(vocab) - 1}).")
        if x == vocab.EOS:
            break
        if x in (vocab.BOS, vocab.PAD):
            continue
        if x == vocab.FRAME:
            frames.append(cur)
            cur = []
        else:
            if strict and cur and x <= cur[-1]:
                raise MusicError(f"Pitch tokens in a frame must be ascending (position {i}).")
            cur.append(x)
    if cur:
        frames.append(cur)
    roll = np.zeros((len(frames), n_pitches), dtype=np.uint8)
    for t, f in enumerate(frames):
        roll[t, f] = 1
    return roll


def frame_index(tokens, n_pitches: int = 88) -> np.ndarray:
    """For each token, the index of the frame it belongs to (BOS gets -1, EOS/PAD the last frame).

    Summing per-token log-probabilities by this index gives per-frame log-probabilities.
    """
    vocab = FrameVocab(n_pitches)
    toks = np.asarray(tokens).reshape(-1)
    is_frame_end = (toks == vocab.FRAME).astype(np.int64)
    idx = np.cumsum(is_frame_end) - is_frame_end
    return np.where(toks == vocab.BOS, -1, idx)


def to_text(music: Music) -> str:
    """A melody as text: 'E4:1 G4:0.5 r:0.5 A4:2' (name:quarter notes; r is a rest)."""
    out, t = [], 0.0
    spq = music.seconds_per_quarter
    for n in music.notes:
        gap = (n.start - t) / spq
        if gap > 1e-6:
            out.append(f"r:{gap:g}")
        out.append(f"{pitch_name(n.pitch)}:{(n.end - n.start) / spq:g}")
        t = max(t, n.end)
    return " ".join(out)


def from_text(text: str, *, qpm: float = 120.0, default_quarters: float = 1.0, title: str = "") -> Music:
    """Parse a melody like 'E4 G4 A4:2 r:0.5 B4' (durations in quarter notes, default 1).

    Separators may be spaces or commas; 'r' or 'R' is a rest.
    """
    spq = 60.0 / qpm
    notes, t = [], 0.0
    words = [w for w in re.split(r"[\s,]+", str(text).strip()) if w]
    if not words:
        raise MusicError("The melody text is empty; write note names like 'E4 G4 A4:2'.")
    for w in words:
        name, _, dur = w.partition(":")
        try:
            q = float(dur) if dur else default_quarters
        except ValueError:
            raise MusicError(f"In {w!r}, the duration {dur!r} is not a number of quarter notes.") from None
        if not 0 < q <= 64:
            raise MusicError(f"In {w!r}, the duration must be between 0 and 64 quarter notes.")
        if name.lower() not in ("r", "rest"):
            notes.append(Note(parse_pitch(name), t, t + q * spq, 80, 0))
        t += q * spq
    return Music(notes=tuple(notes), qpm=qpm, parts=(Part(),), title=title)
