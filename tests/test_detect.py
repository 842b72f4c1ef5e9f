"""Selective-search proposals, box helpers and the signature-distance detector."""
import json

import numpy as np
import pytest
import skimage.segmentation

import reference as ref
from pcnnseg_kernels.proposals import (felzenszwalb_labels, hierarchical_grouping, region_statistics,
                               stable_argsort_nonnegative, texture_bins)
from pcnnseg import phantom, pulse
from pcnnseg.boxes import box_iou, largest_component_box
from pcnnseg.cli import main
from pcnnseg.detection import (Detection, Reference, box_signatures, default_reference, detect,
                            detection_stimulus, features, fit_reference)
from pcnnseg.proposals import felzenszwalb, selective_search
from pcnnseg.segmentation import intensity_order_model


@pytest.fixture(scope="module")
def phantom_slice():
    return phantom.make_slice((120, 112), seed=4)


@pytest.fixture(scope="module")
def phantom_reference():
    images, masks = zip(*(phantom.make_slice((120, 112), seed=s) for s in (11, 12, 13)))
    return fit_reference(images, masks)


# --- kernels ---------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_radix_argsort_is_a_stable_sort(seed):
    rng = np.random.default_rng(seed)
    x = rng.random(5000).astype(np.float32)
    x[rng.random(x.size) < 0.3] = 0.0
    x[::7] = x[3]  # ties
    np.testing.assert_array_equal(stable_argsort_nonnegative(x), np.argsort(x, kind="stable"))


@pytest.mark.parametrize("k, min_size", [(0.05, 1), (0.3, 4), (2.0, 10)])
@pytest.mark.parametrize("shape", [(13, 17), (1, 9), (9, 1)])
def test_felzenszwalb_kernel_matches_reference(k, min_size, shape):
    rng = np.random.default_rng(3)
    image = rng.random(shape).astype(np.float32)
    labels, n = felzenszwalb_labels(image, k, min_size)
    expected = ref.felzenszwalb(image, k, min_size)
    np.testing.assert_array_equal(labels, expected)
    assert n == expected.max() + 1


def _same_partition(a, b):
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def test_felzenszwalb_agrees_with_skimage_on_clear_regions():
    image = np.zeros((40, 50))
    image[5:20, 5:30] = 1.0
    image[25:38, 10:45] = 0.5
    ours = felzenszwalb(image, scale=100, sigma=0, min_size=5)
    theirs = skimage.segmentation.felzenszwalb(image, scale=100, sigma=0, min_size=5,
                                               channel_axis=None)
    assert ours.max() + 1 == 3
    assert _same_partition(ours, theirs)


def _statistics(image, k=0.2, min_size=3):
    labels, n = felzenszwalb_labels(image, k, min_size)
    colour = np.minimum((image * 25).astype(np.int64), 24)
    gy, gx = np.gradient(image.astype(np.float64))
    tex = texture_bins(gx, gy, 8, 10)
    return labels, n, colour, tex, region_statistics(labels, n, colour, 25, tex, 10)


def test_region_statistics():
    rng = np.random.default_rng(5)
    image = rng.random((15, 12)).astype(np.float32)
    labels, n, _, _, (size, box, colour, texture, pairs) = _statistics(image)
    assert size.sum() == image.size
    for r in range(n):
        ys, xs = np.nonzero(labels == r)
        assert size[r] == len(ys)
        assert tuple(box[r]) == (xs.min(), ys.min(), xs.max(), ys.max())
    np.testing.assert_allclose(colour.sum(axis=1), 1.0)
    np.testing.assert_allclose(texture.sum(axis=1), 1.0)
    touching = {tuple(sorted((labels[i, j], labels[i + di, j + dj])))
                for i in range(15) for j in range(12) for di, dj in ((0, 1), (1, 0))
                if i + di < 15 and j + dj < 12 and labels[i, j] != labels[i + di, j + dj]}
    assert sorted(touching) == [tuple(p) for p in pairs]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouping_kernel_matches_reference(seed):
    rng = np.random.default_rng(seed)
    image = rng.random((12, 14)).astype(np.float32)
    labels, n, colour, tex, stats = _statistics(image)
    assert n >= 4
    boxes = hierarchical_grouping(*stats, float(image.size))
    expected = ref.grouping(labels, colour, 25, tex, 10)
    np.testing.assert_array_equal(boxes, expected)
    assert len(boxes) == 2 * n - 1
    assert tuple(boxes[-1]) == (0, 0, 14, 12)  # the last merge covers the image


