"""pcnnseg.metrics: hand-computed cases, conventions, cross-checks and bad input."""
import itertools
import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from pcnnseg import metrics
from pcnnseg.metrics import (brats_regions, convert_brats_labels, dice, evaluate,
                             evaluate_slices, hausdorff95, hausdorff_distance, iou,
                             mean_tumor_slice_dice, sensitivity, specificity,
                             surface_distances)



# ---------------------------------------------------------------------- helpers

def _blobs(shape, seed, sigma=1.5, frac=0.3):
    """A random smooth binary mask covering about ``frac`` of the array."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random(shape), sigma)
    return field > np.quantile(field, 1 - frac)


def _box(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def _brute_surface(mask):
    """Surface by explicit neighbour checks: in mask, some 3**ndim neighbour is not."""
    padded = np.pad(mask, 1, constant_values=False)
    surf = np.zeros_like(mask)
    for offset in itertools.product((-1, 0, 1), repeat=mask.ndim):
        window = tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, mask.shape))
        surf |= ~padded[window]
    return mask & surf


def _brute_hd(a, b, spacing, q):
    """Pooled q-th percentile of all-pairs surface distances, by brute force."""
    sa = np.argwhere(_brute_surface(a)) * np.asarray(spacing)
    sb = np.argwhere(_brute_surface(b)) * np.asarray(spacing)
    d = np.sqrt(((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1))
    return float(np.percentile(np.concatenate([d.min(1), d.min(0)]), q))


def _sitk_image(mask, spacing_zyx):
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))   # SimpleITK: (x, y, z)
    return img


# ------------------------------------------------------------ hand-computed cases

def test_overlapping_squares_hand_computed():
    a = _box((8, 8), (0, 0), (4, 4))          # 16 pixels
    b = _box((8, 8), (2, 2), (6, 6))          # 16 pixels, 4 shared
    # TP 4, FP 12, FN 12, TN 64 - 28 = 36
    assert dice(a, b) == pytest.approx(8 / 32)
    assert iou(a, b) == pytest.approx(4 / 28)
    assert sensitivity(a, b) == pytest.approx(4 / 16)
    assert specificity(a, b) == pytest.approx(36 / 48)
    # dice/iou identity
    assert iou(a, b) == pytest.approx(dice(a, b) / (2 - dice(a, b)))


def test_sensitivity_specificity_are_not_symmetric():
    truth = _box((6, 6), (0, 0), (2, 6))       # 12 pixels
    pred = _box((6, 6), (0, 0), (4, 6))        # 24 pixels, covers truth
    assert sensitivity(pred, truth) == 1.0
    assert specificity(pred, truth) == pytest.approx(12 / 24)
    assert sensitivity(truth, pred) == pytest.approx(0.5)
    assert specificity(truth, pred) == 1.0


def test_identical_masks():
    m = _blobs((20, 20), seed=0)
    res = evaluate(m, m)
    assert res == {"dice": 1.0, "iou": 1.0, "sensitivity": 1.0, "specificity": 1.0,
                   "hausdorff95": 0.0}


def test_hd95_hand_computed_percentile():
    # a: one voxel at column 0; b: columns 0..9 of a one-row image, all of which are
    # surface (outside the array is background). a->b: [0]; b->a: [0, 1, ..., 9].
    a = _box((1, 12), (0, 0), (1, 1))
    b = _box((1, 12), (0, 0), (1, 10))
    pooled = np.array([0] + list(range(10)), float)
    # 95th percentile of 11 sorted values: position 9.5 -> (8 + 9) / 2
    assert hausdorff95(a, b) == pytest.approx(8.5)
    assert hausdorff95(a, b) == pytest.approx(np.percentile(pooled, 95))
    assert hausdorff_distance(a, b, percentile=100) == 9.0
    assert hausdorff_distance(a, b, percentile=50) == pytest.approx(4.0)
    to_b, to_a = surface_distances(a, b)
    np.testing.assert_array_equal(to_b, [0.0])
    np.testing.assert_array_equal(to_a, np.arange(10.0))


def test_hd95_single_voxels_diagonal_with_spacing():
    a = np.zeros((5, 5, 5), bool); a[0, 0, 0] = True
    b = np.zeros((5, 5, 5), bool); b[1, 2, 3] = True
    assert hausdorff95(a, b, spacing=(3.0, 2.0, 0.5)) == pytest.approx(math.sqrt(9 + 16 + 2.25))


def test_surface_uses_full_connectivity():
    # 5x5 square minus its corner (2, 2): (3, 3) touches the hole only diagonally,
    # so it is a surface voxel (full connectivity); it would not be with faces only.
    m = _box((9, 9), (2, 2), (7, 7))
    m[2, 2] = False
    other = np.zeros_like(m); other[4, 4] = True        # interior voxel of m
    to_other, _ = surface_distances(m, other)
    assert to_other.size == 16                           # 15 on the ring + (3, 3)
    # from (4, 4) the nearest surface voxel of m is (3, 3), not the ring (2 away)
    _, to_m = surface_distances(m, other)
    assert to_m.tolist() == [pytest.approx(math.sqrt(2))]


def test_mask_touching_border_has_surface_there():
    full = np.ones((4, 6), bool)
    center = np.zeros((4, 6), bool); center[1, 2] = True
    to_center, _ = surface_distances(full, center)
    assert to_center.size == 4 * 6 - 2 * 4               # the outer ring only


# ----------------------------------------------------------- symmetry, invariance

@pytest.mark.parametrize("shape", [(24, 19), (9, 12, 11)])
def test_symmetry(shape):
    a, b = _blobs(shape, 1), _blobs(shape, 2)
    spacing = (1.5, 0.7, 2.0)[-len(shape):]
    assert dice(a, b) == dice(b, a)
    assert iou(a, b) == iou(b, a)
    assert hausdorff95(a, b, spacing=spacing) == hausdorff95(b, a, spacing=spacing)
    assert sensitivity(a, b) == pytest.approx(
        (a & b).sum() / b.sum())
    assert specificity(b, a) == pytest.approx((~a & ~b).sum() / (~a).sum())


def test_invariance_under_flips_and_axis_permutation():
    a, b = _blobs((8, 10, 12), 3), _blobs((8, 10, 12), 4)
    spacing = (2.0, 1.0, 0.5)
    ref = evaluate(a, b, spacing=spacing)
    flipped = evaluate(a[::-1, :, ::-1], b[::-1, :, ::-1], spacing=spacing)
    perm = (2, 0, 1)
    permuted = evaluate(a.transpose(perm), b.transpose(perm),
                        spacing=tuple(spacing[i] for i in perm))
    for res in (flipped, permuted):
        for key in ref:
            assert res[key] == pytest.approx(ref[key], rel=1e-12)


def test_hd95_unchanged_by_zero_padding():
    # the implementation crops to the masks' bounding box; padding must not matter,
    # including for masks that touch the array border
    a, b = _blobs((10, 9, 8), 5), _blobs((10, 9, 8), 6)
    assert a[0].any() or a[-1].any()
    pad = ((3, 1), (0, 4), (2, 2))
    sp = (1.2, 0.8, 2.5)
    assert hausdorff95(np.pad(a, pad), np.pad(b, pad), spacing=sp) == \
        pytest.approx(hausdorff95(a, b, spacing=sp))


# ------------------------------------------------------------- anisotropic spacing

@pytest.mark.parametrize("axis", [0, 1, 2])
def test_shift_along_axis_with_spacing_two_doubles_distance(axis):
    shape = (12, 12, 12)
    a = _box(shape, (2, 2, 2), (5, 6, 5))
    b = np.roll(a, 3, axis=axis)
    iso = hausdorff95(a, b)
    assert iso == pytest.approx(3.0)
    spacing = [1.0, 1.0, 1.0]
    spacing[axis] = 2.0
    assert hausdorff95(a, b, spacing=spacing) == pytest.approx(6.0)
    # spacing on another axis leaves a pure shift's distance unchanged
    spacing = [1.0, 1.0, 1.0]
    spacing[(axis + 1) % 3] = 2.0
    assert hausdorff95(a, b, spacing=spacing) == pytest.approx(3.0)


# ------------------------------------------------------------- empty conventions

def test_both_empty():
    z = np.zeros((5, 6), bool)
    assert dice(z, z) == 1.0
    assert iou(z, z) == 1.0
    assert hausdorff95(z, z) == 0.0
    assert math.isnan(sensitivity(z, z))
    assert specificity(z, z) == 1.0


@pytest.mark.parametrize("empty_is", ["pred", "truth"])
def test_exactly_one_empty(empty_is):
    m = _box((5, 6, 4), (1, 1, 1), (3, 3, 3))
    z = np.zeros_like(m)
    pred, truth = (z, m) if empty_is == "pred" else (m, z)
    assert dice(pred, truth) == 0.0
    assert iou(pred, truth) == 0.0
    assert hausdorff95(pred, truth) == math.inf
    assert hausdorff95(pred, truth, spacing=(2, 2, 2)) == math.inf
    assert hausdorff_distance(pred, truth, percentile=100) == math.inf
    res = evaluate(pred, truth)
    assert res["dice"] == 0.0 and res["hausdorff95"] == math.inf
    with pytest.raises(ValueError, match="empty"):
        surface_distances(pred, truth)


def test_sensitivity_nan_when_truth_empty():
    z = np.zeros((4, 4), bool)
    p = _box((4, 4), (0, 0), (2, 2))
    assert math.isnan(sensitivity(p, z))
    assert math.isnan(evaluate(p, z)["sensitivity"])
    assert sensitivity(z, p) == 0.0


def test_specificity_nan_when_truth_covers_everything():
    full = np.ones((4, 4), bool)
    p = _box((4, 4), (0, 0), (2, 2))
    assert math.isnan(specificity(p, full))
    assert math.isnan(specificity(full, full))
    assert specificity(full, p) == 0.0


# -------------------------------------------------------------------------- BraTS

def test_brats_regions_mapping():
    labels = np.array([[0, 1, 2, 4], [4, 2, 1, 0]], dtype=np.uint8)
    r = brats_regions(labels)
    assert set(r) == {"whole_tumor", "tumor_core", "enhancing"}
    np.testing.assert_array_equal(r["whole_tumor"], labels > 0)
    np.testing.assert_array_equal(r["tumor_core"], (labels == 1) | (labels == 4))
    np.testing.assert_array_equal(r["enhancing"], labels == 4)
    for m in r.values():
        assert m.dtype == bool and m.shape == labels.shape
    # nested regions
    assert not np.any(r["enhancing"] & ~r["tumor_core"])
    assert not np.any(r["tumor_core"] & ~r["whole_tumor"])
    # float label maps holding integer values (as read from NIfTI) are accepted
    r3 = brats_regions(np.stack([labels, labels]).astype(np.float32))
    assert r3["enhancing"].sum() == 4


@pytest.mark.parametrize("bad", [3, 5, -1, 1.5])
def test_brats_rejects_unknown_labels(bad):
    labels = np.array([[0, 1], [2, 4]], dtype=float)
    labels[0, 0] = bad
    with pytest.raises(ValueError, match="labels"):
        brats_regions(labels)


def test_brats_regions_2023_convention():
    labels = np.array([[0, 1], [2, 3]])
    r = brats_regions(labels, convention="2023")
    np.testing.assert_array_equal(r["whole_tumor"], [[False, True], [True, True]])
    np.testing.assert_array_equal(r["tumor_core"], [[False, True], [False, True]])
    np.testing.assert_array_equal(r["enhancing"], [[False, False], [False, True]])
    with pytest.raises(ValueError, match=r"2023.*found 4"):
        brats_regions(np.array([[0, 4]]), convention="2023")
    with pytest.raises(ValueError, match="convention"):
        brats_regions(labels, convention="2021")


def test_convert_brats_labels_round_trip():
    labels = np.array([[0, 1, 2, 4], [4, 2, 1, 0]], dtype=np.int16)
    to23 = convert_brats_labels(labels, source="2018", target="2023")
    np.testing.assert_array_equal(to23, [[0, 1, 2, 3], [3, 2, 1, 0]])
    assert to23.dtype == np.uint8
    np.testing.assert_array_equal(convert_brats_labels(to23, source="2023", target="2018"), labels)
    for a, b in zip(brats_regions(labels).values(), brats_regions(to23, convention="2023").values()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="target"):
        convert_brats_labels(labels, source="2018", target="2019")
    with pytest.raises(ValueError, match="found 4"):
        convert_brats_labels(labels, source="2023", target="2018")


def test_brats_rejects_bad_arrays():
    with pytest.raises(ValueError, match="labels"):
        brats_regions(np.array([0, 1, 2, 4]))
    with pytest.raises(TypeError, match="labels"):
        brats_regions(np.array([["a", "b"]]))


# -------------------------------------------------------------- per-slice results

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_evaluate_slices_matches_evaluate_per_slice(axis):
    t = _blobs((6, 7, 8), 7, sigma=1.0, frac=0.2)
    p = _blobs((6, 7, 8), 8, sigma=1.0, frac=0.2)
    ax = axis % 3
    for k, mask in ((2, t), (3, t), (3, p)):             # slice 3 empty in both
        index = [slice(None)] * 3
        index[ax] = k
        mask[tuple(index)] = False
    spacing = (3.0, 1.0, 0.5)
    res = evaluate_slices(p, t, spacing=spacing, axis=axis)
    plane = tuple(s for i, s in enumerate(spacing) if i != ax)
    n = t.shape[ax]
    for name in metrics.METRIC_NAMES:
        assert res[name].shape == (n,) and res[name].dtype == np.float64
    for k in range(n):
        ps, ts = np.take(p, k, axis=ax), np.take(t, k, axis=ax)
        single = evaluate(ps, ts, spacing=plane)
        for name, value in single.items():
            np.testing.assert_equal(res[name][k], value)
        assert res["truth_nonempty"][k] == ts.any()


def test_mean_tumor_slice_dice():
    t = np.zeros((4, 5, 5), bool)
    p = np.zeros((4, 5, 5), bool)
    t[1, 1:3, 1:3] = True; p[1, 1:3, 1:2] = True        # dice 2*2/(4+2) = 2/3
    t[2, 0:2, 0:2] = True; p[2, 0:2, 0:2] = True        # dice 1
    p[3, 4, 4] = True                                   # false positive, no tumor
    expected = (2 / 3 + 1.0) / 2
    assert mean_tumor_slice_dice(p, t) == pytest.approx(expected)
    res = evaluate_slices(p, t)
    np.testing.assert_array_equal(res["truth_nonempty"], [False, True, True, False])
    assert res["dice"][res["truth_nonempty"]].mean() == pytest.approx(expected)
    assert res["dice"][0] == 1.0 and res["hausdorff95"][0] == 0.0      # both empty
    assert res["dice"][3] == 0.0 and res["hausdorff95"][3] == math.inf  # one empty
    # along another axis
    assert mean_tumor_slice_dice(p, t, axis=2) == pytest.approx(
        np.mean([dice(p[:, :, k], t[:, :, k]) for k in range(5) if t[:, :, k].any()]))
    assert math.isnan(mean_tumor_slice_dice(p, np.zeros_like(t)))


def test_slice_functions_need_volumes_and_valid_axis():
    a = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="pred"):
        evaluate_slices(a, a)
    v = np.zeros((2, 3, 4), bool)
    for fn in (evaluate_slices, mean_tumor_slice_dice):
        with pytest.raises(ValueError, match="axis"):
            fn(v, v, axis=3)
        with pytest.raises(ValueError, match="axis"):
            fn(v, v, axis=1.0)
    with pytest.raises(ValueError, match="spacing"):
        evaluate_slices(v, v, spacing=(1.0, 1.0))


# --------------------------------------------------- cross-checks (independent)

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dice_matches_simpleitk(seed):
    shape = (14, 17, 15)
    a, b = _blobs(shape, 10 + seed, frac=0.25), _blobs(shape, 20 + seed, frac=0.35)
    sp = (2.5, 0.9, 1.1)
    f = sitk.LabelOverlapMeasuresImageFilter()
    f.Execute(_sitk_image(a, sp), _sitk_image(b, sp))
    assert dice(a, b) == pytest.approx(f.GetDiceCoefficient(), rel=1e-12)
    assert iou(a, b) == pytest.approx(f.GetJaccardCoefficient(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_max_surface_distance_matches_simpleitk_on_disjoint_boxes(seed):
    # For disjoint axis-aligned boxes the all-voxel Hausdorff distance of SimpleITK
    # is reached at a box corner, a surface voxel, and the nearest voxel of the
    # other box is on its surface: both definitions give the same maximum.
    rng = np.random.default_rng(seed)
    shape = (10, 16, 13)
    split_axis = int(rng.integers(3))
    half = shape[split_axis] // 2
    boxes = []
    for lo_lim, hi_lim in ((0, half), (half, shape[split_axis])):
        lo, hi = [], []
        for ax, n in enumerate(shape):
            lim = (lo_lim, hi_lim) if ax == split_axis else (0, n)
            s, e = sorted(rng.choice(np.arange(lim[0], lim[1] + 1), 2, replace=False))
            lo.append(s); hi.append(e)
        boxes.append(_box(shape, lo, hi))
    a, b = boxes
    assert not (a & b).any() and a.any() and b.any()
    sp = (2.0, 0.6, 1.3)                                     # (dz, dy, dx)
    f = sitk.HausdorffDistanceImageFilter()
    img_a, img_b = _sitk_image(a, sp), _sitk_image(b, sp)
    f.Execute(img_a, img_b)
    ours = hausdorff_distance(a, b, spacing=img_a.GetSpacing()[::-1], percentile=100)
    assert ours == pytest.approx(f.GetHausdorffDistance(), rel=1e-9)


def test_simpleitk_spacing_order_matters():
    # a shift along z (array axis 0) with dz = 3: passing GetSpacing() unreversed
    # would give the wrong answer
    a = _box((12, 6, 6), (1, 1, 1), (3, 4, 4))
    b = _box((12, 6, 6), (6, 1, 1), (8, 4, 4))
    img = _sitk_image(a, (3.0, 1.0, 1.0))
    assert img.GetSpacing() == (1.0, 1.0, 3.0)
    f = sitk.HausdorffDistanceImageFilter()
    f.Execute(img, _sitk_image(b, (3.0, 1.0, 1.0)))
    assert f.GetHausdorffDistance() == pytest.approx(15.0)
    good = hausdorff_distance(a, b, spacing=img.GetSpacing()[::-1], percentile=100)
    wrong = hausdorff_distance(a, b, spacing=img.GetSpacing(), percentile=100)
    assert good == pytest.approx(15.0)
    assert wrong == pytest.approx(5.0)


@pytest.mark.parametrize("shape,spacing", [((13, 11), (0.7, 1.9)),
                                           ((7, 9, 8), (2.0, 1.0, 0.6)),
                                           ((6, 8, 7), (1.0, 1.0, 1.0))])
@pytest.mark.parametrize("seed", [0, 1])
def test_hd_matches_brute_force(shape, spacing, seed):
    a = _blobs(shape, 30 + seed, sigma=1.0, frac=0.3)
    b = _blobs(shape, 40 + seed, sigma=1.0, frac=0.2)
    for q in (95, 100, 50):
        assert hausdorff_distance(a, b, spacing=spacing, percentile=q) == \
            pytest.approx(_brute_hd(a, b, spacing, q), rel=1e-12, abs=1e-12)
    assert hausdorff95(a, b, spacing=spacing) == pytest.approx(_brute_hd(a, b, spacing, 95))
    to_b, to_a = surface_distances(a, b, spacing=spacing)
    assert to_b.size == _brute_surface(a).sum() and to_a.size == _brute_surface(b).sum()


# -------------------------------------------------------------------- bad input

ALL_PAIR_FUNCS = [dice, iou, sensitivity, specificity, hausdorff95, evaluate,
                  surface_distances, hausdorff_distance]


@pytest.mark.parametrize("fn", ALL_PAIR_FUNCS)
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=r"pred.*truth.*\(4, 5\).*\(5, 4\)"):
        fn(np.zeros((4, 5), bool), np.zeros((5, 4), bool))


@pytest.mark.parametrize("fn", ALL_PAIR_FUNCS)
@pytest.mark.parametrize("shape", [(6,), (2, 3, 4, 5)])
def test_wrong_ndim(fn, shape):
    good = np.zeros(shape, bool)
    with pytest.raises(ValueError, match="pred.*2-D or 3-D"):
        fn(good, good)


def test_zero_size_rejected():
    z = np.zeros((0, 4), bool)
    with pytest.raises(ValueError, match="pred"):
        dice(z, z)


@pytest.mark.parametrize("fn", ALL_PAIR_FUNCS)
def test_non_binary_values(fn):
    good = np.zeros((3, 3), bool); good[1, 1] = True
    for bad in (np.full((3, 3), 2), np.full((3, 3), 0.5), np.full((3, 3), -1),
                np.full((3, 3), np.nan)):
        with pytest.raises(ValueError, match="truth"):
            fn(good, bad)
        with pytest.raises(ValueError, match="pred"):
            fn(bad, good)


@pytest.mark.parametrize("bad", [np.zeros((3, 3), complex), np.full((3, 3), "1"),
                                 np.empty((3, 3), object)])
def test_non_real_dtype_is_type_error(bad):
    good = np.zeros((3, 3), bool)
    with pytest.raises(TypeError, match="pred"):
        dice(bad, good)
    with pytest.raises(TypeError, match="truth"):
        hausdorff95(good, bad)


def test_integer_and_float_01_masks_accepted():
    a, b = _blobs((9, 10), 50), _blobs((9, 10), 51)
    ref = evaluate(a, b, spacing=(1.0, 2.0))
    for dtype in (np.uint8, np.int64, np.float32, np.float64):
        got = evaluate(a.astype(dtype), b.astype(dtype), spacing=(1.0, 2.0))
        assert got == ref
    assert dice(a.astype(int).tolist(), b.astype(int).tolist()) == ref["dice"]


@pytest.mark.parametrize("fn", [hausdorff95, evaluate, surface_distances,
                                hausdorff_distance])
@pytest.mark.parametrize("spacing", [(1.0,), (1.0, 1.0, 1.0), (1.0, 0.0), (1.0, -2.0),
                                     (np.nan, 1.0), (1.0, np.inf), 1.0, "ab"])
def test_bad_spacing_is_value_error(fn, spacing):
    m = _box((5, 5), (1, 1), (3, 3))
    with pytest.raises(ValueError, match="spacing"):
        fn(m, m, spacing=spacing)


def test_non_numeric_spacing_is_type_error():
    m = _box((5, 5), (1, 1), (3, 3))
    with pytest.raises(TypeError, match="spacing"):
        hausdorff95(m, m, spacing=(1.0, None))
    with pytest.raises(TypeError, match="spacing"):
        hausdorff95(m, m, spacing=(1.0, True))


@pytest.mark.parametrize("percentile", [-1, 101, np.nan, "95", None])
def test_bad_percentile(percentile):
    m = _box((5, 5), (1, 1), (3, 3))
    with pytest.raises(ValueError, match="percentile"):
        hausdorff_distance(m, m, percentile=percentile)


def test_spacing_accepts_numpy_arrays_and_ints():
    a = _box((6, 6), (0, 0), (2, 2))
    b = np.roll(a, 2, axis=0)
    assert hausdorff95(a, b, spacing=np.array([2, 1])) == pytest.approx(4.0)
    assert hausdorff95(a, b, spacing=[np.float32(2.0), 1]) == pytest.approx(4.0)


# ------------------------------------------------- found by mutation testing (mutmut)

def test_error_messages_name_the_argument_at_fault():
    good, bad = np.zeros((4, 4), bool), np.full((4, 4), 0.5)
    good[1, 1] = True
    with pytest.raises(ValueError, match=r"^pred\b"):
        dice(bad, good)
    with pytest.raises(ValueError, match=r"^truth\b"):
        dice(good, bad)
    with pytest.raises(ValueError, match=r"^truth: .*measure distances from"):
        surface_distances(good, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=r"^pred: .*measure distances from"):
        surface_distances(np.zeros((4, 4), bool), good)
    with pytest.raises(ValueError, match=r"^source: expected one of"):
        convert_brats_labels(np.zeros((2, 2), int), source="2020", target="2018")
    with pytest.raises(ValueError, match=r"^target: expected one of"):
        convert_brats_labels(np.zeros((2, 2), int), source="2018", target="2020")
    with pytest.raises(ValueError, match=r"^convention: expected one of"):
        brats_regions(np.zeros((2, 2), int), convention="2020")
    with pytest.raises(TypeError, match=r"got 'a' of type str in \(1\.0, 'a'\)"):
        metrics.evaluate(good, good, spacing=(1.0, "a"))


def test_label_errors_list_the_allowed_set_and_at_most_ten_bad_values():
    labels = np.arange(5, 17).reshape(3, 4)          # twelve values outside {0, 1, 2, 4}
    with pytest.raises(ValueError) as err:
        brats_regions(labels)
    message = str(err.value)
    assert "expected values in {0, 1, 2, 4} (BraTS 2018 convention)" in message
    assert message.endswith("found 5, 6, 7, 8, 9, 10, 11, 12, 13, 14")


def test_spacing_must_be_flat():
    m = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match="spacing: expected a sequence of 2 voxel sizes"):
        hausdorff95(m, m, spacing=[[1.0, 1.0]])


def test_axis_accepts_minus_three_and_refuses_minus_four():
    t = np.zeros((3, 4, 5), bool)
    t[1, 1:3, 1:3] = True
    p = t.copy()
    p[1, 1, 1] = False
    assert mean_tumor_slice_dice(p, t, axis=-3) == mean_tumor_slice_dice(p, t, axis=0)
    with pytest.raises(ValueError, match=r"axis: expected an integer in \[-3, 2\]"):
        mean_tumor_slice_dice(p, t, axis=-4)


def test_hausdorff_percentiles_zero_and_default_are_the_documented_ones():
    t = _box((20, 20), (2, 2), (6, 6))
    p = _box((20, 20), (3, 3), (15, 9))     # distances spread out: each percentile differs
    d = np.concatenate(surface_distances(p, t))
    assert hausdorff_distance(p, t, percentile=0) == d.min()
    assert hausdorff_distance(p, t) == np.percentile(d, 95) == hausdorff95(p, t)
    assert np.percentile(d, 95) != np.percentile(d, 96)
    assert evaluate(p, t)["hausdorff95"] == hausdorff95(p, t)


def test_overflowing_distances_are_inf_without_a_warning():
    p, t = np.zeros((1, 8), bool), np.zeros((1, 8), bool)
    p[0, 0], t[0, 7] = True, True
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_t, to_p = surface_distances(p, t, spacing=(1.0, 1e308))
    assert to_t.tolist() == [math.inf] and to_p.tolist() == [math.inf]


def test_a_slice_with_one_tumor_voxel_counts_and_volumes_only():
    t = np.zeros((2, 4, 4), bool)
    t[0, 1, 1] = True                     # one voxel: a tumor slice
    t[1, 1:3, 1:3] = True
    p = t.copy()
    p[0, 1, 1] = False                    # missed: Dice 0 on slice 0, 1 on slice 1
    assert mean_tumor_slice_dice(p, t) == 0.5
    with pytest.raises(ValueError, match="pred"):
        mean_tumor_slice_dice(p[0], t[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int64, np.float32])
def test_label_membership_equals_isin_for_every_dtype(dtype):
    from pcnnseg.metrics import _in_values

    labels = np.random.default_rng(3).integers(0, 6, (7, 9, 11)).astype(dtype)
    for values in ([0, 1, 2, 4], [4], [1, 3], [0, 300], [], list(range(-2, 9))):
        np.testing.assert_array_equal(_in_values(labels, values), np.isin(labels, values))
