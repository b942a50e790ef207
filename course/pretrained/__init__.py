"""``course.pretrained``: small trained weights for each lesson's main model, shipped with the course.

So that every lesson can show and play a well-trained model at once, without a GPU and without a
download, each entry is two files in this folder:

- ``NAME.safetensors``: the weights (a safe format: no pickle, nothing runs when it is read), stored
  in float16 to keep the repository small; they are loaded back as float32.
- ``NAME.json``: the card: the model's config, the training settings, seed, device, wall time, the
  metrics it reached, and the exact command that made it (``python -m course pretrain NAME``).

::

    from course import pretrained
    pretrained.names()                      # ['melody_lstm', 'poly_lstm', 'poly_nade', ...]
    model = pretrained.load("melody_lstm")  # a MelodyLSTM in eval mode, on course.device() unless device= says
    pretrained.card("melody_lstm")["metrics"]

``python -m course pretrain NAME`` retrains an entry with the lesson's full settings (the recipes
in :mod:`course.pretrained.recipes`, the code path of the lessons' full mode) and writes both files.

Lesson: 03_melody_lstm
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .store import FOLDER, MAX_ENTRY_BYTES, MAX_TOTAL_BYTES, PretrainedError, card_path, weights_path

__all__ = ["names", "card", "load", "weights_path", "card_path", "FOLDER", "MAX_ENTRY_BYTES", "MAX_TOTAL_BYTES",
           "PretrainedError"]


def _recipes() -> dict:
    from .recipes import RECIPES

    return RECIPES


def names() -> list[str]:
    """The entries that have weights in the course (those ``load`` can load)."""
    return sorted(n for n in _recipes() if weights_path(n).is_file() and card_path(n).is_file())


def _known(name: str) -> None:
    if not isinstance(name, str) or name not in _recipes():
        raise PretrainedError(f"No pretrained model called {name!r}; the course has: {', '.join(sorted(_recipes()))}.")


def card(name: str, folder: str | Path | None = None) -> dict:
    """The card of entry ``name``: config, settings, seed, device, time, metrics, command."""
    _known(name)
    path = card_path(name, folder)
    try:
        out = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PretrainedError(f"The pretrained model {name!r} has no card ({path.name}); "
                              f"retrain it with `python -m course pretrain {name}`.") from None
    except (OSError, ValueError) as e:
        raise PretrainedError(f"The card of the pretrained model {name!r} ({path}) cannot be read ({e}); "
                              f"retrain it with `python -m course pretrain {name}`.") from None
    if not isinstance(out, dict) or "config" not in out or "sha256" not in out:
        raise PretrainedError(f"The card of the pretrained model {name!r} ({path}) is damaged; "
                              f"retrain it with `python -m course pretrain {name}`.")
    return out


def load(name: str, device=None, folder: str | Path | None = None):
    """Entry ``name`` as a model in eval mode, on ``device`` (default: ``course.device()``, quietly).

    The weights file is checked against the card's SHA-256 first, so a damaged or swapped file
    gives a clear error instead of a model that plays noise.
    """
    import torch
    from safetensors.torch import load_file

    from ..runtime import device as pick_device

    info = card(name, folder)
    path = weights_path(name, folder)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PretrainedError(f"The weights of the pretrained model {name!r} are missing ({path.name}); "
                              f"retrain them with `python -m course pretrain {name}`.") from None
    if hashlib.sha256(raw).hexdigest() != info["sha256"]:
        raise PretrainedError(f"The weights file of {name!r} ({path.name}) does not match its card (damaged, "
                              f"or from another run); restore it with git, or `python -m course pretrain {name}`.")
    try:
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - safetensors' own errors for a truncated or foreign file
        raise PretrainedError(f"The weights file of {name!r} cannot be read ({type(e).__name__}).") from None
    model = _recipes()[name].build(info["config"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise PretrainedError(f"The weights of {name!r} do not fit its model ({str(e).splitlines()[0][:200]}).") \
            from None
    dev = torch.device(device) if device is not None else pick_device(verbose=False)
    return model.to(dev).eval()
