"""``course.nn``: the reference models the lessons build up to, one file per family.

- ``course.nn.rnn``         RNN, LSTM and GRU cells written from scratch (lesson 02); their one-step
                            formulas in ``course.nn.steps``
- ``course.nn.melody``      an LSTM language model over melody tokens (lesson 03)
- ``course.nn.polyphonic``  piano-roll LSTMs: independent Bernoulli and within-frame autoregressive (NADE, MADE)
                            (lesson 04), and a Transformer over frames with a MADE output (the benchmarks); their
                            batches of whole pieces in ``course.nn.rollbatches``
- ``course.nn.attention``   scaled dot-product attention, masks, multi-head attention, positional encodings (lesson 05)
- ``course.nn.transformer`` a decoder-only music Transformer with a key/value cache (lesson 06); its relative
                            position logits ("skewing") in ``course.nn.relative``
- ``course.nn.gan``         GAN losses, the optimal discriminator and the JS identity, the WGAN-GP gradient penalty,
                            one two-player training loop (lesson 07); its toy models, mixtures of Gaussians and mode
                            counting in ``course.nn.toy_gan``
- ``course.nn.bargan``      lesson 08's music GAN: bars of chorales generated from the bar before (MidiNet-style)
                            (``train_gan``'s checkpoints in ``course.nn.ganstate``)
- ``course.nn.infill``      an in-filling model over four-voice chorales, Coconet-style, with Gibbs sampling
                            (the capstone's harmonizer; lesson 09 is still to be written)

Submodules load on first use.

Lesson: 02_rnn_from_scratch
"""
from __future__ import annotations

import importlib


def __getattr__(name: str):
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError:
        raise AttributeError(f"course.nn has no model family {name!r}") from None
