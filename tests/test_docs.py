"""The Examples sections of the public modules run as written."""
import doctest
import importlib

import pytest

MODULES = ["pcnnseg.validation", "pcnnseg.simulate", "pcnnseg.signatures", "pcnnseg.segmentation",
           "pcnnseg.metrics", "pcnnseg.preprocess", "pcnnseg.io", "pcnnseg.models",
           "pcnnseg.detection", "pcnnseg.proposals", "pcnnseg.boxes", "pcnnseg.energy",
           "pcnnseg.tumor", "pcnnseg.segmenter", "pcnnseg.outputs",
           "pcnnseg.nifti_check"]
# pcnnseg.phantom's examples run in tests/test_phantom.py


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
