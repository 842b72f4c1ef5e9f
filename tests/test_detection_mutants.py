"""What a mutation run of pcnnseg/detection.py (mutmut, issue 17) showed untested.

Each test pins behaviour that a surviving mutant changed: exact messages (anchored,
so that a renamed argument fails), inclusive bounds, defaults, the save/load round
trip, ``Detection.to_dict``'s content, the windows around a box on tiny inputs,
the options reaching the proposals, and a fitted reference agreeing with
:func:`detect` on the slice it was fitted on.
"""
import json
import math

import numpy as np
import pytest

import pcnnseg.detection as detection
import pcnnseg.validation as validation
from pcnnseg import phantom
from pcnnseg.detection import (Detection, Reference, box_signatures, candidate_boxes,
                               default_reference, detect, detection_stimulus, fit_reference)


@pytest.fixture(scope="module")
def small_slice():
    return phantom.make_slice((64, 64), seed=2)


def _ring_slice():
    """A slice whose bright pixels all get one stimulus value below 1.

    Left half 60, right half 110, bright pixels (150) in a solid 48 x 80 rectangle
    and in the 4-pixel-wide ring of a 64 x 64 square at (88, 40) whose inside is
    110. The median is 110 and the MAD 40 (the bright pixels' deviation), so the
    bright pixels' robust z is 1 / 1.4826 < 2: their stimulus is z / 2, about
    0.34, and every other pixel's is 0.
    """
    image = np.full((128, 160), 60.0)
    image[:, 80:] = 110.0
    image[16:64, 4:84] = 150.0
    image[40:104, 88:152] = 150.0
    image[44:100, 92:148] = 110.0
    return image


RING = (88, 40, 64, 64)


def _reference(n_iter=1, **kwargs):
    width = 3 * n_iter
    args = {"exemplars": np.zeros((1, width)), "spread": np.ones(width), "n_iter": n_iter}
    args.update(kwargs)
    return Reference(**args)


# --- Detection.to_dict ---------------------------------------------------------

def test_to_dict_content():
    found = Detection((3, 4, 5, 6), 0.25, np.array([[3, 4, 5, 6], [0, 1, 2, 3]]),
                      np.array([0.25, 0.125]), score=12.5)
    assert found.to_dict() == {
        "box": [3, 4, 5, 6], "distance": 0.25, "score": 12.5, "n_candidates": 2,
        "top": [{"box": [0, 1, 2, 3], "distance": 0.125},
                {"box": [3, 4, 5, 6], "distance": 0.25}]}


def test_to_dict_of_no_box_says_none_not_nan():
    nothing = Detection(None, math.nan, np.zeros((0, 4), dtype=np.int64), np.zeros(0))
    assert nothing.to_dict() == {"box": None, "distance": None, "score": None,
                                 "n_candidates": 0, "top": []}
    json.dumps(nothing.to_dict(), allow_nan=False)


def test_to_dict_keeps_ten_best_in_a_stable_order():
    distances = np.repeat([0.5, 0.25, 0.75], 20)  # ties: the earlier candidate first
    candidates = np.array([[k, 0, 4, 4] for k in range(60)])
    found = Detection((20, 0, 4, 4), 0.25, candidates, distances)
    top = found.to_dict()["top"]
    assert [entry["box"][0] for entry in top] == list(range(20, 30))
    assert [entry["box"][0] for entry in found.to_dict(top=25)["top"]] == \
        list(range(20, 40)) + list(range(0, 5))


# --- Reference ------------------------------------------------------------------

def test_reference_converts_its_settings():
    r = Reference(exemplars=[[0, 1, 2]], spread=[1, 2, 3], n_neighbours=np.int64(2),
                  patch_size=np.int64(8), inner=1, context=2, n_iter=np.int64(1))
    assert type(r.exemplars) is np.ndarray and r.exemplars.dtype == np.float64
    assert type(r.spread) is np.ndarray and r.spread.dtype == np.float64
    for name in ("n_neighbours", "patch_size", "n_iter"):
        assert type(getattr(r, name)) is int, name
    assert type(r.inner) is float and type(r.context) is float
    assert (r.n_neighbours, r.patch_size, r.inner, r.context, r.n_iter) == (2, 8, 1.0, 2.0, 1)


