"""MIDI files in and out (via pretty_midi), with guards against corrupt or hostile files.

Lesson: 01_music_as_data
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path



from ..errors import MusicError
from ..files import atomic_write
from .core import MAX_NOTES, MAX_QPM, MIN_QPM, Music, Note, Part

__all__ = ["read_midi", "write_midi", "to_midi", "from_midi", "to_pretty_midi", "from_pretty_midi"]

MAX_FILE_BYTES = 64 * 1024 * 1024   # a 64 MB MIDI file is not music, it is a mistake
MAX_TICKS = 50_000_000              # pretty_midi allocates one float per tick


def _source_bytes(source) -> tuple[bytes, str]:
    """Return the raw bytes of a MIDI source and a short name for messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the MIDI data"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise MusicError(f"No such file: {str(path)!r}. Check the path (it is relative to the notebook's folder).")
        if path.is_dir():
            raise MusicError(f"{str(path)!r} is a folder, not a MIDI file.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise MusicError(f"{path.name} is {size / 1e6:.0f} MB; a MIDI file over {MAX_FILE_BYTES // 2**20} MB "
                             "is almost certainly not music.")
        return path.read_bytes(), path.name
    if hasattr(source, "read"):
        data = source.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise MusicError("That MIDI stream is larger than 64 MB; it is almost certainly not music.")
        return bytes(data), "the MIDI stream"
    raise MusicError(f"read_midi takes a path, bytes, a PrettyMIDI or a Music object, not {type(source).__name__}.")


def _check_header(data: bytes, name: str) -> None:
    if len(data) == 0:
        raise MusicError(f"{name} is empty (0 bytes): it is not a MIDI file.")
    if not data.startswith(b"MThd"):
        head = data[:8]
        hint = ""
        if data.lstrip()[:1] in (b"<", b"{"):
            hint = " It looks like text (XML/JSON/HTML); for MusicXML use course.music.from_music21(music21.converter.parse(path))."
        elif data[:4] == b"RIFF":
            hint = " It looks like a WAV audio file; the course reads MIDI (symbolic music), not audio."
        raise MusicError(f"{name} is not a MIDI file: it starts with {head!r} instead of b'MThd'.{hint}")
    if len(data) < 22:
        raise MusicError(f"{name} is truncated: only {len(data)} bytes, too short to hold a MIDI track.")


def _max_tick(data: bytes) -> int:
    import mido

    try:
        mf = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as e:  # mido raises EOFError, OSError, ValueError, KeyError...
        raise MusicError(f"Could not read the MIDI data: it is truncated or corrupt ({type(e).__name__}: {e}).") from None
    most = 0
    count = 0
    for track in mf.tracks:
        t = 0
        for msg in track:
            t += msg.time
            count += msg.type == "note_on"
        most = max(most, t)
    if count > 4 * MAX_NOTES:
        raise MusicError(f"The MIDI data holds {count:,} note events, more than the course handles.")
    return most


def read_midi(source, *, drums: bool = False, title: str | None = None) -> Music:
    """Read a MIDI file into a :class:`Music`.

    Args:
        source: a path, the file's bytes, a file object, a ``pretty_midi.PrettyMIDI`` or a ``Music``.
        drums: keep drum tracks (their notes are percussion sounds, not pitches). Default: drop them.
        title: a label for the piece; defaults to the file name.

    Raises:
        MusicError: not a MIDI file, empty, truncated, no notes, drums only, absurd tempo, too large.
    """
    import pretty_midi

    if isinstance(source, Music):
        return source
    if isinstance(source, pretty_midi.PrettyMIDI):
        return from_pretty_midi(source, drums=drums, title=title or "")
    data, name = _source_bytes(source)
    _check_header(data, name)
    ticks = _max_tick(data)
    if ticks > MAX_TICKS:
        raise MusicError(f"{name} lasts {ticks:,} ticks, far longer than any piece; the file is probably corrupt.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except MusicError:
        raise
    except Exception as e:
        raise MusicError(f"Could not read {name}: it is truncated or corrupt ({type(e).__name__}: {e}).") from None
    if title is None:
        title = Path(name).stem if name not in ("the MIDI data", "the MIDI stream") else ""
    return from_pretty_midi(pm, drums=drums, title=title)


def from_pretty_midi(pm, *, drums: bool = False, title: str = "") -> Music:
    """Convert a ``pretty_midi.PrettyMIDI`` to a :class:`Music` (see :func:`read_midi`)."""
    _, tempi = pm.get_tempo_changes()
    qpm = float(tempi[0]) if len(tempi) else 120.0
    if not (MIN_QPM <= qpm <= MAX_QPM):
        raise MusicError(f"The file's tempo is {qpm:g} quarter notes per minute, which is not plausible "
                         f"(expected {MIN_QPM:g} to {MAX_QPM:g}); the file is probably corrupt.")
    ts, pickup = (4, 4), 0.0
    changes = sorted(pm.time_signature_changes, key=lambda c: c.time)
    if changes:
        ts = (int(changes[0].numerator), int(changes[0].denominator))
        if len(changes) > 1 and changes[0].time <= 0 < changes[1].time:
            # an upbeat written the usual MIDI way: a short first bar in a metre of its own, then the real one
            short = changes[0].numerator * 4.0 / changes[0].denominator
            real = changes[1].numerator * 4.0 / changes[1].denominator
            if 0 < short < real and abs(changes[1].time * qpm / 60.0 - short) < 1e-3:
                ts, pickup = (int(changes[1].numerator), int(changes[1].denominator)), short
    parts, notes, drum_notes = [], [], 0
    for inst in pm.instruments:
        if inst.is_drum and not drums:
            drum_notes += len(inst.notes)
            continue
        k = len(parts)
        parts.append(Part(name=inst.name or "", program=int(inst.program), is_drum=bool(inst.is_drum)))
        for n in inst.notes:
            if n.end > n.start:
                notes.append(Note(int(n.pitch), float(n.start), float(n.end), int(n.velocity), k))
    if not notes:
        if drum_notes:
            raise MusicError(f"This MIDI file has only drum tracks ({drum_notes} drum hits) and no pitched notes. "
                             "Use read_midi(..., drums=True) to keep them.")
        raise MusicError("This MIDI file contains no notes.")
    return Music(notes=tuple(notes), qpm=qpm, time_signature=ts, parts=tuple(parts), title=title, pickup=pickup)


def _upbeat_metre(pickup: float, denominator: int) -> tuple[int, int] | None:
    """The time signature of a bar ``pickup`` quarters long, e.g. 1 quarter -> 1/4, 1.5 -> 3/8."""
    for d in sorted({denominator, 4, 8, 16, 32, 64}):
        if d >= denominator and abs(pickup * d / 4 - round(pickup * d / 4)) < 1e-6 and round(pickup * d / 4) >= 1:
            return int(round(pickup * d / 4)), d
    return None


def to_pretty_midi(music: Music):
    """Convert a :class:`Music` to a ``pretty_midi.PrettyMIDI`` (one instrument per part)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=music.qpm)
    num, den = music.time_signature
    upbeat = _upbeat_metre(music.pickup, den) if music.pickup else None
    if upbeat:       # a short first bar, then the piece's metre: how MIDI files mark an upbeat
        pm.time_signature_changes.append(pretty_midi.TimeSignature(upbeat[0], upbeat[1], 0.0))
        pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, music.pickup * music.seconds_per_quarter))
    else:
        pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    insts = [pretty_midi.Instrument(program=p.program, is_drum=p.is_drum, name=p.name) for p in music.parts]
    for n in music.notes:
        insts[n.part].notes.append(pretty_midi.Note(velocity=max(1, int(n.velocity)), pitch=int(n.pitch),
                                                    start=float(n.start), end=float(n.end)))
    pm.instruments.extend(insts)
    return pm


def to_midi(music: Music, path=None) -> bytes:
    """The Standard MIDI File bytes of ``music``; also written to ``path`` if given."""
    buf = io.BytesIO()
    to_pretty_midi(music).write(buf)
    data = buf.getvalue()
    if path is not None:
        atomic_write(Path(path), data)
    return data


def from_midi(source, **kwargs) -> Music:
    """Inverse of :func:`to_midi`: same as :func:`read_midi`."""
    return read_midi(source, **kwargs)


def write_midi(music: Music, path) -> Path:
    """Write ``music`` as a MIDI file at ``path`` (folders are created); returns the path."""
    if not isinstance(music, Music):
        raise MusicError(f"write_midi takes a Music, not a {type(music).__name__}; "
                         "convert it first with course.music.as_music(...).")
    path = Path(path)
    to_midi(music, path)
    return path




