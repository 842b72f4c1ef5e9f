"""Sum of the outputs of a regression-tree ensemble, per sample.

The trees of a gradient-boosted ensemble, flattened into node arrays: tree
``t`` starts at node ``roots[t]``; an internal node sends a sample left when
``X[i, feature] <= threshold`` (right otherwise, NaN included) and a leaf holds
``value``. No I/O, no defaults: :mod:`pcnnseg.segmenter` exports and checks the
arrays.
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def ensemble_sum(X, feature, threshold, left, right, value, is_leaf, roots):
    """Sum over the trees of the leaf value each sample reaches.

    Parameters
    ----------
    X : (N, F) float32 ndarray
    feature : (K,) int64 ndarray
        Feature index of each node (ignored at leaves).
    threshold : (K,) float64 ndarray
    left, right : (K,) int64 ndarray
        Child node indices (absolute, into the same arrays).
    value : (K,) float64 ndarray
        Leaf outputs.
    is_leaf : (K,) bool ndarray
    roots : (T,) int64 ndarray

    Returns
    -------
    (N,) float64 ndarray
    """
    n = X.shape[0]
    out = np.zeros(n, dtype=np.float64)
    for i in prange(n):
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while not is_leaf[node]:
                if X[i, feature[node]] <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            total += value[node]
        out[i] = total
    return out
