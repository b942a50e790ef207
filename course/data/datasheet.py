"""The datasheet ``datasets/README.md``, written by the build from the files it has just made.

Counts, sizes and checksums come from the files, so the datasheet cannot drift from them.

Lesson: 01_music_as_data
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .store import SPLITS, file_sha256, read_arrays, read_index

__all__ = ["write_datasheet", "WHY"]

# what each drop code in NAME.json means
WHY = {
    "encoding": "a second encoding (Humdrum .krn) of a chorale that is also in MusicXML",
    "parts": "not four voices: instruments besides the choir, five voices, or a keyboard piece",
    "grid": "notes shorter than a 16th note (32nd-note ornaments), which a 16th-note grid cannot hold",
    "voices": "the parts are not in soprano, alto, tenor, bass order",
    "version": "another version (e.g. Weimar and Leipzig) of a BWV movement that is already kept",
    "duplicate": "exactly the same notes as a piece that is already kept",
    "number": "an O'Neill's number that is already kept (the collection's files overlap)",
    "repeats": "repeat marks that cannot be played out (an expansion that would more than double the tune)",
    "unreadable": "music21 cannot read or convert the encoding",
    "empty": "no notes",
}

_INTRO = """# Data sets

Two data sets built only from music that ships inside an installed package: the corpus
bundled with **music21 {music21}**. Nothing is downloaded at run time. The files here are
what the notebooks load; loading one takes a fraction of a second and never parses the corpus.

```python
from course import data
chorales = data.load("chorales", "train")      # a list-like of Music (4 parts, 16th-note grid)
rolls = data.pianorolls("chorales", "train", steps_per_quarter=1)   # uint8 arrays (T, 88)
tunes = data.load("folk", "train")             # folk tunes as Music (one part)
tokens = data.melody_tokens("train")           # the same tunes as course.music.MelodyVocab ids
```

## Rebuilding

    python -m course data build                 # both sets, a few minutes on 2 cores
    python -m course data build --only chorales --limit 5 --out /tmp/check   # a quick partial build

The build is deterministic: pieces are processed in a fixed order, nothing depends on time,
randomness or the machine, and the `.npz` files are zip archives written with fixed dates.
With the same music21 version it rebuilds these files bit for bit. A build with `--limit N`
makes exactly the first N pieces of the full build, which is how `tests/test_data.py` checks
the committed files. The SHA-256 of every array is also recorded in each JSON index; those
do not depend on the compressor, so they are the check to use across zlib versions.
"""

_CONVENTIONS = """## Conventions (both sets)

- **Time** in 16th-note steps (`steps_per_quarter = 4`); a note sounds on steps `start` to `end - 1`.
- **Tempo**: every piece is timed at **120 quarter notes per minute**. The encodings carry no
  usable tempo, and at 120 a step is exactly 0.125 s, so seconds and steps convert without
  rounding (`course.music.with_tempo` plays a piece slower or faster).
- **Velocity** 80 for every note (the encodings carry no dynamics).
- **Pitch**: MIDI numbers (60 = middle C). All notes lie inside the 88 piano keys (21-108).
- **Splits**: 80/10/10 train/valid/test, fixed by a hash of each piece's split key
  (`course.data.split_of`: the first 8 bytes of SHA-256(key) modulo 100; below 80 train,
  below 90 valid, else test). Python's `hash()` is not used: it changes between runs.
  The split is stored with every piece in the JSON index.
"""

_CHORALES = """## `chorales`: Bach chorales (lessons 00, 01, 04, 08, 09)

