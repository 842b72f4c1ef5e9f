"""The 3-D linking kernel against the NumPy reference, and its wrapper."""
import numba
import numpy as np
import pytest

import pcnnseg_kernels
from pcnnseg import phantom
from pcnnseg.models import CHEN_WEIGHTS, SCM_WEIGHTS
from pcnnseg.segmentation import intensity_order_model
from pcnnseg.simulate import pulse, pulse_volume, record_runs, volume_weights
from tests import reference
from tests.conftest import MODELS

N_ITER = 30


def _volumes():
    rng = np.random.default_rng(5)
    brain, _ = phantom.make_volume((16, 30, 26), seed=2)
    brain = brain[4:13]
    holes = rng.random((6, 11, 13)).astype(np.float32)
    holes[rng.random(holes.shape) < 0.4] = 0.0
    return {
        "random": rng.random((5, 12, 10)).astype(np.float32),
        "phantom": (brain / brain.max()).astype(np.float32),
        "random_with_zeros": holes,
        "one_slice": rng.random((1, 9, 7)).astype(np.float32),
        "tiny": rng.random((2, 1, 3)).astype(np.float32),
    }


VOLUMES = _volumes()
SPACINGS = {"iso": (1.0, 1.0, 1.0), "thick": (3.0, 0.9, 1.1)}


@pytest.mark.parametrize("spacing", sorted(SPACINGS))
@pytest.mark.parametrize("volume_name", sorted(VOLUMES))
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_volume_kernel_matches_reference(model_name, volume_name, spacing):
    S, model = VOLUMES[volume_name], MODELS[model_name]
    params, M, W = model.kernel_params()
    M3, W3 = volume_weights(M, SPACINGS[spacing]), volume_weights(W, SPACINGS[spacing])
    fire_time, counts = pcnnseg_kernels.pcnn_volume(S, params, M3, W3, N_ITER)
    ref_fire_time, ref_counts, ref_spikes = reference.run(S, model, N_ITER, (M3, W3))
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(fire_time, ref_fire_time)
    if volume_name == "phantom":  # guards the comparison: varied, repeated pulses
        assert ref_spikes.sum() > S.size and len(np.unique(counts)) > 2


def test_dark_voxels_pulse_when_the_threshold_starts_negative():
    # the kernel skips voxels of stimulus 0 only when they cannot pulse
    from pcnnseg import SPCNN
    S = VOLUMES["random_with_zeros"]
    model = SPCNN(alpha_f=0.3, beta=0.2, v_e=3.0, alpha_e=0.5, e0=-0.5)
    params, M, W = model.kernel_params()
    W3 = volume_weights(W)
    fire_time, counts = pcnnseg_kernels.pcnn_volume(S, params, W3, W3, N_ITER)
    ref_fire_time, ref_counts, _ = reference.run(S, model, N_ITER, (W3, W3))
    np.testing.assert_array_equal(fire_time, ref_fire_time)
    np.testing.assert_array_equal(counts, ref_counts)
    assert (fire_time[S == 0] == 0).all()


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_one_slice_without_through_plane_weights_is_the_2d_run(model_name):
    S = VOLUMES["phantom"][4:5]
    params, M, W = MODELS[model_name].kernel_params()
    M3 = np.zeros((3, 3, 3), np.float32)
    W3 = np.zeros((3, 3, 3), np.float32)
    M3[1], W3[1] = M, W
    ft3, c3 = pcnnseg_kernels.pcnn_volume(np.ascontiguousarray(S), params, M3, W3, N_ITER)
    ft2, c2, _ = pcnnseg_kernels.pcnn_image(S[0], params, M, W, N_ITER, False, 1)
    np.testing.assert_array_equal(ft3[0], ft2)
    np.testing.assert_array_equal(c3, c2)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_volume_kernel_does_not_depend_on_thread_count():
    S = VOLUMES["phantom"]
    params, M, W = MODELS["spcnn_e0"].kernel_params()
    M3 = W3 = volume_weights(W)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = pcnnseg_kernels.pcnn_volume(S, params, M3, W3, N_ITER)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = pcnnseg_kernels.pcnn_volume(S, params, M3, W3, N_ITER)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])


def test_volume_weights_follow_the_inverse_square_law():
    w = volume_weights(CHEN_WEIGHTS)
    z, y, x = np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")
    d2 = (z ** 2 + y ** 2 + x ** 2).astype(float)
    expected = np.where(d2 > 0, 1.0 / np.where(d2 > 0, d2, 1), 0.0)
    np.testing.assert_allclose(w, expected, rtol=1e-7)
    thick = volume_weights(CHEN_WEIGHTS, spacing=(5.0, 1.0, 1.0))
    np.testing.assert_array_equal(thick[1], np.float32(CHEN_WEIGHTS))
    assert thick[0, 1, 1] == pytest.approx(1 / 25) and thick[2, 0, 0] == pytest.approx(1 / 27)
    # the face weight scales the through-plane weights of other kernels
    scm = volume_weights(SCM_WEIGHTS)
    assert scm[0, 1, 1] == pytest.approx(0.1409, rel=1e-6)
    assert scm[2, 0, 0] == pytest.approx(0.1409 / 3, rel=1e-6)


