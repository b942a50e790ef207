"""Tests of course.data: the committed data sets, their loaders, the PyTorch helpers and the builder."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course import DataError, data
from course.cli import main as cli_main
from course.data import recipes
from course.data.build import _pack
from course.data.store import array_sha256, file_sha256, read_arrays, read_index, split_of, write_arrays
from course.music import MelodyVocab, to_melody_tokens, to_pianoroll

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / "datasets"
POLYPHONIC = REPO.parent / "shared" / "data" / "polyphonic"


# ---------------------------------------------------------------------------- names, splits, counts
def test_names():
    assert {"chorales", "folk"} <= set(data.names())


@pytest.mark.parametrize("name, minimum", [("chorales", 340), ("folk", 2000)])
def test_splits_partition_the_set(name, minimum):
    everything = data.load(name, "all")
    assert len(everything) >= minimum
    splits = {s: data.load(name, s) for s in ("train", "valid", "test")}
    ids = [i for s in splits.values() for i in s.ids]
    assert len(ids) == len(set(ids)) == len(everything)           # disjoint and complete
    assert set(ids) == set(everything.ids)
    fraction = len(splits["train"]) / len(everything)
    assert 0.7 < fraction < 0.9                                   # about 80/10/10
    assert min(len(s) for s in splits.values()) > 0.05 * len(everything)
    counts = read_index(DATASETS / f"{name}.json")["counts"]
    assert {s: len(v) for s, v in splits.items()} == {s: counts[s] for s in splits}


def test_split_rule_is_fixed_and_recorded():
    # fixed values: the rule must not depend on the run, the machine or PYTHONHASHSEED
    assert [split_of(k) for k in ("bwv269", "bwv10.7", "bwv251", "bwv254", "folk:acacia")] == \
        ["train", "valid", "test", "valid", "train"]
    for p in read_index(DATASETS / "chorales.json")["pieces"]:
        assert p["split"] == split_of(p["id"])
    for p in read_index(DATASETS / "folk.json")["pieces"]:
        assert p["split"] == split_of(recipes.folk_split_key(p["title"], p["id"]))
    code = "from course.data import split_of; print(split_of('bwv10.7'), split_of('bwv251'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, check=True)
    assert out.stdout.split() == ["valid", "test"]


def test_same_title_same_split():
    by_key = {}
    for p in read_index(DATASETS / "folk.json")["pieces"]:
        by_key.setdefault(recipes.folk_split_key(p["title"], p["id"]), set()).add(p["split"])
    assert all(len(s) == 1 for s in by_key.values())
    assert recipes.folk_split_key("Acacia -- Reel", "x") == recipes.folk_split_key("The ACACIA", "y") == "folk:acacia"


# ---------------------------------------------------------------------------- pieces as Music
def test_chorales_are_four_voice_music():
    pieces = data.load("chorales", "train")
    m = pieces[0]
    assert [p.name for p in m.parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert m.qpm == 120 and m.steps_per_quarter == 4 and m.title == pieces.ids[0]
    a = m.arrays()
    assert set(np.unique(a["part"]).tolist()) == {0, 1, 2, 3}
    steps = a["start"] * 8                                       # 0.125 s per 16th step at 120 qpm
    assert np.array_equal(steps, np.round(steps))
    means = [a["pitch"][a["part"] == k].mean() for k in range(4)]
    assert means == sorted(means, reverse=True)
    assert 21 <= a["pitch"].min() and a["pitch"].max() <= 108
    assert pieces[-1].title == pieces.ids[-1]
    assert pieces[pieces.ids[3]].notes == pieces[3].notes


def test_pieces_sequence_behaviour():
    pieces = data.load("chorales", "valid")
    head = pieces[2:5]
    assert isinstance(head, data.Pieces) and len(head) == 3 and head.ids == pieces.ids[2:5]
    assert head[0].notes == pieces[2].notes
    assert len(list(head)) == 3 and [m.title for m in head] == head.ids
    assert len(pieces.info) == len(pieces) and pieces.info[0]["id"] == pieces.ids[0]
    with pytest.raises(IndexError):
        pieces[len(pieces)]
    notes = pieces.notes(0)
    assert notes["start"].dtype == np.int32 and len(notes["pitch"]) == len(pieces[0])


def test_pieces_keep_their_upbeat():
    """The index records each piece's upbeat in steps; the loaded Music has it in quarters."""
    for name in ("chorales", "folk"):
        pieces = data.load(name, "all")
        for piece, info in list(zip(pieces, pieces.info))[:200]:
            assert piece.pickup == (info["pickup"] / piece.steps_per_quarter) % piece.quarters_per_bar
    first = data.load("chorales", "all")[0]
    assert first.title == "bwv269" and first.pickup == 1.0          # one beat before the first bar line
    assert sum(p.pickup > 0 for p in data.load("chorales", "all")) > 100


