"""Tests for the synthetic brain phantoms in pcnnseg.phantom."""

import doctest

import numpy as np
import pytest

import pcnnseg.phantom as phantom


def _grow(mask):
    """Dilate a mask by one pixel/voxel along each axis."""
    padded = np.pad(mask, 1)
    inner = (slice(1, -1),) * mask.ndim
    out = mask.copy()
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            out |= np.roll(padded, shift, axis=axis)[inner]
    return out


@pytest.mark.parametrize("shape", [(240, 240), (96, 160), (16, 16)])
def test_slice_shapes_and_dtypes(shape):
    image, mask = phantom.make_slice(shape, seed=2)
    assert image.shape == shape and mask.shape == shape
    assert image.dtype == np.float32 and mask.dtype == np.bool_
    assert np.isfinite(image).all() and image.min() >= 0.0
    assert 300.0 < image.max() < 1500.0


@pytest.mark.parametrize("shape", [(48, 128, 128), (16, 40, 56)])
def test_volume_shapes_and_dtypes(shape):
    volume, mask = phantom.make_volume(shape, seed=2)
    assert volume.shape == shape and mask.shape == shape
    assert volume.dtype == np.float32 and mask.dtype == np.bool_
    assert np.isfinite(volume).all() and volume.min() >= 0.0


@pytest.mark.parametrize("make", [phantom.make_slice, phantom.make_volume])
def test_same_arguments_give_identical_output(make):
    a_img, a_mask = make(seed=7, noise=0.05, bias=0.3)
    b_img, b_mask = make(seed=7, noise=0.05, bias=0.3)
    assert a_img.tobytes() == b_img.tobytes()
    assert np.array_equal(a_mask, b_mask)


@pytest.mark.parametrize("make", [phantom.make_slice, phantom.make_volume])
def test_different_seeds_move_the_tumor(make):
    centroids = [np.argwhere(make(seed=s)[1]).mean(axis=0) for s in range(4)]
    for i in range(len(centroids)):
        for j in range(i):
            assert np.linalg.norm(centroids[i] - centroids[j]) > 2.0


@pytest.mark.parametrize("make", [phantom.make_slice, phantom.make_volume])
def test_background_is_exactly_zero_and_noise_stays_inside_brain(make):
    clean, _ = make(seed=3, noise=0.0, bias=0.0)
    noisy, _ = make(seed=3, noise=0.08, bias=0.4)
    brain = clean > 0
    assert 0.2 < brain.mean() < 0.8
    assert np.all(noisy[~brain] == 0.0)
    assert np.all(noisy[brain] > 0.0)
    # In-plane, the brain keeps a margin from the field-of-view border.
    for axis in (-2, -1):
        assert not brain.take([0, -1], axis=axis).any()


@pytest.mark.parametrize("seed", range(5))
def test_slice_mask_nonempty_and_strictly_inside_brain(seed):
    image, mask = phantom.make_slice(seed=seed)
    brain = image > 0
    assert mask.sum() > 100
    assert np.all(brain[mask])
    assert np.all(brain[_grow(mask)]), "tumor touches the brain boundary"


@pytest.mark.parametrize("seed", range(3))
def test_volume_mask_strictly_inside_brain(seed):
    volume, mask = phantom.make_volume(seed=seed)
    brain = volume > 0
    assert mask.any()
    assert np.all(brain[_grow(mask)])


@pytest.mark.parametrize("make", [phantom.make_slice, phantom.make_volume])
@pytest.mark.parametrize("seed", range(4))
def test_tumor_is_brighter_than_normal_tissue(make, seed):
    image, mask = make(seed=seed)
    normal = (image > 0) & ~mask
    assert image[mask].mean() > 1.4 * image[normal].mean()


def test_default_tumor_radius_scales_with_the_slice():
    for side in (120, 240):
        _, mask = phantom.make_slice((side, side), seed=1, noise=0, bias=0)
        nominal = np.pi * (0.12 * side) ** 2
        assert 0.4 * nominal < mask.sum() < 2.0 * nominal


