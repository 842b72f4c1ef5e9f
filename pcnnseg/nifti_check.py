"""Integrity checks of NIfTI files that SimpleITK does not make.

SimpleITK reads a truncated ``.nii`` or ``.nii.gz`` as a whole volume with the
missing slices zero-filled, never checks the gzip CRC, reads a size of 0 or below
as 1, and turns NaN and infinite voxels into 0. :func:`check_before_read` parses
the header (NIfTI-1 and NIfTI-2, either byte order) and compares the file's size
with what the header needs; :func:`check_after_read` compares the gzip trailer's
CRC-32 and length with the data SimpleITK read (one CRC pass, no second
decompression while the file is intact) and puts back non-finite voxels.
Every failure is a ``ValueError`` naming the file.
"""
import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["is_nifti_name", "check_before_read", "check_after_read", "gunzip_all"]


#: NIfTI datatype code -> NumPy type of one stored value (RGB / RGBA: per channel).
_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 128: "u1", 256: "i1",
                 512: "u2", 768: "u4", 1024: "i8", 1280: "u8", 2304: "u1"}


@dataclass(frozen=True)
class _NiftiHeader:
    """The fields of a NIfTI-1 or NIfTI-2 header that say where the data lie."""

    sizes: tuple
    datatype: int
    bitpix: int
    vox_offset: int
    slope: float
    inter: float
    byteorder: str
    single_file: bool

    @property
    def data_bytes(self):
        return math.prod(self.sizes) * self.bitpix // 8

    @property
    def data_end(self):
        return self.vox_offset + self.data_bytes

    @property
    def scaled(self):
        """Whether the reader applies scl_slope / scl_inter (slope 0 means none)."""
        return (math.isfinite(self.slope) and self.slope != 0
                and (self.slope != 1 or self.inter != 0))

    @property
    def dtype(self):
        """Type of the stored values in the file's byte order, or None if unusual."""
        code = _NIFTI_DTYPES.get(self.datatype)
        return None if code is None else np.dtype(self.byteorder + code)


def _parse_nifti_header(raw, path):
    """Parse the start of a NIfTI file; None if it is not a NIfTI header at all."""
    if len(raw) < 348:
        raise ValueError(f"path: {path!r} is truncated: {len(raw)} bytes, shorter than a "
                         f"NIfTI header")
    for order in "<>":
        size = struct.unpack_from(order + "i", raw)[0]
        if size in (348, 540):
            break
    else:
        return None
    if size == 348:
        dim = struct.unpack_from(order + "8h", raw, 40)
        datatype, bitpix = struct.unpack_from(order + "2h", raw, 70)
        vox_offset = struct.unpack_from(order + "f", raw, 108)[0]
        slope, inter = struct.unpack_from(order + "2f", raw, 112)
        single_file = raw[344:348] == b"n+1\0"
    else:
        if len(raw) < 540:
            raise ValueError(f"path: {path!r} is truncated: {len(raw)} bytes, shorter than "
                             f"a NIfTI-2 header")
        datatype, bitpix = struct.unpack_from(order + "2h", raw, 12)
        dim = struct.unpack_from(order + "8q", raw, 16)
        vox_offset = struct.unpack_from(order + "q", raw, 168)[0]
        slope, inter = struct.unpack_from(order + "2d", raw, 176)
        single_file = raw[4:8] == b"n+2\0"
    if not 1 <= dim[0] <= 7:
        raise ValueError(f"path: the NIfTI header of {path!r} gives {dim[0]} dimensions "
                         f"(dim[0]), expected 1 to 7")
    sizes = tuple(int(d) for d in dim[1:dim[0] + 1])
    if min(sizes) < 1:
        axis = min(range(len(sizes)), key=lambda i: sizes[i])
        raise ValueError(f"path: the NIfTI header of {path!r} gives a size of {sizes[axis]} "
                         f"along axis {axis + 1} (sizes {sizes}); expected sizes of at least 1")
    if bitpix < 8 or bitpix % 8 or not math.isfinite(vox_offset) or vox_offset < 0:
        raise ValueError(f"path: the NIfTI header of {path!r} is corrupt (bitpix {bitpix}, "
                         f"vox_offset {vox_offset})")
    # as nifticlib does, data never start inside the header itself
    return _NiftiHeader(sizes=sizes, datatype=datatype, bitpix=bitpix,
                        vox_offset=max(int(vox_offset), size), slope=float(slope),
                        inter=float(inter), byteorder=order, single_file=single_file)


