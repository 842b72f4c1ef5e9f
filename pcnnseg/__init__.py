"""pcnnseg: pulse-coupled neural network segmentation of medical images.

The public API: parameter sets (:class:`PCNN`, :class:`SPCNN`, :class:`ICM`,
:class:`SCM`), :func:`pulse` to run a model, :func:`signature` and
:func:`entropy_signature` for time signatures, :func:`normalize`,
:func:`pulse_volume` to run one on a volume with linking across slices,
:func:`segment` for segmentation maps, :func:`segment_tumor` for tumor masks and
BraTS label maps (:mod:`pcnnseg.tumor`; :func:`fit_segmenter` fits the optional
:class:`Segmenter` readout), :func:`detect` and :func:`fit_reference` for tumor boxes on a slice,
:func:`detect_volume` for the box of each slice of a volume (or "no tumor"),
and the modules :mod:`~pcnnseg.io`, :mod:`~pcnnseg.preprocess`,
:mod:`~pcnnseg.metrics` and the synthetic :mod:`~pcnnseg.phantom`.

The tumor-box function :func:`detect` lives in the module
:mod:`pcnnseg.detection` (with :class:`~pcnnseg.detection.Reference` and the
rest of the detector); a module named like the function would be hidden by it.

The Numba kernels are the package ``pcnnseg_kernels`` (the folder ``kernels/``
of the source tree).
"""
from pcnnseg import io, metrics, phantom, preprocess
from pcnnseg.detection import Detection, detect, fit_reference
from pcnnseg.models import ICM, PCNN, SCM, SPCNN
from pcnnseg.segmentation import segment
from pcnnseg.segmenter import Segmenter, default_segmenter, fit_segmenter
from pcnnseg.tumor import segment_tumor
from pcnnseg.signatures import entropy_signature, signature
from pcnnseg.simulate import PulseResult, pulse, pulse_volume
from pcnnseg.validation import normalize
from pcnnseg.volume_detection import VolumeDetection, detect_volume

__version__ = "0.1.0"


__all__ = ["PCNN", "SPCNN", "ICM", "SCM", "PulseResult", "pulse", "pulse_volume", "signature",
           "entropy_signature", "normalize", "segment", "segment_tumor", "Segmenter",
           "fit_segmenter", "default_segmenter", "detect", "detect_volume", "VolumeDetection",
           "fit_reference", "Detection", "io", "metrics",
           "phantom", "preprocess", "__version__"]
