"""Plain data on the wire: how a student's answer crosses from a grading job to the judge.

Under grading (:mod:`course.grading.judge`) the student's function runs in a job process and its
answer is judged in the grader's own process. What comes back is encoded here as JSON with a few
tagged forms, and decoded into new, exact built-in, NumPy and torch values:

- ``None``, ``bool``, ``int``, ``float`` (NaN and infinities too), ``complex``, ``str``, ``bytes``;
- lists, tuples and dicts (any plain keys), nested up to :data:`MAX_DEPTH`;
- NumPy arrays and scalars of numeric, boolean, string or bytes dtypes (never ``object``);
- torch tensors (their values, dtype, and whether they need or carry a gradient), rebuilt as new tensors;
- the course's own dataclasses and named tuples, rebuilt from their fields by the judge's own class;
- anything else (a model, a student's class, a function) as :class:`Opaque`, which holds only the
  type's name: a check sees "a MyThing", never an object with behaviour.

So an object that lies (a tensor subclass with its own ``__torch_function__``, an ``__eq__`` that
always says yes) cannot survive the trip: only its values do. Decoding never unpickles and never
imports: a tagged course type is looked up among the modules the judge has already loaded, and
refused unless it really is a course dataclass or named tuple.

Lesson: 00_welcome
"""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import sys

import numpy as np

from .values import plain

__all__ = ["encode", "decode", "Opaque", "WireError", "MAX_BYTES", "MAX_DEPTH"]

MAX_BYTES = 256 * 1024 * 1024      # the largest answer the judge reads
MAX_DEPTH = 60
_DTYPE_KINDS = "biufcSU"           # bool, int, uint, float, complex, bytes, str: never object


class WireError(ValueError):
    """Raised for data that is not plain (on encoding) or not well formed (on decoding)."""


@dataclasses.dataclass(frozen=True)
class Opaque:
    """Stands in for a value that is not plain data: only its type's name crossed."""

    type_name: str

    def __repr__(self) -> str:
        return f"a {self.type_name}"


def _type_name(x) -> str:
    t = type(x)
    try:
        return str(type.__dict__["__qualname__"].__get__(t))[:80]
    except Exception:  # noqa: BLE001
        return "object"


# ------------------------------------------------------------------------------------ encoding
def encode(value) -> bytes:
    """``value`` (a student's answer) as bytes of plain data; what is not plain becomes :class:`Opaque`."""
    return json.dumps(_enc(plain_or_opaque(value), 0), allow_nan=False, separators=(",", ":")).encode()


def plain_or_opaque(value):
    try:
        return plain(value)
    except Exception:  # noqa: BLE001 - a cycle, a value too deep: the judge sees what it was
        return Opaque(_type_name(value))


def _array(a: np.ndarray) -> dict:
    a = np.asarray(a)
    if not a.flags.c_contiguous:
        a = a.copy(order="C")          # (np.ascontiguousarray would make a 0-d array 1-d)
    if a.dtype.kind not in _DTYPE_KINDS:
        raise WireError("object array")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _float(x: float):
    if math.isfinite(x):
        return x
    return {"$f": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}


def _enc(x, depth: int):
    if depth > MAX_DEPTH:
        return {"$opaque": "value nested too deeply"}
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x if abs(x) < 2**53 else {"$int": str(x)}
    if t is float:
        return _float(x)
    if t is complex:
        return {"$complex": [_float(x.real), _float(x.imag)]}
    if t is bytes:
        return {"$bytes": base64.b64encode(x).decode()}
    if t is list:
        return [_enc(v, depth + 1) for v in x]
    if t is tuple:
        return {"$tuple": [_enc(v, depth + 1) for v in x]}
    if t is dict:
        return {"$dict": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in x.items()]}
    if t is Opaque:
        return {"$opaque": x.type_name}
    if t is np.ndarray:
        try:
            return {"$nd": _array(x)}
        except WireError:
            return {"$opaque": "NumPy array of Python objects"}
    if isinstance(x, np.generic) and type(x).__module__ == "numpy":
        try:
            return {"$np": _array(np.asarray(x))}
        except WireError:
            return {"$opaque": _type_name(x)}
    torch = sys.modules.get("torch")
    if torch is not None and t is torch.Tensor:
        try:
            data = x.detach().cpu()
            if data.is_complex() or data.dtype == torch.bfloat16:
                arr = data.to(torch.complex128 if data.is_complex() else torch.float32).numpy()
            else:
                arr = data.resolve_conj().resolve_neg().numpy()
            grad = 2 if x.grad_fn is not None else 1 if x.requires_grad else 0
            return {"$t": _array(arr), "dtype": str(data.dtype).removeprefix("torch."), "grad": grad}
        except Exception:  # noqa: BLE001 - a sparse or meta tensor: not plain data
            return {"$opaque": "torch tensor that is not dense"}
    if dataclasses.is_dataclass(x) and not isinstance(x, type) and _course_type(t):
        return {"$dc": _qualified(t), "fields": [[f.name, _enc(getattr(x, f.name), depth + 1)]
                                                 for f in dataclasses.fields(x)]}
    if isinstance(x, tuple) and hasattr(t, "_fields") and _course_type(t):
        return {"$nt": _qualified(t), "items": [_enc(v, depth + 1) for v in tuple.__iter__(x)]}
    return {"$opaque": _type_name(x)}


