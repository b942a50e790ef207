"""Plain values and comparison: how a check reads a student's answer without running the student's code.

:func:`plain` reduces an answer to exact built-in, NumPy and torch base values (a subclass whose
``__eq__`` always says True compares as the value it holds); :func:`compare_values` describes the first
difference between an answer and the expected one in a short phrase, never printing the expected
answer wholesale. Both are plain data in, plain data out: the grader can run them outside the
student's kernel.

Lesson: 00_welcome
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

__all__ = ["CheckFailure", "plain", "compare_values", "short", "to_numpy", "is_array_type", "same"]


class CheckFailure(Exception):
    """Raised inside a comparison to describe a wrong answer (caught, never shown as a traceback)."""



def short(x, limit: int = 60) -> str:
    """A short description of a value for fail lines: never a whole array."""
    if hasattr(x, "detach") and hasattr(x, "shape"):
        return f"a torch tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} (dtype {x.dtype})"
    try:
        r = repr(x)
    except Exception:  # a student's object whose repr is broken
        r = f"a {type(x).__name__}"
    if len(r) > limit:
        r = r[: limit - 3] + "..."
    return r


def to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ------------------------------------------------------------------------------------ plain values
_ATOMS = (type(None), bool, int, float, complex, str, bytes)
_TRUSTED_ROOTS = ("course", "numpy", "torch")
_MAX_DEPTH = 60
_IN_PROGRESS = object()
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_trusted_cache: dict[type, bool] = {}


def _trusted_type(t: type) -> bool:
    """Whether ``t`` is a type of the course, NumPy or torch (so its methods are not the student's).

    A class can claim any ``__module__``; it counts only if that module really holds it under its name.
    """
    known = _trusted_cache.get(t)
    if known is not None:
        return known
    ok = False
    try:
        mod, qual = _type_module(t), _type_qualname(t)
        if isinstance(mod, str) and isinstance(qual, str) and mod.split(".")[0] in _TRUSTED_ROOTS:
            obj = sys.modules.get(mod)
            for part in qual.split("."):
                obj = getattr(obj, part, None)
            ok = obj is t
    except Exception:
        ok = False
    if len(_trusted_cache) < 10_000:
        _trusted_cache[t] = ok
    return ok


def plain(x, _depth: int = 0, _memo: dict | None = None):
    """``x`` reduced to plain values, so comparing it runs no code the student wrote.

    Subclasses of ``int``, ``float``, ``complex``, ``str`` and ``bytes`` become the exact built-in
    value they hold (read with the base type's own methods, never the subclass's); lists, tuples and
    dicts (and subclasses) are rebuilt from their real contents; NumPy scalar and array subclasses
    become the NumPy base type, torch tensor subclasses plain tensors; the course's own named
    tuples and dataclasses are rebuilt with plain fields. Anything else (a model, a student's own
    class) is returned unchanged; the checks look at those through their own code. An answer
    that needed no change is returned as the same object. Types are read with ``type(x)``, which
    a student's class cannot fake (``isinstance`` believes a faked ``__class__``).
    """
    t = type(x)
    if t in _ATOMS:
        return x
    if _depth > _MAX_DEPTH:
        raise CheckFailure("your result is nested too deeply to check")
    memo = {} if _memo is None else _memo
    key = id(x)
    seen = memo.get(key)
    if seen is not None:
        if seen[1] is _IN_PROGRESS:
            raise CheckFailure("your result contains itself (a cycle)")
        return seen[1]
    memo[key] = (x, _IN_PROGRESS)     # x stays referenced, so its id is not reused meanwhile
    out = _plain(x, t, _depth + 1, memo)
    memo[key] = (x, out)
    return out


def _plain(x, t, depth, memo):
    def sub(v):
        return plain(v, depth, memo)

    if issubclass(t, int):            # bool cannot be subclassed; an int subclass holds a plain int
        return int.__int__(x)
    if issubclass(t, float):
        return float.__float__(x)
    if issubclass(t, complex):
        return complex(complex.real.__get__(x), complex.imag.__get__(x))
    if issubclass(t, str):
        return str.__str__(x)
    if issubclass(t, bytes):
        return bytes(memoryview(x))
    if issubclass(t, np.generic):
        if _trusted_type(t):
            return x
        base = next((b for b in t.__mro__ if issubclass(b, np.generic) and _trusted_type(b)), None)
        try:
            value = np.generic.item(x)
            return base(value) if base is not None else value
        except Exception:
            raise CheckFailure(f"your result holds a {t.__name__} that could not be read as a number") from None
    if issubclass(t, np.ndarray):
        arr = x if t is np.ndarray else np.ndarray.view(x, np.ndarray)
        if arr.dtype == object:
            items = np.ndarray.ravel(arr).tolist()
            flat = [sub(v) for v in items]
            if any(a is not b for a, b in zip(flat, items)):
                new = np.empty(len(flat), dtype=object)
                for i, v in enumerate(flat):
                    new[i] = v
                return new.reshape(arr.shape)
        return arr
    torch = sys.modules.get("torch")
    if torch is not None and issubclass(t, torch.Tensor):
        if _trusted_type(t):
            return x
        with torch._C.DisableTorchFunctionSubclass():
            return torch.Tensor.as_subclass(x, torch.Tensor)
    if issubclass(t, tuple):
        items = list(tuple.__iter__(x))
        new = [sub(v) for v in items]
        unchanged = all(a is b for a, b in zip(new, items))
        if t is tuple:
            return x if unchanged else tuple(new)
        if _trusted_type(t):
            if hasattr(t, "_fields"):          # the course's named tuple (a Note): plain fields
                return x if unchanged else tuple.__new__(t, new)
            return x                           # e.g. torch.Size
        return tuple(new)
    if issubclass(t, list):
        items = list(list.__iter__(x))
        new = [sub(v) for v in items]
        if t is list and all(a is b for a, b in zip(new, items)):
            return x
        return new
    if issubclass(t, dict):
        items = list(dict.items(x))
        new = [(sub(k), sub(v)) for k, v in items]
        if t is dict and all(a is k and b is v for (a, b), (k, v) in zip(new, items)):
            return x
        return dict(new)
    if _trusted_type(t) and dataclasses.is_dataclass(t):
        names = [f.name for f in dataclasses.fields(t)]
        values = {n: object.__getattribute__(x, n) for n in names}
        new = {n: sub(v) for n, v in values.items()}
        if all(new[n] is values[n] for n in names):
            return x
        out = object.__new__(t)
        for n in names:
            object.__setattr__(out, n, new[n])
        return out
    return x


def compare_values(got, expected, *, rtol: float = 1e-5, atol: float = 1e-6, where: str = "") -> None:
    """Raise :class:`CheckFailure` describing the first difference between ``got`` and ``expected``.

    Handles numbers, arrays and tensors (shape, then values with tolerance), sequences and dicts
    (length, then element by element), and anything else by ``==`` after checking the type
    (so an object that claims to equal everything does not pass). Messages show one differing
    element, never the whole expected answer.
    """
    w = f" {where}" if where else ""
    got = plain(got)            # never ask the student's objects whether they are equal
    tg = type(got)              # the real type (``isinstance`` would trust a faked __class__)
    if got is None and expected is not None:
        raise CheckFailure(f"your function returned None{w}; did you forget `return`?")
    if is_array_type(type(expected)) or isinstance(expected, (float, np.floating)):
        if issubclass(tg, (list, tuple)) and is_array_type(type(expected)):
            raise CheckFailure(f"expected an array/tensor{w}, got a {tg.__name__}")
        if not (is_array_type(tg) or issubclass(tg, (int, float, complex, np.number, np.bool_, list, tuple))):
            raise CheckFailure(f"expected a number or array{w}, got {short(got)}")
        try:
            g = to_numpy(got).astype(np.float64)
        except (TypeError, ValueError):
            raise CheckFailure(f"expected a number or array{w}, got {short(got)}") from None
        e = to_numpy(expected).astype(np.float64)
        if g.shape != e.shape:
            raise CheckFailure(f"wrong shape{w}: expected {e.shape}, got {g.shape}")
        if np.isnan(g).any() and not np.isnan(e).any():
            raise CheckFailure(f"your result{w} contains NaN")
        bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            loc = f" at index {idx}" if g.ndim else ""
            raise CheckFailure(f"wrong value{w}{loc}: expected {e[idx]:.6g}, got {g[idx]:.6g} "
                               f"({int(bad.sum())} of {bad.size} entries differ)")
        return
    if isinstance(expected, (bool, np.bool_)):
        if not issubclass(tg, (bool, np.bool_)) or bool(got) != bool(expected):
            raise CheckFailure(f"expected {expected}{w}, got {short(got)}")
        return
    if isinstance(expected, (int, np.integer)):
        if issubclass(tg, (bool, np.bool_)) or not issubclass(tg, (int, np.integer, float, np.floating)):
            raise CheckFailure(f"expected a whole number{w}, got {short(got)}")
        if got != expected:
            raise CheckFailure(f"wrong value{w}: expected {int(expected)}, got {short(got)}")
        return
    if isinstance(expected, dict):
        if tg is not dict:
            raise CheckFailure(f"expected a dict{w}, got {tg.__name__}")
        missing = [k for k in expected if k not in got]
        if missing:
            raise CheckFailure(f"missing key {missing[0]!r}{w}")
        for k in expected:
            compare_values(got[k], expected[k], rtol=rtol, atol=atol, where=f"{where}[{k!r}]".strip())
        return
    if isinstance(expected, (list, tuple)) and not hasattr(expected, "_fields"):
        if not issubclass(tg, (list, tuple)) and not is_array_type(tg):
            raise CheckFailure(f"expected a {type(expected).__name__}{w}, got {tg.__name__}")
        if len(got) != len(expected):
            raise CheckFailure(f"wrong length{w}: expected {len(expected)} items, got {len(got)}")
        for i, (g, e) in enumerate(zip(got, expected)):
            compare_values(g, e, rtol=rtol, atol=atol, where=f"{where}[{i}]".strip())
        return
    if isinstance(expected, tuple) and issubclass(tg, tuple):   # a named tuple (a Note) against a tuple
        compare_values(tuple(tuple.__iter__(got)), tuple(expected), rtol=rtol, atol=atol, where=where)
        return
    if tg is not type(expected) and not (type(expected) is str and tg is str):
        raise CheckFailure(f"expected a {type(expected).__name__}{w}, got a {tg.__name__}")
    if not bool(expected == got):
        raise CheckFailure(f"wrong result{w}: expected {short(expected)}, got {short(got)}")


def is_array_type(t: type) -> bool:
    """A NumPy array or a torch tensor type (by the real type, not by duck typing)."""
    if issubclass(t, np.ndarray):
        return True
    torch = sys.modules.get("torch")
    return torch is not None and issubclass(t, torch.Tensor)


def same(a, b) -> bool:
    """Whether two inputs are still equal (to detect a function that changed its input)."""
    try:
        compare_values(a, b, rtol=0, atol=0)
        return True
    except CheckFailure:
        return False
    except Exception:
        return True


