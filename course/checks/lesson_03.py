"""Checks for lesson 03, melody generation with an LSTM: a working melody language model (the
fix of a broken one), its loss, temperature and top-k filtering.

Written with the check kit (:mod:`course.checks.kit`): each ``@exercise`` function builds the cases
from the generator it is handed. Expected answers come from the reference code in
``course.nn.melody`` and ``course.generate``, computed in the comparison after the student's code
has run. No check depends on the luck of a random draw: distributions are compared exactly, and the
one training run is seeded.

Lesson: 03_melody_lstm
"""
from __future__ import annotations

import numpy as np
import torch

from .. import generate
from ..nn.melody import lm_loss
from .kit import Case, CheckFailure, as_array, as_tensor, close, exercise, one_thread, randn

LESSON = "03_melody_lstm"


# ---------------------------------------------------------------------------- melody_lm (the fixed model)
def _prepare_melody_lm(obj):
    """What the student passed (the class ``MelodyLM``) turned into the function the cases call."""
    if isinstance(obj, torch.nn.Module):
        raise CheckFailure("you passed a model; pass the class itself. "
                           "Hint: check.melody_lm(MelodyLM), without brackets after MelodyLM")
    return _probe_melody_lm(obj) if callable(obj) else obj


def _probe_melody_lm(cls):
    """Run the student's class in one of several ways; what comes back is judged by a case's comparison."""
    def probe(kind, V, E, H, tokens, other=None):
        with torch.random.fork_rng(), one_thread():
            torch.manual_seed(0)
            model = cls(V, E, H)
            if kind == "build":       # what the judge may know of the object: plain facts, never the object
                is_module = issubclass(type(model), torch.nn.Module)
                return {"type": type(model).__name__, "module": is_module,
                        "parameters": sum(1 for _ in model.parameters()) if is_module else 0}
            if kind == "learn":
                return _train_briefly(model, tokens, other)
            model.eval()
            with torch.no_grad():
                out = model(tokens)
                out2 = model(other) if other is not None else None
            return out, out2

    return probe


