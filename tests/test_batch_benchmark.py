"""benchmarks/batch.py: the figures of each configuration and the ratios between them."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("batch_benchmark", BENCHMARKS / "batch.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def _rows(*seconds, status="done", worker="vm:1"):
    return [{"name": f"c{i}", "status": status, "seconds": str(s), "worker": worker,
             "peak_memory_mib": "100"} for i, s in enumerate(seconds)]


def test_summary_gives_medians_and_the_time_outside_the_cases(bench):
    one = bench.summarise("local, 1 worker", [(10.0, _rows(2.0, 3.0, 4.0)),
                                              (12.0, _rows(2.0, 3.0, 5.0))], 3)
    assert one["median_wall_s"] == 11.0 and one["cases_per_minute"] == pytest.approx(60 * 3 / 11)
    assert one["median_case_s"] == 3.0
    assert one["median_outside_cases_s"] == pytest.approx(1.5)     # 10 - 9 and 12 - 10
    two = bench.summarise("local, 2 workers", [(6.0, _rows(2.0, 3.0, 4.0))], 3)
    assert two["median_outside_cases_s"] == pytest.approx(1.5)     # 6 - 9 / 2
    failed = bench.summarise("local, 1 worker", [(5.0, _rows(2.0) + _rows(1.0, status="failed"))],
                             2)
    assert failed["median_outside_cases_s"] == pytest.approx(3.0)  # failed cases are outside
    assert failed["failed"] == ["c0"]


def test_ratios_pair_the_rounds_and_bound_the_speed_up(bench):
    rows = [{"configuration": "local, 1 worker", "walls_s": [40.0, 44.0],
             "cases_per_minute": 60 * 22 / 42.0, "median_case_s": 1.6, "median_wall_s": 42.0},
            {"configuration": "local, 2 workers", "walls_s": [20.0, 25.0],
             "cases_per_minute": 60 * 22 / 22.5, "median_case_s": 1.75, "median_wall_s": 22.5},
            {"configuration": "dask, 2 workers", "walls_s": [23.0],
             "cases_per_minute": 60 * 22 / 23.0, "median_case_s": 1.7, "median_wall_s": 23.0}]
    ratios = bench.ratios_of(rows, 22)
    assert ratios["speedup_2_workers"] == pytest.approx(42.0 / 22.5)
    assert ratios["speedup_per_round"] == pytest.approx([2.0, 44.0 / 25.0])
    assert ratios["speedup_per_round_median"] == pytest.approx((2.0 + 1.76) / 2)
    assert ratios["speedup_ceiling"] == pytest.approx(2 * 1.6 / 1.75)
    assert ratios["dask_overhead"] == pytest.approx(23.0 / 22.5 - 1)
    assert ratios["dask_overhead_s_per_case"] == pytest.approx(0.5 / 22)


def test_two_at_once_speedup_is_twice_the_ratio_of_medians():
    spec = importlib.util.spec_from_file_location("bench_machine",
                                                  BENCHMARKS / "bench_machine.py")
    machine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(machine)
    assert machine.two_at_once_speedup([1.0, 1.2, 5.0], [1.0, 1.1, 1.2, 9.0]) == pytest.approx(
        2 * 1.2 / 1.15)
    assert machine.two_at_once_speedup([2.0], [2.0, 2.0]) == 2.0   # no cost to running together
