"""Fused PCNN loops: N iterations without per-iteration allocation.

Two entry points share the same row updates:

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


@njit(cache=True, inline="always")
def _synaptic_sum(y0, y1, y2, j, w):
    # y0, y1, y2: padded pulse rows above, at and below the pixel; raster order.
    acc = np.float32(0.0)
    acc = acc + w[0, 0] * y0[j]
    acc = acc + w[0, 1] * y0[j + 1]
    acc = acc + w[0, 2] * y0[j + 2]
    acc = acc + w[1, 0] * y1[j]
    acc = acc + w[1, 1] * y1[j + 1]
    acc = acc + w[1, 2] * y1[j + 2]
    acc = acc + w[2, 0] * y2[j]
    acc = acc + w[2, 1] * y2[j + 1]
    acc = acc + w[2, 2] * y2[j + 2]
    return acc


@njit(cache=True)
def _row_general(k, y0, y1, y2, s, f_, l_, u_, e_, y_out, ft, M, W, params,
                 same_kernel):
    """One iteration of one row with feeding and linking state (PCNN, ICM)."""
    decay_f = params[P.DECAY_F]
    v_f = params[P.V_F]
    decay_l = params[P.DECAY_L]
    v_l = params[P.V_L]
    decay_u = params[P.DECAY_U]
    beta = params[P.BETA]
    decay_e = params[P.DECAY_E]
    v_e = params[P.V_E]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for j in range(s.shape[0]):
        acc_m = _synaptic_sum(y0, y1, y2, j, M)
        acc_w = acc_m if same_kernel else _synaptic_sum(y0, y1, y2, j, W)
        f = (decay_f * f_[j] + v_f * acc_m) + s[j]
        f_[j] = f
        lk = decay_l * l_[j] + v_l * acc_w
        l_[j] = lk
        u = decay_u * u_[j] + f * (one + beta * lk)
        u_[j] = u
        e = e_[j]
        fired = u > e
        y = one if fired else zero
        e_[j] = decay_e * e + v_e * y
        y_out[j + 1] = y
        ft[j] = k if (fired and ft[j] < 0) else ft[j]


@njit(cache=True)
def _row_modulated(k, y0, y1, y2, s, u_, e_, y_out, ft, W, params):
    """One iteration of one row when ``F = S`` and ``L = V_L (W * Y)`` (SPCNN, SCM)."""
    v_l = params[P.V_L]
    decay_u = params[P.DECAY_U]
    beta = params[P.BETA]
    decay_e = params[P.DECAY_E]
    v_e = params[P.V_E]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for j in range(s.shape[0]):
        lk = v_l * _synaptic_sum(y0, y1, y2, j, W)
        u = decay_u * u_[j] + s[j] * (one + beta * lk)
        u_[j] = u
        e = e_[j]
        fired = u > e
        y = one if fired else zero
        e_[j] = decay_e * e + v_e * y
        y_out[j + 1] = y
        ft[j] = k if (fired and ft[j] < 0) else ft[j]


@njit(cache=True, fastmath=True)
def _count(y_row):
    # Sum of 0/1 floats: exact in any order, so fastmath only lets it vectorise.
    c = np.float32(0.0)
    for j in range(y_row.shape[0]):
        c += y_row[j]
    return np.int64(c)


@njit(cache=True)
def _row_step(i, k, S, F, L, U, E, Yp, Yn, fire_time, M, W, params, modulated,
              same_kernel):
    """Update image row ``i`` at iteration ``k``; return its pulse count."""
    if modulated:
        _row_modulated(k, Yp[i], Yp[i + 1], Yp[i + 2], S[i], U[i], E[i],
                       Yn[i + 1], fire_time[i], W, params)
    else:
        _row_general(k, Yp[i], Yp[i + 1], Yp[i + 2], S[i], F[i], L[i], U[i],
                     E[i], Yn[i + 1], fire_time[i], M, W, params, same_kernel)
    return _count(Yn[i + 1])


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
    for k in range(n_iter):
        kk = np.int32(k)
        total = 0
        for i in prange(H):
            total += _row_step(i, kk, S, F, L, U, E, Yp, Yn, fire_time, M, W,
                               params, modulated, same_kernel)
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
            kk = np.int32(k)
            total = 0
            for i in range(H):
                total += _row_step(i, kk, S[b], F, L, U, E, Yp, Yn,
                                   fire_time[b], M, W, params, modulated,
                                   same_kernel)
            counts[b, k] = total
            if record:
                _record(spikes[b], k, Yn)
            Yp, Yn = Yn, Yp
    return fire_time, counts, spikes
