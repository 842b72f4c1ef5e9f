"""cnn_baseline.slice_file: the compact file of training slices, and training from it."""
import json
import lzma

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cnn_baseline  # noqa: E402
from cnn_baseline import data, slice_file, train  # noqa: E402
from pcnnseg.io import load_brats_case  # noqa: E402
from tests.test_baseline import _fake_brats  # noqa: E402


def _synthetic(name, n, seed, regions=1):
    """``n`` slices with a bright square that is the target of every region."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 0.5, (n, 4, 128, 128)).astype(np.float32)
    targets = np.zeros((n, regions, 128, 128), dtype=np.float32)
    for k in range(n):
        y, x = rng.integers(10, 90, 2)
        images[k, :, y:y + 20, x:x + 20] += 0.5
        targets[k, :, y:y + 20, x:x + 20] = 1
    return name, "synthetic", images, targets


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("collections")
    one, two = root / "one", root / "two"
    one.mkdir(), two.mkdir()
    _fake_brats(one, ["A1", "A2", "A3"])
    _fake_brats(two, ["B1", "B2"])
    out = root / "slices.npz.xz"
    assert slice_file.main([str(one), str(two), "-o", str(out)]) == 0
    return one, two, out


def test_file_holds_the_extracted_slices_quantised(folders):
    one, _, path = folders
    cases, collections, regions = slice_file.read_slice_file(path)
    assert regions == data.REGIONS and list(cases) == ["A1", "A2", "A3", "B1", "B2"]
    assert collections == {"A1": "one", "A2": "one", "A3": "one", "B1": "two", "B2": "two"}
    expected = data.extract_slices(load_brats_case(one / "A2"), regions=data.REGIONS)
    images, targets = cases["A2"]
    assert images.dtype == targets.dtype == np.float32
    assert images.shape == expected.images.shape and targets.shape == expected.targets.shape
    assert np.abs(images - expected.images).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(images, np.round(expected.images * 255) / np.float32(255))
    assert np.array_equal(targets, expected.targets) and targets.any()


def test_training_from_the_file_uses_the_folders_split(folders, tmp_path):
    one, two, path = folders
    common = ["--epochs", "1", "--no-progress", "--augment", "0", "--regions", *data.REGIONS]
    assert train.main([str(one), str(two), "--out", str(tmp_path / "dirs")] + common) == 0
    export = tmp_path / "w.pt"
    assert train.main(["--slices", str(path), "--out", str(tmp_path / "file"),
                       "--export", str(export)] + common) == 0
    from_dirs, from_file = (json.loads((tmp_path / d / "split.json").read_text())
                            for d in ("dirs", "file"))
    for key in ("train_cases", "val_cases", "collections", "train_slices", "val_slices"):
        assert from_dirs[key] == from_file[key]
    assert from_file["slices"] == str(path) and from_dirs["slices"] is None
    assert cnn_baseline.load_pretrained(path=export).info["split"]["slices"] == str(path)
    # one region of the three, and the first case of each collection only
    assert train.main(["--slices", str(path), "--out", str(tmp_path / "wt"), "--cases", "2",
                       "--epochs", "1", "--no-progress"]) == 0
    split = json.loads((tmp_path / "wt" / "split.json").read_text())
    assert sorted(split["train_cases"] + split["val_cases"]) == ["A1", "A2", "B1", "B2"]


def test_training_needs_exactly_one_source(folders, tmp_path, capsys):
    one, _, path = folders
    assert train.main(["--no-progress", "--out", str(tmp_path / "r")]) == 2
    assert train.main([str(one), "--slices", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "either" in capsys.readouterr().err
    bad = tmp_path / "bad.npz.xz"
    bad.write_bytes(b"not lzma")
    assert train.main(["--slices", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()
    wt_only = tmp_path / "wt.npz.xz"
    slice_file.write_slice_file(wt_only, [_synthetic("a", 2, 0), _synthetic("b", 2, 1)],
                                ["whole_tumor"])
    assert train.main(["--slices", str(wt_only), "--out", str(tmp_path / "r"),
                       "--regions", "enhancing"]) == 2
    assert "holds the regions" in capsys.readouterr().err


def test_write_rejects_bad_slices_and_leaves_nothing(tmp_path):
    path = tmp_path / "s.npz.xz"
    good = _synthetic("a", 3, 0)
    nan = list(_synthetic("b", 2, 1))
    nan[2][0, 0, 0, 0] = np.nan
    grey = list(_synthetic("c", 2, 2))
    grey[3][0, 0, 5, 5] = 0.5
    cases = [
        ([], "at least one"),
        ([good, good], "distinct"),
        ([tuple(nan)], "NaN"),
        ([tuple(grey)], "0 / 1"),
        ([("d", "x", good[2][:, :3], good[3])], r"images \(S, 4"),
        ([("e", "x", good[2], good[3][:2])], "targets"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            slice_file.write_slice_file(path, bad, ["whole_tumor"])
    with pytest.raises(ValueError, match="regions"):
        slice_file.write_slice_file(path, [good], ["necrosis"])
    assert not list(tmp_path.iterdir())


def test_read_rejects_what_is_not_a_slice_file(tmp_path):
    path = tmp_path / "s.npz.xz"
    slice_file.write_slice_file(path, [_synthetic("a", 2, 0)], ["whole_tumor"])
    images, targets = slice_file.read_slice_file(path)[0]["a"]
    assert images.shape == (2, 4, 128, 128) and targets.sum() == 2 * 400
    with pytest.raises(FileNotFoundError, match="no slice file"):
        slice_file.read_slice_file(tmp_path / "missing.npz.xz")
    raw = path.read_bytes()
    truncated, corrupt, other = (tmp_path / n for n in ("t.xz", "c.xz", "o.xz"))
    truncated.write_bytes(raw[: len(raw) // 2])
    corrupt.write_bytes(raw[:100] + bytes(200) + raw[300:])
    other.write_bytes(lzma.compress(b"PK not an archive"))
    for bad in (truncated, corrupt, other):
        with pytest.raises(ValueError, match="not a readable slice file"):
            slice_file.read_slice_file(bad)


def test_quantize_rounds_and_clips():
    q = slice_file.quantize_images(np.array([-0.1, 0.0, 0.3, 1 / 255 * 0.49, 1.0, 1.2]))
    assert q.dtype == np.uint8 and q.tolist() == [0, 0, 76, 0, 255, 255]


def test_cli_reports_missing_labels_and_writes_nothing(tmp_path):
    _fake_brats(tmp_path, ["A"])
    (tmp_path / "A" / "A_seg.nii.gz").unlink()
    out = tmp_path / "s.npz.xz"
    assert slice_file.main([str(tmp_path), "-o", str(out)]) == 2
    assert not out.exists()
