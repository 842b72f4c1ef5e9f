"""pcnnseg: pulse-coupled neural network segmentation of medical images.

The public API: parameter sets (:class:`PCNN`, :class:`SPCNN`, :class:`ICM`,
:class:`SCM`), :func:`pulse` to run a model, :func:`signature` and
:func:`entropy_signature` for time signatures, :func:`normalize`,
:func:`pulse_volume` to run one on a volume with linking across slices,
:func:`segment` for segmentation maps, :func:`segment_tumor` for tumor masks and
BraTS label maps (:mod:`pcnnseg.tumor`; :func:`fit_segmenter` fits the optional
:class:`Segmenter` readout), :func:`detect` and :func:`fit_reference` for tumor boxes,
and the modules :mod:`~pcnnseg.io`, :mod:`~pcnnseg.preprocess`,
:mod:`~pcnnseg.metrics` and the synthetic :mod:`~pcnnseg.phantom`.

``pcnnseg.detect`` is the module :mod:`pcnnseg.detect`, and calling it calls its
function :func:`pcnnseg.detect.detect`: ``pcnnseg.detect(image)`` finds a tumor
box, while ``pcnnseg.detect.Reference``, ``import pcnnseg.detect as m`` and
``from pcnnseg.detect import Reference`` reach the module. (A package attribute
holding the function would hide the module from ``import pcnnseg.detect as m``,
which binds the package's attribute.)
"""
import importlib
import inspect
import sys
import types

from pcnnseg import io, metrics, phantom, preprocess
from pcnnseg.detect import Detection, fit_reference
from pcnnseg.models import ICM, PCNN, SCM, SPCNN
from pcnnseg.segment import segment
from pcnnseg.segmenter import Segmenter, default_segmenter, fit_segmenter
from pcnnseg.tumor import segment_tumor
from pcnnseg.signature import entropy_signature, signature
from pcnnseg.simulate import PulseResult, pulse, pulse_volume
from pcnnseg.validation import normalize

__version__ = "0.1.0"


class _CallableModule(types.ModuleType):
    """A module that, called, calls its function of the same short name.

    Given to :mod:`pcnnseg.detect` so that one object is both the module and the
    function ``pcnnseg.detect`` (see the package docstring). Its signature is the
    function's, and it pickles by name (as the function did), so
    ``pool.map(pcnnseg.detect, slices)`` still works.
    """

    def _function(self):
        return getattr(self, self.__name__.rpartition(".")[2])

    def __call__(self, *args, **kwargs):
        return self._function()(*args, **kwargs)

    @property
    def __signature__(self):
        return inspect.signature(self._function())

    def __reduce__(self):
        return importlib.import_module, (self.__name__,)


sys.modules["pcnnseg.detect"].__class__ = _CallableModule
detect = sys.modules["pcnnseg.detect"]

__all__ = ["PCNN", "SPCNN", "ICM", "SCM", "PulseResult", "pulse", "pulse_volume", "signature",
           "entropy_signature", "normalize", "segment", "segment_tumor", "Segmenter",
           "fit_segmenter", "default_segmenter", "detect",
           "fit_reference", "Detection", "io", "metrics",
           "phantom", "preprocess", "__version__"]
