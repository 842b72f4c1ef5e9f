"""Selective-search box proposals for a grayscale slice.

Two implementations with one interface, :func:`selective_search`:

- ``method="fast"`` (default): this package's Numba kernels
  (:mod:`pcnnseg_kernels.proposals`): Felzenszwalb-Huttenlocher regions, then
  Uijlings et al.'s hierarchical grouping with intensity, texture (Gaussian
  derivatives in 8 orientations), size and fill similarities, neighbours taken
  from pixel adjacency;
- ``method="package"``: the ``selectivesearch`` package (a pure-Python
  implementation), fed the slice as a 3-channel uint8 image with its warnings
  silenced. Its similarities differ: it histograms HSV values and local binary
  patterns, and takes neighbours from overlapping boxes.

``benchmarks/detection.py`` compares the two on the same slices.
"""
import warnings

import numpy as np
from scipy import ndimage as ndi

from pcnnseg_kernels.proposals import (felzenszwalb_labels, hierarchical_grouping,
                                      region_statistics, texture_bins)
from pcnnseg.validation import as_real_array, check_int, check_number, normalize

__all__ = ["selective_search", "felzenszwalb", "METHODS"]

#: Proposal implementations accepted by :func:`selective_search`.
METHODS = ("fast", "package")

_COLOUR_BINS = 25  # Uijlings et al. 2013, sec. 3.2
_TEXTURE_BINS = 10
_ORIENTATIONS = 8


def _check_options(scale, sigma, min_size):
    for name, value in (("scale", scale), ("sigma", sigma)):
        if not (np.isfinite(check_number(value, name)) and value >= 0):
            raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    check_int(min_size, "min_size", 1)


def _stimulus(image, value_range):
    arr = as_real_array(image, "image", ndims=(2,))
    if value_range is None and arr.min() == arr.max():
        return np.zeros(arr.shape, dtype=np.float32)  # one region: nothing to propose apart
    return normalize(arr, value_range=value_range)


def felzenszwalb(image, *, scale=100.0, sigma=0.8, min_size=50, value_range=None):
    """Graph-based over-segmentation of a grayscale slice.

    The algorithm of Felzenszwalb and Huttenlocher [1]_, on the 8-connected
    grid of the slice normalised to [0, 1] and smoothed by a Gaussian of width
    ``sigma``. ``scale`` is the paper's ``k`` in units of 1/255 of the range, as
    in :func:`skimage.segmentation.felzenszwalb`.

    Parameters
    ----------
    image : (H, W) array_like
        Any real dtype.
    scale : float
        Larger values give larger regions.
    sigma : float
        Gaussian smoothing before segmentation, in pixels (0: none).
    min_size : int
        Regions smaller than this are merged into a neighbour.
    value_range : (float, float), optional
        Intensities mapped to 0 and 1; default the slice's min and max.

    Returns
    -------
    (H, W) int32 ndarray
        Region labels ``0..n-1`` numbered in raster order.

    References
    ----------
    .. [1] P. F. Felzenszwalb, D. P. Huttenlocher, "Efficient graph-based image
       segmentation", International Journal of Computer Vision 59(2):167-181,
       2004. doi:10.1023/B:VISI.0000022288.19776.77
    """
    _check_options(scale, sigma, min_size)
    labels, _ = _regions(_stimulus(image, value_range), scale, sigma, min_size)
    return labels


def _regions(S, scale, sigma, min_size):
    smooth = ndi.gaussian_filter(S, sigma, mode="nearest") if sigma > 0 else S
    return felzenszwalb_labels(np.ascontiguousarray(smooth, dtype=np.float32),
                               float(scale) / 255.0, int(min_size))


def _texture_bins(S):
    """Bin of the positive Gaussian-derivative response in 8 orientations, (H, W, 8)."""
    gy = ndi.gaussian_filter(S, 1.0, order=(1, 0), mode="nearest")
    gx = ndi.gaussian_filter(S, 1.0, order=(0, 1), mode="nearest")
    return texture_bins(gx.astype(np.float64), gy.astype(np.float64), _ORIENTATIONS,
                        _TEXTURE_BINS)


def _fast(S, scale, sigma, min_size):
    labels, n = _regions(S, scale, sigma, min_size)
    colour = np.minimum((S * _COLOUR_BINS).astype(np.int64), _COLOUR_BINS - 1)
    stats = region_statistics(labels, n, colour, _COLOUR_BINS, _texture_bins(S), _TEXTURE_BINS)
    size, box, colour_hist, texture_hist, pairs = stats
    return hierarchical_grouping(size, box, colour_hist, texture_hist, pairs, float(S.size))


def _package(S, scale, sigma, min_size):
    import selectivesearch

    u8 = np.round(S * 255).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about LBP on float images
        _, regions = selectivesearch.selective_search(np.dstack([u8] * 3), scale=float(scale),
                                                      sigma=float(sigma), min_size=int(min_size))
    # The package's rect is (x0, y0, x1 - x0, y1 - y0) with inclusive x1, y1.
    rects = [r["rect"] for r in regions]
    boxes = np.array(rects, dtype=np.int64).reshape(-1, 4)
    boxes[:, 2:] += 1
    return boxes


def selective_search(image, *, scale=100.0, sigma=0.8, min_size=50, method="fast",
                     value_range=None):
    """Propose boxes that may hold objects, by hierarchical grouping of regions.

    The hierarchical grouping of Uijlings et al. [1]_ (one strategy: a single
    colour space and one ``scale``), on regions of :func:`felzenszwalb`.

    Parameters
    ----------
    image : (H, W) array_like
        A grayscale slice, any real dtype.
    scale, sigma, min_size
        Of the initial regions; see :func:`felzenszwalb`.
    method : {"fast", "package"}
        Implementation, see the module docstring.
    value_range : (float, float), optional
        Intensities mapped to 0 and 1; default the slice's min and max. A
        constant slice is one region.

    Returns
    -------
    (K, 4) int64 ndarray
        Unique boxes ``(x, y, w, h)`` in pixels, ``w, h >= 1``, sorted by rows.

    Raises
    ------
    TypeError, ValueError
        For a slice that is not a non-empty 2-D real array of finite values, or
        invalid options.

    References
    ----------
    .. [1] J. R. R. Uijlings, K. E. A. van de Sande, T. Gevers, A. W. M.
       Smeulders, "Selective search for object recognition", International
       Journal of Computer Vision 104(2):154-171, 2013.
       doi:10.1007/s11263-013-0620-5

    Examples
    --------
    >>> from pcnnseg import phantom
    >>> from pcnnseg.proposals import selective_search
    >>> image, tumor = phantom.make_slice()
    >>> boxes = selective_search(image)
    >>> boxes.shape[1], bool((boxes[:, 2:] >= 1).all())
    (4, True)
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    _check_options(scale, sigma, min_size)
    S = _stimulus(image, value_range)
    run = _fast if method == "fast" else _package
    boxes = run(S, scale, sigma, min_size)
    return np.unique(boxes, axis=0)
