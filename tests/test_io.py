"""pcnnseg.io: DICOM series, atomic mask writing, BraTS case folders."""
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from pcnnseg import io
from pcnnseg.io import (BratsCase, Image, find_brats_cases, load_brats_case, read_image,
                        write_mask)

BRATS = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats2018"

SPACING = (0.8, 0.9, 2.5)
ORIGIN = (-10.0, 20.0, 30.0)


def _write_dicom_series(folder, volume, *, series_uid, spacing=SPACING, origin=ORIGIN,
                        prefix="slice"):
    """Write ``volume`` (Z, Y, X) int16 as one DICOM file per slice."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z, plane in enumerate(volume):
        img = sitk.GetImageFromArray(plane)
        img.SetSpacing(spacing[:2])
        tags = {
            "0008|0060": "MR",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(str(c) for c in (origin[0], origin[1],
                                                     origin[2] + z * spacing[2])),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": str(spacing[2]),
            "0008|0018": f"{series_uid}.{z + 1}",
        }
        for key, value in tags.items():
            img.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{prefix}{z:03d}.dcm"))
        writer.Execute(img)


def _volume(shape=(6, 7, 9), seed=0):
    return np.random.default_rng(seed).integers(0, 3000, shape).astype(np.int16)


# ------------------------------------------------------------------------- DICOM


def test_dicom_series_round_trip(tmp_path):
    volume = _volume()
    _write_dicom_series(tmp_path / "series", volume, series_uid="1.2.826.0.1.3680043.2.1125.7")
    img = read_image(tmp_path / "series")
    np.testing.assert_array_equal(img.array, volume)
    np.testing.assert_allclose(img.spacing, SPACING, rtol=1e-5)
    np.testing.assert_allclose(img.origin, ORIGIN, atol=1e-4)
    np.testing.assert_allclose(img.direction, np.eye(3).ravel(), atol=1e-6)


def test_dicom_slices_are_ordered_by_position_not_file_name(tmp_path):
    volume = _volume(seed=1)
    _write_dicom_series(tmp_path / "s", volume[::-1], series_uid="1.2.3.4.9",
                        origin=(ORIGIN[0], ORIGIN[1], ORIGIN[2] + 5 * SPACING[2]),
                        spacing=SPACING[:2] + (-SPACING[2],))
    img = read_image(tmp_path / "s")
    np.testing.assert_array_equal(img.array, volume)
    np.testing.assert_allclose(img.origin, ORIGIN, atol=1e-4)


def test_directory_without_dicom_is_a_value_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no DICOM series") as exc:
        read_image(tmp_path)
    assert str(tmp_path) in str(exc.value)


def test_directory_with_two_series_needs_series_id(tmp_path):
    a, b = _volume(seed=2), _volume(seed=3)
    _write_dicom_series(tmp_path, a, series_uid="1.2.3.4.1", prefix="a")
    _write_dicom_series(tmp_path, b, series_uid="1.2.3.4.2", prefix="b")
    with pytest.raises(ValueError, match="series_id"):
        read_image(tmp_path)
    np.testing.assert_array_equal(read_image(tmp_path, series_id="1.2.3.4.2").array, b)
    with pytest.raises(ValueError, match="series_id"):
        read_image(tmp_path, series_id="9.9.9")


# -------------------------------------------------------------------- write_mask


def _like(shape=(5, 6, 7)):
    direction = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    return Image(array=np.zeros(shape, dtype=np.int16), spacing=(0.5, 1.5, 3.0),
                 origin=(1.0, -2.0, 4.5), direction=direction)


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.mha", "mask.nrrd"])
def test_write_mask_keeps_geometry(tmp_path, name):
    like = _like()
    mask = np.random.default_rng(0).random(like.array.shape) > 0.5
    write_mask(tmp_path / name, mask, like)
    assert os.listdir(tmp_path) == [name]
    back = sitk.ReadImage(str(tmp_path / name))
    assert back.GetPixelID() == sitk.sitkUInt8
    loaded = read_image(tmp_path / name)
    np.testing.assert_array_equal(loaded.array, mask.astype(np.uint8))
    np.testing.assert_allclose(loaded.spacing, like.spacing)
    np.testing.assert_allclose(loaded.origin, like.origin)
    np.testing.assert_allclose(loaded.direction, like.direction, atol=1e-6)


def test_write_mask_accepts_01_numbers_and_2d(tmp_path):
    like = Image(array=np.zeros((4, 3)), spacing=(0.7, 0.7), origin=(0.0, 0.0),
                 direction=(1.0, 0.0, 0.0, 1.0))
    mask = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 0], [1.0, 0, 1]])
    write_mask(tmp_path / "m.mha", mask, like)
    np.testing.assert_array_equal(read_image(tmp_path / "m.mha").array, mask)


def test_write_mask_shape_mismatch_names_both_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\(5, 6, 7\).*\(5, 6, 8\)"):
        write_mask(tmp_path / "m.nii.gz", np.zeros((5, 6, 8), bool), _like())
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mask, error", [
    (np.full((5, 6, 7), "a"), TypeError),      # unsupported dtype
    (np.full((5, 6, 7), 2), ValueError),       # not binary
    (np.full((5, 6, 7), np.nan), ValueError),
])
def test_write_mask_bad_values_write_nothing(tmp_path, mask, error):
    with pytest.raises(error, match="mask"):
        write_mask(tmp_path / "m.nii.gz", mask, _like())
    assert os.listdir(tmp_path) == []


def test_write_mask_bad_like_or_path(tmp_path):
    with pytest.raises(TypeError, match="like"):
        write_mask(tmp_path / "m.nii.gz", np.zeros((2, 2), bool), np.zeros((2, 2)))
    like = Image(np.zeros((2, 2)), (1.0, 1.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="single-file"):
        write_mask(tmp_path / "m.mhd", np.zeros((2, 2), bool), like)
    with pytest.raises(ValueError, match="m.unknownext"):
        write_mask(tmp_path / "m.unknownext", np.zeros((2, 2), bool), like)
    with pytest.raises(FileNotFoundError, match="folder"):
        write_mask(tmp_path / "nowhere" / "m.mha", np.zeros((2, 2), bool), like)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failing_write_leaves_no_files(tmp_path, monkeypatch, exc):
    seen = []

    def broken_write(image, path, *args, **kwargs):
        seen.append(path)
        with open(path, "wb") as fh:          # a partial file, as a crash would leave
            fh.write(b"partial")
        raise exc

    monkeypatch.setattr(io.sitk, "WriteImage", broken_write)
    with pytest.raises((OSError, KeyboardInterrupt)):
        write_mask(tmp_path / "seg.nii.gz", np.ones((5, 6, 7), bool), _like())
    # the temporary name keeps the format's extension so SimpleITK picks the same writer
    assert seen and seen[0].endswith(".nii.gz") and seen[0] != str(tmp_path / "seg.nii.gz")
    assert os.listdir(tmp_path) == []


def test_failing_write_keeps_existing_target(tmp_path, monkeypatch):
    target = tmp_path / "seg.mha"
    write_mask(target, np.zeros((5, 6, 7), bool), _like())
    before = target.read_bytes()

    def broken_write(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(io.sitk, "WriteImage", broken_write)
    with pytest.raises(OSError, match="seg.mha"):   # a writer failure is an I/O error
        write_mask(target, np.ones((5, 6, 7), bool), _like())
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["seg.mha"]


# ------------------------------------------------------------------------- BraTS

SHAPE = (4, 5, 6)


def _fake_case(root, name, *, seg=True, shapes=None, skip=()):
    case = root / name
    case.mkdir(parents=True)
    shapes = shapes or {}
    rng = np.random.default_rng(len(name))
    for key in ("flair", "t1", "t1ce", "t2") + (("seg",) if seg else ()):
        if key in skip:
            continue
        shape = shapes.get(key, SHAPE)
        if key == "seg":
            arr = rng.choice(np.array([0, 1, 2, 4], dtype=np.uint8), shape)
        else:
            arr = rng.integers(0, 500, shape).astype(np.int16)
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((1.0, 1.0, 1.0))
        img.SetOrigin((-3.0, 5.0, 7.0))
        sitk.WriteImage(img, str(case / f"{name}_{key}.nii.gz"))
    return case


def test_find_brats_cases(tmp_path):
    _fake_case(tmp_path, "Brats18_B_1")
    _fake_case(tmp_path, "Brats18_A_1", seg=False)
    _fake_case(tmp_path, "Brats18_C_1", skip=("t2",))    # incomplete: left out
    (tmp_path / "README.txt").write_text("not a case")
    (tmp_path / "empty").mkdir()
    assert [p.name for p in find_brats_cases(tmp_path)] == ["Brats18_A_1", "Brats18_B_1"]
    assert find_brats_cases(tmp_path / "empty") == []
    with pytest.raises(FileNotFoundError, match="root"):
        find_brats_cases(tmp_path / "missing")
    with pytest.raises(ValueError, match="root"):
        find_brats_cases(tmp_path / "README.txt")


def test_load_brats_case(tmp_path):
    case_dir = _fake_case(tmp_path, "Brats18_X_1")
    case = load_brats_case(case_dir)
    assert isinstance(case, BratsCase) and case.name == "Brats18_X_1"
    assert list(case.images) == ["flair", "t1", "t1ce", "t2"]
    assert all(a.shape == SHAPE for a in case.images.values()) and case.shape == SHAPE
    assert case.labels.dtype == np.uint8 and set(np.unique(case.labels)) <= {0, 1, 2, 4}
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "Brats18_X_1_t1ce.nii.gz")))
    np.testing.assert_array_equal(case.images["t1ce"], expected)
    assert case.geometry.origin == (-3.0, 5.0, 7.0)
    assert case.geometry.array is case.images["flair"]
    with pytest.raises(AttributeError):
        case.name = "other"

    only = load_brats_case(case_dir, sequences=("t2",), labels=False)
    assert list(only.images) == ["t2"] and only.labels is None


def test_load_brats_case_errors(tmp_path):
    unlabelled = _fake_case(tmp_path, "U", seg=False)
    with pytest.raises(FileNotFoundError, match="U_seg.nii.gz"):
        load_brats_case(unlabelled)
    assert load_brats_case(unlabelled, labels=False).labels is None

    missing = _fake_case(tmp_path, "M", skip=("t1ce",))
    with pytest.raises(FileNotFoundError, match="M_t1ce.nii.gz"):
        load_brats_case(missing)
    with pytest.raises(FileNotFoundError, match="case_dir"):
        load_brats_case(tmp_path / "nowhere")

    odd = _fake_case(tmp_path, "S", shapes={"t2": (4, 5, 7)})
    with pytest.raises(ValueError, match=r"S_flair.nii.gz.*\(4, 5, 6\).*S_t2.nii.gz.*\(4, 5, 7\)"):
        load_brats_case(odd)
    odd_seg = _fake_case(tmp_path, "L", shapes={"seg": (3, 5, 6)})
    with pytest.raises(ValueError, match="L_seg.nii.gz"):
        load_brats_case(odd_seg)

    corrupt = _fake_case(tmp_path, "C")
    (corrupt / "C_t1.nii.gz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="C_t1.nii.gz"):
        load_brats_case(corrupt)

    with pytest.raises(ValueError, match="sequences"):
        load_brats_case(missing, sequences=())
    with pytest.raises(ValueError, match="sequences"):
        load_brats_case(missing, sequences=("t1", "t1"))
    with pytest.raises(TypeError, match="sequences"):
        load_brats_case(missing, sequences=(1,))


def test_load_real_brats_case():
    if not BRATS.is_dir():
        pytest.skip(f"BraTS 2018 sample data not found at {BRATS}")
    cases = find_brats_cases(BRATS)
    assert cases, f"no complete case folder under {BRATS}"
    case = load_brats_case(cases[0], sequences=("flair",))
    assert case.shape == (155, 240, 240)
    assert case.images["flair"].dtype.kind in "iuf"
    np.testing.assert_allclose(case.geometry.spacing, (1.0, 1.0, 1.0))
    assert set(np.unique(case.labels)) <= {0, 1, 2, 4} and case.labels.any()
    assert (case.labels[case.images["flair"] == 0] == 0).all()


# ------------------------------------------------------------- BraTS 2023 naming

def _fake_case_2023(root, name, *, labels=(0, 1, 2, 3)):
    """A case folder in the BraTS 2023 layout: float32 sequences, labels 1/2/3."""
    case = root / name
    case.mkdir(parents=True)
    rng = np.random.default_rng(7)
    arrays = {}
    for key in ("t2f", "t1n", "t1c", "t2w", "seg"):
        if key == "seg":
            arr = rng.choice(np.array(labels, dtype=np.float32), SHAPE)
        else:
            arr = rng.integers(-50, 500, SHAPE).astype(np.float32)
        arrays[key] = arr
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(case / f"{name}-{key}.nii.gz"))
    return case, arrays


def test_find_brats_cases_reads_both_conventions(tmp_path):
    _fake_case(tmp_path, "Brats18_A_1")
    _fake_case_2023(tmp_path, "BraTS-SSA-00001-000")
    assert [p.name for p in find_brats_cases(tmp_path)] == ["BraTS-SSA-00001-000", "Brats18_A_1"]


def test_load_brats_case_2023_names_and_labels(tmp_path):
    case_dir, arrays = _fake_case_2023(tmp_path, "BraTS-SSA-00001-000")
    case = load_brats_case(case_dir)
    assert case.convention == "2023"
    assert list(case.images) == ["flair", "t1", "t1ce", "t2"]
    np.testing.assert_array_equal(case.images["flair"], arrays["t2f"])
    np.testing.assert_array_equal(case.images["t1ce"], arrays["t1c"])
    # enhancing tumor 3 becomes 4, the other labels stay
    expected = np.where(arrays["seg"] == 3, 4, arrays["seg"]).astype(np.uint8)
    np.testing.assert_array_equal(case.labels, expected)
    assert case.labels.dtype == np.uint8
    # 2023 names are aliases of the canonical ones
    only = load_brats_case(case_dir, sequences=("t2w",), labels=False)
    assert list(only.images) == ["t2"]
    with pytest.raises(ValueError, match="distinct"):
        load_brats_case(case_dir, sequences=("flair", "t2f"))
    with pytest.raises(ValueError, match="sequences.*'dwi'"):
        load_brats_case(case_dir, sequences=("dwi",))
    assert load_brats_case(_fake_case(tmp_path, "Brats18_B_1")).convention == "2018"


def test_load_brats_case_rejects_labels_of_the_other_convention(tmp_path):
    case_dir, _ = _fake_case_2023(tmp_path, "BraTS-X-00001-000", labels=(0, 2, 4))
    with pytest.raises(ValueError, match=r"BraTS-X-00001-000-seg.nii.gz.*2023.*4"):
        load_brats_case(case_dir)
    bad18 = _fake_case(tmp_path, "Brats18_Q_1")
    threes = sitk.GetImageFromArray(np.full(SHAPE, 3, np.uint8))
    threes.SetOrigin((-3.0, 5.0, 7.0))
    sitk.WriteImage(threes, str(bad18 / "Brats18_Q_1_seg.nii.gz"))
    with pytest.raises(ValueError, match=r"Brats18_Q_1_seg.nii.gz.*2018.*3"):
        load_brats_case(bad18)


SSA = BRATS.parent / "brats2023_ssa"


def test_load_real_brats_africa_case():
    if not SSA.is_dir():
        pytest.skip(f"BraTS-Africa sample data not found at {SSA}")
    case = load_brats_case(find_brats_cases(SSA)[0])
    assert case.convention == "2023" and case.shape == (155, 240, 240)
    assert case.images["flair"].dtype == np.float32
    assert set(np.unique(case.labels)) <= {0, 1, 2, 4} and (case.labels == 4).any()


def test_load_brats_case_rejects_sequences_on_another_grid(tmp_path):
    case = _fake_case(tmp_path, "G")
    img = sitk.ReadImage(str(case / "G_t2.nii.gz"))
    img.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(img, str(case / "G_t2.nii.gz"))
    with pytest.raises(ValueError, match=r"G_t2.nii.gz: expected the spacing of G_flair"):
        load_brats_case(case)
    img.SetSpacing((1.0, 1.0, 1.0))
    img.SetOrigin((0.0, 5.0, 7.0))
    sitk.WriteImage(img, str(case / "G_t2.nii.gz"))
    with pytest.raises(ValueError, match="origin"):
        load_brats_case(case)


# ------------------------------------------------- found by mutation testing (mutmut)

def test_missing_case_files_say_what_is_missing_and_how_to_go_on(tmp_path):
    unlabelled = _fake_case(tmp_path, "U", seg=False)
    with pytest.raises(FileNotFoundError) as err:
        load_brats_case(unlabelled)
    assert str(err.value) == (f"case_dir: missing labels file "
                              f"{str(unlabelled / 'U_seg.nii.gz')!r} (pass labels=False for "
                              f"unlabelled cases)")
    missing = _fake_case(tmp_path, "M", skip=("t1ce",))
    with pytest.raises(FileNotFoundError) as err:
        load_brats_case(missing)
    assert str(err.value) == (f"case_dir: missing sequence 't1ce' file "
                              f"{str(missing / 'M_t1ce.nii.gz')!r}")
    with pytest.raises(FileNotFoundError) as err:
        load_brats_case(tmp_path / "nowhere")
    assert str(err.value) == f"case_dir: no such directory: {str(tmp_path / 'nowhere')!r}"
    folder = _fake_case(tmp_path, "F")
    os.remove(folder / "F_t2.nii.gz")
    (folder / "F_t2.nii.gz").mkdir()
    with pytest.raises(ValueError, match=r"^case_dir: expected a regular file as sequence 't2'"):
        load_brats_case(folder)


def _image(shape=(2, 3, 4), spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    return Image(np.zeros(shape, np.float32), spacing, origin, tuple(np.eye(3).ravel()))


def test_same_grid_messages_and_absolute_tolerance():
    from pcnnseg.io import check_same_grid
    with pytest.raises(TypeError, match=r"^b: expected a pcnnseg.io.Image, got ndarray$"):
        check_same_grid(_image(), np.zeros(3), "a", "b")
    with pytest.raises(ValueError, match=r"^b: expected the shape of a \(2, 3, 4\), got "
                                         r"\(2, 3, 5\)$"):
        check_same_grid(_image(), _image((2, 3, 5)), "a", "b")
    with pytest.raises(ValueError, match=r"^b: expected the origin of a \(0\.0, 0\.0, 0\.1235\), "
                                         r"got \(0\.0, 0\.0, 0\.2\); the images must be "):
        check_same_grid(_image(origin=(0, 0, 0.123456)), _image(origin=(0, 0, 0.2)), "a", "b")
    # the tolerance is absolute: 0.05 mm off at 10 m from the origin is off
    with pytest.raises(ValueError, match="origin"):
        check_same_grid(_image(origin=(1e4, 0, 0)), _image(origin=(1e4 + 0.05, 0, 0)), "a", "b")
    check_same_grid(_image(origin=(1e4, 0, 0)), _image(origin=(1e4 + 5e-4, 0, 0)), "a", "b")
    with pytest.raises(ValueError, match="spacing"):
        check_same_grid(_image(), _image(spacing=(1.0, 1.0, 1.01)), "a", "b", tol=1e-3)


def test_png_colour_is_rgb_on_disk(tmp_path):
    import cv2
    from pcnnseg.io import write_png
    picture = np.zeros((4, 5, 3), np.uint8)
    picture[..., 0] = 200                       # red
    picture[1, 2] = (10, 20, 30)
    write_png(tmp_path / "rgb.png", picture)
    back = cv2.imread(str(tmp_path / "rgb.png"), cv2.IMREAD_UNCHANGED)   # OpenCV reads BGR
    np.testing.assert_array_equal(back[..., ::-1], picture)


@pytest.mark.parametrize("value, ok", [(255, True), (256, False), (-1, False),
                                       (2.5, False), (np.nan, False)])
def test_label_map_values_must_be_integers_0_to_255(tmp_path, value, ok):
    from pcnnseg.io import write_label_map
    labels = np.zeros((5, 6, 7), np.float64)
    labels[0, 0, 0] = value
    target = tmp_path / "labels.nii.gz"
    if ok:
        write_label_map(target, labels, _like())
        assert read_image(target).array[0, 0, 0] == value
    else:
        with pytest.raises(ValueError, match=r"^labels: expected integer labels in 0\.\.255$"):
            write_label_map(target, labels, _like())
        assert not target.exists()


def test_writers_name_their_argument(tmp_path):
    from pcnnseg.io import write_label_map, write_mask
    with pytest.raises(ValueError, match=r"^mask\b"):
        write_mask(tmp_path / "m.nii.gz", np.zeros((5, 6, 8)), _like())
    with pytest.raises(ValueError, match=r"^mask\b"):
        write_mask(tmp_path / "m.nii.gz", np.full((5, 6, 7), 0.5), _like())
    with pytest.raises(ValueError, match=r"^labels\b"):
        write_label_map(tmp_path / "l.nii.gz", np.zeros((5, 6, 8), np.uint8), _like())
    with pytest.raises(TypeError, match=r"^labels: expected an integer label map, got dtype "):
        write_label_map(tmp_path / "l.nii.gz", np.zeros((5, 6, 7), complex), _like())


def test_series_uid_is_read_from_explicit_and_implicit_dicom_bytes(tmp_path):
    uid = "1.2.826.0.1.3680043.2.1125.77"          # odd length: padded with a NUL
    _write_dicom_series(tmp_path / "s", _volume((1, 6, 7)), series_uid=uid)
    content = (tmp_path / "s" / "slice000.dcm").read_bytes()
    assert io._series_uid(content) == uid
    tag = b"\x20\x00\x0e\x00"
    # explicit VR: "UI" and a 2-byte length; a study UID tag before it is not taken
    explicit = b"\x20\x00\x0d\x00UI\x04\x001.2 " + tag + b"UI\x06\x001.2.3\x00" + b"\xff" * 4
    assert io._series_uid(explicit) == "1.2.3"
    # implicit VR: a 4-byte length, here 0x0106 = 262: past the end, so no UID
    assert io._series_uid(tag + b"\x06\x01\x00\x00" + b"9" * 10) is None
    assert io._series_uid(tag + b"\x05\x00\x00\x004.5.6trailing") == "4.5.6"
    # the first series tag counts, not a later one (a referenced series)
    assert io._series_uid(tag + b"UI\x02\x007 " + tag + b"UI\x02\x008 ") == "7"
    assert io._series_uid(b"no tag here") is None
    assert io._series_uid(tag + b"UI") is None                 # cut inside the header
    assert io._series_uid(tag + b"\x00\x00") is None           # too short for a length


def _read_back_altered(monkeypatch, change):
    """Make the writers' read-back see ``change(image)`` instead of the file."""
    real = io._read_file

    def altered(path, *args, **kwargs):
        return change(real(path, *args, **kwargs))
    monkeypatch.setattr(io, "_read_file", altered)


