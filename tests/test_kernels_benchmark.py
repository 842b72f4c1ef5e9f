"""benchmarks/kernels.py: like-for-like ratios, the round-robin, skipped peers."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("kernels_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(case, name, source, model, threads, speed):
    return {"case": case, "implementation": name, "source": source, "model": model,
            "threads": threads, "pixel_iterations_per_s": speed}


ROWS = [
    _row("single", "pcnnseg PCNN kernel, 1 thread(s)", "pcnnseg", "PCNN", 1, 800.0),
    _row("single", "pcnnseg PCNN kernel, 2 thread(s)", "pcnnseg", "PCNN", 2, 1600.0),
    _row("single", "pcnnseg SPCNN kernel, 1 thread(s)", "pcnnseg", "SPCNN", 1, 1000.0),
    _row("single", "ablation: SPCNN as 2 bands", "pcnnseg", None, 1, 5000.0),
    _row("batch", "pcnnseg PCNN batch kernel, 1 thread(s)", "pcnnseg", "PCNN", 1, 900.0),
    _row("single", "pulse-coupled-nn ClassicalPCNN", "pulse-coupled-nn", "PCNN", 1, 10.0),
    _row("single", "pcnn package SPCNN", "pcnn", "SPCNN", 1, 20.0),
    _row("single", "pcnn package ICM", "pcnn", "ICM", 1, 30.0),
    _row("batch", "pyclustering pcnn_network", "pyclustering", "PCNN", 1, 3.0),
]


def test_ratios_pair_only_the_same_model_and_case(bench):
    ratios = {(r["pcnnseg"], r["other"]): r for r in bench.like_for_like_ratios(ROWS)}
    assert set(ratios) == {
        ("pcnnseg PCNN kernel, 1 thread(s)", "pulse-coupled-nn ClassicalPCNN"),
        ("pcnnseg PCNN kernel, 2 thread(s)", "pulse-coupled-nn ClassicalPCNN"),
        ("pcnnseg SPCNN kernel, 1 thread(s)", "pcnn package SPCNN"),
        ("pcnnseg PCNN batch kernel, 1 thread(s)", "pyclustering pcnn_network"),
    }  # no ICM kernel row, no ablation, no pcnnseg row against another, no cross-case
    spcnn = ratios[("pcnnseg SPCNN kernel, 1 thread(s)", "pcnn package SPCNN")]
    assert spcnn["ratio"] == pytest.approx(50.0)
    assert (spcnn["case"], spcnn["model"], spcnn["threads"]) == ("single", "SPCNN", 1)
    two = ratios[("pcnnseg PCNN kernel, 2 thread(s)", "pulse-coupled-nn ClassicalPCNN")]
    assert (two["ratio"], two["threads"]) == (pytest.approx(160.0), 2)


def test_ratio_table_has_a_column_per_thread_count(bench):
    table = bench._ratio_table(bench.like_for_like_ratios(ROWS))
    assert "| pcnnseg, 1 thread(s) | pcnnseg, 2 thread(s) |" in table
    assert "| single | PCNN | pulse-coupled-nn ClassicalPCNN | 80.0x | 160.0x |" in table
    assert "| single | SPCNN | pcnn package SPCNN | 50.0x | - |" in table


def test_settling_marks_each_switch_of_thread_count(bench):
    threads = {"a": 1, "b": 1, "peer": 1, "c": 2, "d": 2}
    assert bench.settling(threads) == {"a", "c"}  # "a" follows "d" of the previous round
    assert bench.settling({"a": 2, "b": 2}) == set()


def test_round_robin_runs_every_callable_each_round_and_settles(bench):
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in ("fast", "peer", "slow")}
    times = bench.round_robin(fns, 3, settle={"peer"})
    assert calls == ["fast", "peer", "peer", "slow"] * 3
    assert {name: len(t) for name, t in times.items()} == {"fast": 3, "peer": 3, "slow": 3}


def test_a_missing_peer_is_skipped_with_a_note(bench, monkeypatch):
    def missing(S, B, models):
        raise ImportError("No module named 'pcnn'")

    def present(S, B, models):  # an installed distribution stands in for a peer
        return {("single", "peer"): bench.Entry(lambda: None, "numpy", "PCNN")}

    monkeypatch.setattr(bench, "PEERS", {"numpy": present, "pcnn": missing})
    monkeypatch.setitem(bench.PEER_NOTES, "numpy", "how it differs")
    entries, notes = bench.package_entries(None, None, None)
    assert list(entries) == [("single", "peer")]
    assert notes[f"numpy {np.__version__}"] == "how it differs"
    assert notes["pcnn"].startswith("not installed (No module named 'pcnn')")
    assert len(notes) == 2


def test_summary_of_a_row_without_iterations_has_no_throughput(bench):
    assert bench.summarise([0.1, 0.3, 0.2], 0)["pixel_iterations_per_s"] is None
    row = bench.summarise([0.1, 0.3, 0.2], 100)
    assert (row["median_s"], row["runs"]) == (0.2, 3)
    assert row["pixel_iterations_per_s"] == pytest.approx(500.0)
