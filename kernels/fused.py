"""Fused PCNN loops: N iterations without per-iteration allocation.

Two entry points share the same sweeps over rows:

- :func:`pcnn_image` runs one (H, W) image cut into horizontal bands run in
  parallel; each band recomputes a halo of neighbouring rows so that bands
  synchronise only every ``_BLOCK_ITERS`` iterations (the ghost-cell expansion
  of Ding & He [1]_: a halo ``h`` rows deep lets a 3x3 stencil run ``h``
  steps between exchanges, at the price of recomputing the halo);
- :func:`pcnn_batch` runs (B, H, W) images, parallel over images, each image
  iterating on its own with no synchronisation.

The update is the canonical one of :mod:`pcnnseg_kernels.layout` with the arithmetic
order of :mod:`pcnnseg_kernels.steps`, so pulses are bit-identical to composing the
step kernels. Pulses live in zero-padded float32 buffers (one border pixel) so
the 3x3 synaptic sums need no bounds tests and the row loops vectorise; when
the weights allow it exactly (Chen's do), the sums group corners and edges.

Models whose feeding is the stimulus itself and whose linking has no memory
(``DECAY_F = V_F = DECAY_L = 0``: SPCNN, SCM) take a leaner row update that
keeps no F or L arrays; the values it computes are the same. The equations'
sources are cited in :mod:`pcnnseg_kernels.layout`.

References
----------
.. [1] C. Ding, Y. He, "A ghost cell expansion method for reducing
   communications in solving PDE problems", Proceedings of the ACM/IEEE
   Conference on Supercomputing (SC '01), 2001. doi:10.1145/582034.582084
"""
import numpy as np
from numba import njit, prange

from pcnnseg_kernels import layout as P

# Iterations between halo exchanges of the bands of one image, and halo depth.
_BLOCK_ITERS = 10


# Inner loops take parameters and weights as tuples of scalars unpacked before
# the loop: reading arrays inside it stops LLVM hoisting the loads (they might
# alias the state being written) and vectorising.

@njit(cache=True, inline="always")
def _weights(w):
    return (w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1], w[1, 2], w[2, 0], w[2, 1],
            w[2, 2])


@njit(cache=True, inline="always")
def _synaptic_sum(Yp, i, j, w):
    # Yp is padded: image pixel (i, j) sits at Yp[i + 1, j + 1]. Raster order.
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = w
    acc = np.float32(0.0)
    acc = acc + w00 * Yp[i, j]
    acc = acc + w01 * Yp[i, j + 1]
    acc = acc + w02 * Yp[i, j + 2]
    acc = acc + w10 * Yp[i + 1, j]
    acc = acc + w11 * Yp[i + 1, j + 1]
    acc = acc + w12 * Yp[i + 1, j + 2]
    acc = acc + w20 * Yp[i + 2, j]
    acc = acc + w21 * Yp[i + 2, j + 1]
    acc = acc + w22 * Yp[i + 2, j + 2]
    return acc


@njit(cache=True, inline="always")
def _symmetric_sum(Yp, i, j, w):
    # Only for weights accepted by _exact_symmetric: every partial sum is exact,
    # so grouping corners and edges gives the raster-order result bit for bit.
    corners = (Yp[i, j] + Yp[i, j + 2]) + (Yp[i + 2, j] + Yp[i + 2, j + 2])
    edges = (Yp[i, j + 1] + Yp[i + 2, j + 1]) + (Yp[i + 1, j] + Yp[i + 1, j + 2])
    return (w[0] * corners + w[1] * edges) + w[4] * Yp[i + 1, j + 1]


@njit(cache=True)
def _exact_symmetric(w):
    """Whether ``w`` has equal corners and equal edges, and its synaptic sums are
    exact in float32 in any order: all weights multiples of 2**-16 with absolute
    sum at most 64, so every partial sum fits in 22 bits (Chen's weights qualify).
    """
    c, e = w[0, 0], w[0, 1]
    if not (w[0, 2] == c and w[2, 0] == c and w[2, 2] == c
            and w[1, 0] == e and w[1, 2] == e and w[2, 1] == e):
        return False
    total = 0.0
    for a in range(3):
        for b in range(3):
            scaled = np.float64(w[a, b]) * 65536.0
            if scaled != np.floor(scaled):
                return False
            total += abs(np.float64(w[a, b]))
    return total <= 64.0


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
def _unpack(params):
    return (params[P.DECAY_F], params[P.V_F], params[P.DECAY_L], params[P.V_L],
            params[P.DECAY_U], params[P.BETA], params[P.DECAY_E], params[P.V_E])