def test_tumor_radius_sets_the_tumor_size():
    small = phantom.make_slice(seed=4, tumor_radius=10)[1].sum()
    large = phantom.make_slice(seed=4, tumor_radius=30)[1].sum()
    assert 5.0 < large / small < 15.0


def test_volume_mask_covers_only_some_slices_and_brain_shrinks():
    volume, mask = phantom.make_volume(seed=0)
    per_slice = mask.any(axis=(1, 2))
    assert per_slice.any() and not per_slice.all()
    # Tumor slices form one contiguous run.
    idx = np.flatnonzero(per_slice)
    assert np.array_equal(idx, np.arange(idx[0], idx[-1] + 1))
    area = (volume > 0).sum(axis=(1, 2))
    middle = area[len(area) // 2]
    assert area[0] < 0.3 * middle and area[-1] < 0.3 * middle


def test_no_bias_no_noise_gives_piecewise_constant_image():
    image, _ = phantom.make_slice(seed=5, noise=0.0, bias=0.0)
    assert 4 <= np.unique(image).size <= 8
    volume, _ = phantom.make_volume((24, 64, 64), seed=5, noise=0.0, bias=0.0)
    assert np.unique(volume).size <= 8


def test_bias_is_smooth_multiplicative_and_bounded():
    clean, _ = phantom.make_slice(seed=6, noise=0.0, bias=0.0)
    biased, _ = phantom.make_slice(seed=6, noise=0.0, bias=0.3)
    brain = clean > 0
    ratio = biased[brain] / clean[brain]
    assert ratio.min() >= 0.7 - 1e-5 and ratio.max() <= 1.3 + 1e-5
    assert ratio.max() / ratio.min() > 1.1
    assert np.unique(biased).size > 100


def test_noise_std_is_relative_to_white_matter():
    clean, _ = phantom.make_slice(seed=8, noise=0.0, bias=0.0)
    noisy, _ = phantom.make_slice(seed=8, noise=0.05, bias=0.0)
    values, counts = np.unique(clean[clean > 0], return_counts=True)
    white = clean == values[np.argmax(counts)]  # white matter is the largest class
    std = (noisy[white] - clean[white]).std()
    assert 0.8 * 0.05 * values[np.argmax(counts)] < std < 1.2 * 0.05 * values[np.argmax(counts)]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"shape": (240,)}, "shape"),
        ({"shape": (240, 240, 3)}, "shape"),
        ({"shape": (8, 240)}, "shape"),
        ({"noise": -0.1}, "noise"),
        ({"noise": 1.0}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"bias": float("inf")}, "bias"),
        ({"bias": -0.01}, "bias"),
        ({"bias": 1.5}, "bias"),
        ({"tumor_radius": 0}, "tumor_radius"),
        ({"tumor_radius": -5.0}, "tumor_radius"),
        ({"tumor_radius": float("nan")}, "tumor_radius"),
        ({"tumor_radius": 200}, "tumor_radius"),
        ({"seed": -1}, "seed"),
    ],
)
def test_slice_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        phantom.make_slice(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"shape": (128, 128)}, "shape"),
        ({"shape": (10, 128, 128)}, "shape"),
        ({"noise": 2.0}, "noise"),
        ({"bias": float("nan")}, "bias"),
        ({"tumor_radius": 60}, "tumor_radius"),
    ],
)
def test_volume_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        phantom.make_volume(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"shape": (240.0, 240)}, "shape"),
        ({"shape": "240x240"}, "shape"),
        ({"noise": "0.1"}, "noise"),
        ({"bias": True}, "bias"),
        ({"tumor_radius": "big"}, "tumor_radius"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_wrongly_typed_arguments_raise_type_error(kwargs, name):
    with pytest.raises(TypeError, match=name):
        phantom.make_slice(**kwargs)


def test_largest_allowed_radius_still_fits():
    # Just below the limit the tumor must still sit strictly inside the brain.
    with pytest.raises(ValueError, match=r"at most ([0-9.]+)") as info:
        phantom.make_slice((128, 128), tumor_radius=1000)
    limit = float(info.value.args[0].split("at most ")[1].split()[0])
    for seed in range(5):
        image, mask = phantom.make_slice((128, 128), seed=seed, tumor_radius=limit - 0.1)
        assert np.all((image > 0)[_grow(mask)])


def test_docstring_examples():
    failures, _ = doctest.testmod(phantom, verbose=False)
    assert failures == 0


# --- make_case: multi-sequence case with BraTS labels ----------------------------

# Checksums of make_volume((32, 64, 64)) and make_slice((64, 64)) computed with the
# code from before make_case existed: (kind, seed, sum, sum of squares, sum without
# noise and bias, mask size, sum of the mask's flat indices). The refactoring for
# make_case must keep these outputs bit-identical; the float sums get a tiny
# tolerance only for platform-dependent float32 maths.
_PINNED = [
    ("volume", 0, 20455379.96079254, 10352103636.385132, 19382270.0, 990, 74859416),
    ("slice", 0, 967734.8734207153, 502570700.52243674, 951000.0, 176, 261552),
    ("volume", 1, 19366331.905914307, 9268648653.275719, 19399960.0, 1000, 68675201),
    ("slice", 1, 1006933.6536865234, 551447883.6911936, 946170.0, 189, 475968),
]


@pytest.mark.parametrize("kind, seed, total, squares, clean_total, size, where", _PINNED)
def test_slice_and_volume_outputs_are_unchanged(kind, seed, total, squares, clean_total,
                                                size, where):
    make, shape = {"volume": (phantom.make_volume, (32, 64, 64)),
                   "slice": (phantom.make_slice, (64, 64))}[kind]
    image, mask = make(shape, seed=seed)
    clean, clean_mask = make(shape, seed=seed, noise=0.0, bias=0.0)
    assert float(image.sum(dtype=np.float64)) == pytest.approx(total, rel=1e-6)
    assert float((image.astype(np.float64) ** 2).sum()) == pytest.approx(squares, rel=1e-6)
    assert float(clean.sum(dtype=np.float64)) == clean_total
    assert int(mask.sum()) == size and int(np.flatnonzero(mask).sum()) == where
    assert np.array_equal(mask, clean_mask)


_SEQUENCES = ["flair", "t1", "t1ce", "t2"]


def _face_neighbours(labels):
    """Labels of the 2 * ndim face neighbours of every voxel (0 beyond the border)."""
    padded = np.pad(labels, 1)
    inner = (slice(1, -1),) * labels.ndim
    return [np.roll(padded, shift, axis=axis)[inner]
            for axis in range(labels.ndim) for shift in (-1, 1)]


def _normal_tissues(images, labels):
    """Masks of CSF, white and grey matter, found without using intensity levels.

    Without noise and bias each class has one intensity tuple across the sequences.
    White matter is the largest normal class, grey matter the class on the brain's
    outer surface, CSF the remaining one (the ventricles).
    """
    brain = images["flair"] > 0
    normal = brain & (labels == 0)
    stacked = np.stack([images[name] for name in _SEQUENCES], axis=-1)
    tuples, inverse, counts = np.unique(stacked[normal], axis=0, return_inverse=True,
                                        return_counts=True)
    assert len(tuples) == 3
    cls = np.full(labels.shape, -1)
    cls[normal] = inverse.ravel()
    surface = brain & ~np.logical_and.reduce([n > 0 for n in _face_neighbours(brain)])
    wm = int(np.argmax(counts))
    gm = int(np.bincount(cls[surface & normal], minlength=3).argmax())
    (csf,) = {0, 1, 2} - {wm, gm}
    return cls == csf, cls == wm, cls == gm


@pytest.mark.parametrize("shape", [(48, 128, 128), (16, 40, 56)])
def test_case_shapes_dtypes_and_keys(shape):
    images, labels = phantom.make_case(shape, seed=2)
    assert isinstance(images, dict) and list(images) == _SEQUENCES
    assert labels.shape == shape and labels.dtype == np.uint8
    brain = images["flair"] > 0
    for name, image in images.items():
        assert image.shape == shape and image.dtype == np.float32, name
        assert np.isfinite(image).all() and image.min() >= 0.0, name
        assert 300.0 < image.max() < 1500.0, name
        # Every sequence is exactly zero outside the same brain and positive inside.
        assert np.all(image[~brain] == 0.0) and np.all(image[brain] > 0.0), name


@pytest.mark.parametrize("seed", range(4))
def test_case_has_all_brats_labels(seed):
    _, labels = phantom.make_case(seed=seed)
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 4}
    counts = {k: int((labels == k).sum()) for k in (1, 2, 4)}
    # Edema is the largest region; the core splits into a rim and a smaller centre.
    assert counts[2] > counts[4] > counts[1] > 20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": 0},
        {"seed": 3, "noise": 0.0, "bias": 0.0},
        {"seed": 5, "noise": 0.08, "bias": 0.4, "tumor_radius": 12.5},
        {"shape": (20, 48, 60), "seed": 1},
        {"shape": (16, 40, 56), "seed": 4, "noise": 0.01},
    ],
)
def test_case_matches_make_volume(kwargs):
    images, labels = phantom.make_case(**kwargs)
    volume, mask = phantom.make_volume(**kwargs)
    assert np.array_equal(labels > 0, mask)
    assert images["flair"].tobytes() == volume.tobytes()


