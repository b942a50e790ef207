"""``python -m course doctor``: is this environment ready for the course, and if not, what to fix.

Prints versions, the compute device, the audio backend, widget support and whether this is
Colab; whether fast mode is on and how long full-mode training takes (the shipped models' own
runs); whether the data sets are intact (every array against the checksum its index records);
and whether the browser test can run (Chromium and playwright), then a list of fixes. Exits 1
only when something required is missing or broken.

Lesson: 00_welcome
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import sys
import time

__all__ = ["add_arguments", "run", "collect"]

# (import name, what it is for, required?)
PACKAGES = (
    ("numpy", "arrays", True),
    ("torch", "the models", True),
    ("music21", "scores and the chorale corpus", True),
    ("pretty_midi", "MIDI files", True),
    ("matplotlib", "piano rolls and plots", True),
    ("IPython", "audio in notebooks", True),
    ("ipywidgets", "players and sliders", True),
    ("verovio", "sheet music", True),
    ("nbval", "exercise checks", True),
    ("jupyterlab", "the notebook app (not needed on Colab or in VS Code)", False),
    ("fluidsynth", "nicer audio via FluidSynth (optional)", False),
)
MIN_PYTHON = (3, 10)
CHROMIUM = "/usr/bin/chromium"      # what tests/test_browser.py drives (Debian's package)


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="only check versions; skip the device check and the short audio/score render tests")


_DISTRIBUTIONS = {"IPython": "ipython", "fluidsynth": "pyfluidsynth"}


def _version(name: str) -> str | None:
    """The installed version of a module, or None when it is not installed.

    Reads package metadata instead of importing (importing torch, music21 and jupyterlab
    takes seconds); FluidSynth is imported, since it also needs a system library.
    """
    from importlib import metadata

    if name == "fluidsynth":
        from .listen.synth import fluidsynth_available

        if not fluidsynth_available():
            return None
    elif importlib.util.find_spec(name) is None:
        return None
    try:
        return metadata.version(_DISTRIBUTIONS.get(name, name))
    except metadata.PackageNotFoundError:
        mod = sys.modules.get(name)
        return str(getattr(mod, "__version__", "?"))


def in_colab() -> bool:
    """True on Google Colab."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG")) \
        or importlib.util.find_spec("google") is not None and importlib.util.find_spec("google.colab") is not None


def collect(quick: bool = False) -> dict:
    """Everything the report shows, as a dict (``problems``: required fixes, ``advice``: optional ones)."""
    info: dict = {"python": platform.python_version(), "platform": platform.platform(terse=True), "versions": {},
                  "problems": [], "advice": []}
    if sys.version_info < MIN_PYTHON:
        info["problems"].append(f"Python {info['python']} is too old: use Python {'.'.join(map(str, MIN_PYTHON))} or newer.")
    for name, purpose, required in PACKAGES:
        v = _version(name)
        info["versions"][name] = v
        if v is None and required:
            pip = {"IPython": "ipython", "fluidsynth": "pyfluidsynth"}.get(name, name)
            info["problems"].append(f"{name} ({purpose}) is missing: pip install {pip}")
    info["colab"] = in_colab()
    info["widgets"] = info["versions"].get("ipywidgets") is not None
    if info["widgets"] and not info["colab"] and info["versions"].get("jupyterlab") is not None \
            and importlib.util.find_spec("jupyterlab_widgets") is None:
        info["advice"].append("JupyterLab is installed without jupyterlab_widgets: pip install jupyterlab_widgets "
                              "so players and sliders show up.")
    from .listen.synth import backend_name, fluidsynth_available

    info["fluidsynth"] = fluidsynth_available()
    info["audio_backend"] = backend_name()
    if not info["fluidsynth"]:
        info["advice"].append("For General MIDI instrument sounds install the FluidSynth library "
                              "(apt install libfluidsynth3 / brew install fluid-synth) and pip install pyfluidsynth. "
                              "The built-in NumPy synthesizer works without them.")
    info["device"] = None
    if not quick and info["versions"].get("torch") is not None:
        try:
            from .runtime import device

            info["device"] = str(device(verbose=False))
        except Exception as e:
            info["problems"].append(f"torch is installed but choosing a device failed: {type(e).__name__}: {e}")
        if info["device"] == "cpu" and info["colab"]:
            info["advice"].append("On Colab, choose Runtime > Change runtime type > GPU for faster training.")
    from .runtime import fast_mode

    info["fast_mode"] = fast_mode()
    info["training"] = _training_times()
    info["datasets"] = _datasets(info)
    info["browser_test"] = _browser_test(info)
    if not quick:
        info["checks"] = _smoke_tests(info)
    return info


def _training_times() -> list[str]:
    """How long full-mode training took for each shipped model, from its card (``lesson name: 80 min on ...``)."""
    try:
        from . import pretrained

        out = []
        for name in pretrained.names():
            c = pretrained.card(name)
            minutes = max(1, round(float(c["wall_seconds"]) / 60))
            threads, on = c.get("torch_threads"), str(c.get("device"))
            if on == "cpu" and threads:
                on += f", {threads} thread{'s' if threads != 1 else ''}"
            out.append(f"{c['lesson']} {name}: {minutes} min ({on})")
        return sorted(out)
    except Exception as e:  # noqa: BLE001 - the report goes on without the times
        return [f"unknown ({type(e).__name__}: {e})"]


