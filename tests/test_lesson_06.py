"""Lesson 06 checks: the reference solutions and independently written ones pass; the stub and known-wrong
implementations fail, naming the mistake; only the lower triangle of a skew is judged; the random cases change
under grading; the references agree with the course's relative logits, attention and sampling code."""
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import generate
from course.checks import exercises_of, lesson_06, pass_line
from course.nn import relative
from exercise_helpers import contract_tests, peeking_cheat, run_check, seen_then_graded

NAMES = ["skew", "relative_attention", "top_p_filter", "kv_cache_step"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- the solutions (as in the notebook)
def skew(rel):
    L = rel.shape[-1]
    padded = F.pad(rel, (1, 0))                                  # (..., L, L + 1)
    return padded.reshape(*rel.shape[:-2], L + 1, L)[..., 1:, :]


def relative_attention(q, k, v, E):
    L, d = q.shape[-2], q.shape[-1]
    logits = (q @ k.transpose(-2, -1) + skew(q @ E.transpose(-2, -1))) / math.sqrt(d)
    future = torch.ones(L, L, dtype=torch.bool).triu(1)
    return torch.softmax(logits.masked_fill(future, float("-inf")), dim=-1) @ v


def top_p_filter(logits, p):
    probs, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)
    before = probs.cumsum(dim=-1) - probs
    drop = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before >= p)
    return logits.masked_fill(drop, float("-inf"))


def kv_cache_step(q, k, v, past_k, past_v):
    keys = torch.cat([past_k, k], dim=-2)
    values = torch.cat([past_v, v], dim=-2)
    weights = torch.softmax(q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ values, keys, values


SOLUTIONS = {f.__name__: f for f in [skew, relative_attention, top_p_filter, kv_cache_step]}


# ---------------------------------------------------------------- correct, written another way
def skew_by_gather(rel):
    """The definition read directly: gather column L - 1 - i + j (clamped above the diagonal)."""
    L = rel.shape[-1]
    i = torch.arange(L)[:, None]
    j = torch.arange(L)[None, :]
    col = (L - 1 - i + j).clamp(max=L - 1).expand(*rel.shape[:-2], L, L)
    return rel.gather(-1, col)


def skew_with_nan_above(rel):
    """Correct below and on the diagonal, NaN above it: those entries are not judged."""
    out = skew_by_gather(rel).clone()
    L = rel.shape[-1]
    out[..., torch.ones(L, L, dtype=torch.bool).triu(1)] = float("nan")
    return out


def skew_numpy_loop(rel):
    """A NumPy loop, returning a NumPy array."""
    a = rel.numpy()
    L = a.shape[-1]
    out = np.full(a.shape, -np.inf)
    for i in range(L):
        for j in range(i + 1):
            out[..., i, j] = a[..., i, L - 1 - i + j]
    return out


def relative_attention_by_loop(q, k, v, E):
    """Every logit written out: q_i . k_j + q_i . e_(j - i), over the keys j <= i."""
    L, d = q.shape[-2], q.shape[-1]
    rows = []
    for i in range(L):
        scores = torch.stack([(q[..., i, :] * (k[..., j, :] + E[..., L - 1 - i + j, :])).sum(-1)
                              for j in range(i + 1)], dim=-1) / math.sqrt(d)      # (..., i + 1)
        w = torch.softmax(scores, dim=-1)
        rows.append((w[..., :, None] * v[..., : i + 1, :]).sum(-2))
    return torch.stack(rows, dim=-2)


def relative_attention_with_sdpa(q, k, v, E):
    """torch's attention with the relative logits as a float mask (-inf above the diagonal)."""
    L, d = q.shape[-2], q.shape[-1]
    bias = relative.relative_logits(q, E) / math.sqrt(d)
    bias = bias.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf"))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def top_p_by_loop(logits, p):
    """Row by row in plain Python: add tokens from the most likely down until the total reaches p."""
    z = logits.detach().clone()
    flat = z.reshape(-1, z.shape[-1])
    for row in flat:
        probs = torch.softmax(row.double(), dim=-1).tolist()
        ranked = sorted(range(len(probs)), key=lambda t: -probs[t])
        total, keep = 0.0, set()
        for t in ranked:
            keep.add(t)
            total += probs[t]
            if total >= p:
                break
        for t in range(len(probs)):
            if t not in keep:
                row[t] = float("-inf")
    return flat.reshape(z.shape)


def kv_cache_with_sdpa(q, k, v, past_k, past_v):
    keys, values = torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)
    return list((F.scaled_dot_product_attention(q, keys, values), keys, values))


