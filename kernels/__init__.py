"""Numba kernels of pcnnseg: arrays in, arrays out, float32, no defaults.

Step kernels (:mod:`pcnnseg_kernels.steps`) compute one term of one iteration; fused
loops (:mod:`pcnnseg_kernels.fused`, :mod:`pcnnseg_kernels.volume` with 3-D linking) run whole
simulations; :mod:`pcnnseg_kernels.trees` evaluates the fitted readout of
:mod:`pcnnseg.segmenter`; :mod:`pcnnseg_kernels.proposals` holds the region-proposal
loops. Callers validate inputs.

:mod:`pcnnseg_kernels.runtime` makes idle OpenMP threads sleep (so that a busy
machine does not slow the kernels down many times) and settles the Numba cache
folder before any kernel is defined, and the parallel kernels exported here are
wrapped so that a process forked after using them can still call them (see
:func:`pcnnseg_kernels.runtime.fork_safe`).
"""
from pcnnseg_kernels import runtime

runtime.configure_threads()   # before any parallel kernel starts OpenMP
runtime.configure_cache()
with runtime.kernel_definitions():
    from pcnnseg_kernels import fused, layout, proposals, steps, trees, volume

pcnn_image = runtime.fork_safe(fused.pcnn_image)
pcnn_batch = runtime.fork_safe(fused.pcnn_batch)
pcnn_volume = runtime.fork_safe(volume.pcnn_volume)
synaptic_sum = runtime.fork_safe(steps.synaptic_sum)
ensemble_sum = runtime.fork_safe(trees.ensemble_sum)
feeding, linking, pulse, threshold = steps.feeding, steps.linking, steps.pulse, steps.threshold

__all__ = ["layout", "runtime", "pcnn_image", "pcnn_batch", "pcnn_volume", "synaptic_sum",
           "feeding", "linking", "pulse", "threshold", "ensemble_sum"]
