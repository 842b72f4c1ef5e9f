"""detect_volume: per-slice boxes read off the whole-tumor map, and "no tumor"."""
import json
import math

import numpy as np
import pytest

from pcnnseg import phantom, segment_tumor
from pcnnseg.boxes import box_iou, largest_component_box
from pcnnseg.detection import Detection
from pcnnseg.volume_detection import MIN_TUMOR_AREA, VolumeDetection, detect_volume


@pytest.fixture(scope="module")
def volume():
    return phantom.make_volume(seed=0)


def test_phantom_tumor_slices_are_found_and_no_others(volume):
    flair, truth = volume
    found = detect_volume(flair)
    assert isinstance(found, VolumeDetection)
    assert len(found.slices) == flair.shape[0]
    with_tumor = [z for z in range(flair.shape[0]) if truth[z].sum() > MIN_TUMOR_AREA]
    assert found.tumor_slices == with_tumor
    assert found.has_tumor
    exact = detect_volume(flair, margin=0.0)
    for z in with_tumor:
        assert box_iou(exact.slices[z].box, largest_component_box(truth[z])) >= 0.7
        # the default margin (a tenth of the box a side) keeps every phantom slice a hit
        assert box_iou(found.slices[z].box, largest_component_box(truth[z])) >= 0.5


def test_boxes_and_scores_follow_a_given_mask_exactly():
    """With whole_tumor given, each slice's box is its mask's largest part, its score the
    area in mm² (pixel area from the spacing), and nothing is segmented."""
    flair = np.ones((3, 20, 30), dtype=np.float32)
    mask = np.zeros(flair.shape, dtype=bool)
    mask[0, 2:6, 3:10] = True          # 28 px
    mask[0, 12:14, 20:22] = True       # a smaller part: not the box
    mask[2, 5:7, 5:6] = True           # 2 px: under the threshold
    found = detect_volume(flair, whole_tumor=mask, spacing=(3.0, 2.0, 0.5), min_area=10.0,
                          margin=0.0)
    assert found.slices[0].box == (3, 2, 7, 4)
    assert found.slices[0].score == pytest.approx(32 * 1.0)
    assert found.slices[1].box is None and found.slices[1].score == -3.0   # 1 slice of 3 mm
    assert found.slices[2].box is None and found.slices[2].score == pytest.approx(2.0)
    assert found.tumor_slices == [0]
    assert np.array_equal(found.whole_tumor, mask)


def test_slices_the_map_misses_score_minus_their_distance_to_it():
    flair = np.ones((9, 8, 8), dtype=np.float32)
    mask = np.zeros(flair.shape, dtype=bool)
    mask[3, 2:4, 2:4] = True
    mask[5, 2:5, 2:4] = True
    found = detect_volume(flair, whole_tumor=mask, spacing=(2.5, 1.0, 1.0))
    assert [d.score for d in found.slices] == pytest.approx(
        [-7.5, -5.0, -2.5, 4.0, -2.5, 6.0, -2.5, -5.0, -7.5])
    assert found.tumor_slices == [3, 5]
    # above a positive min_area, slices with a little tumor keep their area
    found = detect_volume(flair, whole_tumor=mask, spacing=(2.5, 1.0, 1.0), min_area=5.0)
    assert found.tumor_slices == [5] and found.slices[3].score == 4.0


def test_min_area_zero_keeps_every_slice_with_tumor_voxels():
    flair = np.ones((2, 8, 8), dtype=np.float32)
    mask = np.zeros(flair.shape, dtype=bool)
    mask[1, 4, 4] = True
    found = detect_volume(flair, whole_tumor=mask, min_area=0.0)
    assert found.tumor_slices == [1]
    assert found.slices[1].box == (4, 4, 1, 1)


def test_empty_map_means_no_tumor_anywhere():
    flair = np.ones((2, 8, 8), dtype=np.float32)
    found = detect_volume(flair, whole_tumor=np.zeros(flair.shape, dtype=bool))
    assert not found.has_tumor and found.tumor_slices == []
    assert all(d.box is None and d.score == 0.0 for d in found.slices)


def test_same_result_as_segmenting_first(volume):
    flair, _ = volume
    shared = detect_volume(flair, whole_tumor=segment_tumor(flair))
    alone = detect_volume(flair)
    assert [d.box for d in shared.slices] == [d.box for d in alone.slices]
    assert [d.score for d in shared.slices] == [d.score for d in alone.slices]


def test_detection_json_carries_the_score():
    d = Detection((1, 2, 3, 4), math.nan, np.zeros((0, 4), np.int64), np.zeros(0), score=12.5)
    out = json.loads(json.dumps(d.to_dict()))
    assert out["box"] == [1, 2, 3, 4] and out["score"] == 12.5 and out["distance"] is None
    none = Detection(None, math.nan, np.zeros((0, 4), np.int64), np.zeros(0))
    assert none.to_dict()["score"] is None and none.to_dict()["box"] is None


@pytest.mark.parametrize("bad, match", [
    (-1.0, "min_area"), (math.inf, "min_area"), (math.nan, "min_area")])
