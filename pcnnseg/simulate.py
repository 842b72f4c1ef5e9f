"""Running a PCNN model on an image or a batch: fire-time map and pulse counts."""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import numba
import numpy as np

from pcnnseg_kernels import pcnn_batch, pcnn_image, pcnn_volume
from pcnnseg.models import SPCNN, Model
from pcnnseg.validation import (DEFAULT_N_ITER, as_real_array, check_bool, check_memory,
                                check_n_iter, check_spacing, explain_memory_error, normalize)

__all__ = ["PulseResult", "pulse", "pulse_volume", "volume_weights", "DEFAULT_N_ITER",
           "RunRecord", "record_runs"]

# Bytes per pixel of the kernels' state (feeding, linking, activity, threshold,
# two pulse maps, fire time; 4 bytes each): the planned size of a run.
_STATE_BYTES = 28

@dataclass(frozen=True)
class PulseResult:
    """Outputs of a PCNN run.

    Attributes
    ----------
    fire_time : (H, W) or (B, H, W) int32 ndarray
        First iteration (0-based) at which each pixel pulsed; -1 if it never did.
    counts : (N,) or (B, N) int64 ndarray
        Pulses per iteration, the time signature G (Johnson 1994).
    spikes : (N, H, W) or (B, N, H, W) bool ndarray or None
        The pulse stack, when asked for.
    model : PCNN, SPCNN, ICM or SCM
        The model that ran (useful when it was set from the image).
    """

    fire_time: np.ndarray
    counts: np.ndarray
    spikes: Optional[np.ndarray]
    model: object


@dataclass(frozen=True)
class RunRecord:
    """What one :func:`pulse` call ran, for operation counts (:mod:`pcnnseg.energy`).

    Attributes
    ----------
    model : PCNN, SPCNN, ICM or SCM
    n_neurons : int
        Pixels of the input (all images of a batch).
    n_iter : int
    n_pulses : int
        Pulses over all iterations and images.
    weights : (M, W) pair of (3, 3, 3) ndarrays, or None
        The synaptic weights a volume run used (:func:`pulse_volume`); None for
        the model's own 3x3 weights.
    """

    model: object
    n_neurons: int
    n_iter: int
    n_pulses: int
    weights: Optional[tuple] = None


# Lists that record_runs() blocks are filling; pulse() appends to each.
_recorders = []


@contextmanager
def record_runs():
    """Record every :func:`pulse` call made inside the ``with`` block.

    Yields
    ------
    list of RunRecord
        Filled as the block runs; nested blocks each see the calls made inside
        them.

    Examples
    --------
    >>> import numpy as np
    >>> with record_runs() as runs:
    ...     _ = pulse(np.eye(8), n_iter=5)
    >>> runs[0].n_neurons, runs[0].n_iter
    (64, 5)
    """
    runs = []
    _recorders.append(runs)
    try:
        yield runs
    finally:
        _recorders.remove(runs)


