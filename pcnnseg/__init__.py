"""pcnnseg: pulse-coupled neural network segmentation of medical images.

The public API: parameter sets (:class:`PCNN`, :class:`SPCNN`, :class:`ICM`,
:class:`SCM`), :func:`pulse` to run a model, :func:`signature` and
:func:`entropy_signature` for time signatures, :func:`normalize`,
:func:`pulse_volume` to run one on a volume with linking across slices,
:func:`segment` for segmentation maps, :func:`segment_tumor` for tumor masks and
BraTS label maps (:mod:`pcnnseg.tumor`; :func:`fit_segmenter` fits the optional
:class:`Segmenter` readout), :func:`detect` and :func:`fit_reference` for tumor boxes (the module
:mod:`pcnnseg.detect` holds the details; the function of the same name shadows
it as an attribute of the package, ``from pcnnseg.detect import ...`` still
works), and the modules :mod:`~pcnnseg.io`, :mod:`~pcnnseg.preprocess`,
:mod:`~pcnnseg.metrics` and the synthetic :mod:`~pcnnseg.phantom`.
"""
from pcnnseg import io, metrics, phantom, preprocess
from pcnnseg.detect import Detection, detect, fit_reference
from pcnnseg.models import ICM, PCNN, SCM, SPCNN
from pcnnseg.segment import segment
from pcnnseg.segmenter import Segmenter, default_segmenter, fit_segmenter
from pcnnseg.tumor import segment_tumor
from pcnnseg.signature import entropy_signature, signature
from pcnnseg.simulate import PulseResult, pulse, pulse_volume
from pcnnseg.validation import normalize

__version__ = "0.1.0"

__all__ = ["PCNN", "SPCNN", "ICM", "SCM", "PulseResult", "pulse", "pulse_volume", "signature",
           "entropy_signature", "normalize", "segment", "segment_tumor", "Segmenter",
           "fit_segmenter", "default_segmenter", "detect",
           "fit_reference", "Detection", "io", "metrics",
           "phantom", "preprocess", "__version__"]
