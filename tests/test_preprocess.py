"""pcnnseg.preprocess on synthetic phantoms."""
import numpy as np
import pytest

from pcnnseg.phantom import make_slice, make_volume
from pcnnseg.preprocess import (bias_correct, brain_mask, crop_to_mask, nonempty_slices,
                                normalize_intensity, uncrop)

WM_LEVEL = 420.0   # white matter, the largest tissue class of the phantom


@pytest.fixture(scope="module")
def volume():
    v, tumor = make_volume((32, 64, 64), seed=2, noise=0.01)
    return v, tumor


# ------------------------------------------------------------------------ brain_mask


def test_brain_mask_is_nonzero_voxels_of_phantom(volume):
    v, tumor = volume
    mask = brain_mask(v)
    assert mask.dtype == bool and mask.shape == v.shape
    np.testing.assert_array_equal(mask, v != 0)   # phantom brain: one blob, no holes
    assert not mask[0].all() and mask[tumor].all()


def test_brain_mask_cleans_specks_and_holes():
    img, _ = make_slice((64, 64), seed=1)
    dirty = img.copy()
    dirty[30:33, 30:33] = 0          # hole inside the brain
    dirty[0, 0] = 5.0                # speck in the background
    mask = brain_mask(dirty)
    np.testing.assert_array_equal(mask, img != 0)
    raw = brain_mask(dirty, largest_component=False, fill_holes=False)
    np.testing.assert_array_equal(raw, dirty != 0)
    assert brain_mask(dirty, fill_holes=False)[31, 31] == 0
    assert brain_mask(dirty, largest_component=False)[0, 0]


def test_brain_mask_fills_holes_slice_wise():
    v = np.zeros((3, 9, 9), dtype=np.int16)
    v[:, 2:7, 2:7] = 100
    v[:, 4, 4] = 0                   # a tube through every slice: no 3-D hole
    assert brain_mask(v)[:, 4, 4].all()
    assert not brain_mask(v, fill_holes=False)[:, 4, 4].any()


def test_brain_mask_of_empty_image_is_empty():
    assert not brain_mask(np.zeros((4, 4))).any()


# ---------------------------------------------------------------------- bias_correct


def _cv(values):
    return float(values.std() / values.mean())


def test_bias_correct_flattens_white_matter():
    shape = (32, 64, 64)
    clean, _ = make_volume(shape, seed=2, noise=0.0, bias=0.0)
    biased, _ = make_volume(shape, seed=2, noise=0.01, bias=0.4)
    wm = clean == WM_LEVEL
    assert wm.sum() > 0.5 * (clean > 0).sum()
    mask = brain_mask(biased)
    out = bias_correct(biased, mask)
    assert out.dtype == np.float32 and out.shape == shape
    assert (out[~mask] == 0).all() and (out[mask] > 0).all()
    before, after = _cv(biased[wm]), _cv(out[wm])
    assert after < 0.7 * before, (before, after)
    # mask=None means the non-zero voxels: same answer here
    np.testing.assert_allclose(bias_correct(biased), out, rtol=1e-5)


def test_bias_correct_2d_slice():
    clean, _ = make_slice((96, 96), seed=0, noise=0.0, bias=0.0)
    biased, _ = make_slice((96, 96), seed=0, noise=0.01, bias=0.4)
    wm = clean == WM_LEVEL
    out = bias_correct(biased, shrink=2, iterations=(30, 30, 20))
    assert out.shape == biased.shape
    assert _cv(out[wm]) < 0.7 * _cv(biased[wm])


def test_bias_correct_is_zero_outside_a_given_mask():
    v, _ = make_slice((64, 64), seed=3)
    mask = np.zeros(v.shape, bool)
    mask[16:48, 16:48] = True
    out = bias_correct(v, mask, shrink=2, iterations=(10,))
    assert (out[~mask] == 0).all() and (out[mask & (v > 0)] > 0).all()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(shrink=0), ValueError, "shrink"),
    (dict(shrink=2.5), TypeError, "shrink"),
    (dict(iterations=()), ValueError, "iterations"),
    (dict(iterations=(10, -1)), ValueError, "iterations"),
    (dict(iterations="abc"), TypeError, "iterations"),
    (dict(mask=np.zeros((64, 64), bool)), ValueError, "mask.*empty"),
    (dict(mask=np.ones((64, 63), bool)), ValueError, r"mask.*\(64, 64\).*\(64, 63\)"),
])
def test_bias_correct_bad_options(kwargs, error, match):
    v, _ = make_slice((64, 64), seed=3)
    with pytest.raises(error, match=match):
        bias_correct(v, **kwargs)


