"""Kernels against the NumPy reference, step kernels against the fused loops."""
import numba
import numpy as np
import pytest

import pcnnseg_kernels
from pcnnseg import normalize
from tests.conftest import IMAGES, MODELS
from tests import reference

N_ITER = 50


def _stimulus(name):
    return normalize(IMAGES[name])


def test_fused_image_matches_reference(image_name, model_name):
    S, model = _stimulus(image_name), MODELS[model_name]
    params, M, W = model.kernel_params()
    fire_time, counts, spikes = pcnnseg_kernels.pcnn_image(S, params, M, W, N_ITER, True, 2)
    ref_fire_time, ref_counts, ref_spikes = reference.run(S, model, N_ITER)
    np.testing.assert_array_equal(spikes, ref_spikes)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(fire_time, ref_fire_time)


def test_references_are_not_trivial(image_name, model_name):
    # Guards the comparison above: the runs must contain repeated, varied pulses.
    S, model = _stimulus(image_name), MODELS[model_name]
    _, counts, spikes = reference.run(S, model, N_ITER)
    assert spikes.sum() > S.size
    assert len(np.unique(counts)) > 2


def test_steps_compose_to_fused(image_name, model_name):
    S, model = _stimulus(image_name), MODELS[model_name]
    p, M, W = model.kernel_params()
    L = pcnnseg_kernels.layout
    F = np.zeros_like(S)
    Lk = np.zeros_like(S)
    U = np.zeros_like(S)
    E = np.full_like(S, p[L.E0])
    Y = np.zeros(S.shape, dtype=bool)
    stack = []
    for _ in range(N_ITER):
        F = pcnnseg_kernels.feeding(F, Y, S, M, p[L.DECAY_F], p[L.V_F])
        Lk = pcnnseg_kernels.linking(Lk, Y, W, p[L.DECAY_L], p[L.V_L])
        U, Y = pcnnseg_kernels.pulse(U, F, Lk, E, p[L.DECAY_U], p[L.BETA])
        E = pcnnseg_kernels.threshold(E, Y, p[L.DECAY_E], p[L.V_E])
        stack.append(Y)
    _, counts, spikes = pcnnseg_kernels.pcnn_image(S, p, M, W, N_ITER, True, 1)
    np.testing.assert_array_equal(spikes, np.array(stack))
    np.testing.assert_array_equal(counts, np.array(stack).sum(axis=(1, 2)))


def test_synaptic_sum_zero_outside_and_weighted():
    Y = np.zeros((4, 5), dtype=bool)
    Y[0, 0] = True
    w = np.arange(9, dtype=np.float32).reshape(3, 3)
    out = pcnnseg_kernels.synaptic_sum(Y, w)
    expected = np.zeros((4, 5), dtype=np.float32)
    # weights[1 + dy, 1 + dx] weighs the neighbour at offset (dy, dx)
    expected[0, 0] = w[1, 1]
    expected[0, 1] = w[1, 0]
    expected[1, 0] = w[0, 1]
    expected[1, 1] = w[0, 0]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_batch_matches_single_images(model_name):
    rng = np.random.default_rng(7)
    S = rng.random((5, 21, 18)).astype(np.float32)
    S[2] = 0.0  # an all-zero member
    params, M, W = MODELS[model_name].kernel_params()
    ft, counts, spikes = pcnnseg_kernels.pcnn_batch(S, params, M, W, N_ITER, True)
    ft_nr, counts_nr, spikes_nr = pcnnseg_kernels.pcnn_batch(S, params, M, W, N_ITER, False)
    assert spikes_nr.shape == (5, 0, 0, 0)
    np.testing.assert_array_equal(ft_nr, ft)
    np.testing.assert_array_equal(counts_nr, counts)
    for b in range(S.shape[0]):
        ft1, c1, sp1 = pcnnseg_kernels.pcnn_image(S[b], params, M, W, N_ITER, True, 3)
        np.testing.assert_array_equal(ft[b], ft1)
        np.testing.assert_array_equal(counts[b], c1)
        np.testing.assert_array_equal(spikes[b], sp1)


def test_spikes_not_recorded_by_default_shape():
    S = _stimulus("random")
    params, M, W = MODELS["pcnn"].kernel_params()
    ft, counts, spikes = pcnnseg_kernels.pcnn_image(S, params, M, W, 7, False, 2)
    assert spikes.shape == (0, 0, 0)
    assert ft.dtype == np.int32 and counts.dtype == np.int64 and counts.shape == (7,)


def test_results_do_not_depend_on_thread_count():
    S = _stimulus("phantom")
    params, M, W = MODELS["spcnn"].kernel_params()
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = pcnnseg_kernels.pcnn_image(S, params, M, W, N_ITER, False, 1)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = pcnnseg_kernels.pcnn_image(S, params, M, W, N_ITER, False,
                                  max(2, numba.config.NUMBA_NUM_THREADS))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])


def test_exact_symmetric_detection():
    from pcnnseg_kernels.fused import _exact_symmetric
    from pcnnseg.models import CHEN_WEIGHTS, SCM_WEIGHTS
    f32 = lambda w: np.array(w, dtype=np.float32)  # noqa: E731
    assert _exact_symmetric(f32(CHEN_WEIGHTS))
    assert not _exact_symmetric(f32(SCM_WEIGHTS))          # not dyadic
    assert not _exact_symmetric(f32([[0.5, 1, 0.25], [1, 0, 1], [0.5, 1, 0.5]]))  # asymmetric
    assert not _exact_symmetric(f32([[20, 20, 20], [20, 0, 20], [20, 20, 20]]))   # sum > 64


