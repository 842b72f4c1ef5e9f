"""Preprocessing of skull-stripped MRI: brain mask, N4 bias correction, intensity
normalisation, cropping, and the slices worth segmenting.

Each step is an independent function over ndarrays, so a pipeline is a few
plain calls::

    mask = brain_mask(flair)
    flair = bias_correct(flair, mask)
    stimulus = normalize_intensity(flair, mask)
    cropped, bbox = crop_to_mask(stimulus, mask, margin=4)

Volumes are ``(Z, Y, X)`` as SimpleITK returns them, slices ``(H, W)``; masks are
arrays of the same shape whose non-zero entries mark the brain.
"""
import numbers

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from pcnnseg.morphology import bounding_box, fill_holes_slicewise
from pcnnseg.validation import (as_real_array, check_bool, check_int, check_number, rescale,
                                unit_scaled)

__all__ = ["brain_mask", "bias_correct", "normalize_intensity", "tissue_contrast",
           "robust_z", "crop_to_mask", "uncrop", "nonempty_slices",
           "keep_largest_component", "fill_holes_slicewise"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Largest |z| of :func:`robust_z`: a quarter of the largest float64, so that
#: differences of two z-scores (percentile interpolation) stay finite.
_Z_MAX = float(np.finfo(np.float64).max) / 4.0


# ---------------------------------------------------------------- validation helpers


def _check_volume(volume, name="volume"):
    return as_real_array(volume, name, ndims=(2, 3))


def _check_mask(mask, shape, *, name="mask", need_brain=True):
    """Return ``mask`` as a bool array of ``shape``; non-zero means inside."""
    arr = np.asarray(mask)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a bool or numeric array, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected the volume's shape {tuple(shape)}, got {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    out = arr != 0 if arr.dtype.kind != "b" else arr
    if need_brain and not out.any():
        raise ValueError(f"{name}: expected at least one voxel inside the brain, got an "
                         f"empty mask")
    return out


# ---------------------------------------------------------------------- brain mask


def brain_mask(volume, *, largest_component=True, fill_holes=True):
    """Mask of the brain in a skull-stripped image: its non-zero voxels.

    BraTS (and most skull-stripping tools) set every voxel outside the brain to
    exactly 0, so no threshold is needed. Two clean-ups, both on by default,
    remove what a zero test gets wrong: isolated specks left by the stripping
    (``largest_component``) and zero-valued voxels inside the brain, such as dark
    CSF or signal voids (``fill_holes``).

    Parameters
    ----------
    volume : (H, W) or (Z, Y, X) array_like
        Skull-stripped intensities, any real dtype, background exactly 0.
    largest_component : bool, optional
        Keep only the largest face-connected component. Default True.
    fill_holes : bool, optional
        Fill holes in each 2-D slice (along axis 0 for a volume). Slice-wise,
        because a cavity that touches the top or bottom of the stack is not a
        hole in 3-D yet is one in every axial slice. Default True.

    Returns
    -------
    mask : ndarray of bool, same shape as ``volume``
        All False when ``volume`` is all zero (an empty slice is a valid input).

    Raises
    ------
    TypeError, ValueError
        For a non-real dtype, a wrong number of dimensions, an empty array,
        NaN / inf values, or flags that are not bools.

    Examples
    --------
    >>> v = np.zeros((5, 5)); v[1:4, 1:4] = 1.0; v[2, 2] = 0.0; v[0, 4] = 7.0
    >>> brain_mask(v).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    arr = _check_volume(volume)
    largest_component = check_bool(largest_component, "largest_component")
    fill_holes = check_bool(fill_holes, "fill_holes")
    mask = arr != 0
    if largest_component:
        mask = keep_largest_component(mask)
    if fill_holes:
        mask = fill_holes_slicewise(mask)
    return mask


def keep_largest_component(mask):
    """The largest face-connected component of a bool mask (the mask if empty).

    Parameters
    ----------
    mask : (H, W) or (Z, Y, X) bool ndarray

    Returns
    -------
    bool ndarray, same shape
    """
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


# ------------------------------------------------------------------- bias correction


def bias_correct(volume, mask=None, *, shrink=4, iterations=(50, 50, 30, 20)):
    """Remove a smooth multiplicative bias field with N4.

    N4 (Tustison et al. 2010) models the image as ``v = u * b`` with ``b`` a
    smooth B-spline field; it alternates sharpening the log-intensity histogram
    and fitting ``log b`` to the residual, over a coarse-to-fine sequence of
    B-spline meshes (one level per entry of ``iterations``, the mesh doubling at
    each level from 4 control points per axis). Following common practice
    (ANTs, 3D Slicer), the field is fitted on a copy subsampled by ``shrink``,
    then ``log b`` is evaluated on the full-resolution grid (the B-spline is
    defined in physical space, so this is exact, not an interpolation of a
    coarse image) and divided out.

    Parameters
    ----------
    volume : (H, W) or (Z, Y, X) array_like
        Intensities, any real dtype. Should be positive inside the mask:
        voxels <= 0 (log undefined) are left out of the fit and are only scaled.
    mask : array_like of bool, same shape as ``volume``, optional
        Voxels that take part in the fit; the output is 0 outside. Default: the
        non-zero voxels of ``volume`` (skull-stripped input).
    shrink : int, optional
        Subsampling factor per axis for the fit, capped per axis so that no
        shrunk axis has fewer than 4 voxels. Default 4: on one BraTS 2018 FLAIR
        volume (240 x 240 x 155, 1 mm) the whole call takes 5 to 8 s on 2 shared
        CPU cores (measured 4.7 s and 8.1 s), against 52 s with ``shrink=2``, whose
        fitted log field spans the same range within 0.01 (-0.14..0.33 for
        both); the field varies on a scale of centimetres, so 4 mm samples
        resolve it.
    iterations : sequence of int, optional
        Maximum iterations per fitting level; its length sets the number of
        levels. Default ``(50, 50, 30, 20)``, a common N4 schedule: four
        levels, the B-spline mesh spacing halved at each, with fewer iterations
        at the finer levels, where each costs more and most of the field is
        already fitted. Each level also stops
        early when N4's convergence measure falls below 0.001.

    Returns
    -------
    corrected : ndarray of float32, same shape as ``volume``
        ``volume / b`` inside the mask, 0 outside.

    Raises
    ------
    TypeError, ValueError
        For invalid ``volume`` (dtype, ndim, empty, NaN / inf), a ``mask`` of
        another shape or with no positive voxel of ``volume`` in it, or invalid
        ``shrink`` / ``iterations``; ValueError also when N4 itself fails.

    References
    ----------
    .. [1] N. J. Tustison et al., "N4ITK: Improved N3 Bias Correction", IEEE
       Transactions on Medical Imaging 29(6):1310-1320, 2010.
       doi:10.1109/TMI.2010.2046908

    Examples
    --------
    >>> from pcnnseg.phantom import make_volume
    >>> v, _ = make_volume((16, 48, 48), bias=0.4, noise=0.01)
    >>> out = bias_correct(v, shrink=2, iterations=(20, 20))
    >>> out.shape, out.dtype, bool((out[v == 0] == 0).all())
    ((16, 48, 48), dtype('float32'), True)
    """
    arr = _check_volume(volume)
    if mask is None:
        inside = arr != 0
        if not inside.any():
            raise ValueError("volume: expected a brain (non-zero voxels) to correct, got "
                             "an all-zero volume")
    else:
        inside = _check_mask(mask, arr.shape)
    shrink = check_int(shrink, "shrink", 1)
    if isinstance(iterations, numbers.Integral):
        iterations = (iterations,)
    try:
        iterations = tuple(iterations)
    except TypeError:
        raise TypeError(f"iterations: expected a sequence of positive integers, got "
                        f"{type(iterations).__name__}") from None
    if not iterations:
        raise ValueError("iterations: expected at least one fitting level, got none")
    iterations = tuple(check_int(i, "iterations", 1) for i in iterations)

    top = float(np.max(np.abs(arr)))
    if top > _FLOAT32_MAX:
        raise ValueError(f"volume: the corrected image is float32, so intensities must "
                         f"stay within +-{_FLOAT32_MAX:.4g}; got {top:.4g}")
    # N4 fits log intensities, so the field of 2**k v is that of v: fit it on the
    # image scaled to [-1, 1], where float32 keeps tiny (denormal) intensities.
    data = unit_scaled(arr)[0].astype(np.float32)
    fit = inside & (data > 0)
    if not fit.any():
        raise ValueError("volume: expected positive intensities inside the mask for N4 "
                         "(it fits the log of the image), got none")

    image = sitk.GetImageFromArray(data)
    fit_image = sitk.GetImageFromArray(fit.astype(np.uint8))
    fit_image.CopyInformation(image)
    # SimpleITK sizes are (x, y[, z]): reverse the array shape.
    factors = [max(1, min(shrink, n // 4)) for n in reversed(arr.shape)]
    small = sitk.Shrink(image, factors)
    small_mask = sitk.Shrink(fit_image, factors)
    if not sitk.GetArrayViewFromImage(small_mask).any():
        raise ValueError(f"mask: too small to survive subsampling by {factors}; "
                         f"use a smaller shrink")

    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(iterations))
    try:
        n4.Execute(small, small_mask)
        log_field = n4.GetLogBiasFieldAsImage(image)
    except RuntimeError as err:
        text = str(err).strip().splitlines()
        raise ValueError(f"volume: N4 bias correction failed "
                         f"({text[-1] if text else 'no message'})") from None
    field = np.exp(sitk.GetArrayFromImage(log_field).astype(np.float64))
    with np.errstate(over="ignore"):  # a field below 1 may push the top past float32
        out = np.where(inside, arr / field, 0.0)
    return np.clip(out, -_FLOAT32_MAX, _FLOAT32_MAX).astype(np.float32)


# --------------------------------------------------------------------- normalisation


def normalize_intensity(volume, mask, *, percentiles=(1.0, 99.0)):
    """Map the brain's intensities robustly onto [0, 1].

    MRI intensities have no absolute scale, differ between scanners and
    sequences, and carry a few extreme voxels (vessels, artefacts). A linear map
    that sends the lower and upper percentiles *inside the brain* to 0 and 1,
    clipped, makes slices comparable without letting the background or a
    handful of outliers set the scale: the [0, 1] stimulus a PCNN expects.

    Parameters
    ----------
    volume : (H, W) or (Z, Y, X) array_like
        Intensities, any real dtype.
    mask : array_like of bool, same shape as ``volume``
        The brain; must not be empty.
    percentiles : (float, float), optional
        Lower and upper percentiles, ``0 <= low < high <= 100``, computed over
        the masked voxels with linear interpolation. Default ``(1.0, 99.0)``;
        ``(0, 100)`` gives a plain min-max map.

    Returns
    -------
    normalized : ndarray of float32, same shape as ``volume``
        Values in [0, 1] inside the mask, exactly 0 outside.

    Raises
    ------
    TypeError, ValueError
        For invalid inputs, an empty mask, bad ``percentiles``, or a brain whose
        two percentiles coincide (no intensity range to map).

    Examples
    --------
    >>> v = np.array([[0, 10, 20], [30, 40, 0]])
    >>> normalize_intensity(v, v > 0, percentiles=(0, 100))
    array([[0.        , 0.        , 0.33333334],
           [0.6666667 , 1.        , 0.        ]], dtype=float32)
    """
    arr = _check_volume(volume)
    inside = _check_mask(mask, arr.shape)
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ValueError(f"percentiles: expected two numbers (low, high), got "
                         f"{percentiles!r}") from None
    if not (0.0 <= low < high <= 100.0):
        raise ValueError(f"percentiles: expected 0 <= low < high <= 100, got ({low}, {high})")
    # scaled by a power of two: the same map, with no overflow near +-1.8e308
    values, exponent = unit_scaled(arr[inside])
    lo, hi = np.percentile(values, [low, high])
    if not hi > lo:
        raise ValueError(f"volume: the brain's {low}th and {high}th percentiles are both "
                         f"{np.ldexp(lo, exponent)}; no intensity range to normalise")
    out = np.zeros(arr.shape, dtype=np.float32)
    out[inside] = rescale(values, lo, hi)
    return out


def tissue_contrast(volume, mask, *, upper_percentile=99.0, bins=256):
    """Contrast against normal tissue: ``(v - mode) / (p_upper - mode)`` over the brain.

    MRI intensities have no absolute scale, and the usual z-score (mean or median
    and spread of the brain) fails on exactly the volumes that matter here: a
    tumor of 10-30 % of the brain drags the median and inflates the spread, and
    the spread of noisy low-field scans hides a lesion that the eye sees. Two
    robust landmarks make the scale instead:

    - the *mode* of the brain's histogram (256 bins between the 0.5th and 99.5th
      percentiles, smoothed by a Gaussian of 2 bins), the peak of normal white
      and grey matter, which a tumor moves only if it fills most of the brain;
    - the ``upper_percentile`` of the brain, the bright tail where a
      hyperintense lesion lives.

    So 0 is normal tissue and 1 is the brightest percent of the brain, whatever
    the scanner's scale, offset or noise. On the 22 development cases of both
    BraTS collections the tumor's median FLAIR contrast varies less between
    cases on this scale than as a robust z-score (median and MAD): coefficient
    of variation 0.25 against 0.41 (``benchmarks/results/segmentation.md``;
    measured on all 22 cases, the cases this scale was chosen on, so a
    description of them rather than a held-out result).

    Parameters
    ----------
    volume : (H, W) or (Z, Y, X) array_like
        Intensities, any real dtype (negative values allowed).
    mask : array_like of bool, same shape
        The brain; must not be empty.
    upper_percentile : float, optional
        Percentile of the brain mapped to 1, in (50, 100]. Default 99.
    bins : int, optional
        Histogram bins for the mode. Default 256.

    Returns
    -------
    contrast : float32 ndarray, same shape
        0 outside the mask; finite (saturated at the float32 limits). The same
        for ``volume`` times any positive power of two, whatever the scale
        (denormals to 1.8e308).

    Raises
    ------
    TypeError, ValueError
        For invalid inputs, an empty mask, or a brain whose upper percentile
        does not exceed its mode (a constant sequence: no contrast to measure).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = rng.normal(100, 5, (200, 200)); v[:40, :40] = 150    # 4 % "tumor"
    >>> c = tissue_contrast(v, np.ones(v.shape, bool))
    >>> round(float(np.median(c[40:])), 1), round(float(np.median(c[:40, :40])), 1)
    (0.0, 1.0)
    """
    arr = _check_volume(volume)
    inside = _check_mask(mask, arr.shape)
    upper = check_number(upper_percentile, "upper_percentile")
    if not 50.0 < upper <= 100.0:
        raise ValueError(f"upper_percentile: expected a value in (50, 100], got {upper}")
    bins = check_int(bins, "bins", 8)
    # Scaled by a power of two, which changes no landmark's place nor the ratio:
    # the same contrast for intensities near +-1.8e308 or among denormals.
    values, exponent = unit_scaled(arr[inside])
    lo, hi, top = np.percentile(values, [0.5, 99.5, upper])
    mode = _histogram_mode(values, lo, hi, bins)
    if not top > mode:
        raise ValueError(f"volume: no contrast in the brain (its {upper}th percentile "
                         f"{np.ldexp(top, exponent):g} does not exceed its mode "
                         f"{np.ldexp(mode, exponent):g}); is the sequence constant?")
    out = np.zeros(arr.shape, dtype=np.float32)
    with np.errstate(over="ignore"):  # a mode and top a denormal apart
        contrast = (values - mode) / (top - mode)
    out[inside] = np.clip(contrast, -_FLOAT32_MAX, _FLOAT32_MAX)
    return out


def _histogram_mode(values, lo, hi, bins):
    """Centre of the highest bin of the histogram over [lo, hi], smoothed by 2 bins."""
    if not hi > lo:
        return float(lo)
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    smooth = ndimage.gaussian_filter1d(counts.astype(np.float64), 2.0)
    i = int(np.argmax(smooth))
    return float(0.5 * (edges[i] + edges[i + 1]))


def robust_z(volume, mask):
    """Robust z-score ``(v - median) / (1.4826 MAD)`` over the brain.

    The median and the median absolute deviation (MAD) are taken over the
    voxels inside ``mask``; a lesion of less than half the brain moves neither
    much (both have a 50 % breakdown point [1]_). The factor 1.4826, that is
    ``1 / Phi^-1(3/4)``, makes the MAD a consistent estimator of the standard
    deviation under normal noise [1]_ [2]_.

    Parameters
    ----------
    volume : (H, W) or (Z, Y, X) array_like
        Intensities, any real dtype.
    mask : array_like of bool, same shape
        The brain; must not be empty.

    Returns
    -------
    z : float64 ndarray, same shape, or None
        0 outside the mask. None when the MAD is 0 (at least half of the
        brain has its median intensity: no spread to measure). Computed on
        the intensities scaled by a power of two (:func:`pcnnseg.validation.
        unit_scaled`), so the same for ``volume`` times any power of two,
        whatever its scale; ``|z|`` saturates at a quarter of the largest
        float64.

    Raises
    ------
    TypeError, ValueError
        For invalid inputs or an empty mask.

    References
    ----------
    .. [1] P. J. Rousseeuw, C. Croux, "Alternatives to the median absolute
       deviation", Journal of the American Statistical Association
       88(424):1273-1283, 1993. doi:10.1080/01621459.1993.10476408
    .. [2] P. J. Huber, *Robust Statistics*, Wiley, New York, 1981.

    Examples
    --------
    >>> v = np.array([[0.0, 10, 11], [12, 13, 40]])
    >>> robust_z(v, v > 0).round(2)
    array([[ 0.  , -1.35, -0.67],
           [ 0.  ,  0.67, 18.89]])
    """
    arr = _check_volume(volume)
    inside = _check_mask(mask, arr.shape)
    values, _ = unit_scaled(arr[inside])
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    if mad == 0:
        return None
    z = np.zeros(arr.shape, dtype=np.float64)
    with np.errstate(over="ignore"):  # a MAD a denormal wide
        z[inside] = np.clip((values - median) / mad, -_Z_MAX, _Z_MAX)
    return z


# --------------------------------------------------------------------------- cropping


def crop_to_mask(volume, mask, *, margin=0):
    """Crop an image to the bounding box of a mask, plus a margin.

    Segmenting only the box around the brain saves the work on background,
    about half of a BraTS volume.

    Parameters
    ----------
    volume : (H, W) or (Z, Y, X) array_like
        Any real dtype.
    mask : array_like, same shape as ``volume``
        Non-zero inside; must not be empty.
    margin : int or sequence of int, optional
        Voxels added on each side, per axis or for all; the box is clipped to
        the array. Default 0.

    Returns
    -------
    cropped : ndarray
        A copy of ``volume[bbox]``, same dtype.
    bbox : tuple of slice
        One ``slice(start, stop)`` per axis; ``uncrop(cropped, bbox,
        volume.shape)`` puts ``cropped`` back.

    Raises
    ------
    TypeError, ValueError
        For invalid inputs, an empty mask, or a negative / non-integer margin.

    Examples
    --------
    >>> v = np.zeros((6, 6)); v[2:4, 1:3] = 1
    >>> cropped, bbox = crop_to_mask(v, v, margin=1)
    >>> cropped.shape, bbox
    ((4, 4), (slice(1, 5, None), slice(0, 4, None)))
    """
    arr = _check_volume(volume)
    inside = _check_mask(mask, arr.shape)
    if isinstance(margin, numbers.Integral) and not isinstance(margin, bool):
        margins = (margin,) * arr.ndim
    else:
        try:
            margins = tuple(margin)
        except TypeError:
            raise TypeError(f"margin: expected an int or {arr.ndim} ints, got "
                            f"{type(margin).__name__}") from None
        if len(margins) != arr.ndim:
            raise ValueError(f"margin: expected an int or {arr.ndim} ints, got "
                             f"{len(margins)} values")
    margins = [check_int(m, "margin", 0) for m in margins]
    tight = bounding_box(inside)
    bbox = tuple(slice(max(b.start - m, 0), min(b.stop + m, n))
                 for b, n, m in zip(tight, arr.shape, margins))
    return arr[bbox].copy(), bbox


def uncrop(cropped, bbox, shape, *, fill=0):
    """Put a cropped array back into a full-size array; inverse of :func:`crop_to_mask`.

    Parameters
    ----------
    cropped : ndarray
        The cropped data (for instance a segmentation of the cropped image).
    bbox : tuple of slice
        As returned by :func:`crop_to_mask`: ``slice(start, stop)`` per axis with
        ``stop - start`` equal to ``cropped``'s size along that axis.
    shape : tuple of int
        Shape of the full array.
    fill : scalar, optional
        Value outside the box. Default 0.

    Returns
    -------
    full : ndarray of ``cropped.dtype`` and shape ``shape``

    Raises
    ------
    TypeError, ValueError
        For a non-real ``cropped``, a malformed ``bbox`` / ``shape``, a box that
        does not fit ``shape`` or ``cropped``, or a ``fill`` the dtype cannot hold.

    Examples
    --------
    >>> uncrop(np.ones((2, 2), dtype=np.uint8), (slice(1, 3), slice(0, 2)), (3, 3))
    array([[0, 0, 0],
           [1, 1, 0],
           [1, 1, 0]], dtype=uint8)
    """
    arr = np.asarray(cropped)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"cropped: expected a real-valued array, got dtype {arr.dtype}")
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape: expected a tuple of ints, got {type(shape).__name__}") from None
    shape = tuple(check_int(n, "shape", 1) for n in shape)
    if not isinstance(bbox, (tuple, list)) or not all(isinstance(s, slice) for s in bbox):
        raise TypeError(f"bbox: expected a tuple of slices, got {bbox!r}")
    if not (arr.ndim == len(bbox) == len(shape)):
        raise ValueError(f"bbox: expected one slice per axis of cropped ({arr.ndim}-D) and of "
                         f"shape {shape}, got {len(bbox)} slices")
    for axis, (s, n, k) in enumerate(zip(bbox, shape, arr.shape)):
        ok = (isinstance(s.start, numbers.Integral) and isinstance(s.stop, numbers.Integral)
              and s.step in (None, 1) and 0 <= s.start <= s.stop <= n
              and s.stop - s.start == k)
        if not ok:
            raise ValueError(f"bbox: expected slice(start, stop) with 0 <= start <= stop <= "
                             f"{n} and stop - start = {k} on axis {axis}, got {s}")
    try:
        full = np.full(shape, fill, dtype=arr.dtype)
    except (OverflowError, ValueError, TypeError):
        raise ValueError(f"fill: expected a value that dtype {arr.dtype} can hold, "
                         f"got {fill!r}") from None
    full[tuple(bbox)] = arr
    return full


# ----------------------------------------------------------------------------- slices


def nonempty_slices(mask, *, axis=0, min_pixels=1):
    """Indices of the slices of a mask that hold at least ``min_pixels`` voxels.

    Slices with no brain (or no tumor) carry nothing to segment; the baseline
    and the benchmarks skip them, as Niepceron et al. (2020) do.

    Parameters
    ----------
    mask : (Z, Y, X) or (H, W) array_like
        Non-zero inside.
    axis : int, optional
        Axis along which slices are taken; 0 gives axial slices of a ``(Z, Y,
        X)`` volume. Negative values count from the end. Default 0.
    min_pixels : int, optional
        Minimum number of non-zero voxels for a slice to count. Default 1.

    Returns
    -------
    indices : 1-D ndarray of int
        Increasing; empty when no slice qualifies.

    Raises
    ------
    TypeError, ValueError
        For an invalid mask, an axis out of range, or ``min_pixels < 1``.

    Examples
    --------
    >>> m = np.zeros((4, 3, 3), dtype=bool); m[1, 0, 0] = m[2] = True
    >>> nonempty_slices(m)
    array([1, 2])
    >>> nonempty_slices(m, min_pixels=2)
    array([2])
    """
    arr = as_real_array(mask, "mask", ndims=(2, 3))
    inside = arr != 0
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis: expected an int, got {type(axis).__name__}")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis: expected -{arr.ndim} <= axis < {arr.ndim} for a "
                         f"{arr.ndim}-D mask, got {axis}")
    min_pixels = check_int(min_pixels, "min_pixels", 1)
    axis = int(axis) % arr.ndim
    other = tuple(a for a in range(arr.ndim) if a != axis)
    counts = np.count_nonzero(inside, axis=other)
    return np.flatnonzero(counts >= min_pixels)
