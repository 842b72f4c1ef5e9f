"""Numeric edges and hostile arguments at the public API (issue 16, items 6 and 7).

The fuzz corpus kept as tests, as parametrised arrays: every real dtype at its
extremes, non-real dtypes, degenerate shapes, NaN / inf / -0.0 / denormal /
+-max values, and memory layouts (Fortran order, negative strides, strided
views, read-only and broadcast arrays). Each call returns the right result or
raises a ValueError / TypeError (MemoryError for sizes) whose message names the
argument; never NaN, a crash or a traceback from inside NumPy or Numba.
"""
from fractions import Fraction
import json
import math

import numpy as np
import pytest

import pcnnseg
from pcnnseg import PCNN, metrics, normalize, phantom, pulse, pulse_volume, segment, \
    segment_tumor, signature, validation
from pcnnseg.detection import Reference, detect, detection_stimulus
from pcnnseg.metrics import dice, hausdorff95, hausdorff_distance, surface_distances
from pcnnseg.models import otsu_threshold
from pcnnseg.preprocess import (bias_correct, brain_mask, normalize_intensity, robust_z,
                                tissue_contrast)
from pcnnseg.validation import check_n_iter

import pcnnseg.detection as detect_module
FLOAT64_MAX = float(np.finfo(np.float64).max)
REAL_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
               np.int64, np.uint64, np.float16, np.float32, np.float64]


@pytest.fixture(scope="module")
def flair_slice():
    return phantom.make_slice((64, 64), seed=5)


@pytest.fixture(scope="module")
def case():
    return phantom.make_case((16, 64, 64), seed=2)


def _signed_unit(shape=(40, 56), seed=0):
    """Random float64 values spanning exactly [-1, 1]."""
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, shape)
    x.flat[0], x.flat[1] = -1.0, 1.0
    return x


# ----------------------------------------------------------- ranges wider than float64


def test_normalize_spans_the_whole_float64_range():
    x = np.array([[-FLOAT64_MAX, 0.0], [FLOAT64_MAX / 2, FLOAT64_MAX]])
    np.testing.assert_array_equal(normalize(x), [[0.0, 0.5], [0.75, 1.0]])


def test_normalize_among_denormals():
    tiny = 5e-324  # the smallest denormal
    x = np.array([[0.0, tiny], [2 * tiny, 4 * tiny]])
    np.testing.assert_array_equal(normalize(x), [[0.0, 0.25], [0.5, 1.0]])


def test_value_range_wider_than_float64():
    x = np.array([[-1e308, 0.0], [5e307, 1e308]])
    np.testing.assert_allclose(normalize(x, value_range=(-1e308, 1e308)),
                               [[0.0, 0.5], [0.75, 1.0]])
    # an ordinary image sits at 0.5: every pixel pulses at once under PCNN (e0 = 0)
    image = np.random.default_rng(0).random((20, 30))
    result = pulse(image, PCNN(), n_iter=3, value_range=(-1e308, 1e308))
    assert result.counts[0] == image.size


@pytest.mark.parametrize("bad", [(0, 10 ** 400), (-(10 ** 400), 1), ("a", "b"), (1j, 2)])
def test_value_range_that_is_not_two_floats(bad):
    with pytest.raises(ValueError, match="value_range: expected two numbers"):
        normalize(np.eye(3), value_range=bad)


def test_overflowing_range_runs_as_the_rescaled_image():
    # x * 2**1023 spans [-2**1023, 2**1023]: max - min overflows float64, yet
    # scaling by a power of two is exact, so every result is that of x.
    small = _signed_unit()
    big = small * 2.0 ** 1023
    with np.errstate(over="ignore"):
        assert np.isfinite(big).all() and not np.isfinite(big.max() - big.min())
    np.testing.assert_array_equal(normalize(big), normalize(small))
    expected, got = pulse(small, n_iter=20), pulse(big, n_iter=20)  # SPCNN from Otsu
    assert got.model == expected.model
    np.testing.assert_array_equal(got.fire_time, expected.fire_time)
    np.testing.assert_array_equal(pulse(big, PCNN(), n_iter=10).counts,
                                  pulse(small, PCNN(), n_iter=10).counts)
    np.testing.assert_array_equal(segment(big), segment(small))
    np.testing.assert_array_equal(signature(big, n_iter=10), signature(small, n_iter=10))