@njit(cache=True, inline="always")
def _pulse_and_threshold(i, j, k, u, E, Yn, fire_time, decay_e, v_e):
    """Pulse of pixel (i, j) against the previous threshold, then its new threshold."""
    e = E[i, j]
    fired = u > e
    y = np.float32(1.0) if fired else np.float32(0.0)
    E[i, j] = decay_e * e + v_e * y
    Yn[i + 1, j + 1] = y
    fire_time[i, j] = k if (fired and fire_time[i, j] < 0) else fire_time[i, j]


@njit(cache=True, inline="always")
def _update_general(i, j, k, acc_m, acc_w, S, F, L, U, E, Yn, fire_time, c):
    """Canonical update of pixel (i, j) from its synaptic sums; ``c`` is
    :func:`_unpack` of the parameters."""
    decay_f, v_f, decay_l, v_l, decay_u, beta, decay_e, v_e = c
    one = np.float32(1.0)
    f = (decay_f * F[i, j] + v_f * acc_m) + S[i, j]
    F[i, j] = f
    lk = decay_l * L[i, j] + v_l * acc_w
    L[i, j] = lk
    u = decay_u * U[i, j] + f * (one + beta * lk)
    U[i, j] = u
    _pulse_and_threshold(i, j, k, u, E, Yn, fire_time, decay_e, v_e)


@njit(cache=True)
def _sweep_general(i0, i1, c0, c1, k, S, F, L, U, E, Yp, Yn, fire_time, M, W,
                   params, same_kernel, symmetric):
    """Iteration ``k`` on rows ``[i0, i1)`` with feeding and linking state (PCNN, ICM).

    Returns the number of pulses in rows ``[c0, c1)``.
    """
    c = _unpack(params)
    M = _weights(M)
    W = _weights(W)
    total = 0
    for i in range(i0, i1):
        # separate loops rather than selects, so each computes only the sums it needs
        if same_kernel and symmetric:
            for j in range(S.shape[1]):
                acc = _symmetric_sum(Yp, i, j, M)
                _update_general(i, j, k, acc, acc, S, F, L, U, E, Yn, fire_time, c)
        elif same_kernel:
            for j in range(S.shape[1]):
                acc = _synaptic_sum(Yp, i, j, M)
                _update_general(i, j, k, acc, acc, S, F, L, U, E, Yn, fire_time, c)
        else:
            for j in range(S.shape[1]):
                _update_general(i, j, k, _synaptic_sum(Yp, i, j, M),
                                _synaptic_sum(Yp, i, j, W), S, F, L, U, E, Yn,
                                fire_time, c)
        if c0 <= i < c1:
            total += _count_row(Yn, i + 1)
    return total


@njit(cache=True, inline="always")
def _update_modulated(i, j, k, acc, S, U, E, Yn, fire_time, c):
    """Update of pixel (i, j) when ``F = S`` and ``L = V_L (W * Y)``; ``c`` as in
    :func:`_update_general`."""
    _, _, _, v_l, decay_u, beta, decay_e, v_e = c
    one = np.float32(1.0)
    lk = v_l * acc
    u = decay_u * U[i, j] + S[i, j] * (one + beta * lk)
    U[i, j] = u
    _pulse_and_threshold(i, j, k, u, E, Yn, fire_time, decay_e, v_e)


@njit(cache=True)
def _sweep_modulated(i0, i1, c0, c1, k, S, U, E, Yp, Yn, fire_time, W, params,
                     symmetric):
    """Iteration ``k`` on rows ``[i0, i1)`` when ``F = S`` and ``L = V_L (W * Y)``.

    The SPCNN / SCM case; returns the number of pulses in rows ``[c0, c1)``.
    """
    c = _unpack(params)
    W = _weights(W)
    total = 0
    for i in range(i0, i1):
        if symmetric:
            for j in range(S.shape[1]):
                _update_modulated(i, j, k, _symmetric_sum(Yp, i, j, W), S, U, E, Yn,
                                  fire_time, c)
        else:
            for j in range(S.shape[1]):
                _update_modulated(i, j, k, _synaptic_sum(Yp, i, j, W), S, U, E, Yn,
                                  fire_time, c)
        if c0 <= i < c1:
            total += _count_row(Yn, i + 1)
    return total