def pulse(image, model=None, *, n_iter=DEFAULT_N_ITER, return_spikes=False,
          value_range=None):
    """Run a pulse-coupled neural network on an image or a batch of images.

    Parameters
    ----------
    image : (H, W) or (B, H, W) array_like
        Any real dtype; normalised to [0, 1] by :func:`pcnnseg.normalize`. A
        3-D array is a batch (or a volume's slices) run by the batch kernel,
        every image with the same model.
    model : PCNN, SPCNN, ICM or SCM, optional
        Default: ``SPCNN`` set from the (whole) normalised input by
        :meth:`SPCNN.from_image`.
    n_iter : int
        Number of iterations N.
    return_spikes : bool
        Also return the (N, H, W) pulse stack (N times the image's memory, as bool).
    value_range : (float, float), optional
        Intensities mapped to 0 and 1; default the input's min and max. Pass the
        same range to compare runs on patches of one image.

    Returns
    -------
    PulseResult

    Raises
    ------
    TypeError, ValueError
        For invalid images (see :func:`pcnnseg.normalize`), models, ``n_iter``
        (an integer in ``[1, 2**31 - 1]``, see
        :func:`pcnnseg.validation.check_n_iter`) or ``return_spikes`` (a bool).
    MemoryError
        When the run needs more memory than the machine has (checked before it
        starts: ``return_spikes`` alone takes ``n_iter`` bytes per pixel), or
        runs out of it; the message gives the image's shape and ``n_iter``.

    Examples
    --------
    >>> from pcnnseg import phantom, pulse
    >>> image, mask = phantom.make_slice()
    >>> result = pulse(image, n_iter=20)
    >>> result.fire_time.shape, result.counts.shape
    ((240, 240), (20,))
    """
    n_iter = check_n_iter(n_iter)
    return_spikes = check_bool(return_spikes, "return_spikes")
    _check_model(model)
    S = normalize(image, value_range=value_range)
    if model is None:
        model = SPCNN._from_stimulus(S)
    params, M, W = model.kernel_params()
    n_bands = numba.get_num_threads()
    what = (f"pulse: an image of shape {S.shape} over n_iter={n_iter} iterations"
            + (" with return_spikes=True" if return_spikes else ""))
    # pulse counts per band (one image) or per image (a batch), and the pulse stack
    rows = n_bands if S.ndim == 2 else S.shape[0]
    check_memory(_STATE_BYTES * S.size + 8 * n_iter * rows
                 + (n_iter * S.size if return_spikes else 0), what)
    with explain_memory_error(what):
        if S.ndim == 2:
            fire_time, counts, spikes = pcnn_image(S, params, M, W, n_iter, return_spikes,
                                                   n_bands)
        else:
            fire_time, counts, spikes = pcnn_batch(S, params, M, W, n_iter, return_spikes)
    _record_run(RunRecord(model=model, n_neurons=int(S.size), n_iter=n_iter,
                          n_pulses=int(counts.sum())))
    return PulseResult(fire_time=fire_time, counts=counts,
                       spikes=spikes if return_spikes else None, model=model)


def _check_model(model):
    if model is not None and not isinstance(model, Model):
        raise TypeError("model: expected a PCNN, SPCNN, ICM or SCM instance, "
                        f"got {type(model).__name__}")


def _record_run(record):
    for runs in _recorders:
        runs.append(record)


def volume_weights(weights, spacing=(1.0, 1.0, 1.0)):
    """3x3x3 synaptic weights for a volume from a model's 3x3 in-plane weights.

    The slice's own plane keeps ``weights``. A neighbour in the slice above or
    below, at offset ``(dz, dy, dx)`` with ``dz = +-1``, gets
    ``w_face (h / d)**2``: ``d`` its distance in millimetres, ``h`` the
    in-plane pixel spacing (the smaller of the two) and ``w_face`` the mean of
    the four edge-adjacent in-plane weights. This is the inverse-square law of
    Chen's weights (1 at one pixel, 1/2 on the diagonal, Chen et al. 2011), so
    with isotropic voxels and Chen's weights every one of the 26 neighbours
    weighs ``1 / d**2``; thick slices weigh less (``h = 1``, 5 mm slices: 1/25
    above and below).

    Parameters
    ----------
    weights : (3, 3) array_like
        In-plane weights, as a model's ``weights`` / ``linking_weights``.
    spacing : (float, float, float)
        Voxel size along (Z, Y, X), millimetres; the reverse of SimpleITK's
        ``GetSpacing()``.

    Returns
    -------
    (3, 3, 3) float32 ndarray

    Raises
    ------
    ValueError
        For weights that are not 3x3, or a spacing that is not three positive
        finite numbers.

    Examples
    --------
    >>> from pcnnseg.models import CHEN_WEIGHTS
    >>> w = volume_weights(CHEN_WEIGHTS, spacing=(1.0, 1.0, 1.0))
    >>> w[0, 1, 1].item(), w[0, 0, 1].item(), round(w[0, 0, 0].item(), 4)
    (1.0, 0.5, 0.3333)
    """
    w2 = np.asarray(weights, dtype=np.float64)
    if w2.shape != (3, 3):
        raise ValueError(f"weights: expected 3x3 in-plane weights, got shape {w2.shape}")
    sz, sy, sx = check_spacing(spacing)
    face = (w2[0, 1] + w2[1, 0] + w2[1, 2] + w2[2, 1]) / 4.0
    h = min(sy, sx)
    w3 = np.zeros((3, 3, 3), dtype=np.float64)
    w3[1] = w2
    for a in (0, 2):
        for b in range(3):
            for c in range(3):
                d2 = sz ** 2 + ((b - 1) * sy) ** 2 + ((c - 1) * sx) ** 2
                w3[a, b, c] = face * h ** 2 / d2
    return w3.astype(np.float32)


