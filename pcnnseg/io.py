"""Reading images with SimpleITK, writing outputs atomically, and BraTS case folders.

Arrays keep SimpleITK's axis order: a slice is ``(H, W)`` and a volume ``(Z, Y, X)``;
geometry (spacing, origin, direction) stays in SimpleITK's ``(x, y[, z])`` order.

Every writer here goes through a temporary file in the target's own folder and a
final :func:`os.replace`, so a reader never sees a half-written file and a failure
leaves neither the target nor the temporary file behind.
"""
import os
import pathlib
import secrets
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from pcnnseg.validation import as_binary_mask

__all__ = ["Image", "read_image", "write_bytes_atomic", "write_png", "write_mask",
           "write_label_map", "check_same_grid", "SEQUENCE_ALIASES", "case_convention",
           "BratsCase", "BRATS_SEQUENCES", "BRATS_LAYOUTS", "find_brats_cases",
           "load_brats_case"]

#: The four BraTS sequences, in the order the challenge lists them.
BRATS_SEQUENCES = ("flair", "t1", "t1ce", "t2")

# Formats whose header names a separate data file: renaming the header after the
# write would leave it pointing at the temporary data file, so they cannot be
# written atomically with one rename.
_TWO_FILE_SUFFIXES = (".mhd", ".hdr", ".img", ".hdr.gz", ".img.gz")


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


def _last_line(err):
    text = str(err).strip()
    return text.splitlines()[-1] if text else ""


def _from_sitk(img):
    array = sitk.GetArrayFromImage(img)
    if img.GetNumberOfComponentsPerPixel() > 1:
        array = array[..., :3].astype(np.float64).mean(axis=-1)
    return Image(array=array, spacing=tuple(img.GetSpacing()), origin=tuple(img.GetOrigin()),
                 direction=tuple(img.GetDirection()))


def _read_dicom_series(path, series_id):
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(path)
    except RuntimeError as err:
        raise ValueError(f"path: cannot scan directory {path!r} for DICOM series "
                         f"({_last_line(err)})") from None
    ids = tuple(ids)
    if not ids:
        raise ValueError(f"path: expected an image file or a directory holding a DICOM "
                         f"series, got a directory with no DICOM series: {path!r}")
    if series_id is None:
        if len(ids) > 1:
            raise ValueError(f"path: directory {path!r} holds {len(ids)} DICOM series "
                             f"{list(ids)}; pick one with series_id=")
        series_id = ids[0]
    elif series_id not in ids:
        raise ValueError(f"series_id: expected one of {list(ids)} in {path!r}, "
                         f"got {series_id!r}")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path, series_id)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        img = reader.Execute()
    except RuntimeError as err:
        raise ValueError(f"path: cannot read DICOM series {series_id!r} in {path!r} "
                         f"({_last_line(err)})") from None
    return _from_sitk(img)


def read_image(path, *, series_id=None):
    """Read a 2-D or 3-D image file, or a DICOM series directory.

    Files: NIfTI, MetaImage, NRRD, PNG, TIFF, single DICOM files and the other
    formats of SimpleITK's ``ReadImage``. Colour images become grey by averaging
    the colour channels (alpha ignored). Directories: the DICOM series in it,
    read with ``ImageSeriesReader`` in the slice order GDCM sorts them into
    (by position along the slice normal), so the z spacing comes from the
    slice positions, not from the SliceThickness tag.

    Parameters
    ----------
    path : str or os.PathLike
        An image file, or a directory holding one DICOM series.
    series_id : str, optional
        Series Instance UID to read when the directory holds several series.
        Ignored for files.

    Returns
    -------
    Image
        ``array`` is ``(H, W)`` or ``(Z, Y, X)`` in the file's pixel type.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be read as an image, or the directory holds no DICOM
        series (or several and ``series_id`` does not pick one).

    Examples
    --------
    >>> import tempfile, SimpleITK as sitk
    >>> folder = tempfile.mkdtemp()
    >>> sitk.WriteImage(sitk.Image(4, 3, sitk.sitkUInt8), folder + "/a.mha")
    >>> read_image(folder + "/a.mha").array.shape
    (3, 4)
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file: {path!r}")
    if os.path.isdir(path):
        return _read_dicom_series(path, series_id)
    try:
        img = sitk.ReadImage(path)
    except RuntimeError as err:
        raise ValueError(f"path: cannot read {path!r} as an image ({_last_line(err)})") from None
    return _from_sitk(img)


def _reserve_temp(path):
    """Create an empty, uniquely named file next to ``path``; return its name.

    The name ends with ``path``'s own file name, so writers that choose a format
    from the extension (SimpleITK) pick the right one. ``O_EXCL`` makes the name
    ours; mode 0o666 lets the process umask decide the final permissions, as for
    any newly created file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: folder does not exist: {folder!r}")
    name = os.path.basename(path)
    while True:
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(6)}-{name}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        return fd, tmp