def test_reference_settings_save_and_load(tmp_path):
    r = Reference(exemplars=[[0, 1, 2]], spread=[1, 2, 3], n_neighbours=np.int64(2),
                  patch_size=np.int64(8), inner=1, context=2, n_iter=np.int64(1))
    r.save(tmp_path / "r.json")
    back = Reference.load(tmp_path / "r.json")
    assert (back.n_neighbours, back.patch_size, back.inner, back.context, back.n_iter) == (
        2, 8, 1.0, 2.0, 1)


def test_reference_save_rounds_exemplars_to_five_decimals(tmp_path):
    r = Reference(exemplars=[[0.1234567, 2 / 3, 1.0000049]], spread=[0.3, 1 / 7, 1.1],
                  n_neighbours=1, patch_size=8, inner=0.75, context=1.5, n_iter=1)
    r.save(tmp_path / "r.json")
    back = Reference.load(tmp_path / "r.json")
    assert back.exemplars.tolist() == [[0.12346, 0.66667, 1.0]]
    assert back.spread.tolist() == [0.3, 1 / 7, 1.1]
    assert (back.n_neighbours, back.patch_size, back.inner, back.context, back.n_iter) == (
        1, 8, 0.75, 1.5, 1)


@pytest.mark.parametrize("exemplars, shape", [
    (np.zeros((2, 8)), r"\(2, 8\)"), (np.zeros(9), r"\(9,\)"), (np.zeros((0, 9)), r"\(0, 9\)")])
def test_reference_refuses_exemplars_of_the_wrong_shape(exemplars, shape):
    with pytest.raises(ValueError, match=r"^exemplars: expected a \(B, 9\) array with B >= 1 "
                                         r"\(3 n_iter columns\), got shape " + shape + "$"):
        Reference(exemplars=exemplars, spread=np.ones(9), n_iter=3)


def test_reference_names_spread_that_is_not_numbers():
    with pytest.raises(ValueError, match=r"^spread: expected an array of numbers, got str$"):
        _reference(spread="abc")
    with pytest.raises(ValueError, match=r"^spread: expected an array of numbers$"):
        _reference(spread=[1.0, "a", 1.0])


@pytest.mark.parametrize("context", [1, 1.5, 8, 8.0])
def test_reference_context_bounds_are_inclusive(context):
    assert _reference(context=context).context == float(context)


@pytest.mark.parametrize("context", [0.99, 8.5])
def test_reference_refuses_context_out_of_range(context):
    with pytest.raises(ValueError, match=rf"^context: expected a number in \[1, 8\.0\], "
                                         rf"got {context}$"):
        _reference(context=context)


@pytest.mark.parametrize("inner", [1, 1.0, 0.01])
def test_reference_inner_up_to_one(inner):
    assert _reference(inner=inner).inner == float(inner)


@pytest.mark.parametrize("inner", [0, 1.5, 2])
def test_reference_refuses_inner_out_of_range(inner):
    with pytest.raises(ValueError, match=rf"^inner: expected a fraction in \(0, 1\], "
                                         rf"got {inner}$"):
        _reference(inner=inner)


def test_reference_distance_of_exemplars_to_themselves_is_zero_not_negative():
    rng = np.random.default_rng(0)
    exemplars = rng.random((50, 6)) * 50
    r = Reference(exemplars=exemplars, spread=np.full(6, 0.01), n_neighbours=1, n_iter=2)
    d = r.distance(exemplars)
    assert (d >= 0).all()
    np.testing.assert_allclose(d, 0.0, atol=1e-6)


def test_reference_distance_is_float64_for_any_float_input():
    rng = np.random.default_rng(1)
    exemplars = rng.random((4, 3))
    spread = np.array([0.5, 1.0, 2.0])
    r = Reference(exemplars=exemplars, spread=spread, n_neighbours=2, n_iter=1)
    f = rng.random((3, 3))
    brute = np.array([np.sort((((x - exemplars) / spread) ** 2).sum(axis=1))[:2].mean()
                      for x in f])
    for dtype in (np.float32, np.float64, np.longdouble):
        d = r.distance(f.astype(dtype))
        assert d.dtype == np.float64, dtype
        np.testing.assert_allclose(d, brute, rtol=1e-6)


