"""How each pretrained entry is made: the lesson's model, data and full-mode settings, in one place.

A recipe builds its model from a config dict, trains it with :func:`course.train.train` (the loop
every lesson uses) and measures what the card records: the validation (and, where the lesson uses
one, test) NLL, and a ``check``: the NLL on the first batches of the validation split, which the
test suite recomputes from the shipped weights. ``quick=True`` shrinks everything to seconds (for
the tests); the shipped weights always come from ``quick=False``.

Lesson: 03_melody_lstm
"""
from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from .. import data, train
from ..nn import bargan, gan, infill, melody, polyphonic, transformer
from ..runtime import seed_everything
from .store import save

__all__ = ["Recipe", "RECIPES", "MELODY_LSTM", "POLY", "POLY_LSTM", "POLY_NADE", "MUSIC_TRANSFORMER", "BAR_GAN", "HARMONIZER", "UNSHIPPED", "melody_batches",
           "chorale_batches", "check_value", "run"]

CHECK_BATCHES = 4          # validation batches the card's check value is measured on


@dataclass(frozen=True)
class Recipe:
    """One pretrained entry: what it is, how to build its model and how to train it."""

    lesson: str                          # the lesson whose main model it is
    what: str                            # one line for people
    build: Callable[[dict], torch.nn.Module]
    train: Callable[..., tuple]          # train(quick, device) -> (model, metrics, settings, config)
    check_data: Callable[[bool], tuple]  # check_data(quick) -> (validation batches in a fixed order, loss_fn)


# ------------------------------------------------------------------------------------ lesson 03
# lesson 03's training cells, full mode; "quick" is for the tests only
MELODY_LSTM = {
    "full": dict(emb=64, hidden=256, layers=2, dropout=0.2, seq_len=128, batch_size=64, steps=3000, warmup=100,
                 eval_every=250, eval_batches=50, lr=2e-3),
    "quick": dict(emb=16, hidden=32, layers=1, dropout=0.0, seq_len=32, batch_size=8, steps=6, warmup=0,
                  eval_every=3, eval_batches=2, lr=2e-3),
}


def melody_batches(seq_len: int, batch_size: int):
    """Lesson 03's batches: training chunks shuffled, validation chunks in order."""
    loader = torch.utils.data.DataLoader
    train_b = loader(data.TokenDataset(data.melody_tokens("train"), seq_len), batch_size=batch_size, shuffle=True,
                     drop_last=True)
    valid_b = loader(data.TokenDataset(data.melody_tokens("valid"), seq_len), batch_size=batch_size)
    return train_b, valid_b


def _build_melody(config: dict) -> torch.nn.Module:
    return melody.MelodyLSTM(melody.MelodyLSTMConfig(**config))


def _train_melody(quick: bool, device) -> tuple:
    s = MELODY_LSTM["quick" if quick else "full"]
    seed_everything(0)
    config = asdict(melody.MelodyLSTMConfig(vocab_size=len(data.melody_vocab()), emb=s["emb"], hidden=s["hidden"],
                                            layers=s["layers"], dropout=s["dropout"]))
    model = _build_melody(config)
    train_b, valid_b = melody_batches(s["seq_len"], s["batch_size"])
    settings = train.TrainConfig(steps=s["steps"], lr=s["lr"], warmup=s["warmup"], eval_every=s["eval_every"],
                                 eval_batches=s["eval_batches"], progress=True)
    history = train.train(model, train_b, melody.loss_fn, settings, valid_batches=valid_b, device=device)
    _round_to_storage(model)
    valid = train.evaluate(model, valid_b, melody.loss_fn)
    metrics = {"valid_nll_per_token": round(valid, 4), "valid_perplexity": round(math.exp(valid), 2),
               "scoring": "mean cross-entropy per token, validation chunks of seq_len tokens from a zero state"}
    return model, metrics, {**s, "history": _curve(history)}, config


# ------------------------------------------------------------------------------------ lesson 04
# lesson 04's training cells, full mode (quarter-note frames, transposition -5..+6 semitones)
POLY = {
    "full": dict(batch_size=8, steps=1500, lr=1e-2, eval_every=100, decay="cosine"),
    "quick": dict(batch_size=8, steps=4, lr=1e-2, eval_every=2, decay="cosine"),
}
POLY_LSTM = {"full": dict(hidden=256, dropout=0.5), "quick": dict(hidden=16, dropout=0.0)}
POLY_NADE = {"full": dict(hidden=128, nade_hidden=64, dropout=0.5), "quick": dict(hidden=16, nade_hidden=8, dropout=0.0)}


