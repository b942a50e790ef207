"""A small scaling study of lesson 06's Transformer: validation NLL against parameters at a fixed token budget.

Five sizes of ``course.nn.transformer.MusicTransformer`` (relative attention) are trained on the
course's folk-tune tokens with the same batches, the same number of training tokens and the same
schedule; each is scored on the same validation chunks. Lesson 06 draws the result
(``results.json``, list ``scaling``).
"""
from __future__ import annotations

import math

from .common import say

# (d_model, n_layers, n_heads); d_ff = 4 d_model
SIZES = [(32, 1, 2), (64, 2, 2), (96, 2, 4), (128, 3, 4), (160, 3, 4)]
FULL = dict(seq_len=128, batch_size=16, steps=300, lr=2e-3, eval_batches=16)
QUICK = dict(seq_len=32, batch_size=4, steps=4, lr=2e-3, eval_batches=2)


def run(quick: bool, device) -> list[dict]:
    import torch

    from course import data, train
    from course.nn import transformer as tf
    from course.pretrained.recipes import melody_batches

    s = QUICK if quick else FULL
    sizes = SIZES[:2] if quick else SIZES
    tokens = s["seq_len"] * s["batch_size"] * s["steps"]
    dev_name = str(device.type if hasattr(device, "type") else device)
    rows = []
    for d_model, n_layers, n_heads in sizes:
        torch.manual_seed(0)
        model = tf.MusicTransformer(tf.TransformerConfig(
            vocab_size=len(data.melody_vocab()), context=s["seq_len"], d_model=d_model, n_heads=n_heads,
            n_layers=n_layers, d_ff=4 * d_model, dropout=0.1, relative=True, max_relative=s["seq_len"]))
        torch.manual_seed(0)                           # the same batch order for every size
        train_b, valid_b = melody_batches(s["seq_len"], s["batch_size"])
        settings = train.TrainConfig(steps=s["steps"], lr=s["lr"], weight_decay=0.01, warmup=min(50, s["steps"] // 10),
                                     decay="cosine", eval_every=s["steps"], eval_batches=s["eval_batches"],
                                     progress=False, seed=0)
        hist = train.train(model, train_b, tf.loss_fn, settings, valid_batches=valid_b, device=device)
        valid = train.evaluate(model, valid_b, tf.loss_fn, max_batches=s["eval_batches"])
        r = {"model": f"d{d_model}-L{n_layers}", "d_model": d_model, "n_layers": n_layers, "n_heads": n_heads,
             "params": model.num_parameters(), "train_tokens": tokens, "steps": s["steps"],
             "valid_nll": round(valid, 4), "valid_perplexity": round(math.exp(valid), 3),
             "train_seconds": round(hist.seconds, 1), "device": dev_name}
        say(f"  scaling {r['model']:<9} {r['params']:>9,} parameters: validation {valid:.3f} nats/token, "
            f"{hist.seconds:.0f} s")
        rows.append(r)
    return rows
