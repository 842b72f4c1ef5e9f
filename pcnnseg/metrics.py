"""Segmentation metrics: overlap, sensitivity/specificity and surface distances.

Every function takes a predicted and a ground-truth binary mask of the same shape,
2-D ``(H, W)`` slices or 3-D ``(Z, Y, X)`` volumes. A mask may be a boolean array or
any real array whose values are only 0 and 1.

Definitions (TP, FP, FN, TN are voxel counts of the confusion table)::

    dice        = 2 TP / (2 TP + FP + FN)
    iou         = TP / (TP + FP + FN)              (Jaccard index)
    sensitivity = TP / (TP + FN)                   (recall, true positive rate)
    specificity = TN / (TN + FP)                   (true negative rate)

Surface distance (:func:`hausdorff95`). The *surface* of a mask is the set of its
voxels that have at least one voxel outside the mask among their ``3**ndim - 1``
neighbours (faces, edges and corners), i.e. ``mask & ~binary_erosion(mask, S)`` with
``S`` the full-connectivity ``3 x 3 (x 3)`` structuring element; voxels outside the
array count as background, so a mask touching the array border has a surface
there. Distances are Euclidean between voxel centres, in the unit of ``spacing``
(millimetres for MRI), the voxel size along each array axis. For each surface voxel of
one mask the distance to the nearest surface voxel of the other is taken, in both
directions; the two sets of distances are pooled (concatenated) and the 95th
percentile of the pooled set is the HD95, computed by :func:`numpy.percentile`
with its default linear interpolation. This is the pooled convention used in BraTS
evaluations (as in MedPy's ``hd95``, whose surfaces use face connectivity instead:
results may differ slightly); it is symmetric in its two arguments.

Empty masks (the BraTS conventions):

- both masks empty: ``dice = iou = 1.0`` and ``hausdorff95 = 0.0``;
- exactly one mask empty: ``dice = iou = 0.0`` and ``hausdorff95 = inf``;
- ``truth`` empty: ``sensitivity`` is nan (no positives to find);
- ``truth`` covering every voxel: ``specificity`` is nan (no negatives).

The nan cases hold whatever the prediction is. For slice-wise averages use
:func:`evaluate_slices` and average over the slices that hold tumor, e.g. with
:func:`mean_tumor_slice_dice`.

Spacing order. ``spacing`` is given per *array axis*, in the array's axis order:
``(dz, dy, dx)`` for a ``(Z, Y, X)`` volume as returned by
``SimpleITK.GetArrayFromImage``. ``SimpleITK.Image.GetSpacing()`` returns
``(dx, dy, dz)``, the reverse order: pass ``image.GetSpacing()[::-1]``.

References
----------
.. [1] Dice, L. R. "Measures of the amount of ecologic association between
       species." Ecology 26(3), 1945. doi:10.2307/1932409
.. [2] Huttenlocher, D. P., Klanderman, G. A. and Rucklidge, W. J. "Comparing
       images using the Hausdorff distance." IEEE TPAMI 15(9), 1993.
       doi:10.1109/34.232073
.. [3] Menze, B. H. et al. "The Multimodal Brain Tumor Image Segmentation
       Benchmark (BRATS)." IEEE TMI 34(10), 2015. doi:10.1109/TMI.2014.2377694
"""
import numbers

import numpy as np
from scipy import ndimage as ndi

from pcnnseg.morphology import bounding_box
from pcnnseg.validation import as_binary_mask, unit_scaled

__all__ = [
    "dice",
    "iou",
    "sensitivity",
    "specificity",
    "surface_distances",
    "hausdorff95",
    "hausdorff_distance",
    "brats_regions",
    "convert_brats_labels",
    "evaluate",
    "evaluate_slices",
    "mean_tumor_slice_dice",
    "METRIC_NAMES",
    "BRATS_LABELS",
    "BRATS_LABEL_CONVENTIONS",
]

#: Keys of the dictionaries returned by :func:`evaluate` and :func:`evaluate_slices`.
METRIC_NAMES = ("dice", "iou", "sensitivity", "specificity", "hausdorff95")

#: Label values allowed in a BraTS label map: background, necrotic / non-enhancing
#: core, edema, enhancing tumor.
BRATS_LABELS = (0, 1, 2, 4)

