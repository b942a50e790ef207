"""How each data set is made from music21's corpus: which files, in which order, what is kept.

The functions here run in worker processes during ``python -m course data build``; each
parses one corpus file and returns plain arrays and dicts (parsed scores are never kept).
The choices (what is dropped, the tempo, the grid) are written up in ``datasets/README.md``.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np

from ..music import MelodyVocab, monophonic, quantize, to_melody_tokens
from ..music.corpus import chorale_catalogue, corpus_files, read_corpus

__all__ = ["QPM", "STEPS_PER_QUARTER", "VELOCITY", "VOICES", "FOLK_COLLECTIONS",
           "chorale_units", "chorale_piece", "folk_units", "folk_pieces", "folk_split_key"]

QPM = 120.0              # every piece is timed at 120 quarter notes per minute
STEPS_PER_QUARTER = 4    # note times are stored in 16th-note steps
VELOCITY = 80            # the corpus encodings carry no dynamics; every note gets this
VOICES = ("Soprano", "Alto", "Tenor", "Bass")
# Ryan's Mammoth Collection (Boston, 1883) first, then O'Neill's Music of Ireland (Chicago, 1903)
FOLK_COLLECTIONS = ("ryansMammoth", "oneills1850")
_SUFFIX_PREFERENCE = (".mxl", ".xml", ".musicxml", ".krn")


# ---------------------------------------------------------------------------- chorales
def _bwv_sort_key(stem: str):
    m = re.fullmatch(r"bwv(\d+)(?:\.(\d+))?(.*)", stem)
    if not m:
        return (10**6, 0, stem)
    return (int(m.group(1)), int(m.group(2) or 0), m.group(3))


def chorale_units() -> tuple[list[dict], list[dict]]:
    """The chorale files in build order, and the files skipped as second encodings.

    Order: Riemenschneider's 371 (music21's catalogue), each file once at its first number;
    then the other files of the corpus's ``bach`` folder by BWV number. Where a chorale is
    encoded twice (``.mxl`` and ``.krn``) the MusicXML file is used.

    Returns:
        ``(units, skipped)``: units are dicts ``path, id, bwv, riemenschneider, title``;
        skipped are dicts ``source, id, reason``.
    """
    by_stem: dict = {}
    for path in corpus_files("bach", suffixes=_SUFFIX_PREFERENCE):
        stem, suffix = path.rsplit("/", 1)[1].rsplit(".", 1)
        by_stem.setdefault(stem, []).append(path)
    for stem in by_stem:
        by_stem[stem].sort(key=lambda p: _SUFFIX_PREFERENCE.index("." + p.rsplit(".", 1)[1]))
    order, info = [], {}
    for entry in chorale_catalogue():
        stem = entry["stem"]
        if stem not in by_stem:
            continue
        if stem not in info:
            order.append(stem)
            info[stem] = {"riemenschneider": [], "title": entry["title"]}
        info[stem]["riemenschneider"].append(entry["riemenschneider"])
    order += sorted((s for s in by_stem if s not in info), key=_bwv_sort_key)
    units, skipped = [], []
    for stem in order:
        paths = by_stem[stem]
        meta = info.get(stem, {"riemenschneider": [], "title": ""})
        units.append({"path": paths[0], "id": stem, "bwv": stem[3:].split("-")[0],
                      "riemenschneider": meta["riemenschneider"], "title": meta["title"]})
        for other in paths[1:]:
            skipped.append({"source": other, "id": stem, "why": "encoding",
                            "reason": f"another encoding of {stem} ({paths[0]} is used)"})
    return units, skipped


def chorale_piece(unit: dict) -> dict:
    """Parse one chorale file into note arrays (16th-note steps), or say why it is dropped.

    Repeats are not expanded: each written note appears once (see ``datasets/README.md``).

    Returns:
        ``{"unit": unit, "error": str | None, "arrays": {pitch, start, end, part} | None, "meta": {...}}``
    """
    out = {"unit": unit, "why": None, "error": None, "arrays": None, "meta": None}
    try:
        rec = read_corpus(unit["path"], qpm=QPM, expand_repeats=False)[0]
    except Exception as e:  # a file music21 cannot read at all
        return _fail(out, "unreadable", f"music21 could not read it ({type(e).__name__})")
    music = rec["music"]
    if music is None:
        return _fail(out, "unreadable", f"could not be converted ({rec['error']})")
    if len(music.parts) != 4:
        return _fail(out, "parts", f"has {len(music.parts)} parts, not four voices")
    arrays = _note_arrays(music)
    if arrays is None:
        return _fail(out, "grid", "has notes shorter than a 16th note (32nd-note ornaments)")
    means = [arrays["pitch"][arrays["part"] == k].mean() if np.any(arrays["part"] == k) else np.nan for k in range(4)]
    if not all(means[k] > means[k + 1] for k in range(3)):
        return _fail(out, "voices", "its parts are not ordered soprano, alto, tenor, bass")
    out["arrays"] = arrays
    out["meta"] = {"time_signature": list(music.time_signature),
                   "pickup": int(round(rec["pickup"] * STEPS_PER_QUARTER)),
                   "repeat_marks": rec["repeats"] != "none"}
    return out


def _fail(out: dict, why: str, text: str) -> dict:
    out["why"], out["error"] = why, text
    return out


def _note_arrays(music) -> dict | None:
    """A Music timed at QPM as integer step arrays sorted by (start, part, pitch); None if off the grid."""
    a = music.arrays()
    f = QPM / 60.0 * STEPS_PER_QUARTER
    s, e = a["start"] * f, a["end"] * f
    si, ei = np.round(s).astype(np.int64), np.round(e).astype(np.int64)
    if np.any(np.abs(s - si) > 1e-6) or np.any(np.abs(e - ei) > 1e-6) or np.any(ei <= si):
        return None
    order = np.lexsort((a["pitch"], a["part"], si))
    return {"pitch": a["pitch"][order].astype(np.uint8), "start": si[order].astype(np.int32),
            "end": ei[order].astype(np.int32), "part": a["part"][order].astype(np.uint8)}


# ---------------------------------------------------------------------------- folk
def folk_units() -> list[dict]:
    """The folk corpus files in build order: the collections in :data:`FOLK_COLLECTIONS` order,
    files by name within each."""
    return [{"path": p, "collection": c} for c in FOLK_COLLECTIONS for p in corpus_files(c, suffixes=(".abc",))]


def folk_split_key(title: str, fallback: str) -> str:
    """The key that decides a folk tune's split: its title without a trailing " -- <dance>",
    lower-case, letters and digits only, a leading "the" removed, so versions of one tune in
    both collections share a split."""
    title = title.split(" -- ")[0]   # Ryan's titles end in the dance: "Acacia -- Reel"
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    t = re.sub(r"[^a-z0-9]+", " ", t).strip()
    t = re.sub(r"^the ", "", t).replace(" ", "")
    return f"folk:{t}" if t else fallback


def folk_pieces(unit: dict) -> list[dict]:
    """Parse one ABC file into tunes: quantized to 16ths, made monophonic, tokenized.

    Repeats are played out bar by bar (``course.music.corpus.read_corpus(expand_repeats=True)``);
    a tune whose repeat marks cannot be played out is dropped.

    Returns:
        one dict per tune: ``{"unit", "number", "title", "error", "arrays", "tokens", "meta"}``.
    """
    vocab = MelodyVocab()
    try:
        recs = read_corpus(unit["path"], qpm=QPM, expand_repeats=True)
    except Exception as e:
        item = {"unit": unit, "number": None, "title": "", "arrays": None, "tokens": None, "meta": None}
        return [_fail(item, "unreadable", f"music21 could not read the file ({type(e).__name__})")]
    out = []
    for rec in recs:
        item = {"unit": unit, "number": rec["number"], "title": rec["title"].strip(), "why": None, "error": None,
                "arrays": None, "tokens": None, "meta": None}
        music = rec["music"]
        if music is None:
            _fail(item, "unreadable", f"could not be converted ({rec['error']})")
        elif rec["repeats"] == "written":
            _fail(item, "repeats", "its repeat marks are malformed and could not be expanded")
        elif len(music.parts) != 1:
            _fail(item, "parts", f"has {len(music.parts)} parts, not one melody")
        else:
            grid = quantize(music, STEPS_PER_QUARTER)
            mono = monophonic(grid)
            arrays = _note_arrays(mono) if mono.notes else None
            if arrays is None or len(arrays["pitch"]) == 0:
                _fail(item, "empty", "has no notes")
            else:
                item["arrays"] = arrays
                item["tokens"] = to_melody_tokens(mono, vocab).astype(np.uint8)
                item["meta"] = {"time_signature": list(music.time_signature),
                                "pickup": int(round(rec["pickup"] * STEPS_PER_QUARTER)),
                                "rounded": _note_arrays(music) is None, "chords": len(mono.notes) < len(grid.notes)}
        out.append(item)
        del music
    return out
