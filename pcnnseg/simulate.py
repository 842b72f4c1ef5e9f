"""Running a PCNN model on an image or a batch: fire-time map and pulse counts."""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import numba
import numpy as np

from kernels import pcnn_batch, pcnn_image
from pcnnseg.models import SPCNN, Model
from pcnnseg.validation import check_n_iter, normalize

__all__ = ["PulseResult", "pulse", "DEFAULT_N_ITER", "RunRecord", "record_runs"]

#: Iterations run when the caller does not say.
DEFAULT_N_ITER = 50

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
    """

    model: object
    n_neurons: int
    n_iter: int
    n_pulses: int


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
        For invalid images (see :func:`pcnnseg.normalize`), models or ``n_iter``.

    Examples
    --------
    >>> from pcnnseg import phantom, pulse
    >>> image, mask = phantom.make_slice()
    >>> result = pulse(image, n_iter=20)
    >>> result.fire_time.shape, result.counts.shape
    ((240, 240), (20,))
    """
    n_iter = check_n_iter(n_iter)
    if model is not None and not isinstance(model, Model):
        raise TypeError("model: expected a PCNN, SPCNN, ICM or SCM instance, "
                        f"got {type(model).__name__}")
    S = normalize(image, value_range=value_range)
    if model is None:
        model = SPCNN._from_stimulus(S)
    params, M, W = model.kernel_params()
    if S.ndim == 2:
        fire_time, counts, spikes = pcnn_image(S, params, M, W, n_iter, bool(return_spikes),
                                               numba.get_num_threads())
    else:
        fire_time, counts, spikes = pcnn_batch(S, params, M, W, n_iter, bool(return_spikes))
    if _recorders:
        record = RunRecord(model=model, n_neurons=int(S.size), n_iter=n_iter,
                           n_pulses=int(counts.sum()))
        for runs in _recorders:
            runs.append(record)
    return PulseResult(fire_time=fire_time, counts=counts,
                       spikes=spikes if return_spikes else None, model=model)
