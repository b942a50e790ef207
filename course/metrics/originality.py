"""How much of a piece is copied from the training set: the longest run of pitch intervals it shares.

A melody's *interval sequence* is the list of semitone steps between its consecutive notes; two
melodies that differ only by a transposition have the same one. The longest contiguous run of
intervals that a generated piece shares with any training piece (the longest common *n*-gram, or
substring, not subsequence) is a plain, transposition-invariant measure of copying: a run of 12
intervals is 13 notes played exactly as in some training piece, in the same rhythm or not.

On its own the number means little: folk tunes and chorales share stock phrases (scales, cadences,
arpeggios). Yin et al. ("an originality report", EvoMUSART 2021; SN Computer Science 2022) therefore
measure human pieces held out of training against the same training set, and judge a model by where
its pieces fall against that baseline. The course does the same (lesson 09).

::

    from course import metrics
    metrics.longest_common_ngram([2, 2, 1, -5], [0, 2, 1, -5, 3])     # 3: the run 2, 1, -5
    index = metrics.NgramIndex(train_interval_sequences)               # the training set, once
    piece, length = index.nearest(metrics.intervals(pitches))          # the training piece it shares most with

Lesson: 09_capstone
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from ..errors import CourseError

__all__ = ["longest_common_ngram", "intervals", "melody_pitches", "NgramIndex", "copy_threshold"]


def longest_common_ngram(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """The length of the longest contiguous run that appears in both ``a`` and ``b`` (0 if none).

    Dynamic programming over the pairs of positions: ``run[i][j]`` is the length of the common run
    that ends at ``a[i - 1]`` and ``b[j - 1]`` (``run[i - 1][j - 1] + 1`` when they are equal, else 0);
    the answer is the largest entry. ``O(len(a) len(b))`` time, ``O(len(b))`` memory. Lesson: 09_capstone
    """
    a, b = list(a), list(b)
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def intervals(pitches) -> np.ndarray:
    """The semitone steps between consecutive pitches: ``(n,)`` -> int ``(n - 1,)``. Lesson: 09_capstone"""
    p = np.asarray(pitches, dtype=np.int64).ravel()
    return np.diff(p) if len(p) > 1 else np.zeros(0, np.int64)


def melody_pitches(music, part: int | None = None) -> np.ndarray:
    """The pitches of a piece's top line, one per note, in time order.

    ``part`` keeps one part's notes (e.g. 0 for a chorale's soprano); ``None`` reads all parts. At
    every time a note starts, the line is the highest note sounding then (the *skyline*); a note
    that stays on top across later onsets counts once. For a monophonic part that is simply its
    notes in order. Lesson: 09_capstone
    """
    import heapq

    notes = sorted((n for n in music.notes if part is None or n.part == part), key=lambda n: float(n.start))
    line, last, heap, i = [], None, [], 0          # heap of (-pitch, -start, index, end): the highest note on top
    while i < len(notes):
        t = float(notes[i].start)
        while i < len(notes) and float(notes[i].start) <= t + 1e-9:
            n = notes[i]
            heapq.heappush(heap, (-int(n.pitch), -float(n.start), i, float(n.end)))
            i += 1
        while heap and heap[0][3] <= t + 1e-9:   # the top note has ended
            heapq.heappop(heap)
        if not heap:
            last = None
            continue
        top = heap[0][2]
        if top != last:
            line.append(-heap[0][0])
        last = top
    return np.array(line, dtype=np.int64)


def _as_ints(seq, what: str) -> np.ndarray:
    a = np.asarray(seq)
    if a.ndim != 1 or (len(a) and a.dtype.kind not in "iu"):
        raise CourseError(f"{what} must be a 1-D sequence of whole numbers (intervals in semitones).")
    return a.astype(np.int64)


class NgramIndex:
    """A training set of interval sequences, to find the longest run a query shares with any of them.

    Is there a common run of ``k`` intervals? Hash every ``k``-gram of the training set once (a
    polynomial hash, kept sorted) and look the query's ``k``-grams up; if a run of ``k`` is shared,
    so is one of ``k - 1``, so the longest ``k`` is found by bisection with a handful of lookups.
    The hashed levels are cached, so a thousand queries against a few thousand tunes take seconds.
    A match is confirmed by comparing the intervals themselves (a hash collision then falls back to
    :meth:`runs`, the plain dynamic programme against every piece). Lesson: 09_capstone
    """

    SEPARATOR = 1 << 40            # between pieces: equals no interval, so no run spans two pieces
    _BASE = np.uint64(1_000_003)
    _CACHE = 32                    # hashed levels kept (about 3 MB each for 2,000 tunes)

    def __init__(self, pieces: Sequence, names: Sequence[str] | None = None):
        seqs = [_as_ints(p, "every training piece") for p in pieces]
        if not seqs:
            raise CourseError("NgramIndex needs at least one training piece.")
        self.names = list(names) if names is not None else [str(i) for i in range(len(seqs))]
        if len(self.names) != len(seqs):
            raise CourseError(f"{len(seqs)} pieces but {len(self.names)} names.")
        lengths = np.array([len(s) for s in seqs])
        self.flat = np.concatenate([np.append(s, self.SEPARATOR) for s in seqs])
        self.owner = np.repeat(np.arange(len(seqs)), lengths + 1)
        self._levels: dict[int, np.ndarray] = {}
        self._flat_prefix = None

    def __len__(self) -> int:
        return int(self.owner[-1]) + 1

    def _hashes(self, seq: np.ndarray, k: int, positions: bool = False):
        """The hash of every ``k``-gram of ``seq`` that contains no separator (others dropped), and with
        ``positions`` where each starts: ``H[i + k] - B^k H[i]`` from the prefix hashes ``H`` (mod 2^64)."""
        n = len(seq) - k + 1
        if n <= 0:
            return (np.zeros(0, np.uint64), np.zeros(0, np.int64)) if positions else np.zeros(0, np.uint64)
        prefix, seps = self._prefix(seq)
        with np.errstate(over="ignore"):
            h = prefix[k:] - prefix[:n] * (self._BASE ** np.uint64(k))
        ok = seps[k:] == seps[:n]                       # no separator inside the window
        return (h[ok], np.flatnonzero(ok)) if positions else h[ok]

    def _prefix(self, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prefix hashes ``H`` (``H[0] = 0``, ``H[i + 1] = B H[i] + v[i]``) and prefix counts of separators."""
        if seq is self.flat and self._flat_prefix is not None:
            return self._flat_prefix
        mask, base, acc, out = (1 << 64) - 1, int(self._BASE), 0, [0]
        for x in ((seq + 7) % (1 << 62)).tolist():          # one pass in Python integers, taken mod 2^64
            acc = (acc * base + x * 0x9E3779B97F4A7C15) & mask
            out.append(acc)
        prefix = np.array(out, dtype=np.uint64)
        seps = np.concatenate([[0], np.cumsum(seq == self.SEPARATOR)])
        if seq is self.flat:
            self._flat_prefix = (prefix, seps)
        return prefix, seps

    def _level(self, k: int) -> np.ndarray:
        if k not in self._levels:
            if len(self._levels) >= self._CACHE:
                self._levels.pop(next(iter(self._levels)))
            self._levels[k] = np.sort(self._hashes(self.flat, k))
        return self._levels[k]

    def _shares(self, q: np.ndarray, k: int) -> bool:
        hq = self._hashes(q, k)
        level = self._level(k)
        at = np.searchsorted(level, hq).clip(0, max(len(level) - 1, 0))
        return bool(len(level) and (level[at] == hq).any())

    def nearest(self, query) -> tuple[int, int]:
        """``(index of a training piece sharing the longest run with query, that run's length)``.

        With no shared interval at all the answer is ``(0, 0)``; ties go to the first piece.
        """
        q = _as_ints(query, "the query")
        lo, hi = 0, len(q)                          # a run of lo is shared; none longer than hi
        k = min(8, hi)
        while k and lo < hi:                        # gallop: 8, 16, 32, ... (the levels most queries reuse)
            if self._shares(q, k):
                lo, k = k, min(2 * k, hi)
            else:
                hi = k - 1
                break
            if k == lo:
                break
        while lo < hi:                              # then bisect
            mid = (lo + hi + 1) // 2
            if self._shares(q, mid):
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            return 0, 0
        h, at = self._hashes(self.flat, lo, positions=True)
        grams = {tuple(q[i : i + lo].tolist()) for i in range(len(q) - lo + 1)}
        for p in at[np.isin(h, self._hashes(q, lo))].tolist():        # confirm on the intervals themselves
            if tuple(self.flat[p : p + lo].tolist()) in grams:
                return int(self.owner[p]), lo
        r = self.runs(q)                             # a hash collision: the exact answer the slow way
        return int(np.argmax(r)), int(r.max())

    def runs(self, query) -> np.ndarray:
        """The longest run ``query`` shares with each training piece, int ``(n_pieces,)``, by dynamic
        programming: one NumPy row over the whole training set per query position."""
        q = _as_ints(query, "the query")
        prev = np.zeros(len(self.flat), np.int64)
        best = np.zeros(len(self.flat), np.int64)
        for x in q.tolist():
            before = np.concatenate([[0], prev[:-1]])                 # the run ending one position earlier
            prev = np.where(self.flat == x, before + 1, 0)
            np.maximum(best, prev, out=best)
        out = np.zeros(len(self), np.int64)
        np.maximum.at(out, self.owner, best)
        return out


def copy_threshold(baseline, quantile: float = 0.95) -> float:
    """The run length above which a piece copies more than held-out human pieces do: their ``quantile``.

    ``baseline`` holds the longest shared run of each held-out human piece against the training set.
    Lesson: 09_capstone
    """
    b = np.asarray(baseline, dtype=float)
    if b.ndim != 1 or not len(b):
        raise CourseError("the baseline must be a non-empty list of run lengths.")
    if not 0 < quantile < 1:
        raise CourseError(f"quantile must lie strictly between 0 and 1, got {quantile}.")
    return float(np.quantile(b, quantile))