def _train_briefly(model, tokens, held_out, steps: int = 80, lr: float = 0.01):
    """A few Adam steps on one batch, then the logits in eval mode on it and on ``held_out`` (or "no gradient").

    This runs where the student's model runs (under grading, in the job); the comparison scores the
    logits it returns, so a model cannot pass by lying to the loss it is trained with.

    Adam is written out here because building a ``torch.optim`` optimizer the first time imports
    ``torch._dynamo``, which costs seconds, and a check must be quick. The final loss is measured in
    eval mode, so a model with dropout is judged on what it learned, not on the noise of one draw.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    first = None
    for step in range(1, steps + 1):
        loss = lm_loss(model(tokens), tokens)
        if not loss.requires_grad:
            return "no gradient"
        if first is None:
            first = float(loss.detach())
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g, mp, vp in zip(params, grads, m, v):
                if g is None:
                    continue
                mp.mul_(0.9).add_(g, alpha=0.1)
                vp.mul_(0.999).addcmul_(g, g, value=0.001)
                p.sub_(lr * (mp / (1 - 0.9**step)) / ((vp / (1 - 0.999**step)).sqrt() + 1e-8))
    model.eval()
    with torch.no_grad():
        return {"first": first, "logits": _logits_of(model(tokens)).detach(),
                "held_out": _logits_of(model(held_out)).detach()}


def _logits_of(out):
    if isinstance(out, tuple):
        raise CheckFailure("forward returned a tuple; return only the logits tensor of shape (batch, time, vocab_size)")
    if not torch.is_tensor(out):
        raise CheckFailure(f"forward should return a torch tensor of logits, got {type(out).__name__}")
    return out


def _v_build(got, kind, V, E, H, tokens, other=None):
    if not got["module"]:
        raise CheckFailure(f"MelodyLM(...) made a {got['type']}; subclass torch.nn.Module")
    if not got["parameters"]:
        raise CheckFailure("the model has no parameters; create its layers in __init__ as attributes (self.embed = ...)")


def _v_shape(got, kind, V, E, H, tokens, other=None):
    out = _logits_of(got[0])
    B, T = tokens.shape
    if out.dim() == 3 and tuple(out.shape[:2]) == (B, T) and out.shape[2] == H and H != V:
        raise CheckFailure(f"the last dimension is hidden_size ({H}), not vocab_size ({V}): LSTM features are not "
                           "logits; project them with nn.Linear(hidden_size, vocab_size)")
    if out.dim() == 3 and tuple(out.shape[:2]) == (T, B) and B != T:
        raise CheckFailure(f"got shape {tuple(out.shape)}: time and batch are swapped; create the LSTM with batch_first=True")
    if tuple(out.shape) != (B, T, V):
        raise CheckFailure(f"wrong shape: expected (batch, time, vocab_size) = {(B, T, V)}, got {tuple(out.shape)}")


def _v_logits(got, kind, V, E, H, tokens, other=None):
    out = as_array(_logits_of(got[0]))
    if np.all(out >= 0) and np.allclose(out.sum(-1), 1.0, atol=1e-4):
        raise CheckFailure("forward returns probabilities (a softmax); return raw logits, because "
                           "cross-entropy applies log-softmax itself and a second softmax flattens every prediction")


def _v_batch_independent(got, kind, V, E, H, tokens, other):
    a, b = (as_array(_logits_of(x)) for x in got)
    if not np.allclose(a[1:], b[1:], rtol=1e-4, atol=1e-5):
        raise CheckFailure("changing the first melody of a batch changed the predictions for the others: the LSTM "
                           "reads dimension 0 as time; create it with batch_first=True")


def _v_causal(got, kind, V, E, H, tokens, other):
    a, b = (as_array(_logits_of(x)) for x in got)
    t0 = int(np.flatnonzero((tokens != other).any(0).numpy())[0])
    if not np.allclose(a[:, :t0], b[:, :t0], rtol=1e-4, atol=1e-5):
        raise CheckFailure(f"changing tokens from position {t0} on changed the predictions before it: the model peeks "
                           "at the future (a bidirectional LSTM?); a language model may only read the past")


_LEARNED = 0.4   # nats per token: a working model gets below 0.1 in 80 steps, one without memory stays above 0.59
_LEARNED_HELD_OUT = 1.0   # on the scale started at other notes, which training never saw


def _scored(logits, tokens, what: str) -> float:
    """The judge's own loss of returned logits on ``tokens`` (nats per token)."""
    logits = as_tensor(logits).float()
    B, T = tokens.shape
    if tuple(logits.shape[:2]) != (B, T) or logits.dim() != 3 or logits.shape[2] < int(tokens.max()) + 1:
        raise CheckFailure(f"after training, the logits {what} have shape {tuple(logits.shape)}, not (batch, time, "
                           "vocab_size)")
    return float(lm_loss(logits, tokens))


def _v_learns(got, kind, V, E, H, tokens, other=None):
    if got == "no gradient":
        raise CheckFailure("the logits carry no gradient, so nothing can be trained: compute them from the "
                           "model's layers without .detach(), NumPy or new tensors")
    last = _scored(got["logits"], tokens, "of the training melodies")
    held = _scored(got["held_out"], other, "of the held-out melodies")
    largest = float(as_tensor(got["logits"]).abs().max())
    if not np.isfinite(last) or not np.isfinite(held):
        raise CheckFailure("the loss became NaN or infinite while training on a scale played up and down")
    if last < _LEARNED and held < _LEARNED_HELD_OUT:
        return
    if last < _LEARNED:
        raise CheckFailure(f"after 80 Adam steps the loss on the training melodies is {last:.2f} nats per token, but on "
                           f"the same scale started elsewhere it is {held:.2f} (a working model gets below "
                           f"{_LEARNED_HELD_OUT}): the model memorized positions instead of reading the notes before")
    if largest <= 1.0 + 1e-6:
        raise CheckFailure(f"after 80 Adam steps the loss is still {last:.2f} nats per token and every logit lies "
                           "inside (-1, 1): something squashes the scores (a tanh, or LSTM outputs used as logits), "
                           "so no token can ever get a high probability; the scores must be free to grow")
    raise CheckFailure(f"after 80 Adam steps on a scale played up and down the loss is still {last:.2f} nats per token "
                       f"(a working model gets below {_LEARNED}). The note after 4 is 5 on the way up and 3 on the way "
                       "down, so a model that sees only the current token cannot go below 0.59: the logits must come "
                       "from the LSTM's features, which remember the tokens before")