def test_otsu_threshold_refuses_non_finite_and_constant_stimuli():
    with pytest.raises(ValueError, match="S: expected a finite stimulus"):
        otsu_threshold(np.array([0.0, np.nan, 1.0], dtype=np.float32))
    with pytest.raises(ValueError, match="S: a constant stimulus"):
        otsu_threshold(np.full(4, 0.5, dtype=np.float32))
    # a range of a few denormals still gets its 256 bins
    tiny = np.array([0.0, 1e-44, 2e-44, 3e-44], dtype=np.float32)
    assert 0.0 < otsu_threshold(tiny) < 3e-44


# ------------------------------------------------------------------- scale invariance


@pytest.mark.parametrize("scale", [1e40, 1e-320, 2.0 ** -1060, 1e300])
def test_segment_tumor_is_scale_invariant(case, scale):
    images, _ = case
    images = {name: a.astype(np.float64) for name, a in images.items()}
    expected = segment_tumor(images, regions=True)
    assert expected.any()
    scaled = {name: a * scale for name, a in images.items()}
    np.testing.assert_array_equal(segment_tumor(scaled, regions=True), expected)


def test_tissue_contrast_and_segment_tumor_over_the_whole_float64_range(case):
    flair = case[0]["flair"].astype(np.float64)
    brain = flair != 0
    expected = tissue_contrast(flair, brain)
    # the brain spread over [-max, max]: a voxel minus the mode overflows float64
    wide = (flair / flair.max() * 2.0 - 1.0) * FLOAT64_MAX
    got = tissue_contrast(wide, brain)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(segment_tumor(wide, brain_mask=brain),
                                  segment_tumor(flair, brain_mask=brain))


@pytest.mark.parametrize("scale", [2.0 ** 100, 2.0 ** -100])
def test_bias_correct_is_scale_invariant_in_float32(flair_slice, scale):
    image = flair_slice[0].astype(np.float64)
    expected = bias_correct(image, shrink=2, iterations=(10,))
    got = bias_correct(image * scale, shrink=2, iterations=(10,))
    np.testing.assert_array_equal(got, (expected * np.float32(scale)))


def test_bias_correct_refuses_what_float32_cannot_hold(flair_slice):
    with pytest.raises(ValueError, match=r"volume: the corrected image is float32"):
        bias_correct(flair_slice[0].astype(np.float64) * 1e300)


def test_normalize_intensity_over_the_whole_float64_range(flair_slice):
    image = flair_slice[0].astype(np.float64)
    brain = image != 0
    wide = (image / image.max() * 2.0 - 1.0) * FLOAT64_MAX
    np.testing.assert_allclose(normalize_intensity(wide, brain),
                               normalize_intensity(image, brain), atol=1e-6)


@pytest.mark.parametrize("scale", [2.0 ** 1000, 2.0 ** -1060, 1e300, 1e-300])
def test_detection_is_scale_invariant(flair_slice, scale):
    image = flair_slice[0].astype(np.float64)
    brain = image != 0
    expected = detection_stimulus(image, brain)
    np.testing.assert_allclose(detection_stimulus(image * scale, brain), expected,
                               atol=1e-6)
    assert detect(image * scale).box == detect(image).box


def test_robust_z_of_a_denormal_spread_saturates_finite():
    v = np.array([[0.0, 1e-320, 2e-320], [3e-320, 4e-320, 1.0]])
    z = robust_z(v, np.ones(v.shape, bool))
    assert np.isfinite(z).all()
    assert z[1, 2] == FLOAT64_MAX / 4 and np.all(np.diff(z.ravel()) > 0)
    assert robust_z(np.ones((3, 3)), np.ones((3, 3), bool)) is None  # no spread


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e-300, 2.0 ** 1000, 1e300])
def test_hausdorff_at_extreme_spacings(scale):
    a = np.zeros((12, 12), bool); a[2:5, 2:6] = True
    b = np.zeros((12, 12), bool); b[4:9, 3:10] = True
    for func in (hausdorff95, lambda p, t, spacing: hausdorff_distance(
            p, t, spacing=spacing, percentile=100)):
        unit = func(a, b, spacing=(1.0, 1.0))
        assert func(a, b, spacing=(scale, scale)) == pytest.approx(unit * scale, rel=1e-12)
    to_b, to_a = surface_distances(a, b, spacing=(scale, scale))
    assert np.isfinite(to_b).all() and np.isfinite(to_a).all()


