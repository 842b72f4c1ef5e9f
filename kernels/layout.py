"""Index layout of the canonical parameter vector shared by all kernels.

Every supported model (PCNN, SPCNN, ICM, SCM) maps onto one canonical update,
written here with 0-based iteration index ``k`` (the papers' ``n = k + 1``)::

    F[k] = DECAY_F * F[k-1] + V_F * (M * Y[k-1]) + S
    L[k] = DECAY_L * L[k-1] + V_L * (W * Y[k-1])
    U[k] = DECAY_U * U[k-1] + F[k] * (1 + BETA * L[k])
    Y[k] = U[k] > E[k-1]
    E[k] = DECAY_E * E[k-1] + V_E * Y[k]

with ``F = L = U = Y = 0`` and ``E = E0`` before the first iteration. The
parameter vector is a float32 array of length ``N_PARAMS`` indexed by the
constants below.
"""

DECAY_F = 0
V_F = 1
DECAY_L = 2
V_L = 3
DECAY_U = 4
BETA = 5
DECAY_E = 6
V_E = 7
E0 = 8
N_PARAMS = 9