#: Label values of each BraTS convention, in the order background, necrotic /
#: non-enhancing core, edema, enhancing tumor: BraTS 2018-2021 use 4 for the
#: enhancing tumor, BraTS 2023 (BraTS-Africa included) use 3.
BRATS_LABEL_CONVENTIONS = {"2018": BRATS_LABELS, "2023": (0, 1, 2, 3)}

# Regions by label role: 1 core (necrotic), 2 edema, 3 enhancing.
_BRATS_REGIONS = {
    "whole_tumor": (1, 2, 3),
    "tumor_core": (1, 3),
    "enhancing": (3,),
}


# --------------------------------------------------------------------------- checks

def _check_pair(pred, truth, ndims=(2, 3)):
    p = as_binary_mask(pred, "pred", ndims)
    t = as_binary_mask(truth, "truth", ndims)
    if p.shape != t.shape:
        raise ValueError(f"pred, truth: expected masks of the same shape, got pred "
                         f"{p.shape} and truth {t.shape}")
    return p, t


def _check_spacing(spacing, ndim, name="spacing"):
    """Return spacing as a tuple of ``ndim`` positive finite floats."""
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, (numbers.Number, str, bytes)) or np.ndim(spacing) != 1:
        raise ValueError(f"{name}: expected a sequence of {ndim} voxel sizes (one per "
                         f"array axis), got {spacing!r}")
    values = list(spacing)
    if len(values) != ndim:
        raise ValueError(f"{name}: expected {ndim} values (one per array axis), got "
                         f"{len(values)}: {tuple(values)!r}")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}: expected real numbers, got {v!r} of type "
                            f"{type(v).__name__} in {tuple(values)!r}")
        v = float(v)
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name}: expected finite positive voxel sizes, got "
                             f"{tuple(values)!r}")
        out.append(v)
    return tuple(out)


