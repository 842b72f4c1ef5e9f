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