@pytest.mark.parametrize("shape", [(48, 128, 128), (32, 64, 64), (20, 96, 96)])
@pytest.mark.parametrize("seed", range(4))
def test_enhancing_rim_encloses_necrosis(shape, seed):
    _, labels = phantom.make_case(shape, seed=seed)
    necrosis = labels == 1
    assert necrosis.any()
    # No face neighbour of a necrotic voxel is edema or normal brain.
    for neighbour in _face_neighbours(labels):
        assert np.isin(neighbour[necrosis], [1, 4]).all()
    # The rim is a shell, not a filled core: each enhancing voxel lies within a few
    # voxels of the edema, and the necrotic centre sits in the middle of the core.
    near_edema = labels == 2
    for _ in range(4):
        near_edema = _grow(near_edema)
    assert near_edema[labels == 4].all()
    core = np.argwhere((labels == 1) | (labels == 4))
    extent = core.max(axis=0) - core.min(axis=0) + 1
    offset = np.abs(np.argwhere(necrosis).mean(axis=0) - core.mean(axis=0))
    assert np.all(offset < 0.2 * extent)


@pytest.mark.parametrize("seed", range(4))
def test_enhancing_rim_is_a_few_pixels_thick_in_plane(seed):
    _, labels = phantom.make_case(seed=seed)
    necrotic_slices = 0
    for plane in labels:
        necrosis = plane == 1
        if necrosis.any():
            necrotic_slices += 1
            # At least two rim pixels between necrosis and edema in-plane ...
            assert not (_grow(_grow(necrosis)) & (plane == 2)).any()
            # ... but at most five: the rim hugs the necrotic centre.
            near = necrosis
            for _ in range(5):
                near = _grow(near)
            assert near[plane == 4].mean() > 0.9
    assert necrotic_slices >= 2