def test_texture_bins_of_a_flat_image_are_zero():
    flat = np.zeros((5, 6))
    assert not texture_bins(flat, flat, 8, 10).any()


# --- proposals --------------------------------------------------------------

@pytest.mark.parametrize("method", ["fast", "package"])
def test_selective_search_boxes(phantom_slice, method):
    image, _ = phantom_slice
    boxes = selective_search(image, method=method)
    H, W = image.shape
    assert boxes.dtype == np.int64 and boxes.shape[1] == 4
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    x, y, w, h = boxes.T
    assert (w >= 1).all() and (h >= 1).all()
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= W).all() and (y + h <= H).all()


def test_selective_search_accepts_any_real_dtype(phantom_slice):
    image, _ = phantom_slice
    as_float = selective_search(image.astype(np.float64))
    as_int = selective_search(np.round(image * 1000).astype(np.int32))
    assert len(as_float) > 1 and len(as_int) > 1


def test_selective_search_on_constant_and_tiny_images():
    np.testing.assert_array_equal(selective_search(np.full((6, 7), 3.0)), [[0, 0, 7, 6]])
    assert selective_search(np.array([[1.0]])).tolist() == [[0, 0, 1, 1]]


@pytest.mark.parametrize("bad, error, match", [
    (np.full((5, 5), np.nan), ValueError, r"^image: contains NaN or infinite values$"),
    (np.zeros((2, 5, 5)), ValueError,
     r"^image: expected a 2-D array, got 3-D with shape \(2, 5, 5\)$"),
    (np.zeros((0, 5)), ValueError, r"^image: expected a non-empty array, got shape \(0, 5\)$"),
    (np.array([["a"]]), TypeError,
     r"^image: expected a real-valued array \(bool, integer or float\), got dtype <U1$"),
])
def test_selective_search_rejects_bad_images(bad, error, match):
    with pytest.raises(error, match=match):
        selective_search(bad)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"method": "slow"}, ValueError,
     r"^method: expected one of \('fast', 'package'\), got 'slow'$"),
    ({"scale": -1}, ValueError, r"^scale: expected a finite number >= 0, got -1$"),
    ({"sigma": "1"}, TypeError, r"^sigma: expected a number, got str$"),
    ({"min_size": 0}, ValueError, r"^min_size: expected an integer >= 1, got 0$"),
    ({"min_size": 2.5}, TypeError, r"^min_size: expected an integer >= 1, got float 2\.5$"),
])
def test_selective_search_rejects_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        selective_search(np.eye(5), **kwargs)


# --- boxes ------------------------------------------------------------------

def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 5, 10, 10)) == pytest.approx(25 / 175)
    assert box_iou((2, 3, 4, 5), (1, 1, 6, 9)) == box_iou((1, 1, 6, 9), (2, 3, 4, 5))
    assert box_iou(np.array([0, 0, 4, 4]), (0, 0, 2, 4)) == 0.5


@pytest.mark.parametrize("bad, error, match", [
    ((0, 0, 0, 3), ValueError, r"^a: expected a width and height >= 1, got \(0, 0, 0, 3\)$"),
    ((0, 0, 3), ValueError, r"^a: expected four integers \(x, y, w, h\), got \(0, 0, 3\)$"),
    ((0, 0, 1.5, 2), ValueError,
     r"^a: expected four integers \(x, y, w, h\), got \(0, 0, 1\.5, 2\)$"),
    (None, TypeError, r"^a: expected \(x, y, w, h\) integers, got None$"),
])
def test_box_iou_rejects_bad_boxes(bad, error, match):
    with pytest.raises(error, match=match):
        box_iou(bad, (0, 0, 1, 1))