def test_reference_load_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^reference: no such file: .*missing\.json$"):
        Reference.load(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"^reference: .*list\.json is not a valid detection "
                                         r"reference \(expected a JSON object, got list\)$"):
        Reference.load(tmp_path / "list.json")


# --- detection_stimulus, windows, box signatures ------------------------------------

def test_detection_stimulus_against_a_plain_computation(small_slice):
    image, _ = small_slice
    brain = image != 0
    values = image[brain]
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    z = np.where(brain, (image - median) / mad, 0.0)
    top = max(np.percentile(z[brain], 99.5), 2.0)
    expected = np.clip(z / top, 0, 1)
    for mask in (brain, brain.astype(np.uint8), brain.astype(np.float64)):
        S = detection_stimulus(image, mask)
        assert S.dtype == np.float32
        np.testing.assert_allclose(S, expected, rtol=1e-6, atol=1e-7)


def test_window_cuts_the_slice_with_zeros_outside():
    S = np.arange(1, 65, dtype=np.float32).reshape(8, 8)
    np.testing.assert_array_equal(detection._window(S, 0, 0, 2, 3), S[0:3, 0:2])
    np.testing.assert_array_equal(detection._window(S, -1, -2, 3, 3),
                                  [[0, 0, 0], [0, 0, 0], [0, 1, 2]])
    np.testing.assert_array_equal(detection._window(S, 6, 7, 3, 2),
                                  [[63, 64, 0], [0, 0, 0]])
    assert detection._window(S, 1, 1, 2, 2).dtype == np.float32


@pytest.mark.parametrize("x, y, w, h", [(1, -10, 2, 5), (-10, 1, 5, 2), (20, 1, 3, 3),
                                        (1, 20, 3, 3), (-4, -4, 4, 4)])
def test_window_off_the_slice_is_zero(x, y, w, h):
    S = np.ones((8, 8), dtype=np.float32)
    out = detection._window(S, x, y, w, h)
    assert out.shape == (h, w) and not out.any()


@pytest.mark.parametrize("box, factor, expected", [
    ((10, 20, 8, 6), 0.5, (12, 21, 4, 3)),      # 14 - 2, floor(23 - 1.5)
    ((10, 20, 8, 6), 2.0, (6, 17, 16, 12)),     # 14 - 8, 23 - 6
    ((10, 20, 9, 7), 2.0, (5, 16, 18, 14)),     # floor(14.5 - 9), floor(23.5 - 7)
    ((3, 5, 12, 9), 1.5, (0, 2, 18, 14)),       # 9 - 9; round(13.5) = 14, floor(9.5 - 7)
    ((5, 7, 1, 1), 0.5, (5, 7, 1, 1)),          # a side of 0 becomes 1
    ((0, 0, 30, 3), 0.25, (11, 1, 8, 1)),       # round(7.5) = 8: 15 - 4; floor(1.5 - 0.5)
])
def test_scaled_box(box, factor, expected):
    assert detection._scaled_box(box, factor) == expected


def test_box_signatures_of_no_boxes():
    S = np.zeros((6, 6), dtype=np.float32)
    out = box_signatures(S, np.zeros((0, 4)), n_iter=5)
    assert out.shape == (0, 3, 5) and out.dtype == np.float64


def test_box_signatures_accept_integral_float_boxes(small_slice):
    image, _ = small_slice
    S = detection_stimulus(image, image != 0)
    as_int = box_signatures(S, [[20, 24, 10, 8]], patch_size=8, n_iter=6)
    as_float = box_signatures(S, np.array([[20.0, 24.0, 10.0, 8.0]]), patch_size=8, n_iter=6)
    np.testing.assert_array_equal(as_float, as_int)


