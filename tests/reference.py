"""Plain NumPy reference of the published PCNN equations, for the kernel tests.

Written from the equations of each paper, in float32, with the arithmetic order
the kernels document (float32 addition is not associative, so the order is part
of what is compared). Slow and obvious on purpose.
"""
import numpy as np

from pcnnseg import ICM, PCNN, SCM, SPCNN

f32 = np.float32


def _synaptic_sum2(Y, weights):
    """Weighted count of pulsing 3x3 neighbours, zero outside the image."""
    H, W = Y.shape
    Yp = np.zeros((H + 2, W + 2), dtype=f32)
    Yp[1:-1, 1:-1] = Y
    w = np.asarray(weights, dtype=f32)
    acc = np.zeros((H, W), dtype=f32)
    for a in range(3):
        for b in range(3):
            acc = acc + w[a, b] * Yp[a:a + H, b:b + W]
    return acc


def synaptic_sum3(Y, weights):
    """Weighted count of pulsing 3x3x3 neighbours, zero outside the volume."""
    Z, H, W = Y.shape
    Yp = np.zeros((Z + 2, H + 2, W + 2), dtype=f32)
    Yp[1:-1, 1:-1, 1:-1] = Y
    w = np.asarray(weights, dtype=f32)
    acc = np.zeros((Z, H, W), dtype=f32)
    for a in range(3):
        for b in range(3):
            for c in range(3):
                acc = acc + w[a, b, c] * Yp[a:a + Z, b:b + H, c:c + W]
    return acc


def run(S, model, n_iter, volume_weights=None):
    """Simulate ``model`` on the float32 stimulus ``S``.

    With ``volume_weights = (M, W)``, two (3, 3, 3) kernels, ``S`` is a volume
    and the synaptic sums run over 26 neighbours: ``M`` replaces the feeding
    weights, ``W`` the linking weights (the only weights of SPCNN, ICM and SCM).

    Returns
    -------
    fire_time : (H, W) int32, counts : (n_iter,) int64, spikes : (n_iter, H, W) bool
    (with one more leading axis of ``S`` for a volume)
    """
    if volume_weights is None:
        total = _synaptic_sum2
        feeding_w = getattr(model, "feeding_weights", None)
        linking_w = getattr(model, "linking_weights", getattr(model, "weights", None))
    else:
        total = synaptic_sum3
        feeding_w, linking_w = volume_weights
    S = np.asarray(S, dtype=f32)
    Y = np.zeros(S.shape, dtype=f32)
    U = np.zeros(S.shape, dtype=f32)
    spikes = np.zeros((n_iter,) + S.shape, dtype=bool)
    if isinstance(model, PCNN):
        F = np.zeros(S.shape, dtype=f32)
        L = np.zeros(S.shape, dtype=f32)
        E = np.full(S.shape, model.e0, dtype=f32)
        df, dl, de = (f32(np.exp(-a)) for a in (model.alpha_f, model.alpha_l, model.alpha_e))
        for k in range(n_iter):
            F = (df * F + f32(model.v_f) * total(Y, feeding_w)) + S
            L = dl * L + f32(model.v_l) * total(Y, linking_w)
            U = F * (f32(1) + f32(model.beta) * L)
            Y = (U > E).astype(f32)
            E = de * E + f32(model.v_e) * Y
            spikes[k] = Y > 0
    elif isinstance(model, SPCNN):
        E = np.full(S.shape, model.e0, dtype=f32)
        df, de = f32(np.exp(-model.alpha_f)), f32(np.exp(-model.alpha_e))
        for k in range(n_iter):
            L = f32(model.v_l) * total(Y, linking_w)
            U = df * U + S * (f32(1) + f32(model.beta) * L)
            Y = (U > E).astype(f32)
            E = de * E + f32(model.v_e) * Y
            spikes[k] = Y > 0
    elif isinstance(model, ICM):
        F = np.zeros(S.shape, dtype=f32)
        T = np.full(S.shape, model.e0, dtype=f32)
        for k in range(n_iter):
            F = (f32(model.f) * F + total(Y, linking_w)) + S
            Y = (F > T).astype(f32)
            T = f32(model.g) * T + f32(model.h) * Y
            spikes[k] = Y > 0
    elif isinstance(model, SCM):
        E = np.zeros(S.shape, dtype=f32)
        for k in range(n_iter):
            U = f32(model.f) * U + S * (f32(1) + total(Y, linking_w))
            Y = (U > E).astype(f32)
            E = f32(model.g) * E + f32(model.h) * Y
            spikes[k] = Y > 0
    else:
        raise TypeError(type(model))
    counts = spikes.reshape(n_iter, -1).sum(axis=1).astype(np.int64)
    fired = spikes.any(axis=0)
    fire_time = np.where(fired, spikes.argmax(axis=0), -1).astype(np.int32)
    return fire_time, counts, spikes