@njit(cache=True)
def _sweep(i0, i1, c0, c1, k, S, F, L, U, E, Yp, Yn, fire_time, M, W, params, flags):
    """Update rows ``[i0, i1)`` at iteration ``k``; return the pulse count of rows
    ``[c0, c1)``.

    One sweep with a counting window rather than three sweeps: the three inlined
    copies of the loops ran about 15% slower.
    """
    modulated, same_kernel, symmetric_w, symmetric_m = flags
    if modulated:
        return _sweep_modulated(i0, i1, c0, c1, k, S, U, E, Yp, Yn, fire_time, W,
                                params, symmetric_w)
    return _sweep_general(i0, i1, c0, c1, k, S, F, L, U, E, Yp, Yn, fire_time, M, W,
                          params, same_kernel, symmetric_m)


@njit(cache=True)
def update_flags(params, M, W):
    """Which update the kernel runs: ``(modulated, same_kernel, symmetric W,
    symmetric M)``; modulated models (``F = S``, no linking memory) skip F and L,
    and one synaptic sum serves feeding and linking when ``M == W``."""
    modulated = (params[P.DECAY_F] == 0 and params[P.V_F] == 0
                 and params[P.DECAY_L] == 0)
    same_kernel = True
    for a in range(3):
        for b in range(3):
            if M[a, b] != W[a, b]:
                same_kernel = False
    return modulated, same_kernel, _exact_symmetric(W), _exact_symmetric(M)


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
def _record(spikes, k, Yn, i0, i1, offset):
    """Copy pulses of image rows ``[i0, i1)``, held in padded ``Yn`` rows shifted
    by ``offset``, into ``spikes[k]``."""
    for i in range(i0, i1):
        for j in range(spikes.shape[2]):
            spikes[k, i, j] = Yn[i - offset + 1, j + 1] != 0


@njit(cache=True, inline="always")
def _band_rows(band, n_bands, H, halo):
    """Owned rows ``[a, b)`` and held rows ``[lo, hi)`` (owned plus halo) of a band."""
    a = band * H // n_bands
    b = (band + 1) * H // n_bands
    return a, b, max(0, a - halo), min(H, b + halo)


@njit(cache=True)
def _band_iterate(band, n_bands, halo, k0, n_steps, S, params, M, W, flags, work,
                  band_counts, spikes, record):
    """Iterations ``k0 .. k0 + n_steps - 1`` on the rows one band holds.

    Rows next to the halo's outer edge go wrong for lack of their outer
    neighbours, but the error moves one row per iteration and ``n_steps <= halo``,
    so the owned rows stay exact. Pulses alternate between the two Y buffers;
    after the call the latest are in ``Y[(k0 + n_steps) % 2]``.
    """
    H = S.shape[0]
    a, b, lo, hi = _band_rows(band, n_bands, H, halo)
    n = hi - lo
    F, L, U, E, Y0, Y1, ft = work
    m = n if F.shape[1] else 0  # F and L have no rows in the modulated case
    Fb, Lb, Ub, Eb, ftb = F[band, :m], L[band, :m], U[band, :n], E[band, :n], ft[band, :n]
    Sb = S[lo:hi]
    for t in range(n_steps):
        k = k0 + t
        Yp, Yn = (Y0[band, :n + 2], Y1[band, :n + 2]) if k % 2 == 0 else \
            (Y1[band, :n + 2], Y0[band, :n + 2])
        band_counts[band, k] = _sweep(0, n, a - lo, b - lo, np.int32(k), Sb, Fb, Lb, Ub,
                                      Eb, Yp, Yn, ftb, M, W, params, flags)
        if record:
            _record(spikes, k, Yn, a, b, lo)


@njit(cache=True)
def _band_exchange(band, n_bands, halo, H, parity, work):
    """Refresh a band's halo rows (state and latest pulses) from their owners.

    Owned rows are only read here, so bands can exchange in parallel.
    """
    a, b, lo, hi = _band_rows(band, n_bands, H, halo)
    F, L, U, E, Y0, Y1, ft = work
    Y = Y0 if parity == 0 else Y1
    # image rows lo - 1 and hi live in the pulse buffers' padding rows
    for r in range(max(0, lo - 1), min(H, hi + 1)):
        if a <= r < b:
            continue
        owner = 0
        while (owner + 1) * H // n_bands <= r:
            owner += 1
        o_lo = _band_rows(owner, n_bands, H, halo)[2]
        Y[band, r - lo + 1] = Y[owner, r - o_lo + 1]
        if lo <= r < hi:
            if F.shape[1]:
                F[band, r - lo] = F[owner, r - o_lo]
                L[band, r - lo] = L[owner, r - o_lo]
            U[band, r - lo] = U[owner, r - o_lo]
            E[band, r - lo] = E[owner, r - o_lo]
            ft[band, r - lo] = ft[owner, r - o_lo]


