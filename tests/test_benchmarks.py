"""benchmarks: ``python -m benchmarks run --quick`` end to end (files written and well formed, not timings),
the committed full-run results, and the shared result-writing code."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "polyphonic"
DATASETS = {"JSB", "Nottingham", "MuseData", "Piano-midi"}
NLL_KEYS = {"dataset": str, "model": str, "test_nll": float, "params": int, "train_seconds": float, "device": str,
            "test_nll_all_frames": float, "test_nll_frames_2_to_T": float}
SPEED_KEYS = {"name": str, "unit": str, "device": str}


def well_formed(res: dict) -> None:
    assert res["schema"] == 1
    assert res["main_column"] == "frames 2..T"
    for r in res["nll"]:
        for k, t in NLL_KEYS.items():
            assert isinstance(r[k], (int, float) if t is float else t), (k, r)
        assert r["dataset"] in DATASETS
        assert r["test_nll"] == r["test_nll_frames_2_to_T"]
    for r in res["speed"]:
        for k, t in SPEED_KEYS.items():
            assert isinstance(r[k], t), (k, r)
        for k in ("value", "baseline", "ratio"):
            assert r[k] is None or isinstance(r[k], (int, float)), (k, r)
    for r in res["scaling"]:
        assert isinstance(r["params"], int) and isinstance(r["valid_nll"], float)
    for run in res["runs"]:
        for k in ("date", "machine", "device", "torch", "python", "load_average_at_start", "parts", "mode"):
            assert k in run, k


def test_quick_run_writes_well_formed_results(tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--quick", "--out", str(out),
                          "--data-dir", str(DATA)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    well_formed(res)
    md = (out / "RESULTS.md").read_text()
    assert "## Speed" in md and "## Scaling" in md and "CUDA column: **not run**" in md
    assert res["runs"][0]["mode"] == "quick"
    names = " ".join(r["name"] for r in res["speed"])
    for part in ("synthesis", "attention", "generation", "data"):
        assert part in names
    assert len(res["scaling"]) >= 2
    skipped = {s["part"] for s in res["runs"][0]["skipped"]}
    assert {"grading", "course"} <= skipped             # minutes each: the full run only
    if (DATA / "JSB_Chorales.mat").is_file():
        assert {r["model"] for r in res["nll"]} >= {"PolyLSTM", "PolyNADE", "PolyMADE", "PolyTransformer"}
        assert "| JSB | PolyMADE |" in md
    else:
        print("JSB_Chorales.mat is not in", DATA, ": the NLL rows were skipped")
        assert "jsb" in skipped


def test_quick_run_never_writes_over_the_committed_files():
    run = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--quick", "--only", "generation",
                          "--out", str(ROOT / "benchmarks")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "never writes over" in (run.stdout + run.stderr)


def test_committed_full_run_is_complete():
    path = ROOT / "benchmarks" / "results.json"
    if not path.is_file():
        pytest.skip("no committed benchmarks/results.json yet")
    res = json.loads(path.read_text())
    well_formed(res)
    assert {r["dataset"] for r in res["nll"]} == DATASETS
    assert all(run["mode"] == "full" for run in res["runs"])
    for ds in DATASETS:
        models = {r["model"] for r in res["nll"] if r["dataset"] == ds}
        assert {"PolyLSTM", "PolyNADE", "PolyMADE", "PolyTransformer"} <= models, ds
    assert (ROOT / "benchmarks" / "RESULTS.md").read_text().count("| JSB |") >= 5


def test_merge_replaces_rows_of_the_same_key():
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import merge

    old = {"schema": 1, "nll": [{"dataset": "JSB", "model": "A", "device": "cpu", "test_nll": 1.0},
                                {"dataset": "JSB", "model": "B", "device": "cpu", "test_nll": 2.0}],
           "speed": [], "scaling": [{"model": "s", "device": "cpu"}], "runs": [{"parts": ["jsb", "scaling"]}]}
    new = {"schema": 1, "nll": [{"dataset": "JSB", "model": "A", "device": "cpu", "test_nll": 0.5}],
           "speed": [{"name": "x", "device": "cpu"}], "scaling": [], "runs": [{"parts": ["jsb", "attention"]}]}
    m = merge(old, new)
    assert sorted((r["model"], r["test_nll"]) for r in m["nll"]) == [("A", 0.5), ("B", 2.0)]
    assert m["scaling"] == old["scaling"] and m["speed"] == new["speed"]
    assert [r["parts"] for r in m["runs"]] == [["scaling"], ["jsb", "attention"]]