def _qualified(t: type) -> str:
    return f"{t.__module__}:{t.__qualname__}"


def _course_type(t: type) -> bool:
    mod = type.__dict__["__module__"].__get__(t)
    return isinstance(mod, str) and mod.split(".")[0] == "course" and _lookup(_qualified(t)) is t


def _lookup(name: str):
    """The course class called ``module:qualname``, from modules already loaded (never imports)."""
    mod, _, qual = name.partition(":")
    if mod.split(".")[0] != "course":
        return None
    obj = sys.modules.get(mod)
    for part in qual.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    return obj if isinstance(obj, type) else None


# ------------------------------------------------------------------------------------ decoding
def decode(data: bytes):
    """The value ``data`` (from :func:`encode`) holds, rebuilt from plain parts only."""
    if len(data) > MAX_BYTES:
        raise WireError(f"the answer is larger than {MAX_BYTES // 2**20} MB")
    try:
        tree = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WireError(f"not well-formed data ({type(e).__name__})") from None
    return _dec(tree, 0)


def _num(x):
    if type(x) in (int, float):
        return float(x)
    if type(x) is dict and set(x) == {"$f"} and x["$f"] in ("nan", "inf", "-inf"):
        return float(x["$f"])
    raise WireError("a number was expected")


def _arr(d) -> np.ndarray:
    if type(d) is not dict or set(d) != {"dtype", "shape", "data"}:
        raise WireError("malformed array")
    dtype = np.dtype(str(d["dtype"]))
    if dtype.kind not in _DTYPE_KINDS or dtype.hasobject:
        raise WireError("object arrays are not plain data")
    shape = d["shape"]
    if type(shape) is not list or not all(type(n) is int and 0 <= n for n in shape) or len(shape) > 32:
        raise WireError("malformed array shape")
    raw = base64.b64decode(str(d["data"]).encode(), validate=True)
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise WireError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _dec(x, depth: int):
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    t = type(x)
    if x is None or t in (bool, int, float, str):
        return x
    if t is list:
        return [_dec(v, depth + 1) for v in x]
    if t is not dict or len(x) == 0:
        raise WireError("malformed value")
    tag = next(iter(x))
    if tag == "$int" and len(x) == 1:
        return int(str(x[tag]))
    if tag == "$f" and len(x) == 1:
        return _num(x)
    if tag == "$complex" and len(x) == 1 and type(x[tag]) is list and len(x[tag]) == 2:
        return complex(_num(x[tag][0]), _num(x[tag][1]))
    if tag == "$bytes" and len(x) == 1:
        return base64.b64decode(str(x[tag]).encode(), validate=True)
    if tag == "$tuple" and len(x) == 1 and type(x[tag]) is list:
        return tuple(_dec(v, depth + 1) for v in x[tag])
    if tag == "$dict" and len(x) == 1 and type(x[tag]) is list:
        out = {}
        for pair in x[tag]:
            if type(pair) is not list or len(pair) != 2:
                raise WireError("malformed dict")
            key = _dec(pair[0], depth + 1)
            try:
                out[key] = _dec(pair[1], depth + 1)
            except TypeError:
                raise WireError("a dict key that is not hashable") from None
        return out
    if tag == "$opaque" and len(x) == 1:
        return Opaque(str(x[tag])[:80])
    if tag == "$nd" and len(x) == 1:
        return _arr(x[tag])
    if tag == "$np" and len(x) == 1:
        a = _arr(x[tag])
        if a.shape != ():
            raise WireError("a NumPy scalar must have shape ()")
        return a[()]
    if tag == "$t" and set(x) == {"$t", "dtype", "grad"}:
        import torch

        a = _arr(x["$t"])
        dtype = getattr(torch, str(x["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise WireError("unknown tensor dtype")
        tensor = torch.from_numpy(a).to(dtype)
        if x["grad"] in (1, 2) and type(x["grad"]) is int and (tensor.is_floating_point() or tensor.is_complex()):
            tensor.requires_grad_(True)
            if x["grad"] == 2:          # it was computed in a graph (it had a grad_fn): so is its stand-in
                tensor = tensor.clone()
        return tensor
    if tag == "$dc" and set(x) == {"$dc", "fields"}:
        cls = _lookup(str(x["$dc"]))
        if cls is None or not dataclasses.is_dataclass(cls):
            raise WireError("not a course type")
        if type(x["fields"]) is not list:
            raise WireError("malformed fields")
        values = {}
        for pair in x["fields"]:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise WireError("malformed field")
            values[pair[0]] = _dec(pair[1], depth + 1)
        names = {f.name for f in dataclasses.fields(cls)}
        if set(values) != names:
            raise WireError(f"the fields of {cls.__name__} do not match")
        obj = object.__new__(cls)
        for k, v in values.items():
            object.__setattr__(obj, k, v)
        return obj
    if tag == "$nt" and set(x) == {"$nt", "items"}:
        cls = _lookup(str(x["$nt"]))
        if cls is None or not (issubclass(cls, tuple) and hasattr(cls, "_fields")) or type(x["items"]) is not list:
            raise WireError("not a course named tuple")
        items = [_dec(v, depth + 1) for v in x["items"]]
        if len(items) != len(cls._fields):
            raise WireError(f"the fields of {cls.__name__} do not match")
        return tuple.__new__(cls, items)
    raise WireError("malformed value")