def test_box_signatures_memory_check(monkeypatch):
    # 2 boxes of 4 x 4 patches: 3 float32 windows (12 bytes) per pixel, 384 bytes
    S = np.zeros((8, 8), dtype=np.float32)
    monkeypatch.setattr(validation, "memory_limit", lambda: 383)
    with pytest.raises(MemoryError, match=r"^box_signatures: 2 boxes of 4x4 patches needs "
                                          r"about 384 B, more than the 383 B of memory of "
                                          r"this machine$"):
        box_signatures(S, [[0, 0, 4, 4], [2, 2, 4, 4]], patch_size=4, n_iter=3)


# --- candidate boxes -----------------------------------------------------------------

def test_candidate_boxes_filters(monkeypatch):
    # brain: rows 2..17, columns 3..20 of a 20 x 24 slice, but for one pixel (8, 11)
    S = np.zeros((20, 24), dtype=np.float32)
    brain = np.zeros(S.shape, bool)
    brain[2:18, 3:21] = True
    brain[8, 11] = False
    calls = []

    def fake(image, **kwargs):
        calls.append((image.shape, kwargs))
        return np.array([[0, 0, 10, 12],   # area 120 = 0.25 * 480: kept
                         [0, 0, 11, 11],   # 121: dropped
                         [1, 1, 4, 4],     # sides of MIN_SIDE: kept
                         [1, 1, 3, 8],     # too narrow
                         [1, 1, 8, 3],     # too low
                         [5, 0, 6, 12]])   # centre (row 8, column 11) off the brain

    monkeypatch.setattr(detection, "selective_search", fake)
    boxes = candidate_boxes(S, brain)
    assert boxes.tolist() == [[3, 2, 10, 12], [4, 3, 4, 4]]
    assert boxes.dtype == np.int64
    assert calls == [((16, 18), {"scale": 100.0, "sigma": 0.8, "min_size": 50,
                                 "method": "fast", "value_range": (0.0, 1.0)})]


def _spy_on_proposals(monkeypatch):
    calls = []
    real = detection.selective_search

    def spy(image, **kwargs):
        calls.append(kwargs)
        return real(image, **kwargs)

    monkeypatch.setattr(detection, "selective_search", spy)
    return calls


def test_candidate_boxes_default_options(monkeypatch, small_slice):
    image, _ = small_slice
    brain = image != 0
    S = detection_stimulus(image, brain)
    calls = _spy_on_proposals(monkeypatch)
    assert len(candidate_boxes(S, brain)) > 0
    assert calls == [{"scale": 100.0, "sigma": 0.8, "min_size": 50, "method": "fast",
                      "value_range": (0.0, 1.0)}]


def test_detect_default_options_reach_the_proposals(monkeypatch, small_slice):
    image, _ = small_slice
    calls = _spy_on_proposals(monkeypatch)
    detect(image)
    assert calls == [{"scale": 100.0, "sigma": 0.8, "min_size": 50, "method": "fast",
                      "value_range": (0.0, 1.0)}]


def test_detect_options_reach_the_proposals(monkeypatch, small_slice):
    image, _ = small_slice
    calls = _spy_on_proposals(monkeypatch)
    detect(image, reference=None, proposals="package", scale=20.0, sigma=0.3, min_size=7)
    assert calls == [{"scale": 20.0, "sigma": 0.3, "min_size": 7, "method": "package",
                      "value_range": (0.0, 1.0)}]


# --- detect ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    ({"max_area": 0}, ValueError, r"^max_area: expected a fraction in \(0, 1\], got 0$"),
    ({"max_area": 1.5}, ValueError, r"^max_area: expected a fraction in \(0, 1\], got 1\.5$"),
    ({"max_area": "big"}, TypeError, r"^max_area: expected a number, got str$"),
    ({"proposals": "slow"}, ValueError,
     r"^proposals: expected one of \('fast', 'package'\), got 'slow'$"),
    ({"reference": "mine"}, ValueError,
     r"^reference: expected 'default', a Reference or None, got 'mine'$"),
    ({"reference": 3}, TypeError, r"^reference: expected 'default', a Reference or None, got int$"),
    ({"brain_mask": np.ones((1, 8, 8), bool)}, ValueError,
     r"^brain_mask: expected a 2-D array, got 3-D with shape \(1, 8, 8\)$"),
    ({"brain_mask": np.ones((4, 4), bool)}, ValueError,
     r"^brain_mask: expected shape \(8, 8\) \(that of the slice\), got \(4, 4\)$"),
])
def test_detect_messages(kwargs, error, message):
    with pytest.raises(error, match=message):
        detect(np.eye(8), **kwargs)