def test_hausdorff_past_float64_is_inf_not_nan():
    a = np.zeros((12, 12), bool); a[2:5, 2:6] = True
    b = np.zeros((12, 12), bool); b[4:9, 3:10] = True
    assert hausdorff95(a, b, spacing=(1e308, 1e308)) == math.inf
    mixed = hausdorff95(a, b, spacing=(1e300, 1e-300))  # distance along axis 0 only
    assert mixed == pytest.approx(hausdorff95(a, b, spacing=(1.0, 1e-300)) * 1e300)


# ------------------------------------------------------------------- n_iter and memory


@pytest.mark.parametrize("n_iter", [2 ** 63, 2 ** 31, np.int64(2 ** 40), np.uint64(2 ** 63)])
def test_n_iter_beyond_the_kernels_integer(n_iter):
    message = r"n_iter: expected an integer in \[1, 2147483647\]"
    with pytest.raises(ValueError, match=message):
        check_n_iter(n_iter)          # what the command line's --n-iter goes through
    with pytest.raises(ValueError, match=message):
        pulse(np.eye(4), n_iter=n_iter)
    with pytest.raises(ValueError, match=message):
        pulse_volume(np.ones((2, 4, 4)), n_iter=n_iter)
    with pytest.raises(ValueError, match=message):
        signature(np.eye(4), n_iter=n_iter)


def test_a_run_larger_than_memory_is_refused_before_it_starts(monkeypatch):
    # the pulse stack alone: n_iter bytes per pixel, 8 TiB here
    with pytest.raises(MemoryError, match=r"pulse: an image of shape \(64, 64\) over "
                       r"n_iter=2147483647 iterations with return_spikes=True needs "
                       r"about 8.\d+ TiB, more than the .* of memory of this machine"):
        pulse(np.eye(64), PCNN(), n_iter=2 ** 31 - 1, return_spikes=True)
    monkeypatch.setattr(validation, "memory_limit", lambda: 1000)
    with pytest.raises(MemoryError, match=r"normalize: an image of shape \(64, 64\) needs "
                       r"about 48 KiB, more than the 1e\+03 B"):
        normalize(np.eye(64))


