"""Reading images with SimpleITK, writing outputs atomically, and BraTS case folders.

Arrays keep SimpleITK's axis order: a slice is ``(H, W)`` and a volume ``(Z, Y, X)``;
geometry (spacing, origin, direction) stays in SimpleITK's ``(x, y[, z])`` order.

Reading checks what SimpleITK does not: only regular files (or a DICOM folder) are
opened, so a named pipe cannot hang a read; NIfTI files go through
:mod:`pcnnseg.nifti_check` (sizes below 1, truncation, the gzip checksum, NaN and
infinite voxels put back), so a truncated or bit-flipped file is an error rather
than a volume with zero-filled slices. A DICOM folder holding a
file that looks like a slice but is not part of the series, or whose slices are
unevenly spaced (a slice missing), is refused.

Every writer here goes through a temporary file in the target's own folder, flushes it
to disk, reads it back and compares it with what was meant, and only then moves it
over the target with :func:`os.replace`; so a reader never sees a half-written file,
and a failure (a full disk included, even when the image writer only prints a warning)
raises, leaves an existing target as it was and no temporary file behind.
"""
import contextlib
import errno
import math
import os
import pathlib
import secrets
import stat
import struct
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from pcnnseg import nifti_check
from pcnnseg.validation import as_binary_mask

__all__ = ["Image", "read_image", "write_bytes_atomic", "sync_folder", "check_mask_format", "write_png", "write_mask",
           "write_label_map", "check_same_grid", "SEQUENCE_ALIASES", "case_convention",
           "BratsCase", "BRATS_SEQUENCES", "BRATS_LAYOUTS", "find_brats_cases",
           "load_brats_case"]

#: The four BraTS sequences, in the order the challenge lists them.
BRATS_SEQUENCES = ("flair", "t1", "t1ce", "t2")

# Formats whose header names a separate data file: renaming the header after the
# write would leave it pointing at the temporary data file, so they cannot be
# written atomically with one rename.
_TWO_FILE_SUFFIXES = (".mhd", ".hdr", ".img", ".hdr.gz", ".img.gz")

# Formats that hold one 2-D picture: SimpleITK writes only the first slice of a volume.
_FLAT_SUFFIXES = (".png", ".bmp")

# Lossy formats: a mask would not read back as written.
_LOSSY_SUFFIXES = (".jpg", ".jpeg")

# Formats that store spacing, origin and direction, so a write can be checked for them.
_GEOMETRY_SUFFIXES = (".nii", ".nii.gz", ".mha", ".nrrd")


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


def _from_sitk(img, array):
    """An :class:`Image` of ``img``, whose voxels are ``array``.

    Several components per pixel become grey, as float64: grey + alpha (2) the
    grey channel, RGB (3) and RGBA (4 or more) the mean of the first three; alpha
    is never averaged in.
    """
    components = img.GetNumberOfComponentsPerPixel()
    if components > 1:
        colours = 1 if components == 2 else 3
        array = array[..., :colours].astype(np.float64).mean(axis=-1)
    return Image(array=array, spacing=tuple(img.GetSpacing()), origin=tuple(img.GetOrigin()),
                 direction=tuple(img.GetDirection()))


# ------------------------------------------------------------------ paths and files


def _fspath(path, name):
    """``path`` as a str (bytes decoded as the file system does); TypeError otherwise."""
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"{name}: expected a path (str, bytes or os.PathLike), got "
                        f"{type(path).__name__}") from None
    if "\0" in path:
        raise ValueError(f"{name}: expected a path, got one holding a NUL character: {path!r}")
    try:
        path.encode("utf-8")  # SimpleITK takes UTF-8 names only
    except UnicodeEncodeError:
        raise ValueError(f"{name}: expected a path that is valid UTF-8, got {path!r}") from None
    return path