@exercise(prepare=_prepare_melody_lm, points=2,
          hint="follow the chain of the exercise text: token ids become vectors, an LSTM reads them in order "
               "(batches come as batch x time), and one more layer turns each feature vector into one score "
               "per vocabulary entry. Those scores are the logits: nothing may squash or normalize them")
def melody_lm(r):
    """Check the class ``MelodyLM(vocab_size, emb_size, hidden_size)``: ``forward(tokens (B, T)) -> logits (B, T, V)``."""
    V, E, H = 23, 8, 16
    g = torch.Generator().manual_seed(int(r.integers(0, 2**31 - 1)))
    tokens = torch.randint(1, V, (3, 10), generator=g)
    changed_first = tokens.clone()
    changed_first[0] = torch.randint(1, V, (10,), generator=g)
    changed_late = tokens.clone()
    changed_late[:, 6:] = (tokens[:, 6:] % (V - 1)) + 1
    Vr = int(r.integers(12, 40))
    Hr = int(r.choice([h for h in (8, 12, 20, 24, 32) if h != Vr]))
    Er = int(r.integers(4, 12))
    tokens_r = torch.randint(1, Vr, (int(r.integers(1, 5)), int(r.integers(3, 15))), generator=g)
    # a scale up and down: after 2 .. 7 the next note depends on the direction, i.e. on the note before
    scale = torch.tensor(([1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 5, 4, 3, 2]) * 2)
    learn = torch.stack([torch.roll(scale, s) for s in (0, 3, 7, 10)])                           # (4, 28)
    held_out = torch.stack([torch.roll(scale, s) for s in (5, 12)])                            # (2, 28), never trained on
    return [
        Case("MelodyLM(23, 8, 16) is a torch.nn.Module", "build", V, E, H, tokens, compare=_v_build),
        Case("logits of shape (batch, time, vocab_size)", "shape", V, E, H, tokens, compare=_v_shape),
        Case("raw logits, not probabilities", "shape", V, E, H, tokens, compare=_v_logits),
        Case("melodies in a batch are independent", "pair", V, E, H, tokens, changed_first,
             compare=_v_batch_independent),
        Case("predictions depend only on earlier tokens", "pair", V, E, H, tokens, changed_late, compare=_v_causal),
        Case(f"other sizes: MelodyLM({Vr}, {Er}, {Hr})", "shape", Vr, Er, Hr, tokens_r, compare=_v_shape),
        Case("learns a scale played up and down (it needs memory)", "learn", 12, 8, 32, learn, held_out,
             compare=_v_learns),
    ]


# ---------------------------------------------------------------------------- melody_lm_loss
def reference_melody_lm_loss(logits, tokens, pad_id: int = 0):
    """Mean cross-entropy of ``logits[:, :-1]`` against ``tokens[:, 1:]``, PAD targets ignored."""
    return lm_loss(logits, tokens, pad_id=pad_id)


def _v_loss(got, logits, tokens, pad_id=0):
    if got is None:
        raise CheckFailure("your function returned None; did you forget `return`?")
    if isinstance(got, (float, int, np.floating)):
        raise CheckFailure("you returned a Python number; return the loss tensor itself (no .item()) so that "
                           "loss.backward() can train the model")
    if not torch.is_tensor(got):
        raise CheckFailure(f"expected a torch tensor, got {type(got).__name__}")
    if got.numel() != 1:
        raise CheckFailure(f"expected one number (the mean loss), got a tensor of shape {tuple(got.shape)}")
    if logits.requires_grad and not got.requires_grad:
        raise CheckFailure("the loss is cut off from the logits (no gradient); compute it with torch operations "
                           "on the logits, without .detach(), .item() or NumPy")
    expected = reference_melody_lm_loss(logits.detach(), tokens, pad_id)
    close(got.detach().reshape(()), expected, rtol=1e-4, atol=1e-5)