def test_largest_component_box():
    m = np.zeros((10, 10), bool)
    assert largest_component_box(m) is None
    m[1, 1] = True
    m[4:7, 3:9] = True
    m[7, 9] = True  # diagonal neighbour: same 8-connected component
    assert largest_component_box(m) == (3, 4, 7, 4)


# --- detection --------------------------------------------------------------

def test_box_signatures_equal_separate_runs(phantom_slice):
    image, _ = phantom_slice
    brain = image != 0
    S = detection_stimulus(image, brain)
    boxes = np.array([[30, 40, 20, 24], [0, 0, 5, 5], [100, 100, 12, 20]])
    sig = box_signatures(S, boxes, patch_size=16, n_iter=12)
    assert sig.shape == (3, 3, 12)
    import cv2
    x, y, w, h = boxes[0]
    patch = cv2.resize(S[y:y + h, x:x + w], (16, 16), interpolation=cv2.INTER_AREA)
    alone = pulse(patch, intensity_order_model(), n_iter=12, value_range=(0, 1)).counts
    np.testing.assert_allclose(sig[0, 0], alone / 256)
    f = features(sig)
    np.testing.assert_allclose(f[:, :12], np.cumsum(sig[:, 0], axis=1))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"inner": 0.0}, ValueError, r"^inner: expected a fraction in \(0, 1\]"),
    ({"inner": -3}, ValueError, r"^inner: expected a fraction"),
    ({"context": 0.5}, ValueError, r"^context: expected a number in \[1, "),
    ({"context": 100}, ValueError, r"^context: expected a number in \[1, "),
    ({"context": "2"}, TypeError, r"^context: expected a number"),
    ({"n_iter": 0}, ValueError, r"^n_iter: "),
])
@pytest.mark.parametrize("boxes", [[[4, 4, 8, 8]], np.zeros((0, 4))])
def test_box_signatures_check_their_options(kwargs, error, match, boxes):
    # Checked like Reference's settings, with or without boxes to score.
    S = np.zeros((32, 32), dtype=np.float32)
    with pytest.raises(error, match=match):
        box_signatures(S, boxes, **kwargs)


def test_detection_summary_checks_top(phantom_slice, phantom_reference):
    image, _ = phantom_slice
    found = detect(image, reference=phantom_reference)
    assert len(found.to_dict(top=0)["top"]) == 0
    for bad, error in ((-1, ValueError), (2.5, TypeError)):
        with pytest.raises(error, match=r"^top: expected an integer >= 0"):
            found.to_dict(top=bad)


def test_detection_stimulus():
    image, _ = phantom.make_slice((64, 64), seed=1)
    brain = image != 0
    S = detection_stimulus(image, brain)
    assert S.dtype == np.float32 and S.min() == 0 and S.max() == 1
    assert not S[~brain].any()
    assert detection_stimulus(image, np.zeros_like(brain)) is None
    assert detection_stimulus(np.where(brain, 5.0, 0.0), brain) is None


def test_detect_finds_the_phantom_tumor(phantom_slice, phantom_reference):
    image, tumor = phantom_slice
    found = detect(image, reference=phantom_reference)
    assert isinstance(found, Detection)
    assert box_iou(found.box, largest_component_box(tumor)) >= 0.5
    assert found.distance == found.distances.min()
    assert len(found.candidates) == len(found.distances) > 1
    assert tuple(found.candidates[np.argmin(found.distances)]) == found.box
    json.dumps(found.to_dict())


def _inside(box, x0, y0, x1, y1):
    x, y, w, h = (int(v) for v in box)
    return x >= x0 and y >= y0 and x + w <= x1 and y + h <= y1


