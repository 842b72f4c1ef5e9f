"""The bundled weights files: where they are, how one is read, the fp32 network in one.

A *bundle* is the dictionary that ``torch.save`` wrote: ``state_dict``, ``config``
(the keyword arguments of :class:`~cnn_baseline.networks.CompressedUNet`), and
metadata (regions, split, epochs, for int8 the calibration and backend).

This module sits below both users of the files: :mod:`cnn_baseline.inference`
loads them for prediction, :mod:`cnn_baseline.quantize` writes the int8 file from
the fp32 one. Neither of those imports the other at module level, and
``quantize`` never imports ``inference``.
"""
import pathlib
import warnings

import torch

from cnn_baseline.networks import CompressedUNet

__all__ = ["WEIGHTS_DIR", "FP32_WEIGHTS", "INT8_WEIGHTS", "read_bundle", "bundle_info",
           "fp32_model"]

#: Folder of the bundled weights.
WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"
#: fp32 weights (outputs: whole tumor, tumor core, enhancing tumor), written by
#: ``python -m cnn_baseline.train --export``.
FP32_WEIGHTS = WEIGHTS_DIR / "compressed_unet.pt"
#: int8 weights, written by ``python -m cnn_baseline.quantize``.
INT8_WEIGHTS = WEIGHTS_DIR / "compressed_unet_int8.pt"


def read_bundle(path):
    """Read a weights file on the CPU.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        The bundle as saved (see the module docstring).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no weights file {str(path)!r}")
    with warnings.catch_warnings():  # deprecation notices of quantized tensor storage
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=False)


def bundle_info(bundle):
    """The metadata of a bundle: every entry but the weights.

    Parameters
    ----------
    bundle : dict

    Returns
    -------
    dict
    """
    return {k: v for k, v in bundle.items() if k != "state_dict"}


def fp32_model(bundle):
    """The fp32 network of a bundle, in eval mode, with ``model.info`` set.

    Parameters
    ----------
    bundle : dict
        As returned by :func:`read_bundle` for an fp32 file.

    Returns
    -------
    CompressedUNet
    """
    model = CompressedUNet(**bundle["config"])  # the network makes the channels a tuple
    model.load_state_dict(bundle["state_dict"])
    model.eval()
    model.info = bundle_info(bundle)
    return model