def test_a_memory_error_inside_says_which_input(monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError("Allocation failed (probably too large).")

    monkeypatch.setattr(pcnnseg.simulate, "pcnn_image", exhausted)
    with pytest.raises(MemoryError, match=r"pulse: an image of shape \(40, 56\) over "
                       r"n_iter=5 iterations ran out of memory \(Allocation failed"):
        pulse(_signed_unit(), PCNN(), n_iter=5)


def test_a_memory_error_in_segment_tumor_and_detect(monkeypatch, flair_slice):
    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 8.00 GiB for an array")

    image = flair_slice[0]
    monkeypatch.setattr(pcnnseg.tumor, "fired", exhausted)
    with pytest.raises(MemoryError, match=r"segment_tumor: 1 sequence\(s\) of shape "
                       r"\(64, 64\) ran out of memory \(Unable to allocate 8.00 GiB"):
        segment_tumor(image)
    monkeypatch.setattr(detect_module, "box_signatures", exhausted)
    with pytest.raises(MemoryError, match=r"detect: a slice of shape \(64, 64\) ran out"):
        detect(image)


def test_a_refused_run_is_not_explained_twice(monkeypatch, flair_slice):
    monkeypatch.setattr(validation, "memory_limit", lambda: 1000)
    with pytest.raises(MemoryError, match=r"^normalize: an image of shape .* needs about") \
            as err:
        segment_tumor(flair_slice[0])
    assert "ran out" not in str(err.value)


def test_a_memory_error_in_predict(monkeypatch):
    pytest.importorskip("torch")
    import cnn_baseline.inference as inference
    from cnn_baseline.networks import CompressedUNet

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.00 TiB for an array")

    monkeypatch.setattr(inference, "normalize_case", exhausted)
    with pytest.raises(MemoryError, match=r"predict: an input of shape \(4, 8, 8\) ran out"):
        inference.predict(np.zeros((4, 8, 8)), model=CompressedUNet(
            in_channels=4, out_channels=1))


# ------------------------------------------------------------------------------ flags


@pytest.mark.parametrize("value", ["False", 0, 1, None, 1.0])
def test_flags_must_be_bools(value, flair_slice):
    image = flair_slice[0]
    with pytest.raises(TypeError, match="return_spikes: expected a bool"):
        pulse(image, PCNN(), n_iter=2, return_spikes=value)
    with pytest.raises(TypeError, match="regions: expected a bool"):
        segment_tumor(image, regions=value)
    with pytest.raises(TypeError, match="largest_component: expected a bool"):
        brain_mask(image, largest_component=value)
    with pytest.raises(TypeError, match="fill_holes: expected a bool"):
        brain_mask(image, fill_holes=value)


def test_numpy_bools_are_bools():
    assert brain_mask(np.eye(4), largest_component=np.False_, fill_holes=np.True_).sum() == 4


@pytest.mark.parametrize("value", ["False", "True", 0, 1, None])
def test_predict_flags_must_be_bools(value):
    pytest.importorskip("torch")
    import cnn_baseline

    with pytest.raises(TypeError, match="quantized: expected a bool"):
        cnn_baseline.predict(np.zeros((4, 8, 8)), quantized=value)
    with pytest.raises(TypeError, match="channels_last: expected a bool"):
        cnn_baseline.predict(np.zeros((4, 8, 8)), channels_last=value)
    with pytest.raises(TypeError, match="quantized: expected a bool"):
        cnn_baseline.load_pretrained(quantized=value)


def test_progress_must_be_callable(flair_slice):
    with pytest.raises(TypeError, match="progress: expected a callable"):
        segment_tumor(flair_slice[0], progress="yes")


@pytest.mark.parametrize("name", ["t2_weight", "beta"])
def test_weights_beyond_float32(case, name):
    images = {k: case[0][k] for k in ("flair", "t2")}
    with pytest.raises(ValueError, match=name):
        segment_tumor(images, **{name: 1e39})


# ------------------------------------------------------------------------- brain masks


def _bad_masks(shape):
    """(mask, error, match) that segment_tumor and detect must both refuse."""
    ones = np.ones(shape)
    nan = ones.copy(); nan.flat[0] = np.nan
    two = ones.copy(); two.flat[0] = 2
    return [
        (np.full(shape, "1"), TypeError, "brain_mask: expected a binary mask.*<U1"),
        (np.full(shape, b"1"), TypeError, "brain_mask: expected a binary mask.*S1"),
        (ones.astype(complex), TypeError, "brain_mask: expected a binary mask.*complex"),
        (np.ones(shape, dtype=object), TypeError, "brain_mask: expected a binary mask.*object"),
        (nan, ValueError, "brain_mask: expected a binary mask with values 0 and 1.*nan"),
        (two, ValueError, "brain_mask: expected a binary mask with values 0 and 1.*2"),
        (np.ones((shape[0] + 1, shape[1]), bool), ValueError, "brain_mask: expected shape"),
        (np.ones(shape[1], bool), ValueError, "brain_mask: expected a 2-D"),
        (np.ones((0, 0), bool), ValueError, "brain_mask: expected a non-empty array"),
    ]


@pytest.mark.parametrize("index", range(9))
def test_segment_tumor_checks_brain_mask_as_detect_does(flair_slice, index):
    image = flair_slice[0]
    mask, error, match = _bad_masks(image.shape)[index]
    with pytest.raises(error, match=match):
        segment_tumor(image, brain_mask=mask)
    with pytest.raises(error, match=match):
        detect(image, brain_mask=mask)


def test_segment_tumor_brain_mask_of_a_volume(case):
    flair = case[0]["flair"]
    with pytest.raises(ValueError, match=r"brain_mask: expected shape \(16, 64, 64\)"):
        segment_tumor(flair, brain_mask=np.ones(flair.shape[1:], bool))
    with pytest.raises(ValueError, match="empty brain_mask"):
        segment_tumor(flair, brain_mask=np.zeros(flair.shape, bool))
    # 0/1 of any real dtype is a mask: the same result as bool
    brain = flair != 0
    np.testing.assert_array_equal(segment_tumor(flair, brain_mask=brain.astype(np.float32)),
                                  segment_tumor(flair, brain_mask=brain))


# ---------------------------------------------------------------- corrupt references


def _reference_data():
    with open(detect_module._REFERENCE_FILE) as f:
        return json.load(f)


@pytest.mark.parametrize("field, value, match", [
    ("spread", "inf", r"spread: expected positive finite values"),
    ("spread", "nan", r"spread: expected positive finite values"),
    ("spread", 0.0, r"spread: expected positive finite values"),
    ("spread", -1.0, r"spread: expected positive finite values"),
    ("spread", "short", r"spread: expected 135 values"),
    ("inner", math.nan, r"inner: expected a fraction in \(0, 1\]"),
    ("inner", -0.5, r"inner: expected a fraction in \(0, 1\]"),
    ("inner", "0.5", r"inner: expected a number, got str"),
    ("context", 0.0, r"context: expected a number in \[1, 8.0\]"),
    ("context", 1e12, r"context: expected a number in \[1, 8.0\]"),
    ("context", math.inf, r"context: expected a number in \[1, 8.0\]"),
    ("context", None, r"context: expected a number, got NoneType"),
    ("patch_size", 10 ** 6, r"patch_size: expected an integer in \[2, 512\], got 1000000"),
    ("patch_size", 1, r"patch_size: expected an integer in \[2, 512\]"),
    ("patch_size", 32.0, r"patch_size: expected an integer in \[2, 512\], got float"),
    ("patch_size", "32", r"patch_size: expected an integer in \[2, 512\], got str"),
    ("n_iter", 0, r"n_iter: expected an integer in \[1, 2147483647\]"),
    ("n_iter", 2 ** 40, r"n_iter: expected an integer in \[1, 2147483647\]"),
    ("n_neighbours", 0, r"n_neighbours: expected an integer >= 1"),
    ("n_neighbours", True, r"n_neighbours: expected an integer >= 1, got bool"),
    ("exemplars", "nan", r"exemplars: contains NaN or infinite values"),
    ("exemplars", "ragged", r"exemplars: expected an array of numbers"),
    ("exemplars", "text", r"exemplars: expected an array of numbers, got str"),
    ("exemplars", [], r"exemplars: expected a \(B, 135\) array"),
    ("n_iter", "missing", r"missing field\(s\) \['n_iter'\]"),
])
def test_reference_load_refuses_a_corrupt_file(tmp_path, field, value, match):
    data = _reference_data()
    if value == "missing":
        del data[field]
    elif field == "spread" and value == "short":
        data["spread"] = data["spread"][:-1]
    elif field == "spread" and value in ("inf", "nan"):
        data["spread"][3] = float(value)
    elif field == "spread":
        data["spread"][3] = value
    elif field == "exemplars" and value == "nan":
        data["exemplars"][0][0] = math.nan
    elif field == "exemplars" and value == "ragged":
        data["exemplars"][0] = data["exemplars"][0][:-1]
    elif field == "exemplars" and value == "text":
        data["exemplars"] = "many"
    else:
        data[field] = value
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(data))  # NaN and Infinity as Python's json writes them
    with pytest.raises(ValueError, match=f"reference: .*reference.json is not a valid "
                                         f"detection reference \\({match}"):
        Reference.load(path)