@njit(cache=True)
def _band_work(n_bands, rows, Wd, params, modulated):
    """Per-band state for the rows a band holds, allocated once per run."""
    m = 0 if modulated else rows
    return (np.zeros((n_bands, m, Wd), dtype=np.float32),
            np.zeros((n_bands, m, Wd), dtype=np.float32),
            np.zeros((n_bands, rows, Wd), dtype=np.float32),
            np.full((n_bands, rows, Wd), params[P.E0], dtype=np.float32),
            np.zeros((n_bands, rows + 2, Wd + 2), dtype=np.float32),
            np.zeros((n_bands, rows + 2, Wd + 2), dtype=np.float32),
            np.full((n_bands, rows, Wd), -1, dtype=np.int32))


@njit(cache=True, parallel=True)
def pcnn_image(S, params, M, W, n_iter, record, n_bands):
    """Run ``n_iter`` iterations of the canonical PCNN on one image.

    The image is cut into ``n_bands`` horizontal bands run in parallel. Each band
    also holds a halo of ``_BLOCK_ITERS`` rows on each side that it recomputes, so
    bands exchange halos every ``_BLOCK_ITERS`` iterations instead of
    synchronising every iteration (see :func:`_band_iterate`).

    Parameters
    ----------
    S : (H, W) float32 ndarray, C-contiguous
        Stimulus, normalised to [0, 1].
    params : (N_PARAMS,) float32 ndarray
        Canonical parameters, see :mod:`pcnnseg_kernels.layout`.
    M, W : (3, 3) float32 ndarray
        Feeding and linking synaptic weights.
    n_iter : int
    record : bool
        Whether to fill the pulse stack.
    n_bands : int
        Bands run in parallel, typically the number of threads; 1 runs the
        whole image in one pass with no halo.

    Returns
    -------
    fire_time : (H, W) int32 ndarray
        First iteration (0-based) at which each pixel pulsed, -1 if never.
    counts : (n_iter,) int64 ndarray
        Number of pulses at each iteration (the time signature G).
    spikes : (n_iter, H, W) bool ndarray, or (0, 0, 0) when not ``record``.
    """
    H, Wd = S.shape
    flags = update_flags(params, M, W)
    n_bands = max(1, min(n_bands, H))
    halo = 0 if n_bands == 1 else _BLOCK_ITERS
    block = n_iter if n_bands == 1 else _BLOCK_ITERS
    rows = min(H, (H + n_bands - 1) // n_bands + 2 * halo)
    work = _band_work(n_bands, rows, Wd, params, flags[0])
    band_counts = np.zeros((n_bands, n_iter), dtype=np.int64)
    n_rec = n_iter if record else 0
    spikes = np.zeros((n_rec, H if record else 0, Wd if record else 0),
                      dtype=np.bool_)
    for k0 in range(0, n_iter, block):
        n_steps = min(block, n_iter - k0)
        for band in prange(n_bands):
            _band_iterate(band, n_bands, halo, k0, n_steps, S, params, M, W, flags,
                          work, band_counts, spikes, record)
        if n_bands > 1 and k0 + n_steps < n_iter:
            for band in prange(n_bands):
                _band_exchange(band, n_bands, halo, H, (k0 + n_steps) % 2, work)
    fire_time = np.empty((H, Wd), dtype=np.int32)
    for band in range(n_bands):
        a, b, lo, _ = _band_rows(band, n_bands, H, halo)
        fire_time[a:b] = work[6][band, a - lo:b - lo]
    return fire_time, band_counts.sum(axis=0), spikes


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
    flags = update_flags(params, M, W)
    fire_time = np.full((B, H, Wd), -1, dtype=np.int32)
    counts = np.zeros((B, n_iter), dtype=np.int64)
    n_rec = n_iter if record else 0
    spikes = np.zeros((B, n_rec, H if record else 0, Wd if record else 0),
                      dtype=np.bool_)
    for b in prange(B):
        F, L, U, E, Yp, Yn = _state(H, Wd, params, flags[0])
        for k in range(n_iter):
            counts[b, k] = _sweep(0, H, 0, H, np.int32(k), S[b], F, L, U, E, Yp, Yn,
                                  fire_time[b], M, W, params, flags)
            if record:
                _record(spikes[b], k, Yn, 0, H, 0)
            Yp, Yn = Yn, Yp
    return fire_time, counts, spikes
