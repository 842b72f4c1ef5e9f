"""Fused PCNN loop over a volume: 3-D linking across slices.

The canonical update of :mod:`pcnnseg_kernels.layout`, with the synaptic sums taken
over the 26 neighbours of a voxel (a 3x3x3 weight kernel) instead of the 8 of a
pixel, so a pulsing region pulls its neighbours forward in the slices above and
below as well as in its own. Same arithmetic order as :mod:`pcnnseg_kernels.steps`:
the sum adds ``w * Y`` in raster order of the offsets (slice, row, column, each
-1, 0, 1), neighbours outside the volume count as not pulsing; then
``F = (decay F + v acc_M) + S``, ``L = decay L + v acc_W``,
``U = decay U + F (1 + beta L)``, ``Y = U > E[k-1]``, ``E = decay E + v Y``.

Pulses are sparse (in the intensity-order models of :mod:`pcnnseg.segmentation`
each voxel pulses once), so each row takes the sums only over the columns
within one of the pulses of its nine neighbouring rows at the previous
iteration; elsewhere every neighbour is silent and the sum is exactly 0. In
modulated models (``F = S``, no linking memory) whose threshold stays
non-negative, a voxel of stimulus 0 can never pulse, nor can one too dim to
reach the threshold's last value even with every neighbour pulsing
(:func:`silent_below`); both are skipped. In the intensity-order models that is
most of a brain: only voxels near or above the decision level are simulated.
"""
import numpy as np
from numba import njit, prange

from pcnnseg_kernels import layout as P


@njit(cache=True, inline="always")
def _sum3(Yp, z, y, x, w):
    # Yp is padded by one voxel on every side: voxel (z, y, x) sits at
    # Yp[z + 1, y + 1, x + 1]. Raster order of the offsets.
    acc = np.float32(0.0)
    for a in range(3):
        for b in range(3):
            for c in range(3):
                acc = acc + w[a, b, c] * Yp[z + a, y + b, x + c]
    return acc


@njit(cache=True, inline="always")
def _pulse_span(lo, hi, z, y):
    """Columns ``[x0, x1)`` of row (z, y) that have a pulsing neighbour, from the
    pulse spans ``[lo, hi]`` of the nine rows around it (padded, empty when
    ``lo > hi``)."""
    x0 = np.int64(1 << 40)
    x1 = np.int64(-1)
    for a in range(3):
        for b in range(3):
            if lo[z + a, y + b] <= hi[z + a, y + b]:
                x0 = min(x0, np.int64(lo[z + a, y + b]) - 1)
                x1 = max(x1, np.int64(hi[z + a, y + b]) + 2)
    return x0, x1


@njit(cache=True)
def silent_below(params, W, n_iter):
    """Stimulus below which a voxel cannot pulse in ``n_iter`` iterations (0: none known).

    For a modulated model (``F = S``, ``L = v_l acc_W``: no feeding or linking
    state) with ``beta, v_l, decay_u >= 0``, ``0 <= decay_e <= 1`` and
    ``e0 > 0``: until a voxel pulses, ``U[k] <= S (1 + beta v_l W+) (1 + decay_u
    + ... + decay_u^k)``, with ``W+`` the sum of the positive linking weights (all
    neighbours pulsing), while its threshold ``E[k] = e0 decay_e^k`` falls to
    ``E[n_iter - 2]`` at the last comparison (the same float32 products as the
    kernel). A stimulus for which the first bound stays below that, with a
    margin far above float32 rounding, never pulses, whatever its neighbours do.

    Parameters
    ----------
    params : (N_PARAMS,) float32 ndarray
    W : (3, 3, 3) float32 ndarray
    n_iter : int

    Returns
    -------
    float
    """
    decay_f, v_f = params[P.DECAY_F], params[P.V_F]
    decay_l, v_l = params[P.DECAY_L], params[P.V_L]
    decay_u, beta = params[P.DECAY_U], params[P.BETA]
    decay_e, e0 = params[P.DECAY_E], params[P.E0]
    if not (decay_f == 0 and v_f == 0 and decay_l == 0 and beta >= 0 and v_l >= 0
            and decay_u >= 0 and 0 <= decay_e <= 1 and e0 > 0 and n_iter >= 1):
        return 0.0
    e = e0
    for _ in range(n_iter - 1):
        e = decay_e * e          # float32, as E = decay_e E + v_e 0 in the kernel
    w_pos = 0.0
    for a in range(3):
        for b in range(3):
            for c in range(3):
                if W[a, b, c] > 0:
                    w_pos += float(W[a, b, c])
    series = 0.0
    term = 1.0
    for _ in range(n_iter):
        series += term
        term *= float(decay_u)
    margin = 1.0 + 1e-6 * (n_iter + 100)
    return float(e) / ((1.0 + float(beta) * float(v_l) * w_pos) * series * margin)