@pytest.mark.parametrize("spacing, error", [
    ((1.0, 1.0), ValueError), ((0.0, 1.0, 1.0), ValueError), ((np.nan, 1, 1), ValueError),
    ((1.0, -2.0, 1.0), ValueError), ("abc", TypeError), (3.0, TypeError),
])
def test_volume_weights_rejects_bad_spacing(spacing, error):
    with pytest.raises(error, match="spacing"):
        volume_weights(CHEN_WEIGHTS, spacing=spacing)
    with pytest.raises(error, match="spacing"):
        pulse_volume(VOLUMES["random"], spacing=spacing)


def test_volume_weights_rejects_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        volume_weights(np.ones((3, 3, 3)))


def test_pulse_volume_links_across_slices_where_pulse_does_not():
    v = np.zeros((3, 6, 6), np.float32)
    v[0, 3, 3] = 1.0
    v[1] = 0.5
    model = intensity_order_model(beta=1.0)
    linked = pulse_volume(v, model, n_iter=20, value_range=(0, 1)).fire_time
    separate = pulse(v, model, n_iter=20, value_range=(0, 1)).fire_time
    alone = int(np.floor(np.log(1 / 0.5) / 0.05)) + 1          # 14
    assert separate[1, 3, 3] == alone
    assert linked[0, 3, 3] == 1 and linked[1, 3, 3] == 2      # pulled forward by the slice above
    assert (linked[1] < alone).all() and (linked[2] == -1).all()


def test_pulse_volume_validates_and_records():
    with pytest.raises(ValueError, match="volume"):
        pulse_volume(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        pulse_volume(np.full((2, 3, 3), np.nan))
    with pytest.raises(TypeError, match="model"):
        pulse_volume(VOLUMES["random"], model="spcnn")
    with pytest.raises(ValueError, match="n_iter"):
        pulse_volume(VOLUMES["random"], n_iter=0)
    with record_runs() as runs:
        r = pulse_volume(VOLUMES["random"], n_iter=7)
    assert r.fire_time.shape == VOLUMES["random"].shape and r.counts.shape == (7,)
    assert runs[0].n_neurons == VOLUMES["random"].size and runs[0].weights[1].shape == (3, 3, 3)
    assert runs[0].n_pulses == int(r.counts.sum())


@pytest.mark.parametrize("spacing", sorted(SPACINGS))
@pytest.mark.parametrize("beta", [0.0, 0.1, 1.0])
def test_voxels_too_dim_to_pulse_are_skipped_without_changing_the_run(beta, spacing):
    """Intensity-order runs as segment_tumor makes them: the kernel skips voxels
    below silent_below, and still equals the reference; dim voxels sit among bright
    ones, so that they get all the linking there is."""
    from pcnnseg.segmentation import ALPHA_E, first_pulse_iteration
    from pcnnseg_kernels.volume import silent_below

    model = intensity_order_model(beta=beta)
    params, M, W = model.kernel_params()
    M3, W3 = volume_weights(M, SPACINGS[spacing]), volume_weights(W, SPACINGS[spacing])
    n_iter = first_pulse_iteration(0.3, ALPHA_E) + 1
    dim = silent_below(params, W3, n_iter)
    assert 0.0 < dim < 0.3
    rng = np.random.default_rng(7)
    S = (dim * rng.uniform(0.5, 1.5, (6, 14, 12))).astype(np.float32)
    S[:, ::2, ::2] = 1.0                      # bright neighbours pulse first
    S[:, 5:9, 4:8] = rng.uniform(0.2, 0.4, (6, 4, 4))   # and a region near the level
    assert (S < dim).mean() > 0.2
    fire_time, counts = pcnnseg_kernels.pcnn_volume(S, params, M3, W3, n_iter)
    ref_fire_time, ref_counts, _ = reference.run(S, model, n_iter, (M3, W3))
    np.testing.assert_array_equal(fire_time, ref_fire_time)
    np.testing.assert_array_equal(counts, ref_counts)
    assert (ref_fire_time[S < dim] < 0).all()
    if beta >= 1.0:   # linking pulls some voxels below the level, none below the bound
        assert (ref_fire_time[(S >= dim) & (S < 0.3)] >= 0).any()


def test_no_stimulus_is_known_silent_outside_the_bound_s_conditions():
    from pcnnseg.models import ICM, PCNN, SPCNN
    from pcnnseg_kernels.volume import silent_below

    for model in (PCNN(), SPCNN(alpha_f=1.0, beta=-0.1, v_e=5.0, alpha_e=0.5),
                  SPCNN(alpha_f=1.0, beta=0.1, v_e=5.0, alpha_e=0.5, e0=0.0)):
        params, _, W = model.kernel_params()
        assert silent_below(params, volume_weights(W, (1.0, 1.0, 1.0)), 20) == 0.0
    params, _, W = ICM().kernel_params()
    assert silent_below(params, volume_weights(W, (1.0, 1.0, 1.0)), 0) == 0.0
