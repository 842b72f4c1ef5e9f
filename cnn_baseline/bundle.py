"""The bundled weights files: where they are, how one is read, the fp32 network in one.

A *bundle* is the dictionary that ``torch.save`` wrote: ``state_dict``, ``config``
(the keyword arguments of :class:`~cnn_baseline.networks.CompressedUNet`), and
metadata (regions, split, epochs, for int8 the calibration and ``backend``, for a
pruned network its pruning). A file whose name ends in ``.xz`` holds the same
bytes compressed with LZMA: the zeros of a pruned network then take almost no
room on disk.

This module sits below both users of the files: :mod:`cnn_baseline.inference`
loads them for prediction, :mod:`cnn_baseline.quantize` writes the int8 file from
the fp32 one. Neither of those imports the other at module level, and
``quantize`` never imports ``inference``.
"""
import io
import lzma
import pathlib
import warnings

import torch

from cnn_baseline.networks import CompressedUNet
from pcnnseg.io import write_bytes_atomic

__all__ = ["WEIGHTS_DIR", "FP32_WEIGHTS", "INT8_WEIGHTS", "PRUNED_INT8_WEIGHTS", "VARIANTS",
           "read_bundle", "write_bundle", "compressed_size", "bundle_info", "fp32_model"]

#: Folder of the bundled weights.
WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"
#: fp32 weights (outputs: whole tumor, tumor core, enhancing tumor), written by
#: ``python -m cnn_baseline.train --export``, LZMA-compressed.
FP32_WEIGHTS = WEIGHTS_DIR / "compressed_unet.pt.xz"
#: int8 network: the calibration of the fp32 weights (no weights of its own),
#: written by ``python -m cnn_baseline.quantize``.
INT8_WEIGHTS = WEIGHTS_DIR / "compressed_unet_int8.pt.xz"
#: int8 weights of the network pruned by global magnitude, LZMA-compressed,
#: written by ``python -m cnn_baseline.prune``.
PRUNED_INT8_WEIGHTS = WEIGHTS_DIR / "compressed_unet_pruned_int8.pt.xz"
#: The bundled variants and their files.
VARIANTS = {"fp32": FP32_WEIGHTS, "int8": INT8_WEIGHTS, "pruned_int8": PRUNED_INT8_WEIGHTS}


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
    source = path
    if path.suffix == ".xz":
        try:
            source = io.BytesIO(lzma.decompress(path.read_bytes()))
        except lzma.LZMAError as err:
            raise ValueError(f"path: {str(path)!r} is not an LZMA-compressed weights file "
                             f"({err})") from None
    with warnings.catch_warnings():  # deprecation notices of quantized tensor storage
        warnings.simplefilter("ignore")
        return torch.load(source, map_location="cpu", weights_only=False)


def write_bundle(bundle, path):
    """Write a bundle atomically, LZMA-compressed when ``path`` ends in ``.xz``.

    Parameters
    ----------
    bundle : dict
    path : str or os.PathLike

    Returns
    -------
    int
        Bytes written.
    """
    buffer = io.BytesIO()
    torch.save(bundle, buffer)
    data = buffer.getvalue()
    if pathlib.Path(path).suffix == ".xz":
        data = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    write_bytes_atomic(path, data)
    return len(data)


def compressed_size(model):
    """Bytes of ``model``'s state dict saved by ``torch.save`` and LZMA-compressed.

    The size of a network as a file of its own, whatever form it is bundled in
    (the bundled int8 file holds a calibration and needs the fp32 file): the
    figure to compare between variants.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buffer)
    return len(lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME))


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