def chorale_batches(batch_size: int = 8, quick: bool = False):
    """Lesson 04's batches of whole chorales: (train, valid, test)."""
    loader = torch.utils.data.DataLoader
    rolls = {s: data.pianorolls("chorales", s, steps_per_quarter=1) for s in ("train", "valid", "test")}
    if quick:
        rolls = {s: r[:16] for s, r in rolls.items()}
    train_b = loader(data.PianoRollDataset(rolls["train"], transpose=(-5, 6), seed=0), batch_size=batch_size,
                     shuffle=True, collate_fn=data.collate)
    valid_b = loader(data.PianoRollDataset(rolls["valid"], transpose=None), batch_size=32, collate_fn=data.collate)
    test_b = loader(data.PianoRollDataset(rolls["test"], transpose=None), batch_size=32, collate_fn=data.collate)
    return train_b, valid_b, test_b


def _poly_trainer(kind: str) -> Callable:
    def run(quick: bool, device) -> tuple:
        mode = "quick" if quick else "full"
        s = POLY[mode]
        seed_everything(0)
        sizes = (POLY_LSTM if kind == "lstm" else POLY_NADE)[mode]
        cfg_cls = polyphonic.PolyLSTMConfig if kind == "lstm" else polyphonic.PolyNADEConfig
        config = asdict(cfg_cls(**sizes))
        model = _build_poly(kind)(config)
        train_b, valid_b, test_b = chorale_batches(s["batch_size"], quick)
        settings = train.TrainConfig(steps=s["steps"], lr=s["lr"], decay=s["decay"], grad_clip=None,
                                     eval_every=s["eval_every"], keep_best=True, progress=True)
        history = train.train(model, train_b, polyphonic.loss_fn, settings, valid_batches=valid_b, device=device)
        _round_to_storage(model)
        metrics = {"valid_nll_per_frame": round(train.evaluate(model, valid_b, polyphonic.loss_fn), 4),
                   "test_nll_per_frame": round(train.evaluate(model, test_b, polyphonic.loss_fn), 4),
                   "scoring": "nats per frame over every frame of each chorale (the first predicted from silence), "
                              "quarter-note frames, the course's chorale splits"}
        return model, metrics, {**s, **sizes, "history": _curve(history)}, config
    return run


def _build_poly(kind: str) -> Callable:
    def build(config: dict) -> torch.nn.Module:
        if kind == "lstm":
            return polyphonic.PolyLSTM(polyphonic.PolyLSTMConfig(**config))
        return polyphonic.PolyNADE(polyphonic.PolyNADEConfig(**config))
    return build


# ------------------------------------------------------------------------------------ lesson 06
# lesson 06's training cell, full mode: lesson 03's tunes, chunks and validation split, so the NLLs compare.
# It trains on chunks of seq_len tokens and learns every distance they hold (max_relative = seq_len); context, the
# longest sequence it accepts when generating, is larger: farther distances use the farthest learned one.
MUSIC_TRANSFORMER = {
    "full": dict(d_model=128, n_heads=4, n_layers=3, d_ff=512, dropout=0.1, context=512, seq_len=128, batch_size=32,
                 steps=3000, warmup=200, eval_every=250, eval_batches=16, lr=2e-3, weight_decay=0.01),
    "quick": dict(d_model=32, n_heads=2, n_layers=1, d_ff=64, dropout=0.0, context=512, seq_len=32, batch_size=8,
                  steps=6, warmup=0, eval_every=3, eval_batches=2, lr=2e-3, weight_decay=0.0),
}


def _build_transformer(config: dict) -> torch.nn.Module:
    return transformer.MusicTransformer(transformer.TransformerConfig(**config))