INDEPENDENT = {"skew": [skew_by_gather, skew_with_nan_above, skew_numpy_loop],
               "relative_attention": [relative_attention_by_loop, relative_attention_with_sdpa],
               "top_p_filter": [top_p_by_loop, generate.top_p_filter],
               "kv_cache_step": [kv_cache_with_sdpa]}


# ---------------------------------------------------------------- plausible wrong implementations
def skew_drop_last_row(rel):                     # the classic off-by-one
    L = rel.shape[-1]
    return F.pad(rel, (1, 0)).reshape(*rel.shape[:-2], L + 1, L)[..., :-1, :]


def skew_pad_on_the_right(rel):
    L = rel.shape[-1]
    return F.pad(rel, (0, 1)).reshape(*rel.shape[:-2], L + 1, L)[..., 1:, :]


def skew_pad_right_drop_last(rel):
    L = rel.shape[-1]
    return F.pad(rel, (0, 1)).reshape(*rel.shape[:-2], L + 1, L)[..., :-1, :]


def skew_pass_through(rel):
    return rel.clone()


def skew_batch_dims_hard_coded(rel):             # works for (B, H, L, L) only
    B, H, L, _ = rel.shape
    return F.pad(rel, (1, 0)).reshape(B, H, L + 1, L)[:, :, 1:, :]


def skew_flattened_all_batches(rel):             # one reshape over everything: rows slide across items
    L = rel.shape[-1]
    flat = F.pad(rel.reshape(-1, L), (1, 0)).reshape(-1)
    return flat[L + 1:][: rel.numel()].reshape(rel.shape) if rel.numel() > 1 else rel.clone()


def relattn_no_causal_mask(q, k, v, E):
    d = q.shape[-1]
    return torch.softmax((q @ k.transpose(-2, -1) + skew(q @ E.transpose(-2, -1))) / math.sqrt(d), dim=-1) @ v


