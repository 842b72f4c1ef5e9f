"""Synthetic brain slices, volumes and multi-sequence cases with exact tumor labels.

The phantoms exist so that demos, command-line examples and tests run on a fresh
machine without real data. They are cartoons of MRI, not models of it: never use
them to support claims about segmentation accuracy.

- :func:`make_slice` and :func:`make_volume` give a FLAIR-like image and a
  whole-tumor mask.
- :func:`make_case` gives FLAIR, T1, T1ce and T2 volumes of the same anatomy and a
  BraTS-style label map (necrotic core, edema, enhancing tumor).

The anatomy (brain outline, tissue classes, tumor) depends only on ``shape``,
``seed`` and ``tumor_radius``; ``bias`` and ``noise`` change the intensities only.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from pcnnseg.validation import check_int

__all__ = ["make_case", "make_slice", "make_volume"]

# Anatomy classes. The tumor core is an enhancing rim around a necrotic centre.
_BACKGROUND, _CSF, _WM, _GM, _EDEMA, _ENHANCING, _NECROSIS = range(7)

# Class intensities per sequence (arbitrary units), qualitatively like real MRI:
#
#   class        FLAIR   T1   T1ce    T2
#   background       0    0      0     0
#   CSF            150  180    180   950   suppressed in FLAIR, bright in T2
#   white matter   420  620    620   380   WM > GM in T1, WM < GM in T2/FLAIR
#   grey matter    520  480    480   520
#   edema          760  400    400   780   bright in FLAIR/T2, slightly dark in T1
#   enhancing      900  440    980   700   very bright in T1ce only (contrast uptake)
#   necrosis       900  220    220   880   dark in T1/T1ce, bright in T2
#
# FLAIR has one level for the whole core, so make_slice/make_volume images do not
# depend on how the core splits into rim and necrosis.
_SEQUENCE_LEVELS = {
    name: np.array(levels, dtype=np.float32) for name, levels in {
        "flair": (0.0, 150.0, 420.0, 520.0, 760.0, 900.0, 900.0),
        "t1": (0.0, 180.0, 620.0, 480.0, 400.0, 440.0, 220.0),
        "t1ce": (0.0, 180.0, 620.0, 480.0, 400.0, 980.0, 220.0),
        "t2": (0.0, 950.0, 380.0, 520.0, 780.0, 700.0, 880.0),
    }.items()
}
_LEVELS = _SEQUENCE_LEVELS["flair"]

# BraTS 2018 labels of the anatomy classes: 1 necrotic/non-enhancing core,
# 2 edema, 4 enhancing tumor, 0 everything else.
_BRATS_LABELS = np.array([0, 0, 0, 0, 2, 4, 1], dtype=np.uint8)

_WOBBLE = 0.04          # relative amplitude of the irregular brain outline
_TUMOR_WOBBLE = 0.25    # relative amplitude of the irregular edema outline
_CORE_FRACTION = 0.5    # core radius as a fraction of the whole-tumor radius
_NECROSIS_FRACTION = 0.6  # necrotic-centre radius as a fraction of the core radius
_MARGIN_PX = 2.0        # tumor-to-outline gap in pixels, incl. <= 0.87 px of snapping
_MIN_SIDE = 16


def _check_shape(shape, ndim):
    if not (isinstance(shape, (tuple, list))
            and all(isinstance(n, Integral) and not isinstance(n, bool) for n in shape)):
        raise TypeError(f"shape must be a tuple of {ndim} ints, got {shape!r}")
    if not (len(shape) == ndim and all(n >= _MIN_SIDE for n in shape)):
        raise ValueError(f"shape must be a tuple of {ndim} ints each >= {_MIN_SIDE}, "
                         f"got {shape!r}")
    return tuple(int(n) for n in shape)


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a finite number in [0, 1), got {value!r}")
    return float(value)


def _wave_field(rng, coords, n_waves, frequency):
    """Sum of random plane waves over ``coords``, scaled into [-1, 1]."""
    amplitudes = rng.uniform(0.5, 1.0, n_waves)
    out = np.zeros(np.broadcast_shapes(*(c.shape for c in coords)), dtype=np.float32)
    for amplitude in amplitudes:
        direction = rng.standard_normal(len(coords))
        wave = direction * (frequency / np.linalg.norm(direction))
        phase = rng.uniform(0.0, 2.0 * np.pi)
        arg = sum(np.float32(w) * c for w, c in zip(wave, coords)) + np.float32(phase)
        out += np.float32(amplitude) * np.cos(arg)
    return out / np.float32(amplitudes.sum())


def _unit_directions(coords):
    radius = np.sqrt(sum(c * c for c in coords))
    safe = np.maximum(radius, np.float32(1e-6))
    return radius, [c / safe for c in coords]


def _erode(mask):
    """Keep the pixels/voxels of ``mask`` whose face neighbours all lie in ``mask``."""
    padded = np.pad(mask, 1)
    inner = (slice(1, -1),) * mask.ndim
    out = mask.copy()
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            out &= np.roll(padded, shift, axis=axis)[inner]
    return out


def _paint_ventricles(labels, rel, rng):
    """Two tilted ellipses (ellipsoids in 3-D) of CSF either side of the midline."""
    y, x = rel[-2], rel[-1]
    for side in (-1.0, 1.0):
        size = rng.uniform(0.85, 1.15)
        cy, cx, tilt = -0.08, side * 0.17, side * np.deg2rad(25.0)
        dy, dx = y - np.float32(cy), x - np.float32(cx)
        along = np.float32(np.cos(tilt)) * dy + np.float32(np.sin(tilt)) * dx
        across = np.float32(np.cos(tilt)) * dx - np.float32(np.sin(tilt)) * dy
        q = (along / np.float32(0.30 * size)) ** 2 + (across / np.float32(0.08 * size)) ** 2
        if len(rel) == 3:
            q = q + ((rel[0] - np.float32(0.05)) / np.float32(0.35 * size)) ** 2
        labels[q < 1.0] = _CSF


def _reach(half, axes, scale, radius):
    """Radius, in brain-relative units, of a ball that holds tumor plus margin."""
    tumor = np.max(radius * scale * (1.0 + _TUMOR_WOBBLE) / (half * axes))
    return tumor + _MARGIN_PX / np.min(half * axes)


def _max_radius(half, axes, scale):
    """Largest tumor_radius whose tumor fits inside the brain with the margin."""
    room = (1.0 - _WOBBLE) - _MARGIN_PX / np.min(half * axes)
    return float(np.min(room * half * axes / (scale * (1.0 + _TUMOR_WOBBLE))))


def _paint_tumor(labels, rng, half, axes, scale, radius):
    """Paint edema, enhancing rim and necrosis around a random centre.

    Returns the whole-tumor mask. The necrotic centre lies inside the core with
    at least one rim pixel/voxel between it and the edema along every axis.
    """
    ndim = labels.ndim
    semi = radius * scale                    # nominal tumor semi-axes, in pixels
    # Pixel distances are at least brain-relative distances times min(half * axes),
    # so a centre within ``free`` of the origin keeps the tumor, its margin and
    # the snapping below inside the smallest possible brain outline.
    free = max((1.0 - _WOBBLE) - _reach(half, axes, scale, radius), 0.0)
    direction = rng.standard_normal(ndim)
    centre_rel = direction / np.linalg.norm(direction) * free * rng.uniform() ** (1.0 / ndim)
    # Snap the centre onto a pixel so the mask is never empty.
    centre = np.floor(centre_rel * axes * half + half).astype(int)
    box = tuple(slice(max(c - k, 0), min(c + k + 1, n)) for c, k, n in
                zip(centre, np.ceil(semi * (1.0 + _TUMOR_WOBBLE)).astype(int), labels.shape))
    local = np.ogrid[box]
    d = [((g - c) / s).astype(np.float32) for g, c, s in zip(local, centre, semi)]
    r, u = _unit_directions(d)
    whole = r < 1.0 + _TUMOR_WOBBLE * _wave_field(rng, u, 5, 3.0)
    core_edge = _CORE_FRACTION * (1.0 + 0.3 * _wave_field(rng, u, 3, 2.0))
    core = (r < core_edge) & whole
    necrosis = (r < _NECROSIS_FRACTION * core_edge) & _erode(core)
    view = labels[box]
    view[whole] = _EDEMA
    view[core] = _ENHANCING
    view[necrosis] = _NECROSIS
    mask = np.zeros(labels.shape, dtype=bool)
    mask[box] = whole
    return mask


def _check_tumor_radius(tumor_radius, shape, half, axes, scale):
    limit = _max_radius(half, axes, scale)
    if tumor_radius is None:
        tumor_radius = 0.12 * min(shape[-2:])
    if isinstance(tumor_radius, bool) or not isinstance(tumor_radius, Real):
        raise TypeError(f"tumor_radius must be a positive finite number, got {tumor_radius!r}")
    if not math.isfinite(tumor_radius) or tumor_radius <= 0:
        raise ValueError(f"tumor_radius must be a positive finite number, got {tumor_radius!r}")
    if tumor_radius > limit:
        limit = math.floor(limit * 10.0) / 10.0
        raise ValueError(f"tumor_radius must be at most {limit} pixels to fit inside "
                         f"the brain for shape {shape}, got {tumor_radius!r}")
    return float(tumor_radius)


def _anatomy(rng, shape, half, axes, scale, tumor_radius):
    """Draw the anatomy: class labels, brain mask, whole-tumor mask and coordinates."""
    ndim = len(shape)
    # Pixel-centre coordinates: ``norm`` spans (-1, 1) over the field of view,
    # ``rel`` is scaled so the nominal brain outline is the unit sphere.
    norm = [((np.arange(n, dtype=np.float32) + 0.5 - n / 2) / np.float32(n / 2))
            for n in shape]
    norm = [g.reshape([-1 if i == k else 1 for k in range(ndim)]) for i, g in enumerate(norm)]
    rel = [g / np.float32(a) for g, a in zip(norm, axes)]
    rho, u = _unit_directions(rel)
    rho_rel = rho / (1.0 + _WOBBLE * _wave_field(rng, u, 5, 2.5))
    brain = rho_rel < 1.0
    labels = np.where(brain, np.uint8(_WM), np.uint8(_BACKGROUND))
    gyri = 0.84 + 0.08 * _wave_field(rng, u, 8, 20.0)
    labels[brain & (rho_rel > gyri)] = _GM
    _paint_ventricles(labels, rel, rng)
    mask = _paint_tumor(labels, rng, half, axes, scale, tumor_radius)
    return labels, brain, mask, norm


def _render(levels, labels, brain, field, noise, bias, rng):
    """Image of ``labels`` with class intensities ``levels``, bias field and noise."""
    image = levels[labels]
    if bias > 0:
        image *= 1.0 + np.float32(bias) * field
    if noise > 0:
        # Rician magnitude noise: non-negative, like magnitude MRI.
        signal = image[brain]
        sigma = np.float32(noise * levels[_WM])
        n = rng.standard_normal((2, signal.size), dtype=np.float32) * sigma
        image[brain] = np.sqrt((signal + n[0]) ** 2 + n[1] ** 2)
    return image


def _phantom(shape, seed, tumor_radius, noise, bias, axes, scale, sequences=("flair",)):
    """Validate the arguments and return ``(images, labels, tumor_mask)``.

    ``images`` holds one image per name in ``sequences``, in that order; they share
    the anatomy and the bias field but get their own noise draws.
    """
    noise = _check_fraction("noise", noise)
    bias = _check_fraction("bias", bias)
    seed = check_int(seed, "seed", 0)
    half = np.asarray(shape, dtype=float) / 2.0
    axes = np.asarray(axes, dtype=float)
    scale = np.asarray(scale, dtype=float)
    tumor_radius = _check_tumor_radius(tumor_radius, shape, half, axes, scale)

    rng = np.random.default_rng(seed)
    labels, brain, mask, norm = _anatomy(rng, shape, half, axes, scale, tumor_radius)
    field = _wave_field(rng, norm, 4, 1.5)   # drawn even when unused: keeps anatomy fixed
    images = [_render(_SEQUENCE_LEVELS[name], labels, brain, field, noise, bias, rng)
              for name in sequences]
    return images, labels, mask


def make_slice(shape=(240, 240), *, seed=0, tumor_radius=None, noise=0.03, bias=0.25):
    """Make a synthetic FLAIR-like axial brain slice with a tumor.

    Parameters
    ----------
    shape : tuple of 2 int
        ``(H, W)``, each at least 16.
    seed : int
        Seed for ``numpy.random.default_rng``; same arguments give identical output.
    tumor_radius : float, optional
        Nominal whole-tumor radius in pixels; the outline varies by up to 25 %.
        Default ``0.12 * min(H, W)``.
    noise : float
        Standard deviation of the Rician noise relative to white matter, in [0, 1).
    bias : float
        Amplitude of the smooth multiplicative bias field, in [0, 1).

    Returns
    -------
    image : (H, W) ndarray of float32
        Intensities of roughly 0..1000, exactly 0 outside the brain.
    tumor_mask : (H, W) ndarray of bool
        Whole tumor (bright core plus edema rim), strictly inside the brain.

    Raises
    ------
    ValueError
        If an argument is out of range or the tumor cannot fit inside the brain.

    Examples
    --------
    >>> image, mask = make_slice((128, 128), seed=3)
    >>> image.shape, image.dtype, mask.dtype
    ((128, 128), dtype('float32'), dtype('bool'))
    >>> bool(image[mask].mean() > image[(image > 0) & ~mask].mean())
    True
    """
    shape = _check_shape(shape, 2)
    (image,), _, mask = _phantom(shape, seed, tumor_radius, noise, bias,
                                 axes=(0.86, 0.72), scale=(1.0, 1.0))
    return image, mask


def make_volume(shape=(48, 128, 128), *, seed=0, tumor_radius=None, noise=0.03, bias=0.25):
    """Make a synthetic FLAIR-like brain volume with a 3-D tumor.

    The brain is an irregular ellipsoid whose cross-section shrinks toward the first
    and last slices, which may hold little or no brain. The tumor is a spheroid-like
    blob with in-plane radius ``tumor_radius`` and a through-plane radius scaled by
    ``Z / min(Y, X)``, so its mask is non-empty on a range of slices only.

    Parameters
    ----------
    shape : tuple of 3 int
        ``(Z, Y, X)``, each at least 16.
    seed : int
        Seed for ``numpy.random.default_rng``; same arguments give identical output.
    tumor_radius : float, optional
        Nominal in-plane whole-tumor radius in pixels. Default ``0.12 * min(Y, X)``.
    noise : float
        Standard deviation of the Rician noise relative to white matter, in [0, 1).
    bias : float
        Amplitude of the smooth multiplicative bias field, in [0, 1).

    Returns
    -------
    volume : (Z, Y, X) ndarray of float32
        Intensities of roughly 0..1000, exactly 0 outside the brain.
    tumor_mask : (Z, Y, X) ndarray of bool
        Whole tumor (bright core plus edema rim), strictly inside the brain.

    Raises
    ------
    ValueError
        If an argument is out of range or the tumor cannot fit inside the brain.

    Examples
    --------
    >>> volume, mask = make_volume((32, 64, 64), seed=1)
    >>> volume.shape, mask.shape
    ((32, 64, 64), (32, 64, 64))
    >>> bool(mask.any(axis=(1, 2)).all())
    False
    """
    (volume,), _, mask = _volume_phantom(shape, seed, tumor_radius, noise, bias)
    return volume, mask


def _volume_phantom(shape, seed, tumor_radius, noise, bias, sequences=("flair",)):
    """:func:`_phantom` with the 3-D brain geometry of make_volume and make_case."""
    shape = _check_shape(shape, 3)
    z = shape[0] / min(shape[1:])
    return _phantom(shape, seed, tumor_radius, noise, bias,
                    axes=(0.98, 0.86, 0.72), scale=(z, 1.0, 1.0), sequences=sequences)


def make_case(shape=(48, 128, 128), *, seed=0, tumor_radius=None, noise=0.03, bias=0.25):
    """Make a synthetic multi-sequence brain case with BraTS-style tumor labels.

    The anatomy is that of :func:`make_volume` with the same arguments, and the
    FLAIR volume is identical to its output. The tumor core is split into an
    enhancing rim and a necrotic centre (the inner 60 % of the core radius, always
    at least one voxel away from the edema along every axis); the rest of the whole
    tumor is edema. All four sequences share the bias field; each gets its own
    Rician noise, with a standard deviation relative to its white-matter level.

    Parameters
    ----------
    shape : tuple of 3 int
        ``(Z, Y, X)``, each at least 16.
    seed : int
        Seed for ``numpy.random.default_rng``; same arguments give identical output.
    tumor_radius : float, optional
        Nominal in-plane whole-tumor radius in pixels. Default ``0.12 * min(Y, X)``.
    noise : float
        Standard deviation of the Rician noise relative to white matter, in [0, 1).
    bias : float
        Amplitude of the smooth multiplicative bias field, in [0, 1).

    Returns
    -------
    images : dict of str to (Z, Y, X) ndarray of float32
        Volumes ``"flair"``, ``"t1"``, ``"t1ce"`` and ``"t2"``, with intensities of
        roughly 0..1000, exactly 0 outside the brain.
    labels : (Z, Y, X) ndarray of uint8
        BraTS 2018 labels: 0 background and normal brain, 1 necrotic
        (non-enhancing) core, 2 edema, 4 enhancing tumor.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If an argument is out of range or the tumor cannot fit inside the brain.

    See Also
    --------
    make_volume : FLAIR-like volume and whole-tumor mask only.

    Examples
    --------
    >>> images, labels = make_case((32, 64, 64), seed=1)
    >>> sorted(images), images["t1ce"].shape, images["t1ce"].dtype, labels.dtype
    (['flair', 't1', 't1ce', 't2'], (32, 64, 64), dtype('float32'), dtype('uint8'))
    >>> sorted(np.unique(labels).tolist())
    [0, 1, 2, 4]
    >>> volume, mask = make_volume((32, 64, 64), seed=1)
    >>> bool(np.array_equal(labels > 0, mask)), bool(np.array_equal(images["flair"], volume))
    (True, True)
    >>> t1ce, normal = images["t1ce"], (volume > 0) & (labels == 0)
    >>> bool(t1ce[labels == 4].mean() > 1.3 * t1ce[normal].mean())
    True
    """
    names = ("flair", "t1", "t1ce", "t2")
    images, labels, _ = _volume_phantom(shape, seed, tumor_radius, noise, bias,
                                        sequences=names)
    return dict(zip(names, images)), _BRATS_LABELS[labels]
