"""Proposals, boxes, signatures and segment maps: what a mutation run found untested.

Each test pins behaviour that surviving mutants (mutmut 3.8.1, issue 17) of
``pcnnseg/proposals.py``, ``boxes.py``, ``signatures.py`` and ``segmentation.py``
changed without a test noticing: the argument names and bounds in the messages,
the documented defaults, ``value_range`` reaching the stimulus, the selective
search against a plain computation (the stimulus by its formula, SciPy's Gaussian
derivatives, the plain Felzenszwalb and grouping of ``tests/reference.py``), the
``selectivesearch`` package's boxes read from its own region labels, IoU counted on
a pixel grid, the binary entropy by its formula, and the segment map by the
first-pulse formula of isolated pixels. Images are tiny.
"""
import warnings

import numpy as np
import pytest
from scipy import ndimage as ndi

import reference as ref
from pcnnseg import ICM, PCNN
from pcnnseg.boxes import box_iou, largest_component_box
from pcnnseg.proposals import felzenszwalb, selective_search
from pcnnseg.segmentation import intensity_order_model, segment
from pcnnseg.signatures import binary_entropy, entropy_signature, signature


# --- plain computations -----------------------------------------------------

def _stimulus(image, value_range=None):
    """Intensities mapped linearly onto [0, 1] (clipped), as float32."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = (image.min(), image.max()) if value_range is None else value_range
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _texture_bins(S):
    """Bins 0..9 of the positive part of the Gaussian derivative (sigma 1, edges
    repeated) in 8 orientations ``2 pi o / 8``, split evenly up to the largest
    response."""
    gy = ndi.gaussian_filter(S, 1.0, order=(1, 0), mode="nearest").astype(np.float64)
    gx = ndi.gaussian_filter(S, 1.0, order=(0, 1), mode="nearest").astype(np.float64)
    theta = np.arange(8) * (2 * np.pi / 8)
    r = np.cos(theta) * gx[..., None] + np.sin(theta) * gy[..., None]
    top = max(float(r.max()), 0.0)
    if top == 0.0:
        return np.zeros(r.shape, dtype=np.int64)
    return np.minimum((np.maximum(r, 0.0) / top * 10).astype(np.int64), 9)


def _regions(S, scale, sigma, min_size):
    smooth = ndi.gaussian_filter(S, sigma, mode="nearest") if sigma > 0 else S
    return ref.felzenszwalb(smooth.astype(np.float32), scale / 255, min_size)


def _selective_search(image, scale=100.0, sigma=0.8, min_size=50, value_range=None):
    """Uijlings et al.'s grouping of Felzenszwalb regions, 25 intensity bins."""
    S = _stimulus(image, value_range)
    colour = np.minimum(np.floor(S * 25).astype(np.int64), 24)
    boxes = ref.grouping(_regions(S, scale, sigma, min_size), colour, 25, _texture_bins(S), 10)
    return np.unique(boxes, axis=0)


def _package_boxes(image, scale, sigma, min_size, value_range=None):
    """Boxes of the ``selectivesearch`` package's regions, from their pixels."""
    import selectivesearch

    u8 = np.round(_stimulus(image, value_range).astype(np.float64) * 255).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labelled, regions = selectivesearch.selective_search(
            np.dstack([u8, u8, u8]), scale=scale, sigma=sigma, min_size=min_size)
    boxes = []
    for region in regions:
        ys, xs = np.nonzero(np.isin(labelled[:, :, 3], region["labels"]))
        boxes.append((xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))
    return np.unique(np.array(boxes, dtype=np.int64), axis=0)


def _image(seed, shape=(14, 16)):
    rng = np.random.default_rng(seed)
    image = rng.random(shape)
    image[3:9, 4:11] += 1.5
    return image


def _raster_labels(image):
    """Labels of the 8-connected components of equal values, numbered in raster order."""
    labels = np.full(image.shape, -1)
    n = 0
    for value in np.unique(image):
        comp, k = ndi.label(image == value, structure=np.ones((3, 3)))
        labels[comp > 0] = comp[comp > 0] + n - 1
        n += k
    first = {}
    for v in labels.ravel():
        first.setdefault(v, len(first))
    return np.vectorize(first.get)(labels)