def test_detect_accepts_the_whole_slice_as_max_area(small_slice):
    image, _ = small_slice
    found = detect(image, reference=None, max_area=1)
    area = found.candidates[:, 2] * found.candidates[:, 3]
    assert len(found.candidates) > 0 and (area <= image.size).all()


def test_detect_without_a_box_has_int64_candidates():
    found = detect(np.zeros((8, 8)))
    assert found.candidates.dtype == np.int64 and found.candidates.shape == (0, 4)
    assert found.distances.dtype == np.float64


def test_detect_default_reference_is_the_bundled_one(small_slice):
    image, _ = small_slice
    default = detect(image)
    bundled = detect(image, reference=default_reference())
    published = detect(image, reference=None)
    np.testing.assert_array_equal(default.candidates, bundled.candidates)
    np.testing.assert_array_equal(default.distances, bundled.distances)
    assert not np.allclose(default.distances, published.distances)


def test_published_method_pulses_slice_and_patches_on_one_scale():
    # The ring's box holds the same bright fraction as the slice (960 / 4096 and
    # 4800 / 20480), so its distance is 0 only if the slice's and the box's bright
    # pixels (stimulus about 0.34, not 1) fire at the same iteration.
    image = _ring_slice()
    values = image.ravel()
    median = np.median(values)
    mad = np.median(np.abs(values - median))
    assert (median, mad) == (110.0, 40.0)
    assert 0.3 < (150 - median) / (1.4826 * mad) / 2 < 0.4   # the bright stimulus
    found = detect(image, reference=None)
    assert found.box == RING
    assert found.distance == pytest.approx(0.0, abs=1e-12)
    bright = 4800 / image.size
    solid = [d for c, d in zip(found.candidates, found.distances)
             if c[0] >= 4 and c[1] >= 16 and c[0] + c[2] <= 84 and c[1] + c[3] <= 64]
    assert solid
    np.testing.assert_allclose(solid, 1.0 - bright, atol=1e-12)


# --- fit_reference -------------------------------------------------------------------

def test_reference_fitted_on_a_slice_finds_its_box_at_distance_zero():
    # a reference with settings other than the defaults: fit_reference must compute
    # the exemplar with them and detect must compute the candidates' features with
    # the reference's, or the ring's own box is no longer at distance 0 (inner 1.0:
    # the inner window is the ring's box, where the default half lies in its hollow)
    image = _ring_slice()
    tumor = np.zeros(image.shape, bool)
    tumor[40:104, 88:152] = image[40:104, 88:152] == 150
    r = fit_reference([image], [tumor], patch_size=24, inner=1.0, context=1.5, n_iter=30,
                      n_neighbours=1)
    assert (r.patch_size, r.inner, r.context, r.n_iter, r.n_neighbours) == (24, 1.0, 1.5, 30, 1)
    assert r.exemplars.shape == (1, 90)
    np.testing.assert_array_equal(r.spread, np.full(90, 1e-3))
    found = detect(image, reference=r)
    assert found.box == RING
    assert found.distance == pytest.approx(0.0, abs=1e-9)
    others = [d for c, d in zip(found.candidates, found.distances) if tuple(c) != RING]
    assert others and min(others) > 1.0


def test_fit_reference_passes_n_neighbours(small_slice):
    image, tumor = small_slice
    assert fit_reference([image], [tumor], n_neighbours=1).n_neighbours == 1
    assert fit_reference([image], [tumor], n_neighbours=3).n_neighbours == 3


