"""benchmarks/segmentation.py: folds, selection on training folds, cache, report."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "segmentation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("segmentation_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folds_mix_collections_and_split_patients(bench):
    collections = {f"a{i}": "a" for i in range(10)} | {f"b{i}": "b" for i in range(12)}
    fold = bench.folds_of(collections)
    assert sorted(fold) == sorted(collections)
    for k in range(bench.N_FOLDS):
        members = [n for n, f in fold.items() if f == k]
        assert {collections[n] for n in members} == {"a", "b"}
        assert 4 <= len(members) <= 5


def test_choose_looks_at_training_cases_only(bench):
    scores = {("x", 1): 0.9, ("y", 1): 0.1, ("x", 2): 0.2, ("y", 2): 0.3}
    assert bench.choose([1, 2], ["y"], lambda n, c: scores[n, c]) == 2
    assert bench.choose([1, 2], ["x", "y"], lambda n, c: scores[n, c]) == 1


def test_cache_resumes_and_ignores_other_versions(bench, tmp_path):
    path = tmp_path / "cache.json"
    cache = bench.Cache(str(path), fresh=False)
    calls = []
    assert cache.get("k", lambda: calls.append(1) or {"dice": 0.5}) == {"dice": 0.5}
    again = bench.Cache(str(path), fresh=False)
    assert again.get("k", lambda: calls.append(1) or {"dice": 0.0}) == {"dice": 0.5}
    assert calls == [1]
    assert bench.Cache(str(path), fresh=True).data == {}
    path.write_text(json.dumps({"version": bench.CACHE_VERSION + 1, "entries": {"k": 1}}))
    assert bench.Cache(str(path), fresh=False).data == {}


def _report(bench):
    names = ["A1", "A2", "B1"]
    wt = {n: {"dice": d, "hd95_mm": h} for n, d, h in zip(names, (0.9, 0.4, 0.8), (3.0, None, 5.0))}
    regions = {n: {"whole_tumor": 0.9, "tumor_core": 0.7, "enhancing": 0.6} for n in names}
    variants = {v: {"per_case": wt, "chosen": {0: {"threshold": 0.4}}}
                for v in list(bench.VARIANTS) + ["2-D PCNN", bench.DEFAULT_VARIANT]}
    timing = {n: {"seconds_wt": 0.5, "seconds_regions": 1.0, "op_energy_mj_per_slice": 0.05,
                  "neuron_updates_per_slice": 2e6, "synaptic_events_per_slice": 1e3}
              for n in names}
    return {"collections": {"A1": "a", "A2": "a", "B1": "b"}, "folds": {"A1": 0, "A2": 1, "B1": 0},
            "variants": variants, "v0.1": {n: {"dice": 0.5} for n in names},
            "regions": {"per_case": regions, "chosen": {0: {"enhancing_threshold": 0.2}}},
            "refit": {"threshold": 0.4}, "module_constants": {"threshold": 0.4},
            "timing": timing, "threads": 2, "date": "today",
            "normalisation": {"robust_z": {"mean": 3.0, "cv": 0.5},
                              "tissue_contrast": {"mean": 0.6, "cv": 0.2}}}


def test_markdown_reports_groups_worst_case_and_fixed_rows(bench):
    md = bench.markdown(_report(bench))
    assert "| WT Dice all | WT Dice a | WT Dice b |" in md
    assert ("| **default: one-standard-error rule (`segment_tumor`)** | 0.700 | 0.650 | 0.800 | 4.0 | "
            "0.400 (A2) | 1 |") in md
    assert "v0.1 default (*fixed*" in md and "every figure from the held-out fold" in md
    assert "| A2 | a | 1 | 0.500 | 0.400 | — |" in md


def test_one_standard_error_rule_prefers_the_simpler_close_candidate(bench):
    simple, linked = {"beta": 0.0}, {"beta": 0.1, "selection": "asymmetry"}
    scores = {("a", 0): 0.80, ("b", 0): 0.70, ("c", 0): 0.90,
              ("a", 1): 0.82, ("b", 1): 0.71, ("c", 1): 0.91}
    candidates = [simple, linked]
    score = lambda n, c: scores[n, candidates.index(c)]  # noqa: E731
    # linked is best by 0.013, well within one standard error (about 0.058)
    assert bench.choose(candidates, ["a", "b", "c"], score) is linked
    assert bench.choose_simplest(candidates, ["a", "b", "c"], score) is simple
    far = {("a", 1): 0.99, ("b", 1): 0.99, ("c", 1): 0.99}
    assert bench.choose_simplest(candidates, ["a", "b", "c"],
                                 lambda n, c: far.get((n, candidates.index(c)),
                                                      scores[n, 0])) is linked
    assert bench.complexity({"contrast_percentile": 99.5, "selection": "thickest"}) == 1


def test_regions_choose_the_necrosis_step_after_the_rest_and_by_one_standard_error(bench):
    grid = [(0.15, 0.5, "signed", None), (0.2, 0.5, "signed", None)]
    core = {"a": 0.6, "b": 0.7, "c": 0.8}

    def regions_of(name, points):
        out = {}
        for e, w, part, necrosis in points:
            tc = core[name] + (0.1 if e == 0.2 else 0.0) + {None: 0.0, 0.2: 0.01, 0.5: gain}[
                necrosis]
            out[(e, w, part, necrosis)] = {"tumor_core": tc, "enhancing": tc}
        return out

    gain = 0.01     # within a standard error (about 0.058): no necrosis step
    train = ["a", "b", "c"]
    assert bench.choose_regions(grid, train, regions_of, (None, 0.2, 0.5)) == grid[1]
    assert bench.choose_regions(grid, train, regions_of, (None, 0.2, 0.5),
                                one_se=False) == (0.2, 0.5, "signed", 0.2)
    gain = 0.2      # far beyond it
    assert bench.choose_regions(grid, train, regions_of, (None, 0.2, 0.5)) == \
        (0.2, 0.5, "signed", 0.5)