def test_published_method_picks_the_box_that_looks_like_the_slice():
    # A slice built so that the published method's answer is known without running
    # any of its parts. Brain everywhere: left half at 100, right half at 110, and
    # bright pixels (150) in a solid 48 x 80 rectangle and in the 4-pixel-wide ring of
    # a 64 x 64 square whose inside is 110. Neither 100 nor 110 fills half the brain,
    # so the median is 110 and the MAD positive: 100 and 110 get stimulus 0 and never
    # pulse, and every bright pixel has the same stimulus, so all pulses of a slice or
    # a patch come at one iteration. A signature divided by its pixel count is then a
    # single spike as high as the bright fraction, and a box's distance to the slice
    # is |bright fraction of the box - bright fraction of the slice|. The ring holds
    # 960 of its box's 4096 pixels (0.234375) and the slice 4800 of 20480, the same
    # fraction: the ring's box is at distance 0 (its 2x2 blocks resize to 32 x 32
    # exactly); a box inside the solid rectangle is at 1 - 0.234375, a box inside the
    # ring's hollow at 0.234375.
    image = np.full((128, 160), 100.0)
    image[:, 80:] = 110.0
    image[16:64, 4:84] = 150.0
    image[40:104, 88:152] = 150.0
    image[44:100, 92:148] = 110.0
    bright = 4800 / image.size
    assert (image == 150).sum() == 4800 and (image == 150)[40:104, 88:152].sum() == 960
    assert max((image == 100).sum(), (image == 110).sum()) < image.size / 2

    found = detect(image, reference=None)
    assert found.box == (88, 40, 64, 64)
    assert found.distance == pytest.approx(0.0, abs=1e-12)
    solid = [d for c, d in zip(found.candidates, found.distances) if _inside(c, 4, 16, 84, 64)]
    hollow = [d for c, d in zip(found.candidates, found.distances)
              if _inside(c, 92, 44, 148, 100)]
    assert solid and hollow
    np.testing.assert_allclose(solid, 1.0 - bright, atol=1e-12)
    np.testing.assert_allclose(hollow, bright, atol=1e-12)


