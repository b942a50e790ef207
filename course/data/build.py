"""``python -m course data build``: rebuild ``datasets/`` from music21's corpus, bit for bit.

The pieces are processed in a fixed order and every decision (keep, drop, which split)
depends only on a piece and the ones before it, so a build with ``--limit N`` makes
exactly the first ``N`` pieces of the full build. That is how the test suite checks the
committed files without a full rebuild.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import recipes
from .datasheet import write_datasheet
from .store import SPLITS, array_sha256, datasets_dir, split_of, write_arrays, write_index

__all__ = ["add_arguments", "run", "build", "BUILDERS"]

COMMAND = "python -m course data build"


def add_arguments(parser) -> None:
    """The options of ``python -m course data``."""
    parser.add_argument("action", choices=["build"], help="build: rebuild the data sets from the music21 corpus")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"folder to write to (default: the repository's datasets/, {datasets_dir()})")
    parser.add_argument("--only", choices=sorted(BUILDERS), default=None, help="build one data set only")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="keep only the first N pieces of each set (a quick partial build)")
    parser.add_argument("--jobs", type=int, default=None, metavar="J",
                        help="worker processes for parsing (default: number of CPU cores, at most 4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Run ``python -m course data build`` with parsed arguments; returns the exit code."""
    summary = build(out=args.out, only=args.only, limit=args.limit, jobs=args.jobs, progress=not args.quiet)
    for name, counts in summary.items():
        split_text = ", ".join(f"{s} {counts[s]}" for s in SPLITS)
        print(f"{name}: {counts['all']} pieces ({split_text}); {counts['dropped']} dropped")
    print(f"wrote {Path(args.out or datasets_dir()).resolve()}")
    return 0


