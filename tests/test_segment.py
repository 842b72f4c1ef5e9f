"""Segmentation maps, the overlay and the segment command."""
import numpy as np
import pytest
import SimpleITK as sitk

from pcnnseg import phantom, pulse
from pcnnseg.cli import main
from pcnnseg.io import read_image
from pcnnseg.metrics import dice
from pcnnseg.overlay import most_masked_slices, overlay_slices
from pcnnseg.segmentation import ALPHA_E, first_pulse_iteration, intensity_order_model, segment
from pcnnseg.tumor import segment_tumor


@pytest.fixture(scope="module")
def volume():
    return phantom.make_volume((24, 64, 64), seed=2)


@pytest.mark.parametrize("s", [1.0, 0.9, 0.5, 0.25, 0.11, 0.06])
def test_isolated_pixel_first_pulse_follows_formula(s):
    image = np.zeros((9, 9), dtype=np.float32)
    image[4, 4] = s
    result = pulse(image, intensity_order_model(), n_iter=60, value_range=(0, 1))
    assert result.fire_time[4, 4] == first_pulse_iteration(s, ALPHA_E)
    assert (result.fire_time >= 0).sum() == 1


def test_linking_pulls_first_pulses_forward():
    image, _ = phantom.make_slice((96, 96), seed=1)
    with_link = segment(image, levels=8, beta=0.2)
    without = segment(image, levels=8, beta=0.0)
    assert np.all(with_link >= without) and np.any(with_link > without)


def test_segment_levels_order_intensity():
    image, tumor = phantom.make_slice((96, 96), seed=4)
    labels = segment(image, levels=4)
    assert labels.min() == 0 and labels.max() == 4
    assert labels[image == 0].max() == 0
    assert labels[tumor].mean() > labels[(image > 0) & ~tumor].mean()
    assert segment(np.stack([image, image]), levels=4).shape == (2, 96, 96)
    with pytest.raises(ValueError, match="levels"):
        segment(image, levels=0)


def test_overlay_draws_mask_and_truth(volume):
    flair, truth = volume
    picks = most_masked_slices(truth, 3)
    assert len(picks) == 3 and truth[picks].sum() == np.sort(truth.sum(axis=(1, 2)))[-3:].sum()
    rgb = overlay_slices(flair, truth, truth, count=3)
    assert rgb.shape == (64, 3 * 64, 3) and rgb.dtype == np.uint8
    red = (rgb[..., 0] == 255) & (rgb[..., 1] == 40)
    assert red.any()
    only_truth = overlay_slices(flair, np.zeros_like(truth), truth)
    assert ((only_truth[..., 1] == 220) & (only_truth[..., 0] == 40)).any()


def test_segment_command_keeps_geometry(tmp_path, capsys, volume):
    flair, truth = volume
    img = sitk.GetImageFromArray(flair)
    img.SetSpacing((0.9, 0.8, 2.5))
    img.SetOrigin((10.0, -4.0, 3.0))
    src = tmp_path / "case_flair.nii.gz"
    sitk.WriteImage(img, str(src))
    out = tmp_path / "out" / "mask.nii.gz"
    out.parent.mkdir()
    assert main(["segment", str(src), "-o", str(out), "-q"]) == 0
    written = read_image(out)
    assert written.spacing == pytest.approx((0.9, 0.8, 2.5))
    assert written.origin == pytest.approx((10.0, -4.0, 3.0))
    np.testing.assert_array_equal(written.array > 0,
                                  segment_tumor(flair, spacing=(2.5, 0.8, 0.9)))
    assert (tmp_path / "out" / "mask_overlay.png").exists()
    assert "tumor voxels" in capsys.readouterr().out


def test_segment_command_on_phantom_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["segment", "-q"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phantom_tumor.nii.gz",
                                                          "phantom_tumor_overlay.png"]
    out = capsys.readouterr().out
    assert "(flair, t1, t1ce, t2)" in out
    assert float(out.split("Dice against the reference: whole tumor")[1]) > 0.95


def test_segment_command_png_output_keeps_mask_and_overlay_apart(tmp_path, volume):
    flair, _ = volume
    z = int(flair.sum(axis=(1, 2)).argmax())
    src = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(flair[z]), str(src))
    out = tmp_path / "slice_mask.png"
    assert main(["segment", str(src), "-o", str(out), "-q"]) == 0
    written = read_image(out).array
    assert set(np.unique(written)) <= {0, 1}
    np.testing.assert_array_equal(written > 0, segment_tumor(flair[z]))
    assert (tmp_path / "slice_mask_overlay.png").exists()
    assert main(["segment", str(src), "-o", str(out), "--overlay", str(out), "-q"]) == 2


def test_segment_command_names_outputs_after_a_folder(tmp_path, monkeypatch):
    from pcnnseg.cli import _output_paths, build_parser
    args = build_parser().parse_args(["segment", str(tmp_path / "series") + "/"])
    assert _output_paths(args) == ("series_tumor.nii.gz", "series_tumor_overlay.png")
    args = build_parser().parse_args(["segment", "scan.dcm"])
    assert _output_paths(args)[0] == "scan_tumor.nii.gz"


def test_segment_command_missing_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(tmp_path / "nope.nii.gz"), "-o", str(out), "-q"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------- multi-sequence command