def _datasets(info: dict) -> str:
    """Whether every data set file is there and every array matches the checksum in its index."""
    try:
        from .data import datasets_dir, names
        from .data.store import array_sha256, read_arrays, read_index

        folder, counts = datasets_dir(), []
        for name in names():
            index = read_index(folder / f"{name}.json")
            arrays = read_arrays(folder / f"{name}.npz")
            bad = sorted(k for k, meta in index["arrays"].items()
                         if k not in arrays or array_sha256(arrays[k]) != meta["sha256"])
            if bad:
                raise ValueError(f"{folder / name}.npz: array(s) {', '.join(bad)} do not match the checksums in "
                                 f"{name}.json")
            counts.append(f"{name} {len(index['pieces'])} pieces")
        return f"intact ({', '.join(counts)}; checksums match)"
    except Exception as e:  # noqa: BLE001 - whatever is wrong, say it and how to repair it
        info["problems"].append(f"The data sets are not intact ({type(e).__name__}: {e}). Restore them with "
                                "`git checkout datasets/`, or rebuild them with `python -m course data build`.")
        return "NOT intact"


def _browser_test(info: dict) -> str:
    """Whether tests/test_browser.py can run here (it is skipped without Chromium and playwright)."""
    missing = []
    if not os.path.exists(CHROMIUM):
        missing.append(f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (python -m pip install -r requirements.txt)")
    if not missing:
        return f"ready (Chromium at {CHROMIUM}, playwright)"
    info["advice"].append("The browser test of the test suite (a real JupyterLab in headless Chromium) is skipped "
                          "without " + " and ".join(missing) + ".")
    return "will be skipped (see below)"


def _smoke_tests(info: dict) -> dict:
    """Render a short melody to audio and to sheet music; record timings or the error."""
    checks: dict = {}
    tune = [(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 1.5), (72, 1.5, 2.5)]
    try:
        from .listen.synth import synthesize

        t0 = time.perf_counter()
        audio = synthesize(tune, 16000, backend="numpy")
        checks["audio"] = f"ok: {len(audio) / 16000:.1f} s rendered in {1000 * (time.perf_counter() - t0):.0f} ms"
    except Exception as e:
        checks["audio"] = f"FAILED: {type(e).__name__}: {e}"
        info["problems"].append(f"Audio synthesis failed ({type(e).__name__}: {e}); reinstall the course package.")
    if info["versions"].get("verovio") and info["versions"].get("music21"):
        try:
            from .listen.score import score_svg

            t0 = time.perf_counter()
            svg = score_svg(tune)
            ok = "<svg" in svg
            checks["score"] = f"ok: sheet music in {1000 * (time.perf_counter() - t0):.0f} ms" if ok else "FAILED: no SVG"
            if not ok:
                info["problems"].append("verovio returned no SVG; pip install --upgrade verovio")
        except Exception as e:
            checks["score"] = f"FAILED: {type(e).__name__}: {e}"
            info["problems"].append(f"Sheet music failed ({type(e).__name__}: {e}); pip install --upgrade verovio music21")
    return checks


def run(args) -> int:
    info = collect(quick=getattr(args, "quick", False))
    from . import __version__

    w = 14
    print(f"course {__version__} doctor")
    print(f"{'python':<{w}} {info['python']} ({info['platform']})")
    for name, purpose, required in PACKAGES:
        v = info["versions"][name]
        shown = v if v is not None else ("MISSING" if required else "not installed")
        print(f"{name:<{w}} {shown}")
    if info["device"] is not None:
        print(f"{'device':<{w}} {info['device']}")
    print(f"{'audio':<{w}} {info['audio_backend']} synthesizer"
          f" (FluidSynth {'usable' if info['fluidsynth'] else 'not available'})")
    print(f"{'widgets':<{w}} {'supported (ipywidgets ' + info['versions']['ipywidgets'] + ')' if info['widgets'] else 'NOT available'}")
    print(f"{'colab':<{w}} {'yes' if info['colab'] else 'no'}")
    fast = ("ON (COURSE_FAST=1): training cells run tiny models for seconds, then lessons use the shipped weights"
            if info["fast_mode"] else "off: training cells train full size (set COURSE_FAST=1 for seconds-long runs)")
    print(f"{'fast mode':<{w}} {fast}")
    print(f"{'full training':<{w}} without fast mode, as long as the shipped models' own runs took (less on a GPU; "
          "the other lessons train for a few minutes at most; each lesson's first cell gives its running time):")
    for line in info["training"]:
        print(f"{'':<{w}}   {line}")
    print(f"{'datasets':<{w}} {info['datasets']}")
    print(f"{'browser test':<{w}} {info['browser_test']}")
    for name, result in info.get("checks", {}).items():
        print(f"{name + ' test':<{w}} {result}")
    if info["problems"]:
        print("\nTo fix (required):")
        for p in info["problems"]:
            print(f"  - {p}")
    if info["advice"]:
        print("\nOptional:")
        for a in info["advice"]:
            print(f"  - {a}")
    if not info["problems"]:
        print("\nAll set: everything the course needs is here.")
    return 1 if info["problems"] else 0
