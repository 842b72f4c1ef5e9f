"""Input checks at the public boundary, and normalisation to the [0, 1] stimulus.

Besides the argument checks, two pairs of helpers keep the numbers and the memory
of the public functions in bounds:

- :func:`rescale` and :func:`unit_scaled` map intensities without overflow or
  underflow, whatever their scale (finite float64 values up to +-1.8e308 and
  denormals down to 5e-324 included);
- :func:`check_memory` refuses, before any allocation, an array planned larger
  than the machine's memory, and :func:`explain_memory_error` turns a
  ``MemoryError`` raised during the work into one that says what input needed it.
"""
from contextlib import contextmanager
import numbers
import os

import numpy as np

__all__ = ["as_real_array", "as_binary_mask", "normalize", "rescale", "unit_scaled",
           "check_int", "check_n_iter", "check_bool", "check_number", "check_spacing",
           "check_memory", "explain_memory_error", "memory_limit", "N_ITER_MAX",
           "DEFAULT_N_ITER"]

#: Largest number of iterations: fire times are int32 in the kernels, and the
#: last iteration's index (``n_iter - 1``) must fit.
N_ITER_MAX = int(np.iinfo(np.int32).max)
#: Iterations a run takes when the caller does not say (:func:`pcnnseg.pulse`,
#: the signatures, ``pcnnseg signature``).
DEFAULT_N_ITER = 50


def as_real_array(image, name="image", ndims=(2, 3)):
    """Return ``image`` as an ndarray after checking dtype, shape and values.

    Parameters
    ----------
    image : array_like
        Real values (bool, integer or floating dtype).
    name : str
        Argument name used in error messages.
    ndims : tuple of int
        Accepted numbers of dimensions.

    Returns
    -------
    ndarray
        The input as an array (no copy when already one).

    Raises
    ------
    TypeError
        For non-real dtypes (complex, strings, objects).
    ValueError
        For a wrong number of dimensions, an empty array, or NaN / inf values.
    """
    arr = np.asarray(image)
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name}: expected a real-valued array (bool, integer or float), "
                        f"got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {want} array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def normalize(image, *, value_range=None):
    """Map intensities linearly onto the [0, 1] stimulus of a PCNN.

    Parameters
    ----------
    image : (H, W) or (B, H, W) array_like
        Any real dtype.
    value_range : (float, float), optional
        Intensities mapped to 0 and 1; values outside are clipped. Default: the
        array's own minimum and maximum (over the whole batch).

    Returns
    -------
    float32 ndarray, C-contiguous, same shape as ``image``
        Computed by :func:`rescale`: no overflow for ranges wider than the
        largest float64 (values near +-1.8e308), no loss among denormals.

    Raises
    ------
    ValueError
        For a constant image without ``value_range`` (no range to map), or an
        invalid ``value_range``; see also :func:`as_real_array`.
    MemoryError
        When the image is too large for the float64 working copy (the message
        gives its shape).

    Examples
    --------
    >>> normalize(np.array([[0, 5], [10, 20]]))
    array([[0.  , 0.25],
           [0.5 , 1.  ]], dtype=float32)
    """
    arr = as_real_array(image, "image", ndims=(2, 3))
    if value_range is None:
        lo, hi = float(arr.min()), float(arr.max())
        if hi == lo:
            raise ValueError(f"image: constant image (every value is {lo}) has no intensity "
                             "range to normalise; pass value_range=(low, high)")
    else:
        lo, hi = _check_value_range(value_range)
    # a float64 working copy, then the float32 result
    check_memory(12 * arr.size, f"normalize: an image of shape {arr.shape}")
    with explain_memory_error(f"normalize: an image of shape {arr.shape}"):
        return np.ascontiguousarray(rescale(arr, lo, hi), dtype=np.float32)


def _check_value_range(value_range):
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"value_range: expected two numbers (low, high), got "
                         f"{value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"value_range: expected finite low < high, got ({lo}, {hi})")
    return lo, hi


