"""pcnnseg.metrics against MedPy's ``medpy.metric.binary``, an independent implementation.

Definitions compared (both libraries, read from their sources):

- Dice ``2|P & T| / (|P| + |T|)``, 1 for two empty masks; Jaccard (``iou``),
  sensitivity and specificity from the same confusion counts.
- HD95: the surface of a mask is ``mask ^ binary_erosion(mask, structure)`` with
  voxels outside the array as background; each surface voxel's Euclidean distance
  (in units of the spacing) to the other surface is taken in both directions, the
  two sets are pooled, and ``numpy.percentile(pooled, 95)`` (linear
  interpolation) is the HD95. This pooled percentile is what pcnnseg uses, not the
  maximum of the two directed 95th percentiles. MedPy's ``hd95`` has the same
  definition but its ``connectivity`` picks the erosion's structure: its default 1
  (faces only) finds fewer surface voxels than pcnnseg's full ``3**ndim - 1``
  neighbourhood, so it is compared with ``connectivity=ndim``, the same surfaces.
  ``percentile=100`` is compared with MedPy's ``hd``.

Empty masks are not compared. pcnnseg follows the BraTS conventions (Dice 1 for
two empty masks, HD95 inf for one); MedPy's ``hd95`` raises on an empty mask, and
its ``dc`` of two empty masks, meant to be 1 (an ``except ZeroDivisionError``),
is nan: the division is by a NumPy scalar, which warns instead of raising
(MedPy 0.5.2, NumPy 2).

The comparisons are exact up to floating-point rounding (pcnnseg scales the
spacing by a power of two and works on the masks' bounding box, which changes no
distance). Masks: synthetic blobs in 2-D and 3-D, isotropic and anisotropic
spacings, masks on the array border, single voxels; and, where ``../shared/data``
holds the BraTS cases, their label maps (whole tumor against tumor core of the same
case, and the whole tumor against itself shifted), cropped to the masks' bounding
box with a margin of background so that MedPy's full-array distance transforms
stay quick (a margin of one voxel changes no surface and no distance). Needs MedPy
(the ``crosscheck`` extra); skipped without it.
"""
import pathlib

import numpy as np
import pytest
from scipy import ndimage as ndi

from pcnnseg import metrics
from pcnnseg.io import BRATS_LAYOUTS, case_convention, find_brats_cases, read_image

medpy = pytest.importorskip("medpy.metric.binary")

DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Relative agreement asked for: rounding only.
RTOL = 1e-12


def blob(shape, seed, fraction):
    """A smooth random binary mask covering about ``fraction`` of the array."""
    field = ndi.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 3.0)
    return field > np.quantile(field, 1.0 - fraction)


def assert_same_metrics(a, b, spacing):
    """pcnnseg and MedPy agree on every metric of the two non-empty masks."""
    full = a.ndim  # MedPy's connectivity for pcnnseg's full neighbourhood
    overlap = [(metrics.dice, medpy.dc), (metrics.iou, medpy.jc),
               (metrics.sensitivity, medpy.sensitivity),
               (metrics.specificity, medpy.specificity)]
    for ours, theirs in overlap:
        assert ours(a, b) == pytest.approx(theirs(a, b), rel=RTOL, abs=0), ours.__name__
    assert metrics.hausdorff95(a, b, spacing=spacing) == pytest.approx(
        medpy.hd95(a, b, voxelspacing=spacing, connectivity=full), rel=RTOL, abs=0)
    assert metrics.hausdorff_distance(a, b, spacing=spacing, percentile=100) == pytest.approx(
        medpy.hd(a, b, voxelspacing=spacing, connectivity=full), rel=RTOL, abs=0)


SYNTHETIC_3D = [(None, 0), ((1.0, 1.0, 1.0), 1), ((2.5, 0.9, 1.3), 2), ((5.0, 1.0, 1.0), 3),
                ((0.7, 3.1, 0.45), 4)]


@pytest.mark.parametrize("spacing, seed", SYNTHETIC_3D)
def test_synthetic_volumes(spacing, seed):
    a, b = blob((24, 40, 36), seed, 0.15), blob((24, 40, 36), seed + 100, 0.2)
    assert_same_metrics(a, b, spacing)


