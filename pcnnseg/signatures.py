"""Time signatures: per-iteration pulse counts and their entropy."""
import numpy as np

from pcnnseg.simulate import DEFAULT_N_ITER, pulse
from pcnnseg.validation import check_bool

__all__ = ["signature", "entropy_signature", "binary_entropy"]


def signature(image, model=None, *, n_iter=DEFAULT_N_ITER, normalize=True,
              value_range=None):
    """Time signature G[n]: the number of pixels pulsing at each iteration.

    Johnson, Appl. Opt. 33(26):6239-6253, 1994, doi:10.1364/AO.33.006239. With
    symmetric synaptic weights the signature is unchanged by 90-degree rotations
    and flips of the image, and by translations of an object inside a zero
    background that stays clear of the border.

    Parameters
    ----------
    image : (H, W) or (B, H, W) array_like
        Any real dtype; see :func:`pcnnseg.pulse`.
    model : PCNN, SPCNN, ICM or SCM, optional
        Default: SPCNN set from the image.
    n_iter : int
    normalize : bool
        Divide by the number of pixels H * W so that patches of different sizes
        compare.
    value_range : (float, float), optional
        See :func:`pcnnseg.pulse`.

    Returns
    -------
    (N,) or (B, N) float64 ndarray

    Examples
    --------
    >>> from pcnnseg import phantom, signature
    >>> image, _ = phantom.make_slice()
    >>> g = signature(image, n_iter=10)
    >>> g.shape, bool(0 < g[0] <= 1)
    ((10,), True)
    """
    normalize = check_bool(normalize, "normalize")
    result = pulse(image, model, n_iter=n_iter, value_range=value_range)
    g = result.counts.astype(np.float64)
    if normalize:
        g /= result.fire_time.shape[-1] * result.fire_time.shape[-2]
    return g


def entropy_signature(image, model=None, *, n_iter=DEFAULT_N_ITER, value_range=None):
    """Entropy of the binary pulse map at each iteration, in bits.

    ``H[n] = -p log2 p - (1 - p) log2 (1 - p)`` with ``p = G[n] / (H W)`` the
    fraction of pixels pulsing; 0 when no pixel or every pixel pulses. This is
    Shannon's entropy (Bell Syst. Tech. J. 27(3):379-423, 1948,
    doi:10.1002/j.1538-7305.1948.tb01338.x) of the binary pulse image, a common
    PCNN image feature.

    Parameters
    ----------
    image, model, n_iter, value_range
        As in :func:`signature`.

    Returns
    -------
    (N,) or (B, N) float64 ndarray, values in [0, 1]
    """
    p = signature(image, model, n_iter=n_iter, normalize=True, value_range=value_range)
    return binary_entropy(p)


def binary_entropy(p):
    """``-p log2 p - (1 - p) log2 (1 - p)``, 0 at ``p`` = 0 and 1.

    Parameters
    ----------
    p : ndarray of float in [0, 1]

    Returns
    -------
    ndarray of float64, same shape
    """
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))
    return np.where((p > 0.0) & (p < 1.0), h, 0.0)