def pulse_volume(volume, model=None, *, spacing=(1.0, 1.0, 1.0), n_iter=DEFAULT_N_ITER,
                 value_range=None):
    """Run a PCNN on a volume with linking across slices (26 neighbours).

    Unlike :func:`pulse` on a 3-D array, which runs every slice on its own, a
    pulse here reaches the neighbours in the slices above and below through the
    weights of :func:`volume_weights`, so a region grows in 3-D.

    Parameters
    ----------
    volume : (Z, Y, X) array_like
        Any real dtype; normalised to [0, 1] by :func:`pcnnseg.normalize`.
    model : PCNN, SPCNN, ICM or SCM, optional
        Default: ``SPCNN`` set from the normalised volume. Its 3x3 weights are
        the in-plane weights.
    spacing : (float, float, float)
        Voxel size along (Z, Y, X) in millimetres (the reverse of SimpleITK's
        ``GetSpacing()``); sets the through-plane weights.
    n_iter : int
    value_range : (float, float), optional
        See :func:`pulse`.

    Returns
    -------
    PulseResult
        ``fire_time`` (Z, Y, X), ``counts`` (n_iter,), no spikes.

    Raises
    ------
    TypeError, ValueError
        For an invalid volume (see :func:`pcnnseg.normalize`; it must be 3-D),
        model, spacing or ``n_iter``.
    MemoryError
        As :func:`pulse`.

    Examples
    --------
    >>> import numpy as np
    >>> from pcnnseg.segmentation import intensity_order_model
    >>> v = np.zeros((5, 8, 8)); v[2, 4, 4] = 1.0; v[3] = 0.4
    >>> m = intensity_order_model(beta=2.0)
    >>> r = pulse_volume(v, m, n_iter=25, value_range=(0, 1))

    Alone, a voxel at 0.4 would first pulse at iteration 19; the bright voxel
    pulses at 1 and its neighbour in the next slice follows at once, starting a
    wave across that slice:

    >>> int(r.fire_time[2, 4, 4]), int(r.fire_time[3, 4, 4]), int(r.fire_time[3, 4, 0])
    (1, 2, 6)
    >>> int(pulse_volume(v, m, spacing=(5.0, 1.0, 1.0), n_iter=25).fire_time[3, 4, 4])
    19
    """
    n_iter = check_n_iter(n_iter)
    _check_model(model)
    as_real_array(volume, "volume", ndims=(3,))
    spacing = check_spacing(spacing)
    S = normalize(volume, value_range=value_range)
    if model is None:
        model = SPCNN._from_stimulus(S)
    params, M, W = model.kernel_params()
    M3, W3 = volume_weights(M, spacing), volume_weights(W, spacing)
    what = f"pulse_volume: a volume of shape {S.shape} over n_iter={n_iter} iterations"
    check_memory(_STATE_BYTES * S.size + 8 * n_iter, what)
    with explain_memory_error(what):
        fire_time, counts = pcnn_volume(S, params, M3, W3, n_iter)
    _record_run(RunRecord(model=model, n_neurons=int(S.size), n_iter=n_iter,
                          n_pulses=int(counts.sum()), weights=(M3, W3)))
    return PulseResult(fire_time=fire_time, counts=counts, spikes=None, model=model)