def rescale(values, lo, hi):
    """``(values - lo) / (hi - lo)`` clipped to [0, 1], computed without overflow.

    When ``hi - lo`` overflows float64 (a range wider than 1.8e308), every term
    is halved first (exact for normal numbers); otherwise the direct formula
    is exact enough, and a value so far outside ``[lo, hi]`` that its
    difference overflows is clipped like any other.

    Parameters
    ----------
    values : array_like of real numbers, finite
    lo, hi : float
        Finite, ``lo < hi``; mapped to 0 and 1.

    Returns
    -------
    float64 ndarray, shape of ``values``, in [0, 1] (no negative zero)

    Examples
    --------
    >>> rescale(np.array([-1.7e308, 0.0, 1.7e308]), -1.7e308, 1.7e308)
    array([0. , 0.5, 1. ])
    """
    lo, hi = float(lo), float(hi)
    with np.errstate(over="ignore"):
        span = hi - lo
        if np.isfinite(span):
            out = np.subtract(values, lo, dtype=np.float64)
            out /= span
        else:
            out = np.multiply(values, 0.5, dtype=np.float64)
            out -= 0.5 * lo
            out /= 0.5 * hi - 0.5 * lo
    np.clip(out, 0.0, 1.0, out=out)
    out += 0.0  # -0.0 (from -0.0 - 0.0) becomes 0.0: no negative zero in a stimulus
    return out


def unit_scaled(values):
    """``values`` times the power of two that brings their largest magnitude into [0.5, 1).

    Scaling by a power of two is exact (short of values 2**1074 times smaller
    than the largest, which become 0), so any scale-invariant statistic
    computed on the result (percentiles, ratios of differences, z-scores) is
    that of ``values``, with no overflow of differences near +-1.8e308 and no
    loss of precision among denormals.

    Parameters
    ----------
    values : array_like of real numbers, finite

    Returns
    -------
    scaled : float64 ndarray, shape of ``values`` (all zeros stay zeros)
    exponent : int
        ``values == np.ldexp(scaled, exponent)``.

    Examples
    --------
    Two denormals (about 1e-322), and values near the float64 maximum:

    >>> unit_scaled(np.array([2.0 ** -1070, -2.0 ** -1072]))
    (array([ 0.5  , -0.125]), -1069)
    >>> unit_scaled(np.array([2.0 ** 1023, -1.5 * 2.0 ** 1022]))
    (array([ 0.5  , -0.375]), 1024)
    """
    out = np.asarray(values, dtype=np.float64)
    top = float(np.max(np.abs(out))) if out.size else 0.0
    if top == 0.0:
        return out.copy(), 0
    exponent = int(np.frexp(top)[1])
    return np.ldexp(out, -exponent), exponent


def check_int(value, name, minimum, maximum=None):
    """Return ``value`` as an int after checking it is an integer in
    ``[minimum, maximum]`` (no upper bound when ``maximum`` is None).

    Raises
    ------
    TypeError
        For a bool or a non-integral value (``2.0`` included).
    ValueError
        For an integer out of range.
    """
    want = (f"an integer >= {minimum}" if maximum is None
            else f"an integer in [{minimum}, {maximum}]")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected {want}, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name}: expected {want}, got {value}")
    return int(value)


def check_bool(value, name):
    """Return ``value`` as a bool after checking it is one (``numpy.bool_`` included).

    A flag given as a string (``"False"``) or a number would otherwise be read
    by its truth value, which is rarely what was meant.

    Raises
    ------
    TypeError
        For anything else.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool (True or False), got "
                        f"{type(value).__name__} {value!r}")
    return bool(value)


def check_number(value, name):
    """Return ``value`` as a float after checking it is a real number (not a bool).

    Range checks are the caller's.

    Raises
    ------
    TypeError
        For a bool or anything that is not a real number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)


def check_share(value, name):
    """Return ``value`` as a float after checking it is a real number in [0, 1].

    Raises
    ------
    TypeError
        For anything that is not a real number.
    ValueError
        Outside [0, 1] (NaN included).
    """
    value = check_number(value, name)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
    return value


def check_n_iter(n_iter):
    """Return ``n_iter`` as an int after checking it is in ``[1, N_ITER_MAX]``.

    The kernels store fire times as int32, so at most ``2**31 - 1``
    iterations; whether that many fit in memory is checked by the caller
    (:func:`check_memory`).

    Raises
    ------
    TypeError
        For a bool or a non-integral value.
    ValueError
        For an integer out of range.
    """
    return check_int(n_iter, "n_iter", 1, N_ITER_MAX)


