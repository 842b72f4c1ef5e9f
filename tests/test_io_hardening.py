"""pcnnseg.io against hostile files and failing disks (issue 16).

Every hostile file is made here, in ``tmp_path``: truncated and bit-flipped NIfTI,
headers with impossible sizes, NaN voxels, broken DICOM series, named pipes,
unreadable files; disk failures are simulated by replacing the system calls or
the image writer (and, where mounting is allowed, by a real full tmpfs).
"""
import contextlib
import errno
import gzip
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import time

import numpy as np
import pytest
import SimpleITK as sitk

from pcnnseg import io, nifti_check
from pcnnseg.io import (Image, case_convention, find_brats_cases, load_brats_case,
                        read_image, write_bytes_atomic, write_label_map, write_mask,
                        write_png)
from tests.test_io import BRATS, _fake_case, _volume, _write_dicom_series

TEMP_NAME = re.compile(r"^\.pcnnseg-[0-9a-f]{8}(\.tmp|\.nii\.gz|\.nii|\.mha|\.nrrd|\.png)$")


def _like(shape=(6, 16, 20)):
    return Image(array=np.zeros(shape, np.int16), spacing=(0.9, 1.1, 2.5),
                 origin=(-4.0, 7.5, 12.0), direction=tuple(np.eye(len(shape)).ravel()))


def _mask(shape=(6, 16, 20), seed=0):
    return np.random.default_rng(seed).random(shape) > 0.5


def _volume_file(path, shape=(40, 48, 48), dtype=np.int16, seed=0):
    """A random volume written by SimpleITK (random data barely compress)."""
    array = np.random.default_rng(seed).integers(0, 3000, shape).astype(dtype)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return array


def _nifti(array, byteorder="<"):
    """The bytes of a single-file NIfTI-1 image holding ``array`` (Z, Y, X) as stored."""
    codes = {"float32": 16, "float64": 64, "int16": 4, "uint8": 2}
    hdr = bytearray(352)
    struct.pack_into(byteorder + "i", hdr, 0, 348)
    dims = array.shape[::-1]
    struct.pack_into(byteorder + "8h", hdr, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into(byteorder + "2h", hdr, 70, codes[array.dtype.name],
                     array.dtype.itemsize * 8)
    struct.pack_into(byteorder + "8f", hdr, 76, 1, 1, 1, 1, 0, 0, 0, 0)     # pixdim
    struct.pack_into(byteorder + "3f", hdr, 108, 352.0, 1.0, 0.0)  # vox_offset, slope, inter
    hdr[344:348] = b"n+1\0"
    return bytes(hdr) + array.astype(array.dtype.newbyteorder(byteorder)).tobytes()


def _listing(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------ writes: atomic, verified


def test_a_legal_250_character_name_can_be_written(tmp_path, monkeypatch):
    long = "m" * (250 - len(".nii.gz"))
    write_mask(tmp_path / f"{long}.nii.gz", _mask(), _like())
    write_bytes_atomic(tmp_path / ("b" * 250), b"abc")
    write_png(tmp_path / ("p" * 246 + ".png"), np.zeros((4, 4), np.uint8))
    assert len(_listing(tmp_path)) == 3
    assert all(len(name) == 250 for name in _listing(tmp_path))

    seen = []
    real = sitk.WriteImage

    def recording(img, path, *args):
        seen.append(path)
        real(img, path, *args)

    monkeypatch.setattr(io.sitk, "WriteImage", recording)
    write_mask(tmp_path / "seg.nii.gz", _mask(), _like())
    assert TEMP_NAME.match(os.path.basename(seen[0])), seen[0]
    assert os.path.dirname(seen[0]) == str(tmp_path)


def _existing_target(folder, name):
    target = folder / name
    write_mask(target, np.zeros((6, 16, 20), bool), _like())
    return target, target.read_bytes()


@pytest.mark.parametrize("name", ["seg.nii.gz", "seg.nii", "seg.mha", "seg.nrrd"])
@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_writer_that_stops_short_and_returns_is_caught(tmp_path, monkeypatch, name, keep):
    # SimpleITK's NIfTI writer on a full disk: prints "NWAD: wrote only 0 of N bytes"
    # and returns normally, leaving a truncated file
    target, before = _existing_target(tmp_path, name)
    real = sitk.WriteImage

    def short_write(img, path, *args):
        real(img, path, *args)
        size = os.path.getsize(path)
        os.truncate(path, int(size * keep))

    monkeypatch.setattr(io.sitk, "WriteImage", short_write)
    with pytest.raises(OSError, match=re.escape(name)) as exc:
        write_mask(target, _mask(seed=1), _like())
    assert exc.value.errno == errno.EIO and "read back" in str(exc.value)
    assert target.read_bytes() == before and _listing(tmp_path) == [name]


def test_a_writer_reporting_a_full_disk_is_an_os_error(tmp_path, monkeypatch):
    target, before = _existing_target(tmp_path, "seg.mha")

    def full(img, path, *args):
        with open(path, "wb") as fh:
            fh.write(b"ObjectType")
        raise RuntimeError("ITK ERROR: MetaImageIO: Reason: No space left on device")

    monkeypatch.setattr(io.sitk, "WriteImage", full)
    with pytest.raises(OSError, match="seg.mha") as exc:
        write_mask(target, _mask(), _like())
    assert exc.value.errno == errno.ENOSPC
    assert target.read_bytes() == before and _listing(tmp_path) == ["seg.mha"]


def _fail_on_temp_files(monkeypatch, name, exc):
    """Make ``os.<name>`` raise ``exc`` on our temporary files only."""
    real = getattr(os, name)

    def failing(fd, *args):
        if ".pcnnseg-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise exc
        return real(fd, *args)

    monkeypatch.setattr(io.os, name, failing)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("call, exc", [
    ("write", OSError(errno.ENOSPC, "No space left on device")),
    ("fsync", OSError(errno.EIO, "Input/output error")),
    ("fsync", KeyboardInterrupt()),
])
@pytest.mark.parametrize("writer", ["bytes", "png"])
def test_failing_system_calls_keep_the_old_file(tmp_path, monkeypatch, call, exc, writer):
    target = tmp_path / ("out.png" if writer == "png" else "out.json")
    write_bytes_atomic(target, b"old content")
    _fail_on_temp_files(monkeypatch, call, exc)
    expected = KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else OSError
    with pytest.raises(expected) as info:
        if writer == "png":
            write_png(target, np.full((8, 9), 7, np.uint8))
        else:
            write_bytes_atomic(target, b"new content, longer than the old")
    if expected is OSError:
        assert info.value.errno == exc.errno and target.name in str(info.value)
    assert target.read_bytes() == b"old content" and _listing(tmp_path) == [target.name]


def test_a_write_of_zero_bytes_is_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(io.os, "write", lambda fd, data: 0)
    with pytest.raises(OSError, match="out.bin") as exc:
        write_bytes_atomic(tmp_path / "out.bin", b"abc")
    assert exc.value.errno == errno.ENOSPC and _listing(tmp_path) == []


def test_bytes_that_read_back_differently_are_refused(tmp_path, monkeypatch):
    real = os.pread
    monkeypatch.setattr(io.os, "pread", lambda fd, n, at: real(fd, n, at)[:-1])
    with pytest.raises(OSError, match="out.bin.*read back"):
        write_bytes_atomic(tmp_path / "out.bin", b"abcdef")
    assert _listing(tmp_path) == []


def _mount_tmpfs(folder, size):
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(folder)], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _fill(folder):
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_really_full_disk(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "256k"):
        pytest.skip("cannot mount a small tmpfs here (needs privileges)")
    try:
        small = np.zeros((40, 64, 64), bool)
        small[10:20, 10:20, 10:20] = True
        like = _like(small.shape)
        targets = {name: disk / name for name in ("seg.nii.gz", "seg.nii", "seg.mha", "p.png")}
        for name, target in targets.items():
            if name.endswith(".png"):
                write_png(target, np.zeros((4, 4), np.uint8))
            else:
                write_mask(target, small[:, :8] if name == "seg.nii" else small,
                           _like(small[:, :8].shape) if name == "seg.nii" else like)
        before = {name: t.read_bytes() for name, t in targets.items()}
        _fill(disk)
        noise = np.random.default_rng(0).random(small.shape) > 0.5
        picture = np.random.default_rng(1).integers(0, 256, (300, 300)).astype(np.uint8)
        for name, target in targets.items():
            with pytest.raises(OSError, match=re.escape(name)):
                if name.endswith(".png"):
                    write_png(target, picture)
                else:
                    write_mask(target, noise, like)
        with pytest.raises(OSError, match="report.json"):
            write_bytes_atomic(disk / "report.json", os.urandom(100_000))
        assert {name: t.read_bytes() for name, t in targets.items()} == before
        assert _listing(disk) == sorted(["filler", *targets])
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, timeout=20)