def _write(path, array, spacing=(1.0, 1.0, 1.0)):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    """A phantom case written as a BraTS 2023 folder."""
    images, labels = phantom.make_case((32, 96, 96), seed=3)
    folder = tmp_path_factory.mktemp("cases") / "BraTS-X-00001-000"
    folder.mkdir()
    names = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w"}
    for key, name in names.items():
        _write(folder / f"{folder.name}-{name}.nii.gz", images[key])
    seg23 = np.where(labels == 4, 3, labels).astype(np.uint8)
    _write(folder / f"{folder.name}-seg.nii.gz", seg23)
    return folder, images, labels


def test_segment_command_on_a_case_folder_writes_2023_labels(tmp_path, capsys, case_files):
    from pcnnseg.metrics import brats_regions
    folder, images, labels = case_files
    out = tmp_path / "labels.nii.gz"
    assert main(["segment", str(folder), "--regions", "--label-convention", "2023",
                 "-o", str(out), "-q"]) == 0
    written = read_image(out).array
    assert set(np.unique(written)) <= {0, 1, 2, 3} and (written == 3).any()
    expected = segment_tumor(images, regions=True, label_convention="2023")
    np.testing.assert_array_equal(written, expected)
    text = capsys.readouterr().out
    assert "tumor core" in text and "enhancing" in text
    wt = float(text.split("whole tumor")[1].split(",")[0])
    assert wt == pytest.approx(dice(brats_regions(expected, convention="2023")["whole_tumor"],
                                    labels > 0), abs=1e-3)


def test_segment_command_adds_sequences_beside_the_flair_file(tmp_path, capsys, case_files):
    _, images, labels = case_files
    for key in images:
        _write(tmp_path / f"{key}.nii.gz", images[key])
    _write(tmp_path / "ref.nii.gz", labels)
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "--t2", str(tmp_path / "t2.nii.gz"),
                 "--labels", str(tmp_path / "ref.nii.gz"), "-o", str(out), "-q"]) == 0
    expected = segment_tumor({"flair": images["flair"], "t2": images["t2"]})
    np.testing.assert_array_equal(read_image(out).array > 0, expected)
    assert "(flair, t2)" in capsys.readouterr().out


def test_segment_command_errors_write_nothing(tmp_path, capsys, case_files):
    _, images, _ = case_files
    _write(tmp_path / "flair.nii.gz", images["flair"])
    _write(tmp_path / "small.nii.gz", images["t2"][:, :50])
    _write(tmp_path / "moved.nii.gz", images["t2"], spacing=(1.0, 1.0, 3.0))
    out = tmp_path / "out.nii.gz"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "--regions", "-o", str(out),
                 "-q"]) == 2
    assert "T1ce" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "--t2", str(tmp_path / "small.nii.gz"),
                 "-o", str(out), "-q"]) == 2
    assert "--t2: expected the shape of INPUT" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "--t2", str(tmp_path / "moved.nii.gz"),
                 "-o", str(out), "-q"]) == 2
    assert "--t2: expected the spacing of INPUT" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "--segmenter",
                 str(tmp_path / "none.npz"), "-o", str(out), "-q"]) == 2
    assert "segmenter" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_segment_command_brain_mask_and_segmenter(tmp_path, case_files):
    from pcnnseg.segmenter import fit_segmenter
    _, images, labels = case_files
    _write(tmp_path / "flair.nii.gz", images["flair"])
    half = (images["flair"] != 0).astype(np.uint8)
    half[:, :, 48:] = 0
    _write(tmp_path / "brain.nii.gz", half)
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "--brain-mask",
                 str(tmp_path / "brain.nii.gz"), "-o", str(out), "-q"]) == 0
    np.testing.assert_array_equal(read_image(out).array > 0,
                                  segment_tumor(images["flair"], brain_mask=half))
    pairs = [phantom.make_case((32, 96, 96), seed=s) for s in (0, 1)]
    fitted = fit_segmenter([({"flair": i["flair"]}, lab) for i, lab in pairs],
                           sequences=("flair",), max_iter=10, voxels_per_case=2000)
    fitted.save(tmp_path / "seg.npz")
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "--segmenter",
                 str(tmp_path / "seg.npz"), "-o", str(out), "-q"]) == 0
    np.testing.assert_array_equal(read_image(out).array > 0,
                                  segment_tumor(images["flair"], segmenter=fitted))


def test_segment_command_keeps_satellites_when_asked(tmp_path, capsys):
    flair = np.zeros((9, 40, 41), np.float32)
    flair[:, 2:38, 2:39] = 100.0
    flair[2:7, 5:12, 5:12] = 300.0
    flair[2:7, 25:31, 25:31] = 300.0
    _write(tmp_path / "flair.nii.gz", flair)
    out = tmp_path / "mask.nii.gz"
    for share in ("0.1", None):
        assert main(["segment", str(tmp_path / "flair.nii.gz"), "-o", str(out), "-q"]
                    + (["--satellites", share] if share else [])) == 0
        expected = segment_tumor(flair, **({"satellites": float(share)} if share else {}))
        np.testing.assert_array_equal(read_image(out).array > 0, expected)
        assert expected[4, 28, 28] == bool(share)
    out.unlink()
    assert main(["segment", str(tmp_path / "flair.nii.gz"), "-o", str(out), "-q",
                 "--satellites", "1.5"]) == 2
    assert "satellites: expected a value in [0, 1]" in capsys.readouterr().err
    assert not out.exists()


def test_segment_command_checks_the_overlay_folder_first(tmp_path, capsys):
    out = tmp_path / "mask.nii.gz"
    assert main(["segment", "-o", str(out), "--overlay", str(tmp_path / "no" / "o.png"),
                 "-q"]) == 2
    assert "--overlay: folder does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
