"""Pictures of masks over slices, for a person to check a result."""
import numpy as np
from skimage.segmentation import find_boundaries

__all__ = ["overlay_slices", "most_masked_slices", "box_picture"]

_RED = np.array([255, 40, 40], dtype=np.uint8)
_GREEN = np.array([40, 220, 40], dtype=np.uint8)


def most_masked_slices(mask, count=3):
    """Indices (ascending) of the ``count`` slices of a (Z, Y, X) mask with most voxels."""
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
    order = np.argsort(-areas, kind="stable")[:count]
    return np.sort(order[areas[order] > 0])


def _grey(image):
    lo, hi = np.percentile(image, [0.5, 99.5])
    scaled = np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    return np.repeat((255 * scaled).astype(np.uint8)[..., None], 3, axis=-1)


def overlay_slices(volume, mask, truth=None, *, count=3):
    """Side-by-side RGB tiles of the slices with most mask, outlines drawn on top.

    Slices are picked by ``mask``, or by ``truth`` when ``mask`` is empty, or the
    middle slice when both are.

    Parameters
    ----------
    volume : (Z, Y, X) or (H, W) ndarray
    mask : bool ndarray, same shape
        Drawn in red.
    truth : bool ndarray, same shape, optional
        Drawn in green.
    count : int
        Number of slices.

    Returns
    -------
    (Y, n * X, 3) uint8 ndarray
    """
    if volume.ndim == 2:
        volume, mask = volume[None], mask[None]
        truth = None if truth is None else truth[None]
    # slices with most mask, or with most truth when the mask is empty
    picks = most_masked_slices(mask if mask.any() or truth is None else truth, count)
    if picks.size == 0:
        picks = np.array([volume.shape[0] // 2])
    tiles = []
    for z in picks:
        tile = _grey(volume[z])
        if truth is not None:
            tile[find_boundaries(truth[z], mode="inner")] = _GREEN
        tile[find_boundaries(mask[z], mode="inner")] = _RED
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def _rectangle(tile, box, colour):
    x, y, w, h = box
    H, W = tile.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w - 1, W - 1), min(y + h - 1, H - 1)
    tile[y0, x0:x1 + 1] = colour
    tile[y1, x0:x1 + 1] = colour
    tile[y0:y1 + 1, x0] = colour
    tile[y0:y1 + 1, x1] = colour


def box_picture(image, box=None, truth_box=None):
    """RGB picture of a slice with a detected box (red) and a true box (green).

    Parameters
    ----------
    image : (H, W) ndarray
    box, truth_box : (x, y, w, h), optional

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    tile = _grey(image)
    if truth_box is not None:
        _rectangle(tile, truth_box, _GREEN)
    if box is not None:
        _rectangle(tile, box, _RED)
    return tile