def _check_axis(axis):
    """Return a slicing axis of a volume as 0, 1 or 2."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) \
            or not -3 <= axis < 3:
        raise ValueError(f"axis: expected an integer in [-3, 2], got {axis!r}")
    return int(axis) % 3


def _confusion(p, t):
    """Return (TP, FP, FN, TN) as Python ints for two bool arrays."""
    tp = int(np.count_nonzero(p & t))
    n_p = int(np.count_nonzero(p))
    n_t = int(np.count_nonzero(t))
    fp = n_p - tp
    fn = n_t - tp
    tn = p.size - tp - fp - fn
    return tp, fp, fn, tn


def _dice(tp, fp, fn):
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2.0 * tp / denom


def _iou(tp, fp, fn):
    denom = tp + fp + fn
    return 1.0 if denom == 0 else tp / denom


def _sensitivity(tp, fn):
    denom = tp + fn
    return float("nan") if denom == 0 else tp / denom


def _specificity(tn, fp):
    denom = tn + fp
    return float("nan") if denom == 0 else tn / denom


# ------------------------------------------------------------------ overlap metrics

def dice(pred, truth):
    """Dice similarity coefficient of two binary masks.

    ``2 |P & T| / (|P| + |T|)``, see [1]_.

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Binary masks of the same shape: bool, or real values 0 and 1 only.

    Returns
    -------
    float
        In [0, 1]. 1.0 when both masks are empty; 0.0 when exactly one is.

    Raises
    ------
    TypeError
        For a non-real dtype (complex, string, object).
    ValueError
        For values other than 0 and 1, a number of dimensions other than 2 or 3,
        an empty array, or masks of different shapes.

    References
    ----------
    .. [1] Dice, L. R. Ecology 26(3), 1945. doi:10.2307/1932409

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[:2, :2] = True      # 4 pixels
    >>> b = np.zeros((4, 4), bool); b[:2, :1] = True      # 2 pixels inside a
    >>> round(dice(a, b), 4)                             # 2 * 2 / (4 + 2)
    0.6667
    >>> dice(np.zeros((3, 3)), np.zeros((3, 3)))
    1.0
    """
    p, t = _check_pair(pred, truth)
    tp, fp, fn, _ = _confusion(p, t)
    return _dice(tp, fp, fn)


def iou(pred, truth):
    """Intersection over union (Jaccard index) of two binary masks.

    ``|P & T| / |P | T|``; related to Dice by ``iou = dice / (2 - dice)``.

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Binary masks of the same shape: bool, or real values 0 and 1 only.

    Returns
    -------
    float
        In [0, 1]. 1.0 when both masks are empty; 0.0 when exactly one is.

    Raises
    ------
    TypeError, ValueError
        As :func:`dice`.

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[:2, :2] = True
    >>> b = np.zeros((4, 4), bool); b[:2, :1] = True
    >>> iou(a, b)                                        # 2 / 4
    0.5
    """
    p, t = _check_pair(pred, truth)
    tp, fp, fn, _ = _confusion(p, t)
    return _iou(tp, fp, fn)


def sensitivity(pred, truth):
    """Sensitivity (recall, true positive rate): ``TP / (TP + FN)``.

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Binary masks of the same shape: bool, or real values 0 and 1 only.

    Returns
    -------
    float
        In [0, 1]; nan when ``truth`` is empty (nothing to detect), whatever
        ``pred`` holds.

    Raises
    ------
    TypeError, ValueError
        As :func:`dice`.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 0]])
    >>> pred = np.array([[1, 0, 1, 0]])
    >>> sensitivity(pred, truth)
    0.5
    >>> sensitivity(pred, np.zeros_like(truth))
    nan
    """
    p, t = _check_pair(pred, truth)
    tp, _, fn, _ = _confusion(p, t)
    return _sensitivity(tp, fn)


def specificity(pred, truth):
    """Specificity (true negative rate): ``TN / (TN + FP)``.

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Binary masks of the same shape: bool, or real values 0 and 1 only.

    Returns
    -------
    float
        In [0, 1]; nan when ``truth`` covers every voxel (no negatives), whatever
        ``pred`` holds.

    Raises
    ------
    TypeError, ValueError
        As :func:`dice`.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 0]])
    >>> pred = np.array([[1, 0, 1, 0]])
    >>> specificity(pred, truth)
    0.5
    """
    p, t = _check_pair(pred, truth)
    _, fp, _, tn = _confusion(p, t)
    return _specificity(tn, fp)


# ---------------------------------------------------------------- surface distances

def _surface(mask):
    """Voxels of ``mask`` with a background voxel among their 3**ndim - 1 neighbours."""
    structure = np.ones((3,) * mask.ndim, dtype=bool)
    return mask & ~ndi.binary_erosion(mask, structure=structure, border_value=0)


def _scaled_surface_distances(p, t, spacing):
    """Directed surface distances (pred -> truth, truth -> pred) of two non-empty
    masks, in units of ``2**exponent``: ``(to_t, to_p, exponent)``.

    Works on the bounding box of ``p | t``: every voxel of both masks lies inside
    it, and a mask voxel on a face of the box is at that mask's extreme along the
    axis, so it is a surface voxel in the whole array as in the box; the surfaces,
    hence the distances, are those of the whole array.

    The distance transform squares distances, which overflows for spacings
    near 1e155 and underflows near 1e-160; it runs on the spacing divided by
    the power of two ``2**exponent`` that brings its largest entry into
    [0.5, 1), which is exact (distances scale with the spacing).
    """
    scaled, exponent = unit_scaled(spacing)
    unit = tuple(float(s) for s in scaled)
    box = bounding_box(p | t)
    sp, st = _surface(p[box]), _surface(t[box])
    # distance_transform_edt: distance of each non-zero voxel to the nearest zero
    # voxel, so ~surface gives the distance to the nearest surface voxel.
    to_t = ndi.distance_transform_edt(~st, sampling=unit)[sp]
    to_p = ndi.distance_transform_edt(~sp, sampling=unit)[st]
    return to_t, to_p, exponent


def _unscaled(distance, exponent):
    """``distance * 2**exponent``: inf where that overflows float64."""
    with np.errstate(over="ignore"):
        return np.ldexp(distance, exponent)


def _surface_distances(p, t, spacing):
    """Directed surface distances (pred -> truth, truth -> pred) of two non-empty masks."""
    to_t, to_p, exponent = _scaled_surface_distances(p, t, spacing)
    return _unscaled(to_t, exponent), _unscaled(to_p, exponent)


def surface_distances(pred, truth, *, spacing=None):
    """Distances from each surface voxel of one mask to the other mask's surface.

    The surface of a mask is ``mask & ~binary_erosion(mask, ones((3,) * ndim))``
    with voxels outside the array counted as background (see the module
    docstring).

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Non-empty binary masks of the same shape: bool, or real values 0 and 1.
    spacing : sequence of float, optional
        Voxel size along each *array* axis, in the array's axis order (``(dz, dy,
        dx)`` for a ``(Z, Y, X)`` volume). ``SimpleITK.Image.GetSpacing()`` is in
        ``(x, y, z)`` order: pass ``image.GetSpacing()[::-1]``. Default 1.0 per axis.

    Returns
    -------
    pred_to_truth : (n_pred_surface,) float64 ndarray
        For each surface voxel of ``pred`` (in C order), the Euclidean distance to
        the nearest surface voxel of ``truth``, in units of ``spacing`` (inf
        where that exceeds the largest float64).
    truth_to_pred : (n_truth_surface,) float64 ndarray
        The same from ``truth`` to ``pred``.

    Raises
    ------
    ValueError
        If either mask is empty (no surface), for an invalid ``spacing``, or as
        :func:`dice`.
    TypeError
        As :func:`dice`, or for non-numeric ``spacing`` entries.

    Examples
    --------
    >>> a = np.zeros((5, 5), bool); a[2, 1] = True
    >>> b = np.zeros((5, 5), bool); b[2, 3] = True
    >>> surface_distances(a, b, spacing=(1.0, 0.5))
    (array([1.]), array([1.]))
    """
    p, t = _check_pair(pred, truth)
    spacing = _check_spacing(spacing, p.ndim)
    for name, m in (("pred", p), ("truth", t)):
        if not m.any():
            raise ValueError(f"{name}: the mask is empty, it has no surface to measure "
                             "distances from")
    return _surface_distances(p, t, spacing)


def _hausdorff(p, t, spacing, percentile):
    p_any, t_any = bool(p.any()), bool(t.any())
    if not p_any and not t_any:
        return 0.0
    if not p_any or not t_any:
        return float("inf")
    to_t, to_p, exponent = _scaled_surface_distances(p, t, spacing)
    pooled = np.concatenate([to_t, to_p])
    value = pooled.max() if percentile == 100 else np.percentile(pooled, percentile)
    return float(_unscaled(value, exponent))


def hausdorff_distance(pred, truth, *, spacing=None, percentile=95.0):
    """Percentile of the pooled symmetric surface distances (Hausdorff distance).

    The distances from every surface voxel of ``pred`` to the surface of
    ``truth`` and from every surface voxel of ``truth`` to the surface of ``pred``
    are pooled into one set, and its ``percentile``-th percentile is returned
    (:func:`numpy.percentile`, linear interpolation). ``percentile=100`` is the
    classical (maximum) Hausdorff distance between the two surfaces [1]_;
    ``percentile=95`` is :func:`hausdorff95`.

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Binary masks of the same shape: bool, or real values 0 and 1 only.
    spacing : sequence of float, optional
        Voxel size along each *array* axis, in the array's axis order (``(dz, dy,
        dx)`` for a ``(Z, Y, X)`` volume); ``SimpleITK.Image.GetSpacing()`` is in
        ``(x, y, z)`` order, pass ``GetSpacing()[::-1]``. Default 1.0 per axis.
    percentile : float, optional
        In [0, 100]. Default 95.

    Returns
    -------
    float
        In units of ``spacing`` (millimetres for MRI). 0.0 when both masks are
        empty; inf when exactly one is, or when the distance exceeds the
        largest float64 (spacings near 1e308); never nan.

    Raises
    ------
    TypeError, ValueError
        As :func:`dice`; ValueError also for an invalid ``spacing`` (wrong
        length, non-finite or non-positive values) or ``percentile``.

    References
    ----------
    .. [1] Huttenlocher, D. P. et al. IEEE TPAMI 15(9), 1993.
           doi:10.1109/34.232073

    Examples
    --------
    >>> a = np.zeros((1, 8), bool); a[0, 1:3] = True
    >>> b = np.zeros((1, 8), bool); b[0, 5:7] = True
    >>> hausdorff_distance(a, b, percentile=100)      # from 1 to 5 and from 6 to 2
    4.0
    """
    p, t = _check_pair(pred, truth)
    spacing = _check_spacing(spacing, p.ndim)
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) \
            or not 0 <= float(percentile) <= 100:
        raise ValueError(f"percentile: expected a number in [0, 100], got {percentile!r}")
    return _hausdorff(p, t, spacing, float(percentile))


def hausdorff95(pred, truth, *, spacing=None):
    """95th-percentile symmetric Hausdorff distance between two mask surfaces.

    Definition (BraTS / MedPy ``hd95`` pooled convention): the surface of a mask
    is the set of its voxels that have a background voxel among their
    ``3**ndim - 1`` neighbours (voxels outside the array are background). For each
    surface voxel of ``pred`` take the Euclidean distance to the nearest surface
    voxel of ``truth``, and for each surface voxel of ``truth`` the distance to the
    nearest surface voxel of ``pred``; pool both sets and return their 95th
    percentile (:func:`numpy.percentile`, linear interpolation). The result is
    symmetric in ``pred`` and ``truth``.

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Binary masks of the same shape: bool, or real values 0 and 1 only.
    spacing : sequence of float, optional
        Voxel size in millimetres along each *array* axis, in the array's axis
        order: ``(dz, dy, dx)`` for a ``(Z, Y, X)`` volume, ``(dy, dx)`` for a
        slice. NOTE: ``SimpleITK.Image.GetSpacing()`` returns ``(dx, dy, dz)``;
        pass ``image.GetSpacing()[::-1]``. Default 1.0 per axis (distances in
        voxels).

    Returns
    -------
    float
        Distance in units of ``spacing``. 0.0 when both masks are empty; inf when
        exactly one is empty, or when the distance exceeds the largest float64
        (spacings near 1e308); never nan, whatever the spacing's scale.

    Raises
    ------
    TypeError
        For a non-real mask dtype or non-numeric ``spacing`` entries.
    ValueError
        For values other than 0 and 1, a number of dimensions other than 2 or 3,
        masks of different shapes, or a ``spacing`` of the wrong length or with
        non-finite or non-positive values.

    See Also
    --------
    hausdorff_distance : any percentile, 100 for the maximum.
    surface_distances : the two directed sets of distances.

    Examples
    --------
    Two 2 x 2 squares, one shifted by 3 voxels along the first axis, whose voxels
    are 2 mm apart along that axis:

    >>> a = np.zeros((8, 4), bool); a[1:3, 1:3] = True
    >>> b = np.zeros((8, 4), bool); b[4:6, 1:3] = True
    >>> hausdorff95(a, b)
    3.0
    >>> hausdorff95(a, b, spacing=(2.0, 1.0))
    6.0
    >>> hausdorff95(a, np.zeros_like(a))
    inf
    """
    p, t = _check_pair(pred, truth)
    spacing = _check_spacing(spacing, p.ndim)
    return _hausdorff(p, t, spacing, 95.0)


# --------------------------------------------------------------------------- BraTS

def _check_convention(convention, name="convention"):
    if convention not in BRATS_LABEL_CONVENTIONS:
        raise ValueError(f"{name}: expected one of {sorted(BRATS_LABEL_CONVENTIONS)}, "
                         f"got {convention!r}")
    return BRATS_LABEL_CONVENTIONS[convention]


def _in_values(arr, values):
    """``np.isin(arr, values)``; for the few values of a label map by comparing
    with each, which NumPy vectorises: on a BraTS volume about ten times faster
    than np.isin or a lookup table."""
    values = list(values)
    if len(values) > 8:
        return np.isin(arr, values)
    found = np.zeros(arr.shape, dtype=bool)
    for value in values:
        found |= arr == value
    return found


def _check_label_map(labels, convention, name="convention"):
    allowed = _check_convention(convention, name)
    arr = np.asarray(labels)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"labels: expected an integer label map, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"labels: expected a 2-D or 3-D array, got {arr.ndim}-D with "
                         f"shape {arr.shape}")
    valid = _in_values(arr, allowed)
    if not valid.all():
        bad = np.unique(arr[~valid])
        shown = ", ".join(repr(v.item()) for v in bad[:10])
        expected = "{" + ", ".join(str(v) for v in allowed) + "}"
        raise ValueError(f"labels: expected values in {expected} (BraTS {convention} "
                         f"convention), found {shown}")
    return arr, allowed


def brats_regions(labels, *, convention="2018"):
    """Split a BraTS label map into the three evaluated tumor regions.

    BraTS labels [1]_: 0 background, 1 necrotic and non-enhancing tumor core, 2
    peritumoral edema, and the enhancing tumor as 4 (2018-2021) or 3 (2023 [2]_).

    Parameters
    ----------
    labels : (H, W) or (Z, Y, X) array_like of int
        Label map with values in {0, 1, 2, 4} (or {0, 1, 2, 3} for the 2023
        convention). Floating arrays holding those integer values are accepted.
    convention : {"2018", "2023"}
        Label convention of ``labels``; :func:`pcnnseg.io.load_brats_case`
        returns 2018 labels whatever the files use.

    Returns
    -------
    dict of str to bool ndarray
        ``"whole_tumor"`` (every tumor label), ``"tumor_core"`` (necrotic core
        and enhancing tumor) and ``"enhancing"``, each of the shape of ``labels``.

    Raises
    ------
    TypeError
        For a non-real dtype.
    ValueError
        For a value outside the convention's labels (e.g. label 3 in a 2018 map:
        some older BraTS releases used it for non-enhancing tumor; relabel it to 1
        first), an unknown convention, or a number of dimensions other than 2 or 3.

    References
    ----------
    .. [1] Menze, B. H. et al. IEEE TMI 34(10), 2015.
           doi:10.1109/TMI.2014.2377694
    .. [2] Adewole, M. et al. The BraTS 2023 challenge: glioma segmentation in
           Sub-Saharan Africa patient population (BraTS-Africa). arXiv:2305.19369

    Examples
    --------
    >>> regions = brats_regions(np.array([[0, 1, 2, 4]]))
    >>> regions["tumor_core"]
    array([[False,  True, False,  True]])
    >>> brats_regions(np.array([[0, 1, 2, 3]]), convention="2023")["enhancing"]
    array([[False, False, False,  True]])
    """
    arr, allowed = _check_label_map(labels, convention)
    return {name: _in_values(arr, [allowed[r] for r in roles])
            for name, roles in _BRATS_REGIONS.items()}


def convert_brats_labels(labels, *, source, target):
    """Relabel a BraTS label map from one convention to another.

    Parameters
    ----------
    labels : (H, W) or (Z, Y, X) array_like of int
        Values of the ``source`` convention (see :data:`BRATS_LABEL_CONVENTIONS`).
    source, target : {"2018", "2023"}

    Returns
    -------
    uint8 ndarray, shape of ``labels``

    Raises
    ------
    TypeError, ValueError
        As :func:`brats_regions` for ``labels`` in the ``source`` convention, or
        for an unknown convention.

    Examples
    --------
    >>> convert_brats_labels(np.array([[0, 1, 2, 3]]), source="2023", target="2018")
    array([[0, 1, 2, 4]], dtype=uint8)
    """
    arr, allowed = _check_label_map(labels, source, "source")
    to = _check_convention(target, "target")
    lut = np.zeros(max(allowed) + 1, dtype=np.uint8)
    lut[list(allowed)] = to
    return lut[arr.astype(np.intp)]


# ------------------------------------------------------------------------ summaries

def _all_metrics(p, t, spacing):
    tp, fp, fn, tn = _confusion(p, t)
    return {
        "dice": _dice(tp, fp, fn),
        "iou": _iou(tp, fp, fn),
        "sensitivity": _sensitivity(tp, fn),
        "specificity": _specificity(tn, fp),
        "hausdorff95": _hausdorff(p, t, spacing, 95.0),
    }


def evaluate(pred, truth, *, spacing=None):
    """All five metrics of one prediction against its ground truth.

    Parameters
    ----------
    pred, truth : (H, W) or (Z, Y, X) array_like
        Binary masks of the same shape: bool, or real values 0 and 1 only.
    spacing : sequence of float, optional
        Voxel size per array axis, in the array's axis order (reverse
        ``SimpleITK.Image.GetSpacing()``); used by the HD95 only. Default 1.0.

    Returns
    -------
    dict of str to float
        Keys :data:`METRIC_NAMES`: ``"dice"``, ``"iou"``, ``"sensitivity"``,
        ``"specificity"``, ``"hausdorff95"``, with the empty-mask conventions of
        the individual functions.

    Raises
    ------
    TypeError, ValueError
        As :func:`hausdorff95`.

    Examples
    --------
    >>> a = np.zeros((6, 6), bool); a[1:3, 1:3] = True
    >>> b = np.zeros((6, 6), bool); b[1:3, 2:4] = True
    >>> {k: round(v, 3) for k, v in evaluate(a, b).items()}
    {'dice': 0.5, 'iou': 0.333, 'sensitivity': 0.5, 'specificity': 0.938, 'hausdorff95': 1.0}
    """
    p, t = _check_pair(pred, truth)
    spacing = _check_spacing(spacing, p.ndim)
    return _all_metrics(p, t, spacing)


def evaluate_slices(pred, truth, *, spacing=None, axis=0):
    """The five metrics on each 2-D slice of two volumes.

    Parameters
    ----------
    pred, truth : (Z, Y, X) array_like
        Binary volumes of the same shape: bool, or real values 0 and 1 only.
    spacing : sequence of 3 floats, optional
        Voxel size per array axis of the *volume*, in its axis order (reverse
        ``SimpleITK.Image.GetSpacing()``). The HD95 of a slice uses the two
        entries of the in-plane axes (``axis`` removed). Default 1.0.
    axis : int, optional
        Axis along which the volume is sliced; default 0 (axial slices of a
        ``(Z, Y, X)`` volume). Negative values count from the end.

    Returns
    -------
    dict of str to (n_slices,) ndarray
        One float64 array per name in :data:`METRIC_NAMES`, with the empty-mask
        conventions of the individual functions per slice (a slice empty in both
        gives dice 1.0, HD95 0.0, sensitivity nan), plus ``"truth_nonempty"``, a
        bool array that is True on tumor-bearing slices (``truth`` non-empty).
        The mean Dice over tumor-bearing slices is
        ``res["dice"][res["truth_nonempty"]].mean()``, which
        :func:`mean_tumor_slice_dice` computes directly.

    Raises
    ------
    TypeError, ValueError
        As :func:`hausdorff95` (volumes must be 3-D); ValueError for an ``axis``
        out of range.

    Examples
    --------
    >>> t = np.zeros((3, 4, 4), bool); t[1, 1:3, 1:3] = True
    >>> p = np.zeros((3, 4, 4), bool); p[1, 1:3, 1:2] = True; p[2, 0, 0] = True
    >>> res = evaluate_slices(p, t)
    >>> res["dice"]
    array([1.        , 0.66666667, 0.        ])
    >>> float(res["dice"][res["truth_nonempty"]].mean())
    0.6666666666666666
    """
    p, t = _check_pair(pred, truth, ndims=(3,))
    spacing = _check_spacing(spacing, 3)
    axis = _check_axis(axis)
    plane = tuple(s for i, s in enumerate(spacing) if i != axis)
    p = np.moveaxis(p, axis, 0)
    t = np.moveaxis(t, axis, 0)
    n = p.shape[0]
    out = {name: np.empty(n, dtype=np.float64) for name in METRIC_NAMES}
    for k in range(n):
        for name, value in _all_metrics(p[k], t[k], plane).items():
            out[name][k] = value
    out["truth_nonempty"] = t.reshape(n, -1).any(axis=1)
    return out


def mean_tumor_slice_dice(pred, truth, *, axis=0):
    """Mean Dice over the tumor-bearing slices of a volume.

    A slice is tumor-bearing when ``truth`` is non-empty on it; slices without
    tumor are left out whatever ``pred`` holds there (false positives on them do
    not count), as in slice-wise evaluations that skip empty slices.

    Parameters
    ----------
    pred, truth : (Z, Y, X) array_like
        Binary volumes of the same shape: bool, or real values 0 and 1 only.
    axis : int, optional
        Slicing axis, default 0.

    Returns
    -------
    float
        The mean of the per-slice Dice over tumor-bearing slices; nan when
        ``truth`` is empty everywhere.

    Raises
    ------
    TypeError, ValueError
        As :func:`evaluate_slices`.

    Examples
    --------
    >>> t = np.zeros((3, 4, 4), bool); t[1, 1:3, 1:3] = True
    >>> p = np.zeros((3, 4, 4), bool); p[1, 1:3, 1:2] = True; p[2, 0, 0] = True
    >>> round(mean_tumor_slice_dice(p, t), 4)
    0.6667
    """
    p, t = _check_pair(pred, truth, ndims=(3,))
    axis = _check_axis(axis)
    p = np.moveaxis(p, axis, 0)
    t = np.moveaxis(t, axis, 0)
    n = p.shape[0]
    p2, t2 = p.reshape(n, -1), t.reshape(n, -1)
    n_t = np.count_nonzero(t2, axis=1)
    keep = n_t > 0
    if not keep.any():
        return float("nan")
    tp = np.count_nonzero(p2[keep] & t2[keep], axis=1)
    n_p = np.count_nonzero(p2[keep], axis=1)
    return float(np.mean(2.0 * tp / (n_p + n_t[keep])))