def test_bad_min_area_is_refused(bad, match):
    flair = np.ones((2, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        detect_volume(flair, whole_tumor=np.zeros(flair.shape, bool), min_area=bad)


def test_a_slice_is_refused_with_a_pointer_to_detect():
    with pytest.raises(ValueError, match="pcnnseg.detect"):
        detect_volume(np.ones((8, 8), dtype=np.float32))


def test_mask_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="whole_tumor: expected the images' shape"):
        detect_volume(np.ones((2, 8, 8), np.float32), whole_tumor=np.zeros((2, 8, 9), bool))


def test_non_binary_mask_is_refused():
    mask = np.zeros((2, 8, 8))
    mask[0, 0, 0] = 0.5
    with pytest.raises(ValueError, match="whole_tumor"):
        detect_volume(np.ones((2, 8, 8), np.float32), whole_tumor=mask)


@pytest.mark.parametrize("extra", [{"segmenter": "default"},
                                   {"brain_mask": np.ones((2, 8, 8), bool)}])
def test_segmenting_options_with_a_given_mask_are_refused(extra):
    with pytest.raises(ValueError, match="must not be given with it"):
        detect_volume(np.ones((2, 8, 8), np.float32), whole_tumor=np.zeros((2, 8, 8), bool),
                      **extra)


def test_segmenter_with_a_slice_method_is_refused():
    from pcnnseg.batch import detect_boxes, detect_many
    flair = np.ones((2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="only the map method segments"):
        detect_boxes({"flair": flair}, flair, method="reference", segmenter="default")
    with pytest.raises(ValueError, match="only the map method segments"):
        detect_many([], "unused", method="published", segmenter="default")


# ------------------------------------------------- what mutation testing found (issue 17)


def test_scores_are_areas_in_mm2_and_the_threshold_is_inclusive():
    flair = np.ones((3, 20, 30), dtype=np.float32)
    mask = np.zeros(flair.shape, dtype=bool)
    mask[0, 2:6, 3:10] = True          # 28 px of 2 x 1.5 mm²: 84 mm²
    mask[1, 5:7, 5:7] = True           # 4 px: 12 mm², exactly the threshold
    mask[2, 5, 5] = True               # 3 mm²: under it
    found = detect_volume(flair, whole_tumor=mask, spacing=(3.0, 2.0, 1.5), min_area=12.0)
    assert [d.score for d in found.slices] == pytest.approx([84.0, 12.0, 3.0])
    assert found.tumor_slices == [0, 1] and found.min_area == 12.0
    for d in found.slices:             # no candidates were scored: empty, typed arrays
        assert math.isnan(d.distance)
        assert d.candidates.shape == (0, 4) and d.candidates.dtype == np.int64
        assert d.distances.shape == (0,)


def test_the_spacing_of_a_case_is_its_geometry():
    from pcnnseg.io import BratsCase, Image
    flair = np.ones((2, 8, 8), dtype=np.float32)
    case = BratsCase("c", {"flair": flair}, None,
                     Image(flair, (1.5, 2.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel())))   # x, y, z
    mask = np.zeros(flair.shape, dtype=bool)
    mask[0, 1:3, 1:3] = True
    assert detect_volume(case, whole_tumor=mask).slices[0].score == pytest.approx(4 * 3.0)
    assert detect_volume(case, whole_tumor=mask, spacing=(1, 1, 1)).slices[0].score == 4.0


def test_segmenting_options_reach_segment_tumor(monkeypatch):
    import pcnnseg.tumor
    seen = {}

    def fake(images, **kwargs):
        seen.update(kwargs)
        return np.zeros((2, 8, 8), bool)

    monkeypatch.setattr(pcnnseg.tumor, "segment_tumor", fake)
    brain, segmenter = np.ones((2, 8, 8), bool), object()
    detect_volume(np.ones((2, 8, 8), np.float32), brain_mask=brain, spacing=(3, 2, 1.5),
                  segmenter=segmenter)
    assert seen["brain_mask"] is brain and seen["segmenter"] is segmenter
    assert tuple(seen["spacing"]) == (3.0, 2.0, 1.5)


def test_messages_name_the_argument():
    flair = np.ones((2, 8, 8), dtype=np.float32)
    empty = np.zeros(flair.shape, bool)
    with pytest.raises(TypeError, match=r"^min_area: "):
        detect_volume(flair, whole_tumor=empty, min_area="large")
    with pytest.raises(ValueError, match=r"^whole_tumor: the boxes are read off this mask, so "
                                         r"brain_mask and segmenter, which segment, must not "
                                         r"be given with it$"):
        detect_volume(flair, whole_tumor=empty, segmenter="default")
    half = np.zeros(flair.shape)
    half[0, 0, 0] = 0.5
    with pytest.raises(ValueError, match=r"^whole_tumor: "):
        detect_volume(flair, whole_tumor=half)


def test_boxes_grow_by_a_share_of_their_size_and_stay_in_the_image():
    flair = np.ones((2, 20, 30), dtype=np.float32)
    mask = np.zeros(flair.shape, dtype=bool)
    mask[0, 5:15, 10:30] = True         # box (10, 5, 20, 10): 2 px a side in x, 1 in y
    mask[1, 0:3, 21:30] = True          # at the image's corner: (21, 0, 9, 3)
    found = detect_volume(flair, whole_tumor=mask, margin=0.1)
    assert found.margin == 0.1
    assert found.slices[0].box == (8, 4, 22, 12)       # clipped at the right
    assert found.slices[1].box == (20, 0, 10, 3)       # 1 px in x; 0.3 px rounds to 0 in y
    assert found.slices[0].score == pytest.approx(200.0)   # the area is the map's
    plain = detect_volume(flair, whole_tumor=mask, margin=0.0)
    assert plain.slices[0].box == (10, 5, 20, 10)


@pytest.mark.parametrize("margin, error", [(-1.0, ValueError), (math.inf, ValueError),
                                           ("2", TypeError)])
def test_bad_margins_are_clear_errors(margin, error):
    flair = np.ones((2, 8, 8), dtype=np.float32)
    with pytest.raises(error, match="^margin: expected"):
        detect_volume(flair, whole_tumor=np.zeros(flair.shape, bool), margin=margin)