def test_a_directory_as_target_is_refused_before_writing(tmp_path):
    (tmp_path / "out.nii.gz").mkdir()
    with pytest.raises(IsADirectoryError, match="directory"):
        write_mask(tmp_path / "out.nii.gz", _mask(), _like())
    with pytest.raises(IsADirectoryError, match="directory"):
        write_png(tmp_path / "out.nii.gz", np.zeros((3, 3), np.uint8))
    assert _listing(tmp_path) == ["out.nii.gz"] and _listing(tmp_path / "out.nii.gz") == []


def test_write_bytes_names_a_wrong_data_type(tmp_path):
    with pytest.raises(TypeError, match="data"):
        write_bytes_atomic(tmp_path / "x", "text, not bytes")
    assert _listing(tmp_path) == []


# -------------------------------------------------------- reads: truncated, corrupt


def test_half_a_nii_gz_is_an_error(tmp_path):
    _volume_file(tmp_path / "full.nii.gz")
    raw = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "half.nii.gz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r"half\.nii\.gz.*(truncated|corrupt)"):
        read_image(tmp_path / "half.nii.gz")


@pytest.mark.parametrize("where", [0.2, 0.5, 0.8, 0.97])
def test_a_bit_flip_in_the_gzip_stream_is_an_error(tmp_path, where):
    _volume_file(tmp_path / "full.nii.gz")
    raw = bytearray((tmp_path / "full.nii.gz").read_bytes())
    raw[int(len(raw) * where)] ^= 0x10
    (tmp_path / "flip.nii.gz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"flip\.nii\.gz.*(truncated|corrupt)"):
        read_image(tmp_path / "flip.nii.gz")


@pytest.mark.parametrize("field", ["crc", "length"])
def test_a_wrong_gzip_trailer_is_an_error(tmp_path, field):
    _volume_file(tmp_path / "full.nii.gz")
    raw = bytearray((tmp_path / "full.nii.gz").read_bytes())
    raw[-8 if field == "crc" else -4] ^= 0x01
    (tmp_path / "bad.nii.gz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"bad\.nii\.gz.*(truncated|corrupt)"):
        read_image(tmp_path / "bad.nii.gz")


def test_a_nii_missing_its_last_bytes_is_an_error(tmp_path):
    _volume_file(tmp_path / "full.nii")
    raw = (tmp_path / "full.nii").read_bytes()
    (tmp_path / "short.nii").write_bytes(raw[:-1000])
    with pytest.raises(ValueError, match=rf"short\.nii.*truncated.*{len(raw) - 1000}.*{len(raw)}"):
        read_image(tmp_path / "short.nii")


def test_an_intact_gzip_of_a_truncated_nii_is_an_error(tmp_path):
    nii = _nifti(np.ones((4, 5, 6), np.int16))
    (tmp_path / "short.nii.gz").write_bytes(gzip.compress(nii[:-20]))
    with pytest.raises(ValueError, match=r"short\.nii\.gz.*truncated"):
        read_image(tmp_path / "short.nii.gz")


def test_a_header_asking_for_more_data_than_the_file_can_hold(tmp_path):
    header = bytearray(_nifti(np.ones((2, 2, 2), np.int16)))
    struct.pack_into("<4h", header, 40, 3, 30000, 30000, 30000)   # 54 TB of int16
    (tmp_path / "huge.nii.gz").write_bytes(gzip.compress(bytes(header)))
    with pytest.raises(ValueError, match=r"huge\.nii\.gz.*(truncated|corrupt)"):
        read_image(tmp_path / "huge.nii.gz")


def test_intact_files_are_checked_without_a_second_decompression(tmp_path, monkeypatch):
    def not_again(path):
        raise AssertionError(f"{path} decompressed twice")

    monkeypatch.setattr(nifti_check, "gunzip_all", not_again)
    int16 = np.arange(120, dtype=np.int16).reshape(4, 5, 6)
    for order in "<>":
        (tmp_path / "a.nii.gz").write_bytes(gzip.compress(_nifti(int16, order)))
        np.testing.assert_array_equal(read_image(tmp_path / "a.nii.gz").array, int16)
    floats = _volume_file(tmp_path / "f.nii.gz", shape=(5, 6, 7), dtype=np.float32)
    np.testing.assert_array_equal(read_image(tmp_path / "f.nii.gz").array, floats)


def test_unusual_but_valid_gzip_files_still_read(tmp_path):
    array = np.arange(120, dtype=np.int16).reshape(4, 5, 6)
    nii = _nifti(array)
    # two gzip members, as concatenating compressed parts makes
    (tmp_path / "two.nii.gz").write_bytes(gzip.compress(nii[:200]) + gzip.compress(nii[200:]))
    np.testing.assert_array_equal(read_image(tmp_path / "two.nii.gz").array, array)
    # a plain NIfTI file under a .gz name
    (tmp_path / "plain.nii.gz").write_bytes(nii)
    np.testing.assert_array_equal(read_image(tmp_path / "plain.nii.gz").array, array)


def test_load_brats_case_refuses_a_truncated_sequence(tmp_path):
    case = _fake_case(tmp_path, "T")
    t2 = case / "T_t2.nii.gz"
    t2.write_bytes(t2.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"T_t2\.nii\.gz.*(truncated|corrupt)"):
        load_brats_case(case)


def test_half_a_real_brats_sequence_is_an_error(tmp_path):
    cases = find_brats_cases(BRATS) if BRATS.is_dir() else []
    if not cases:
        pytest.skip(f"BraTS 2018 sample data not found at {BRATS}")
    flair = next(cases[0].glob("*_flair.nii.gz"))
    raw = flair.read_bytes()
    (tmp_path / "h.nii.gz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r"h\.nii\.gz"):
        read_image(tmp_path / "h.nii.gz")


# ------------------------------------------------------- reads: headers and voxels


@pytest.mark.parametrize("size", [0, -40])
@pytest.mark.parametrize("name", ["z.nii", "z.nii.gz"])
def test_a_header_size_below_one_is_an_error(tmp_path, size, name):
    raw = bytearray(_nifti(np.ones((4, 5, 6), np.int16)))
    struct.pack_into("<h", raw, 46, size)        # dim[3], the z size
    (tmp_path / name).write_bytes(gzip.compress(bytes(raw)) if name.endswith(".gz") else raw)
    with pytest.raises(ValueError, match=rf"{re.escape(name)}.*size of {size} along axis 3"):
        read_image(tmp_path / name)


@pytest.mark.parametrize("ndim", [0, 8, -1])
def test_a_header_dimension_count_out_of_range_is_an_error(tmp_path, ndim):
    raw = bytearray(_nifti(np.ones((4, 5, 6), np.int16)))
    struct.pack_into("<h", raw, 40, ndim)
    (tmp_path / "d.nii").write_bytes(raw)
    with pytest.raises(ValueError, match=r"d\.nii.*dim\[0\]"):
        read_image(tmp_path / "d.nii")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nan_and_inf_voxels_are_kept(tmp_path, dtype, order, suffix):
    array = np.linspace(-5, 5, 60).astype(dtype).reshape(3, 4, 5)
    array[0, 0, 1], array[1, 2, 3], array[2, 3, 4] = np.nan, np.inf, -np.inf
    nii = _nifti(array, order)
    (tmp_path / f"n{suffix}").write_bytes(gzip.compress(nii) if suffix == ".nii.gz" else nii)
    back = read_image(tmp_path / f"n{suffix}").array
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, array)     # NaN compare equal here
    assert np.isnan(back[0, 0, 1]) and back[1, 2, 3] == np.inf and back[2, 3, 4] == -np.inf


def test_nan_voxels_in_a_file_written_by_simpleitk(tmp_path):
    array = np.ones((3, 4, 5), np.float32)
    array[1, 1, 1] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "n.nii.gz"))
    assert np.isnan(read_image(tmp_path / "n.nii.gz").array).sum() == 1