def _train_transformer(quick: bool, device) -> tuple:
    s = MUSIC_TRANSFORMER["quick" if quick else "full"]
    seed_everything(0)
    config = asdict(transformer.TransformerConfig(
        vocab_size=len(data.melody_vocab()), context=s["context"], d_model=s["d_model"], n_heads=s["n_heads"],
        n_layers=s["n_layers"], d_ff=s["d_ff"], dropout=s["dropout"], relative=True, max_relative=s["seq_len"]))
    model = _build_transformer(config)
    train_b, valid_b = melody_batches(s["seq_len"], s["batch_size"])
    settings = train.TrainConfig(steps=s["steps"], lr=s["lr"], weight_decay=s["weight_decay"], warmup=s["warmup"],
                                 decay="cosine", eval_every=s["eval_every"], eval_batches=s["eval_batches"],
                                 progress=True)
    history = train.train(model, train_b, transformer.loss_fn, settings, valid_batches=valid_b, device=device)
    _round_to_storage(model)
    valid = train.evaluate(model, valid_b, transformer.loss_fn)
    metrics = {"valid_nll_per_token": round(valid, 4), "valid_perplexity": round(math.exp(valid), 2),
               "scoring": "mean cross-entropy per token, validation chunks of seq_len tokens, each read from its "
                          "start (lesson 03's chunks: the numbers compare with melody_lstm's)"}
    return model, metrics, {**s, "history": _curve(history)}, config


# ------------------------------------------------------------------------------------ lesson 08
# lesson 08's training cell, full mode: the non-saturating GAN with DCGAN's Adam settings (Radford et al. 2016) and
# a mode-seeking term (Mao et al. 2019; without it this generator ignores its noise and every phrase repeats one
# bar) on the 4/4 chorales' bars in C major / A minor, each bar conditioned on the one before. Only the generator
# ships.
BAR_GAN = {
    "full": dict(width=64, noise_dim=64, loss="gan", steps=4000, batch_size=64, critic_steps=1, lr=2e-4,
                 betas=(0.5, 0.999), diversity_weight=0.2, phrases=64, phrase_bars=8),
    "quick": dict(width=8, noise_dim=8, loss="gan", steps=3, batch_size=8, critic_steps=1, lr=2e-4,
                  betas=(0.5, 0.999), diversity_weight=0.2, phrases=4, phrase_bars=2),
}


def bar_gan_data(split: str = "train", quick: bool = False):
    """Lesson 08's (previous bar, bar) pairs of one split."""
    per_piece = data.bars("chorales", split)
    return data.bar_pairs(per_piece[:8] if quick else per_piece)


def _build_bar_gan(config: dict) -> torch.nn.Module:
    return bargan.BarGenerator(bargan.BarGANConfig(**config))


def _train_bar_gan(quick: bool, device) -> tuple:
    import tempfile
    from pathlib import Path

    from .. import metrics

    s = BAR_GAN["quick" if quick else "full"]
    seed_everything(0)
    config = asdict(bargan.BarGANConfig(width=s["width"], noise_dim=s["noise_dim"]))
    generator, critic = _build_bar_gan(config), bargan.BarCritic(bargan.BarGANConfig(**config))
    prev, cur = bar_gan_data("train", quick)
    ckpt = None if quick else Path(tempfile.gettempdir()) / "course-pretrain-bar_gan.pt"   # a rerun resumes
    settings = gan.GANConfig(loss=s["loss"], steps=s["steps"], batch_size=s["batch_size"],
                             critic_steps=s["critic_steps"], lr=s["lr"], betas=s["betas"],
                             diversity_weight=s["diversity_weight"], seed=0, callback_every=250,
                             checkpoint=str(ckpt) if ckpt else None)
    curve = []

    def watch(step, g, losses):
        curve.append([step, round(losses["d_loss"], 4), round(losses["g_loss"], 4)])

    history = gan.train_gan(generator, critic, bargan.pair_sampler(prev, cur), settings, device=device,
                            callbacks=[watch])
    _round_to_storage(generator)
    generator.cpu().eval()
    phrases = bargan.generate_phrase(generator, s["phrase_bars"], seed=0, n=s["phrases"])
    made = phrases.reshape(-1, *phrases.shape[2:])
    test = np.concatenate(data.bars("chorales", "test")[: 2 if quick else None])
    stats = {"generated": metrics.bar_stats(made, low=data.BAR_LOW), "test data": metrics.bar_stats(test, low=data.BAR_LOW)}
    stats = {k: {m: round(float(v), 4) for m, v in d.items()} for k, d in stats.items()}
    stats["generated"]["pitch_class_distance"] = round(metrics.pitch_class_distance(made, test, low=data.BAR_LOW), 4)
    out = {"bar_stats": stats, "scoring": f"{s['phrases']} phrases of {s['phrase_bars']} bars chained from silence "
                                          "(seed 0), against the test split's bars; course.metrics.bar_stats"}
    kept = {k: v for k, v in asdict(settings).items() if k not in ("progress", "checkpoint")}
    return generator, out, {**s, **kept, "history": {"valid": curve, "seconds": round(history.seconds, 1)}}, config


