"""Sampling from token language models: temperature, top-k, top-p, and continuing an opening.

Works with any model that maps token ids to next-token logits, in one of two shapes:

- **recurrent**: ``model(tokens (B, T)) -> (logits (B, T, V), state)`` and
  ``model(tokens, state) -> (logits, state)`` (e.g. ``course.nn.melody.MelodyLSTM``): the prompt is
  read once, then each new token is fed alone together with the carried state;
- **stateless**: ``model(tokens (B, T)) -> logits (B, T, V)`` (e.g. a Transformer): the whole
  sequence (or its last ``context`` tokens) is fed again for every new token.

The model's kind is told apart by what its first call returns.

Lesson: 03_melody_lstm (first used), 06_music_transformer
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import CourseError
from .music import Music, MelodyVocab, from_melody_tokens, from_text, to_melody_tokens

__all__ = ["apply_temperature", "top_k_filter", "top_p_filter", "sample_next", "sample_tokens",
           "melody_rules", "sample_melody", "continue_melody"]


# ---------------------------------------------------------------------------------------------
# one step: logits -> a token
# ---------------------------------------------------------------------------------------------

def _logits(x):
    import torch

    if torch.is_tensor(x):
        z = x.detach()
        return z.float() if not z.is_floating_point() or z.dtype in (torch.float16, torch.bfloat16) else z
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float32))
    except (TypeError, ValueError):
        raise CourseError(f"Logits must be numbers (a tensor, array or list), got {type(x).__name__}.") from None


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise CourseError(f"temperature must be a number > 0, got {temperature!r}.")
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise CourseError(f"temperature must be a finite number > 0, got {temperature!r}: small values (0.5) make "
                          "the model bolder about its favourite, large ones (1.5) more adventurous.")
    return t


def _scaled(z, temperature: float):
    """``(z - max z) / T``: the same softmax as ``z / T``, without overflow for tiny ``T``."""
    m = z.amax(dim=-1, keepdim=True)
    m = m.masked_fill(~m.isfinite(), 0.0)
    return (z - m) / temperature


def apply_temperature(logits, temperature: float = 1.0):
    """Probabilities ``softmax(logits / T)`` over the last dimension.

    ``T = 1`` is the model's own distribution; ``T -> 0`` puts all mass on the largest logit (argmax);
    ``T -> inf`` tends to the uniform distribution. Entries equal to ``-inf`` get probability 0.

    Args:
        logits: ``(..., V)`` tensor, array or list of raw scores.
        temperature: ``T > 0``.

    Returns:
        a float tensor of the same shape whose last dimension sums to 1.

    Lesson: 03_melody_lstm
    """
    import torch

    t = _check_temperature(temperature)
    return torch.softmax(_scaled(_logits(logits), t), dim=-1)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CourseError(f"top_k must be a whole number >= 1 (or None to keep every token), got {k!r}.")
    return int(k)


def top_k_filter(logits, k: int | None):
    """Keep the ``k`` largest logits in the last dimension; set the others to ``-inf``.

    After a softmax the kept tokens share all the probability, in the same ratios as before
    (their probabilities are renormalized). Exactly ``k`` entries are kept even when several values
    tie with the ``k``-th largest (which of the tied ones survive is ``torch.topk``'s choice);
    ``k = None`` or ``k >= V`` keeps everything. Returns a new tensor (the input is not changed).

    Lesson: 03_melody_lstm
    """
    import torch

    z = _logits(logits)
    if k is None:
        return z.clone()
    k = _check_k(k)
    if k >= z.shape[-1]:
        return z.clone()
    idx = torch.topk(z, k, dim=-1).indices                                    # (..., k)
    return torch.full_like(z, float("-inf")).scatter(-1, idx, z.gather(-1, idx))


def top_p_filter(logits, p: float | None):
    """Nucleus filtering: keep the smallest set of most likely tokens whose probabilities add up to at
    least ``p`` (always at least the most likely one); set the others to ``-inf``.

    Lesson: 03_melody_lstm
    """
    import torch

    z = _logits(logits)
    if p is None:
        return z.clone()
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 < float(p) <= 1:
        raise CourseError(f"top_p must be a number in (0, 1], got {p!r}.")
    if float(p) >= 1:
        return z.clone()
    probs, order = torch.softmax(z, dim=-1).sort(dim=-1, descending=True)
    before = probs.cumsum(dim=-1) - probs                                     # mass of the tokens ranked above
    drop_sorted = before >= float(p)
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return z.masked_fill(drop, float("-inf"))


def sample_next(logits, temperature: float = 1.0, top_k: int | None = None, generator=None,
                top_p: float | None = None):
    """Draw one token id per row of ``logits`` ``(..., V)``: temperature, then top-k / top-p, then a draw.

    Args:
        logits: raw next-token scores; ``-inf`` entries are never drawn.
        temperature: ``T > 0`` (see :func:`apply_temperature`).
        top_k: keep only the ``k`` most likely tokens (None: all).
        generator: a ``torch.Generator`` for reproducible draws (on the logits' device).
        top_p: keep the smallest set of tokens with probability >= ``top_p`` (None: all).

    Returns:
        a long tensor of shape ``logits.shape[:-1]`` (a 0-d tensor for one row).

    Lesson: 03_melody_lstm
    """
    import torch

    t = _check_temperature(temperature)
    z = top_p_filter(top_k_filter(_scaled(_logits(logits), t), top_k), top_p)
    if z.dim() == 0 or z.shape[-1] == 0:
        raise CourseError("sample_next needs logits with a last dimension of at least one token.")
    if torch.isnan(z).any():
        raise CourseError("The logits contain NaN: the model's output is broken (was the loss NaN in training?).")
    if not torch.isfinite(z).any(dim=-1).all():
        raise CourseError("Every token is forbidden (all logits are -inf) in some row; allow at least one.")
    probs = torch.softmax(z, dim=-1)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    flat = probs.reshape(-1, probs.shape[-1])                                # (N, V)
    idx = torch.multinomial(flat, 1, generator=generator)                    # (N, 1)
    return idx.reshape(probs.shape[:-1]).to(_logits(logits).device)


# ---------------------------------------------------------------------------------------------
# whole sequences
# ---------------------------------------------------------------------------------------------

def _as_prompt(prompt) -> list[int]:
    if hasattr(prompt, "detach"):
        prompt = prompt.detach().cpu().numpy()
    arr = np.asarray(prompt)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.size == 0:
        raise CourseError(f"The prompt must be a non-empty 1-D sequence of token ids (start with BOS), "
                          f"got shape {arr.shape}.")
    if arr.dtype.kind not in "iu" and (arr.dtype.kind != "f" or not np.all(np.mod(arr, 1) == 0)):
        raise CourseError("The prompt must hold whole-number token ids.")
    return [int(x) for x in arr.tolist()]


def _model_device(model, device):
    import torch

    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def sample_tokens(model, prompt, steps: int, *, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, seed: int = 0, device=None, stop_token: int | None = None,
                  forbid: Iterable[int] = (), rules: Callable | None = None, until: Callable | None = None,
                  context: int | None = None, draw: Callable | None = None) -> np.ndarray:
    """Extend ``prompt`` by up to ``steps`` sampled tokens, one at a time, without gradients.

    Args:
        model: a recurrent or stateless token model (see the module docstring).
        prompt: 1-D token ids to start from (at least one, e.g. ``[BOS]``).
        steps: the most tokens to add.
        temperature, top_k, top_p: see :func:`sample_next`.
        seed: seeds the draws (the same seed, model and arguments give the same tokens).
        device: where the model runs (default: where its parameters are).
        stop_token: stop after drawing this token (it is kept in the output).
        forbid: token ids never drawn (e.g. PAD and BOS).
        rules: ``rules(tokens_so_far: list[int]) -> bool tensor (V,)`` of allowed next tokens, or None
            for all; e.g. :func:`melody_rules` keeps melodies well formed.
        until: ``until(tokens_so_far) -> bool``: stop once it returns True (checked after each draw).
        context: stateless models see at most this many of the latest tokens (None: all).
        draw: ``draw(logits (V,), temperature, top_k, generator) -> token id`` in place of :func:`sample_next`
            (e.g. one built from a student's own temperature and top-k; ``top_p`` is then not applied).

    Returns:
        int64 array: the prompt followed by the sampled tokens.

    Lesson: 03_melody_lstm
    """
    import torch

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise CourseError(f"steps must be a whole number >= 0, got {steps!r}.")
    _check_temperature(temperature)
    if top_k is not None:
        _check_k(top_k)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise CourseError(f"seed must be a whole number, got {seed!r}.")
    if context is not None and (not isinstance(context, (int, np.integer)) or context < 1):
        raise CourseError(f"context must be a whole number >= 1 or None, got {context!r}.")
    tokens = _as_prompt(prompt)
    if steps == 0:
        return np.asarray(tokens, dtype=np.int64)
    forbid = [int(f) for f in forbid]
    dev = _model_device(model, device)
    gen = torch.Generator().manual_seed(int(seed) % 2**63)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            x = torch.tensor([tokens], dtype=torch.long, device=dev)                    # (1, T)
            if context is not None:
                x = x[:, -context:]
            out = model(x)
            recurrent = isinstance(out, tuple)
            logits, state = (out[0], out[1]) if recurrent else (out, None)
            for i in range(int(steps)):
                if i > 0:                                                               # read the last draw
                    if recurrent:
                        out = model(torch.tensor([[tokens[-1]]], dtype=torch.long, device=dev), state)
                        logits, state = out[0], out[1]
                    else:
                        x = torch.tensor([tokens[-context:] if context else tokens], dtype=torch.long, device=dev)
                        logits = model(x)
                z = logits[0, -1].float().cpu()                                         # (V,)
                if forbid:
                    bad = [f for f in forbid if 0 <= f < z.shape[-1]]
                    z = z.index_fill(0, torch.tensor(bad, dtype=torch.long), float("-inf"))
                if rules is not None:
                    allowed = rules(tokens)
                    if allowed is not None:
                        z = z.masked_fill(~torch.as_tensor(allowed, dtype=torch.bool), float("-inf"))
                nxt = int(sample_next(z, temperature, top_k, gen, top_p=top_p) if draw is None
                          else draw(z, temperature, top_k, gen))
                tokens.append(nxt)
                if (stop_token is not None and nxt == stop_token) or (until is not None and until(tokens)):
                    break
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    return np.asarray(tokens, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# melodies
# ---------------------------------------------------------------------------------------------

def melody_rules(vocab: MelodyVocab | None = None) -> Callable:
    """Grammar of melody tokens, as ``rules`` for :func:`sample_tokens`.

    After BOS: a pitch or REST. After a pitch or REST: a duration. After a duration: a pitch, REST,
    another duration (a longer note) or EOS. PAD and BOS are never allowed.

    Lesson: 03_melody_lstm
    """
    import torch

    vocab = vocab or MelodyVocab()
    V = len(vocab)
    ids = torch.arange(V)
    is_pitch = (ids >= vocab.PITCH0) & (ids < vocab.dur0)
    is_dur = ids >= vocab.dur0
    start = is_pitch.clone()
    start[vocab.REST] = True                       # after BOS
    need_dur = is_dur.clone()                      # after a pitch or REST
    after_dur = start | is_dur
    after_dur[vocab.EOS] = True                    # after a duration

    def rules(tokens: Sequence[int]):
        last = tokens[-1]
        if vocab.is_duration(last):
            return after_dur
        if last == vocab.REST or vocab.is_pitch(last):
            return need_dur
        return start

    return rules


def _steps_per_bar(time_signature, steps_per_quarter: int) -> int:
    num, den = time_signature
    return max(1, int(round(num * 4 / den * steps_per_quarter)))


def _melody_from_prompt(model, prompt: list[int], *, bars, vocab, temperature, top_k, top_p, seed, device,
                        qpm, time_signature, max_tokens, draw=None):
    if isinstance(bars, bool) or not isinstance(bars, (int, float, np.integer, np.floating)) or not 0 < bars <= 256:
        raise CourseError(f"bars must be a number of bars between 0 and 256, got {bars!r}.")
    target = int(math.ceil(bars * _steps_per_bar(time_signature, vocab.steps_per_quarter)))
    start = len(prompt)
    done = {"n": start, "steps": 0}

    def until(tokens):
        for t in tokens[done["n"]:]:
            if vocab.is_duration(t):
                done["steps"] += vocab.steps_of(t)
        done["n"] = len(tokens)
        return done["steps"] >= target

    steps = max_tokens if max_tokens is not None else 2 * target + 8
    toks = sample_tokens(model, prompt, steps, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                         device=device, stop_token=vocab.EOS, forbid=(vocab.PAD, vocab.BOS),
                         rules=melody_rules(vocab), until=until, draw=draw)
    return toks


def sample_melody(model, *, bars: float = 8, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, seed: int = 0, vocab: MelodyVocab | None = None, device=None,
                  qpm: float = 120.0, time_signature=(4, 4), max_tokens: int | None = None, draw=None) -> Music:
    """A new melody from a melody model: start at BOS, sample well-formed tokens for about ``bars``
    bars (or until EOS), decode. ``draw``: see :func:`sample_tokens`.

    Lesson: 03_melody_lstm
    """
    vocab = vocab or MelodyVocab()
    toks = _melody_from_prompt(model, [vocab.BOS], bars=bars, vocab=vocab, temperature=temperature, top_k=top_k,
                               top_p=top_p, seed=seed, device=device, qpm=qpm, time_signature=time_signature,
                               max_tokens=max_tokens, draw=draw)
    m = from_melody_tokens(toks, vocab, qpm=qpm, title=f"sample (T={temperature:.2f}, seed={seed})")
    return m.replace(time_signature=tuple(time_signature))


def continue_melody(model, opening, *, bars: float = 4, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None, seed: int = 0, vocab: MelodyVocab | None = None, device=None,
                    include_opening: bool = True, max_tokens: int | None = None, draw=None) -> Music:
    """Call and response: the model continues ``opening`` for about ``bars`` bars.

    Args:
        model: a melody model (e.g. ``course.nn.melody.MelodyLSTM``) over ``vocab``'s tokens.
        opening: a monophonic :class:`~course.music.Music`, or note names such as ``"E4 G4 A4:2"``
            (read with ``course.music.from_text``). It is quantized to the vocabulary's grid.
        bars: length of the response, in bars of the opening's time signature.
        temperature, top_k, top_p, seed, draw: see :func:`sample_tokens`.
        include_opening: return the opening followed by the response (True) or the response alone.

    Returns:
        a :class:`~course.music.Music` at the opening's tempo, titled as the model's (``"<the opening's
        title>, continued by the model"``, or ``"response"`` alone), never as the tune the opening came from.

    Lesson: 03_melody_lstm
    """
    vocab = vocab or MelodyVocab()
    if isinstance(opening, str):
        opening = from_text(opening)
    if not isinstance(opening, Music):
        raise CourseError(f"The opening must be a Music or note names like 'E4 G4 A4', not {type(opening).__name__}.")
    if not opening.notes:
        raise CourseError("The opening has no notes: give the model a few notes to answer.")
    prompt = to_melody_tokens(opening, vocab, bos=True, eos=False).tolist()
    toks = _melody_from_prompt(model, prompt, bars=bars, vocab=vocab, temperature=temperature, top_k=top_k,
                               top_p=top_p, seed=seed, device=device, qpm=opening.qpm,
                               time_signature=opening.time_signature, max_tokens=max_tokens, draw=draw)
    title = f"{opening.title}, continued by the model" if opening.title else "call and response"
    full = from_melody_tokens(toks, vocab, qpm=opening.qpm, title=title)
    full = full.replace(time_signature=opening.time_signature)
    if include_opening:
        return full
    _, ends = opening.steps(vocab.steps_per_quarter)
    cut = int(ends.max()) * 60.0 / opening.qpm / vocab.steps_per_quarter
    notes = tuple(n._replace(start=n.start - cut, end=n.end - cut) for n in full.notes if n.start >= cut - 1e-9)
    return full.replace(notes=notes, title="response")