# --------------------------------------------------------------------------- DICOM


def _series(folder, n=6, suffix=".dcm"):
    _write_dicom_series(folder, _volume((n, 16, 16)), series_uid="1.2.826.0.1.3680043.2.1125.9")
    if suffix != ".dcm":
        for f in folder.glob("*.dcm"):
            f.rename(f.with_suffix(suffix))
    return sorted(folder.iterdir())


@pytest.mark.parametrize("keep", ["half", "pixels", "100 bytes"])
def test_a_truncated_dicom_slice_is_an_error(tmp_path, keep):
    slices = _series(tmp_path / "s")
    raw = slices[3].read_bytes()
    slices[3].write_bytes(raw[:{"half": len(raw) // 2, "pixels": len(raw) - 100,
                                "100 bytes": 100}[keep]])
    with pytest.raises(ValueError, match=rf"{slices[3].name}.*truncated or corrupt"):
        read_image(tmp_path / "s")


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_missing_slice_without_a_dicom_name_is_an_error(tmp_path, damage):
    slices = _series(tmp_path / "s", suffix="")
    if damage == "delete":
        slices[2].unlink()
    else:
        slices[2].write_bytes(slices[2].read_bytes()[:100])
    with pytest.raises(ValueError, match="unevenly spaced"):
        read_image(tmp_path / "s")


def _element(group, element, vr, value):
    """One explicit-VR little-endian DICOM data element."""
    if isinstance(value, str):
        value = value.encode()
        value += (b"\0" if vr == "UI" else b" ") * (len(value) % 2)
    if vr in ("OB", "OW", "SQ", "UN", "UT"):
        return struct.pack("<HH2sHI", group, element, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr.encode(), len(value)) + value


def _report_without_pixels(series_uid):
    """A valid DICOM structured report: a DICOM file that is no image at all."""
    sop_class, sop = "1.2.840.10008.5.1.4.1.1.88.11", "1.2.3.99.1"
    meta = (_element(2, 1, "OB", b"\0\1") + _element(2, 2, "UI", sop_class)
            + _element(2, 3, "UI", sop) + _element(2, 0x10, "UI", "1.2.840.10008.1.2.1"))
    meta = _element(2, 0, "UL", struct.pack("<I", len(meta))) + meta
    body = (_element(8, 0x16, "UI", sop_class) + _element(8, 0x18, "UI", sop)
            + _element(8, 0x60, "CS", "SR") + _element(0x20, 0xD, "UI", "1.2.826.0.1.3680043")
            + _element(0x20, 0xE, "UI", series_uid))
    return b"\0" * 128 + b"DICM" + meta + body