# --- options and their messages ---------------------------------------------

PROPOSERS = [felzenszwalb, selective_search]


@pytest.mark.parametrize("function", PROPOSERS)
@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"scale": -1}, ValueError, r"^scale: expected a finite number >= 0, got -1$"),
    ({"scale": float("inf")}, ValueError, r"^scale: expected a finite number >= 0, got inf$"),
    ({"scale": None}, TypeError, r"^scale: expected a number, got NoneType$"),
    ({"sigma": -0.5}, ValueError, r"^sigma: expected a finite number >= 0, got -0.5$"),
    ({"sigma": float("nan")}, ValueError, r"^sigma: expected a finite number >= 0, got nan$"),
    ({"sigma": "1"}, TypeError, r"^sigma: expected a number, got str$"),
    ({"min_size": 0}, ValueError, r"^min_size: expected an integer >= 1, got 0$"),
    ({"min_size": 2.5}, TypeError, r"^min_size: expected an integer >= 1, got float 2.5$"),
])
def test_option_messages_name_the_option(function, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        function(np.eye(5), **kwargs)


@pytest.mark.parametrize("function", PROPOSERS)
@pytest.mark.parametrize("bad, error, pattern", [
    (np.zeros((2, 5, 5)), ValueError, r"^image: expected a 2-D array, got 3-D"),
    (np.zeros((0, 5)), ValueError, r"^image: expected a non-empty array"),
    (np.array([["a"]]), TypeError, r"^image: expected a real-valued array"),
])
def test_image_messages_name_the_image(function, bad, error, pattern):
    with pytest.raises(error, match=pattern):
        function(bad)


def test_unknown_method_message():
    with pytest.raises(ValueError, match=r"^method: expected one of \('fast', 'package'\), "
                                         r"got 'slow'$"):
        selective_search(np.eye(5), method="slow")


def test_smallest_options_are_accepted():
    """scale 0, sigma 0, min_size 1: the regions are the components of equal values."""
    image = np.array([[0, 0, 1, 1, 2],
                      [0, 3, 1, 2, 2],
                      [3, 3, 0, 0, 2],
                      [1, 1, 0, 4, 4]], dtype=float)
    labels = felzenszwalb(image, scale=0, sigma=0, min_size=1)
    np.testing.assert_array_equal(labels, _raster_labels(image))
    boxes = selective_search(image, scale=0, sigma=0, min_size=1)
    np.testing.assert_array_equal(boxes, _selective_search(image, 0, 0, 1))


# --- felzenszwalb: scale units, defaults, value_range ------------------------

def test_scale_is_in_units_of_one_255th_of_the_range():
    # neighbours 1.0 apart (the whole range) merge when k = scale / 255 reaches 1.0
    two = np.array([[0.0, 1.0]])
    np.testing.assert_array_equal(felzenszwalb(two, scale=255, sigma=0, min_size=1), [[0, 0]])
    np.testing.assert_array_equal(felzenszwalb(two, scale=254.9, sigma=0, min_size=1), [[0, 1]])


def test_default_scale_is_100():
    # a step of 0.394 of the range lies between 100 / 255 and 101 / 255
    row = np.array([[0.0, 0.394, 1.0]])
    np.testing.assert_array_equal(felzenszwalb(row, sigma=0, min_size=1), [[0, 1, 2]])
    np.testing.assert_array_equal(felzenszwalb(row, scale=101, sigma=0, min_size=1),
                                  [[0, 0, 1]])
    np.testing.assert_array_equal(selective_search(row, sigma=0, min_size=1),
                                  [[0, 0, 1, 1], [0, 0, 2, 1], [0, 0, 3, 1], [1, 0, 1, 1],
                                   [2, 0, 1, 1]])


def _fifty():
    image = np.zeros((12, 12))
    image[1:6, 1:11] = 1.0   # 50 pixels
    return image


def test_default_min_size_is_50():
    image = _fifty()
    np.testing.assert_array_equal(felzenszwalb(image, scale=0, sigma=0), image.astype(int))
    assert (felzenszwalb(image, scale=0, sigma=0, min_size=51) == 0).all()
    np.testing.assert_array_equal(selective_search(image, scale=0, sigma=0),
                                  [[0, 0, 12, 12], [1, 1, 10, 5]])


def test_default_sigma_is_0_8():
    step = np.zeros((1, 20))
    step[:, 10:] = 1.0
    expected = _regions(_stimulus(step), 0.0, 0.8, 1)
    assert expected.max() + 1 == 8   # the Gaussian reaches 3 pixels either side of the step
    np.testing.assert_array_equal(felzenszwalb(step, scale=0, min_size=1), expected)
    np.testing.assert_array_equal(selective_search(step, scale=0, min_size=1),
                                  _selective_search(step, 0.0, 0.8, 1))


def test_smoothing_repeats_the_edge_pixels():
    image = _image(3)
    labels = felzenszwalb(image, scale=30, sigma=0.8, min_size=3)
    np.testing.assert_array_equal(labels, _regions(_stimulus(image), 30, 0.8, 3))


def test_value_range_sets_the_stimulus():
    row = np.array([[0.0, 3.94, 10.0, 20.0]])
    # with (0, 10): steps 0.394, 0.606 and 0 (20 clipped to 1)
    np.testing.assert_array_equal(
        felzenszwalb(row, sigma=0, min_size=1, value_range=(0, 10)), [[0, 1, 2, 2]])
    assert felzenszwalb(row, sigma=0, min_size=1).max() < 2
    for value_range in ((0, 10), None):
        np.testing.assert_array_equal(
            selective_search(row, sigma=0, min_size=1, value_range=value_range),
            _selective_search(row, 100.0, 0.0, 1, value_range))


# --- selective search against the plain computation ------------------------

def _left_band(seed):
    """A bright band on the left edge: the x derivative there depends on the edge mode."""
    image = np.random.default_rng(seed).random((14, 16))
    image[:, :3] += 1.5
    return image


@pytest.mark.parametrize("image, kwargs", [
    (_image(3), dict(scale=30, sigma=0.8, min_size=3)),    # smoothing and texture at the edges
    (_image(0), dict(scale=60, sigma=0, min_size=2)),
    (_left_band(0), dict(scale=20, sigma=0, min_size=2)),
])
def test_fast_method_matches_plain_selective_search(image, kwargs):
    np.testing.assert_array_equal(selective_search(image, **kwargs),
                                  _selective_search(image, **kwargs))


def test_brightest_intensity_bin_is_the_25th():
    # most pixels in the top tenth of the range: bins 22, 23 and 24 tell regions apart
    rng = np.random.default_rng(0)
    image = 0.88 + 0.12 * rng.random((12, 12))
    image[0, 0] = 0.0
    np.testing.assert_array_equal(selective_search(image, scale=20, sigma=0, min_size=2),
                                  _selective_search(image, 20, 0, 2))


def test_default_options_match_plain_selective_search():
    rng = np.random.default_rng(14)
    image = rng.random((24, 24))
    image[4:14, 5:17] += 1.0
    image[15:22, 2:9] += 0.6
    np.testing.assert_array_equal(selective_search(image), _selective_search(image))


@pytest.mark.parametrize("kwargs", [
    dict(scale=50.0, sigma=0.5, min_size=5),
    dict(scale=300.0, sigma=1.2, min_size=20, value_range=(0.0, 2.0)),
])
def test_package_method_boxes_are_the_package_regions(kwargs):
    image = _image(1, (16, 18))
    image[0, :5] = 2.6   # the brightest pixels: 255 in the package's uint8 image
    boxes = selective_search(image, method="package", **kwargs)
    assert boxes.dtype == np.int64
    expected = _package_boxes(image, **kwargs)
    np.testing.assert_array_equal(boxes, expected)
    assert [0, 0, 18, 16] in boxes.tolist()


# --- boxes ------------------------------------------------------------------

def _iou_by_pixels(a, b, size=40):
    grid_a = np.zeros((size, size), bool)
    grid_b = np.zeros((size, size), bool)
    grid_a[a[1]:a[1] + a[3], a[0]:a[0] + a[2]] = True
    grid_b[b[1]:b[1] + b[3], b[0]:b[0] + b[2]] = True
    return (grid_a & grid_b).sum() / (grid_a | grid_b).sum()


@pytest.mark.parametrize("a, b", [
    ((0, 0, 10, 10), (0, 20, 10, 10)),   # side by side in columns, apart in rows
    ((0, 0, 10, 10), (20, 0, 10, 10)),   # apart in columns
    ((0, 0, 10, 10), (0, 10, 10, 10)),   # touching rows
    ((2, 3, 4, 5), (4, 1, 6, 4)),
    ((5, 5, 1, 1), (5, 5, 1, 1)),        # one pixel
    ((5, 5, 1, 1), (4, 4, 3, 3)),
    ((7, 2, 1, 9), (7, 6, 1, 9)),        # one column
    ((2, 7, 9, 1), (6, 7, 9, 1)),        # one row
    ((1, 1, 20, 3), (8, 0, 2, 30)),
])
def test_box_iou_counts_pixels(a, b):
    assert box_iou(a, b) == pytest.approx(_iou_by_pixels(a, b), abs=1e-15)
    assert box_iou(b, a) == pytest.approx(_iou_by_pixels(a, b), abs=1e-15)


@pytest.mark.parametrize("a, b, error, pattern", [
    (None, (0, 0, 1, 1), TypeError, r"^a: expected \(x, y, w, h\) integers, got None$"),
    ((0, 0, 1, 1), "box", TypeError, r"^b: expected \(x, y, w, h\) integers, got 'box'$"),
    ((0, 0, 3), (0, 0, 1, 1), ValueError,
     r"^a: expected four integers \(x, y, w, h\), got \(0, 0, 3\)$"),
    ((0, 0, 1, 1), (0, 0, 1.5, 2), ValueError,
     r"^b: expected four integers \(x, y, w, h\), got \(0, 0, 1.5, 2\)$"),
    ((0, 0, 0, 3), (0, 0, 1, 1), ValueError,
     r"^a: expected a width and height >= 1, got \(0, 0, 0, 3\)$"),
    ((0, 0, 1, 1), (0, 0, 3, 0), ValueError,
     r"^b: expected a width and height >= 1, got \(0, 0, 3, 0\)$"),
])
def test_box_messages_name_the_box(a, b, error, pattern):
    with pytest.raises(error, match=pattern):
        box_iou(a, b)


@pytest.mark.parametrize("bad, error, pattern", [
    (np.zeros((2, 4, 4), bool), ValueError, r"^mask: expected a 2-D array, got 3-D"),
    (np.zeros(4, bool), ValueError, r"^mask: expected a 2-D array, got 1-D"),
    (np.full((3, 3), 2), ValueError, r"^mask: expected a binary mask with values 0 and 1"),
])
def test_largest_component_box_messages(bad, error, pattern):
    with pytest.raises(error, match=pattern):
        largest_component_box(bad)


# --- binary entropy and the signatures --------------------------------------

def _entropy(p):
    p = np.asarray(p, dtype=np.float64)
    out = np.zeros(p.shape)
    inside = (p > 0) & (p < 1)
    q = p[inside]
    out[inside] = -q * np.log2(q) - (1 - q) * np.log2(1 - q)
    return out


def test_binary_entropy_by_its_formula_without_warnings():
    p = np.array([[0.0, 1.0, 0.5], [0.25, 0.9, 1e-300]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = binary_entropy(p)
        edges = binary_entropy([0.0, 1.0])
    assert h.dtype == np.float64 and h.shape == (2, 3)
    np.testing.assert_allclose(h, _entropy(p), rtol=1e-15, atol=0)
    assert h[0, 2] == 1.0 and h[0, 0] == 0.0 and h[0, 1] == 0.0
    assert edges.dtype == np.float64 and edges.tolist() == [0.0, 0.0]


def test_binary_entropy_is_float64_for_float32_and_integer_input():
    p32 = np.array([0.1, 0.3, 0.7], dtype=np.float32)
    h = binary_entropy(p32)
    assert h.dtype == np.float64
    np.testing.assert_allclose(h, _entropy(p32.astype(np.float64)), rtol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ints = binary_entropy(np.array([0, 1, 1]))
    assert ints.dtype == np.float64 and ints.tolist() == [0.0, 0.0, 0.0]


def _counts(image, model, n_iter, value_range):
    _, counts, _ = ref.run(_stimulus(image, value_range), model, n_iter)
    return counts


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(7)
    return rng.random((6, 9)) * 3.0


def test_signature_uses_the_value_range(small):
    model = PCNN()
    g = signature(small, model, n_iter=12, value_range=(0.5, 2.0))
    np.testing.assert_array_equal(g, _counts(small, model, 12, (0.5, 2.0)) / small.size)
    assert not np.array_equal(_counts(small, model, 12, (0.5, 2.0)),
                              _counts(small, model, 12, None))


def test_signature_of_a_batch_divides_by_height_times_width(small):
    batch = np.stack([small[:3], small[3:]])      # (2, 3, 9)
    model = ICM()
    g = signature(batch, model, n_iter=8, value_range=(0.0, 3.0))
    assert g.shape == (2, 8) and g.dtype == np.float64
    for b in range(2):
        np.testing.assert_array_equal(g[b], _counts(batch[b], model, 8, (0.0, 3.0)) / 27)
    raw = signature(batch, model, n_iter=8, normalize=False, value_range=(0.0, 3.0))
    np.testing.assert_array_equal(raw, g * 27)


def test_entropy_signature_uses_its_model_and_value_range(small):
    model = PCNN()
    h = entropy_signature(small, model, n_iter=12, value_range=(0.5, 2.0))
    p = _counts(small, model, 12, (0.5, 2.0)) / small.size
    np.testing.assert_allclose(h, _entropy(p), rtol=1e-15, atol=0)
    assert 0 < h.max() <= 1


def test_signature_normalize_message():
    with pytest.raises(TypeError, match=r"^normalize: expected a bool \(True or False\), "
                                        r"got int 1$"):
        signature(np.eye(3), normalize=1)


# --- segment ----------------------------------------------------------------

def test_intensity_order_model_has_the_documented_parameters():
    m = intensity_order_model()
    assert (m.alpha_f, m.v_e, m.e0, m.alpha_e, m.beta) == (20.0, 1000.0, 1.0, 0.05, 0.05)
    assert intensity_order_model(beta=0.3, alpha_e=0.1).beta == 0.3


# Isolated pixels (beta 0) of stimulus exp(-0.05 (k - 1/2)) first pulse at iteration k.
FIRE = np.array([1, 2, 14, 15, 16, 29, 30, 31, 44, 45, 46, 59, 60, 61, 80])


def _row(fire=FIRE):
    return np.exp(-0.05 * (fire - 0.5))[None, :]


def _expected(levels, n_iter, fire=FIRE):
    return np.where(fire < n_iter, levels - (fire * levels) // n_iter, 0)[None, :]


def test_segment_defaults_cut_60_iterations_into_4_levels():
    labels = segment(_row(), beta=0.0, value_range=(0, 1))
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, _expected(4, 60))
    assert labels.tolist() == [[4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1, 1, 0, 0, 0]]


@pytest.mark.parametrize("levels, n_iter", [(1, 60), (3, 62), (7, 47)])
def test_segment_levels_and_iterations(levels, n_iter):
    labels = segment(_row(), levels=levels, n_iter=n_iter, beta=0.0, value_range=(0, 1))
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, _expected(levels, n_iter))


def test_segment_uses_the_value_range():
    row = np.concatenate([_row()[0] * 10, [20.0]])[None, :]   # 20 is clipped to 1
    fire = np.concatenate([FIRE, [1]])
    labels = segment(row, beta=0.0, value_range=(0, 10))
    np.testing.assert_array_equal(labels, _expected(4, 60, fire))


def test_segment_levels_message():
    with pytest.raises(ValueError, match=r"^levels: expected an integer in \[1, 2147483647\], "
                                         r"got 0$"):
        segment(np.eye(3), levels=0)