@pytest.mark.parametrize("spacing", [None, (1.0, 1.0), (3.0, 0.8), (0.5, 2.0)])
def test_synthetic_slices(spacing):
    a, b = blob((64, 72), 7, 0.2), blob((64, 72), 8, 0.1)
    assert_same_metrics(a, b, spacing)


def test_overlapping_nested_and_shifted_masks():
    a = blob((20, 30, 30), 11, 0.3)
    inner = ndi.binary_erosion(a, iterations=2)
    assert inner.any()
    assert_same_metrics(a, inner, (2.0, 1.0, 1.0))
    assert_same_metrics(a, np.roll(a, (1, 3, -2), axis=(0, 1, 2)), (3.0, 0.9, 0.9))


def test_masks_on_the_array_border():
    """Voxels outside the array are background in both: a full face is surface."""
    a = np.zeros((12, 16, 16), bool)
    a[:, :8, :] = True                   # touches five faces of the array
    b = np.zeros_like(a)
    b[3:, 5:, 2:14] = True
    assert_same_metrics(a, b, (2.0, 1.0, 0.5))
    assert_same_metrics(np.ones((9, 9), bool), blob((9, 9), 3, 0.4), (1.0, 2.0))


def test_single_voxels():
    a = np.zeros((7, 9, 11), bool)
    b = np.zeros_like(a)
    a[1, 2, 3] = True
    b[5, 7, 1] = True
    assert_same_metrics(a, b, (3.0, 1.5, 0.5))


# ---------------------------------------------------------------- real label maps

def _real_cases():
    """Two case folders per collection of ``../shared/data``, or none."""
    folders = []
    for collection in ("brats2018", "brats2023_ssa"):
        if (DATA / collection).is_dir():
            folders += find_brats_cases(DATA / collection)[:2]
    return folders


def _label_map(case_dir):
    """The case's label map, its convention, and its spacing in array order."""
    convention = case_convention(case_dir)
    layout = BRATS_LAYOUTS[convention]
    image = read_image(case_dir / f"{case_dir.name}{layout['separator']}{layout['seg']}.nii.gz")
    return image.array, convention, tuple(image.spacing[::-1])


def _cropped(*masks, margin=2):
    """The masks cut to the bounding box of their union grown by ``margin`` voxels."""
    box = ndi.find_objects(np.logical_or.reduce(masks).view(np.uint8))[0]
    box = tuple(slice(max(s.start - margin, 0), s.stop + margin) for s in box)
    return [m[box] for m in masks]


def test_cropping_changes_no_metric():
    centre = np.zeros((20, 40, 40), bool)
    centre[5:15, 8:30, 12:34] = True
    a, b = blob(centre.shape, 21, 0.3) & centre, blob(centre.shape, 22, 0.3) & centre
    spacing = (2.0, 1.0, 0.7)
    a_box, b_box = _cropped(a, b)
    assert a_box.size < a.size
    assert metrics.hausdorff95(a_box, b_box, spacing=spacing) == \
        medpy.hd95(a, b, voxelspacing=spacing, connectivity=3)


REAL = _real_cases()


@pytest.mark.skipif(not REAL, reason=f"no BraTS cases under {DATA}")
@pytest.mark.parametrize("case_dir", REAL, ids=[c.name for c in REAL])
def test_real_label_maps(case_dir):
    labels, convention, spacing = _label_map(case_dir)
    regions = metrics.brats_regions(labels, convention=convention)
    wt, tc = regions["whole_tumor"], regions["tumor_core"]
    assert wt.any() and tc.any()
    wt_box, tc_box = _cropped(wt, tc)
    assert_same_metrics(wt_box, tc_box, spacing)
    assert_same_metrics(wt_box, tc_box, (3.0, 1.0, 0.8))  # as if in thick slices
    assert_same_metrics(*_cropped(wt, np.roll(wt, (2, -3, 4), axis=(0, 1, 2))), spacing)