def as_binary_mask(mask, name="mask", ndims=(2, 3)):
    """Return ``mask`` as a bool ndarray after checking dtype, shape and values.

    Parameters
    ----------
    mask : array_like
        A bool array, or a real array holding only 0 and 1.
    name : str
        Argument name used in error messages.
    ndims : tuple of int
        Accepted numbers of dimensions.

    Raises
    ------
    TypeError
        For non-real dtypes.
    ValueError
        For a wrong number of dimensions, an empty array, or values other than
        0 and 1 (NaN included).
    """
    arr = np.asarray(mask)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a binary mask (bool array, or a real array "
                        f"holding only 0 and 1), got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {want} array, got {arr.ndim}-D with "
                         f"shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        return arr
    is_one = arr == 1
    if not np.all(is_one | (arr == 0)):
        bad = arr[~(is_one | (arr == 0))]
        raise ValueError(f"{name}: expected a binary mask with values 0 and 1 only, "
                         f"found {bad.size} other value(s), e.g. {bad.flat[0]!r}")
    return is_one


def check_spacing(spacing):
    """Return ``spacing`` as three floats after checking they are positive and finite.

    Parameters
    ----------
    spacing : sequence of 3 numbers
        Voxel size along (Z, Y, X), millimetres.

    Raises
    ------
    TypeError
        For something that is not a sequence of real numbers.
    ValueError
        For a length other than 3, or a value that is not positive and finite.
    """
    try:
        values = tuple(spacing)
    except TypeError:
        raise TypeError(f"spacing: expected three numbers (z, y, x), got "
                        f"{type(spacing).__name__}") from None
    if len(values) != 3:
        raise ValueError(f"spacing: expected three numbers (z, y, x), got {len(values)}")
    values = tuple(check_number(v, "spacing") for v in values)
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing: expected positive finite millimetres, got {values}")
    return values


# ------------------------------------------------------------------------- memory


def memory_limit():
    """Bytes of physical memory of this machine, or None where the system does not say.

    The bound of :func:`check_memory`: a single run needing more than the whole
    memory cannot succeed.
    """
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    if pages <= 0 or page_size <= 0:
        return None
    return int(pages) * int(page_size)


def _format_bytes(n):
    """``n`` bytes in binary units, e.g. ``'1.5 GiB'``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024.0:
            return f"{n:.3g} {unit}"
        n /= 1024.0
    return f"{n:.3g} EiB"


class _ExplainedMemoryError(MemoryError):
    """A MemoryError whose message already names the input (not wrapped twice)."""


def check_memory(nbytes, what):
    """Raise a clear MemoryError when a planned allocation exceeds the machine's memory.

    Called with the size of what a function is about to allocate, before it
    allocates anything.

    Parameters
    ----------
    nbytes : int
        Planned bytes (Python ints do not overflow).
    what : str
        The function and input, e.g. ``"pulse: an image of shape (240, 240)"``.

    Raises
    ------
    MemoryError
        When ``nbytes`` exceeds :func:`memory_limit`.
    """
    limit = memory_limit()
    if limit is not None and nbytes > limit:
        raise _ExplainedMemoryError(f"{what} needs about {_format_bytes(nbytes)}, more than the "
                          f"{_format_bytes(limit)} of memory of this machine")


@contextmanager
def explain_memory_error(what):
    """Re-raise a MemoryError raised in the block, saying what input needed the memory.

    NumPy's message (``Unable to allocate 8.00 GiB for an array with shape
    ...``) or Numba's (``Allocation failed``) says nothing of the input that
    caused it; this one does.

    Parameters
    ----------
    what : str
        The function and input, e.g. ``"pulse: an image of shape (240, 240)"``.
    """
    try:
        yield
    except _ExplainedMemoryError:
        raise
    except MemoryError as err:
        detail = str(err) or "allocation failed"
        raise _ExplainedMemoryError(f"{what} ran out of memory ({detail}); try a smaller "
                                    f"input") from None
