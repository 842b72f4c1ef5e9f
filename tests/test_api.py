"""Public API: pulse, signature, models, invariances and bad input."""
import numpy as np
import pytest

import pcnnseg
from pcnnseg import ICM, PCNN, SCM, SPCNN, entropy_signature, normalize, pulse, signature
from tests import reference
from tests.conftest import IMAGES

# Invariance under rotations and flips is exact when every partial synaptic sum
# is exact in float32, whatever the order: true for dyadic weights.
DYADIC_MODELS = {
    "pcnn": PCNN(),
    "spcnn": SPCNN(alpha_f=1.3, beta=0.4, v_e=4.9, alpha_e=1.7),
    "icm": ICM(),
    "scm": SCM(weights=((0.125, 0.25, 0.125), (0.25, 0.0, 0.25), (0.125, 0.25, 0.125))),
}


def test_pulse_matches_reference_and_returns_model():
    image = IMAGES["phantom"]
    result = pulse(image, n_iter=30, return_spikes=True)
    assert isinstance(result.model, SPCNN)
    assert result.model == SPCNN.from_image(image)
    _, counts, spikes = reference.run(normalize(image), result.model, 30)
    np.testing.assert_array_equal(result.spikes, spikes)
    np.testing.assert_array_equal(result.counts, counts)
    assert pulse(image, n_iter=30).spikes is None


def test_pulse_on_batch_uses_one_model_for_all():
    rng = np.random.default_rng(0)
    batch = rng.random((3, 16, 20)) * 100
    result = pulse(batch, PCNN(), n_iter=12)
    assert result.fire_time.shape == (3, 16, 20) and result.counts.shape == (3, 12)
    # value_range shared by the batch: each member alone with the same range agrees
    for b in range(3):
        single = pulse(batch[b], PCNN(), n_iter=12, value_range=(batch.min(), batch.max()))
        np.testing.assert_array_equal(single.counts, result.counts[b])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64, np.float32])
def test_any_real_dtype_gives_same_pulses(dtype):
    base = (np.random.default_rng(2).random((30, 30)) * 200).round()
    expected = pulse(base.astype(np.float64), PCNN(), n_iter=20)
    got = pulse(base.astype(dtype), PCNN(), n_iter=20)
    np.testing.assert_array_equal(got.fire_time, expected.fire_time)


def test_bool_image_is_accepted():
    image = np.zeros((20, 20), dtype=bool)
    image[5:12, 6:15] = True
    result = pulse(image, PCNN(), n_iter=5)
    assert result.fire_time[image].min() == 0 and result.counts[0] == image.sum()


def test_fire_time_is_first_pulse():
    result = pulse(IMAGES["random"], ICM(), n_iter=25, return_spikes=True)
    spikes = result.spikes
    first = np.where(spikes.any(axis=0), spikes.argmax(axis=0), -1)
    np.testing.assert_array_equal(result.fire_time, first)
    assert (result.fire_time >= 0).any()


@pytest.mark.parametrize("name", sorted(DYADIC_MODELS))
@pytest.mark.parametrize("transform", [
    lambda a: np.rot90(a, 1), lambda a: np.rot90(a, 2), lambda a: np.rot90(a, 3),
    np.fliplr, np.flipud, np.transpose])
def test_signature_invariant_to_rotation_and_flip(name, transform):
    image = IMAGES["phantom"]
    model = DYADIC_MODELS[name]
    g = signature(image, model, n_iter=50)
    g_t = signature(np.ascontiguousarray(transform(image)), model, n_iter=50)
    np.testing.assert_array_equal(g, g_t)