def _bar_gan_check_data(quick: bool) -> tuple:
    """Fixed noise and the validation split's previous bars; the loss is the BCE against the real next bars."""
    prev, cur = bar_gan_data("valid", quick)
    p, q = torch.as_tensor(prev, dtype=torch.float32), torch.as_tensor(cur, dtype=torch.float32)
    noise_dim = BAR_GAN["quick" if quick else "full"]["noise_dim"]
    z = torch.randn(len(p), noise_dim, generator=torch.Generator().manual_seed(0))
    batches = [(z[i : i + 64], p[i : i + 64], q[i : i + 64]) for i in range(0, len(p), 64)]

    def loss_fn(model, batch):
        noise, before, target = batch
        return torch.nn.functional.binary_cross_entropy(model(noise, before).clamp(1e-6, 1 - 1e-6), target)

    return batches, loss_fn


# ------------------------------------------------------------------------------------ lesson 09
# lesson 09's harmonizer: a Coconet-style in-filling network (Huang et al. 2017) over the chorales' four voices at
# eighth-note steps, trained on random 4-bar windows (transposed by -6..+5 semitones within C2..A5) with Coconet's
# random masks; the loss is the cross-entropy of the hidden notes.
HARMONIZER = {
    "full": dict(channels=64, layers=8, length=32, batch_size=24, steps=1800, warmup=100, lr=2e-3, eval_every=200,
                 valid_batches=8),
    "quick": dict(channels=8, layers=2, length=16, batch_size=4, steps=4, warmup=0, lr=2e-3, eval_every=2,
                  valid_batches=2),
}


def harmonizer_batches(quick: bool = False) -> tuple:
    """Lesson 09's (train, valid) batches: fresh random windows and masks every pass; fixed ones to validate."""
    s = HARMONIZER["quick" if quick else "full"]
    low, n_pitches = data.VOICE_LOW, data.VOICE_HIGH - data.VOICE_LOW + 1
    tr, va = data.voices("chorales", "train"), data.voices("chorales", "valid")
    if quick:
        tr, va = tr[:8], va[:4]
    train_b = infill.CropBatches(tr, s["length"], s["batch_size"], 200, low=low, n_pitches=n_pitches, seed=0)
    valid_b = infill.CropBatches(va, s["length"], 32, s["valid_batches"], low=low, n_pitches=n_pitches, seed=1,
                                 fixed=True, transpose=(0, 0))
    return train_b, valid_b


def _build_harmonizer(config: dict) -> torch.nn.Module:
    return infill.Infiller(infill.InfillConfig(**config))


def _train_harmonizer(quick: bool, device) -> tuple:
    s = HARMONIZER["quick" if quick else "full"]
    seed_everything(0)
    config = asdict(infill.InfillConfig(n_pitches=data.VOICE_HIGH - data.VOICE_LOW + 1, channels=s["channels"],
                                        layers=s["layers"]))
    model = _build_harmonizer(config)
    train_b, valid_b = harmonizer_batches(quick)
    settings = train.TrainConfig(steps=s["steps"], lr=s["lr"], warmup=s["warmup"], decay="cosine",
                                 eval_every=s["eval_every"], progress=True)
    history = train.train(model, train_b, infill.loss_fn, settings, valid_batches=valid_b, device=device)
    _round_to_storage(model)
    model = model.cpu().eval()
    valid = train.evaluate(model, valid_b, infill.loss_fn, device=torch.device("cpu"))
    test = data.voices("chorales", "test")[: 2 if quick else None]
    lower = [infill.lower_voices_nll(model, v, data.VOICE_LOW) for v in test]
    metrics = {"valid_nll_per_hidden_cell": round(valid, 4),
               "test_lower_voices_nll_per_cell": round(float(np.mean(lower)), 4),
               "scoring": "a cell is one voice at one eighth-note step. valid: nats per hidden sounding cell, fixed "
                          "32-step windows of the validation chorales with Coconet's random masks; test: "
                          "-log p(alto, tenor, bass | soprano) per sounding lower-voice cell of each whole test "
                          "chorale, chain rule step by step (infill.lower_voices_nll), the mean of the chorales' means"}
    return model, metrics, {**s, "history": _curve(history)}, config


