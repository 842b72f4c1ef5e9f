"""The figures of benchmarks/volume_detection.py from hand-made slice records."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import volume_detection as vd  # noqa: E402


def _record(score, truth_px, box=None, truth_box=None):
    return {"z": 0, "score": score, "box": box, "truth_px": truth_px, "truth_box": truth_box}


def test_auc_counts_pairs_and_ties_half():
    records = [_record(5.0, 10), _record(3.0, 10), _record(3.0, 0), _record(0.0, 0)]
    # pairs (pos, neg): (5,3) 1, (5,0) 1, (3,3) 0.5, (3,0) 1 -> 3.5 / 4
    assert vd.auc(records) == pytest.approx(0.875)
    assert vd.auc([_record(1.0, 10)]) != vd.auc([_record(1.0, 10)])   # NaN without negatives


def _shapes(per_case, shape=(100, 100)):
    return {n: shape for n in per_case}


def test_evaluate_holds_out_the_threshold_and_scores_hits_and_presence():
    box = [10, 10, 20, 20]
    shifted = [20, 20, 20, 20]   # IoU 100 / 700 with box
    per_case, fold, collections = {}, {}, {}
    for k in range(vd.N_FOLDS):
        name = f"c{k}"
        fold[name], collections[name] = k, "x" if k % 2 else "y"
        per_case[name] = [
            _record(900.0, 600, box, box),             # a hit
            _record(900.0, 600, shifted, box),         # found, wrong place
            _record(40.0, 600, box, box),              # under any threshold > 40: a miss
            _record(0.0, 0), _record(30.0, 0, box),    # tumor-free slices
        ]
    out = vd.evaluate({"own": per_case}, fold, collections, _shapes(per_case))
    # on every training set an area of 50 separates presence best (sens 2/3, spec 1)
    assert set(out["threshold_per_fold"].values()) == {50.0}
    g = out["groups"]["all"]
    assert g["tumor_slices"] == 15 and g["hit_rate"] == pytest.approx(1 / 3)
    assert g["sensitivity"] == pytest.approx(2 / 3) and g["specificity"] == pytest.approx(1.0)
    assert g["volumes_flagged"] == 1.0
    assert out["groups"]["x"]["cases"] == 2 and out["groups"]["y"]["cases"] == 3
    assert all(v == pytest.approx(1 / 3) for v in out["per_case_hit_rate"].values())
    assert set(out["margin_per_fold"].values()) == {0.0}      # a margin gains nothing here
    assert g["hit_rate_no_margin"] == g["hit_rate"]


def test_evaluate_chooses_the_smallest_margin_that_makes_small_boxes_hit():
    truth = [10, 10, 20, 20]
    small = [14, 14, 12, 12]     # IoU 0.36; grown by 0.05 (1 px): 0.49, by 0.1 (1 px): 0.49,
    per_case = {f"c{k}": [_record(900.0, 600, small, truth), _record(0.0, 0)]   # 0.15 (2 px): 0.64
                for k in range(vd.N_FOLDS)}
    fold = {f"c{k}": k for k in range(vd.N_FOLDS)}
    out = vd.evaluate({"own": per_case}, fold, {n: "x" for n in per_case}, _shapes(per_case))
    assert set(out["margin_per_fold"].values()) == {0.15}
    assert out["refit"] == {"level": "own", "min_area": 0.0, "margin": 0.15}
    g = out["groups"]["all"]
    assert g["hit_rate"] == 1.0 and g["hit_rate_no_margin"] == 0.0


def test_evaluate_chooses_the_map_level_whose_boxes_hit_on_the_training_folds():
    """The level whose boxes hit more on the training folds is chosen, and its
    held-out boxes are scored; a level that changes nothing leaves the own."""
    truth = [10, 10, 20, 20]
    fold = {f"c{k}": k for k in range(vd.N_FOLDS)}
    own = {n: [_record(900.0, 600, [14, 14, 4, 4], truth), _record(0.0, 0)] for n in fold}
    lower = {n: [_record(900.0, 600, truth if n in ("c2", "c3", "c4") else [14, 14, 4, 4],
                         truth), _record(0.0, 0)] for n in fold}   # hits on c2, c3, c4 only
    out = vd.evaluate({"own": own, 0.2: lower}, fold, {n: "x" for n in fold}, _shapes(own))
    assert out["level_per_fold"] == {0: 0.2, 1: 0.2, 2: 0.2, 3: 0.2, 4: 0.2}
    assert out["per_case_hit_rate"] == {"c0": 0.0, "c1": 0.0, "c2": 1.0, "c3": 1.0, "c4": 1.0}
    assert out["refit"]["level"] == 0.2
    same = vd.evaluate({"own": own, 0.2: own}, fold, {n: "x" for n in fold}, _shapes(own))
    assert set(same["level_per_fold"].values()) == {"own"}


def test_grown_boxes_stay_in_the_image():
    per_case = {"c": [_record(9.0, 600, [0, 50, 20, 10], [0, 0, 1, 1]), _record(0.0, 0)]}
    out = vd.grown(per_case, 0.1, {"c": (60, 80)})
    assert out["c"][0]["box"] == [0, 49, 22, 11]       # 2 px a side in x, 1 in y; clipped at 0 and 60
    assert out["c"][1]["box"] is None and per_case["c"][0]["box"] == [0, 50, 20, 10]
