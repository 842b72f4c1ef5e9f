"""Input checks at the public boundary, and normalisation to the [0, 1] stimulus."""
import numbers

import numpy as np

__all__ = ["as_real_array", "as_binary_mask", "normalize", "check_int", "check_n_iter",
           "check_number", "check_spacing"]


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

    Raises
    ------
    ValueError
        For a constant image without ``value_range`` (no range to map), or an
        invalid ``value_range``; see also :func:`as_real_array`.

    Examples
    --------
    >>> normalize(np.array([[0, 5], [10, 20]]))
    array([[0.  , 0.25],
           [0.5 , 1.  ]], dtype=float32)
    """
    arr = as_real_array(image, "image", ndims=(2, 3))
    data = arr.astype(np.float64, copy=False)
    if value_range is None:
        lo, hi = float(data.min()), float(data.max())
        if hi == lo:
            raise ValueError(f"image: constant image (every value is {lo}) has no intensity "
                             "range to normalise; pass value_range=(low, high)")
    else:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ValueError(f"value_range: expected two numbers (low, high), got {value_range!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"value_range: expected finite low < high, got ({lo}, {hi})")
    S = (data - lo) / (hi - lo)
    np.clip(S, 0.0, 1.0, out=S)
    return np.ascontiguousarray(S, dtype=np.float32)


def check_int(value, name, minimum):
    """Return ``value`` as an int after checking it is an integer >= ``minimum``.

    Raises
    ------
    TypeError
        For a bool or a non-integral value (``2.0`` included).
    ValueError
        For an integer below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got "
                        f"{type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


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


def check_n_iter(n_iter):
    """Return ``n_iter`` as an int after checking it is a positive integer."""
    return check_int(n_iter, "n_iter", 1)


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