def test_a_dicom_folder_with_other_files_still_reads(tmp_path):
    _series(tmp_path / "s", suffix="")
    (tmp_path / "s" / "notes.txt").write_text("acquired on a Tuesday")
    (tmp_path / "s" / "report.dcm").write_bytes(_report_without_pixels("1.2.3.99"))
    (tmp_path / "s" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    assert read_image(tmp_path / "s").array.shape == (6, 16, 16)


def test_an_empty_folder_gives_only_the_clean_message(tmp_path, capfd):
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    with pytest.raises(ValueError, match="no DICOM series"):
        read_image(tmp_path)
    captured = capfd.readouterr()
    assert "No Series were found" not in captured.err + captured.out
    assert sitk.ProcessObject.GetGlobalWarningDisplay() == shown


# -------------------------------------------------------------- pipes and devices


@contextlib.contextmanager
def _no_hang(*fifos, seconds=10):
    """Fail if the body takes ``seconds``; a helper process then keeps opening the pipes.

    A thread cannot guard this: SimpleITK holds the GIL while blocked in open().
    Opening a pipe read-write never blocks and releases a reader blocked in open().
    """
    script = f'sleep {seconds}; while :; do for f; do : <> "$f"; done; sleep 0.1; done'
    helper = subprocess.Popen(["sh", "-c", script, "sh", *map(str, fifos)])
    start = time.monotonic()
    try:
        yield
    finally:
        helper.kill()
        helper.wait()
        assert time.monotonic() - start < seconds, "a read blocked on a named pipe"


def test_a_named_pipe_is_refused_at_once(tmp_path):
    fifo = tmp_path / "p.nii.gz"
    os.mkfifo(fifo)
    (tmp_path / "link.nii.gz").symlink_to(fifo)
    with _no_hang(fifo), pytest.raises(ValueError, match=r"named pipe.*p\.nii\.gz"):
        read_image(fifo)
    with _no_hang(fifo), pytest.raises(ValueError, match="named pipe"):
        read_image(tmp_path / "link.nii.gz")


def test_a_named_pipe_in_a_dicom_folder_is_refused_at_once(tmp_path):
    _series(tmp_path / "s")
    os.mkfifo(tmp_path / "s" / "extra.dcm")
    with _no_hang(tmp_path / "s" / "extra.dcm"), pytest.raises(ValueError,
                                                               match=r"named pipe.*extra\.dcm"):
        read_image(tmp_path / "s")


def test_a_named_pipe_as_a_brats_sequence_is_refused_at_once(tmp_path):
    case = _fake_case(tmp_path, "P")
    (case / "P_t1.nii.gz").unlink()
    os.mkfifo(case / "P_t1.nii.gz")
    with _no_hang(case / "P_t1.nii.gz"), pytest.raises(ValueError,
                                                       match=r"named pipe.*P_t1\.nii\.gz"):
        load_brats_case(case)


def test_devices_and_sockets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="character device"):
        read_image("/dev/null")
    folder = tempfile.mkdtemp(dir="/tmp")       # socket paths are limited to ~100 bytes
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(os.path.join(folder, "s.nii"))
        with pytest.raises(ValueError, match="socket"):
            read_image(os.path.join(folder, "s.nii"))
        sock.close()
    finally:
        shutil.rmtree(folder)


# -------------------------------------------------------------------------- messages


def _skip_if_modes_are_ignored(path):
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        return
    pytest.skip("this user reads files whatever their mode (root)")


def test_an_unreadable_file_says_permission(tmp_path):
    _volume_file(tmp_path / "locked.nii.gz", shape=(2, 3, 4))
    (tmp_path / "locked.nii.gz").chmod(0)
    try:
        _skip_if_modes_are_ignored(tmp_path / "locked.nii.gz")
        with pytest.raises(PermissionError, match=r"cannot read.*locked\.nii\.gz.*permission"):
            read_image(tmp_path / "locked.nii.gz")
    finally:
        (tmp_path / "locked.nii.gz").chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_file_in_an_unreadable_folder_says_permission(tmp_path):
    (tmp_path / "closed").mkdir()
    _volume_file(tmp_path / "closed" / "a.nii.gz", shape=(2, 3, 4))
    (tmp_path / "closed").chmod(0)
    try:
        _skip_if_modes_are_ignored(tmp_path / "closed" / "a.nii.gz")
        with pytest.raises(PermissionError, match="permission"):
            read_image(tmp_path / "closed" / "a.nii.gz")
    finally:
        (tmp_path / "closed").chmod(stat.S_IRWXU)


def test_bytes_paths_are_read_and_written(tmp_path):
    array = _volume_file(tmp_path / "a.nii.gz", shape=(2, 3, 4))
    np.testing.assert_array_equal(read_image(os.fsencode(tmp_path / "a.nii.gz")).array, array)
    write_mask(os.fsencode(tmp_path / "m.mha"), _mask(), _like())
    assert (tmp_path / "m.mha").is_file()


@pytest.mark.parametrize("call, name", [
    (lambda: read_image(None), "path"),
    (lambda: read_image(3), "path"),
    (lambda: find_brats_cases(None), "root"),
    (lambda: load_brats_case(None), "case_dir"),
    (lambda: case_convention(None), "case_dir"),
    (lambda: write_bytes_atomic(None, b""), "path"),
    (lambda: write_mask(None, _mask(), _like()), "path"),
])
def test_a_path_of_the_wrong_type_is_a_type_error(call, name):
    with pytest.raises(TypeError, match=rf"^{name}: expected a path.*got (NoneType|int)"):
        call()


@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (0, 0, 3)])
def test_write_png_refuses_an_empty_array(tmp_path, shape):
    with pytest.raises(ValueError, match="array"):
        write_png(tmp_path / "e.png", np.zeros(shape, np.uint8))
    assert _listing(tmp_path) == []


# ------------------------------------------------------------ volumes and geometry


