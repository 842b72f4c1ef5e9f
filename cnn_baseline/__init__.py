"""Compressed U-Net baseline (PyTorch), compared against the PCNN pipeline.

The CNN of Niepceron, Nait-Sidi-Moh & Grassia, "Moving Medical Image Analysis to
GPU Embedded Systems: Application to Brain Tumor Segmentation", Applied Artificial
Intelligence 34(12):866-879, 2020: a U-Net whose convolutions are separable blocks
(:mod:`cnn_baseline.blocks`, :mod:`cnn_baseline.networks`), trained on 128 x 128
BraTS slices (:mod:`cnn_baseline.data`, :mod:`cnn_baseline.train`), with bundled
fp32 and int8 weights (:mod:`cnn_baseline.bundle`, :mod:`cnn_baseline.quantize`,
:mod:`cnn_baseline.inference`).

Needs PyTorch. The CPU build is enough and much smaller: from PyTorch's CPU wheel
index (``pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu``),
then ``pip install "pcnnseg[baseline]"``; a plain ``pip install torch`` from the
default index installs the CUDA build on Linux, a few GB of CUDA packages.

Examples
--------
>>> import numpy as np, cnn_baseline
>>> net = cnn_baseline.load_pretrained()
>>> cnn_baseline.count_parameters(net)  # three outputs (whole tumor, core, enhancing)
2132067
>>> cnn_baseline.predict(np.zeros((4, 40, 50))).shape
(40, 50)
"""
#: How to install the CPU build of PyTorch, which the baseline needs (the README
#: gives the same command).
TORCH_CPU_INSTALL = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"

try:
    import torch  # noqa: F401
except ImportError as err:
    raise ImportError(
        "cnn_baseline needs PyTorch, which is not installed. Install its CPU build "
        f"from PyTorch's CPU wheel index: {TORCH_CPU_INSTALL} (a plain 'pip install "
        "torch' from the default index pulls the CUDA build, a few GB), then "
        "pip install pcnnseg[baseline]") from err

from cnn_baseline.blocks import (DoubleSeparable, Down, IndependentComponent,  # noqa: E402
                                 SeparableBlock, Up)
from cnn_baseline.inference import load_pretrained, predict  # noqa: E402
from cnn_baseline.losses import bce_dice_loss, soft_dice_loss  # noqa: E402
from cnn_baseline.networks import (CompressedUNet, UNet, count_macs,  # noqa: E402
                                   count_parameters)


def __getattr__(name):
    # Imported on first use, so that ``python -m cnn_baseline.quantize`` does not
    # find its own module already imported by the package.
    if name == "quantize_model":
        from cnn_baseline.quantize import quantize_model

        return quantize_model
    raise AttributeError(f"module 'cnn_baseline' has no attribute {name!r}")


__all__ = ["CompressedUNet", "UNet", "count_parameters", "count_macs", "SeparableBlock",
           "IndependentComponent", "DoubleSeparable", "Down", "Up", "bce_dice_loss",
           "soft_dice_loss", "quantize_model", "load_pretrained", "predict"]
