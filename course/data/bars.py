"""Whole bars of the chorales as piano rolls: the data of lesson 08's music GAN.

A *bar array* has shape ``(n_bars, steps_per_bar, n_pitches)``: bar ``b``, 16th-note step ``t``
within the bar, pitch index ``k`` = MIDI pitch ``low + k``, 1 where a note sounds.

By default every piece is first transposed to C major or A minor (its key estimated with the
Krumhansl-Schmuckler method, :func:`estimate_key`), by at most 6 semitones up or down: with only a
few thousand bars, a GAN learns one key's harmony far better than twelve. The chorales' notes then
lie in MIDI 31..84, the default range (54 pitches).

::

    from course import data
    per_piece = data.bars("chorales", "train")        # one (n_bars, 16, 54) uint8 array per 4/4 chorale
    prev, cur = data.bar_pairs(per_piece)             # every bar with the bar before it (silence before the first)

Lesson: 08_music_gan
"""
from __future__ import annotations

import numpy as np

from .sets import _select, _store, pianorolls
from .store import DataError

__all__ = ["BAR_LOW", "BAR_HIGH", "KEY_PROFILES", "estimate_key", "bars", "bar_pairs"]

BAR_LOW, BAR_HIGH = 31, 84        # the chorales' range once in C major / A minor (G1..C6): 54 pitches

# Krumhansl and Kessler's (1982) key profiles: how well each pitch class, tonic first, fits a major / minor key
# (probe-tone ratings, Krumhansl 1990, "Cognitive Foundations of Musical Pitch", table 2.1)
KEY_PROFILES = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}


def estimate_key(roll, low: int = 0) -> tuple[int, str]:
    """The key of a piano roll ``(T, P)`` (column ``k`` = MIDI ``low + k``): ``(tonic pitch class, mode)``.

    Krumhansl-Schmuckler: the pitch-class histogram of sounding steps is correlated with the 24
    rotations of :data:`KEY_PROFILES`; the best correlation wins (``0`` = C, ``"major"`` or
    ``"minor"``). Relative keys (C major, A minor) are close calls by this method.

    Lesson: 08_music_gan
    """
    r = np.asarray(roll)
    if r.ndim != 2 or not r.any():
        raise DataError(f"estimate_key needs a non-silent piano roll (T, P); got shape {r.shape}.")
    hist = np.zeros(12)
    np.add.at(hist, (np.arange(r.shape[1]) + int(low)) % 12, (r > 0).sum(0))
    best = max((np.corrcoef(hist, np.roll(KEY_PROFILES[mode], tonic))[0, 1], -tonic, mode)
               for mode in ("major", "minor") for tonic in range(12))
    return -best[1], best[2]


def _shift_to_c(roll) -> int:
    """Semitones (-6..5) that move ``roll``'s estimated key to C major or A minor (``roll``: all 128 pitches)."""
    tonic, mode = estimate_key(roll)
    s = ((0 if mode == "major" else 9) - tonic) % 12
    return s - 12 if s > 5 else s


def bars(name: str = "chorales", split: str = "train", *, low: int = BAR_LOW, high: int = BAR_HIGH,
         time_signature: tuple = (4, 4), to_c: bool = True) -> list[np.ndarray]:
    """The pieces of one split in ``time_signature``, each cut into whole bars at 16th-note steps.

    Returns one uint8 array ``(n_bars, steps_per_bar, high - low + 1)`` per piece (pieces in other
    metres are left out). With ``to_c`` each piece is first transposed to C major or A minor
    (:func:`estimate_key`); notes outside ``low..high`` are dropped. A piece's upbeat (its ``pickup``) and an incomplete last bar are dropped,
    so every bar starts on a downbeat. ``steps_per_bar`` is ``16`` for 4/4, ``12`` for 3/4.

    Lesson: 08_music_gan
    """
    try:
        beats, unit = (int(v) for v in time_signature)
    except (TypeError, ValueError):
        raise DataError(f"time_signature must be two whole numbers such as (4, 4), got {time_signature!r}.") from None
    store = _store(name)
    if (4 * store.spq * beats) % unit:
        raise DataError(f"A bar of {beats}/{unit} is not a whole number of 16th-note steps.")
    steps = 4 * store.spq * beats // unit
    if not 0 <= low <= high <= 127:
        raise DataError(f"Need 0 <= low <= high <= 127, got low={low}, high={high}.")
    rolls = pianorolls(name, split, steps_per_quarter=store.spq, low=0, high=127)
    out = []
    for row, full in zip(_select(store, split).tolist(), rolls):
        info = store.pieces[row]
        if tuple(info["time_signature"]) != (beats, unit) or not full.any():
            continue
        if to_c:
            full = np.roll(full, _shift_to_c(full), axis=1)      # no wrap-around: the notes lie far from 0 and 127
        roll = full[:, low : high + 1]
        body = roll[int(info.get("pickup", 0)):]
        n = len(body) // steps
        if n:
            out.append(np.ascontiguousarray(body[: n * steps].reshape(n, steps, roll.shape[1])))
    return out


def bar_pairs(per_piece: list[np.ndarray], *, start_from_silence: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every bar with the bar before it: ``(previous, current)``, two arrays ``(N, steps, pitches)``.

    With ``start_from_silence`` each piece's first bar is paired with an empty bar, so a model
    conditioned on the previous bar can also begin a phrase from nothing.

    Lesson: 08_music_gan
    """
    if not per_piece:
        raise DataError("bar_pairs needs at least one piece's bars.")
    prev, cur = [], []
    for b in per_piece:
        b = np.asarray(b)
        if b.ndim != 3:
            raise DataError(f"each piece's bars must be an array (n_bars, steps, pitches); got shape {b.shape}.")
        if start_from_silence:
            prev.append(np.zeros_like(b[:1]))
            cur.append(b[:1])
        prev.append(b[:-1])
        cur.append(b[1:])
    return np.concatenate(prev), np.concatenate(cur)
