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
import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it. They are imported on first use
# (PEP 562), so that ``import pcnnseg`` and the ``pcnnseg`` command start
# without loading Numba, SciPy and the kernels until something needs them.
_PUBLIC = {
    "PCNN": "pcnnseg.models", "SPCNN": "pcnnseg.models", "ICM": "pcnnseg.models",
    "SCM": "pcnnseg.models",
    "PulseResult": "pcnnseg.simulate", "pulse": "pcnnseg.simulate",
    "pulse_volume": "pcnnseg.simulate",
    "signature": "pcnnseg.signatures", "entropy_signature": "pcnnseg.signatures",
    "normalize": "pcnnseg.validation",
    "segment": "pcnnseg.segmentation",
    "segment_tumor": "pcnnseg.tumor",
    "Segmenter": "pcnnseg.segmenter", "fit_segmenter": "pcnnseg.segmenter",
    "default_segmenter": "pcnnseg.segmenter",
    "Detection": "pcnnseg.detection", "detect": "pcnnseg.detection",
    "fit_reference": "pcnnseg.detection",
    "VolumeDetection": "pcnnseg.volume_detection", "detect_volume": "pcnnseg.volume_detection",
}
_MODULES = ("io", "metrics", "phantom", "preprocess")

__all__ = ["PCNN", "SPCNN", "ICM", "SCM", "PulseResult", "pulse", "pulse_volume", "signature",
           "entropy_signature", "normalize", "segment", "segment_tumor", "Segmenter",
           "fit_segmenter", "default_segmenter", "detect", "detect_volume", "VolumeDetection",
           "fit_reference", "Detection", "io", "metrics",
           "phantom", "preprocess", "__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"pcnnseg.{name}")
    else:
        raise AttributeError(f"module 'pcnnseg' has no attribute {name!r}")
    globals()[name] = value   # later lookups do not come here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
