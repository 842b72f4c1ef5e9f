"""The pcnnseg command and image reading / atomic writing."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from pcnnseg import PCNN, phantom, signature
from pcnnseg.cli import main
from pcnnseg.io import read_image, write_bytes_atomic, write_png


def test_help_lists_signature(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "signature" in capsys.readouterr().out


def test_signature_on_phantom_by_default(capsys, tmp_path):
    png = tmp_path / "ft.png"
    assert main(["signature", "--n-iter", "12", "--json", "--fire-time", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    image, _ = phantom.make_slice(seed=0)
    np.testing.assert_allclose(out["normalized"], signature(image, n_iter=12))
    assert "phantom" in out["source"] and len(out["counts"]) == 12
    picture = read_image(png).array
    assert picture.shape == image.shape and picture[image > 0].min() > 0


def test_signature_on_volume_file_takes_middle_slice(capsys, tmp_path):
    volume, _ = phantom.make_volume((16, 40, 40), seed=1)
    path = tmp_path / "vol.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(path))
    assert main(["signature", str(path), "--model", "pcnn", "--n-iter", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["normalized"], signature(volume[8], PCNN(), n_iter=6), rtol=1e-6)
    assert main(["signature", str(path), "--slice", "40"]) == 2
    assert "--slice" in capsys.readouterr().err


def test_table_output(capsys):
    assert main(["signature", "--n-iter", "3", "--model", "icm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["k", "G[k]", "G[k]/HW", "entropy"]
    assert len(lines) == 6


@pytest.mark.parametrize("content", [None, b"not an image at all", b""])
def test_missing_or_corrupt_file_is_a_clear_error(tmp_path, capsys, content):
    path = tmp_path / "scan.nii.gz"
    if content is not None:
        path.write_bytes(content)
    assert main(["signature", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "scan.nii.gz" in err
    error = FileNotFoundError if content is None else ValueError
    with pytest.raises(error, match="path"):
        read_image(path)


def test_read_image_keeps_geometry_and_greys_colour(tmp_path):
    img = sitk.GetImageFromArray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    img.SetSpacing((0.5, 1.0, 2.5))
    img.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(img, str(tmp_path / "a.mha"))
    loaded = read_image(tmp_path / "a.mha")
    assert loaded.array.shape == (2, 3, 4) and loaded.spacing == (0.5, 1.0, 2.5)
    assert loaded.origin == (1.0, 2.0, 3.0)
    rgb = np.zeros((5, 6, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 30, 60, 90
    write_png(tmp_path / "c.png", rgb)
    np.testing.assert_allclose(read_image(tmp_path / "c.png").array, 60.0)
    with pytest.raises(ValueError, match="directory"):
        read_image(tmp_path)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(TypeError, match="data: expected bytes"):
        write_bytes_atomic(target, object())  # cannot be written
    assert os.listdir(tmp_path) == []
    write_bytes_atomic(target, b"abc")
    assert target.read_bytes() == b"abc" and os.listdir(tmp_path) == ["out.bin"]
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "x.png", np.zeros((4, 4), dtype=np.float32))
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_console_script_module_runs():
    out = subprocess.run([sys.executable, "-m", "pcnnseg", "signature", "--n-iter", "2"],
                         capture_output=True, text=True, check=True).stdout
    assert "phantom" in out


def test_installed_console_script_runs():
    import shutil
    exe = shutil.which("pcnnseg") or os.path.join(os.path.dirname(sys.executable), "pcnnseg")
    if not os.path.exists(exe):
        pytest.skip("the pcnnseg console script is not installed in this environment")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "segment" in out and "signature" in out


def test_cli_reports_os_errors_without_traceback(tmp_path, capsys):
    assert main(["signature", "--n-iter", "2", "--fire-time", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err


def test_segment_refuses_a_picture_output_for_a_volume_before_the_work(tmp_path, capsys,
                                                                       monkeypatch):
    """-o mask.png for a volume: exit 2 naming -o, said before segmenting, nothing written."""
    import pcnnseg.tumor

    def must_not_run(*args, **kwargs):
        raise AssertionError("segmented before refusing the output")

    monkeypatch.setattr(pcnnseg.tumor, "segment_tumor", must_not_run)
    assert main(["segment", "-q", "-o", str(tmp_path / "mask.png")]) == 2
    err = capsys.readouterr().err
    assert "-o:" in err and "mask.png" in err and "volume" in err and ".pcnnseg-" not in err
    assert os.listdir(tmp_path) == []