@pytest.mark.parametrize("weights", [
    ((-0.5, 0.25, -0.5), (0.25, -1.0, 0.25), (-0.5, 0.25, -0.5)),   # signs, centre weight
    ((0.125, 2.0, 0.125), (2.0, 0.5, 2.0), (0.125, 2.0, 0.125)),
])
def test_symmetric_fast_path_matches_reference(weights):
    # same_kernel + symmetric (general sweep) and symmetric (modulated sweep)
    from pcnnseg import ICM, SPCNN
    S = _stimulus("random_with_zeros")
    for model in (ICM(weights=weights), SPCNN(alpha_f=1.1, beta=0.3, v_e=5.0, alpha_e=1.2,
                                              weights=weights)):
        params, M, W = model.kernel_params()
        _, counts, spikes = pcnnseg_kernels.pcnn_image(S, params, M, W, N_ITER, True, 2)
        _, ref_counts, ref_spikes = reference.run(S, model, N_ITER)
        np.testing.assert_array_equal(spikes, ref_spikes)
        assert len(np.unique(counts)) > 2


def test_asymmetric_weights_with_a_centre_match_reference():
    # The raster-order sum (weights the symmetric path does not take), every
    # neighbour and the centre weighted differently, in the general sweep (PCNN)
    # and the modulated one (SPCNN); found missing by mutation testing (a centre
    # weight read from the pixel below went unnoticed).
    from pcnnseg import PCNN, SPCNN
    w = ((0.1, 0.2, 0.3), (0.4, 0.9, 0.5), (0.6, 0.7, 0.8))
    S = _stimulus("random_with_zeros")
    for model in (PCNN(feeding_weights=w, linking_weights=w[::-1]),
                  SPCNN(alpha_f=1.1, beta=0.3, v_e=5.0, alpha_e=1.2, weights=w)):
        params, M, W = model.kernel_params()
        for n_bands in (1, 2):
            fire_time, counts, spikes = pcnnseg_kernels.pcnn_image(S, params, M, W, N_ITER,
                                                                   True, n_bands)
            ref_fire_time, ref_counts, ref_spikes = reference.run(S, model, N_ITER)
            np.testing.assert_array_equal(spikes, ref_spikes)
            np.testing.assert_array_equal(fire_time, ref_fire_time)


@pytest.mark.parametrize("shape", [(1, 17), (17, 1), (1, 1)])
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_one_pixel_wide_images_match_reference(shape, model_name):
    # Buffers sized H + 2 and W + 2 must hold a single row or column (found by
    # mutation testing: H ** 2 rows went unnoticed).
    S = np.random.default_rng(3).random(shape).astype(np.float32)
    model = MODELS[model_name]
    params, M, W = model.kernel_params()
    for n_bands in (1, 2):
        fire_time, counts, spikes = pcnnseg_kernels.pcnn_image(S, params, M, W, 12, True,
                                                               n_bands)
        ref_fire_time, ref_counts, ref_spikes = reference.run(S, model, 12)
        np.testing.assert_array_equal(spikes, ref_spikes)
        np.testing.assert_array_equal(fire_time, ref_fire_time)
    fire_time, counts, spikes = pcnnseg_kernels.pcnn_batch(S[None], params, M, W, 12, True)
    np.testing.assert_array_equal(spikes[0], ref_spikes)
    np.testing.assert_array_equal(fire_time[0], ref_fire_time)


@pytest.mark.parametrize("v_f", [1.0, -1.0])
def test_stateless_feeding_with_input_is_not_taken_for_modulated(v_f):
    # Feeding and linking that decay at once (exp(-200) is 0 in float32) but
    # with feeding input (v_f != 0): F = S + v_f M * Y, not the modulated F = S
    # (found by mutation testing: the test of v_f == 0 was not pinned).
    from pcnnseg import PCNN
    model = PCNN(alpha_f=200.0, alpha_l=200.0, v_f=v_f, v_l=0.5, beta=0.4, v_e=3.0,
                 alpha_e=0.4)
    params, M, W = model.kernel_params()
    S = _stimulus("random_with_zeros")
    fire_time, counts, spikes = pcnnseg_kernels.pcnn_image(S, params, M, W, N_ITER, True, 1)
    ref_fire_time, ref_counts, ref_spikes = reference.run(S, model, N_ITER)
    np.testing.assert_array_equal(spikes, ref_spikes)
    simple = PCNN(alpha_f=200.0, alpha_l=200.0, v_f=0.0, v_l=0.5, beta=0.4, v_e=3.0,
                  alpha_e=0.4)
    assert not np.array_equal(
        spikes, pcnnseg_kernels.pcnn_image(S, *simple.kernel_params(), N_ITER, True, 1)[2])


@pytest.mark.parametrize("n_bands", [1, 2, 3, 7, 40, 1000])
@pytest.mark.parametrize("model_name", ["pcnn", "spcnn", "scm"])
def test_bands_with_halos_match_reference(n_bands, model_name):
    # 40 rows: bands thinner than the halo, and more bands than rows
    S = _stimulus("random")
    model = MODELS[model_name]
    params, M, W = model.kernel_params()
    fire_time, counts, spikes = pcnnseg_kernels.pcnn_image(S, params, M, W, 23, True, n_bands)
    ref_fire_time, ref_counts, ref_spikes = reference.run(S, model, 23)
    np.testing.assert_array_equal(spikes, ref_spikes)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(fire_time, ref_fire_time)
