"""Fused PCNN loops: N iterations without per-iteration allocation.

Two entry points share the same sweeps over rows:

- :func:`pcnn_image` runs one (H, W) image, parallel over rows within each
  iteration (every iteration needs the previous iteration's pulses of the
  neighbouring rows, so rows synchronise once per iteration);
- :func:`pcnn_batch` runs (B, H, W) images, parallel over images, each image
  iterating on its own with no synchronisation.

The update is the canonical one of :mod:`kernels.layout` with the arithmetic
order of :mod:`kernels.steps`, so pulses are bit-identical to composing the
step kernels. Pulses live in zero-padded float32 buffers (one border pixel) so
the 3x3 synaptic sums need no bounds tests and the row loops vectorise.

Models whose feeding is the stimulus itself and whose linking has no memory
(``DECAY_F = V_F = DECAY_L = 0``: SPCNN, SCM) take a leaner row update that
keeps no F or L arrays; the values it computes are the same.
"""
import numpy as np
from numba import njit, prange

from kernels import layout as P

_CHUNK_ROWS = 8


@njit(cache=True, inline="always")
def _synaptic_sum(Yp, i, j, w):
    # Yp is padded: image pixel (i, j) sits at Yp[i + 1, j + 1]. Raster order.
    acc = np.float32(0.0)
    acc = acc + w[0, 0] * Yp[i, j]
    acc = acc + w[0, 1] * Yp[i, j + 1]
    acc = acc + w[0, 2] * Yp[i, j + 2]
    acc = acc + w[1, 0] * Yp[i + 1, j]
    acc = acc + w[1, 1] * Yp[i + 1, j + 1]
    acc = acc + w[1, 2] * Yp[i + 1, j + 2]
    acc = acc + w[2, 0] * Yp[i + 2, j]
    acc = acc + w[2, 1] * Yp[i + 2, j + 1]
    acc = acc + w[2, 2] * Yp[i + 2, j + 2]
    return acc


@njit(cache=True, fastmath=True)
def _count_row(Yn, i):
    # Sum of 0/1 floats: exact in any order, so fastmath only lets it vectorise.
    c = np.float32(0.0)
    for j in range(1, Yn.shape[1] - 1):
        c += Yn[i, j]
    return np.int64(c)


# The sweeps index whole 2-D arrays instead of taking row views: a view per row
# costs reference counting that, on 64-pixel rows, outweighed the arithmetic.

@njit(cache=True, inline="always")
def _update_general(i, j, k, acc_m, acc_w, S, F, L, U, E, Yn, fire_time, params):
    """Canonical update of pixel (i, j) from its synaptic sums; returns the pulse."""
    one = np.float32(1.0)
    f = (params[P.DECAY_F] * F[i, j] + params[P.V_F] * acc_m) + S[i, j]
    F[i, j] = f
    lk = params[P.DECAY_L] * L[i, j] + params[P.V_L] * acc_w
    L[i, j] = lk
    u = params[P.DECAY_U] * U[i, j] + f * (one + params[P.BETA] * lk)
    U[i, j] = u
    e = E[i, j]
    fired = u > e
    y = one if fired else np.float32(0.0)
    E[i, j] = params[P.DECAY_E] * e + params[P.V_E] * y
    Yn[i + 1, j + 1] = y
    fire_time[i, j] = k if (fired and fire_time[i, j] < 0) else fire_time[i, j]


@njit(cache=True)
def _sweep_general(i0, i1, k, S, F, L, U, E, Yp, Yn, fire_time, M, W, params,
                   same_kernel):
    """Iteration ``k`` on rows ``[i0, i1)`` with feeding and linking state (PCNN, ICM).

    Returns the number of pulses in those rows.
    """
    total = 0
    for i in range(i0, i1):
        # two loops rather than a select, so one synaptic sum is computed when M == W
        if same_kernel:
            for j in range(S.shape[1]):
                acc = _synaptic_sum(Yp, i, j, M)
                _update_general(i, j, k, acc, acc, S, F, L, U, E, Yn, fire_time, params)
        else:
            for j in range(S.shape[1]):
                _update_general(i, j, k, _synaptic_sum(Yp, i, j, M),
                                _synaptic_sum(Yp, i, j, W), S, F, L, U, E, Yn,
                                fire_time, params)
        total += _count_row(Yn, i + 1)
    return total


@njit(cache=True)
def _sweep_modulated(i0, i1, k, S, U, E, Yp, Yn, fire_time, W, params):
    """Iteration ``k`` on rows ``[i0, i1)`` when ``F = S`` and ``L = V_L (W * Y)``.

    The SPCNN / SCM case; returns the number of pulses in those rows.
    """
    v_l = params[P.V_L]
    decay_u = params[P.DECAY_U]
    beta = params[P.BETA]
    decay_e = params[P.DECAY_E]
    v_e = params[P.V_E]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    total = 0
    for i in range(i0, i1):
        for j in range(S.shape[1]):
            lk = v_l * _synaptic_sum(Yp, i, j, W)
            u = decay_u * U[i, j] + S[i, j] * (one + beta * lk)
            U[i, j] = u
            e = E[i, j]
            fired = u > e
            y = one if fired else zero
            E[i, j] = decay_e * e + v_e * y
            Yn[i + 1, j + 1] = y
            fire_time[i, j] = k if (fired and fire_time[i, j] < 0) else fire_time[i, j]
        total += _count_row(Yn, i + 1)
    return total