def _discard(tmp):
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A failure or an interruption leaves no partial ``path`` behind, and an
    existing ``path`` stays as it was.
    """
    path = os.fspath(path)
    fd, tmp = _reserve_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def write_png(path, array):
    """Write a (H, W) or (H, W, 3) uint8 array as PNG, atomically.

    Colour arrays are in RGB order.
    """
    import cv2

    array = np.asarray(array)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3
                                                         and array.shape[2] == 3)):
        raise ValueError(f"array: expected a (H, W) or (H, W, 3) uint8 array, got "
                         f"{array.dtype} with shape {array.shape}")
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ValueError(f"array: PNG encoding failed for shape {array.shape}")
    write_bytes_atomic(path, buf.tobytes())


def _write_sitk_atomic(path, img):
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(_TWO_FILE_SUFFIXES):
        raise ValueError(f"path: expected a single-file format (.nii.gz, .nii, .mha, "
                         f".nrrd), got {path!r}, whose header names a separate data file")
    fd, tmp = _reserve_temp(path)
    try:
        os.close(fd)
        try:
            sitk.WriteImage(img, tmp, True)  # useCompression: masks shrink a lot
        except RuntimeError as err:
            raise ValueError(f"path: cannot write {path!r} ({_last_line(err)})") from None
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def _write_with_geometry(path, array, like):
    img = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    try:
        img.SetSpacing(tuple(float(s) for s in like.spacing))
        img.SetOrigin(tuple(float(o) for o in like.origin))
        img.SetDirection(tuple(float(d) for d in like.direction))
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"like: invalid geometry for a {array.ndim}-D image "
                         f"({_last_line(err)})") from None
    _write_sitk_atomic(path, img)


def _check_like(like, arr, name):
    if not isinstance(like, Image):
        raise TypeError(f"like: expected a pcnnseg.io.Image, got {type(like).__name__}")
    shape = np.shape(like.array)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected the shape of like.array {shape}, got {arr.shape}")
    if len(like.spacing) != arr.ndim:
        raise ValueError(f"{name}: expected a 2-D or 3-D array matching like's "
                         f"{len(like.spacing)}-D geometry, got shape {arr.shape}")


def write_mask(path, mask, like):
    """Write a binary mask as uint8 with the geometry of ``like``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; the extension picks the format (``.nii.gz``, ``.nii``,
        ``.mha``, ``.nrrd``, ...). Two-file formats (``.mhd``, ``.hdr``/``.img``)
        are refused because one rename cannot move both files atomically.
    mask : (H, W) or (Z, Y, X) array_like of bool, or of 0 and 1
        Same shape as ``like.array``. Written as 0/1 uint8.
    like : Image
        Supplies spacing, origin and direction, typically the image that was
        segmented, so the mask overlays it in any viewer.

    Raises
    ------
    TypeError
        If ``like`` is not an :class:`Image` or ``mask`` has a non-real dtype.
    ValueError
        If the shapes differ, ``mask`` holds values other than 0 and 1 (or NaN),
        or the file cannot be written.
    FileNotFoundError
        If the target folder does not exist.

    Notes
    -----
    The data go to a temporary file in the target's folder whose name ends with
    the target's name (so SimpleITK chooses the same writer), then
    :func:`os.replace` moves it into place. On any failure, interruptions
    included, the temporary file is removed and an existing target is untouched.
    """
    arr = np.asarray(mask)
    _check_like(like, arr, "mask")
    _write_with_geometry(path, as_binary_mask(arr, "mask"), like)


def write_label_map(path, labels, like):
    """Write an integer label map (such as BraTS labels) as uint8 with the geometry
    of ``like``, atomically (see :func:`write_mask`).

    Parameters
    ----------
    path : str or os.PathLike
    labels : (H, W) or (Z, Y, X) array_like of int
        Values in 0..255, the shape of ``like.array``.
    like : Image

    Raises
    ------
    TypeError
        If ``like`` is not an :class:`Image` or ``labels`` is not of a real dtype.
    ValueError
        If the shapes differ, a value is not an integer in 0..255 (NaN included),
        or the file cannot be written.
    FileNotFoundError
        If the target folder does not exist.
    """
    arr = np.asarray(labels)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"labels: expected an integer label map, got dtype {arr.dtype}")
    _check_like(like, arr, "labels")
    if arr.size and not (np.all(np.isfinite(arr)) and np.array_equal(arr, np.round(arr))
                         and arr.min() >= 0 and arr.max() <= 255):
        raise ValueError("labels: expected integer labels in 0..255")
    _write_with_geometry(path, arr, like)


# --------------------------------------------------------------------------- BraTS


#: File names of the four sequences and the labels in each BraTS naming convention:
#: ``<case>_<name>.nii.gz`` (BraTS 2018 to 2021) and ``<case>-<name>.nii.gz`` (BraTS
#: 2023 and later, BraTS-Africa included). The convention also fixes the label of the
#: enhancing tumor: 4 up to 2021, 3 from 2023.
BRATS_LAYOUTS = {
    "2018": {"separator": "_", "flair": "flair", "t1": "t1", "t1ce": "t1ce", "t2": "t2",
             "seg": "seg"},
    "2023": {"separator": "-", "flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w",
             "seg": "seg"},
}

#: Any sequence name of either convention -> the canonical one.
SEQUENCE_ALIASES = {layout[s]: s for layout in BRATS_LAYOUTS.values() for s in BRATS_SEQUENCES}


@dataclass(frozen=True)
class BratsCase:
    """One BraTS case: co-registered sequences, optional labels, and geometry.

    Attributes
    ----------
    name : str
        Case identifier, the folder name (``Brats18_CBICA_ABM_1``,
        ``BraTS-SSA-00002-000``).
    images : dict of str to (Z, Y, X) ndarray
        Raw intensities per sequence, in the file's dtype (int16 for BraTS 2018,
        float32 for BraTS-Africa 2023), under the canonical names ``"flair"``,
        ``"t1"``, ``"t1ce"``, ``"t2"`` whatever the files are called.
    labels : (Z, Y, X) ndarray of uint8 or None
        In the BraTS 2018 convention whatever the files use: 0 background,
        1 necrotic / non-enhancing core, 2 edema, 4 enhancing tumor (a 2023 file's
        3 is read as 4); None when loaded with ``labels=False``.
    geometry : Image
        The first sequence read as an :class:`Image` (its array is the same object
        as ``images[first]``); pass it as ``like`` to :func:`write_mask`.
    convention : str
        Naming and label convention of the files: ``"2018"`` or ``"2023"`` (see
        :data:`BRATS_LAYOUTS`).
    """

    name: str
    images: dict
    labels: np.ndarray | None
    geometry: Image
    convention: str = "2018"

    @property
    def shape(self):
        """The common ``(Z, Y, X)`` shape of every array."""
        return self.geometry.array.shape


def check_same_grid(a, b, name_a, name_b, *, tol=1e-3):
    """Raise ValueError unless two images share shape, spacing, origin and direction.

    Parameters
    ----------
    a, b : Image
    name_a, name_b : str
        How the message names them.
    tol : float
        Largest difference accepted per spacing / origin (mm) and direction entry.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not an :class:`Image`.
    """
    for image, name in ((a, name_a), (b, name_b)):
        if not isinstance(image, Image):
            raise TypeError(f"{name}: expected a pcnnseg.io.Image, got {type(image).__name__}")
    if a.array.shape != b.array.shape:
        raise ValueError(f"{name_b}: expected the shape of {name_a} {a.array.shape}, got "
                         f"{b.array.shape}")
    for what in ("spacing", "origin", "direction"):
        x, y = np.asarray(getattr(a, what), float), np.asarray(getattr(b, what), float)
        if x.shape != y.shape or not np.allclose(x, y, rtol=0.0, atol=tol):
            raise ValueError(f"{name_b}: expected the {what} of {name_a} "
                             f"{tuple(round(float(v), 4) for v in x)}, got "
                             f"{tuple(round(float(v), 4) for v in y)}; the images must be "
                             f"co-registered on one grid")


def _case_file(case_dir, key, convention):
    layout = BRATS_LAYOUTS[convention]
    return case_dir / f"{case_dir.name}{layout['separator']}{layout[key]}.nii.gz"


def case_convention(case_dir):
    """The BraTS naming convention of a case folder: ``"2018"``, ``"2023"``, or None.

    The convention of which more of the case's files (the four sequences and the
    labels, named after the folder) are present; None when there are none, as
    for a folder that is not a BraTS case (a DICOM series, say).

    Parameters
    ----------
    case_dir : str or os.PathLike

    Returns
    -------
    str or None
    """
    case_dir = pathlib.Path(case_dir)
    found = {c: sum(_case_file(case_dir, k, c).is_file() for k in BRATS_SEQUENCES + ("seg",))
             for c in BRATS_LAYOUTS}
    best = max(found, key=found.get)
    return best if found[best] else None


def find_brats_cases(root):
    """List the BraTS case folders under ``root``, in either naming convention.

    A case folder is a direct child ``<case>/`` holding the four sequences as
    ``<case>_{flair,t1,t1ce,t2}.nii.gz`` (BraTS 2018-2021) or
    ``<case>-{t2f,t1n,t1c,t2w}.nii.gz`` (BraTS 2023); the labels are optional
    (validation and test sets have none). Folders missing any sequence are left
    out; :func:`load_brats_case` on one of them says which file is missing.

    Parameters
    ----------
    root : str or os.PathLike
        Folder of case folders, such as ``../shared/data/brats2018``.

    Returns
    -------
    list of pathlib.Path
        Sorted by name; empty when no folder qualifies.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist.
    ValueError
        If ``root`` is not a directory.
    """
    root = pathlib.Path(root)
    if not root.exists():
        raise FileNotFoundError(f"root: no such directory: {str(root)!r}")
    if not root.is_dir():
        raise ValueError(f"root: expected a directory of BraTS case folders, got a file: "
                         f"{str(root)!r}")
    return sorted(d for d in root.iterdir()
                  if d.is_dir() and any(all(_case_file(d, s, c).is_file() for s in BRATS_SEQUENCES)
                                        for c in BRATS_LAYOUTS))


def _canonical_sequences(sequences):
    if isinstance(sequences, str):
        sequences = (sequences,)
    sequences = tuple(sequences)
    if not sequences:
        raise ValueError("sequences: expected at least one sequence name, got none")
    for s in sequences:
        if not isinstance(s, str):
            raise TypeError(f"sequences: expected strings such as 'flair', got {s!r}")
        if s not in SEQUENCE_ALIASES:
            raise ValueError(f"sequences: expected names among {sorted(SEQUENCE_ALIASES)}, "
                             f"got {s!r}")
    canonical = tuple(SEQUENCE_ALIASES[s] for s in sequences)
    if len(set(canonical)) != len(canonical):
        raise ValueError(f"sequences: expected distinct sequences, got {sequences}")
    return canonical


def load_brats_case(case_dir, *, sequences=BRATS_SEQUENCES, labels=True):
    """Read the sequences (and labels) of one BraTS case folder, either convention.

    The folder's convention (see :data:`BRATS_LAYOUTS`) is recognised from its
    file names; images come back under the canonical sequence names and labels
    in the 2018 convention, so both collections look the same downstream.

    Parameters
    ----------
    case_dir : str or os.PathLike
        ``<case>/`` holding ``<case>_<sequence>.nii.gz`` (2018) or
        ``<case>-<sequence>.nii.gz`` (2023) files.
    sequences : sequence of str
        Sequences to read, default all four, by canonical (``"flair"``, ``"t1"``,
        ``"t1ce"``, ``"t2"``) or 2023 name (``"t2f"``, ``"t1n"``, ``"t1c"``,
        ``"t2w"``); the first one supplies ``geometry``.
    labels : bool
        Also read the labels (``<case>_seg.nii.gz`` / ``<case>-seg.nii.gz``); they
        must then exist.

    Returns
    -------
    BratsCase

    Raises
    ------
    FileNotFoundError
        If ``case_dir`` or a requested file is missing (the message names it).
    ValueError
        If two arrays differ in shape (both named), the labels hold values
        other than those of the folder's convention, ``sequences`` is empty,
        unknown or repeats a sequence, or a file is corrupt.
    TypeError
        If ``sequences`` holds something other than strings.
    """
    case_dir = pathlib.Path(case_dir)
    if not case_dir.is_dir():
        raise FileNotFoundError(f"case_dir: no such directory: {str(case_dir)!r}")
    sequences = _canonical_sequences(sequences)
    convention = case_convention(case_dir) or "2018"

    wanted = [(s, _case_file(case_dir, s, convention)) for s in sequences]
    if labels:
        wanted.append(("seg", _case_file(case_dir, "seg", convention)))
    for key, file in wanted:  # check them all before any slow read
        if not file.is_file():
            what = "labels" if key == "seg" else f"sequence {key!r}"
            hint = " (pass labels=False for unlabelled cases)" if key == "seg" else ""
            raise FileNotFoundError(f"case_dir: missing {what} file {str(file)!r}{hint}")

    geometry, images, seg = None, {}, None
    first_name = None
    for key, file in wanted:
        img = read_image(file)
        if geometry is None:
            geometry, first_name = img, file.name
        elif img.array.shape != geometry.array.shape:
            raise ValueError(f"case_dir: shape mismatch, {first_name} is "
                             f"{geometry.array.shape} but {file.name} is {img.array.shape}")
        else:
            check_same_grid(geometry, img, first_name, file.name)
        if key == "seg":
            seg = img.array
        else:
            images[key] = img.array
    if seg is not None:
        seg = _labels_2018(seg, convention, _case_file(case_dir, "seg", convention).name)
    return BratsCase(name=case_dir.name, images=images, labels=seg, geometry=geometry,
                     convention=convention)


def _labels_2018(seg, convention, file_name):
    """Labels of a ``convention`` file as uint8 in the 2018 convention."""
    from pcnnseg.metrics import convert_brats_labels

    if seg.dtype.kind == "f" and not (np.isfinite(seg).all() and np.array_equal(seg, np.round(seg))):
        raise ValueError(f"labels: expected integer labels in {file_name}, got non-integer "
                         f"values of dtype {seg.dtype}")
    if seg.dtype.kind not in "biuf":
        raise ValueError(f"labels: expected integer labels in {file_name}, got dtype {seg.dtype}")
    try:
        return convert_brats_labels(seg, source=convention, target="2018")
    except ValueError as err:
        raise ValueError(f"labels: {file_name}: {err}") from None