def test_detect_respects_max_area_and_brain_mask(phantom_slice, phantom_reference):
    image, _ = phantom_slice
    found = detect(image, reference=phantom_reference, max_area=0.05)
    area = found.candidates[:, 2] * found.candidates[:, 3]
    assert (area <= 0.05 * image.size).all()
    left = np.zeros(image.shape, bool)
    left[:, :56] = image[:, :56] != 0
    found = detect(image, reference=phantom_reference, brain_mask=left)
    x, y, w, h = found.candidates.T
    assert (x + w // 2 < 56).all()


@pytest.mark.parametrize("image", [np.zeros((50, 50)), np.full((50, 50), 7.0),
                                   np.arange(9.0).reshape(3, 3) + 1])
def test_detect_without_a_box(image):
    found = detect(image)
    assert found.box is None and np.isnan(found.distance)
    assert found.candidates.shape == (0, 4) and found.distances.shape == (0,)
    assert found.to_dict()["box"] is None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"image": np.full((8, 8), np.nan)}, ValueError, r"^image: contains NaN or infinite values$"),
    ({"image": np.zeros((2, 8, 8))}, ValueError,
     r"^image: expected a 2-D array, got 3-D with shape \(2, 8, 8\)$"),
    ({"brain_mask": np.ones((4, 4), bool)}, ValueError,
     r"^brain_mask: expected shape \(8, 8\) \(that of the slice\), got \(4, 4\)$"),
    ({"reference": "mine"}, ValueError,
     r"^reference: expected 'default', a Reference or None, got 'mine'$"),
    ({"reference": 3}, TypeError, r"^reference: expected 'default', a Reference or None, got int$"),
    ({"max_area": 0}, ValueError, r"^max_area: expected a fraction in \(0, 1\], got 0$"),
    ({"max_area": "big"}, TypeError, r"^max_area: expected a number, got str$"),
    ({"proposals": "slow"}, ValueError,
     r"^proposals: expected one of \('fast', 'package'\), got 'slow'$"),
])
def test_detect_rejects_bad_input(kwargs, error, match):
    args = {"image": np.eye(8)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        detect(args.pop("image"), **args)


def test_reference_distance_is_mean_over_nearest_exemplars():
    rng = np.random.default_rng(0)
    exemplars = rng.random((6, 9))
    spread = rng.random(9) + 0.5
    r = Reference(exemplars=exemplars, spread=spread, n_neighbours=2, n_iter=3)
    f = rng.random((4, 9))
    brute = [np.mean(sorted((((x - e) / spread) ** 2).sum() for e in exemplars)[:2]) for x in f]
    np.testing.assert_allclose(r.distance(f), brute)
    one = Reference(exemplars=exemplars, spread=spread, n_neighbours=1, n_iter=3)
    np.testing.assert_allclose(one.distance(exemplars), 0.0, atol=1e-12)


def test_fit_reference(phantom_reference):
    assert phantom_reference.exemplars.shape == (3, 3 * phantom_reference.n_iter)
    assert (phantom_reference.spread > 0).all()
    image, tumor = phantom.make_slice((60, 60), seed=2)
    only_one = fit_reference([image, image], [tumor, np.zeros_like(tumor)])
    assert len(only_one.exemplars) == 1  # the empty mask is skipped


@pytest.mark.parametrize("slices, masks, error, match", [
    ([np.eye(5)], [], ValueError, r"^masks: expected one mask per slice \(1\), got 0$"),
    ([np.eye(5)], [np.zeros((5, 5))], ValueError,
     r"^masks: no slice with both a tumor and brain intensities to learn from$"),
    ([np.eye(5)], [np.ones((4, 4))], ValueError,
     r"^masks\[0\]: expected shape \(5, 5\), got \(4, 4\)$"),
    ([np.eye(5)], [np.full((5, 5), 2)], ValueError,
     r"^masks\[0\]: expected a binary mask with values 0 and 1 only, found 25 other value"),
])
def test_fit_reference_rejects_bad_input(slices, masks, error, match):
    with pytest.raises(error, match=match):
        fit_reference(slices, masks)


def test_reference_save_load(tmp_path, phantom_reference):
    path = tmp_path / "ref.json"
    phantom_reference.save(path)
    back = Reference.load(path)
    np.testing.assert_allclose(back.exemplars, phantom_reference.exemplars, atol=1e-5)
    np.testing.assert_array_equal(back.spread, phantom_reference.spread)
    assert (back.n_iter, back.patch_size, back.inner, back.context) == (
        phantom_reference.n_iter, phantom_reference.patch_size, phantom_reference.inner,
        phantom_reference.context)
    with pytest.raises(FileNotFoundError, match=r"^reference: no such file: .*missing\.json$"):
        Reference.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError,
                       match=r"^reference: .*bad\.json is not a valid detection reference"):
        Reference.load(tmp_path / "bad.json")
    data = json.loads(path.read_text())
    data["spread"] = data["spread"][:-1]
    (tmp_path / "short.json").write_text(json.dumps(data))
    with pytest.raises(ValueError,
                       match=r"^reference: .*short\.json .*spread: expected 135 values"):
        Reference.load(tmp_path / "short.json")


def test_default_reference_is_bundled():
    r = default_reference()
    assert r.exemplars.shape[1] == 3 * r.n_iter and len(r.exemplars) >= r.n_neighbours


# --- command ----------------------------------------------------------------

def test_cli_detect_on_the_phantom_finds_its_tumor_slices_and_no_others(tmp_path, capsys):
    out = tmp_path / "det"
    assert main(["detect", "-q", "-o", str(out)]) == 0
    report = json.loads((out / "detections.json").read_text())
    _, labels = phantom.make_case(seed=0)
    truth = [z for z in range(labels.shape[0]) if (labels[z] > 0).any()]
    assert report["method"] == "map" and report["tumor_slices"] == truth
    assert all(s["tumor"] == (s["box"] is not None) for s in report["slices"])
    assert all(s["iou"] >= 0.5 for s in report["slices"] if s["slice"] in truth)
    pictures = sorted(p.name for p in out.glob("slice_*.png"))
    assert pictures == [f"slice_{z:03d}.png" for z in truth]
    assert f"IoU >= 0.5 with the reference box on {len(truth)} of {len(truth)}" \
        in capsys.readouterr().out


