"""pcnnseg: pulse-coupled neural network segmentation of medical images.

The public API: parameter sets (:class:`PCNN`, :class:`SPCNN`, :class:`ICM`,
:class:`SCM`), :func:`pulse` to run a model, :func:`signature` and
:func:`entropy_signature` for time signatures, :func:`normalize`, and the
synthetic :mod:`pcnnseg.phantom`.
"""
from pcnnseg import phantom
from pcnnseg.models import ICM, PCNN, SCM, SPCNN
from pcnnseg.signature import entropy_signature, signature
from pcnnseg.simulate import PulseResult, pulse
from pcnnseg.validation import normalize

__version__ = "0.1.0"

__all__ = ["PCNN", "SPCNN", "ICM", "SCM", "PulseResult", "pulse", "signature",
           "entropy_signature", "normalize", "phantom", "__version__"]