def test_bias_correct_needs_positive_brain():
    with pytest.raises(ValueError, match="volume"):
        bias_correct(np.zeros((20, 20)))
    with pytest.raises(ValueError, match="positive"):
        bias_correct(-np.ones((20, 20)))


# ----------------------------------------------------------------- normalize_intensity


def test_normalize_intensity_maps_percentiles(volume):
    v, _ = volume
    mask = v > 0
    out = normalize_intensity(v, mask)
    assert out.dtype == np.float32 and out.shape == v.shape
    assert out.min() == 0.0 and out.max() == 1.0 and (out[~mask] == 0).all()
    brain = out[mask]
    # 1 % of the brain at or below 0, 1 % at or above 1 (up to interpolation)
    assert np.mean(brain <= 0.0) == pytest.approx(0.01, abs=0.002)
    assert np.mean(brain >= 1.0) == pytest.approx(0.01, abs=0.002)
    lo, hi = np.percentile(v[mask].astype(np.float64), [1, 99])
    inner = (v > lo) & (v < hi) & mask
    np.testing.assert_allclose(out[inner], (v[inner] - lo) / (hi - lo), rtol=1e-5, atol=1e-6)


def test_normalize_intensity_min_max_and_ignores_background():
    v = np.array([[1000, 10, 20], [30, 40, -500]], dtype=np.int32)
    mask = np.array([[0, 1, 1], [1, 1, 0]], dtype=bool)
    out = normalize_intensity(v, mask, percentiles=(0, 100))
    np.testing.assert_allclose(out, [[0, 0, 1 / 3], [2 / 3, 1, 0]], rtol=1e-6)


@pytest.mark.parametrize("percentiles", [(5, 5), (50, 10), (-1, 99), (1, 101), (1,), "ab"])
def test_normalize_intensity_bad_percentiles(percentiles):
    v = np.arange(16.0).reshape(4, 4)
    with pytest.raises(ValueError, match="percentiles"):
        normalize_intensity(v, v > 0, percentiles=percentiles)


def test_normalize_intensity_constant_brain():
    v = np.full((4, 4), 7.0)
    with pytest.raises(ValueError, match="range"):
        normalize_intensity(v, v > 0)


# ----------------------------------------------------------------- crop and uncrop


def test_crop_uncrop_round_trip(volume):
    v, tumor = volume
    mask = brain_mask(v)
    cropped, bbox = crop_to_mask(v, mask, margin=2)
    assert len(bbox) == 3 and all(isinstance(s, slice) for s in bbox)
    assert cropped.dtype == v.dtype and cropped.shape == tuple(s.stop - s.start for s in bbox)
    assert cropped.size < v.size
    np.testing.assert_array_equal(uncrop(cropped, bbox, v.shape), v)   # nothing lost
    # the box is tight plus the margin, clipped to the array
    tight = crop_to_mask(v, mask)[1]
    for s, t, n in zip(bbox, tight, v.shape):
        assert s.start == max(t.start - 2, 0) and s.stop == min(t.stop + 2, n)
    for axis, s in enumerate(tight):
        idx = [slice(None)] * 3
        idx[axis] = s.start
        assert mask[tuple(idx)].any()
        idx[axis] = s.stop - 1
        assert mask[tuple(idx)].any()
    cropped_tumor = crop_to_mask(tumor, mask, margin=2)[0]
    back = uncrop(cropped_tumor, bbox, v.shape, fill=False)
    assert back.dtype == bool
    np.testing.assert_array_equal(back, tumor)


def test_crop_per_axis_margin_and_fill():
    m = np.zeros((10, 10), bool)
    m[4, 5] = True
    cropped, bbox = crop_to_mask(np.arange(100).reshape(10, 10), m, margin=(1, 20))
    assert bbox == (slice(3, 6), slice(0, 10)) and cropped.shape == (3, 10)
    full = uncrop(cropped.astype(float), bbox, (10, 10), fill=-1.0)
    assert (full[:3] == -1).all() and (full[3:6] == np.arange(30, 60).reshape(3, 10)).all()


@pytest.mark.parametrize("margin, error", [(-1, ValueError), (1.5, TypeError),
                                           ((1, 2, 3), ValueError), (None, TypeError)])
def test_crop_bad_margin(margin, error):
    v = np.ones((4, 4))
    with pytest.raises(error, match="margin"):
        crop_to_mask(v, v, margin=margin)


def test_crop_empty_mask():
    with pytest.raises(ValueError, match="mask.*empty"):
        crop_to_mask(np.ones((4, 4)), np.zeros((4, 4)))