def test_fit_reference_uses_the_brain_masks(small_slice):
    image, tumor = small_slice
    brain = image != 0
    left = brain.copy()
    left[:, 40:] = False
    assert (tumor & left).any()
    given = fit_reference([image], [tumor], brain_masks=[left])
    cut = fit_reference([np.where(left, image, 0.0)], [tumor])
    whole = fit_reference([image], [tumor])
    np.testing.assert_array_equal(given.exemplars, cut.exemplars)
    assert not np.allclose(given.exemplars, whole.exemplars)
    as_ints = fit_reference([image], [tumor], brain_masks=[left.astype(np.uint8)])
    np.testing.assert_array_equal(as_ints.exemplars, given.exemplars)


def test_fit_reference_goes_on_past_unusable_slices(small_slice):
    image, tumor = small_slice
    flat = np.where(image != 0, 5.0, 0.0)   # no intensity spread: no stimulus
    after_empty = fit_reference([image, image], [np.zeros_like(tumor), tumor])
    after_flat = fit_reference([flat, image], [tumor, tumor])
    alone = fit_reference([image], [tumor])
    np.testing.assert_array_equal(after_empty.exemplars, alone.exemplars)
    np.testing.assert_array_equal(after_flat.exemplars, alone.exemplars)


def _fit_error(slices, masks, **kwargs):
    return lambda: fit_reference(slices, masks, **kwargs)


@pytest.mark.parametrize("call, error, message", [
    (_fit_error([np.eye(5)], [np.eye(5)], n_neighbours=0), ValueError,
     r"^n_neighbours: expected an integer >= 1, got 0$"),
    (_fit_error([np.eye(5)], [np.eye(5)], inner=0), ValueError,
     r"^inner: expected a fraction in \(0, 1\], got 0$"),
    (_fit_error([np.eye(5)], [np.eye(5)], context=0.5), ValueError,
     r"^context: expected a number in \[1, 8\.0\], got 0\.5$"),
    (_fit_error([np.eye(5)], []), ValueError, r"^masks: expected one mask per slice \(1\), got 0$"),
    (_fit_error([np.eye(5)], [np.eye(5)], brain_masks=[np.eye(5), np.eye(5)]), ValueError,
     r"^brain_masks: expected one per slice \(1\), got 2$"),
    (_fit_error([np.eye(5), np.full((5, 5), np.nan)], [np.zeros((5, 5))] * 2), ValueError,
     r"^slices\[1\]: contains NaN or infinite values$"),
    (_fit_error([np.zeros((2, 5, 5))], [np.zeros((5, 5))]), ValueError,
     r"^slices\[0\]: expected a 2-D array, got 3-D with shape \(2, 5, 5\)$"),
    (_fit_error([np.eye(5), np.eye(5)], [np.zeros((5, 5)), np.full((5, 5), 2)]), ValueError,
     r"^masks\[1\]: expected a binary mask with values 0 and 1 only, found 25 other"),
    (_fit_error([np.eye(5)], [np.zeros((1, 5, 5))]), ValueError,
     r"^masks\[0\]: expected a 2-D array, got 3-D with shape \(1, 5, 5\)$"),
    (_fit_error([np.eye(5)], [np.ones((4, 4))]), ValueError,
     r"^masks\[0\]: expected shape \(5, 5\), got \(4, 4\)$"),
    (_fit_error([np.eye(5), np.eye(5)], [np.zeros((5, 5)), np.eye(5)],
                brain_masks=[np.ones((5, 5)), np.ones((4, 4))]), ValueError,
     r"^brain_masks\[1\]: expected shape \(5, 5\) \(that of the slice\), got \(4, 4\)$"),
    (_fit_error([np.eye(5)], [np.zeros((5, 5))]), ValueError,
     r"^masks: no slice with both a tumor and brain intensities to learn from$"),
])
def test_fit_reference_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_fit_reference_explains_running_out_of_memory(monkeypatch, small_slice):
    image, tumor = small_slice

    def no_memory(*args, **kwargs):
        raise MemoryError("Allocation failed")

    monkeypatch.setattr(detection, "pulse", no_memory)
    with pytest.raises(MemoryError, match=r"^fit_reference: slices\[1\] of shape \(64, 64\) "
                                          r"ran out of memory \(Allocation failed\); try a "
                                          r"smaller input$"):
        fit_reference([image, image], [np.zeros_like(tumor), tumor])