@exercise(compare=_v_loss,
          hint="the scores at position t are a guess about the token at t + 1, so pair every guess with the "
               "token after it (the last position has nothing to guess); average -log p of the true next token "
               "over the targets that are not padding, starting from the raw scores, and keep the result a "
               "tensor so that gradients can flow back")
def melody_lm_loss(r):
    """Check ``melody_lm_loss(logits (B, T, V), tokens (B, T), pad_id=0) -> scalar tensor``."""
    def logits(B, T, V, scale=2.0, grad=False):
        return randn(r, B, T, V, scale=scale).requires_grad_(grad)

    def toks(B, T, V, low=1):
        return torch.tensor(r.integers(low, V, size=(B, T)), dtype=torch.long)

    padded = toks(3, 8, 11)
    padded[0, 5:] = 0
    padded[2, 3:] = 0
    padded7 = toks(2, 6, 9)
    padded7[:, 4:] = 7
    cases = [
        Case("one melody of 5 tokens", logits(1, 5, 7), toks(1, 5, 7)),
        Case("a batch of 2 melodies, no padding", logits(2, 6, 9), toks(2, 6, 9)),
        Case("returns a tensor that can be back-propagated", logits(2, 4, 5, grad=True), toks(2, 4, 5)),
        Case("a padded batch (PAD = 0 targets are ignored)", logits(3, 8, 11), padded),
        Case("pad_id=7", logits(2, 6, 9), padded7, pad_id=7),
    ]
    for i in range(3):
        B, T, V = int(r.integers(1, 5)), int(r.integers(3, 12)), int(r.integers(5, 30))
        tk = toks(B, T, V, low=0)
        tk[:, 1] = torch.clamp(tk[:, 1], min=1)          # at least one real target
        cases.append(Case(f"random #{i + 1}", logits(B, T, V, scale=float(r.uniform(0.5, 4))), tk))
    return cases


# ---------------------------------------------------------------------------- apply_temperature
def reference_apply_temperature(logits, temperature: float):
    """``softmax(logits / T)`` over the last dimension."""
    return generate.apply_temperature(logits, temperature)


def _v_temperature(got, logits, temperature):
    # rtol 1e-4: float32 answers computed another correct way (exp(z/T - logsumexp(z/T))) differ by a few
    # 1e-5 near logits of 1000; every wrong answer the tests know is off by far more
    close(got, reference_apply_temperature(logits, temperature), rtol=1e-4)


@exercise(compare=_v_temperature,
          hint="scale the logits so that a temperature above 1 flattens the distribution and one below 1 "
               "sharpens it, then turn each row (the last dimension only) into probabilities in a way that "
               "stays finite when the logits are huge")
def apply_temperature(r):
    """Check ``apply_temperature(logits, temperature) -> probabilities`` (softmax of logits / T)."""
    fixed = [
        ("T = 1 is the plain softmax", [2.0, 1.0, 0.1], 1.0),
        ("T = 0.5 sharpens", [2.0, 1.0, 0.1, -1.0], 0.5),
        ("T = 2 flattens", [2.0, 1.0, 0.1, -1.0], 2.0),
        ("a batch of rows: softmax over the last dimension", r.normal(size=(3, 6)) * 2, 0.8),
        ("large logits (exp(1000) overflows)", [1000.0, 999.0, 0.0], 1.0),
        ("a tiny temperature", [1.0, 0.5, -1.0, 0.9], 0.01),
    ]
    cases = [Case(name, as_tensor(z), T) for name, z, T in fixed]
    for i in range(3):
        shape = (int(r.integers(2, 12)),) if i % 2 == 0 else (int(r.integers(2, 5)), int(r.integers(2, 9)))
        z = as_tensor(r.normal(size=shape) * r.uniform(0.5, 4))     # the values first, then their scale
        T = float(np.round(r.uniform(0.2, 3.0), 3))
        cases.append(Case(f"random #{i + 1}", z, T))
    return cases


