"""What a reader sees in solutions/ is a trained model's: the stored numbers beat the floors the prose names.

Each test reads a number from a stored output of a solution notebook (as the reader sees it, no
re-execution) and holds it to a floor computed here from the data, or to the comparison the prose
makes. Lesson 04's floor test lives in tests/test_lesson_04.py.
"""
import json
import re

import numpy as np

from course import data, pretrained


def _outputs(repo_root, lesson: str) -> list[str]:
    nb = json.loads((repo_root / "solutions" / f"{lesson}.ipynb").read_text(encoding="utf-8"))
    return ["".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _number(texts: list[str], pattern: str) -> float:
    found = [float(m.group(1)) for t in texts for m in re.finditer(pattern, t)]
    assert found, f"no stored output matches {pattern!r}"
    return found[-1]


def _unigram_floor() -> float:
    """Nats per token of the best model that ignores context: training-token frequencies, on lesson 03's chunks."""
    vocab = data.melody_vocab()
    counts = np.bincount(np.concatenate([t[1:] for t in data.melody_tokens("train")]), minlength=len(vocab)) + 1.0
    logp = np.log(counts / counts.sum())
    targets = np.concatenate([target.numpy() for _, target in data.TokenDataset(data.melody_tokens("valid"), 128)])
    targets = targets[targets != vocab.PAD]
    return float(-logp[targets].mean())


def test_lesson_03_stores_a_trained_lstm_well_below_the_context_free_floor(repo_root):
    stored = _number(_outputs(repo_root, "03_melody_lstm"), r"validation: ([0-9.]+) nats per token")
    floor = _unigram_floor()
    assert floor > 2.5, floor
    assert stored < floor - 1.0, (stored, floor)
    assert abs(stored - pretrained.card("melody_lstm")["metrics"]["valid_nll_per_token"]) < 1e-3


def test_lesson_06_stores_a_transformer_that_beats_the_lstm_as_the_prose_says(repo_root):
    texts = _outputs(repo_root, "06_music_transformer")
    lstm = _number(texts, r"lesson 03 LSTM: ([0-9.]+) nats per token")
    transformer = _number(texts, r"music Transformer: ([0-9.]+) nats per token")
    assert transformer < lstm < _unigram_floor()
    assert abs(transformer - pretrained.card("music_transformer")["metrics"]["valid_nll_per_token"]) < 1e-3


def test_lesson_08_stores_a_gan_closer_to_the_data_than_chance_on_most_statistics(repo_root):
    texts = _outputs(repo_root, "08_music_gan")
    closer = int(_number(texts, r"closer to the data than the random baseline on (\d+) of 6"))
    assert closer >= 4


def test_lesson_09_stores_the_shipped_harmonizer_well_below_a_uniform_guess(repo_root):
    """The stored validation loss is the card's, and the stored NLL of Bach's lower voices beats ln 46 by far."""
    texts = _outputs(repo_root, "09_capstone")
    card = pretrained.card("harmonizer")
    stored = _number(texts, r"validation ([0-9.]+) nats per hidden cell")
    assert abs(stored - card["metrics"]["valid_nll_per_hidden_cell"]) < 1e-3
    uniform = float(np.log(data.VOICE_HIGH - data.VOICE_LOW + 1))
    bach = _number(texts, r"means\): ([0-9.]+) nats per cell")
    assert bach < uniform - 1.5 and abs(bach - card["metrics"]["test_lower_voices_nll_per_cell"]) < 1e-3
