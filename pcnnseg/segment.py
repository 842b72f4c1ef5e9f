"""Segmentation maps and tumor masks from PCNN fire times.

The model used here is an SPCNN with a positive initial threshold and no
accumulation of internal activity, so the first pulse of a pixel comes in order
of intensity: an isolated pixel of stimulus ``S`` first pulses at the smallest
``k`` with ``S > e0 exp(-alpha_e k)`` (``e0 = 1``). Linking pulls a pixel's
first pulse forward when its neighbours have pulsed (its threshold is divided
by ``1 + beta L``), so a bright region grows into the slightly darker pixels
around it: a hysteresis threshold that the network computes.
"""
import math

import numpy as np
from scipy import ndimage as ndi

from pcnnseg.models import SPCNN
from pcnnseg.preprocess import fill_holes_slicewise, keep_largest_component, nonempty_slices
from pcnnseg.simulate import pulse
from pcnnseg.validation import as_real_array, check_int, check_number

__all__ = ["segment", "segment_tumor", "intensity_order_model", "robust_z"]

# Chosen on the 10 BraTS 2018 cases of ../shared/data (benchmarks/segmentation.py
# reports the figures and a leave-one-out check of these choices).
Z_THRESHOLD = 2.0      # tumor: FLAIR above median + 2 robust SD of the brain
Z_SCALE = 8.0          # robust z mapped onto the stimulus: S = clip(z / 8, 0, 1)
LINKING = 0.05         # beta
ALPHA_E = 0.05         # threshold decay per iteration: fire-time resolution


def intensity_order_model(*, beta=LINKING, alpha_e=ALPHA_E):
    """SPCNN whose first pulses come in order of intensity.

    ``e0 = 1``, no accumulation of internal activity (``alpha_f = 20``, a decay
    of 2e-9), and a threshold step ``v_e = 1000`` so a pixel pulses once in the
    first hundred-odd iterations.

    Parameters
    ----------
    beta : float
        Linking strength.
    alpha_e : float
        Threshold decay constant; an isolated pixel of stimulus ``S`` first
        pulses at iteration ``floor(ln(1 / S) / alpha_e) + 1``.

    Returns
    -------
    SPCNN
    """
    return SPCNN(alpha_f=20.0, beta=beta, v_e=1000.0, alpha_e=alpha_e, e0=1.0)


def first_pulse_iteration(stimulus, alpha_e):
    """Iteration at which an isolated pixel of ``stimulus`` (0 < S <= 1) first pulses
    under :func:`intensity_order_model`: the smallest ``k`` with
    ``S > exp(-alpha_e k)``, that is ``floor(ln(1 / S) / alpha_e) + 1``."""
    return int(math.floor(math.log(1.0 / stimulus) / alpha_e)) + 1


def robust_z(image, mask):
    """``(image - median) / (1.4826 MAD)`` with statistics over ``mask``.

    Raises
    ------
    ValueError
        If ``mask`` is empty or the masked values are (nearly) constant.
    """
    values = image[mask]
    if values.size == 0:
        raise ValueError("brain: no brain voxel (an all-zero image, or an empty brain_mask)")
    median = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - median)))
    if mad == 0.0:
        raise ValueError("flair: brain intensities have no spread (MAD = 0)")
    return (image.astype(np.float32) - np.float32(median)) / np.float32(mad)


def segment(image, *, levels=4, n_iter=60, beta=LINKING, value_range=None):
    """Multi-level segmentation map from the order of first pulses.

    Pixels are labelled by when they first pulse under
    :func:`intensity_order_model`: the ``n_iter`` iterations are cut into
    ``levels`` equal spans, the earliest (brightest) span gets label ``levels``,
    and pixels that never pulse get 0. Since an isolated pixel first pulses at
    ``ln(1 / S) / alpha_e``, equal spans of iterations are equal steps of log
    intensity; linking merges bright regions with their slightly darker rims.

    Parameters
    ----------
    image : (H, W) or (B, H, W) array_like
        Any real dtype, normalised to [0, 1] (see :func:`pcnnseg.normalize`).
    levels : int
        Number of labels besides 0.
    n_iter : int
        Iterations; isolated pixels with ``S <= exp(-alpha_e (n_iter - 1))``
        (about 0.05 by default) never pulse.
    beta : float
        Linking strength.
    value_range : (float, float), optional
        See :func:`pcnnseg.pulse`.

    Returns
    -------
    labels : int ndarray, same shape as ``image``, values in 0..levels

    Examples
    --------
    >>> from pcnnseg import phantom, segment
    >>> image, tumor = phantom.make_slice()
    >>> labels = segment(image, levels=3)
    >>> int(labels[tumor].mean() > labels[(image > 0) & ~tumor].mean())
    1
    """
    levels = check_int(levels, "levels", 1)
    result = pulse(image, intensity_order_model(beta=beta), n_iter=n_iter,
                   value_range=value_range)
    ft = result.fire_time
    labels = np.zeros(ft.shape, dtype=np.int32)
    fired = ft >= 0
    labels[fired] = levels - (ft[fired] * levels) // n_iter
    return labels