@pytest.mark.parametrize("name", sorted(DYADIC_MODELS))
def test_signature_invariant_to_translation_in_zero_background(name):
    n_iter = 30
    obj = IMAGES["phantom"][20:60, 15:55]
    model = DYADIC_MODELS[name]
    signatures = []
    for y, x in [(31, 31), (31, 60), (57, 44)]:
        # margin >= n_iter: additive models let pulses spread one pixel per iteration
        canvas = np.zeros((128, 130), dtype=np.float32)
        canvas[y:y + 40, x:x + 40] = obj
        signatures.append(signature(canvas, model, n_iter=n_iter, value_range=(0, obj.max())))
    np.testing.assert_array_equal(signatures[0], signatures[1])
    np.testing.assert_array_equal(signatures[0], signatures[2])
    assert signatures[0].sum() > 0


def test_signature_changes_when_content_changes():
    image = IMAGES["phantom"]
    other = image.copy()
    other[30:50, 30:50] = image.max()
    assert not np.array_equal(signature(image, PCNN()), signature(other, PCNN()))


def test_signature_normalisation():
    image = IMAGES["random"]
    raw = signature(image, ICM(), n_iter=15, normalize=False)
    np.testing.assert_array_equal(raw, pulse(image, ICM(), n_iter=15).counts)
    np.testing.assert_allclose(signature(image, ICM(), n_iter=15), raw / image.size)


def test_normalised_signature_compares_sizes():
    # a periodic texture and a larger crop of it fire in the same proportions
    tile = np.kron(np.random.default_rng(5).random((4, 4)), np.ones((3, 3)))
    small, large = np.tile(tile, (4, 4)), np.tile(tile, (8, 8))
    g_small = signature(small, SPCNN.from_image(small), n_iter=10)
    g_large = signature(large, SPCNN.from_image(small), n_iter=10)
    # only the border differs (a quarter as large a share of the larger image):
    # 0.0035 apart at most, where unnormalised counts would differ fourfold
    np.testing.assert_allclose(g_small, g_large, atol=0.01)


def test_entropy_signature():
    image = IMAGES["phantom"]
    p = signature(image, PCNN(), n_iter=20)
    h = entropy_signature(image, PCNN(), n_iter=20)
    assert h.shape == (20,) and np.all((h >= 0) & (h <= 1))
    k = int(np.argmax((p > 0) & (p < 1)))
    expected = -(p[k] * np.log2(p[k]) + (1 - p[k]) * np.log2(1 - p[k]))
    assert h[k] == pytest.approx(expected)
    assert np.all(h[p == 0] == 0)


def test_spcnn_from_image_otsu_property():
    """Pixels pulsing at the Otsu iteration (k = 2) are those above S'."""
    from skimage.filters import threshold_otsu
    rng = np.random.default_rng(11)
    image = rng.gamma(2.0, 1.0, size=(64, 64)) + rng.random((64, 64))
    model = SPCNN.from_image(image)
    S = normalize(image)
    s_otsu = threshold_otsu(S)
    spikes = pulse(image, model, n_iter=3, return_spikes=True).spikes
    assert spikes[0][S > 0].all()          # every positive pixel pulses first
    assert not spikes[1].any()             # v_e: nobody pulses twice in a row
    # pixels with all 8 neighbours positive: exactly those above the threshold
    full = np.zeros_like(S, dtype=bool)
    full[1:-1, 1:-1] = True
    full &= np.abs(S - s_otsu) > 1e-5
    np.testing.assert_array_equal(spikes[2][full], (S > s_otsu)[full])
    assert 0 < spikes[2][full].sum() < full.sum()


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_otsu_threshold_matches_scikit_image(name):
    from skimage.filters import threshold_otsu
    from pcnnseg.models import otsu_threshold
    S = normalize(IMAGES[name])
    assert otsu_threshold(S) == pytest.approx(float(threshold_otsu(S)), abs=1e-6)


def test_spcnn_from_image_values():
    from skimage.filters import threshold_otsu
    image = IMAGES["phantom"]
    S = normalize(image)
    model = SPCNN.from_image(image)
    s1 = threshold_otsu(S)
    assert model.alpha_f == pytest.approx(np.log(1 / S.std(dtype=np.float64)))
    assert model.beta == pytest.approx((1 / s1 - 1) / 6)
    assert model.v_e == pytest.approx(np.exp(-model.alpha_f) + 1 + 6 * model.beta, rel=1e-5)
    assert model.weights == pcnnseg.models.CHEN_WEIGHTS