**Source**: music21 corpus folder `bach/`, the four-part chorale harmonisations of
J. S. Bach ({n_files} files: MusicXML, and Humdrum `.krn` for three of them). Order: Riemenschneider's 371 chorales in his numbering
(music21's catalogue `corpus.chorales.ChoraleListRKBWV`), each file once at its first number,
then the folder's other files by BWV number.

**Selection**: a file is kept if music21 reads it, it has exactly four parts (soprano, alto,
tenor, bass, highest first), every note lies on the 16th-note grid, and it is not a second
encoding, a second version of the same BWV movement, or a note-for-note copy of a chorale
already kept. Ties are merged into single notes; grace notes are left out.

**Repeats are not expanded**: every written note appears once. {n_repeat} kept chorales carry
repeat signs (almost always the opening phrases sung twice); none has first and second endings,
so the written notes are a coherent piece. music21 also fails to expand the repeat marks of
some encodings (`bwv277.krn`), so not expanding treats every piece the same way.

**Identifiers**: `id` is the corpus file name (`"bwv269"`); `bwv` the BWV number; `riemenschneider`
the chorale's numbers in Riemenschneider's collection (empty where music21's catalogue has none;
a few harmonisations are printed twice in that collection and so have two); `title` the
hymn title from the same catalogue.

**Parts**: Soprano, Alto, Tenor, Bass (`part` 0..3). Pitch range {lo}..{hi}.
Metres: {metres}. {n_pickup} chorales begin with an upbeat (`pickup`: in steps in the index, in quarter notes on a loaded `Music`).

{counts}

Dropped files:

{dropped}

**Known issues**: fermatas are not lengthened (the notes keep their written length); two pieces
change metre and record only the first time signature; the split is by file, so two different
harmonisations of the same hymn melody can land in different splits; music21's catalogue names
`bwv18.5-l` for Riemenschneider No. 126, which the corpus stores as `bwv18.5-lz` (read as that file).
"""

_FOLK = """## `folk`: folk tunes (lessons 03, 06, 09)

**Source**: two collections of traditional dance tunes and airs in music21's corpus, as ABC:
`ryansMammoth/` (*Ryan's Mammoth Collection*, Boston 1883; one tune per file) and
`oneills1850/` (*O'Neill's Music of Ireland*, Chicago 1903, "1850 melodies"; files of many tunes
whose ranges overlap). Order: Ryan's files by name, then O'Neill's files by name, tunes in file
order. (The corpus's Essen folk song collection was left out: its licence file restricts it to
non-commercial use within music21.)

**Processing**: repeats are played out, so a tune is heard as a fiddler plays it: bar by bar,
following the repeat barlines and numbered endings (`course.music.corpus`; music21's own
`expandRepeats` only where that does not apply, such as da capo or segno signs). ABC tunes often mark only the end
of a repeated section, `:|`, meaning "from the start of this section"; music21 reads that as
"from the very beginning" (a nine-part jig grew to 50,000 notes), so the missing start marks are
added first, and an expansion that more than doubles a tune counts as failed. Then the tune
is quantized to 16th notes (`course.music.quantize`), made monophonic (`course.music.monophonic`:
the highest note of a double stop), and tokenized with `course.music.to_melody_tokens` and the
default `MelodyVocab()` (16th-note grid, durations up to 32 steps, BOS and EOS). The stored notes
are exactly the ones the tokens encode: `to_melody_tokens(data.load("folk", s)[i])` equals
`data.melody_tokens(s)[i]`.

**Selection**: a tune is dropped if music21 cannot read it, its repeats cannot be played out,
it has no notes, it is an O'Neill's number already kept, or its tokens equal those of a tune
already kept.

**Identifiers**: `id` is `oneills1850/<O'Neill's number>` or `ryansMammoth/<file name>`;
`source` the corpus file (and `#<tune number>` inside a file of many tunes); `title` the ABC title.

**Splits** use the normalised title as the key (without Ryan's " -- Reel"-style suffix, lower
case, letters and digits only, a leading "the" removed; `course.data.recipes.folk_split_key`), so versions of one tune that both
collections print under the same title fall into the same split.

Pitch range {lo}..{hi}. Metres: {metres}. Tokens per tune: median {tok_median}, max {tok_max}.
Tunes per collection: {per_collection}.

{counts}

Dropped tunes ({n_dropped}; each one, with its reason, is listed in `folk.json`):

{dropped}

**Known issues**: {n_rounded} tunes have notes off the 16th-note grid (mostly triplets), rounded
to it; {n_chords} tunes had double stops reduced to their top note; grace notes and ornament
signs (rolls, cuts) are not played; the fixed tempo of 120 is slow for reels and hornpipes;
both collections contain some of the same tunes in different transcriptions and under
different titles, which the title-based split does not catch.
"""

_LICENCE = """## Licence and provenance

- **The music** is in the public domain: Bach's chorale harmonisations (Bach died in 1750) and
  traditional tunes as printed in 1883 (Ryan's) and 1903 (O'Neill's).
- **The encodings** come from music21's corpus. music21 itself is BSD-3-Clause; its corpus
  licence (`music21/corpus/license.txt` in the installed package) says the encodings are
  distributed "with the permission of the encoders (and, where needed, the composers or
  arrangers) and where permitted under United States copyright law", that "some encodings
  included in the corpus may not be used for commercial uses or have other restrictions:
  please see the licenses embedded in individual compositions or directories", and that to the
  best of its authors' knowledge each piece "is either out of copyright in the United States or
  is licensed for use, though there may be restrictions on commercial use". The folders used
  here (`bach/`, `ryansMammoth/`, `oneills1850/`) have no licence file of their own and the
  files embed no licence; the ABC files name their volunteer transcribers (`Z:` lines).
- **These files** are derived from those encodings (note lists and tokens only) and are shared
  on the same terms: free for teaching and research; check the terms above before any
  commercial use.
"""

_FORMAT = """## File format

`NAME.npz` (read with `numpy.load`): the notes of all pieces back to back, sorted by
(start, part, pitch) within a piece: `pitch` (uint8), `start` and `end` (int32, steps),
`part` (uint8); `note_offsets` (int64, one more than the number of pieces): piece `i` is
`note_offsets[i]:note_offsets[i+1]`. `folk.npz` also has `tokens` (uint8 MelodyVocab ids) and
`token_offsets` (int64) in the same layout.

`NAME.json`: the build settings (`build.music21`, `qpm`, `steps_per_quarter`, `velocity`, `parts`),
`counts`, `arrays` (dtype, shape and SHA-256 of every array), `pieces` (one line per piece, in
file order: `id`, `split`, `title`, `source`, `time_signature`, `pickup`, `notes`, ...) and
`dropped` (`source`, `id`, `why`, `reason`). Drop codes:

{why}

Polyphonic benchmark sets (JSB Chorales, Nottingham, MuseData, Piano-midi.de, as `.mat` files)
are not part of this folder; `course.data.load_polyphonic_benchmark(path)` reads them from a
path you give.
"""


def _counts_table(index: dict) -> str:
    c = index["counts"]
    head = "| split | " + " | ".join(SPLITS) + " | all |\n|---|" + "---:|" * (len(SPLITS) + 1)
    return head + "\n| pieces | " + " | ".join(str(c[s]) for s in SPLITS) + f" | {c['all']} |"


def _metres(index: dict) -> str:
    m = Counter(f"{a}/{b}" for a, b in (p["time_signature"] for p in index["pieces"]))
    return ", ".join(f"{k} ({v})" for k, v in sorted(m.items(), key=lambda kv: (-kv[1], kv[0])))


def _range(arrays: dict) -> tuple:
    p = arrays["pitch"]
    return (int(p.min()), int(p.max())) if len(p) else (0, 0)


def _chorales(index: dict, arrays: dict) -> str:
    rows = ["| file | why |", "|---|---|"] + [f"| `{d['source']}` | {d['reason']} |" for d in index["dropped"]]
    lo, hi = _range(arrays)
    n_files = len({p["source"] for p in index["pieces"]} | {d["source"] for d in index["dropped"]})
    return _CHORALES.format(n_files=n_files, n_repeat=sum(p["repeat_marks"] for p in index["pieces"]),
                            lo=lo, hi=hi, metres=_metres(index), n_pickup=sum(p["pickup"] > 0 for p in index["pieces"]),
                            counts=_counts_table(index), dropped="\n".join(rows))


def _folk(index: dict, arrays: dict) -> str:
    lo, hi = _range(arrays)
    toks = [p["tokens"] for p in index["pieces"]] or [0]
    by_why = Counter(d["why"] for d in index["dropped"])
    dropped = "\n".join(["| why | tunes | meaning |", "|---|---:|---|"] + [
        f"| `{k}` | {v} | {WHY.get(k, k)} |" for k, v in sorted(by_why.items(), key=lambda kv: (-kv[1], kv[0]))])
    per = Counter(p["collection"] for p in index["pieces"])
    return _FOLK.format(lo=lo, hi=hi, metres=_metres(index), tok_median=int(np.median(toks)), tok_max=max(toks),
                        per_collection=", ".join(f"{k} {v}" for k, v in sorted(per.items())),
                        counts=_counts_table(index), dropped=dropped, n_dropped=len(index["dropped"]),
                        n_rounded=sum(p["rounded"] for p in index["pieces"]),
                        n_chords=sum(p["chords"] for p in index["pieces"]))


def write_datasheet(folder: Path) -> Path:
    """Write ``README.md`` in ``folder`` for the data sets found there; returns its path."""
    folder = Path(folder)
    found = {name: read_index(folder / f"{name}.json") for name in ("chorales", "folk")
             if (folder / f"{name}.json").exists() and (folder / f"{name}.npz").exists()}
    versions = sorted({ix["build"]["music21"] for ix in found.values()})
    parts = [_INTRO.format(music21=", ".join(versions) or "?")]
    partial = [f"`{n}` (first {ix['counts']['all']} pieces only)" for n, ix in found.items() if ix["build"]["partial"]]
    if partial:
        parts.append("**This is a partial build**: " + ", ".join(partial) + ".\n")
    rows = ["## Files", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    for name in found:
        for suffix in (".npz", ".json"):
            f = folder / f"{name}{suffix}"
            rows.append(f"| `{f.name}` | {f.stat().st_size} | `{file_sha256(f)}` |")
    parts.append("\n".join(rows) + "\n")
    parts.append(_CONVENTIONS)
    if "chorales" in found:
        parts.append(_chorales(found["chorales"], read_arrays(folder / "chorales.npz")))
    if "folk" in found:
        parts.append(_folk(found["folk"], read_arrays(folder / "folk.npz")))
    parts.append(_LICENCE)
    parts.append(_FORMAT.format(why="\n".join(f"- `{k}`: {v}" for k, v in WHY.items())))
    path = folder / "README.md"
    path.write_text("\n".join(parts), encoding="utf-8", newline="\n")
    return path