def build(out: Path | str | None = None, only: str | None = None, limit: int | None = None,
          jobs: int | None = None, progress: bool = True) -> dict:
    """Build the data sets into ``out`` (default :func:`datasets_dir`) and write the datasheet.

    Args:
        only: one of :data:`BUILDERS` (default: all).
        limit: keep only the first ``limit`` pieces of each set.
        jobs: worker processes (1: parse in this process).
        progress: show a progress bar per set.

    Returns:
        ``{name: {"train": n, "valid": n, "test": n, "all": n, "dropped": n}}``.
    """
    out = Path(out) if out is not None else datasets_dir()
    if limit is not None and limit < 1:
        raise DataError(f"--limit must be at least 1, got {limit}.")
    if only is not None and only not in BUILDERS:
        raise DataError(f"There is no data set {only!r}; choose one of: {', '.join(sorted(BUILDERS))}.")
    jobs = jobs or min(4, os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in ([only] if only else list(BUILDERS)):
        index, arrays = BUILDERS[name](limit=limit, jobs=jobs, progress=progress)
        index["arrays"] = {k: {"dtype": arrays[k].dtype.str, "shape": list(arrays[k].shape),
                               "sha256": array_sha256(arrays[k])} for k in sorted(arrays)}
        index = _order_keys(index)
        write_arrays(out / f"{name}.npz", arrays)
        write_index(out / f"{name}.json", index)
        summary[name] = dict(index["counts"])
    write_datasheet(out)
    return summary


# ---------------------------------------------------------------------------- running the recipes
def _results(func, units, jobs: int, progress: bool, desc: str):
    """``func(unit)`` for each unit, in order, in ``jobs`` processes, with a progress bar."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(units), desc=desc, unit="file", disable=not progress, file=sys.stderr)
    try:
        if jobs <= 1:
            for u in units:
                r = func(u)
                bar.update(1)
                yield r
        else:
            import multiprocessing as mp

            with mp.Pool(jobs) as pool:
                for r in pool.imap(func, units, chunksize=1):
                    bar.update(1)
                    yield r
    finally:
        bar.close()


def _pack(pieces: list[dict]) -> dict:
    """Concatenate the pieces' note arrays; ``note_offsets[i]:note_offsets[i+1]`` is piece i."""
    counts = [len(p["pitch"]) for p in pieces]
    cat = {k: np.concatenate([p[k] for p in pieces]) if pieces else np.zeros(0, dtype)
           for k, dtype in (("pitch", np.uint8), ("start", np.int32), ("end", np.int32), ("part", np.uint8))}
    cat["note_offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return cat


def _content_hash(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in ("pitch", "start", "end", "part"):
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


def _counts(pieces: list[dict], dropped: list[dict]) -> dict:
    c = {s: sum(p["split"] == s for p in pieces) for s in SPLITS}
    c["all"] = len(pieces)
    c["dropped"] = len(dropped)
    return c


def _common(name: str, limit: int | None) -> dict:
    from ..music.corpus import music21_version

    return {"name": name, "format": 1,
            "build": {"command": COMMAND + (f" --only {name} --limit {limit}" if limit else ""),
                      "music21": music21_version(), "partial": limit is not None},
            "qpm": recipes.QPM, "steps_per_quarter": recipes.STEPS_PER_QUARTER, "velocity": recipes.VELOCITY}


def _order_keys(index: dict) -> dict:
    """Small fields first, the long lists (pieces, dropped) last."""
    first = [k for k in index if k not in ("pieces", "dropped")]
    return {k: index[k] for k in first + ["pieces", "dropped"] if k in index}


# ---------------------------------------------------------------------------- the data sets
def build_chorales(limit: int | None = None, jobs: int = 1, progress: bool = True) -> tuple[dict, dict]:
    """The Bach chorales: ``(index, arrays)``. Lesson: 04_polyphonic_chorales"""
    units, dropped = recipes.chorale_units()
    pieces, arrays, seen_bwv, seen_notes = [], [], {}, {}
    for r in _results(recipes.chorale_piece, units, jobs, progress, "chorales"):
        u = r["unit"]
        why, reason = r["why"], r["error"]
        if why is None and u["bwv"] in seen_bwv:
            why, reason = "version", f"another version of BWV {u['bwv']} ({seen_bwv[u['bwv']]} is kept)"
        if why is None:
            h = _content_hash(r["arrays"])
            if h in seen_notes:
                why, reason = "duplicate", f"the same notes as {seen_notes[h]}"
        if why is not None:
            dropped.append({"source": u["path"], "id": u["id"], "why": why, "reason": reason})
            continue
        seen_bwv[u["bwv"]] = u["id"]
        seen_notes[h] = u["id"]
        pieces.append({"id": u["id"], "split": split_of(u["id"]), "title": u["title"], "bwv": u["bwv"],
                       "riemenschneider": u["riemenschneider"], "source": u["path"],
                       "time_signature": r["meta"]["time_signature"], "pickup": r["meta"]["pickup"],
                       "repeat_marks": r["meta"]["repeat_marks"], "notes": int(len(r["arrays"]["pitch"]))})
        arrays.append(r["arrays"])
        if limit and len(pieces) >= limit:
            break
    index = _common("chorales", limit)
    index.update({"parts": list(recipes.VOICES),
                  "source": "music21 corpus folder bach/ (MusicXML; Humdrum where no MusicXML exists)",
                  "repeats": "not expanded: each written note appears once",
                  "split_key": "id", "counts": _counts(pieces, dropped), "pieces": pieces, "dropped": dropped})
    return index, _pack(arrays)


def build_folk(limit: int | None = None, jobs: int = 1, progress: bool = True) -> tuple[dict, dict]:
    """The folk tunes: ``(index, arrays)`` with note arrays and melody tokens. Lesson: 03_melody_lstm"""
    units = recipes.folk_units()
    pieces, arrays, tokens, dropped = [], [], [], []
    seen_tokens, seen_number = {}, {}
    done = False
    for results in _results(recipes.folk_pieces, units, jobs, progress, "folk"):
        for r in results:
            u = r["unit"]
            stem = u["path"].rsplit(".", 1)[0]
            if u["collection"] == "oneills1850" and r["number"] is not None:
                pid = f"oneills1850/{r['number']}"
            else:
                pid = stem if len(results) == 1 else f"{stem}#{r['number']}"
            source = u["path"] + (f"#{r['number']}" if len(results) > 1 else "")
            why, reason = r["why"], r["error"]
            if why is None and pid in seen_number:
                why, reason = "number", f"{pid} is also in {seen_number[pid]} (that one is kept)"
            if why is None:
                h = hashlib.sha256(r["tokens"].tobytes()).hexdigest()
                if h in seen_tokens:
                    why, reason = "duplicate", f"the same notes as {seen_tokens[h]}"
            if why is not None:
                dropped.append({"source": source, "id": pid, "why": why, "reason": reason})
                continue
            seen_number[pid] = source
            seen_tokens[h] = pid
            pieces.append({"id": pid, "split": split_of(recipes.folk_split_key(r["title"], pid)), "title": r["title"],
                           "collection": u["collection"], "source": source,
                           "time_signature": r["meta"]["time_signature"], "pickup": r["meta"]["pickup"],
                           "notes": int(len(r["arrays"]["pitch"])), "tokens": int(len(r["tokens"])),
                           "rounded": r["meta"]["rounded"], "chords": r["meta"]["chords"]})
            arrays.append(r["arrays"])
            tokens.append(r["tokens"])
            if limit and len(pieces) >= limit:
                done = True
                break
        if done:
            break
    packed = _pack(arrays)
    packed["tokens"] = np.concatenate(tokens).astype(np.uint8) if tokens else np.zeros(0, np.uint8)
    packed["token_offsets"] = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    index = _common("folk", limit)
    index.update({"parts": ["Melody"],
                  "source": "music21 corpus folders " + " and ".join(f"{c}/" for c in recipes.FOLK_COLLECTIONS) + " (ABC)",
                  "repeats": "expanded (tunes whose repeat marks cannot be expanded are dropped)",
                  "split_key": "normalised title (see course.data.recipes.folk_split_key)",
                  "tokens": "course.music.MelodyVocab() ids (steps_per_quarter=4, max_steps=32), with BOS and EOS",
                  "counts": _counts(pieces, dropped), "pieces": pieces, "dropped": dropped})
    return index, packed


BUILDERS = {"chorales": build_chorales, "folk": build_folk}
