"""Single-step PCNN kernels: synaptic sum, feeding, linking, pulse, threshold.

Each kernel computes one term of the canonical update documented in
:mod:`pcnnseg_kernels.layout` for one iteration, out of place. Composing them in the
order ``feeding, linking, pulse, threshold`` is one PCNN iteration; the fused
loops in :mod:`pcnnseg_kernels.fused` give bit-identical results.

Arithmetic order is part of the contract (float32 is not associative):

- synaptic sum: ``acc = 0``; for each neighbour in raster order (row offset
  -1, 0, 1; then column offset -1, 0, 1) that pulsed, ``acc = acc + w``.
  Neighbours outside the image count as not pulsing. ``weights[1 + dy, 1 + dx]``
  weighs the neighbour at offset ``(dy, dx)`` (a correlation, equal to a
  convolution for the symmetric kernels of every published model);
- feeding: ``(decay * F + v * acc) + S``;
- linking: ``decay * L + v * acc``;
- internal activity: ``decay * U + F * (1 + beta * L)``;
- threshold: ``decay * E + v * Y``.
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def synaptic_sum(Y, weights):
    """Weighted count of pulsing 3x3 neighbours, zero outside the image.

    Parameters
    ----------
    Y : (H, W) bool ndarray
        Pulses of the previous iteration.
    weights : (3, 3) float32 ndarray

    Returns
    -------
    (H, W) float32 ndarray
    """
    H, W = Y.shape
    out = np.empty((H, W), dtype=np.float32)
    for i in prange(H):
        for j in range(W):
            acc = np.float32(0.0)
            for a in range(3):
                ii = i + a - 1
                if ii < 0 or ii >= H:
                    continue
                for b in range(3):
                    jj = j + b - 1
                    if jj < 0 or jj >= W:
                        continue
                    if Y[ii, jj]:
                        acc = acc + weights[a, b]
            out[i, j] = acc
    return out


@njit(cache=True)
def feeding(F, Y, S, M, decay, v):
    """Feeding input ``F[k] = decay F[k-1] + v (M * Y[k-1]) + S``.

    Parameters
    ----------
    F, S : (H, W) float32 ndarray
    Y : (H, W) bool ndarray
    M : (3, 3) float32 ndarray
    decay, v : float32

    Returns
    -------
    (H, W) float32 ndarray
    """
    return (decay * F + v * synaptic_sum(Y, M)) + S


@njit(cache=True)
def linking(L, Y, W, decay, v):
    """Linking input ``L[k] = decay L[k-1] + v (W * Y[k-1])``.

    Parameters
    ----------
    L : (H, W) float32 ndarray
    Y : (H, W) bool ndarray
    W : (3, 3) float32 ndarray
    decay, v : float32

    Returns
    -------
    (H, W) float32 ndarray
    """
    return decay * L + v * synaptic_sum(Y, W)


@njit(cache=True)
def pulse(U, F, L, E, decay, beta):
    """Internal activity and pulse.

    ``U[k] = decay U[k-1] + F[k] (1 + beta L[k])`` and ``Y[k] = U[k] > E[k-1]``.

    Parameters
    ----------
    U, F, L, E : (H, W) float32 ndarray
        ``E`` is the threshold of the previous iteration.
    decay, beta : float32

    Returns
    -------
    U : (H, W) float32 ndarray
    Y : (H, W) bool ndarray
    """
    U_new = decay * U + F * (np.float32(1.0) + beta * L)
    return U_new, U_new > E


@njit(cache=True)
def threshold(E, Y, decay, v):
    """Dynamic threshold ``E[k] = decay E[k-1] + v Y[k]``.

    Parameters
    ----------
    E : (H, W) float32 ndarray
    Y : (H, W) bool ndarray
    decay, v : float32

    Returns
    -------
    (H, W) float32 ndarray
    """
    return decay * E + v * Y.astype(np.float32)
