"""course.music: every to_x/from_x pair round-trips, and bad input raises a CourseError."""
import io

import mido
import numpy as np
import pretty_midi
import pytest

import course
from course import music
from course.music import Music, Note, Part


def melody(qpm=120.0):
    # C4 D4 E4 (eighths) rest F4 (half) on a 1/4-quarter grid, in seconds at 120 qpm
    q = 60.0 / qpm
    notes = [Note(60, 0, 0.5 * q), Note(62, 0.5 * q, q), Note(64, q, 1.5 * q), Note(65, 2 * q, 4 * q)]
    return Music(notes=tuple(notes), qpm=qpm)


def chord_piece():
    notes = [Note(60, 0.0, 1.0, 90, 0), Note(64, 0.0, 1.0, 70, 1), Note(67, 0.5, 1.5, 60, 1), Note(72, 1.0, 2.0, 100, 0)]
    return Music(notes=tuple(notes), qpm=120.0, parts=(Part("upper", 0), Part("lower", 41)), title="t")


@pytest.fixture(scope="module")
def chorale():
    import music21

    return music.from_music21(music21.corpus.parse("bach/bwv269"))


def midi_bytes(build) -> bytes:
    mf = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mf.tracks.append(track)
    build(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


# ---------------------------------------------------------------- the representation
def test_music_is_sorted_immutable_and_validated():
    m = Music(notes=(Note(64, 1.0, 2.0), Note(60, 0.0, 1.0)))
    assert [n.pitch for n in m] == [60, 64]
    with pytest.raises(Exception):
        m.qpm = 90
    for bad in [Note(128, 0, 1), Note(60, 1.0, 1.0), Note(60, -1.0, 1.0), Note(60, 0, 1, 200)]:
        with pytest.raises(course.CourseError):
            Music(notes=(bad,))
    with pytest.raises(course.CourseError):
        Music(notes=(Note(60, 0, 1, 80, 3),))
    with pytest.raises(course.CourseError, match="tempo"):
        Music(qpm=0.001)


def test_from_arrays_and_arrays_agree():
    m = chord_piece()
    a = m.arrays()
    m2 = Music.from_arrays(a["pitch"], a["start"], a["end"], a["velocity"], a["part"], parts=m.parts, qpm=m.qpm, title="t")
    assert m2 == m


def test_part_selection_and_steps():
    m = chord_piece()
    lower = m.part(1)
    assert [n.pitch for n in lower] == [64, 67] and lower.parts == (Part("lower", 41),)
    s, e = m.steps(4)
    assert s.tolist() == [0, 0, 4, 8] and e.tolist() == [8, 8, 12, 16]
    with pytest.raises(course.CourseError):
        m.part(5)


# ---------------------------------------------------------------- round trips
def test_midi_round_trip_bytes_path_and_prettymidi(tmp_path):
    m = chord_piece()
    data = music.to_midi(m)
    back = music.from_midi(data)
    assert [(n.pitch, n.velocity, n.part) for n in back] == [(n.pitch, n.velocity, n.part) for n in m]
    np.testing.assert_allclose([n.start for n in back], [n.start for n in m], atol=1e-3)
    np.testing.assert_allclose([n.end for n in back], [n.end for n in m], atol=1e-3)
    assert back.qpm == pytest.approx(120.0) and [p.program for p in back.parts] == [0, 41]
    path = music.write_midi(m, tmp_path / "sub" / "x.mid")
    assert music.read_midi(path).notes == back.notes
    assert music.read_midi(str(path)).title == "x"
    assert music.from_pretty_midi(music.to_pretty_midi(m)).notes == back.notes
    assert music.read_midi(pretty_midi.PrettyMIDI(str(path))).notes == back.notes


def test_music21_round_trip(chorale):
    back = music.from_music21(music.to_music21(chorale))
    assert len(back) == len(chorale)
    assert [(n.pitch, n.part) for n in back] == [(n.pitch, n.part) for n in chorale]
    np.testing.assert_allclose([n.start for n in back], [n.start for n in chorale], atol=1e-6)
    np.testing.assert_allclose([n.end for n in back], [n.end for n in chorale], atol=1e-6)


def test_upbeat_is_kept_validated_and_shown(chorale):
    """BWV 269 starts with a one-beat upbeat in 3/4: its bar lines fall at beats 1, 4, 7, ..."""
    assert chorale.pickup == 1.0 and chorale.quarters_per_bar == 3.0 and "upbeat 1 quarter" in repr(chorale)
    np.testing.assert_allclose(chorale.bar_lines(4.0), [0.5, 2.0, 3.5])      # seconds at 120 qpm
    assert melody().pickup == 0.0 and "upbeat" not in repr(melody())
    np.testing.assert_allclose(melody().bar_lines(4.0), [2.0, 4.0])
    assert Music(time_signature=(3, 4), pickup=3.0).pickup == 0.0          # a whole bar is no upbeat
    assert Music(time_signature=(4, 4), pickup=5.0).pickup == 1.0
    for bad in (-1, float("nan"), "one"):
        with pytest.raises(course.CourseError, match="pickup"):
            Music(pickup=bad)


def test_upbeat_survives_music21_musicxml_and_trim(chorale, tmp_path):
    import music21

    from course.music.m21 import pickup_quarters

    score = music.to_music21(chorale)
    first, second = list(score.parts[0].getElementsByClass(music21.stream.Measure))[:2]
    assert (first.number, float(first.duration.quarterLength), first.paddingLeft) == (0, 1.0, 2.0)
    assert [n.nameWithOctave for n in first.notes] == ["G4"]                # Bach's upbeat
    assert [(n.nameWithOctave, float(n.quarterLength)) for n in second.notes] == [("G4", 2.0), ("D5", 1.0)]
    back = music.from_music21(score)
    assert back.pickup == 1.0
    np.testing.assert_allclose([n.start for n in back], [n.start for n in chorale], atol=1e-6)
    path = score.write("musicxml", fp=str(tmp_path / "bwv269.musicxml"))
    assert pickup_quarters(music21.converter.parse(path)) == 1.0
    q = chorale.seconds_per_quarter
    assert music.trim(chorale, 0.0, 4.0).pickup == 1.0          # from the start: the same upbeat
    assert music.trim(chorale, 4 * q, 10.0).pickup == 0.0       # from a bar line: none
    assert music.trim(chorale, 5 * q, 10.0).pickup == 2.0       # a beat into a bar: two beats to the next line
    assert music.transpose(chorale, 2).pickup == 1.0 and music.with_tempo(chorale, 60).pickup == 1.0


@pytest.mark.parametrize("pickup, metre", [(1.0, (3, 4)), (0.5, (6, 8)), (1.5, (6, 8)), (2.0, (4, 4)), (0.0, (4, 4))])
def test_upbeat_survives_midi(pickup, metre):
    """MIDI marks an upbeat with a short first bar in a metre of its own (1/4, then 3/4)."""
    piece = Music(notes=((60, 0.0, 0.25), (62, 0.25, 1.0)), time_signature=metre, pickup=pickup)
    back = music.read_midi(music.to_midi(piece))
    assert (back.pickup, back.time_signature) == (pickup, metre)
    assert len(music.to_pretty_midi(piece).time_signature_changes) == (2 if pickup else 1)


def test_music21_ties_merge_and_repeats():
    import music21

    s = music21.stream.Part()
    a = music21.note.Note("C4", quarterLength=1.0)
    b = music21.note.Note("C4", quarterLength=1.0)
    a.tie, b.tie = music21.tie.Tie("start"), music21.tie.Tie("stop")
    s.append([a, b])
    m = music.from_music21(s)
    assert len(m) == 1 and m.notes[0].duration == pytest.approx(1.0)  # two tied quarters at 120 qpm = 1 s
    # bwv277's repeat marks make music21's expandRepeats fail: it still converts
    m277 = music.from_music21(music21.corpus.parse("bach/bwv277"))
    assert len(m277) > 100 and len(m277.parts) == 4


def test_pianoroll_round_trip(chorale):
    for spq in (1, 2, 4, 12):
        roll = music.to_pianoroll(chorale, spq)
        assert roll.dtype == np.uint8 and roll.shape[1] == 88
        again = music.to_pianoroll(music.from_pianoroll(roll, spq, qpm=chorale.qpm), spq)
        np.testing.assert_array_equal(again, roll)
    m = music.quantize(melody(), 4)
    back = music.from_pianoroll(music.to_pianoroll(m, 4), 4, qpm=m.qpm)
    assert back.notes == tuple(n._replace(velocity=80) for n in m.notes)


def test_pianoroll_range_and_errors():
    m = Music(notes=(Note(10, 0, 1),))
    with pytest.raises(course.CourseError, match="range"):
        music.to_pianoroll(m)
    assert music.to_pianoroll(m, out_of_range="drop").sum() == 0
    assert music.to_pianoroll(m, low=0, high=127)[:, 10].sum() == 8  # 1 s = 2 quarters = 8 steps
    with pytest.raises(course.CourseError):
        music.from_pianoroll(np.zeros(5))
    with pytest.raises(course.CourseError):
        music.to_pianoroll(m, steps_per_quarter=0)


def test_melody_tokens_round_trip():
    vocab = music.MelodyVocab()
    m = music.quantize(melody(), 4)
    tokens = music.to_melody_tokens(m, vocab)
    assert vocab.names(tokens) == ["BOS", "C4", "d2", "D4", "d2", "E4", "d2", "REST", "d2", "F4", "d8", "EOS"]
    assert music.from_melody_tokens(tokens, vocab, strict=True).notes == m.notes
    long = Music(notes=(Note(60, 0, 50.0),), qpm=120)   # 400 steps: split over several duration tokens
    t = music.to_melody_tokens(long, vocab)
    assert music.from_melody_tokens(t, vocab).notes[0].end == pytest.approx(50.0)


def test_melody_tokens_errors_and_lenient_decoding():
    with pytest.raises(course.CourseError, match="overlapping"):
        music.to_melody_tokens(chord_piece())
    mono = music.monophonic(chord_piece())
    assert music.to_melody_tokens(mono)[0] == music.MelodyVocab.BOS
    v = music.MelodyVocab()
    junk = [v.BOS, v.dur0, v.pitch(60), v.pitch(62), v.dur0 + 3, v.EOS, v.pitch(70)]
    m = music.from_melody_tokens(junk, v)
    assert [n.pitch for n in m] == [60, 62]
    with pytest.raises(course.CourseError):
        music.from_melody_tokens(junk, v, strict=True)
    with pytest.raises(course.CourseError):
        music.from_melody_tokens([9999], v)


def test_frame_tokens_round_trip_and_frame_index(chorale):
    roll = music.to_pianoroll(chorale, 2)
    tokens = music.to_frame_tokens(roll)
    np.testing.assert_array_equal(music.from_frame_tokens(tokens), roll)
    idx = music.frame_index(tokens)
    body = idx[1:-1]
    # each frame's tokens: its active keys plus one FRAME token
    np.testing.assert_array_equal(np.bincount(body), roll.sum(axis=1) + 1)
    empty = np.zeros((3, 88), dtype=np.uint8)
    np.testing.assert_array_equal(music.from_frame_tokens(music.to_frame_tokens(empty)), empty)


def test_text_round_trip_and_pitch_names():
    m = music.from_text("E4 G4:0.5 r:0.5 A4:2 Bb3 F#5")
    assert [n.pitch for n in m] == [64, 67, 69, 58, 78]
    assert music.from_text(music.to_text(m)).notes == m.notes
    assert music.parse_pitch("B-4") == 70 and music.pitch_name(61) == "C#4"
    for bad in ["", "H4", "E4:x", "C4:-1"]:
        with pytest.raises(course.CourseError):
            music.from_text(bad)


def test_transforms_return_copies():
    m = chord_piece()
    up = music.transpose(m, 5)
    assert [n.pitch for n in up] == [n.pitch + 5 for n in m] and m.notes[0].pitch == 60
    with pytest.raises(course.CourseError):
        music.transpose(m, 100)
    with pytest.raises(course.CourseError):
        music.transpose(m, 0.5)
    drums = m.replace(parts=(Part("d", 0, True), Part("lower", 41)))
    assert music.transpose(drums, 2).notes[0].pitch == 60
    off = Music(notes=(Note(60, 0.13, 0.61),))
    q = music.quantize(off, 4)
    assert (q.notes[0].start, q.notes[0].end, q.steps_per_quarter) == (0.125, 0.625, 4) and off.steps_per_quarter is None
    t = music.trim(m, 0.5, 1.5)
    assert t.duration == pytest.approx(1.0) and all(n.start >= 0 for n in t)
    slow = music.with_tempo(m, 60)
    assert slow.duration == pytest.approx(2 * m.duration)


def test_as_music_accepts_everything(chorale, tmp_path):
    path = music.write_midi(chorale, tmp_path / "c.mid")
    import music21

    for x in [chorale, list(chorale.notes), path, path.read_bytes(), music.to_pretty_midi(chorale),
              music21.corpus.parse("bach/bwv269"), music.to_pianoroll(chorale)]:
        assert len(music.as_music(x)) > 100
    import torch

    assert len(music.as_music(torch.tensor(music.to_pianoroll(chorale)))) > 100
    for bad in [42, [], np.zeros((3, 7)), {"a": 1}]:
        with pytest.raises(course.CourseError):
            music.as_music(bad)


# ---------------------------------------------------------------- bad input, as users feed it
def test_not_a_midi_file(tmp_path):
    p = tmp_path / "song.mid"
    p.write_text("<?xml version='1.0'?><score-partwise/>")
    with pytest.raises(course.CourseError, match="not a MIDI file"):
        music.read_midi(p)
    with pytest.raises(course.CourseError, match="WAV"):
        music.read_midi(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(course.CourseError, match="No such file"):
        music.read_midi(tmp_path / "missing.mid")
    with pytest.raises(course.CourseError, match="folder"):
        music.read_midi(tmp_path)
    with pytest.raises(course.CourseError):
        music.read_midi(3.5)


def test_empty_and_truncated(tmp_path):
    with pytest.raises(course.CourseError, match="empty"):
        music.read_midi(b"")
    good = music.to_midi(chord_piece())
    for cut in (4, 14, 30, len(good) // 2, len(good) - 3):
        try:
            m = music.read_midi(good[:cut])
        except course.CourseError:
            continue
        # a cut that only loses trailing meta events may still parse: it must be valid music then
        assert isinstance(m, Music) and len(m) > 0


def test_garbage_after_header_never_escapes_as_bare_error():
    rng = np.random.default_rng(0)
    good = music.to_midi(chord_piece())
    for i in range(40):
        data = bytearray(good)
        for j in rng.integers(14, len(data), size=5):
            data[j] = int(rng.integers(0, 256))
        try:
            music.read_midi(bytes(data))
        except course.CourseError:
            pass


def test_no_notes_and_drums_only():
    empty = midi_bytes(lambda t: t.append(mido.MetaMessage("end_of_track", time=0)))
    with pytest.raises(course.CourseError, match="no notes"):
        music.read_midi(empty)

    def drums(t):
        for i in range(8):
            t.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=0 if i == 0 else 240))
            t.append(mido.Message("note_off", channel=9, note=36, velocity=0, time=240))

    data = midi_bytes(drums)
    with pytest.raises(course.CourseError, match="only drum"):
        music.read_midi(data)
    kept = music.read_midi(data, drums=True)
    assert len(kept) == 8 and kept.parts[0].is_drum


def test_absurd_tempo():
    def fast(t):
        t.append(mido.MetaMessage("set_tempo", tempo=1, time=0))
        t.append(mido.Message("note_on", note=60, velocity=90, time=0))
        t.append(mido.Message("note_off", note=60, velocity=0, time=480))

    with pytest.raises(course.CourseError, match="tempo"):
        music.read_midi(midi_bytes(fast))

    def slow(t):
        t.append(mido.MetaMessage("set_tempo", tempo=16_000_000, time=0))
        t.append(mido.Message("note_on", note=60, velocity=90, time=0))
        t.append(mido.Message("note_off", note=60, velocity=0, time=480))

    with pytest.raises(course.CourseError, match="tempo"):
        music.read_midi(midi_bytes(slow))


def test_one_hour_note_reads_and_converts():
    def hour(t):
        t.append(mido.Message("note_on", note=60, velocity=90, time=0))
        t.append(mido.Message("note_off", note=60, velocity=0, time=480 * 2 * 3600))  # 3600 s at 120 qpm

    m = music.read_midi(midi_bytes(hour))
    assert m.duration == pytest.approx(3600.0)
    roll = music.to_pianoroll(m, 4)
    assert roll.shape == (28800, 88) and roll.sum() == 28800
    three_hours = Music(notes=(Note(60, 0.0, 3 * 3600.0),))
    with pytest.raises(course.CourseError, match="time steps"):
        music.to_pianoroll(three_hours, 96)   # 2 million steps: refused instead of filling memory


def test_absurd_length_is_refused():
    def forever(t):
        t.append(mido.Message("note_on", note=60, velocity=90, time=0))
        t.append(mido.Message("note_off", note=60, velocity=0, time=2**27))

    with pytest.raises(course.CourseError, match="ticks|hours"):
        music.read_midi(midi_bytes(forever))


def test_hundred_thousand_notes():
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(80, 40 + i % 40, i * 0.01, i * 0.01 + 0.05) for i in range(100_000)]
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    m = music.read_midi(buf.getvalue())
    assert len(m) == 100_000
    assert music.to_pianoroll(m, 4).shape[0] == 8001


def test_too_many_notes_is_a_clear_error():
    with pytest.raises(course.CourseError, match="more than the course handles"):
        Music.from_arrays(np.full(600_001, 60), np.arange(600_001) * 0.01, np.arange(600_001) * 0.01 + 0.01)