# ---------------------------------------------------------------------------- top_k_filter
def reference_top_k_filter(logits, k: int):
    """The ``k`` largest logits of each row kept (exactly ``k``, ties or not), the others set to ``-inf``."""
    return generate.top_k_filter(logits, k)


def _v_top_k(got, logits, k):
    g = as_array(got)
    z = logits.numpy().astype(np.float64)
    if g.shape != z.shape:
        raise CheckFailure(f"wrong shape: expected {z.shape} (the same as the logits), got {g.shape}")
    V = z.shape[-1]
    want = min(k, V)
    gr, zr = g.reshape(-1, V), z.reshape(-1, V)
    if np.isnan(gr).any():
        raise CheckFailure("your result contains NaN")
    if np.isposinf(gr).any():
        raise CheckFailure("your result contains +inf; the removed entries must be float('-inf')")
    kept = np.isfinite(gr)
    n_kept = kept.sum(1)
    if want < V and np.all(kept):
        row = int(np.argmax(n_kept))
        v = gr[row, int(np.argmin(zr[row]))]             # the smallest logit of a row is always removed
        raise CheckFailure(f"the removed entries must be float('-inf'), got {v:g}: after a softmax only -inf "
                           "gives probability exactly 0")
    for row in np.flatnonzero(n_kept != want):
        row = int(row)
        kth = np.sort(zr[row])[::-1][want - 1]
        if n_kept[row] > want and np.array_equal(kept[row], zr[row] >= kth):
            raise CheckFailure(f"row {row} keeps {int(n_kept[row])} entries because several logits tie with the "
                               f"k-th largest; keep exactly k={want} (any {want} of the largest, ties or not)")
        raise CheckFailure(f"row {row} keeps {int(n_kept[row])} entries; expected exactly k={want}")
    close(gr[kept], zr[kept], rtol=1e-6, atol=1e-7, where="(the kept logits must keep their values)")
    for row in range(len(zr)):
        if want < V and zr[row][kept[row]].min() < zr[row][~kept[row]].max():
            raise CheckFailure(f"row {row} kept the wrong entries: keep the k largest logits of each row "
                               "(the last dimension)")
    expected = reference_top_k_filter(logits, k).numpy().astype(np.float64).reshape(-1, V)
    for row in range(len(zr)):
        close(np.sort(gr[row][kept[row]]), np.sort(expected[row][np.isfinite(expected[row])]),
              rtol=1e-6, atol=1e-7, where=f"(the values kept in row {row})")


@exercise(compare=_v_top_k,
          hint="find where the k largest entries of each row (the last dimension) are, and build a new tensor "
               "that keeps their values and holds minus infinity everywhere else; exactly k survive even when "
               "values tie, and a k at least as long as the row keeps everything")
def top_k_filter(r):
    """Check ``top_k_filter(logits, k) -> logits``: exactly ``min(k, V)`` entries of each row kept (the largest;
    which of several equal values is up to the student), the others set to ``-inf``."""
    fixed = [
        ("k = 3 of 8", r.normal(size=8) * 2, 3),
        ("k = 1 keeps only the largest", r.normal(size=6), 1),
        ("k = V keeps everything", r.normal(size=5), 5),
        ("all logits negative", -np.abs(r.normal(size=7)) - 1.0, 2),
        ("a batch: the top k of each row", r.normal(size=(4, 9)) * 2, 2),
        ("ties at the k-th largest: still exactly k kept", [1.5, 3.0, 0.5, 1.5, -2.0, 1.5, 0.0], 2),
        ("k larger than the vocabulary keeps everything", r.normal(size=6), 9),
        ("whole-number logits (many ties)", r.integers(-3, 4, size=(3, 10)).astype(float), int(r.integers(2, 8))),
    ]
    cases = [Case(name, as_tensor(z), k) for name, z, k in fixed]
    for i in range(3):
        shape = (int(r.integers(3, 20)),) if i != 1 else (int(r.integers(2, 5)), int(r.integers(3, 12)))
        k = int(r.integers(1, shape[-1] + 1))
        cases.append(Case(f"random #{i + 1}", randn(r, *shape, scale=3), k))
    return cases