@pytest.mark.parametrize("seed", range(3))
def test_case_sequence_contrasts(seed):
    images, labels = phantom.make_case(seed=seed, noise=0.0, bias=0.0)
    flair, t1, t1ce, t2 = (images[name] for name in _SEQUENCES)
    csf, wm, gm = _normal_tissues(images, labels)
    normal = (flair > 0) & (labels == 0)
    edema, enhancing, necrosis = labels == 2, labels == 4, labels == 1

    def mean(image, region):
        return float(image[region].mean())

    # FLAIR: CSF suppressed, WM < GM, tumor brighter than normal brain.
    assert mean(flair, csf) < mean(flair, wm) < mean(flair, gm) < mean(flair, edema)
    # T2: CSF very bright, WM darker than GM, edema and necrosis bright.
    assert mean(t2, csf) > max(mean(t2, wm), mean(t2, gm), mean(t2, edema))
    assert mean(t2, wm) < mean(t2, gm)
    assert min(mean(t2, edema), mean(t2, necrosis)) > mean(t2, gm)
    # T1: CSF dark, WM brighter than GM, edema slightly dark, necrosis dark.
    assert mean(t1, csf) < mean(t1, gm) < mean(t1, wm)
    assert mean(t1, necrosis) < mean(t1, edema) < mean(t1, gm)
    # T1ce: enhancing rim brighter than any normal tissue, necrosis dark; the rim is
    # not bright before contrast.
    assert mean(t1ce, enhancing) > np.percentile(t1ce[normal], 99)
    assert mean(t1, enhancing) < np.percentile(t1[normal], 99)
    assert mean(t1ce, necrosis) < mean(t1ce, gm)
    for name in ("t1", "t1ce"):
        assert mean(images[name], wm) > mean(images[name], gm)