def _harmonizer_check_data(quick: bool) -> tuple:
    return harmonizer_batches(quick)[1], infill.loss_fn


# ------------------------------------------------------------------------------------ shared
def _round_to_storage(model: torch.nn.Module) -> None:
    """Round the weights to float16 and back, so every metric on the card is the shipped model's."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())


def check_value(name: str, model, quick: bool = False) -> float:
    """The card's check: the loss on the first validation batches, on CPU (the test recomputes it)."""
    batches, loss_fn = RECIPES[name].check_data(quick)
    return train.evaluate(model.cpu(), batches, loss_fn, max_batches=CHECK_BATCHES, device=torch.device("cpu"))


def _melody_check_data(quick: bool) -> tuple:
    s = MELODY_LSTM["quick" if quick else "full"]
    return melody_batches(s["seq_len"], s["batch_size"])[1], melody.loss_fn


def _transformer_check_data(quick: bool) -> tuple:
    s = MUSIC_TRANSFORMER["quick" if quick else "full"]
    return melody_batches(s["seq_len"], s["batch_size"])[1], transformer.loss_fn


def _chorale_check_data(quick: bool) -> tuple:
    return chorale_batches(quick=quick)[1], polyphonic.loss_fn


def _curve(history) -> dict:
    return {"valid": [[s, round(v, 4)] for s, v in zip(history.valid_steps, history.valid_loss)],
            "seconds": round(history.seconds, 1)}


def run(name: str, *, quick: bool = False, device=None, folder=None) -> dict:
    """Train entry ``name`` and write its weights and card (to ``folder``, default the package's)."""
    from ..runtime import device as pick_device

    recipe = RECIPES[name]
    dev = pick_device(verbose=not quick) if device is None else torch.device(device)
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    model, metrics, settings, config = recipe.train(quick, dev)
    seconds = time.perf_counter() - t0
    model = model.cpu().eval()
    metrics["check"] = {"what": f"loss on the first {CHECK_BATCHES} validation batches, on CPU",
                        "value": round(check_value(name, model, quick), 5)}
    info = {
        "name": name, "lesson": recipe.lesson, "what": recipe.what, "config": config,
        "settings": {k: v for k, v in settings.items() if k != "history"}, "seed": 0,
        "mode": "quick" if quick else "full", "device": dev.type, "torch_threads": threads,
        "torch": torch.__version__, "python": platform.python_version(),
        "wall_seconds": round(seconds, 1), "parameters": sum(p.numel() for p in model.parameters()),
        "metrics": metrics, "validation_curve": settings.get("history", {}).get("valid", []),
        "command": f"python -m course pretrain {name}" + (" --quick" if quick else ""),
        "date": time.strftime("%Y-%m-%d"),
    }
    return save(name, model, info, folder)


# Recipes whose weights are not in the course yet, and why (the tests hold everything else to its card).
UNSHIPPED: dict[str, str] = {}

RECIPES: dict[str, Recipe] = {
    "melody_lstm": Recipe("03_melody_lstm", "lesson 03's melody LSTM (2 x 256) on the course's folk tunes",
                          _build_melody, _train_melody, _melody_check_data),
    "poly_lstm": Recipe("04_polyphonic_chorales", "lesson 04's PolyLSTM (independent keys) on the course's chorales",
                        _build_poly("lstm"), _poly_trainer("lstm"), _chorale_check_data),
    "poly_nade": Recipe("04_polyphonic_chorales", "lesson 04's PolyNADE (keys conditioned on the keys below)",
                        _build_poly("nade"), _poly_trainer("nade"), _chorale_check_data),
    "music_transformer": Recipe("06_music_transformer", "lesson 06's music Transformer (relative attention) on the "
                                "course's folk tunes", _build_transformer, _train_transformer,
                                _transformer_check_data),
    "bar_gan": Recipe("08_music_gan", "lesson 08's bar generator (a GAN conditioned on the previous bar) on the "
                      "course's 4/4 chorales", _build_bar_gan, _train_bar_gan, _bar_gan_check_data),
    "harmonizer": Recipe("09_capstone", "lesson 09's harmonizer (a Coconet-style in-filling network) on the course's "
                         "chorales' four voices", _build_harmonizer, _train_harmonizer, _harmonizer_check_data),
}
