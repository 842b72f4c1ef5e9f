"""Reading images with SimpleITK and writing outputs atomically."""
import os
import tempfile
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

__all__ = ["Image", "read_image", "write_bytes_atomic", "write_png"]


@dataclass(frozen=True)
class Image:
    """Pixel data and the physical geometry it came with.

    Attributes
    ----------
    array : (H, W) or (Z, Y, X) ndarray
        Scalar pixels, in SimpleITK's axis order.
    spacing, origin : tuple of float
        Per axis, in SimpleITK's (x, y[, z]) order, millimetres.
    direction : tuple of float
        Direction cosines, row-major.
    """

    array: np.ndarray
    spacing: tuple
    origin: tuple
    direction: tuple


def read_image(path):
    """Read a 2-D or 3-D image file that SimpleITK understands.

    NIfTI, MetaImage, NRRD, PNG, TIFF and the other formats of SimpleITK's
    ``ReadImage``. Colour images become grey by averaging the colour channels
    (alpha ignored).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Image

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be read as an image.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"path: expected an image file, got a directory: {path!r}")
    try:
        img = sitk.ReadImage(path)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else ""
        raise ValueError(f"path: cannot read {path!r} as an image ({first})") from None
    array = sitk.GetArrayFromImage(img)
    channels = img.GetNumberOfComponentsPerPixel()
    if channels > 1:
        array = array[..., :3].astype(np.float64).mean(axis=-1)
    return Image(array=array, spacing=img.GetSpacing(), origin=img.GetOrigin(),
                 direction=img.GetDirection())


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A failure or an interruption leaves no partial ``path`` behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_png(path, array):
    """Write a (H, W) or (H, W, 3) uint8 array as PNG, atomically.

    Colour arrays are in RGB order.
    """
    import cv2

    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"array: expected a 2-D or (H, W, 3) uint8 array, got "
                         f"{array.dtype} with shape {array.shape}")
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ValueError(f"array: PNG encoding failed for shape {array.shape}")
    write_bytes_atomic(path, buf.tobytes())
