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

Feeding, linking, their multiplicative coupling and the dynamic threshold are
the linking-field neuron of Eckhorn et al. [1]_ in the discrete form of Johnson
& Padgett [2]_ (``DECAY_U = 0``); the decaying internal activity ``DECAY_U`` is
that of the simplified PCNN of Chen et al. [3]_, whose feeding is the stimulus
itself (``DECAY_F = V_F = 0``) and whose linking has no memory
(``DECAY_L = 0``). Kinser's Intersecting Cortical Model [4]_ (no linking,
``BETA = 0``) and the Spiking Cortical Model of Zhan et al. map onto the same
update; :mod:`pcnnseg.models` gives each model's mapping and cites its paper.

References
----------
.. [1] R. Eckhorn, H. J. Reitboeck, M. Arndt, P. Dicke, "Feature linking via
   synchronization among distributed assemblies: simulations of results from
   cat visual cortex", Neural Computation 2(3):293-307, 1990.
   doi:10.1162/neco.1990.2.3.293
.. [2] J. L. Johnson, M. L. Padgett, "PCNN models and applications", IEEE
   Transactions on Neural Networks 10(3):480-498, 1999. doi:10.1109/72.761706
.. [3] Y. Chen, S.-K. Park, Y. Ma, R. Ala, "A new automatic parameter setting
   method of a simplified PCNN for image segmentation", IEEE Transactions on
   Neural Networks 22(6):880-892, 2011. doi:10.1109/TNN.2011.2128880
.. [4] T. Lindblad, J. M. Kinser, *Image Processing Using Pulse-Coupled Neural
   Networks*, 2nd ed., Springer, Berlin, 2005.
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