def test_cli_detect_reference_method(tmp_path, capsys):
    out = tmp_path / "det"
    assert main(["detect", "-q", "--method", "reference", "-o", str(out)]) == 0
    report = json.loads((out / "detections.json").read_text())
    assert report["method"] == "reference"
    with_brain = [s["slice"] for s in report["slices"]]
    # the slice detector cannot say "no tumor": a box on every slice with brain
    assert report["tumor_slices"] == with_brain
    assert all(s["distance"] is not None and "iou" in s for s in report["slices"]
               if s["truth_box"])
    assert len(list(out.glob("slice_*.png"))) == len(with_brain)


def test_cli_detect_all_slices_draws_slices_without_a_box(tmp_path):
    out = tmp_path / "det"
    assert main(["detect", "-q", "--all-slices", "-o", str(out)]) == 0
    report = json.loads((out / "detections.json").read_text())
    with_brain = [s["slice"] for s in report["slices"]]
    assert len(report["tumor_slices"]) < len(with_brain)
    assert sorted(p.name for p in out.glob("slice_*.png")) == [
        f"slice_{z:03d}.png" for z in with_brain]


def test_slice_ranges_are_written_compactly():
    from pcnnseg.cli import _ranges
    assert _ranges([3, 4, 5, 9]) == "slices 3-5, 9"
    assert _ranges([7]) == "slices 7"
    assert _ranges([1, 2, 4, 5]) == "slices 1-2, 4-5"


@pytest.mark.parametrize("argv, message", [
    (["--method", "map"], "--method map reads boxes off a 3-D tumor map"),
    (["--published", "--method", "reference"], "--published contradicts --method reference"),
    (["--segmenter", "default"], "--segmenter: only the map method segments"),
])
def test_cli_detect_refuses_contradictory_methods(tmp_path, capsys, argv, message):
    from pcnnseg.io import write_png
    image, _ = phantom.make_slice((80, 80), seed=3)
    write_png(tmp_path / "slice.png", np.round(image / image.max() * 255).astype(np.uint8))
    assert main(["detect", "-q", *argv, str(tmp_path / "slice.png"),
                 "-o", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_detect_on_a_png_slice(tmp_path):
    from pcnnseg.io import write_png
    image, _ = phantom.make_slice((80, 80), seed=3)
    write_png(tmp_path / "slice.png", np.round(image / image.max() * 255).astype(np.uint8))
    assert main(["detect", "-q", "--published", str(tmp_path / "slice.png"),
                 "-o", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "detections.json").read_text())
    assert report["method"] == "published" and len(report["slices"]) == 1


def test_cli_detect_missing_file(tmp_path, capsys):
    assert main(["detect", "-q", str(tmp_path / "nope.nii.gz"), "-o", str(tmp_path / "o")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "o" / "detections.json").exists()


def test_grow_box_adds_the_margin_per_axis_and_clips():
    from pcnnseg.boxes import grow_box
    assert grow_box((10, 20, 5, 6), (2, 1), (100, 100)) == (8, 19, 9, 8)
    assert grow_box((0, 0, 5, 6), (3, 3), (8, 7)) == (0, 0, 7, 8)   # clipped to (H, W)
    assert grow_box((10, 20, 5, 6), (0, 0), (100, 100)) == (10, 20, 5, 6)
    with pytest.raises(ValueError, match="^margin: expected pixels >= 0"):
        grow_box((10, 20, 5, 6), (-1, 0), (100, 100))
    with pytest.raises(ValueError, match="^box: expected a width and height >= 1"):
        grow_box((10, 20, 0, 6), (1, 1), (100, 100))
