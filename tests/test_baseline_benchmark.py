"""benchmarks/baseline.py: its report from a summary (no network run)."""
import copy
import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "baseline.py"
RESULTS = ROOT / "benchmarks" / "results" / "baseline.json"


@pytest.fixture(scope="module")
def baseline():
    spec = importlib.util.spec_from_file_location("baseline_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def saved():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def test_report_states_each_variant_and_the_pruning_goal(baseline, saved):
    s = saved["summary"]
    md = baseline._markdown(s, saved["cases"])
    for v in s["variants"]:
        assert f"| **mean** | {v} |" in md
    for v in s["pruning"]:
        change = s["dice_change_vs_fp32"][v]["whole_tumor"]
        smaller = 1 - s["size_standalone_xz_bytes"][v] / s["size_standalone_xz_bytes"]["fp32"]
        verdict = "met" if smaller >= 0.70 and change >= -0.01 else "not met"
        assert (f"Goal for {v} (at least 70 % smaller than fp32, whole-tumor Dice drop at "
                f"most 0.01): {100 * smaller:.0f} % smaller, WT Dice {change:+.4f}; "
                f"{verdict}.") in md
    total = sum(s["size_on_disk_bytes"][v] for v in s["bundled"])
    assert f"Bundled together: {total / 2 ** 20:.2f} MiB" in md


def test_report_verdicts_follow_the_figures(baseline, saved):
    s = copy.deepcopy(saved["summary"])
    name = next(iter(s["pruning"]))
    s["dice_change_vs_fp32"][name]["whole_tumor"] = -0.0101   # just past the allowed drop
    s["size_standalone_xz_bytes"][name] = 0.1 * s["size_standalone_xz_bytes"]["fp32"]
    assert f"Goal for {name} " in baseline._markdown(s, saved["cases"])
    assert "90 % smaller, WT Dice -0.0101; not met." in baseline._markdown(s, saved["cases"])
    s["dice_change_vs_fp32"][name]["whole_tumor"] = -0.0099
    assert "90 % smaller, WT Dice -0.0099; met." in baseline._markdown(s, saved["cases"])
    s["size_standalone_xz_bytes"][name] = 0.31 * s["size_standalone_xz_bytes"]["fp32"]
    assert "69 % smaller, WT Dice -0.0099; not met." in baseline._markdown(s, saved["cases"])
    for region in ("whole_tumor", "tumor_core", "enhancing"):
        s["mean_fp32"][f"dice_{region}"] = 0.9
    n = len(s["val_cases"])
    assert f"on the {n} validation cases, reached." in baseline._markdown(s, saved["cases"])
    s["mean_fp32"]["dice_enhancing"] = 0.52
    assert f"on the {n} validation cases, not reached." in baseline._markdown(s, saved["cases"])


def test_missing_data_exits_cleanly(baseline, tmp_path, capsys):
    assert baseline.main(["--data", str(tmp_path / "nowhere")]) == 0
    assert "nothing to evaluate" in capsys.readouterr().out
