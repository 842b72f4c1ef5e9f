"""Binary morphology by the face-neighbour cross, and hole filling, for masks.

The results equal those of :mod:`scipy.ndimage` (``binary_erosion``,
``binary_dilation`` and ``binary_opening`` with the cross of
``generate_binary_structure(ndim, 1)``, or its in-plane slice, and the default
``border_value=0``; ``binary_fill_holes`` slice by slice), but the cross is
applied as shifted array views (an erosion is the AND of each voxel and its face
neighbours) and holes are found by one labelling of the background around the
mask, which is several times faster on a brain-sized volume than SciPy's loops
over a general structuring element.
"""
import numpy as np
from scipy import ndimage as ndi

__all__ = ["bounding_box", "erode_cross", "dilate_cross", "open_cross", "fill_holes_slicewise"]


def _axes(mask, in_plane):
    """The axes the cross spans: all, or the last two (in-plane) only."""
    return range(mask.ndim - 2, mask.ndim) if in_plane else range(mask.ndim)


def _views(ndim, axis):
    """Index tuples of the part of an array after and before one step along ``axis``."""
    after = tuple(slice(1, None) if d == axis else slice(None) for d in range(ndim))
    before = tuple(slice(None, -1) if d == axis else slice(None) for d in range(ndim))
    return after, before


def _check(mask):
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim not in (2, 3):
        raise TypeError(f"mask: expected a 2-D or 3-D bool array, got {mask.ndim}-D "
                        f"{mask.dtype}")
    return mask


def bounding_box(mask):
    """The smallest box holding every True element of a mask.

    Parameters
    ----------
    mask : bool ndarray, at least 1-D

    Returns
    -------
    tuple of slice, one per axis, or None for an empty mask
        ``mask[box]`` holds all of the mask's True elements.
    """
    mask = np.asarray(mask, dtype=bool)
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _by_cross(mask, in_plane, iterations, erode):
    """Erosion (AND of each voxel and its face neighbours, none beyond the edges)
    or dilation (OR), ``iterations`` times."""
    out = _check(mask).copy()
    for _ in range(iterations):
        source = out.copy()
        for axis in _axes(out, in_plane):
            after, before = _views(out.ndim, axis)
            if erode:
                out[after] &= source[before]
                out[before] &= source[after]
                np.moveaxis(out, axis, 0)[[0, -1]] = False
            else:
                out[after] |= source[before]
                out[before] |= source[after]
    return out


def erode_cross(mask, *, in_plane=False, iterations=1):
    """Erosion by the face-neighbour cross; outside the array counts as background.

    Parameters
    ----------
    mask : (H, W) or (Z, Y, X) bool ndarray
    in_plane : bool
        Use only the neighbours within a slice (the last two axes).
    iterations : int
        Times the erosion is applied (2: the cross of radius 2, a diamond).

    Returns
    -------
    bool ndarray, same shape
    """
    return _by_cross(mask, in_plane, iterations, erode=True)


def dilate_cross(mask, *, in_plane=False, iterations=1):
    """Dilation by the face-neighbour cross (see :func:`erode_cross`).

    Parameters
    ----------
    mask : (H, W) or (Z, Y, X) bool ndarray
    in_plane : bool
    iterations : int

    Returns
    -------
    bool ndarray, same shape
    """
    return _by_cross(mask, in_plane, iterations, erode=False)


def open_cross(mask, *, in_plane=False):
    """Opening (erosion, then dilation) by the face-neighbour cross.

    Parameters
    ----------
    mask : (H, W) or (Z, Y, X) bool ndarray
    in_plane : bool

    Returns
    -------
    bool ndarray, same shape
    """
    return dilate_cross(erode_cross(mask, in_plane=in_plane), in_plane=in_plane)


def fill_holes_slicewise(mask):
    """Fill the holes of a mask in 2-D, slice by slice along axis 0 for a volume.

    A hole is background not joined, through in-plane face neighbours, to the
    edge of its slice. The background is labelled once, within the mask's
    bounding box grown by one pixel in-plane: outside that box every pixel of a
    slice is background joined to its edge.

    Parameters
    ----------
    mask : (H, W) or (Z, Y, X) bool ndarray

    Returns
    -------
    bool ndarray, same shape
    """
    mask = _check(mask)
    out = mask.copy()
    if not mask.any():
        return out
    box = bounding_box(mask)
    box = box[:-2] + tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box[-2:])
    structure = np.zeros((3,) * mask.ndim, dtype=bool)
    structure[(1,) * (mask.ndim - 2)] = ndi.generate_binary_structure(2, 1)
    labels, n = ndi.label(~mask[box], structure)
    is_hole = np.ones(n + 1, dtype=bool)
    is_hole[0] = False
    for edge in (labels[..., 0, :], labels[..., -1, :], labels[..., :, 0], labels[..., :, -1]):
        is_hole[edge] = False
    out[box] |= is_hole[labels]
    return out
