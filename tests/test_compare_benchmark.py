"""benchmarks/compare.py: pooling of the workers' figures, the goal's verdict, the report."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(method, threads, slice_s, wall, cpu, *, slices=10, dice=None, counters=(), **extra):
    volume = {"case": "A", "slices": slices, "wall_s": wall, "cpu_s": cpu,
              "counters": list(counters)}
    if dice is not None:
        volume.update(dice=dice, hd95_mm=4.0)
    if method.startswith("pcnn"):
        volume["pcnn_operations"] = {"neuron_updates": 100, "neuron_ops_fp32_mul": 600,
                                     "neuron_ops_fp32_add": 400, "pulses": 5,
                                     "synaptic_events": 40, "dense_synaptic_ops": 800}
        if method == "pcnn":
            volume.update(detection_slices=4, detection_hits=3)
    return {"method": method, "threads": threads, "slice_s": slice_s, "volumes": [volume],
            "rss_after_data_mib": 100.0, "peak_rss_mib": 150.0, "parameters": 10,
            "size_on_disk_bytes": 2048, "size_note": "file", **extra}


RAPL_NONE = {"joules": None, "source": "rapl", "detail": "no RAPL zones"}
RAPL_20 = {"joules": 20.0, "source": "rapl", "detail": "RAPL package energy_uj"}


def _runs():
    int8 = dict(macs_per_slice=1000, float_macs_per_slice=100, precision="int8")
    return [
        _run("pcnn", 1, [0.03], 2.0, 0.5, counters=[RAPL_NONE]),
        _run("pcnn", 2, [0.01, 0.03, 0.02], 1.0, 0.5, dice=0.80, counters=[RAPL_NONE]),
        _run("cnn_int8", 1, [0.08], 3.0, 1.5, counters=[RAPL_20], **int8),
        _run("cnn_int8", 2, [0.04, 0.05], 2.0, 1.0, dice=0.78, counters=[RAPL_20], **int8),
    ]


def test_summarise_pools_medians_and_labels_energy(compare):
    rows = compare.summarise(_runs(), watts_per_core=4.0)
    assert [(r["method"], r["threads"]) for r in rows] == [
        ("pcnn", 1), ("pcnn", 2), ("cnn_int8", 1), ("cnn_int8", 2)]
    pcnn, int8 = rows[1], rows[3]
    assert pcnn["latency_slice_ms"] == pytest.approx(20.0)
    assert pcnn["cpu_s_per_slice"] == pytest.approx(0.05)
    assert pcnn["throughput_slices_per_s"] == pytest.approx(10.0)
    e = pcnn["energy_per_slice"]
    assert e["estimate:cpu-time"]["joules"] == pytest.approx(0.2)
    # per slice: 60 mul, 40 + 4 add (event-driven); 60 + 80 mul, 40 + 80 add (dense)
    assert e["estimate:operations (event-driven)"]["joules"] == pytest.approx(
        (60 * 3.7 + 44 * 0.9) * 1e-12)
    assert e["estimate:operations (dense)"]["joules"] == pytest.approx(
        (140 * 3.7 + 120 * 0.9) * 1e-12)
    assert "rapl" not in e  # an unreadable counter is not a figure
    assert int8["energy_per_slice"]["rapl"]["joules"] == pytest.approx(2.0)
    # 900 int8 MACs and 100 fp32 ones (the first level runs in float)
    assert int8["energy_per_slice"]["estimate:operations"]["joules"] == pytest.approx(
        (900 * (0.2 + 0.1) + 100 * (3.7 + 0.9)) * 1e-12)
    assert pcnn["detection_hit_rate"] == 0.75 and pcnn["dice"] == 0.80
    # scored once, reported for every thread count
    assert rows[0]["dice"] == 0.80 and rows[2]["dice"] == 0.78


def test_verdict_ratios_only_for_shared_sources(compare):
    rows = compare.summarise(_runs(), watts_per_core=4.0)
    v = compare.verdict(rows)
    assert v["threads"] == 1 and v["method"] == "pcnn"  # energy from one-thread runs
    assert v["energy_ratio_int8_over_pcnn"]["estimate:cpu-time"] == pytest.approx(3.0)
    assert "rapl" not in v["energy_ratio_int8_over_pcnn"]
    assert v["energy_goal_met"]["estimate:cpu-time"] is False
    assert v["dice_int8_minus_pcnn"] == pytest.approx(-0.02) and v["dice_goal_met"]
    assert compare.verdict(rows, "pcnn_segment") is None  # not run
    no_dice = [{k: v for k, v in r.items() if not (k == "dice" and r["method"] == "cnn_int8")}
               for r in rows]
    assert compare.verdict(no_dice) is None  # nothing to compare against


def test_energy_sources_state_the_models(compare):
    rows = compare.summarise(_runs(), watts_per_core=4.0)
    text = compare.energy_sources(rows, 4.0)
    assert "counters: read" in text  # the int8 runs had a RAPL reading
    assert "4 W per busy core" in text
    assert "fp32 MAC 4.6 pJ, int8 MAC 0.3 pJ" in text
    no_counter = [dict(r, energy_per_slice={"estimate:cpu-time": {}}) for r in rows]
    assert "none readable" in compare.energy_sources(no_counter, 4.0)


def test_markdown_reports_rows_scaling_and_goal(compare):
    rows = compare.summarise(_runs(), watts_per_core=4.0)
    summary = {"date": "today", "machine": "m", "torch": "t", "numba": "n", "rounds": 1,
               "slice_repeats": 3, "cases": ["A"], "train_cases": ["B", "C"],
               "reference_slices": 7, "energy_sources": "stated",
               "verdicts": [compare.verdict(rows)]}
    md = compare.markdown(summary, rows)
    assert "| PCNN (segment + boxes) | 0.800 | 4.0 | 20.0 | 1.00 | 10.0 | 150 (+50) |" in md
    assert "hit rate (IoU >= 0.5) 0.750 over 4 slices" in md
    assert "| 1.0 k MACs (100 in fp32) |" in md  # the int8 network's float first level
    assert "| PCNN (segment + boxes) | 1 | 30.0 |" in md  # thread scaling
    assert "estimate:cpu-time 3.00x (not met)" in md
    assert "Dice int8 - PCNN -0.020 (met)" in md and "Goal not met." in md


@pytest.mark.parametrize("n, text", [(0, "0"), (999, "999"), (3500, "3.5 k"),
                                     (478_512, "478.5 k"), (1_700_000, "1.70 M"),
                                     (815_136_768, "815 M")])
def test_operation_counts_are_readable(compare, n, text):
    assert compare._count(n) == text


def test_report_only_remakes_the_report_from_saved_json(compare, tmp_path):
    runs = _runs()
    summary = {"date": "then", "machine": "m", "torch": "t", "numba": "n", "rounds": 1,
               "slice_repeats": 3, "cases": ["A"], "train_cases": ["B"],
               "reference_slices": 7, "energy_sources": "stated", "watts_per_core": 4.0}
    rows = compare.summarise(runs, watts_per_core=4.0)
    compare.write_report(str(tmp_path), dict(summary), rows, runs)
    first = (tmp_path / "compare.md").read_text()
    (tmp_path / "compare.md").unlink()
    assert compare.main(["--report-only", "--results", str(tmp_path)]) == 0
    assert (tmp_path / "compare.md").read_text() == first
    assert "then; m" in first  # the measurement's date, not the report's


def test_plots_write_two_pngs(compare, tmp_path):
    pytest.importorskip("matplotlib")
    rows = compare.summarise(_runs(), watts_per_core=4.0)
    paths = compare.plots(rows, str(tmp_path))
    assert [Path(p).name for p in paths] == ["compare_dice_energy.png", "compare_latency.png"]
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_pcnn_constants_come_from_each_case_s_fold(compare, tmp_path):
    import json
    report = {"folds": {"A": 0, "B": 3, "C": 1},
              "variants": {"default": {"chosen": {"0": {"threshold": 0.35},
                                                     "1": {"threshold": 0.4},
                                                     "3": {"threshold": 0.5}}}}}
    path = tmp_path / "segmentation.json"
    path.write_text(json.dumps(report))
    constants, held_out = compare.cross_validated_constants(["A", "B"], path=str(path))
    assert constants == {"A": {"threshold": 0.35}, "B": {"threshold": 0.5}} and held_out
    assert compare.cross_validated_constants(["A", "Z"], path=str(path)) == ({}, False)
    assert compare.cross_validated_constants(["A"], path=str(tmp_path / "none.json")) == ({}, False)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"summary": {}, "cases": []}))   # the v0.1 format
    assert compare.cross_validated_constants(["A"], path=str(old)) == ({}, False)


def test_report_says_whether_pcnn_figures_are_held_out(compare):
    rows = compare.summarise(_runs(), watts_per_core=4.0)
    summary = {"date": "d", "machine": "m", "torch": "t", "numba": "n", "rounds": 1,
               "slice_repeats": 1, "cases": ["A"], "train_cases": ["B"],
               "reference_slices": 3, "energy_sources": "e"}
    held = compare.markdown({**summary, "pcnn_held_out": True,
                             "pcnn_constants": {"A": {"threshold": 0.35}}}, rows)
    assert "PCNN figures are cross-validated" in held and "A: threshold=0.35" in held
    assert "NOT held-out" in compare.markdown({**summary, "pcnn_held_out": False}, rows)
