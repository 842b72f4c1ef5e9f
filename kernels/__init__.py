"""Numba kernels of pcnnseg: arrays in, arrays out, float32, no defaults.

Step kernels (:mod:`kernels.steps`) compute one term of one iteration; fused
loops (:mod:`kernels.fused`, :mod:`kernels.volume` with 3-D linking) run whole
simulations; :mod:`kernels.trees` evaluates the fitted readout of
:mod:`pcnnseg.segmenter`. Callers validate inputs.
"""
from kernels import layout
from kernels.fused import pcnn_batch, pcnn_image
from kernels.trees import ensemble_sum
from kernels.volume import pcnn_volume
from kernels.steps import feeding, linking, pulse, synaptic_sum, threshold

__all__ = ["layout", "pcnn_image", "pcnn_batch", "pcnn_volume", "synaptic_sum", "feeding",
           "linking", "pulse", "threshold", "ensemble_sum"]