def test_reference_load_refuses_other_json_and_folders(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json is not a valid .*expected a JSON object"):
        Reference.load(path)
    with pytest.raises(ValueError, match="is not a regular file"):
        Reference.load(tmp_path)


def test_the_bundled_reference_still_loads():
    data = _reference_data()
    ref = Reference.load(detect_module._REFERENCE_FILE)
    assert ref.patch_size == data["patch_size"] and ref.spread.shape == (135,)


# --------------------------------------------------------------- hostile array corpus


def _extremes(dtype, shape=(8, 9), seed=0):
    """A slice holding the dtype's extreme values (and denormals for floats)."""
    rng = np.random.default_rng(seed)
    if dtype is np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        x.flat[:3] = info.min, info.max, 0
        return x
    info = np.finfo(dtype)
    x = (rng.uniform(-1, 1, shape) * float(info.max)).astype(dtype)
    x.flat[:6] = -info.max, info.max, 0.0, -0.0, info.smallest_subnormal, info.tiny
    return x


def _exact_stimulus(x):
    """``(x - min) / (max - min)`` in exact rational arithmetic, as float64."""
    values = [Fraction(float(v)) if x.dtype.kind == "f" else Fraction(int(v))
              for v in x.ravel()]
    lo, hi = min(values), max(values)
    return np.array([float((v - lo) / (hi - lo)) for v in values]).reshape(x.shape)


@pytest.mark.parametrize("dtype", REAL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_any_real_dtype_at_its_extremes(dtype):
    x = _extremes(dtype)
    S = normalize(x)
    assert S.dtype == np.float32 and np.isfinite(S).all()
    np.testing.assert_allclose(S, _exact_stimulus(x), rtol=1e-6, atol=1e-7)
    # PCNN with e0 = 0: exactly the pixels of positive stimulus pulse at once
    fire_time = pulse(x, PCNN(), n_iter=4).fire_time
    np.testing.assert_array_equal(fire_time == 0, S > 0)
    for result in (segment(x, n_iter=20), signature(x, n_iter=10),
                   pulse(x, n_iter=10).fire_time):
        assert np.isfinite(result).all()


@pytest.mark.parametrize("dtype", REAL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_masks_of_any_real_dtype(dtype):
    rng = np.random.default_rng(1)
    p, t = rng.random((12, 14)) < 0.4, rng.random((12, 14)) < 0.4
    assert dice(p.astype(dtype), t.astype(dtype)) == dice(p, t)
    assert hausdorff95(p.astype(dtype), t.astype(dtype), spacing=(2.0, 0.5)) == \
        hausdorff95(p, t, spacing=(2.0, 0.5))


NON_REAL = {
    "complex64": np.ones((6, 6), np.complex64),
    "complex128": np.ones((6, 6), np.complex128),
    "str": np.full((6, 6), "1"),
    "bytes": np.full((6, 6), b"1"),
    "object": np.ones((6, 6), dtype=object),
    "datetime64": np.zeros((6, 6), "datetime64[s]"),
    "timedelta64": np.zeros((6, 6), "timedelta64[s]"),
    "structured": np.zeros((6, 6), dtype=[("a", "f8")]),
}


def _partner(x):
    """A valid mask to pair with ``x``: of its shape when that is a valid one."""
    shape = np.shape(x)
    return np.ones(shape if len(shape) in (2, 3) and 0 not in shape else (2, 2), bool)


def _image_calls():
    """Public functions taking one image, and the name their messages use for it."""
    return {
        "normalize": (normalize, "image"),
        "pulse": (lambda x: pulse(x, PCNN(), n_iter=3), "image"),
        "segment": (segment, "image"),
        "signature": (lambda x: signature(x, n_iter=3), "image"),
        "segment_tumor": (segment_tumor, "flair"),
        "detect": (detect, "image"),
        "dice": (lambda x: dice(x, _partner(x)), "pred"),
        "hausdorff95": (lambda x: hausdorff95(_partner(x), x), "truth"),
    }


@pytest.mark.parametrize("call", sorted(_image_calls()))
@pytest.mark.parametrize("kind", sorted(NON_REAL))
def test_non_real_dtypes_are_type_errors(call, kind):
    func, name = _image_calls()[call]
    with pytest.raises(TypeError, match=f"{name}: expected a .*dtype"):
        func(NON_REAL[kind])


@pytest.mark.parametrize("call", sorted(_image_calls()))
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_nan_and_inf_are_value_errors(call, value, dtype):
    func, name = _image_calls()[call]
    x = np.random.default_rng(0).random((10, 10)).astype(dtype)
    x[3, 4] = value
    match = (f"{name}: expected a binary mask" if call in ("dice", "hausdorff95")
             else f"{name}: contains NaN or infinite values")
    with pytest.raises(ValueError, match=match):
        func(x)


@pytest.mark.parametrize("call", sorted(_image_calls()))
@pytest.mark.parametrize("shape, match", [
    ((0, 5), "non-empty"), ((5, 0), "non-empty"), ((0, 0, 0), "non-empty"),
    ((2, 0, 3), "non-empty"), ((7,), "1-D"), ((2, 2, 2, 2), "4-D"), ((), "0-D"),
])
def test_degenerate_shapes_are_value_errors(call, shape, match):
    func, name = _image_calls()[call]
    if call == "detect" and len(shape) == 3:
        match = "2-D array, got 3-D"
    with pytest.raises(ValueError, match=f"{name}: expected .*{match}"):
        func(np.zeros(shape))


@pytest.mark.parametrize("shape", [(1, 4096), (4096, 1), (2, 3000), (1, 1, 500)])
def test_extreme_aspect_ratios(shape):
    x = np.random.default_rng(0).random(shape)
    result = pulse(x, PCNN(), n_iter=5)
    assert result.fire_time.shape == shape
    np.testing.assert_array_equal(result.fire_time == 0, normalize(x) > 0)
    assert segment(x).shape == shape
    assert segment_tumor(x).shape == shape
    if len(shape) == 2:
        assert detect(x).box is None or len(detect(x).box) == 4


def test_one_pixel_needs_a_value_range():
    with pytest.raises(ValueError, match=r"image: constant image .*pass value_range"):
        pulse(np.ones((1, 1)), PCNN())
    assert pulse(np.ones((1, 1)), PCNN(), value_range=(0, 1), n_iter=2).fire_time[0, 0] == 0


def test_negative_zero_is_zero():
    x = np.array([[-0.0, 1.0], [0.0, 0.5]])
    S = normalize(x)
    assert S[0, 0] == 0 and not np.signbit(S[0, 0])
    assert dice(x == 1, np.array([[-0.0, 1.0], [0.0, 0.0]])) == 1.0


def _layouts(x):
    """The same values as ``x`` in hostile memory layouts."""
    flipped = np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]   # negative strides
    wide = np.zeros((x.shape[0] * 2, x.shape[1] * 3), dtype=x.dtype)
    wide[::2, ::3] = x
    readonly = x.copy()
    readonly.setflags(write=False)
    return {
        "fortran": np.asfortranarray(x),
        "negative_strides": flipped,
        "strided_view": wide[::2, ::3],
        "read_only": readonly,
        "broadcast": np.broadcast_to(x[None], (1,) + x.shape)[0],  # read-only, stride 0 axis
        "transposed_twice": np.ascontiguousarray(x.T).T,
    }


def _same(a, b):
    if hasattr(a, "box"):
        return a.box == b.box
    if hasattr(a, "fire_time"):
        return np.array_equal(a.fire_time, b.fire_time) and np.array_equal(a.counts, b.counts)
    return np.array_equal(a, b)


@pytest.mark.parametrize("layout", sorted(_layouts(np.eye(2))))
@pytest.mark.parametrize("call", sorted(_image_calls()))
def test_memory_layouts_give_the_same_result(flair_slice, call, layout):
    func = _image_calls()[call][0]
    image = flair_slice[0] if call not in ("dice", "hausdorff95") else flair_slice[1]
    hostile = _layouts(image)[layout]
    before = hostile.copy()
    assert _same(func(hostile), func(np.ascontiguousarray(image)))
    np.testing.assert_array_equal(hostile, before)  # not modified


@pytest.mark.parametrize("layout", ["fortran", "negative_strides", "read_only"])
def test_volume_layouts_give_the_same_result(case, layout):
    flair = case[0]["flair"]
    hostile = {"fortran": np.asfortranarray(flair),
               "negative_strides": np.ascontiguousarray(flair[::-1])[::-1],
               "read_only": flair.copy()}[layout]
    hostile.setflags(write=layout != "read_only")
    np.testing.assert_array_equal(segment_tumor(hostile), segment_tumor(flair))
    np.testing.assert_array_equal(pulse_volume(hostile, n_iter=8).fire_time,
                                  pulse_volume(flair, n_iter=8).fire_time)
    brain = flair != 0
    np.testing.assert_array_equal(
        metrics.hausdorff95(np.asfortranarray(brain), brain[::-1][::-1]), 0.0)


def test_signature_normalize_must_be_a_bool():
    image = np.random.default_rng(0).random((8, 8))
    with pytest.raises(TypeError, match="normalize"):
        pcnnseg.signature(image, normalize="False")
    assert pcnnseg.signature(image, normalize=np.bool_(False)).max() > 1


def test_segment_levels_bounded_and_large_levels_exact():
    """Levels up to the int32 labels' range give the labels of an int64
    computation (fire time x levels passes int32 long before that)."""
    from pcnnseg.segmentation import intensity_order_model
    from pcnnseg.validation import N_ITER_MAX

    image = np.linspace(0.0, 1.0, 64).reshape(8, 8)
    with pytest.raises(ValueError, match="levels"):
        pcnnseg.segment(image, levels=N_ITER_MAX + 1)
    labels = pcnnseg.segment(image, levels=N_ITER_MAX, n_iter=60, beta=0.0)
    ft = pcnnseg.pulse(image, intensity_order_model(beta=0.0), n_iter=60).fire_time
    fired = ft >= 0
    expected = N_ITER_MAX - (ft[fired].astype(object) * N_ITER_MAX) // 60
    assert labels[fired].tolist() == expected.tolist()
    assert labels.min() >= 0 and labels.max() <= N_ITER_MAX