def test_models_are_frozen_and_validated():
    with pytest.raises(AttributeError):
        PCNN().beta = 3.0
    with pytest.raises(ValueError, match="alpha_f"):
        PCNN(alpha_f=-1.0)
    with pytest.raises(ValueError, match="beta"):
        PCNN(beta=float("nan"))
    with pytest.raises(TypeError, match="h: expected a real number"):
        ICM(h="20")
    with pytest.raises(ValueError, match="linking_weights.*3x3"):
        PCNN(linking_weights=[[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="weights.*finite"):
        SCM(weights=[[0, np.inf, 0], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="g"):
        ICM(g=1.5)
    with pytest.raises(ValueError, match="v_e.*float32"):
        PCNN(v_e=1e39)          # finite in float64, inf in the kernels
    with pytest.raises(ValueError, match="linking_weights.*float32"):
        PCNN(linking_weights=((1e39, 1, 1), (1, 0, 1), (1, 1, 1)))


@pytest.mark.parametrize("bad, error, match", [
    (np.array([[1.0, np.nan], [0.0, 2.0]]), ValueError, "NaN or infinite"),
    (np.array([[1.0, np.inf], [0.0, 2.0]]), ValueError, "NaN or infinite"),
    (np.zeros((0, 5)), ValueError, "non-empty"),
    (np.zeros((3, 0, 5)), ValueError, "non-empty"),
    (np.full((8, 8), 7.0), ValueError, "constant"),
    (np.arange(10.0), ValueError, "2-D or 3-D.*1-D"),
    (np.zeros((2, 3, 4, 5)), ValueError, "2-D or 3-D.*4-D"),
    (np.array(3.0), ValueError, "0-D"),
    (np.ones((4, 4), dtype=complex), TypeError, "real-valued"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "real-valued"),
    (np.array([[object(), 1]], dtype=object), TypeError, "real-valued"),
])
def test_bad_images_get_clear_errors(bad, error, match):
    with pytest.raises(error, match=match):
        pulse(bad, PCNN())
    with pytest.raises(error, match=match):
        signature(bad)


def test_constant_image_with_value_range_is_documented_result():
    constant = np.full((10, 10), 5.0)
    with pytest.raises(ValueError, match="undefined"):
        SPCNN.from_image(constant, value_range=(0, 10))
    result = pulse(constant, PCNN(e0=1.0), n_iter=5, value_range=(0, 10))
    # S = 0.5 everywhere: no pulse until the feeding builds up past e0 = 1
    assert result.counts[0] == 0 and result.counts.sum() > 0


@pytest.mark.parametrize("n_iter, error", [(0, ValueError), (-3, ValueError),
                                           (2.5, TypeError), (True, TypeError), ("5", TypeError)])
def test_bad_n_iter(n_iter, error):
    with pytest.raises(error, match="n_iter"):
        pulse(IMAGES["random"], n_iter=n_iter)


def test_bad_model_and_value_range():
    with pytest.raises(TypeError, match="model"):
        pulse(IMAGES["random"], model="spcnn")
    for bad in [(1, 1), (2, 1), (0, np.nan), "ab", (1,)]:
        with pytest.raises(ValueError, match="value_range"):
            pulse(IMAGES["random"], PCNN(), value_range=bad)


def test_input_is_not_modified():
    image = IMAGES["phantom"].copy()
    pulse(image, n_iter=10)
    np.testing.assert_array_equal(image, IMAGES["phantom"])


def test_normalize():
    out = normalize(np.array([[0, 5], [10, 20]], dtype=np.int16))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, [[0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(normalize(np.array([[-5.0, 5.0], [10, 30]]), value_range=(0, 10)),
                               [[0, 0.5], [1, 1]])