def _file_kind(mode):
    for test, kind in ((stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a regular file"


def _stat_input(path, name):
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file or directory: {path!r}") from None
    except PermissionError:
        raise PermissionError(errno.EACCES, f"{name}: cannot read {path!r}: permission "
                                            f"denied on a folder above it") from None
    except OSError as err:
        raise OSError(err.errno, f"{name}: cannot access {path!r} ({err.strerror})") from None


def _open_input(path):
    """Open a regular file for reading, without blocking on a pipe or device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise PermissionError(errno.EACCES, f"path: cannot read {path!r}: permission "
                                            f"denied") from None
    except OSError as err:
        raise OSError(err.errno, f"path: cannot open {path!r} ({err.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ValueError(f"path: expected an image file or a DICOM folder, got "
                         f"{_file_kind(mode)}: {path!r}")
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def _itk_warnings_off():
    """Silence ITK's printed warnings (the caller reports the problem itself)."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def _read_file(path):
    with _open_input(path) as fh:
        checked = nifti_check.check_before_read(fh, path) if nifti_check.is_nifti_name(path) else None
        try:
            img = sitk.ReadImage(path)
        except RuntimeError as err:
            if checked is not None and checked[1] is not None:
                nifti_check.gunzip_all(path)   # a damaged stream: say so rather than ITK's guess
            raise ValueError(f"path: cannot read {path!r} as an image "
                             f"({_last_line(err)})") from None
        array = sitk.GetArrayFromImage(img)
        if checked is not None:
            array = nifti_check.check_after_read(fh, path, checked, array)
    return _from_sitk(img, array)


# ---------------------------------------------------------------------------- DICOM

# DICOM files that are not slices of an image series
_DICOM_NON_IMAGES = ("dicomdir",)

# Series Instance UID (0020,000E) as it starts in little-endian DICOM
_SERIES_UID_TAG = b"\x20\x00\x0e\x00"


def _read_bytes(file, n=-1):
    try:
        with open(file, "rb") as fh:
            return fh.read(n)
    except PermissionError:
        raise PermissionError(errno.EACCES, f"path: cannot read {file!r} in the DICOM "
                                            f"folder: permission denied") from None


def _looks_like_dicom(entry):
    return (entry.name.lower().endswith((".dcm", ".dicom", ".ima"))
            or _read_bytes(entry.path, 132)[128:] == b"DICM")


def _series_uid(content):
    """The Series Instance UID found in a DICOM file's bytes, or None.

    A plain search, good enough to tell whether a file GDCM skipped claims to
    belong to a series: tags come in ascending order, so (0020,000E) precedes the
    pixel data, and explicit (``UI`` + 2-byte length) and implicit (4-byte
    length) encodings are both tried.
    """
    at = content.find(_SERIES_UID_TAG)
    if at < 0:
        return None
    if len(content) < at + 8:      # cut inside the element's header
        return None
    if content[at + 4:at + 6] == b"UI":
        n, start = struct.unpack_from("<H", content, at + 6)[0], at + 8
    else:
        n, start = struct.unpack_from("<I", content, at + 4)[0], at + 8
    uid = content[start:start + n].rstrip(b"\0 ")
    return uid.decode("ascii", "replace") if len(uid) and start + n <= len(content) else None


def _check_no_slice_left_out(path, entries, listed, ids):
    """Refuse a DICOM file that GDCM skipped though it is (or may be) a slice.

    GDCM silently leaves out files it cannot parse, so a truncated slice would
    vanish from the volume. A skipped DICOM file is accepted only if it names a
    series other than those found (a report or other non-image object).
    """
    listed = {os.path.realpath(f) for f in listed}
    for entry in entries:
        if (entry.name.lower() in _DICOM_NON_IMAGES or os.path.realpath(entry.path) in listed
                or not _looks_like_dicom(entry)):
            continue
        uid = _series_uid(_read_bytes(entry.path))
        if uid is None or uid in ids:
            raise ValueError(f"path: cannot read DICOM file {entry.name!r} in {path!r}: it "
                             f"is truncated or corrupt, so GDCM leaves it out of the series; "
                             f"repair or remove it")


def _folder_files(path):
    """Regular files of a folder; anything that would block a reader is refused."""
    files = []
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                mode = os.stat(entry.path).st_mode
            except FileNotFoundError:   # a dangling link: nothing to read
                continue
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise ValueError(f"path: expected regular files in the DICOM folder "
                                 f"{path!r}, got {_file_kind(mode)}: {entry.name!r}")
            files.append(entry)
    return files


def _check_slice_spacing(reader, n, path, series_id):
    """Refuse a series whose slice positions jump (a missing slice) or repeat."""
    try:
        cosines = [float(v) for v in reader.GetMetaData(0, "0020|0037").split("\\")]
        positions = np.array([[float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")]
                              for i in range(n)])
    except (RuntimeError, ValueError):   # no position tags: nothing to check against
        return
    if n < 3 or len(cosines) != 6 or positions.shape != (n, 3):
        return
    along = positions @ np.cross(cosines[:3], cosines[3:])
    gaps = np.abs(np.diff(along))
    typical = float(np.median(gaps))
    if typical == 0 or np.max(np.abs(gaps - typical)) > 0.5 * typical:
        raise ValueError(f"path: the slices of DICOM series {series_id!r} in {path!r} are "
                         f"unevenly spaced (gaps from {gaps.min():.4g} to {gaps.max():.4g} "
                         f"mm): a slice is missing or unreadable, or the series mixes "
                         f"acquisitions")


def _read_dicom_series(path, series_id):
    entries = _folder_files(path)   # before GDCM opens a pipe and hangs
    with _itk_warnings_off():
        try:
            ids = tuple(sitk.ImageSeriesReader.GetGDCMSeriesIDs(path))
            series = {i: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path, i) for i in ids}
        except RuntimeError as err:
            raise ValueError(f"path: cannot scan directory {path!r} for DICOM series "
                             f"({_last_line(err)})") from None
    _check_no_slice_left_out(path, entries, [f for files in series.values() for f in files],
                             ids)
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
    files = series[series_id]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        with _itk_warnings_off():   # its spacing warning: checked just below
            img = reader.Execute()
    except RuntimeError as err:
        raise ValueError(f"path: cannot read DICOM series {series_id!r} in {path!r} "
                         f"({_last_line(err)})") from None
    _check_slice_spacing(reader, len(files), path, series_id)
    return _from_sitk(img, sitk.GetArrayFromImage(img))


def read_image(path, *, series_id=None):
    """Read a 2-D or 3-D image file, or a DICOM series directory.

    Files: NIfTI, MetaImage, NRRD, PNG, TIFF, single DICOM files and the other
    formats of SimpleITK's ``ReadImage``. Colour images become grey by averaging
    the colour channels (alpha ignored); a grey + alpha image gives its grey
    channel. Directories: the DICOM series in it,
    read with ``ImageSeriesReader`` in the slice order GDCM sorts them into
    (by position along the slice normal), so the z spacing comes from the
    slice positions, not from the SliceThickness tag.

    Parameters
    ----------
    path : str, bytes or os.PathLike
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
    PermissionError
        If ``path`` cannot be read for lack of permission.
    TypeError
        If ``path`` is not a path.
    ValueError
        If ``path`` is not a regular file or a directory (a named pipe, a
        device), the file cannot be read as an image, or is truncated or corrupt
        (NIfTI: a size below 1 in the header, fewer bytes than the header says,
        a gzip stream whose checksum or length does not match); if the directory
        holds no DICOM series (or several and ``series_id`` does not pick one),
        a DICOM file of the series that GDCM skips as unreadable, or a series
        with a slice missing (unevenly spaced positions).

    Notes
    -----
    NIfTI files are checked against their header, and a ``.nii.gz`` against its
    gzip CRC-32 and length, computed over the data SimpleITK decompressed (one
    CRC pass; the file is decompressed a second time only when that does not
    match: a damaged file, scaled data, or non-finite voxels). SimpleITK's NIfTI
    reader sets NaN and infinite voxels to 0; they are read again from the file
    and put back, so a check for non-finite values downstream sees them.

    Examples
    --------
    >>> import tempfile, SimpleITK as sitk
    >>> folder = tempfile.mkdtemp()
    >>> sitk.WriteImage(sitk.Image(4, 3, sitk.sitkUInt8), folder + "/a.mha")
    >>> read_image(folder + "/a.mha").array.shape
    (3, 4)
    """
    path = _fspath(path, "path")
    mode = _stat_input(path, "path").st_mode
    if stat.S_ISDIR(mode):
        return _read_dicom_series(path, series_id)
    if not stat.S_ISREG(mode):
        raise ValueError(f"path: expected an image file or a DICOM folder, got "
                         f"{_file_kind(mode)}: {path!r}")
    return _read_file(path)


# ---------------------------------------------------------------------------- writing


def _write_error(err, path):
    """An OSError naming the target ``path`` for a failed system call."""
    return OSError(err.errno, f"path: cannot write {path!r} ({err.strerror or err})")


def _check_target(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: folder does not exist: {folder!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"path: expected a file name, got a "
                                              f"directory: {path!r}")
    return folder


def _reserve_temp(path, suffix):
    """Create an empty, uniquely named file in ``path``'s folder; return (fd, name).

    The name is short (``.pcnnseg-<8 hex digits><suffix>``) so that any legal
    target name still works; ``suffix`` keeps the format's extension for writers
    that choose the format from it (SimpleITK). ``O_EXCL`` makes the name ours;
    mode 0o666 lets the process umask decide the final permissions, as for any
    newly created file.
    """
    folder = _check_target(path)
    while True:
        tmp = os.path.join(folder, f".pcnnseg-{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         0o666)
        except FileExistsError:
            continue
        except OSError as err:
            raise _write_error(err, path) from None
        return fd, tmp


def _discard(tmp):
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


def _commit(tmp, path):
    """Move the verified ``tmp`` over ``path`` and make the rename itself durable."""
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise _write_error(err, path) from None
    sync_folder(os.path.dirname(os.path.abspath(path)))


def sync_folder(folder):
    """``fsync`` a folder, so that renames into it survive a crash (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:    # some file systems cannot sync a folder; the data are synced
        pass
    finally:
        os.close(fd)


def _write_all(fd, view):
    done = 0
    while done < len(view):
        n = os.write(fd, view[done:])
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done += n


def _read_all(fd, n):
    parts, done = [], 0
    while done <= n:   # one byte past the end shows an overlong file
        part = os.pread(fd, n + 1 - done, done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return b"".join(parts)


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` through a verified temporary file and a rename.

    The bytes go to a temporary file in ``path``'s folder, are flushed to disk
    (``fsync``) and read back; only if they read back identical does
    :func:`os.replace` move the file over ``path``. A failure or an
    interruption leaves no partial ``path`` and no temporary file behind, and an
    existing ``path`` stays as it was.

    Parameters
    ----------
    path : str, bytes or os.PathLike
    data : bytes-like

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like or ``path`` is not a path.
    FileNotFoundError
        If the target folder does not exist.
    OSError
        If the file cannot be written or does not read back as written (a full
        disk, for instance); the message names ``path``.
    """
    path = _fspath(path, "path")
    try:
        view = memoryview(data).cast("B")
    except TypeError:
        raise TypeError(f"data: expected bytes, got {type(data).__name__}") from None
    fd, tmp = _reserve_temp(path, ".tmp")
    try:
        try:
            _write_all(fd, view)
            os.fsync(fd)
            back = _read_all(fd, len(view))
        except OSError as err:
            raise _write_error(err, path) from None
        finally:
            os.close(fd)
        if back != view:
            raise OSError(errno.EIO, f"path: cannot write {path!r}: {len(back)} bytes read "
                                     f"back differ from the {len(view)} written")
        _commit(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def write_png(path, array):
    """Write a (H, W) or (H, W, 3) uint8 array as PNG, atomically.

    Colour arrays are in RGB order. The encoded picture is decoded again and
    compared with ``array`` before the write, which is verified as in
    :func:`write_bytes_atomic`.

    Raises
    ------
    ValueError
        If ``array`` is not a non-empty (H, W) or (H, W, 3) uint8 array (a
        volume, say: a PNG holds one slice).
    OSError
        If the file cannot be written (see :func:`write_bytes_atomic`).
    """
    import cv2

    array = np.asarray(array)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3
                                                         and array.shape[2] == 3)):
        what = " (a PNG holds one 2-D picture, not a volume)" if array.ndim >= 3 else ""
        raise ValueError(f"array: expected a (H, W) or (H, W, 3) uint8 array{what}, got "
                         f"{array.dtype} with shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"array: expected a non-empty picture, got shape {array.shape}")
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    array = np.ascontiguousarray(array)
    ok, buf = cv2.imencode(".png", array)
    if not ok or not np.array_equal(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), array):
        raise ValueError(f"array: PNG encoding failed for shape {array.shape}")
    write_bytes_atomic(path, buf.tobytes())


def _format_suffix(name):
    """The extension that picks a writer: ``.nii.gz`` for gzip files, else the last."""
    stem, ext = os.path.splitext(name)
    if ext.lower() == ".gz":
        ext = os.path.splitext(stem)[1] + ext
    return ext


def check_mask_format(path, shape, name="path"):
    """Refuse a target format that cannot hold a mask or label map of ``shape``.

    A 2-D picture format (``.png``, ``.bmp``) holds one slice, so a volume would
    lose all but one; a lossy one (``.jpg``) would not read back as written.
    Cheap: callers can check an output before the work that produces it.

    Raises
    ------
    ValueError
        Naming ``name`` and the path.
    """
    path = os.fsdecode(path)
    suffix = _format_suffix(path)
    if len(shape) > 2 and suffix.lower() in _FLAT_SUFFIXES:
        raise ValueError(f"{name}: a {suffix} file holds one 2-D picture, got a volume of "
                         f"shape {tuple(shape)} for {path!r}; write volumes as .nii.gz, .nii, "
                         f".mha or .nrrd")
    if suffix.lower() in _LOSSY_SUFFIXES:
        raise ValueError(f"{name}: {suffix} compresses with losses, so a mask or label map "
                         f"would not read back as written: {path!r}; use .png or .nii.gz")


def _check_format_holds(path, suffix, img, shape):
    """Refuse what the target format would silently change: volumes as PNG, shears as NIfTI."""
    check_mask_format(path, shape)
    n = img.GetDimension()
    direction = np.reshape(img.GetDirection(), (n, n))
    if (suffix.lower() in (".nii", ".nii.gz")
            and not np.allclose(direction.T @ direction, np.eye(n), rtol=0, atol=1e-5)):
        raise ValueError(f"path: NIfTI stores only orthonormal directions (a rotation), got "
                         f"the non-orthogonal (sheared) direction {tuple(direction.ravel())} "
                         f"for {path!r}; write .mha to keep it")


def _verify_written(tmp, path, suffix, img, array):
    """Read the written file back and compare it with what was meant."""
    try:
        back = _read_file(tmp)
    except (ValueError, OSError) as err:
        # the reader may quote the (already deleted) temporary name either way
        reason = str(err).removeprefix("path: ").replace(repr(tmp), "it").replace(tmp, "it")
        raise OSError(errno.EIO, f"path: cannot write {path!r}: the file written does not "
                                 f"read back ({reason}); is the disk full?") from None
    if back.array.shape != array.shape or not np.array_equal(back.array, array):
        raise OSError(errno.EIO, f"path: cannot write {path!r}: the file written reads back "
                                 f"with other voxels than were written; is the disk full?")
    if suffix.lower() not in _GEOMETRY_SUFFIXES:
        return
    for what, rtol, atol in (("spacing", 1e-5, 0.0), ("origin", 1e-5, 1e-6),
                             ("direction", 0.0, 1e-5)):
        meant = getattr(img, f"Get{what.capitalize()}")()
        got = getattr(back, what)
        if len(got) != len(meant) or not np.allclose(got, meant, rtol=rtol, atol=atol):
            raise ValueError(f"path: the {suffix} format cannot hold the {what} "
                             f"{tuple(meant)} exactly (it reads back as {tuple(got)}); "
                             f"write {path!r} as .mha instead")


# System errors that SimpleITK's writers report only as text
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EIO)


def _sitk_write_error(err, tmp, path):
    """ValueError for a target SimpleITK has no writer for, else an OSError."""
    text = _last_line(err).replace(tmp, path)
    if "Unable to determine ImageIO" in text:
        return ValueError(f"path: no image format has the extension of {path!r}; expected "
                          f".nii.gz, .nii, .mha or .nrrd")
    code = next((c for c in _WRITE_ERRNOS if os.strerror(c) in text), errno.EIO)
    return OSError(code, f"path: cannot write {path!r} ({text})")


def _fsync_path(tmp):
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_sitk_atomic(path, img, array):
    path = _fspath(path, "path")
    if path.lower().endswith(_TWO_FILE_SUFFIXES):
        raise ValueError(f"path: expected a single-file format (.nii.gz, .nii, .mha, "
                         f".nrrd), got {path!r}, whose header names a separate data file")
    suffix = _format_suffix(os.path.basename(path))
    _check_format_holds(path, suffix, img, array.shape)
    fd, tmp = _reserve_temp(path, suffix)
    try:
        os.close(fd)
        try:
            sitk.WriteImage(img, tmp, True)  # useCompression: masks shrink a lot
        except RuntimeError as err:
            raise _sitk_write_error(err, tmp, path) from None
        try:
            _fsync_path(tmp)
        except OSError as err:
            raise _write_error(err, path) from None
        _verify_written(tmp, path, suffix, img, array)
        _commit(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


def _write_with_geometry(path, array, like):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    img = sitk.GetImageFromArray(array)
    geometry = {}
    for what in ("spacing", "origin", "direction"):
        try:
            values = tuple(float(v) for v in getattr(like, what))
        except (TypeError, ValueError):
            raise ValueError(f"like: expected a sequence of numbers as {what}, got "
                             f"{getattr(like, what)!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"like: expected a finite {what}, got {values}")
        geometry[what] = values
    if any(s <= 0 for s in geometry["spacing"]):
        raise ValueError(f"like: expected a positive spacing, got {geometry['spacing']}")
    try:
        img.SetSpacing(geometry["spacing"])
        img.SetOrigin(geometry["origin"])
        img.SetDirection(geometry["direction"])
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"like: invalid geometry for a {array.ndim}-D image "
                         f"({_last_line(err)})") from None
    _write_sitk_atomic(path, img, array)


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
    path : str, bytes or os.PathLike
        Target file; the extension picks the format (``.nii.gz``, ``.nii``,
        ``.mha``, ``.nrrd``, ...). Two-file formats (``.mhd``, ``.hdr``/``.img``)
        are refused because one rename cannot move both files atomically, and
        2-D picture formats (``.png``, ``.bmp``) take 2-D masks only and lossy
        ones (``.jpg``) none.
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
        ``like``'s geometry is not finite (or its spacing not positive), the
        format cannot hold the mask (a volume as PNG) or its geometry (a sheared
        direction as NIfTI), or the writer refuses the file.
    FileNotFoundError
        If the target folder does not exist.
    OSError
        If the file cannot be written or does not read back as written (a full
        disk, for instance).

    Notes
    -----
    The data go to a temporary file ``.pcnnseg-<8 hex digits><extension>`` in
    the target's folder (so SimpleITK chooses the same writer), which is flushed
    to disk and read back (pixels, and for NIfTI, MetaImage and NRRD the
    geometry) before :func:`os.replace` moves it into place. On any failure,
    interruptions included, the temporary file is removed and an existing target
    is untouched.
    """
    arr = np.asarray(mask)
    _check_like(like, arr, "mask")
    _write_with_geometry(path, as_binary_mask(arr, "mask"), like)


def write_label_map(path, labels, like):
    """Write an integer label map (such as BraTS labels) as uint8 with the geometry
    of ``like``, atomically (see :func:`write_mask`).

    Parameters
    ----------
    path : str, bytes or os.PathLike
    labels : (H, W) or (Z, Y, X) array_like of int
        Values in 0..255, the shape of ``like.array``.
    like : Image

    Raises
    ------
    TypeError
        If ``like`` is not an :class:`Image` or ``labels`` is not of a real dtype.
    ValueError
        If the shapes differ, a value is not an integer in 0..255 (NaN included),
        the geometry or format is refused as in :func:`write_mask`, or the writer
        refuses the file.
    FileNotFoundError
        If the target folder does not exist.
    OSError
        If the file cannot be written or does not read back as written.
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
    case_dir = pathlib.Path(_fspath(case_dir, "case_dir"))
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
    TypeError
        If ``root`` is not a path (None, say).
    ValueError
        If ``root`` is not a directory.
    """
    root = pathlib.Path(_fspath(root, "root"))
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
        unknown or repeats a sequence, or a file is truncated or corrupt (see
        :func:`read_image`).
    TypeError
        If ``case_dir`` is not a path, or ``sequences`` holds something other than
        strings.
    """
    case_dir = pathlib.Path(_fspath(case_dir, "case_dir"))
    if not case_dir.is_dir():
        raise FileNotFoundError(f"case_dir: no such directory: {str(case_dir)!r}")
    sequences = _canonical_sequences(sequences)
    convention = case_convention(case_dir) or "2018"

    wanted = [(s, _case_file(case_dir, s, convention)) for s in sequences]
    if labels:
        wanted.append(("seg", _case_file(case_dir, "seg", convention)))
    for key, file in wanted:  # check them all before any slow read
        what = "labels" if key == "seg" else f"sequence {key!r}"
        if file.exists() and not file.is_file():
            raise ValueError(f"case_dir: expected a regular file as {what}, got "
                             f"{_file_kind(file.stat().st_mode)}: {str(file)!r}")
        if not file.is_file():
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
