"""``course.listen``: everything a person hears or sees.

- hear: :func:`synthesize` (music -> NumPy audio), :func:`play` (an audio player),
  :class:`Player` (audio + piano roll + MIDI download), :class:`Sampler` (sliders around
  any ``generate(temperature, length, seed)``), :class:`ABTest` (blind listening test)
- see: :func:`plot_pianoroll`, :func:`show_score` / :func:`score_svg` (sheet music as SVG),
  :func:`plot_attention`, :func:`plot_training`, :class:`LivePlot`, :func:`plot_samples` and
  :class:`LiveSamples` (a GAN's samples over the data's), :func:`plot_bars`, :class:`LiveBars` and
  :class:`BarScrubber` (a music GAN's bars while it trains, and a slider through them afterwards)
- play along: :class:`CallAndResponse` (an on-screen keyboard; a model answers each phrase you play)

Every function accepts what ``course.music.read_midi`` returns (a ``Music``) and anything
else ``course.music.as_music`` understands. The only layer that imports IPython and
ipywidgets; both, and matplotlib, load on first use, so ``import course.listen`` is quick.

Lesson: 00_welcome
"""
from __future__ import annotations

import importlib

# public name -> submodule that defines it
_EXPORTS = {
    "synthesize": "synth", "backend_name": "synth", "fluidsynth_available": "synth",
    "play": "player",
    "Player": "widgets", "Sampler": "widgets",
    "ABTest": "abtest",
    "plot_pianoroll": "plots", "plot_attention": "plots", "plot_training": "plots",
    "LivePlot": "live",
    "show_score": "score", "score_svg": "score", "Score": "score",
    "AttentionExplorer": "attention",
    "LiveSamples": "gan", "plot_samples": "gan",
    "bars_to_music": "bars", "plot_bars": "bars", "LiveBars": "bars", "BarScrubber": "bars",
    "CallAndResponse": "keyboard",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'course.listen' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
