"""What every benchmark shares: timing, the machine's description, and writing the results.

``results.json`` holds lists of rows (``nll``, ``speed``, ``scaling``) and a ``runs`` list that says
where and when each part was measured; ``RESULTS.md`` is the same numbers as tables. A run that
measures only some parts (``--only``) merges its rows into the files already in the output folder,
replacing the rows it measured again, so a full table can be made in several runs.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "benchmarks"            # where the full CPU run's RESULTS.md and results.json live
SCHEMA = 1

# the key that says two rows measure the same thing (a later run replaces an earlier row)
ROW_KEYS = {"nll": ("dataset", "model", "device"), "speed": ("name", "device"), "scaling": ("model", "device")}


# ------------------------------------------------------------------------------------------ timing

def median_time(fn, runs: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``runs`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory(contextlib.AbstractContextManager):
    """Peak memory used inside a ``with`` block, in bytes above what was in use when it began.

    On CUDA: ``torch.cuda.max_memory_allocated``. On a CPU: the process's resident memory,
    sampled every millisecond by a thread (so a peak shorter than that can be missed).
    """

    def __init__(self, device: str = "cpu"):
        self.device = str(device)
        self.bytes = 0

    def __enter__(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = _rss_bytes()
            self._peak = self._base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            self._stop.wait(0.001)

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.bytes = max(0, torch.cuda.max_memory_allocated() - self._base)
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss_bytes())
            self.bytes = max(0, self._peak - self._base)
        return False


def peak_tensor_bytes(fn) -> int:
    """The most bytes held at once by the tensors that the operations inside ``fn()`` return, counted op by op.

    A result that shares an input's storage (a view, an in-place op) is not new memory; a tensor's bytes are
    released when it is freed. Memory a fused kernel uses inside itself is not seen. Deterministic, unlike a
    process's resident memory, which the allocator's caching hides.
    """
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class _Count(TorchDispatchMode):
        live = peak = 0

        def _free(self, n):
            self.live -= n

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            inputs = {a.untyped_storage().data_ptr() for a in tree_leaves((args, kwargs)) if torch.is_tensor(a)}
            for t in tree_leaves(out):
                if torch.is_tensor(t) and t.untyped_storage().data_ptr() not in inputs:
                    n = t.untyped_storage().nbytes()
                    self.live += n
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(t, self._free, n)
            return out

    with _Count() as counter:
        out = fn()
        del out
    return counter.peak


def sync(device: str) -> None:
    """Wait for queued GPU work, so that a timer measures it (nothing on a CPU)."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------ the machine

def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other work on the machine slows every timing)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(device: str = "cpu") -> dict:
    """Machine, versions, device, date and load average, for the head of the results."""
    import numpy as np
    import torch

    dev = str(device)
    name = torch.cuda.get_device_name(0) if dev.startswith("cuda") and torch.cuda.is_available() else None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "device": dev,
        "device_name": name or f"{cpu_name()} (CPU)",
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "commit": git_commit(),
        "load_average_at_start": load_average(),
    }


# ------------------------------------------------------------------------------------------ writing

def _key(section: str, row: dict) -> tuple:
    return tuple(row.get(k) for k in ROW_KEYS[section])


def merge(old: dict | None, new: dict) -> dict:
    """``new`` results laid over ``old`` ones: rows with the same key are replaced, others kept."""
    if not old or old.get("schema") != SCHEMA:
        return new
    out = dict(old)
    remeasured = {p for run in new.get("runs", []) for p in run.get("parts", [])}
    for section in ROW_KEYS:
        fresh = new.get(section, [])
        keys = {_key(section, r) for r in fresh}
        # a row goes when the same row is measured again, or (speed, scaling) when its part is run again
        out[section] = [r for r in old.get(section, []) if _key(section, r) not in keys
                        and not (section != "nll" and r.get("part") in remeasured)] + fresh
    parts = {p for run in new.get("runs", []) for p in run.get("parts", [])}
    parts |= {s["part"] for run in new.get("runs", []) for s in run.get("skipped", [])}
    kept = []
    for run in old.get("runs", []):      # an older run keeps the parts (and the skipped parts) not measured again
        left = [p for p in run.get("parts", []) if p not in parts]
        skip = [s for s in run.get("skipped", []) if s["part"] not in parts]
        if left or skip:
            kept.append({**run, "parts": left, "skipped": skip})
    out["runs"] = kept + new.get("runs", [])
    for k, v in new.items():
        if k not in ROW_KEYS and k != "runs":
            out[k] = v
    return out


@contextlib.contextmanager
def _locked(folder: Path):
    """One writer at a time in ``folder`` (two partial runs may finish together)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".results.lock", "w") as f:
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except ImportError:        # Windows: no lock, one run at a time
            pass
        yield


def write_results(folder: Path, results: dict, markdown) -> tuple[Path, Path]:
    """Merge ``results`` into ``folder/results.json`` and rewrite ``folder/RESULTS.md`` from the merged data.

    ``markdown(results) -> str`` renders the tables. Both files are replaced atomically.
    """
    folder = Path(folder)
    with _locked(folder):
        path_json, path_md = folder / "results.json", folder / "RESULTS.md"
        old = None
        if path_json.is_file():
            try:
                old = json.loads(path_json.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
        merged = merge(old, results)
        for path, text in ((path_json, json.dumps(merged, indent=1) + "\n"), (path_md, markdown(merged))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    return path_json, path_md


def fmt(x, digits: int = 2) -> str:
    """A number for a table: thousands separators, ``-`` for nothing."""
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def say(*parts) -> None:
    print(*parts, flush=True)
    sys.stdout.flush()