def relattn_without_relative_term(q, k, v, E):
    L, d = q.shape[-2], q.shape[-1]
    logits = (q @ k.transpose(-2, -1)) / math.sqrt(d)
    return torch.softmax(logits.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf")), -1) @ v


def relattn_unskewed(q, k, v, E):
    L, d = q.shape[-2], q.shape[-1]
    logits = (q @ k.transpose(-2, -1) + q @ E.transpose(-2, -1)) / math.sqrt(d)
    return torch.softmax(logits.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf")), -1) @ v


def relattn_off_by_one_skew(q, k, v, E):
    L, d = q.shape[-2], q.shape[-1]
    logits = (q @ k.transpose(-2, -1) + skew_drop_last_row(q @ E.transpose(-2, -1))) / math.sqrt(d)
    return torch.softmax(logits.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf")), -1) @ v


def relattn_relative_term_unscaled(q, k, v, E):
    L, d = q.shape[-2], q.shape[-1]
    logits = q @ k.transpose(-2, -1) / math.sqrt(d) + skew(q @ E.transpose(-2, -1))
    return torch.softmax(logits.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf")), -1) @ v


def top_p_strict_running_total(logits, p):       # keep while cumsum <= p, then keep the top token anyway
    probs, order = torch.softmax(logits, -1).sort(-1, descending=True)
    drop = probs.cumsum(-1) > p
    drop[..., 0] = False
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def top_p_can_keep_nothing(logits, p):           # the same without keeping at least one token
    probs, order = torch.softmax(logits, -1).sort(-1, descending=True)
    drop = probs.cumsum(-1) > p
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def top_p_on_unsorted_probabilities(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float("-inf"))


def top_p_returns_probabilities(logits, p):
    return torch.softmax(top_p_filter(logits, p), dim=-1)


def top_p_keeps_the_tail(logits, p):
    return logits.masked_fill(torch.isfinite(top_p_filter(logits, p)), float("-inf"))


def top_p_top_k_instead(logits, p):              # k = p * V tokens
    return generate.top_k_filter(logits, max(1, int(p * logits.shape[-1])))


def kv_cache_not_extended(q, k, v, past_k, past_v):
    out, _, _ = kv_cache_step(q, k, v, past_k, past_v)
    return out, past_k, past_v


def kv_new_token_in_front(q, k, v, past_k, past_v):
    keys, values = torch.cat([k, past_k], -2), torch.cat([v, past_v], -2)
    return torch.softmax(q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ values, keys, values


def kv_attend_before_appending(q, k, v, past_k, past_v):
    w = torch.softmax(q @ past_k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
    return w @ past_v, torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)


def kv_attends_to_itself_only(q, k, v, past_k, past_v):
    return v.clone(), torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)


def kv_unscaled(q, k, v, past_k, past_v):
    keys, values = torch.cat([past_k, k], -2), torch.cat([past_v, v], -2)
    return torch.softmax(q @ keys.transpose(-2, -1), -1) @ values, keys, values


def kv_returns_the_output_only(q, k, v, past_k, past_v):
    return kv_cache_step(q, k, v, past_k, past_v)[0]


def kv_concatenated_on_the_feature_axis(q, k, v, past_k, past_v):
    keys, values = torch.cat([past_k, k], -1), torch.cat([past_v, v], -1)
    return kv_cache_step(q, k, v, past_k, past_v)[0], keys, values


WRONG = {
    "skew": [skew_drop_last_row, skew_pad_on_the_right, skew_pad_right_drop_last, skew_pass_through,
             skew_batch_dims_hard_coded, skew_flattened_all_batches],
    "relative_attention": [relattn_no_causal_mask, relattn_without_relative_term, relattn_unskewed,
                           relattn_off_by_one_skew, relattn_relative_term_unscaled],
    "top_p_filter": [top_p_strict_running_total, top_p_can_keep_nothing, top_p_on_unsorted_probabilities,
                     top_p_returns_probabilities, top_p_keeps_the_tail, top_p_top_k_instead],
    "kv_cache_step": [kv_cache_not_extended, kv_new_token_in_front, kv_attend_before_appending,
                      kv_attends_to_itself_only, kv_unscaled, kv_returns_the_output_only,
                      kv_concatenated_on_the_feature_axis],
}
for _name in NAMES:
    WRONG[_name].append(peeking_cheat(_name))

# what the fail line says for a wrong answer the check can recognize (never the fix itself)
MESSAGES = {
    skew_drop_last_row: "dropping the last row instead of the first",
    skew_pad_on_the_right: "padding the zero column on the right",
    skew_pad_right_drop_last: "both steps on the wrong side",
    skew_pass_through: "rel itself, not skewed",
    relattn_no_causal_mask: "the causal mask is missing",
    relattn_without_relative_term: "the relative term S_rel is missing",
    relattn_unskewed: "without skewing it",
    relattn_off_by_one_skew: "dropping the last row instead of the first",
    relattn_relative_term_unscaled: "S_rel is added after the division",
    top_p_strict_running_total: "drops the token that makes the running total reach p",
    top_p_can_keep_nothing: "nothing is left",
    top_p_on_unsorted_probabilities: "vocabulary order",
    top_p_returns_probabilities: "that returns probabilities",
    top_p_keeps_the_tail: "keeps the tail",
    kv_cache_not_extended: "must hold the new key and value too",
    kv_new_token_in_front: "go at the END of the cache",
    kv_attend_before_appending: "it must see itself too",
    kv_attends_to_itself_only: "attends to the new token alone",
    kv_unscaled: "not divided by sqrt(d)",
    kv_returns_the_output_only: "return the triple (out, keys, values)",
}


def test_the_lesson_registers_its_exercises_in_order():
    assert [e.name for e in exercises_of("06_music_transformer")] == NAMES


@pytest.mark.parametrize("name, impl", [(n, f) for n, fs in INDEPENDENT.items() for f in fs],
                         ids=[f.__name__ for fs in INDEPENDENT.values() for f in fs])
def test_a_correct_implementation_written_another_way_passes(name, impl):
    assert run_check(name, impl) == pass_line(name)


def test_only_the_lower_triangle_of_a_skew_is_judged():
    for c in lesson_06.skew.cases():
        rel = c.args[0]
        L = rel.shape[-1]
        lower = torch.ones(L, L, dtype=torch.bool).tril()
        ours = torch.as_tensor(lesson_06.reference_skew(rel))
        torch.testing.assert_close(ours[..., lower], skew(rel)[..., lower].double())
        assert (ours[..., ~lower] == 0).all()
    assert run_check("skew", skew_with_nan_above) == pass_line("skew")


def test_the_skew_cases_cover_short_lengths_and_batch_ranks():
    cases = lesson_06.skew.cases()
    lengths = {c.args[0].shape[-1] for c in cases}
    ranks = {c.args[0].dim() - 2 for c in cases}
    assert {1, 2} <= lengths and len(lengths) >= 4
    assert {0, 1, 2, 3} <= ranks


def test_the_skew_reference_is_the_course_skew_and_shaws_gather():
    torch.manual_seed(0)
    for L in (1, 2, 3, 7):
        q, E = torch.randn(2, 3, L, 5), torch.randn(L, 5)
        lower = torch.ones(L, L, dtype=torch.bool).tril()
        ours = torch.as_tensor(lesson_06.reference_skew(q @ E.T))
        torch.testing.assert_close(ours[..., lower], relative.skew(q @ E.T)[..., lower].double())
        torch.testing.assert_close(ours[..., lower], relative.relative_logits_naive(q, E)[..., lower].double(),
                                   atol=1e-5, rtol=1e-5)


def test_the_relative_attention_reference_is_the_course_layer():
    """The exercise's formula is what ``course.nn.transformer.CausalSelfAttention`` computes (before its output
    projection), with the layer's own queries, keys, values and distance table."""
    from course.nn.transformer import CausalSelfAttention, TransformerConfig

    torch.manual_seed(1)
    layer = CausalSelfAttention(TransformerConfig(vocab_size=20, context=12, d_model=16, n_heads=2, dropout=0.0,
                                                  max_relative=12)).eval()
    x = torch.randn(2, 12, 16)
    with torch.no_grad():
        _, _, weights = layer(x)
        q, k, v = (t.reshape(2, 12, 2, 8).transpose(1, 2) for t in layer.qkv(x).split(16, dim=-1))
        ours = lesson_06.reference_relative_attention(q, k, v, layer.rel_emb)
    torch.testing.assert_close(ours, weights @ v, atol=1e-5, rtol=1e-5)


def test_the_kv_reference_matches_the_models_cache():
    """One step of the exercise, per layer, is what ``MusicTransformer.step`` stores: its cache grows by the
    new token's keys and values at the end."""
    from course.nn.transformer import MusicTransformer, TransformerConfig

    torch.manual_seed(2)
    model = MusicTransformer(TransformerConfig(vocab_size=20, context=16, d_model=16, n_heads=2, n_layers=1,
                                               d_ff=32, dropout=0.0, relative=False)).eval()
    x = torch.randint(0, 20, (1, 9))
    with torch.no_grad():
        _, cache = model.step(x[:, :8])
        _, after = model.step(x[:, 8:], cache)
        h = model.blocks[0].ln1(model.embed(x) + model.pos(torch.arange(9)))
        q, k, v = (t.reshape(1, 9, 2, 8).transpose(1, 2) for t in model.blocks[0].attn.qkv(h).split(16, dim=-1))
        out, keys, values = lesson_06.reference_kv_cache_step(q[..., 8:, :], k[..., 8:, :], v[..., 8:, :],
                                                              *cache[0])
    torch.testing.assert_close(keys, after[0][0])
    torch.testing.assert_close(values, after[0][1])
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, full[..., 8:, :], atol=1e-5, rtol=1e-5)


def test_nucleus_cases_keep_a_margin_from_every_running_total():
    """A p within float rounding of a running total would let the precision decide; no case has one."""
    for c in lesson_06.top_p_filter.cases():
        z, p = c.args
        probs = torch.softmax(z.double(), -1).sort(-1, descending=True).values.cumsum(-1)
        assert (probs - p).abs().min() > 1e-3, c.name
    first = lesson_06.top_p_filter.cases()[0]
    assert torch.softmax(first.args[0], -1).max() > first.args[1]          # the confident case


def _key(args) -> str:
    return repr([a.numpy().tobytes() if hasattr(a, "numpy") else a for a in args])


@pytest.mark.parametrize("name", NAMES)
def test_grading_seed_changes_the_random_cases(name, monkeypatch):
    seen, graded, memorized = seen_then_graded(name, getattr(lesson_06, name).cases, SOLUTIONS[name], _key,
                                               monkeypatch)
    assert len(graded) == len(seen)
    changed = [i for i, (c, d) in enumerate(zip(graded, seen)) if _key(c.args) != _key(d.args)]
    assert len(changed) >= 4
    out = run_check(name, memorized)
    assert out.startswith(f"FAIL {name}: case "), out
    assert run_check(name, SOLUTIONS[name]) == pass_line(name)


@pytest.mark.parametrize("name", NAMES)
def test_a_check_is_quick(name):
    start = time.perf_counter()
    run_check(name, SOLUTIONS[name])
    assert time.perf_counter() - start < 2.0


def test_a_fail_line_names_the_mistake_but_not_the_fix():
    for name, ws in WRONG.items():
        for w in ws:
            out = run_check(name, w)
            assert "F.pad" not in out and "cumsum" not in out and "torch.cat" not in out, out


test_solution_passes, test_stub_fails, test_wrong_implementation_fails = contract_tests(
    NAMES, SOLUTIONS, WRONG, expected_message=MESSAGES)


def test_the_lessons_pretrained_entry_retrains_quickly(tmp_path, capsys):
    """``python -m course pretrain music_transformer --quick`` runs the lesson's recipe end to end: a relative-attention
    model that accepts longer sequences than it was trained on, reloaded from its files with the loss on its card."""
    from course import pretrained
    from course.cli import main
    from course.pretrained import recipes

    assert main(["pretrain", "music_transformer", "--quick", "--out", str(tmp_path)]) == 0
    assert "music_transformer:" in capsys.readouterr().out
    info = pretrained.card("music_transformer", tmp_path)
    assert info["lesson"] == "06_music_transformer" and info["mode"] == "quick"
    assert info["config"]["relative"] and info["config"]["context"] > info["settings"]["seq_len"]
    model = pretrained.load("music_transformer", device="cpu", folder=tmp_path)
    assert recipes.check_value("music_transformer", model, quick=True) == pytest.approx(
        info["metrics"]["check"]["value"], rel=1e-4)
    full = recipes.MUSIC_TRANSFORMER["full"]
    assert full["seq_len"] == recipes.MELODY_LSTM["full"]["seq_len"]        # lesson 03's chunks: the NLLs compare
