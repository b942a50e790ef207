"""The shipped pretrained weights: every entry loads, matches its card, stays small, and a damaged or
missing file gives a clear course error; ``course pretrain --quick`` retrains through the same recipe."""
import json
import shutil

import pytest
import torch

from course import pretrained
from course.cli import main
from course.pretrained import PretrainedError, recipes

ENTRIES = sorted(set(recipes.RECIPES) - set(recipes.UNSHIPPED))


def test_every_recipe_has_shipped_weights_and_a_card():
    """Every recipe ships its weights, except those listed as not shipped yet, with the reason."""
    assert pretrained.names() == ENTRIES
    assert set(recipes.UNSHIPPED) <= set(recipes.RECIPES) and all(recipes.UNSHIPPED.values())


@pytest.mark.parametrize("name", ENTRIES)
def test_an_entry_loads_and_matches_its_card(name, one_torch_thread):
    info = pretrained.card(name)
    model = pretrained.load(name, device="cpu")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == info["parameters"]
    again = recipes.check_value(name, model)
    assert again == pytest.approx(info["metrics"]["check"]["value"], rel=1e-3), \
        "the shipped weights no longer give the loss on their card"
    assert info["mode"] == "full" and info["command"] == f"python -m course pretrain {name}"
    for key in ("config", "settings", "seed", "device", "wall_seconds", "metrics", "torch"):
        assert key in info, key


def test_the_weights_stay_small():
    sizes = {n: pretrained.weights_path(n).stat().st_size for n in pretrained.names()}
    assert all(s <= pretrained.MAX_ENTRY_BYTES for s in sizes.values()), sizes
    assert sum(sizes.values()) <= pretrained.MAX_TOTAL_BYTES, sizes


def _copy(name, tmp_path):
    for p in (pretrained.weights_path(name), pretrained.card_path(name)):
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def test_a_damaged_or_missing_file_is_a_clear_error(tmp_path):
    name = "poly_nade"
    folder = _copy(name, tmp_path)
    weights = pretrained.weights_path(name, folder)
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(PretrainedError, match="does not match its card"):
        pretrained.load(name, device="cpu", folder=folder)
    weights.write_bytes(bytes(raw[:100]))
    with pytest.raises(PretrainedError, match="does not match its card"):
        pretrained.load(name, device="cpu", folder=folder)
    weights.unlink()
    with pytest.raises(PretrainedError, match="missing"):
        pretrained.load(name, device="cpu", folder=folder)
    pretrained.card_path(name, folder).write_text("{not json")
    with pytest.raises(PretrainedError, match="cannot be read"):
        pretrained.card(name, folder)
    with pytest.raises(PretrainedError, match="No pretrained model called 'nope'"):
        pretrained.load("nope")


def test_a_card_whose_hash_matches_a_foreign_file_still_fails_cleanly(tmp_path):
    """Weights with the right hash but the wrong shapes (a card edited by hand) do not load silently."""
    name = "poly_lstm"
    folder = _copy(name, tmp_path)
    card = json.loads(pretrained.card_path(name, folder).read_text())
    card["config"]["hidden"] = card["config"]["hidden"] + 1
    pretrained.card_path(name, folder).write_text(json.dumps(card))
    with pytest.raises(PretrainedError, match="do not fit"):
        pretrained.load(name, device="cpu", folder=folder)


@pytest.mark.parametrize("name", sorted(recipes.UNSHIPPED))
def test_an_unshipped_recipe_still_trains_and_loads(name, tmp_path, one_torch_thread):
    info = recipes.run(name, quick=True, device="cpu", folder=tmp_path)
    model = pretrained.load(name, device="cpu", folder=tmp_path)
    assert recipes.check_value(name, model, quick=True) == pytest.approx(info["metrics"]["check"]["value"], rel=1e-4)
    with pytest.raises(PretrainedError):
        pretrained.load(name, device="cpu")                       # nothing shipped under that name


def test_pretrain_quick_retrains_through_the_recipe(tmp_path, capsys, one_torch_thread):
    assert main(["pretrain", "poly_lstm", "--quick", "--out", str(tmp_path)]) == 0
    assert "poly_lstm:" in capsys.readouterr().out
    info = pretrained.card("poly_lstm", tmp_path)
    assert info["mode"] == "quick" and info["command"] == "python -m course pretrain poly_lstm --quick"
    model = pretrained.load("poly_lstm", device="cpu", folder=tmp_path)
    assert recipes.check_value("poly_lstm", model, quick=True) == pytest.approx(info["metrics"]["check"]["value"],
                                                                                rel=1e-4)
    assert main(["pretrain", "no_such_model", "--quick", "--out", str(tmp_path)]) == 1
    assert "No pretrained model called 'no_such_model'" in capsys.readouterr().err
