"""Accuracy on real MRI pinned to the committed benchmark results.

Reruns the untrained segmentation on a few development cases of both collections
with the constants their cross-validation fold chose, and compares the Dice with
the figures committed in ``benchmarks/results/segmentation.json``, and the boxes
read off those maps against ``volume_detection.json``, and the slice detector
(exemplars fitted on the other folds) against ``detection.json``; reruns the bundled U-Net
(fp32 and int8) on one of its validation cases against ``baseline.json``. A change that moves accuracy shows here (then rerun the
benchmark and commit the new figures). Skips cleanly without ``../shared/data``
(and the U-Net test without PyTorch).
"""
import json
import pathlib

import numpy as np
import pytest

from pcnnseg.io import load_brats_case
from pcnnseg.metrics import brats_regions, dice
from pcnnseg.tumor import segment_tumor

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "segmentation.json"
BASELINE_RESULTS = ROOT / "benchmarks" / "results" / "baseline.json"
CASES = [("brats2018", "Brats18_CBICA_ABM_1"), ("brats2018", "Brats18_TCIA01_378_1"),
         ("brats2023_ssa", "BraTS-SSA-00007-000"), ("brats2023_ssa", "BraTS-SSA-00056-000")]
# Dice is a ratio of voxel counts: a few voxels either way on another CPU's
# float rounding, far less than any change of method or constant moves it.
TOLERANCE = 0.002

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="no ../shared/data")


@pytest.fixture(scope="module")
def committed():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


@pytest.mark.parametrize("collection,name", CASES)
def test_default_segmentation_and_regions_match_the_committed_figures(committed, collection,
                                                                     name):
    case_dir = DATA / collection / name
    if not case_dir.is_dir():
        pytest.skip(f"{case_dir} is absent")
    case = load_brats_case(case_dir)
    fold = str(committed["folds"][name])
    constants = {**committed["variants"]["default"]["chosen"][fold],
                 **committed["regions"]["chosen"][fold]}
    labels = segment_tumor(case, regions=True, **constants)
    found, truth = brats_regions(labels), brats_regions(case.labels)
    expected = committed["regions"]["per_case"][name]
    for region in ("whole_tumor", "tumor_core", "enhancing"):
        assert dice(found[region], truth[region]) == pytest.approx(
            expected[region], abs=TOLERANCE), region
    assert expected["whole_tumor"] == pytest.approx(
        committed["variants"]["default"]["per_case"][name]["dice"], abs=1e-12)


# The network's float sums run in another order on another CPU (and int8 through
# another kernel): a few voxels move, far less than retrained or changed weights.
UNET_TOLERANCE = 0.005


@pytest.mark.parametrize("variant", ["fp32", "int8", "pruned_int8"])
def test_bundled_unet_matches_the_committed_figures(variant):
    pytest.importorskip("torch")
    import cnn_baseline

    committed = json.loads(BASELINE_RESULTS.read_text(encoding="utf-8"))
    if variant not in committed["summary"].get("variants", ["fp32", "int8"]):
        pytest.skip(f"no committed figures of the {variant} weights")
    name = committed["summary"]["val_cases"][0]
    found_dirs = [DATA / c / name for c in ("brats2018", "brats2023_ssa")
                  if (DATA / c / name).is_dir()]
    if not found_dirs:
        pytest.skip(f"case {name} is absent from {DATA}")
    expected = next(c for c in committed["cases"]
                    if c["case"] == name and c["variant"] == variant)
    regions = ("whole_tumor", "tumor_core", "enhancing")
    case = load_brats_case(found_dirs[0])
    model = cnn_baseline.load_pretrained(variant=variant)
    found = cnn_baseline.predict(case, model=model, regions=regions)
    truth = brats_regions(case.labels)
    for k, region in enumerate(regions):
        assert dice(found[k], truth[region]) == pytest.approx(
            expected[f"dice_{region}"], abs=UNET_TOLERANCE), region


VOLUME_DETECTION_RESULTS = ROOT / "benchmarks" / "results" / "volume_detection.json"


@pytest.mark.parametrize("collection,name", CASES)
def test_boxes_off_the_untrained_map_match_the_committed_hit_rates(committed, collection, name):
    from pcnnseg.boxes import box_iou, largest_component_box
    from pcnnseg.volume_detection import detect_volume

    case_dir = DATA / collection / name
    if not case_dir.is_dir():
        pytest.skip(f"{case_dir} is absent")
    boxes = json.loads(VOLUME_DETECTION_RESULTS.read_text(encoding="utf-8"))
    fold = committed["folds"][name]
    area = boxes["methods"]["default"]["threshold_per_fold"][str(fold)]
    margin = boxes["methods"]["default"]["margin_per_fold"][str(fold)]
    case = load_brats_case(case_dir)
    mask = segment_tumor(case, **committed["variants"]["default"]["chosen"][str(fold)])
    found = detect_volume(case, whole_tumor=mask, min_area=area, margin=margin)
    truth = case.labels > 0
    scored = [z for z in range(truth.shape[0]) if truth[z].sum() >= 500]
    hits = [found.slices[z].box is not None
            and box_iou(found.slices[z].box, largest_component_box(truth[z])) >= 0.5
            for z in scored]
    # a slice whose IoU sits at 0.5 may flip on another CPU's rounding: one slice
    assert sum(hits) / len(hits) == pytest.approx(
        boxes["methods"]["default"]["per_case_hit_rate"][name], abs=1.0 / len(hits) + 1e-9)


DETECTION_RESULTS = ROOT / "benchmarks" / "results" / "detection.json"


def test_slice_detector_matches_the_committed_hit_rates():
    # The learned-reference detector on the slices of fold 0's BraTS 2018 and
    # BraTS-Africa cases, its exemplars fitted on the other folds' slices, as
    # benchmarks/detection.py does; against its committed per-case hit rates.
    from pcnnseg.boxes import box_iou, largest_component_box
    from pcnnseg.detection import detect, fit_reference
    from pcnnseg.io import find_brats_cases

    committed = json.loads(DETECTION_RESULTS.read_text(encoding="utf-8"))
    per_case, min_area = committed["per_case_reference"], committed["min_area_px"]
    slices = {}
    for collection in ("brats2018", "brats2023_ssa"):
        for case_dir in find_brats_cases(DATA / collection):
            case = load_brats_case(case_dir, sequences=("flair",))
            tumor = case.labels > 0
            keep = tumor.sum(axis=(1, 2)) >= min_area
            slices[case.name] = (case.images["flair"][keep], tumor[keep])
    if set(slices) != set(per_case):
        pytest.skip("the committed figures are of another set of cases")
    train = [n for n in slices if per_case[n]["fold"] != 0]
    reference = fit_reference(np.concatenate([slices[n][0] for n in train]),
                              np.concatenate([slices[n][1] for n in train]))
    for name in ("Brats18_CBICA_ABM_1", "BraTS-SSA-00002-000"):
        assert per_case[name]["fold"] == 0
        images, tumors = slices[name]
        hits = []
        for image, tumor in zip(images, tumors):
            box = detect(image, reference=reference).box
            hits.append(box is not None and box_iou(box, largest_component_box(tumor)) >= 0.5)
        # a slice whose IoU sits at 0.5 may flip on another CPU's rounding: one slice
        assert np.mean(hits) == pytest.approx(per_case[name]["hit_rate"],
                                              abs=1.0 / len(hits) + 1e-9), name
