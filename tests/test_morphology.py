"""pcnnseg.morphology against scipy.ndimage's definitions."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from pcnnseg.morphology import (bounding_box, dilate_cross, erode_cross, fill_holes_slicewise,
                                open_cross)


def _cross(ndim, in_plane):
    if in_plane and ndim == 3:
        return ndi.generate_binary_structure(2, 1)[None]
    return ndi.generate_binary_structure(ndim, 1)


def _masks():
    """Random masks of several densities and shapes, thin axes and edges included."""
    rng = np.random.default_rng(0)
    for shape in [(1, 7, 9), (2, 5, 5), (6, 11, 13), (9, 8), (1, 1), (3, 1, 4)]:
        for density in (0.3, 0.6, 0.9):
            yield rng.random(shape) < density
    yield np.ones((4, 6, 6), bool)
    yield np.zeros((4, 6, 6), bool)


@pytest.mark.parametrize("in_plane", [False, True])
@pytest.mark.parametrize("iterations", [1, 2])
def test_erosion_and_dilation_equal_scipy_with_the_cross(in_plane, iterations):
    for mask in _masks():
        structure = _cross(mask.ndim, in_plane)
        np.testing.assert_array_equal(
            erode_cross(mask, in_plane=in_plane, iterations=iterations),
            ndi.binary_erosion(mask, structure, iterations=iterations))
        np.testing.assert_array_equal(
            dilate_cross(mask, in_plane=in_plane, iterations=iterations),
            ndi.binary_dilation(mask, structure, iterations=iterations))


@pytest.mark.parametrize("in_plane", [False, True])
def test_opening_equals_scipy_and_leaves_its_input_alone(in_plane):
    for mask in _masks():
        before = mask.copy()
        np.testing.assert_array_equal(open_cross(mask, in_plane=in_plane),
                                      ndi.binary_opening(mask, _cross(mask.ndim, in_plane)))
        np.testing.assert_array_equal(mask, before)


def test_two_erosions_are_one_by_the_diamond_of_radius_two():
    mask = np.random.default_rng(1).random((8, 12, 12)) < 0.8
    diamond = ndi.iterate_structure(ndi.generate_binary_structure(3, 1), 2)
    np.testing.assert_array_equal(erode_cross(mask, iterations=2),
                                  ndi.binary_erosion(mask, diamond))


def _rings(shape, seed):
    """Random blobs with holes, some touching the edges of their slice."""
    rng = np.random.default_rng(seed)
    mask = ndi.binary_dilation(rng.random(shape) < 0.05, iterations=2)
    return mask & ~(rng.random(shape) < 0.15)


@pytest.mark.parametrize("shape", [(5, 30, 40), (1, 12, 12), (30, 40), (4, 1, 9)])
def test_fill_holes_equals_scipy_slice_by_slice(shape):
    for seed in range(5):
        mask = _rings(shape, seed)
        if mask.ndim == 2:
            expected = ndi.binary_fill_holes(mask)
        else:
            expected = np.stack([ndi.binary_fill_holes(s) for s in mask])
        np.testing.assert_array_equal(fill_holes_slicewise(mask), expected)


def test_fill_holes_fills_within_a_slice_only():
    ring = np.zeros((3, 7, 7), bool)
    ring[1, 1:6, 1:6] = True
    ring[1, 2:5, 2:5] = False          # a hole in the middle slice
    ring[0, 3, 3] = True               # a voxel above the hole does not change it
    filled = fill_holes_slicewise(ring)
    assert filled[1, 2:5, 2:5].all()
    assert filled.sum() == ring.sum() + 9
    open_at_edge = np.zeros((6, 6), bool)
    open_at_edge[:, 2] = open_at_edge[:, 4] = open_at_edge[0, 2:5] = True   # a U, open below
    np.testing.assert_array_equal(fill_holes_slicewise(open_at_edge), open_at_edge)


def test_empty_masks_come_back_as_copies():
    for mask in (np.zeros((3, 4, 4), bool), np.zeros((4, 4), bool)):
        for out in (fill_holes_slicewise(mask), erode_cross(mask), dilate_cross(mask)):
            assert not out.any() and out is not mask


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros(5, bool),
                                 np.zeros((2, 2, 2, 2), bool)])
def test_masks_that_are_not_2d_or_3d_bool_are_refused(bad):
    for function in (erode_cross, dilate_cross, open_cross, fill_holes_slicewise):
        with pytest.raises(TypeError, match="mask: expected a 2-D or 3-D bool array"):
            function(bad)


def test_bounding_box_equals_find_objects():
    rng = np.random.default_rng(2)
    for shape in [(5, 9, 7), (12, 10), (1, 1, 1), (30,)]:
        for density in (0.001, 0.05, 0.5):
            mask = rng.random(shape) < density
            expected = ndi.find_objects(mask.astype(np.uint8))
            assert bounding_box(mask) == (expected[0] if expected else None)
    assert bounding_box(np.zeros((3, 4, 5), bool)) is None