def test_first_chorale_matches_catalogue():
    info = {p["id"]: p for p in data.load("chorales", "all").info}
    assert info["bwv269"]["riemenschneider"][0] == 1 and info["bwv269"]["bwv"] == "269"
    assert all(p["source"].startswith("bach/") for p in info.values())


def test_folk_tunes_are_melodies_and_match_their_tokens():
    tunes = data.load("folk", "valid")
    tokens = data.melody_tokens("valid")
    assert len(tokens) == len(tunes)
    vocab = data.melody_vocab()
    assert vocab == MelodyVocab()
    for i in (0, 1, len(tunes) // 2, len(tunes) - 1):
        m = tunes[i]
        assert len(m.parts) == 1 and m.steps_per_quarter == 4 and m.qpm == 120
        t = tokens[i]
        assert t.dtype == np.int64 and t[0] == vocab.BOS and t[-1] == vocab.EOS
        assert np.array_equal(to_melody_tokens(m, vocab), t)
        a = m.arrays()
        assert np.all(a["start"][1:] >= a["end"][:-1])           # monophonic


# ---------------------------------------------------------------------------- piano rolls
@pytest.mark.parametrize("spq", [1, 3, 4])
def test_pianorolls_equal_to_pianoroll(spq):
    rolls = data.pianorolls("chorales", "test", steps_per_quarter=spq)
    pieces = data.load("chorales", "test")
    assert len(rolls) == len(pieces)
    for i in range(0, len(pieces), 7):
        expected = to_pianoroll(pieces[i], steps_per_quarter=spq)
        assert rolls[i].dtype == np.uint8 and rolls[i].shape[1] == 88
        assert np.array_equal(rolls[i], expected)


def test_pianorolls_other_ranges():
    full = data.pianorolls("chorales", "valid", steps_per_quarter=4)
    narrow = data.pianorolls("chorales", "valid", steps_per_quarter=4, low=30, high=90)
    assert all(n.shape == (f.shape[0], 61) for n, f in zip(narrow, full))
    assert all(np.array_equal(n, f[:, 30 - 21:90 - 21 + 1]) for n, f in zip(narrow, full))
    with pytest.raises(DataError, match="outside"):
        data.pianorolls("chorales", "valid", low=60, high=72)
    cut = data.pianorolls("chorales", "valid", low=60, high=72, out_of_range="drop")
    assert all(c.shape[1] == 13 for c in cut)
    folk = data.pianorolls("folk", "test", steps_per_quarter=4)
    assert all(r.sum(axis=1).max() == 1 for r in folk[:20])      # one note at a time


# ---------------------------------------------------------------------------- errors
def test_bad_names_and_splits():
    with pytest.raises(DataError, match="chorales, folk"):
        data.load("jazz", "train")
    with pytest.raises(DataError, match="train, valid, test"):
        data.load("chorales", "training")
    with pytest.raises(DataError, match="steps_per_quarter"):
        data.pianorolls("chorales", "train", steps_per_quarter=0)
    with pytest.raises(DataError, match="train, valid, test"):
        data.melody_tokens("dev")


def test_missing_files_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATASETS", str(tmp_path))
    with pytest.raises(DataError, match="data build"):
        data.load("chorales", "train")


def test_loading_needs_neither_torch_nor_music21():
    code = ("import sys, course.data as d; d.load('chorales','train')[0]; d.pianorolls(); d.melody_tokens();"
            "print('torch' in sys.modules, 'music21' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------------------- transposition and datasets
def test_transpose_roll():
    roll = np.zeros((3, 88), dtype=np.uint8)
    roll[0, 10] = roll[1, 40] = roll[2, 80] = 1
    up = data.transpose_roll(roll, 5)
    assert up[0, 15] == up[1, 45] == up[2, 85] == 1 and up.sum() == 3 and roll[0, 10] == 1
    assert np.array_equal(data.transpose_roll(up, -5), roll)
    assert np.array_equal(data.transpose_roll(roll, 0), roll)
    with pytest.raises(DataError, match="off the roll"):
        data.transpose_roll(roll, 8)
    with pytest.raises(DataError, match="off the roll"):
        data.transpose_roll(roll, -11)
    t = data.transpose_roll(torch.as_tensor(roll, dtype=torch.float32), -10)
    assert isinstance(t, torch.Tensor) and t[0, 0] == 1 and t.sum() == 3


def test_pianoroll_dataset_augments_within_range():
    rolls = data.pianorolls("chorales", "valid", steps_per_quarter=4)[:6]
    ds = data.PianoRollDataset(rolls, transpose=(-5, 6), seed=0)
    assert len(ds) == 6
    seen = set()
    for _ in range(8):
        for i in range(len(ds)):
            x = ds[i]
            assert x.dtype == torch.float32 and x.shape == rolls[i].shape
            assert x.sum() == rolls[i].sum()                      # no note lost
            shift = [k for k in range(-5, 7) if torch.equal(x, torch.as_tensor(data.transpose_roll(rolls[i], k),
                                                                                dtype=torch.float32))
                     if k in ds.shifts(i)]
            assert len(shift) == 1
            seen.add(shift[0])
    assert len(seen) > 6                                         # shifts vary
    a = [data.PianoRollDataset(rolls, seed=3)[i] for i in range(6)]
    b = [data.PianoRollDataset(rolls, seed=3)[i] for i in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))           # reproducible for a seed
    plain = data.PianoRollDataset(rolls, transpose=None)
    assert all(torch.equal(plain[i], torch.as_tensor(rolls[i], dtype=torch.float32)) for i in range(6))


def test_pianoroll_dataset_refuses_shifts_off_the_keyboard():
    roll = np.zeros((4, 88), dtype=np.uint8)
    roll[:, 85] = 1                                              # near the top: at most +2
    ds = data.PianoRollDataset([roll], transpose=(-5, 6))
    assert ds.shifts(0) == list(range(-5, 3))
    for _ in range(50):
        assert ds[0].sum() == 4


def test_pianoroll_dataset_crops_and_collates():
    rolls = data.pianorolls("chorales", "valid", steps_per_quarter=4)[:5]
    ds = data.PianoRollDataset(rolls, seq_len=32, seed=1)
    assert all(ds[i].shape == (32, 88) for i in range(5))
    loader = torch.utils.data.DataLoader(data.PianoRollDataset(rolls, transpose=None), batch_size=5,
                                         collate_fn=data.collate)
    batch = next(iter(loader))
    t_max = max(r.shape[0] for r in rolls)
    assert batch.rolls.shape == (5, t_max, 88) and batch.rolls.dtype == torch.float32
    assert batch.lengths.tolist() == [r.shape[0] for r in rolls]
    assert batch.mask.shape == (5, t_max) and batch.mask.sum() == sum(r.shape[0] for r in rolls)
    for b, r in enumerate(rolls):
        assert torch.equal(batch.rolls[b, :r.shape[0]], torch.as_tensor(r, dtype=torch.float32))
        assert batch.rolls[b, r.shape[0]:].sum() == 0
    x, lengths, mask = batch
    assert x is batch.rolls and mask is batch.mask
    with pytest.raises(DataError):
        data.collate([torch.zeros(3, 88), torch.zeros(3, 12)])


def test_token_dataset():
    seqs = [np.arange(1, 11), np.arange(20, 24), np.array([5])]
    ds = data.TokenDataset(seqs, seq_len=4, pad=0)
    # 10 tokens -> 9 targets -> 3 chunks; 4 tokens -> 1 chunk; 1 token -> none
    assert len(ds) == 4
    x, y = ds[0]
    assert x.dtype == torch.int64 and x.tolist() == [1, 2, 3, 4] and y.tolist() == [2, 3, 4, 5]
    assert ds[2][0].tolist() == [9, 10, 0, 0] and ds[2][1].tolist() == [10, 0, 0, 0]
    assert ds[3][0].tolist() == [20, 21, 22, 23] and ds[3][1].tolist() == [21, 22, 23, 0]
    targets = [t for i in range(3) for t in ds[i][1].tolist() if t != 0]
    assert targets == list(range(2, 11))                          # every next token once
    real = data.TokenDataset(data.melody_tokens("test")[:20], seq_len=64)
    xb, yb = next(iter(torch.utils.data.DataLoader(real, batch_size=8)))
    assert xb.shape == yb.shape == (8, 64)
    assert torch.equal(xb[:, 1:], yb[:, :-1])


# ---------------------------------------------------------------------------- the polyphonic benchmark files
def test_polyphonic_benchmark_loader():
    path = POLYPHONIC / "JSB_Chorales.mat"
    if not path.exists():
        pytest.skip("the shared JSB_Chorales.mat is not on this machine")
    sets = data.load_polyphonic_benchmark(path)
    assert {k: len(v) for k, v in sets.items()} == {"train": 229, "valid": 76, "test": 77}
    roll = sets["train"][0]
    assert roll.dtype == np.uint8 and roll.ndim == 2 and roll.shape[1] == 88 and set(np.unique(roll)) <= {0, 1}
    again = data.load_polyphonic_benchmark(POLYPHONIC, "JSB_Chorales")
    assert np.array_equal(again["test"][5], sets["test"][5])
    with pytest.raises(DataError, match="name="):
        data.load_polyphonic_benchmark(POLYPHONIC)


def test_polyphonic_benchmark_missing(tmp_path):
    with pytest.raises(DataError, match="JSB_Chorales.mat"):
        data.load_polyphonic_benchmark(tmp_path / "nowhere.mat")
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(DataError):
        data.load_polyphonic_benchmark(bad)


# ---------------------------------------------------------------------------- the committed files and the builder
@pytest.mark.parametrize("name", ["chorales", "folk"])
def test_committed_files_are_consistent(name):
    index = read_index(DATASETS / f"{name}.json")
    arrays = read_arrays(DATASETS / f"{name}.npz")
    assert sorted(arrays) == sorted(index["arrays"])
    for k, a in arrays.items():
        assert array_sha256(a) == index["arrays"][k]["sha256"]
    # the writer is deterministic: writing the same arrays again gives the committed bytes
    assert file_sha256(DATASETS / f"{name}.npz") == _sha_of_rewrite(arrays)
    readme = (DATASETS / "README.md").read_text(encoding="utf-8")
    for suffix in (".npz", ".json"):
        assert file_sha256(DATASETS / f"{name}{suffix}") in readme
    assert f"{index['counts']['all']} |" in readme
    assert index["build"]["partial"] is False


def _sha_of_rewrite(arrays) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.npz"
        write_arrays(p, arrays)
        return file_sha256(p)


def _first(arrays: dict, index: dict, n: int) -> dict:
    """The arrays of the first n pieces of a committed set, packed as the builder packs them."""
    off = arrays["note_offsets"]
    pieces = [{k: arrays[k][off[i]:off[i + 1]] for k in ("pitch", "start", "end", "part")} for i in range(n)]
    out = _pack(pieces)
    if "tokens" in arrays:
        t = arrays["token_offsets"]
        out["tokens"] = arrays["tokens"][:t[n]]
        out["token_offsets"] = t[:n + 1]
    return out


def test_partial_rebuild_matches_committed_files_bit_for_bit(tmp_path):
    n = 5
    assert cli_main(["data", "build", "--limit", str(n), "--out", str(tmp_path), "--jobs", "1", "--quiet"]) == 0
    for name in ("chorales", "folk"):
        built = read_index(tmp_path / f"{name}.json")
        committed = read_index(DATASETS / f"{name}.json")
        assert built["pieces"] == committed["pieces"][:n]
        assert built["dropped"] == committed["dropped"][:len(built["dropped"])]
        assert built["build"]["music21"] == committed["build"]["music21"]
        prefix = _first(read_arrays(DATASETS / f"{name}.npz"), committed, n)
        rebuilt = read_arrays(tmp_path / f"{name}.npz")
        assert sorted(prefix) == sorted(rebuilt)
        for k in prefix:
            assert prefix[k].dtype == rebuilt[k].dtype and np.array_equal(prefix[k], rebuilt[k]), k
        # same arrays -> same bytes
        assert file_sha256(tmp_path / f"{name}.npz") == _sha_of_rewrite(prefix)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "partial build" in readme and file_sha256(tmp_path / "folk.npz") in readme


def test_corpus_reader_plays_repeats_bar_by_bar(tmp_path):
    from course.music.corpus import read_corpus

    abc = """X:1
T:Endings
M:4/4
L:1/4
K:C
C D E F :| G A B c |1 d e f g :|2 e d c2 |]

X:2
T:Three parts
M:2/4
L:1/4
K:C
C D | C D :| E F | E F :|
G A | G A :|
"""
    path = tmp_path / "tunes.abc"
    path.write_text(abc)
    played = read_corpus(str(path), expand_repeats=True)
    assert [(r["number"], r["title"], r["repeats"]) for r in played] == [(1, "Endings", "expanded"),
                                                                         (2, "Three parts", "expanded")]
    first = played[0]["music"]
    assert [n.pitch for n in first.notes] == [60, 62, 64, 65] * 2 + [67, 69, 71, 72, 74, 76, 77, 79,
                                                                      67, 69, 71, 72, 76, 74, 72]
    starts = [n.start for n in first.notes]
    assert starts == [0.5 * k for k in range(len(starts))]         # one quarter (0.5 s) after another
    # an end mark without a start repeats its own section, not the whole tune
    assert [n.pitch for n in played[1]["music"].notes] == [60, 62] * 4 + [64, 65] * 4 + [67, 69] * 4
    written = read_corpus(str(path))
    assert written[0]["repeats"] == "written" and len(written[0]["music"].notes) == 15


def test_datasheet_is_what_the_build_writes(tmp_path):
    import shutil

    from course.data.datasheet import write_datasheet

    for f in ("chorales.npz", "chorales.json", "folk.npz", "folk.json"):
        shutil.copy(DATASETS / f, tmp_path / f)
    write_datasheet(tmp_path)
    assert (tmp_path / "README.md").read_bytes() == (DATASETS / "README.md").read_bytes()