def test_a_write_that_reads_back_other_voxels_fails_and_keeps_the_target(tmp_path,
                                                                         monkeypatch):
    from dataclasses import replace
    from pcnnseg.io import write_mask
    target = tmp_path / "m.nii.gz"
    target.write_bytes(b"old")
    mask = np.zeros((5, 6, 7), bool)
    mask[2, 3, 4] = True

    def flip_one(image):
        array = image.array.copy()
        array[0, 0, 0] = 1
        return replace(image, array=array)
    _read_back_altered(monkeypatch, flip_one)
    with pytest.raises(OSError, match="reads back with other voxels"):
        write_mask(target, mask, _like())
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nii.gz"]


@pytest.mark.parametrize("what, change", [
    ("spacing", lambda v: (v[0] * (1 + 1e-4),) + tuple(v[1:])),
    ("origin", lambda v: (v[0] + 1e-4,) + tuple(v[1:])),
    ("direction", lambda v: (v[0], v[1] + 1e-4) + tuple(v[2:])),   # v[1] is 1
])
def test_geometry_read_back_is_compared_tightly(tmp_path, monkeypatch, what, change):
    from dataclasses import replace
    from pcnnseg.io import write_mask
    _read_back_altered(monkeypatch, lambda im: replace(im, **{what: change(getattr(im, what))}))
    with pytest.raises(ValueError, match=f"cannot hold the {what}"):
        write_mask(tmp_path / "m.nii.gz", np.zeros((5, 6, 7), bool), _like())


@pytest.mark.parametrize("suffix", ["", ".ima", ".IMA", ".dicom"])
def test_dicom_files_are_found_by_extension_or_by_their_magic(tmp_path, suffix):
    volume = _volume()
    _write_dicom_series(tmp_path / "s", volume, series_uid="1.2.3.4")
    for f in (tmp_path / "s").iterdir():
        f.rename(f.with_suffix(suffix))
    if suffix == "":   # without an extension only the "DICM" magic at byte 128 tells
        assert all((tmp_path / "s" / f.name).read_bytes()[128:132] == b"DICM"
                   for f in (tmp_path / "s").iterdir())
    np.testing.assert_array_equal(read_image(tmp_path / "s").array, volume)
    assert io._looks_like_dicom(next(os.scandir(tmp_path / "s")))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes").write_bytes(b"\0" * 128 + b"DICX")
    assert not io._looks_like_dicom(next(os.scandir(tmp_path / "other")))
