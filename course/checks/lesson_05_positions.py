"""Checks for lesson 05, attention from first principles: sinusoidal positional encodings.

Written with the check kit (:mod:`course.checks.kit`); the other exercises of the lesson are in
:mod:`course.checks.lesson_05`. Expected answers come from :mod:`course.nn.attention`, computed in the
comparison after the student's function has run.

Lesson: 05_attention_math
"""
from __future__ import annotations


import torch

from ..nn import attention as _att
from .kit import CheckFailure, Case, against, exercise, matches

LESSON = "05_attention_math"


# ---------------------------------------------------------------------------- sinusoidal_positions
def reference_sinusoidal_positions(n_positions, d_model):
    """:func:`course.nn.attention.sinusoidal_positions`."""
    return _att.sinusoidal_positions(n_positions, d_model)


def _pe(n, d, *, exponent, pairs=True, swap=False, concat=False, start=0):
    p = torch.arange(start, start + n, dtype=torch.float64)[:, None]
    if concat:
        i = torch.arange(d // 2, dtype=torch.float64)
        angle = p / 10000.0 ** (2 * i / d)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).float()
    j = torch.arange(d, dtype=torch.float64)
    angle = p / 10000.0 ** (exponent(j // 2 if pairs else j) / d)
    even = torch.arange(d) % 2 == 0
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    return torch.where(even, first(angle), second(angle)).float()


def _pe_swapped(n, d):
    return _pe(n, d, exponent=lambda i: 2 * i, swap=True)


def _pe_i_over_d(n, d):
    return _pe(n, d, exponent=lambda i: i)


def _pe_column_index(n, d):
    return _pe(n, d, exponent=lambda j: j, pairs=False)


def _pe_concatenated(n, d):
    return _pe(n, d, exponent=None, concat=True)


def _pe_from_one(n, d):
    return _pe(n, d, exponent=lambda i: 2 * i, start=1)


def _pe_multiplied(n, d):
    return _pe(n, d, exponent=lambda i: -2 * i)              # p / 10000^(-2i/d) = p * 10000^(2i/d)


PE_MISTAKES = {
    _pe_swapped: "that is sin and cos swapped: the even columns 2i hold the sine",
    _pe_i_over_d: "that is the exponent i/d; the pair of columns (2i, 2i+1) uses 10000^(2i/d)",
    _pe_column_index: "that uses the column index as the exponent's 2i, so the cosine column 2i+1 gets another "
                      "frequency than its sine column 2i",
    _pe_concatenated: "that is all the sines followed by all the cosines; the columns interleave a sine and a cosine",
    _pe_from_one: "that counts positions from 1; the first position is p = 0",
}
PE_MULTIPLIED = ("that is p times 10000^(2i/d); the angle is p divided by it, so that the pairs turn ever more "
                 "slowly as i grows")
_compare_pe = against(reference_sinusoidal_positions, PE_MISTAKES, rtol=1e-4, atol=1e-4)


def _compare_positions(got, *args, **kwargs):
    """The comparison with the reference, naming the mistakes of ``PE_MISTAKES``, and one more: multiplying by
    ``10000^(2i/d)`` makes angles of about 1000 already at n=4, where float32 keeps only about 1e-4 of them, so
    that answer is recognized within 1e-3 (every other answer is further from it than that)."""
    try:
        _compare_pe(got, *args, **kwargs)
    except CheckFailure as e:
        if matches(got, _pe_multiplied, args, kwargs, rtol=0, atol=1e-3):
            raise CheckFailure(f"{str(e).rstrip('. ')}; {PE_MULTIPLIED}") from None
        raise


@exercise(compare=_compare_positions,
          hint="row p is position p, counted from 0; columns 2i and 2i+1 are the sine and the cosine of one angle, "
               "p / 10000^(2i/d)")
def sinusoidal_positions(r):
    """Check ``sinusoidal_positions(n_positions, d_model) -> (n_positions, d_model)``."""
    cases = [Case("n=4, d=6", 4, 6), Case("n=1, d=4 (position 0 only)", 1, 4), Case("n=10, d=8", 10, 8),
             Case("n=50, d=16", 50, 16)]
    for i in range(3):
        n, d = int(r.integers(2, 65)), 2 * int(r.integers(2, 17))
        cases.append(Case(f"random #{i + 1} (n={n}, d={d})", n, d))
    return cases