def segment_tumor(flair, *, brain_mask=None, z_threshold=Z_THRESHOLD, beta=LINKING,
                  progress=None):
    """Whole-tumor mask of a FLAIR slice or volume, with no training.

    Method (figures in ``benchmarks/results/segmentation.md``):

    1. brain = ``brain_mask`` or the non-zero voxels (skull-stripped input);
    2. robust z-score of FLAIR over the brain (median, 1.4826 MAD): the tumor
       and its edema are hyperintense, and median statistics ignore them;
    3. stimulus ``S = clip(z / 8, 0, 1)`` inside the brain, 0 outside;
    4. the PCNN of :func:`intensity_order_model` runs on every slice with brain
       (linking within the slice) until an isolated pixel at ``z_threshold``
       would pulse; the pixels that have pulsed are the candidates, bright
       regions having grown into their rims through linking;
    5. a morphological opening removes specks, the largest connected component
       (3-D for a volume) is kept, which enforces slice-to-slice consistency,
       and holes are filled slice by slice.

    No bias-field correction is applied: on the BraTS cases N4
    (:func:`pcnnseg.preprocess.bias_correct`) lowered the mean Dice from 0.854 to
    0.637, the fitted field absorbing part of the tumor's hyperintensity. The
    constants (``z_threshold`` 2, ``beta`` 0.05) were chosen on those 10 cases;
    choosing them on 9 and scoring the 10th gives a mean Dice of 0.835.

    Parameters
    ----------
    flair : (H, W) or (Z, Y, X) array_like
        Raw FLAIR intensities, any real dtype.
    brain_mask : bool ndarray of the same shape, optional
        Default: ``flair != 0``.
    z_threshold : float
        Robust z at which an isolated pixel counts as tumor.
    beta : float
        Linking strength.
    progress : callable, optional
        Called with the number of slices processed so far and the total, after
        each chunk of slices (for a progress bar).

    Returns
    -------
    bool ndarray, same shape as ``flair``
        Empty if no pixel passes the threshold.

    Raises
    ------
    TypeError, ValueError
        For invalid input (see :func:`pcnnseg.normalize`), no brain voxel, a
        mask of the wrong shape, or a ``z_threshold`` that is not a number in
        (0, 8).
    """
    flair = as_real_array(flair, "flair", ndims=(2, 3))
    if brain_mask is None:
        brain = flair != 0
    else:
        brain = np.asarray(brain_mask, dtype=bool)
        if brain.shape != flair.shape:
            raise ValueError(f"brain_mask: expected shape {flair.shape} (that of flair), "
                             f"got {brain.shape}")
    if not (math.isfinite(check_number(z_threshold, "z_threshold")) and 0 < z_threshold < Z_SCALE):
        raise ValueError(f"z_threshold: expected a value in (0, {Z_SCALE}), got {z_threshold}")
    z = robust_z(flair, brain)
    S = np.clip(z / np.float32(Z_SCALE), 0.0, 1.0)
    S[~brain] = 0.0
    n_iter = first_pulse_iteration(z_threshold / Z_SCALE, ALPHA_E) + 1
    model = intensity_order_model(beta=beta)
    volume = S if S.ndim == 3 else S[None]
    candidates = np.zeros(volume.shape, dtype=bool)
    slices = nonempty_slices(volume > 0)
    chunk = 16
    for start in range(0, len(slices), chunk):
        idx = slices[start:start + chunk]
        result = pulse(volume[idx], model, n_iter=n_iter, value_range=(0.0, 1.0))
        candidates[idx] = result.fire_time >= 0
        if progress is not None:
            progress(min(start + chunk, len(slices)), len(slices))
    mask = _clean(candidates if S.ndim == 3 else candidates[0])
    return mask


def _clean(candidates):
    """Opening, largest connected component, hole filling per slice.

    The opening is 3-D (6-neighbour cross) for volumes of at least 3 slices: it
    also cuts thin bridges between slices, such as the bright cortical ribbon at
    the top and bottom of a brain, that would otherwise join the tumor's
    component. It removes structures thinner than 3 slices, so thinner volumes
    are opened slice by slice instead.
    """
    structure = ndi.generate_binary_structure(candidates.ndim, 1)
    if candidates.ndim == 3 and candidates.shape[0] < 3:
        structure = ndi.generate_binary_structure(2, 1)[None]
    mask = ndi.binary_opening(candidates, structure=structure)
    return fill_holes_slicewise(keep_largest_component(mask))
