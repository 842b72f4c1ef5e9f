"""pcnnseg: pulse-coupled neural network segmentation of medical images.

The public API: parameter sets (:class:`PCNN`, :class:`SPCNN`, :class:`ICM`,
:class:`SCM`), :func:`pulse` to run a model, :func:`signature` and
:func:`entropy_signature` for time signatures, :func:`normalize`,
:func:`segment` and :func:`segment_tumor` for segmentation maps and tumor
masks, and the modules :mod:`~pcnnseg.io`, :mod:`~pcnnseg.preprocess`,
:mod:`~pcnnseg.metrics` and the synthetic :mod:`~pcnnseg.phantom`.
"""
from pcnnseg import io, metrics, phantom, preprocess
from pcnnseg.models import ICM, PCNN, SCM, SPCNN
from pcnnseg.segment import segment, segment_tumor
from pcnnseg.signature import entropy_signature, signature
from pcnnseg.simulate import PulseResult, pulse
from pcnnseg.validation import normalize

__version__ = "0.1.0"

__all__ = ["PCNN", "SPCNN", "ICM", "SCM", "PulseResult", "pulse", "signature",
           "entropy_signature", "normalize", "segment", "segment_tumor", "io", "metrics",
           "phantom", "preprocess", "__version__"]
