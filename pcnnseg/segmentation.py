"""Segmentation maps from PCNN fire times, and the model behind them.

The model used here is the simplified PCNN (SPCNN) of Chen et al. [1]_ with a
positive initial threshold and no accumulation of internal activity, so the
first pulse of a pixel comes in order of intensity: an isolated pixel of
stimulus ``S`` first pulses at the smallest ``k`` with ``S > e0 exp(-alpha_e k)``
(``e0 = 1``). Linking pulls a pixel's first pulse forward when its neighbours
have pulsed (its threshold is divided by ``1 + beta L``), so a bright region
grows into the slightly darker pixels around it: a hysteresis threshold that
the network computes. Its parameters are fixed here (:func:`intensity_order_model`)
rather than set from the image by Chen et al.'s automatic rule
(:meth:`pcnnseg.SPCNN.from_image`), which makes pixels pulse at once and
repeatedly. Tumor masks built on it are in :mod:`pcnnseg.tumor`.

References
----------
.. [1] Y. Chen, S.-K. Park, Y. Ma, R. Ala, "A new automatic parameter setting
   method of a simplified PCNN for image segmentation", IEEE Transactions on
   Neural Networks 22(6):880-892, 2011. doi:10.1109/TNN.2011.2128880
"""
import math

import numpy as np

from pcnnseg.models import SPCNN
from pcnnseg.simulate import pulse
from pcnnseg.validation import N_ITER_MAX, check_int

__all__ = ["segment", "intensity_order_model", "first_pulse_iteration", "ALPHA_E"]

LINKING = 0.05         # default beta of the multi-level map
ALPHA_E = 0.05         # threshold decay per iteration: fire-time resolution


def intensity_order_model(*, beta=LINKING, alpha_e=ALPHA_E):
    """SPCNN (Chen et al. [1]_) whose first pulses come in order of intensity.

    Chen et al.'s equations with fixed parameters instead of their automatic
    setting: ``e0 = 1``, no accumulation of internal activity (``alpha_f = 20``,
    a decay of 2e-9), and a threshold step ``v_e = 1000`` so a pixel pulses once
    in the first hundred-odd iterations.

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

    References
    ----------
    .. [1] Y. Chen, S.-K. Park, Y. Ma, R. Ala, IEEE Transactions on Neural
       Networks 22(6):880-892, 2011. doi:10.1109/TNN.2011.2128880
    """
    return SPCNN(alpha_f=20.0, beta=beta, v_e=1000.0, alpha_e=alpha_e, e0=1.0)


def first_pulse_iteration(stimulus, alpha_e):
    """Iteration at which an isolated pixel of ``stimulus`` (0 < S <= 1) first pulses
    under :func:`intensity_order_model`: the smallest ``k`` with
    ``S > exp(-alpha_e k)``, that is ``floor(ln(1 / S) / alpha_e) + 1``."""
    return int(math.floor(math.log(1.0 / stimulus) / alpha_e)) + 1


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
    levels = check_int(levels, "levels", 1, N_ITER_MAX)   # labels are int32
    result = pulse(image, intensity_order_model(beta=beta), n_iter=n_iter,
                   value_range=value_range)
    ft = result.fire_time
    labels = np.zeros(ft.shape, dtype=np.int32)
    fired = ft >= 0
    # in int64: fire time x levels can pass the int32 range
    labels[fired] = levels - (ft[fired].astype(np.int64) * levels) // n_iter
    return labels