@pytest.mark.parametrize("seed", range(4))
def test_enhancing_tumor_is_bright_in_t1ce_with_bias_and_noise(seed):
    images, labels = phantom.make_case(seed=seed)
    t1ce = images["t1ce"]
    normal = (t1ce > 0) & (labels == 0)
    assert t1ce[labels == 4].mean() > np.percentile(t1ce[normal], 95)
    assert t1ce[labels == 4].mean() > 1.3 * t1ce[labels == 1].mean()


def test_case_shares_the_bias_field_across_sequences():
    clean, _ = phantom.make_case((24, 64, 64), seed=6, noise=0.0, bias=0.0)
    biased, _ = phantom.make_case((24, 64, 64), seed=6, noise=0.0, bias=0.3)
    brain = clean["flair"] > 0
    ratios = {name: biased[name][brain] / clean[name][brain] for name in _SEQUENCES}
    assert ratios["flair"].max() / ratios["flair"].min() > 1.1
    for name in _SEQUENCES:
        np.testing.assert_allclose(ratios[name], ratios["flair"], rtol=1e-5)


def test_case_noise_is_per_sequence_and_relative_to_white_matter():
    clean, labels = phantom.make_case((24, 64, 64), seed=8, noise=0.0, bias=0.0)
    noisy, _ = phantom.make_case((24, 64, 64), seed=8, noise=0.05, bias=0.0)
    _, wm, _ = _normal_tissues(clean, labels)
    residuals = {}
    for name in _SEQUENCES:
        level = float(clean[name][wm][0])
        residuals[name] = noisy[name][wm] - clean[name][wm]
        assert 0.8 * 0.05 * level < residuals[name].std() < 1.2 * 0.05 * level, name
    # Each sequence gets its own noise draws.
    for name in ("t1", "t1ce", "t2"):
        assert abs(np.corrcoef(residuals["flair"], residuals[name])[0, 1]) < 0.2, name


def test_case_same_arguments_give_identical_output():
    a_images, a_labels = phantom.make_case((24, 64, 64), seed=7, noise=0.05, bias=0.3)
    b_images, b_labels = phantom.make_case((24, 64, 64), seed=7, noise=0.05, bias=0.3)
    c_images, c_labels = phantom.make_case((24, 64, 64), seed=8, noise=0.05, bias=0.3)
    assert np.array_equal(a_labels, b_labels) and not np.array_equal(a_labels, c_labels)
    for name in _SEQUENCES:
        assert a_images[name].tobytes() == b_images[name].tobytes()
        assert a_images[name].tobytes() != c_images[name].tobytes()


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"shape": (128, 128)}, ValueError, "shape"),
        ({"shape": (10, 128, 128)}, ValueError, "shape"),
        ({"shape": (48.0, 128, 128)}, TypeError, "shape"),
        ({"noise": 2.0}, ValueError, "noise"),
        ({"noise": "0.1"}, TypeError, "noise"),
        ({"bias": float("nan")}, ValueError, "bias"),
        ({"bias": True}, TypeError, "bias"),
        ({"tumor_radius": 60}, ValueError, "tumor_radius"),
        ({"tumor_radius": -1.0}, ValueError, "tumor_radius"),
        ({"tumor_radius": "big"}, TypeError, "tumor_radius"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
    ],
)
def test_case_rejects_bad_arguments_like_make_volume(kwargs, error, name):
    with pytest.raises(error, match=name) as case_info:
        phantom.make_case(**kwargs)
    with pytest.raises(error) as volume_info:
        phantom.make_volume(**kwargs)
    assert str(case_info.value) == str(volume_info.value)
