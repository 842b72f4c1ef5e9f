"""Boxes ``(x, y, w, h)`` in pixels: overlap, the box of a mask's largest component, margins."""
import numpy as np
from scipy import ndimage as ndi

from pcnnseg.validation import as_binary_mask

__all__ = ["box_iou", "largest_component_box", "grow_box"]


def _check_box(box, name):
    try:
        values = [int(v) for v in box]
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected (x, y, w, h) integers, got {box!r}") from None
    if len(values) != 4 or any(v != b for v, b in zip(values, box)):
        raise ValueError(f"{name}: expected four integers (x, y, w, h), got {box!r}")
    if values[2] < 1 or values[3] < 1:
        raise ValueError(f"{name}: expected a width and height >= 1, got {box!r}")
    return values


def box_iou(a, b):
    """Intersection over union of two boxes.

    Parameters
    ----------
    a, b : (x, y, w, h) integers
        Box ``(x, y, w, h)`` covers columns ``x..x+w-1`` and rows ``y..y+h-1``.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> box_iou((0, 0, 10, 10), (5, 0, 10, 10))
    0.3333333333333333
    """
    ax, ay, aw, ah = _check_box(a, "a")
    bx, by, bw, bh = _check_box(b, "b")
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def largest_component_box(mask):
    """Bounding box of the largest 8-connected component of a 2-D mask.

    Parameters
    ----------
    mask : (H, W) bool array_like

    Returns
    -------
    (x, y, w, h) tuple of int, or None for an empty mask
        Of equal-sized largest components, the first in raster order.

    Examples
    --------
    >>> m = np.zeros((6, 8), bool); m[1:3, 1:3] = True; m[3:6, 4:8] = True
    >>> largest_component_box(m)
    (4, 3, 4, 3)
    """
    m = as_binary_mask(mask, "mask", ndims=(2,))
    labels, n = ndi.label(m, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    ys, xs = np.nonzero(labels == int(np.argmax(sizes)) + 1)
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1))


def grow_box(box, margin, shape):
    """A box grown by a margin on every side, clipped to the image.

    Parameters
    ----------
    box : (x, y, w, h) ints
    margin : (int, int)
        Pixels added left and right (``mx``), above and below (``my``), >= 0.
    shape : (int, int)
        The image's (H, W).

    Returns
    -------
    (x, y, w, h) tuple of int
    """
    x, y, w, h = _check_box(box, "box")
    mx, my = (int(m) for m in margin)
    if mx < 0 or my < 0:
        raise ValueError(f"margin: expected pixels >= 0, got {tuple(margin)}")
    height, width = shape
    x0, y0 = max(x - mx, 0), max(y - my, 0)
    x1, y1 = min(x + w + mx, width), min(y + h + my, height)
    return (x0, y0, x1 - x0, y1 - y0)