@njit(cache=True, parallel=True)
def pcnn_volume(S, params, M, W, n_iter):
    """Run ``n_iter`` iterations of the canonical PCNN on a volume.

    Parameters
    ----------
    S : (Z, Y, X) float32 ndarray, C-contiguous
        Stimulus, normalised to [0, 1].
    params : (N_PARAMS,) float32 ndarray
        Canonical parameters, see :mod:`pcnnseg_kernels.layout`.
    M, W : (3, 3, 3) float32 ndarray
        Feeding and linking synaptic weights; ``M[1 + dz, 1 + dy, 1 + dx]``
        weighs the neighbour at offset ``(dz, dy, dx)``.
    n_iter : int

    Returns
    -------
    fire_time : (Z, Y, X) int32 ndarray
        First iteration (0-based) at which each voxel pulsed, -1 if never.
    counts : (n_iter,) int64 ndarray
        Number of pulses at each iteration.
    """
    Z, Yd, X = S.shape
    decay_f, v_f = params[P.DECAY_F], params[P.V_F]
    decay_l, v_l = params[P.DECAY_L], params[P.V_L]
    decay_u, beta = params[P.DECAY_U], params[P.BETA]
    decay_e, v_e = params[P.DECAY_E], params[P.V_E]
    # F = S and L = v_l acc_W exactly when feeding and linking keep no state, so
    # F and L need no arrays (SPCNN, SCM and the intensity-order models).
    modulated = decay_f == 0 and v_f == 0 and decay_l == 0
    # In a modulated model with a threshold that stays >= 0, a voxel of stimulus 0
    # keeps U = 0 and never pulses: it can be skipped (its pulses stay 0).
    skip_dark = (modulated and params[P.E0] >= 0 and decay_e >= 0 and v_e >= 0
                 and decay_u >= 0)
    dim = silent_below(params, W, n_iter) if skip_dark else 0.0
    same = True
    for a in range(3):
        for b in range(3):
            for c in range(3):
                if M[a, b, c] != W[a, b, c]:
                    same = False
    one = np.float32(1.0)
    n_state = 1 if modulated else Z
    F = np.zeros((n_state, Yd, X), dtype=np.float32)
    L = np.zeros((n_state, Yd, X), dtype=np.float32)
    U = np.zeros((Z, Yd, X), dtype=np.float32)
    E = np.full((Z, Yd, X), params[P.E0], dtype=np.float32)
    Yp = np.zeros((Z + 2, Yd + 2, X + 2), dtype=np.float32)
    Yn = np.zeros((Z + 2, Yd + 2, X + 2), dtype=np.float32)
    # first and last pulsing column of each row at the previous iteration (padded)
    lo = np.full((Z + 2, Yd + 2), X, dtype=np.int32)
    hi = np.full((Z + 2, Yd + 2), -1, dtype=np.int32)
    new_lo = np.full((Z, Yd), X, dtype=np.int32)
    new_hi = np.full((Z, Yd), -1, dtype=np.int32)
    row_counts = np.zeros((Z, Yd), dtype=np.int64)
    fire_time = np.full((Z, Yd, X), -1, dtype=np.int32)
    counts = np.zeros(n_iter, dtype=np.int64)
    # columns [active_lo, active_hi) of each row between its first and last voxel
    # that is not skipped: whole rows of dim voxels then cost nothing per iteration
    active_lo = np.zeros((Z, Yd), dtype=np.int64)
    active_hi = np.full((Z, Yd), X, dtype=np.int64)
    if skip_dark:
        for z in prange(Z):
            for y in range(Yd):
                first = X
                last = -1
                for x in range(X):
                    if not (S[z, y, x] == 0 or S[z, y, x] < dim):
                        last = x
                        if first == X:
                            first = x
                active_lo[z, y] = first
                active_hi[z, y] = last + 1
    for k in range(n_iter):
        for z in prange(Z):
            zs = min(np.int64(z), np.int64(n_state - 1))
            for y in range(Yd):
                x0, x1 = _pulse_span(lo, hi, z, y)
                n = 0
                first = X
                last = -1
                for x in range(active_lo[z, y], active_hi[z, y]):
                    if skip_dark and (S[z, y, x] == 0 or S[z, y, x] < dim):
                        continue
                    acc_m = np.float32(0.0)
                    acc_w = np.float32(0.0)
                    if x0 <= x < x1:
                        acc_w = _sum3(Yp, z, y, x, W)
                        if not modulated:
                            acc_m = acc_w if same else _sum3(Yp, z, y, x, M)
                    if modulated:
                        f = S[z, y, x]
                        l = v_l * acc_w
                    else:
                        f = (decay_f * F[zs, y, x] + v_f * acc_m) + S[z, y, x]
                        l = decay_l * L[zs, y, x] + v_l * acc_w
                        F[zs, y, x] = f
                        L[zs, y, x] = l
                    u = decay_u * U[z, y, x] + f * (one + beta * l)
                    U[z, y, x] = u
                    e = E[z, y, x]
                    fired = u > e
                    pulse = one if fired else np.float32(0.0)
                    E[z, y, x] = decay_e * e + v_e * pulse
                    Yn[z + 1, y + 1, x + 1] = pulse
                    if fired:
                        n += 1
                        last = x
                        if first == X:
                            first = x
                        if fire_time[z, y, x] < 0:
                            fire_time[z, y, x] = k
                row_counts[z, y] = n
                new_lo[z, y] = first
                new_hi[z, y] = last
        counts[k] = row_counts.sum()
        lo[1:-1, 1:-1] = new_lo
        hi[1:-1, 1:-1] = new_hi
        Yp, Yn = Yn, Yp
    return fire_time, counts