@pytest.mark.parametrize("bbox, shape, match", [
    ((slice(0, 2),), (4, 4), "bbox"),                       # too few slices
    ((slice(0, 2), slice(0, 3)), (4, 4), "bbox"),           # size mismatch
    ((slice(3, 5), slice(0, 2)), (4, 4), "bbox"),           # outside the shape
    ((slice(0, 2), slice(0, 2, 2)), (4, 4), "bbox"),        # step
    ([0, 2], (4, 4), "bbox"),                               # not slices
    ((slice(0, 2), slice(0, 2)), (4, 0), "shape"),
])
def test_uncrop_bad_box(bbox, shape, match):
    with pytest.raises((ValueError, TypeError), match=match):
        uncrop(np.ones((2, 2)), bbox, shape)


def test_uncrop_bad_fill():
    with pytest.raises(ValueError, match="fill"):
        uncrop(np.ones((2, 2), np.uint8), (slice(0, 2), slice(0, 2)), (3, 3), fill=-1)


# ------------------------------------------------------------------- nonempty_slices


def test_nonempty_slices(volume):
    v, tumor = volume
    brain = v > 0
    idx = nonempty_slices(tumor)
    assert idx.dtype.kind == "i"
    np.testing.assert_array_equal(idx, [z for z in range(v.shape[0]) if tumor[z].any()])
    assert 0 < len(idx) < v.shape[0] and np.all(np.diff(idx) == 1)
    counts = brain.sum(axis=(0, 1))
    np.testing.assert_array_equal(nonempty_slices(brain, axis=-1, min_pixels=50),
                                  np.flatnonzero(counts >= 50))
    assert nonempty_slices(np.zeros((3, 4))).size == 0
    np.testing.assert_array_equal(nonempty_slices(np.eye(3, dtype=np.uint8), axis=1), [0, 1, 2])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(axis=3), ValueError, "axis"),
    (dict(axis=1.0), TypeError, "axis"),
    (dict(min_pixels=0), ValueError, "min_pixels"),
    (dict(min_pixels=True), TypeError, "min_pixels"),
])
def test_nonempty_slices_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        nonempty_slices(np.ones((2, 2, 2)), **kwargs)


# ------------------------------------------------------------------ boundary checks

BAD_VOLUMES = [
    (np.array([[1.0, np.nan], [2.0, 3.0]]), ValueError, "NaN"),
    (np.array([[1.0, np.inf], [2.0, 3.0]]), ValueError, "NaN or infinite"),
    (np.zeros((0, 4)), ValueError, "non-empty"),
    (np.ones(5), ValueError, "1-D"),
    (np.ones((2, 2, 2, 2)), ValueError, "4-D"),
    (np.array([["a", "b"]]), TypeError, "dtype"),
    (np.ones((2, 2), complex), TypeError, "dtype"),
]


def _calls(volume):
    mask = np.ones(np.shape(volume), bool) if np.ndim(volume) in (2, 3) else np.ones((2, 2), bool)
    return {
        "brain_mask": lambda: brain_mask(volume),
        "bias_correct": lambda: bias_correct(volume),
        "normalize_intensity": lambda: normalize_intensity(volume, mask),
        "crop_to_mask": lambda: crop_to_mask(volume, mask),
        "nonempty_slices": lambda: nonempty_slices(volume),
    }


@pytest.mark.parametrize("func", sorted(_calls(np.ones((2, 2)))))
@pytest.mark.parametrize("bad, error, match", BAD_VOLUMES)
def test_bad_volume_is_named(func, bad, error, match):
    name = "mask" if func == "nonempty_slices" else "volume"
    with pytest.raises(error, match=f"{name}.*{match}|{match}.*{name}"):
        _calls(bad)[func]()


@pytest.mark.parametrize("func", ["bias_correct", "normalize_intensity", "crop_to_mask"])
def test_bad_mask_is_named(func):
    v = np.arange(1.0, 17.0).reshape(4, 4)
    call = {"bias_correct": lambda m: bias_correct(v, m),
            "normalize_intensity": lambda m: normalize_intensity(v, m),
            "crop_to_mask": lambda m: crop_to_mask(v, m)}[func]
    with pytest.raises(ValueError, match=r"mask: expected the volume's shape \(4, 4\), got \(4, 5\)"):
        call(np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="mask: expected at least one voxel"):
        call(np.zeros((4, 4), bool))
    with pytest.raises(TypeError, match="mask"):
        call(np.full((4, 4), "x"))
    with pytest.raises(ValueError, match="mask.*NaN"):
        call(np.full((4, 4), np.nan))