class _GzipHead:
    """Decompress the start of a gzip file on demand, keeping the bytes read."""

    def __init__(self, fh, path):
        self._fh, self._path = fh, path
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.data = b""

    def extend(self, n):
        """Decompress until ``n`` bytes are held or the file ends."""
        parts = [self.data]
        have = len(self.data)
        try:
            while have < n:
                if self._inflate.eof:   # the next gzip member, if any
                    chunk = self._inflate.unused_data or self._fh.read(1 << 16)
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    chunk = self._inflate.unconsumed_tail or self._fh.read(1 << 16)
                if not chunk:
                    break
                part = self._inflate.decompress(chunk, n - have)
                parts.append(part)
                have += len(part)
        except zlib.error as err:
            raise ValueError(f"path: {self._path!r} is corrupt (gzip: {err})") from None
        self.data = b"".join(parts)
        return self.data


def is_nifti_name(path):
    lower = path.lower()
    return lower.endswith(".nii") or lower.endswith(".nii.gz")


def check_before_read(fh, path):
    """Check a NIfTI file's header and size; return what the data check needs.

    Returns None for a file that is not NIfTI after all, else ``(header, head)``
    where ``head`` holds the decompressed start of a gzip file (None if plain).
    """
    size = os.fstat(fh.fileno()).st_size
    gzipped = fh.read(2) == b"\x1f\x8b"
    fh.seek(0)
    head = _GzipHead(fh, path) if gzipped else None
    raw = head.extend(540) if gzipped else fh.read(540)
    header = _parse_nifti_header(raw, path)
    if header is None or not header.single_file:
        return None
    if gzipped:
        # deflate cannot shrink data more than about 1032 times: a header asking for
        # more is lying, and reading it would try to allocate that much
        if header.data_end > 1100 * size + (1 << 20):
            raise ValueError(f"path: {path!r} is truncated or corrupt: its header asks for "
                             f"{header.data_end} bytes of data, more than {size} compressed "
                             f"bytes can hold")
        head.extend(header.vox_offset)
    elif size < header.data_end:
        raise ValueError(f"path: {path!r} is truncated: {size} bytes, its header needs "
                         f"{header.data_end}")
    return header, head


def gunzip_all(path):
    """The whole decompressed content, each member's CRC-32 and length checked."""
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"path: {path!r} is truncated or corrupt (gzip: {err})") from None


def _raw_bytes(array, header):
    """``array`` as the bytes it had in the file, or None if the reader changed them."""
    dtype = header.dtype
    if (dtype is None or header.scaled or array.nbytes != header.data_bytes
            or array.dtype != dtype.newbyteorder("=") or not array.flags.c_contiguous):
        return None
    return array if dtype.isnative else array.byteswap()


def _gzip_matches(fh, header, head, array):
    """Whether the gzip trailer's CRC-32 and length match the header and ``array``.

    This checks the whole stream for the cost of one CRC over the data SimpleITK
    already decompressed, instead of decompressing the file a second time.
    """
    data = _raw_bytes(array, header)
    size = os.fstat(fh.fileno()).st_size
    if data is None or size < 18 or len(head.data) < header.vox_offset:
        return False
    fh.seek(size - 8)
    crc, isize = struct.unpack("<II", fh.read(8))
    if isize != header.data_end & 0xFFFFFFFF:
        return False
    return zlib.crc32(data, zlib.crc32(head.data[:header.vox_offset])) == crc


def _stored_values(fh, header, path, gzipped):
    """The data section as stored, as a flat array (None for unusual types)."""
    if gzipped:
        content = gunzip_all(path)
        if len(content) < header.data_end:
            raise ValueError(f"path: {path!r} is truncated: {len(content)} bytes once "
                             f"decompressed, its header needs {header.data_end}")
        if header.dtype is None:
            return None
        return np.frombuffer(content, dtype=header.dtype, offset=header.vox_offset,
                             count=header.data_bytes // header.dtype.itemsize)
    if header.dtype is None or header.dtype.kind != "f":
        return None
    fh.seek(header.vox_offset)
    return np.fromfile(fh, dtype=header.dtype, count=header.data_bytes // header.dtype.itemsize)


def _restore_non_finite(array, stored, header, path):
    """Put back the NaN and infinite voxels that the NIfTI reader set to 0."""
    if stored is None or stored.dtype.kind != "f":
        return array
    bad = ~np.isfinite(stored)
    if not bad.any():
        return array
    if array.dtype.kind != "f" or array.size != stored.size:
        raise ValueError(f"path: {path!r} holds {int(bad.sum())} NaN or infinite voxels "
                         f"that cannot be read faithfully as {array.dtype}")
    values = stored[bad].astype(np.float64)
    if header.scaled:
        values = values * header.slope + header.inter
    array = np.array(array, copy=True, order="C")
    array.reshape(-1)[bad] = values
    return array


def check_after_read(fh, path, checked, array):
    """Verify the data SimpleITK read against the file; return the faithful array."""
    header, head = checked
    if head is not None and _gzip_matches(fh, header, head, array):
        return array    # intact, and a match means no voxel was changed (no NaN)
    return _restore_non_finite(array, _stored_values(fh, header, path, head is not None),
                               header, path)