@pytest.mark.parametrize("write", [
    lambda path, like: write_mask(path, _mask(like.array.shape), like),
    lambda path, like: write_label_map(path, _mask(like.array.shape).astype(np.uint8) * 4, like),
])
@pytest.mark.parametrize("shape", [(6, 16, 20), (1, 16, 20)])
def test_a_volume_is_not_written_as_one_png_slice(tmp_path, write, shape):
    with pytest.raises(ValueError, match=r"\.png.*2-D.*volume"):
        write(tmp_path / "mask.png", _like(shape))
    assert _listing(tmp_path) == []
    flat = Image(np.zeros((16, 20)), (1.0, 1.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    write(tmp_path / "slice.png", flat)
    assert read_image(tmp_path / "slice.png").array.shape == (16, 20)


def test_a_lossy_format_is_refused(tmp_path):
    flat = Image(np.zeros((16, 20)), (1.0, 1.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"\.jpg.*losses"):
        write_mask(tmp_path / "m.jpg", _mask((16, 20)), flat)
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", ["m.nii.gz", "m.nii", "m.mha", "m.nrrd"])
def test_verified_writes_accept_any_rotation(tmp_path, ndim, name):
    # the read-back check must not refuse what the formats do hold: rotations and
    # reflections, small and large spacings, far origins
    rng = np.random.default_rng(ndim)
    for trial in range(4):
        q, r = np.linalg.qr(rng.normal(size=(ndim, ndim)))
        shape = tuple(int(n) for n in rng.integers(1, 7, ndim))
        like = Image(np.zeros(shape), tuple(rng.uniform(0.01, 10, ndim)),
                     tuple(rng.uniform(-1e4, 1e4, ndim)), tuple((q * np.sign(np.diag(r))).ravel()))
        mask = _mask(shape, seed=trial)
        write_mask(tmp_path / name, mask, like)
        back = read_image(tmp_path / name)
        np.testing.assert_array_equal(back.array, mask)
        np.testing.assert_allclose(back.direction, like.direction, atol=1e-5)


def test_write_png_refuses_a_volume(tmp_path):
    with pytest.raises(ValueError, match=r"not a volume.*\(4, 5, 6\)"):
        write_png(tmp_path / "v.png", np.zeros((4, 5, 6), np.uint8))
    assert _listing(tmp_path) == []


SHEAR = (1.0, 0.3, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def test_a_sheared_direction_is_kept_or_refused(tmp_path):
    img = sitk.GetImageFromArray(np.zeros((6, 16, 20), np.int16))
    img.SetDirection(SHEAR)
    sitk.WriteImage(img, str(tmp_path / "in.mha"))
    like = read_image(tmp_path / "in.mha")
    assert like.direction == SHEAR
    write_mask(tmp_path / "out.mha", _mask(), like)
    assert read_image(tmp_path / "out.mha").direction == SHEAR
    with pytest.raises(ValueError, match=r"sheared.*out\.nii\.gz.*\.mha"):
        write_mask(tmp_path / "out.nii.gz", _mask(), like)
    assert _listing(tmp_path) == ["in.mha", "out.mha"]


def test_geometry_a_format_cannot_hold_is_refused(tmp_path):
    like = _like()
    far = Image(like.array, like.spacing, (1e39, 0.0, 0.0), like.direction)  # float32 overflow
    with pytest.raises(ValueError, match=r"\.nii\.gz.*cannot hold the origin"):
        write_mask(tmp_path / "far.nii.gz", _mask(), far)
    write_mask(tmp_path / "far.mha", _mask(), far)
    assert read_image(tmp_path / "far.mha").origin == (1e39, 0.0, 0.0)
    assert _listing(tmp_path) == ["far.mha"]


@pytest.mark.parametrize("what, values, message", [
    ("spacing", (np.nan, 1.0, 1.0), "finite spacing"),
    ("spacing", (1.0, 0.0, 1.0), "positive spacing"),
    ("spacing", (1.0, -2.0, 1.0), "positive spacing"),
    ("origin", (0.0, np.inf, 0.0), "finite origin"),
    ("direction", (np.nan,) + (0.0,) * 8, "finite direction"),
    ("direction", ("a",) * 9, "numbers as direction"),
])
@pytest.mark.parametrize("writer", [write_mask, write_label_map])
def test_non_finite_geometry_is_refused(tmp_path, what, values, message, writer):
    geometry = {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
                "direction": tuple(np.eye(3).ravel()), what: values}
    like = Image(np.zeros((6, 16, 20)), **geometry)
    with pytest.raises(ValueError, match=f"like: expected a {message}|like: expected a "
                                         f"sequence of {message}"):
        writer(tmp_path / "m.nii.gz", _mask().astype(np.uint8), like)
    assert _listing(tmp_path) == []


# ------------------------------------------------- what mutation testing found (issue 17)
# Each test below pins a behaviour that a mutant of pcnnseg/io.py changed without any
# test failing (tests/MUTATION.md): mostly the messages and error numbers users see.


def _quoted(path):
    """``path`` as the messages quote it, escaped for a regular expression."""
    return re.escape(repr(os.fspath(path)))


def test_the_last_line_of_an_error_is_its_reason():
    assert io._last_line(RuntimeError("")) == ""
    assert io._last_line(RuntimeError("ITK ERROR:\n  where\nthe reason\n")) == "the reason"


def test_colour_pictures_become_grey_by_averaging_rgb_alpha_ignored(tmp_path):
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[...] = (30, 60, 120, 255)
    rgba[0, 0] = (0, 3, 9, 0)
    for name, array in (("rgb.png", rgba[..., :3]), ("rgba.png", rgba)):
        img = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=True)
        sitk.WriteImage(img, str(tmp_path / name))
        got = read_image(tmp_path / name).array
        assert got.shape == (3, 4)
        np.testing.assert_allclose(got, array[..., :3].mean(axis=-1))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_grey_alpha_keeps_the_grey_and_rgba_averages_rgb(shape, tmp_path):
    # SimpleITK cannot read a grey + alpha PNG, but builds such images in memory and
    # reads and writes them as MetaImage: the alpha channel is never averaged in.
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, shape + (4,)).astype(np.uint8)
    for components, expected in ((2, pixels[..., 0]), (4, pixels[..., :3].mean(axis=-1))):
        array = np.ascontiguousarray(pixels[..., :components])
        img = sitk.GetImageFromArray(array, isVector=True)
        assert img.GetNumberOfComponentsPerPixel() == components
        got = io._from_sitk(img, sitk.GetArrayFromImage(img))
        assert got.array.dtype == np.float64
        np.testing.assert_array_equal(got.array, expected)
        name = tmp_path / f"c{components}.mha"
        sitk.WriteImage(img, str(name))
        np.testing.assert_array_equal(read_image(name).array, expected)


def test_a_wrong_path_says_what_is_wrong_with_it():
    with pytest.raises(TypeError, match=r"^path: expected a path \(str, bytes or "
                                        r"os\.PathLike\), got int$"):
        read_image(3)
    with pytest.raises(ValueError, match=r"^path: expected a path, got one holding a NUL "
                                         rf"character: {_quoted('a' + chr(0) + 'b.nii')}$"):
        read_image("a\0b.nii")
    with pytest.raises(ValueError, match=r"^path: expected a path that is valid UTF-8, got "
                                         rf"{_quoted(os.fsdecode(b'x-' + bytes([255])))}$"):
        read_image(b"x-\xff")


@pytest.mark.parametrize("kind, name", [
    (stat.S_IFDIR, "a directory"), (stat.S_IFIFO, "a named pipe (FIFO)"),
    (stat.S_IFSOCK, "a socket"), (stat.S_IFCHR, "a character device"),
    (stat.S_IFBLK, "a block device"), (stat.S_IFLNK, "not a regular file")])
def test_kinds_of_files_are_named(kind, name):
    assert io._file_kind(kind | 0o644) == name


def _fail_for(monkeypatch, call, match, exc):
    """Make ``os.<call>`` raise ``exc`` for paths containing ``match``."""
    real = getattr(os, call)

    def failing(path, *args, **kwargs):
        if match in os.fsdecode(path):
            raise exc
        return real(path, *args, **kwargs)

    monkeypatch.setattr(io.os, call, failing)


def test_a_missing_or_unreachable_input_says_so(tmp_path, monkeypatch):
    missing = tmp_path / "none.nii.gz"
    with pytest.raises(FileNotFoundError, match=rf"^path: no such file or directory: "
                                                rf"{_quoted(missing)}$"):
        read_image(missing)
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(OSError, match=rf"^\[Errno 40\] path: cannot access {_quoted(tmp_path / 'loop')} "
                                      r"\(Too many levels of symbolic links\)$") as info:
        read_image(tmp_path / "loop")
    assert info.value.errno == errno.ELOOP
    _fail_for(monkeypatch, "stat", "closed", PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(PermissionError, match=rf"^\[Errno 13\] path: cannot read "
                                              rf"{_quoted(tmp_path / 'closed' / 'a.nii')}: "
                                              r"permission denied on a folder above it$") as info:
        read_image(tmp_path / "closed" / "a.nii")
    assert info.value.errno == errno.EACCES


def test_inputs_are_opened_read_only_without_blocking_or_leaking(tmp_path, monkeypatch):
    _volume_file(tmp_path / "a.nii.gz", shape=(2, 3, 4))
    flags, real = [], os.open

    def spy(path, flag, *args, **kwargs):
        if os.fsdecode(path).endswith("a.nii.gz"):
            flags.append(flag)
        return real(path, flag, *args, **kwargs)

    monkeypatch.setattr(io.os, "open", spy)
    read_image(tmp_path / "a.nii.gz")
    assert flags and all(f & os.O_ACCMODE == os.O_RDONLY and f & os.O_NONBLOCK
                         and f & os.O_CLOEXEC for f in flags)


@pytest.mark.parametrize("exc, kind, message", [
    (PermissionError(errno.EACCES, "Permission denied"), PermissionError,
     r": permission denied$"),
    (OSError(errno.EIO, "Input/output error"), OSError, r" \(Input/output error\)$"),
])
def test_an_input_that_cannot_be_opened_keeps_its_errno(tmp_path, monkeypatch, exc, kind,
                                                         message):
    _volume_file(tmp_path / "a.nii.gz", shape=(2, 3, 4))
    _fail_for(monkeypatch, "open", "a.nii.gz", exc)
    verb = "read" if kind is PermissionError else "open"
    with pytest.raises(kind, match=rf"^\[Errno {exc.errno}\] path: cannot {verb} {_quoted(tmp_path / 'a.nii.gz')}"
                                   + message) as info:
        read_image(tmp_path / "a.nii.gz")
    assert info.value.errno == exc.errno


def test_a_file_swapped_for_a_device_after_the_check_is_refused(tmp_path, monkeypatch):
    _volume_file(tmp_path / "a.nii.gz", shape=(2, 3, 4))
    regular = os.stat(tmp_path / "a.nii.gz")
    monkeypatch.setattr(io, "_stat_input", lambda path, name: regular)
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with pytest.raises(ValueError, match=r"^path: expected an image file or a DICOM folder, "
                                         r"got a character device: '/dev/null'$"):
        read_image("/dev/null")
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before     # the descriptor was closed


def test_an_unknown_format_says_what_simpleitk_said(tmp_path):
    (tmp_path / "junk.xyz").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=rf"^path: cannot read {_quoted(tmp_path / 'junk.xyz')} "
                                         r"as an image \([^\n]*ImageIO[^\n]*\)$"):
        read_image(tmp_path / "junk.xyz")


def test_an_unreadable_file_in_a_dicom_folder_says_permission(tmp_path, monkeypatch):
    _series(tmp_path / "s")
    (tmp_path / "s" / "notes").write_bytes(b"not listed by GDCM: its magic is read")

    def denied(file, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io, "open", denied, raising=False)
    with pytest.raises(PermissionError, match=rf"^\[Errno 13\] path: cannot read "
                                              rf"{_quoted(tmp_path / 's' / 'notes')} in the "
                                              r"DICOM folder: permission denied$") as info:
        read_image(tmp_path / "s")
    assert info.value.errno == errno.EACCES


@pytest.mark.parametrize("name", ["cut.dicom", "CUT.IMA", "cut.ima", "cut.dcm"])
def test_a_short_file_with_a_dicom_name_is_a_truncated_slice(tmp_path, name):
    _series(tmp_path / "s")
    (tmp_path / "s" / name).write_bytes(b"\0" * 60)       # too short for the DICM magic
    with pytest.raises(ValueError, match=rf"^path: cannot read DICOM file {_quoted(name)} in "
                                         rf"{_quoted(tmp_path / 's')}: it is truncated or "
                                         r"corrupt"):
        read_image(tmp_path / "s")


def test_series_uid_of_damaged_lengths_and_bytes():
    tag = b"\x20\x00\x0e\x00"
    # an explicit length past 32767 and an implicit one near 2**32: past the end
    assert io._series_uid(tag + b"UI" + struct.pack("<H", 40000) + b"1.2.3" + b"\0" * 30000) \
        is None
    assert io._series_uid(tag + struct.pack("<I", 0xFFFFFFF0) + b"1.2.3" + b"\0" * 30) is None
    # a byte that is not ASCII is replaced, not an error
    assert io._series_uid(tag + b"UI\x06\x001.2.\xff\x00") == "1.2.\ufffd"


def test_subfolders_and_dangling_links_do_not_end_the_folder_scan(tmp_path, monkeypatch):
    _series(tmp_path / "s")
    (tmp_path / "s" / "0sub").mkdir()
    os.symlink(tmp_path / "gone", tmp_path / "s" / "0link")
    (tmp_path / "s" / "zz.dcm").write_bytes(b"\0" * 60)   # truncated, scanned after them
    real = os.scandir

    @contextlib.contextmanager
    def by_name(path):
        with real(path) as entries:
            yield iter(sorted(entries, key=lambda e: e.name))

    monkeypatch.setattr(io.os, "scandir", by_name)
    with pytest.raises(ValueError, match=r"'zz\.dcm'.*truncated or corrupt"):
        read_image(tmp_path / "s")


class _Tags:
    """The two position tags of a series, as ``ImageSeriesReader.GetMetaData`` gives them."""

    def __init__(self, z, cosines="1\\0\\0\\0\\1\\0", xy="0\\0\\"):
        self.z, self.cosines, self.xy = z, cosines, xy

    def GetMetaData(self, i, key):
        return self.cosines if key == "0020|0037" else f"{self.xy}{self.z[i]}"


@pytest.mark.parametrize("z, uneven", [
    ((0, 1, 2, 3, 4), False),          # 1 mm apart
    ((0, 2, 4, 7), False),             # one gap 1.5 times the others: accepted
    ((0, 2, 4, 6.5), False),
    ((0, 2, 4, 7.2), True),
    ((0, 0.2, 2), True),               # three slices are enough to tell
    ((0, 0, 0), True),                 # all at one position
    ((0, 0), False),                   # two: nothing to compare
])
def test_slice_spacing_threshold(z, uneven):
    check = lambda: io._check_slice_spacing(_Tags(z), len(z), "/d", "1.2")   # noqa: E731
    if uneven:
        with pytest.raises(ValueError, match=r"^path: the slices of DICOM series '1\.2' in "
                                             r"'/d' are unevenly spaced"):
            check()
    else:
        check()


def test_slice_spacing_is_not_checked_without_usable_tags():
    z = (0, 0.2, 2)
    io._check_slice_spacing(_Tags(z, cosines="1\\0\\0\\0\\1"), 3, "/d", "1.2")
    io._check_slice_spacing(_Tags(z, xy="0\\"), 3, "/d", "1.2")


def test_a_missing_slice_names_the_series_and_the_folder(tmp_path):
    slices = _series(tmp_path / "s")
    slices[2].unlink()
    with pytest.raises(ValueError, match=r"series '1\.2\.826\.0\.1\.3680043\.2\.1125\.9' in "
                                         rf"{_quoted(tmp_path / 's')} are unevenly spaced"):
        read_image(tmp_path / "s")


def test_dicom_reader_failures_pass_on_gdcm_s_reason(tmp_path, monkeypatch):
    _series(tmp_path / "s")
    folder = _quoted(tmp_path / "s")

    def fail(*args):
        raise RuntimeError("ITK ERROR:\nthe reason")

    monkeypatch.setattr(io.sitk.ImageSeriesReader, "Execute", fail)
    with pytest.raises(ValueError, match=r"^path: cannot read DICOM series "
                                         rf"'1\.2\.826\.0\.1\.3680043\.2\.1125\.9' in {folder} "
                                         r"\(the reason\)$"):
        read_image(tmp_path / "s")
    monkeypatch.setattr(io.sitk.ImageSeriesReader, "GetGDCMSeriesIDs", staticmethod(fail))
    with pytest.raises(ValueError, match=rf"^path: cannot scan directory {folder} for DICOM "
                                         r"series \(the reason\)$"):
        read_image(tmp_path / "s")


@pytest.mark.parametrize("call", ["open", "replace"])
@pytest.mark.parametrize("writer", ["bytes", "mask"])
def test_failing_create_or_rename_names_the_target_and_keeps_errno(tmp_path, monkeypatch,
                                                                   call, writer):
    _fail_for(monkeypatch, call, ".pcnnseg-", OSError(errno.EROFS, "Read-only file system"))
    target = tmp_path / "out.nii.gz"
    with pytest.raises(OSError, match=rf"^\[Errno 30\] path: cannot write {_quoted(target)} "
                                      r"\(Read-only file system\)$") as info:
        if writer == "bytes":
            write_bytes_atomic(target, b"x")
        else:
            write_mask(target, _mask(), _like())
    assert info.value.errno == errno.EROFS and _listing(tmp_path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_failing_fsync_of_an_image_names_the_target(tmp_path, monkeypatch):
    _fail_on_temp_files(monkeypatch, "fsync", OSError(errno.EIO, "Input/output error"))
    with pytest.raises(OSError, match=rf"^\[Errno 5\] path: cannot write {_quoted(tmp_path / 'm.mha')} "
                                      r"\(Input/output error\)$") as info:
        write_mask(tmp_path / "m.mha", _mask(), _like())
    assert info.value.errno == errno.EIO and _listing(tmp_path) == []


def test_an_unexplained_writer_failure_is_an_io_error(tmp_path, monkeypatch):
    def odd(img, path, *args):
        raise RuntimeError("ITK ERROR: something unexpected")

    monkeypatch.setattr(io.sitk, "WriteImage", odd)
    with pytest.raises(OSError, match=r"\(ITK ERROR: something unexpected\)$") as info:
        write_mask(tmp_path / "m.mha", _mask(), _like())
    assert info.value.errno == errno.EIO


def test_temporary_files_are_ours_alone_and_finals_follow_the_umask(tmp_path, monkeypatch):
    created, names, real_open, real_replace = [], [], os.open, os.replace

    def spy_open(path, flag, *args, **kwargs):
        if flag & os.O_CREAT:
            created.append(flag)
        return real_open(path, flag, *args, **kwargs)

    def spy_replace(src, dst):
        names.append(os.path.basename(src))
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "open", spy_open)
    monkeypatch.setattr(io.os, "replace", spy_replace)
    old = os.umask(0)
    try:
        write_bytes_atomic(tmp_path / "a.json", b"{}")
        write_mask(tmp_path / "m.nii.gz", _mask(), _like())
    finally:
        os.umask(old)
    assert len(created) == 2 and all(f & os.O_EXCL and f & os.O_CLOEXEC
                                     and f & os.O_ACCMODE == os.O_RDWR for f in created)
    assert re.fullmatch(r"\.pcnnseg-[0-9a-f]{8}\.tmp", names[0])
    assert re.fullmatch(r"\.pcnnseg-[0-9a-f]{8}\.nii\.gz", names[1])
    for name in ("a.json", "m.nii.gz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666


def test_a_taken_temporary_name_is_skipped(tmp_path, monkeypatch):
    tokens = iter(["00000000", "00000000", "11111111"])
    monkeypatch.setattr(io.secrets, "token_hex", lambda n: next(tokens))
    write_bytes_atomic(tmp_path / "a.bin", b"first")     # takes .pcnnseg-00000000.tmp
    (tmp_path / ".pcnnseg-00000000.tmp").write_bytes(b"someone else's")
    write_bytes_atomic(tmp_path / "b.bin", b"second")
    assert (tmp_path / "b.bin").read_bytes() == b"second"
    assert (tmp_path / ".pcnnseg-00000000.tmp").read_bytes() == b"someone else's"


@pytest.mark.parametrize("name", ["m.mha", "m.nrrd"])
def test_masks_are_written_compressed(tmp_path, name):
    like = Image(np.zeros((40, 48, 48), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0),
                 tuple(np.eye(3).ravel()))
    write_mask(tmp_path / name, np.zeros((40, 48, 48), bool), like)
    assert (tmp_path / name).stat().st_size < 40 * 48 * 48 // 10


def _on_temp_fd(fd):
    return ".pcnnseg-" in os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_short_writes_and_reads_are_completed(tmp_path, monkeypatch):
    calls, real_write, real_pread = [], os.write, os.pread

    def count():
        calls.append(1)
        if len(calls) > 200:
            raise OSError(errno.EIO, "looping")

    def trickle_write(fd, data):
        if not _on_temp_fd(fd):
            return real_write(fd, data)
        count()
        return real_write(fd, bytes(data[:1]))

    def trickle_pread(fd, n, at):
        if _on_temp_fd(fd):
            count()
            n = min(n, 1)
        return real_pread(fd, n, at)

    monkeypatch.setattr(io.os, "write", trickle_write)
    monkeypatch.setattr(io.os, "pread", trickle_pread)
    write_bytes_atomic(tmp_path / "a.bin", b"abcdef")
    assert (tmp_path / "a.bin").read_bytes() == b"abcdef"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_file_longer_than_written_is_refused_even_read_byte_by_byte(tmp_path, monkeypatch):
    real_write, real_pread = os.write, os.pread

    def write_one_more(fd, data):      # a file system that appends a stray byte
        real_write(fd, bytes(data) + b"!")
        return len(data)

    monkeypatch.setattr(io.os, "write", write_one_more)
    monkeypatch.setattr(io.os, "pread", lambda fd, n, at: real_pread(fd, min(n, 1), at))
    with pytest.raises(OSError, match=r"^\[Errno 5\] path: cannot write .*a\.bin': 7 bytes read back "
                                      r"differ from the 6 written$") as info:
        write_bytes_atomic(tmp_path / "a.bin", b"abcdef")
    assert info.value.errno == errno.EIO and _listing(tmp_path) == []


def test_a_write_of_zero_bytes_says_the_disk_is_full(tmp_path, monkeypatch):
    monkeypatch.setattr(io.os, "write", lambda fd, data: 0)
    with pytest.raises(OSError, match=r"out\.bin' \(No space left on device\)$"):
        write_bytes_atomic(tmp_path / "out.bin", b"abc")


def test_wrong_data_and_pictures_are_named(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match=r"^data: expected bytes, got str$"):
        write_bytes_atomic(tmp_path / "a.bin", "text")
    with pytest.raises(ValueError, match=r"^array: expected a \(H, W\) or \(H, W, 3\) uint8 "
                                         r"array, got float64 with shape \(4, 5\)$"):
        write_png(tmp_path / "a.png", np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"^array: expected a \(H, W\) or \(H, W, 3\) uint8 "
                                         r"array \(a PNG holds one 2-D picture, not a volume\), "
                                         r"got uint8 with shape \(4, 5, 6\)$"):
        write_png(tmp_path / "a.png", np.zeros((4, 5, 6), np.uint8))
    import cv2
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flags: np.zeros((1, 1), np.uint8))
    with pytest.raises(ValueError, match=r"^array: PNG encoding failed for shape \(8, 9\)$"):
        write_png(tmp_path / "a.png", np.full((8, 9), 7, np.uint8))
    assert _listing(tmp_path) == []


def test_check_mask_format_names_path_by_default():
    with pytest.raises(ValueError, match=r"^path: \.jpg compresses with losses"):
        io.check_mask_format("a.jpg", (4, 5))


@pytest.mark.parametrize("name", ["m.nii", "m.nii.gz"])
def test_nifti_refuses_a_direction_that_is_not_a_rotation(tmp_path, name):
    scaled = Image(np.zeros((6, 16, 20)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0),
                   (1.2, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"^path: NIfTI stores only orthonormal directions"):
        write_mask(tmp_path / name, _mask(), scaled)
    assert _listing(tmp_path) == []


def test_nifti_takes_a_rotation_rounded_to_six_digits(tmp_path):
    c, s = round(np.cos(np.pi / 6), 6), round(np.sin(np.pi / 6), 6)   # 7e-7 off orthonormal
    rotated = Image(np.zeros((6, 16, 20)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0),
                    (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    write_mask(tmp_path / "m.nii.gz", _mask(), rotated)
    np.testing.assert_allclose(read_image(tmp_path / "m.nii.gz").direction, rotated.direction,
                               atol=1e-5)


def test_a_file_that_does_not_read_back_says_why(tmp_path, monkeypatch):
    def garbage(img, path, *args):
        with open(path, "wb") as fh:
            fh.write(b"not an image")

    monkeypatch.setattr(io.sitk, "WriteImage", garbage)
    with pytest.raises(OSError, match=rf"^\[Errno 5\] path: cannot write {_quoted(tmp_path / 'm.mha')}: the "
                                      r"file written does not read back \(cannot read it as an "
                                      r"image \([^\n]+\)\); is the disk full\?$") as info:
        write_mask(tmp_path / "m.mha", _mask(), _like())
    assert info.value.errno == errno.EIO
    # the temporary file is gone: its name, however the reader quoted it, is not shown
    assert ".pcnnseg-" not in str(info.value)


def test_a_file_that_reads_back_other_voxels_is_an_io_error(tmp_path, monkeypatch):
    real = io._read_file

    def flipped(path):
        image = real(path)
        image.array[0, 0, 0] ^= 1
        return image

    monkeypatch.setattr(io, "_read_file", flipped)
    with pytest.raises(OSError, match="reads back with other voxels") as info:
        write_mask(tmp_path / "m.mha", _mask(), _like())
    assert info.value.errno == errno.EIO


def test_invalid_geometry_and_like_are_explained(tmp_path):
    bad = Image(np.zeros((6, 16, 20)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"^like: invalid geometry for a 3-D image \((?!None\))"
                                         r"[^\n]+\)$"):
        write_mask(tmp_path / "m.mha", _mask(), bad)
    with pytest.raises(TypeError, match=r"^like: expected a pcnnseg\.io\.Image, got int$"):
        write_mask(tmp_path / "m.mha", _mask(), 3)
    flat = Image(np.zeros((6, 16, 20)), (1.0, 1.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"^mask: expected a 2-D or 3-D array matching like's "
                                         r"2-D geometry, got shape \(6, 16, 20\)$"):
        write_mask(tmp_path / "m.mha", _mask(), flat)
    assert _listing(tmp_path) == []


def test_same_grid_rounds_both_sides_alike():
    from pcnnseg.io import check_same_grid
    a = Image(np.zeros((2, 3, 4)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    b = Image(a.array, a.spacing, (0.0, 0.0, 0.123456), a.direction)
    with pytest.raises(ValueError, match=r"got \(0\.0, 0\.0, 0\.1235\);"):
        check_same_grid(a, b, "a", "b")


def test_case_convention_of_either_collection_or_none(tmp_path):
    from tests.test_io import _fake_case_2023
    assert case_convention(_fake_case(tmp_path, "A_1")) == "2018"
    assert case_convention(_fake_case_2023(tmp_path, "BraTS-X-1")[0]) == "2023"
    (tmp_path / "empty").mkdir()
    assert case_convention(tmp_path / "empty") is None


def test_brats_folder_messages_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"^root: no such directory: "
                                                rf"{_quoted(tmp_path / 'no')}$"):
        find_brats_cases(tmp_path / "no")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(ValueError, match=r"^root: expected a directory of BraTS case folders, "
                                         rf"got a file: {_quoted(tmp_path / 'f')}$"):
        find_brats_cases(tmp_path / "f")
    (tmp_path / "empty").mkdir()    # no files at all: named as in the 2018 convention
    with pytest.raises(FileNotFoundError, match=r"^case_dir: missing sequence 'flair' file "
                                                r"'.*empty_flair\.nii\.gz'$"):
        load_brats_case(tmp_path / "empty")


def test_sequences_as_one_name_or_none(tmp_path):
    case = _fake_case(tmp_path, "A_1")
    assert list(load_brats_case(case, sequences="t2", labels=False).images) == ["t2"]
    with pytest.raises(ValueError, match=r"^sequences: expected at least one sequence name, "
                                         r"got none$"):
        load_brats_case(case, sequences=())


@pytest.mark.parametrize("seg, message", [
    (np.array([0.0, 1.5]).reshape(1, 1, 2), "got non-integer values of dtype float64"),
    (np.array([0.0, np.nan]).reshape(1, 1, 2), "got non-integer values of dtype float64"),
    (np.array([0j, 1j]).reshape(1, 1, 2), "got dtype complex128"),
])
def test_labels_that_are_not_integers_are_named(seg, message):
    with pytest.raises(ValueError, match=rf"^labels: expected integer labels in x_seg\.nii\.gz, "
                                         rf"{message}$"):
        io._labels_2018(seg, "2018", "x_seg.nii.gz")
    assert np.array_equal(io._labels_2018(np.array([[[0.0, 4.0]]]), "2018", "x"), [[[0, 4]]])


def test_a_directory_as_target_keeps_its_errno(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match=r"^\[Errno 21\] path: expected a file name, "
                                                rf"got a directory: {_quoted(tmp_path / 'd')}$") as info:
        write_bytes_atomic(tmp_path / "d", b"x")
    assert info.value.errno == errno.EISDIR