@njit(cache=True)
def _sweep(i0, i1, k, S, F, L, U, E, Yp, Yn, fire_time, M, W, params, modulated,
           same_kernel):
    """Update rows ``[i0, i1)`` at iteration ``k``; return their pulse count."""
    if modulated:
        return _sweep_modulated(i0, i1, k, S, U, E, Yp, Yn, fire_time, W, params)
    return _sweep_general(i0, i1, k, S, F, L, U, E, Yp, Yn, fire_time, M, W,
                          params, same_kernel)


@njit(cache=True)
def _flags(params, M, W):
    modulated = (params[P.DECAY_F] == 0 and params[P.V_F] == 0
                 and params[P.DECAY_L] == 0)
    same_kernel = True
    for a in range(3):
        for b in range(3):
            if M[a, b] != W[a, b]:
                same_kernel = False
    return modulated, same_kernel


@njit(cache=True)
def _state(H, Wd, params, modulated):
    # F and L are only read by the general row update.
    n = 0 if modulated else H
    F = np.zeros((n, Wd), dtype=np.float32)
    L = np.zeros((n, Wd), dtype=np.float32)
    U = np.zeros((H, Wd), dtype=np.float32)
    E = np.full((H, Wd), params[P.E0], dtype=np.float32)
    Yp = np.zeros((H + 2, Wd + 2), dtype=np.float32)
    Yn = np.zeros((H + 2, Wd + 2), dtype=np.float32)
    return F, L, U, E, Yp, Yn


@njit(cache=True)
def _record(spikes, k, Yn):
    H, Wd = spikes.shape[1], spikes.shape[2]
    for i in range(H):
        for j in range(Wd):
            spikes[k, i, j] = Yn[i + 1, j + 1] != 0


@njit(cache=True, parallel=True)
def pcnn_image(S, params, M, W, n_iter, record):
    """Run ``n_iter`` iterations of the canonical PCNN on one image.

    Parameters
    ----------
    S : (H, W) float32 ndarray, C-contiguous
        Stimulus, normalised to [0, 1].
    params : (N_PARAMS,) float32 ndarray
        Canonical parameters, see :mod:`kernels.layout`.
    M, W : (3, 3) float32 ndarray
        Feeding and linking synaptic weights.
    n_iter : int
    record : bool
        Whether to fill the pulse stack.

    Returns
    -------
    fire_time : (H, W) int32 ndarray
        First iteration (0-based) at which each pixel pulsed, -1 if never.
    counts : (n_iter,) int64 ndarray
        Number of pulses at each iteration (the time signature G).
    spikes : (n_iter, H, W) bool ndarray, or (0, 0, 0) when not ``record``.
    """
    H, Wd = S.shape
    modulated, same_kernel = _flags(params, M, W)
    F, L, U, E, Yp, Yn = _state(H, Wd, params, modulated)
    fire_time = np.full((H, Wd), -1, dtype=np.int32)
    counts = np.zeros(n_iter, dtype=np.int64)
    n_rec = n_iter if record else 0
    spikes = np.zeros((n_rec, H if record else 0, Wd if record else 0),
                      dtype=np.bool_)
    # chunks of a few rows: enough of them to balance threads, few enough to be cheap
    n_chunks = (H + _CHUNK_ROWS - 1) // _CHUNK_ROWS
    for k in range(n_iter):
        kk = np.int32(k)
        total = 0
        for c in prange(n_chunks):
            total += _sweep(c * _CHUNK_ROWS, min(H, (c + 1) * _CHUNK_ROWS), kk, S,
                            F, L, U, E, Yp, Yn, fire_time, M, W, params, modulated,
                            same_kernel)
        counts[k] = total
        if record:
            _record(spikes, k, Yn)
        Yp, Yn = Yn, Yp
    return fire_time, counts, spikes


@njit(cache=True, parallel=True)
def pcnn_batch(S, params, M, W, n_iter, record):
    """Run ``n_iter`` iterations of the canonical PCNN on a batch of images.

    Parameters
    ----------
    S : (B, H, W) float32 ndarray, C-contiguous
        Stimuli, normalised to [0, 1].
    params, M, W, n_iter, record
        As in :func:`pcnn_image`; shared by all images.

    Returns
    -------
    fire_time : (B, H, W) int32 ndarray
    counts : (B, n_iter) int64 ndarray
    spikes : (B, n_iter, H, W) bool ndarray, or (B, 0, 0, 0) when not ``record``.
    """
    B, H, Wd = S.shape
    modulated, same_kernel = _flags(params, M, W)
    fire_time = np.full((B, H, Wd), -1, dtype=np.int32)
    counts = np.zeros((B, n_iter), dtype=np.int64)
    n_rec = n_iter if record else 0
    spikes = np.zeros((B, n_rec, H if record else 0, Wd if record else 0),
                      dtype=np.bool_)
    for b in prange(B):
        F, L, U, E, Yp, Yn = _state(H, Wd, params, modulated)
        for k in range(n_iter):
            counts[b, k] = _sweep(0, H, np.int32(k), S[b], F, L, U, E, Yp, Yn,
                                  fire_time[b], M, W, params, modulated,
                                  same_kernel)
            if record:
                _record(spikes[b], k, Yn)
            Yp, Yn = Yn, Yp
    return fire_time, counts, spikes
