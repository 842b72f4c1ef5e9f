"""Bundled weights and whole-tumor prediction on slices or volumes of any size.

:func:`predict` applies the training's preprocessing to the input (per-input
normalisation of each sequence, a square box around the brain resampled to 128 x
128, see :mod:`cnn_baseline.data`), runs the network on every slice that holds
brain, resamples the probabilities back into the box, thresholds them and pastes
them into an array of the input's shape. Slices are taken along axis 0 of a
``(Z, Y, X)`` volume, the axial slices of a volume read by
:func:`pcnnseg.io.load_brats_case` (SimpleITK order), as in training.
"""
import functools
import numbers
import pathlib
import warnings

import numpy as np
import torch
from torch import nn

from cnn_baseline.bundle import (FP32_WEIGHTS, INT8_WEIGHTS, PRUNED_INT8_WEIGHTS, VARIANTS,
                                 WEIGHTS_DIR, bundle_info, fp32_model, read_bundle)
from cnn_baseline.data import (REGIONS, SIZE, brain_box, crop_resize, normalize_case,
                               paste_back)
from pcnnseg.io import BRATS_SEQUENCES, BratsCase
from pcnnseg.preprocess import nonempty_slices
from pcnnseg.validation import check_bool, check_int, check_number, explain_memory_error

__all__ = ["WEIGHTS_DIR", "FP32_WEIGHTS", "INT8_WEIGHTS", "PRUNED_INT8_WEIGHTS", "VARIANTS",
           "load_pretrained", "predict", "model_regions"]
# The weights' paths live in cnn_baseline.bundle, which cnn_baseline.quantize
# shares without importing this module; re-exported here.


def load_pretrained(quantized=False, *, variant=None, path=None):
    """A bundled compressed U-Net for the three tumor regions.

    Parameters
    ----------
    quantized : bool, optional
        Shorthand: True is ``variant="int8"``. Default False.
    variant : {"fp32", "int8", "pruned_int8"}, optional
        Which of the bundled networks (:data:`cnn_baseline.bundle.VARIANTS`):
        the fp32 one (default), its int8 quantization, or the network pruned by
        global magnitude and quantized (:mod:`cnn_baseline.prune`). The int8
        variants run on the CPU only and set ``torch.backends.quantized.engine``
        to the engine they were calibrated for.
    path : str or os.PathLike, optional
        Another weights file of the variant's form (``train --export`` for fp32,
        ``cnn_baseline.quantize`` or ``cnn_baseline.prune`` for int8). Default:
        the bundled file. An int8 file written by ``cnn_baseline.quantize`` holds
        a calibration, not weights: the fp32 file it names must lie beside it,
        and turning the calibration into scales takes about 3 s on loading.

    Returns
    -------
    CompressedUNet
        In eval mode on the CPU. ``model.info`` holds the training metadata
        (cases of the split, epochs, seed, losses; the pruning for a pruned
        network) and ``"variant"``.

    Raises
    ------
    TypeError
        If ``quantized`` is not a bool.
    ValueError
        For an unknown variant, ``quantized=True`` with ``variant="fp32"``, or an
        int8 calibration recorded on other fp32 weights than those beside it.
    FileNotFoundError
        If the weights file is missing.

    Examples
    --------
    >>> net = load_pretrained()
    >>> net.config["out_channels"], net.info["regions"]
    (3, ['whole_tumor', 'tumor_core', 'enhancing'])
    """
    quantized = check_bool(quantized, "quantized")
    if variant is None:
        variant = "int8" if quantized else "fp32"
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {list(VARIANTS)}, got {variant!r}")
    if quantized and variant == "fp32":
        raise ValueError("quantized: True asks for an int8 network, variant 'fp32' for the "
                         "float one")
    path = pathlib.Path(VARIANTS[variant] if path is None else path)
    bundle = read_bundle(path)
    if variant == "fp32":
        model = fp32_model(bundle)
        model.info["variant"] = variant
        return model
    # Imported here, not at the top: the package imports this module, and
    # ``python -m cnn_baseline.quantize`` must not find quantize already imported.
    from cnn_baseline.quantize import quantize_with_state, quantized_skeleton, weights_digest

    backend = bundle.get("backend", "x86")
    if "calibration_state" in bundle:   # the fp32 weights beside it, quantized on loading
        fp32 = fp32_model(read_bundle(path.parent / bundle["fp32_weights"]))
        if weights_digest(fp32) != bundle["fp32_sha256"]:
            raise ValueError(f"path: {str(path)!r} was calibrated on other fp32 weights than "
                             f"{bundle['fp32_weights']!r} beside it; rerun "
                             f"python -m cnn_baseline.quantize")
        model = quantize_with_state(fp32, bundle["calibration_state"], backend=backend)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = quantized_skeleton(bundle["config"], backend=backend)
            model.load_state_dict(bundle["state_dict"])
    model.eval()
    model.info = {**bundle_info(bundle), "variant": variant}
    model.info.pop("calibration_state", None)
    return model


def _as_stack(volume_or_slices):
    if isinstance(volume_or_slices, BratsCase):
        return volume_or_slices.images
    if isinstance(volume_or_slices, dict):
        return volume_or_slices
    if isinstance(volume_or_slices, torch.Tensor):
        return volume_or_slices.detach().cpu().numpy()
    if isinstance(volume_or_slices, (np.ndarray, list, tuple)):
        return np.asarray(volume_or_slices)
    raise TypeError(f"volume_or_slices: expected a (4, H, W) or (4, Z, Y, X) array, a dict "
                    f"of the sequences {list(BRATS_SEQUENCES)} or a BratsCase, got "
                    f"{type(volume_or_slices).__name__}")


def model_regions(model):
    """The regions of a network's outputs, in order.

    ``model.info["regions"]`` for loaded weights; otherwise the first
    ``out_channels`` of :data:`cnn_baseline.data.REGIONS`.
    """
    info = getattr(model, "info", None)
    if isinstance(info, dict) and "regions" in info:
        return tuple(info["regions"])
    n_out = model.config["out_channels"] if hasattr(model, "config") else 1
    return REGIONS[:n_out]


def _output_rows(regions, available):
    names = (regions,) if isinstance(regions, str) else tuple(regions)
    if not names:
        raise ValueError("regions: expected at least one region")
    missing = [r for r in names if r not in available]
    if missing:
        raise ValueError(f"regions: the network predicts {list(available)}, not {missing}")
    return [available.index(r) for r in names]


@functools.lru_cache(maxsize=2)
def _bundled_model(quantized):
    """The bundled network for :func:`predict`, kept between calls (never handed out)."""
    return load_pretrained(quantized)


@torch.no_grad()
def predict(volume_or_slices, *, model=None, quantized=False, regions="whole_tumor",
            threshold=0.5, batch_size=16, min_brain_pixels=100, channels_last=False):
    """Whole-tumor (or other BraTS region) mask of a slice or a volume, with the input's shape.

    Parameters
    ----------
    volume_or_slices : array_like, dict or pcnnseg.io.BratsCase
        Raw (skull-stripped, background 0) intensities of FLAIR, T1, T1c and T2:
        a ``(4, H, W)`` array (one slice), a ``(4, Z, Y, X)`` array (a volume, or
        a stack of Z slices), a dict ``{"flair", "t1", "t1ce", "t2"}`` of ``(H,
        W)`` or ``(Z, Y, X)`` arrays, or a BratsCase. Any real dtype; each
        sequence is normalised over the whole input.
    model : torch.nn.Module, optional
        A network with the CompressedUNet interface. Default: the bundled
        weights, ``load_pretrained(quantized)``, loaded once per process.
    quantized : bool, optional
        With ``model=None``, use the bundled int8 network. Default False.
    regions : str or sequence of str, optional
        ``"whole_tumor"`` (default), ``"tumor_core"`` or ``"enhancing"``, or a
        sequence of them for one mask per region; the network must predict them
        (:func:`model_regions`).
    threshold : float, optional
        Probability above which a pixel is tumor, in (0, 1). Default 0.5.
    batch_size : int, optional
        Slices per forward pass. Default 16.
    min_brain_pixels : int, optional
        Slices with fewer brain pixels are not segmented (all False), as in
        training. Default 100.
    channels_last : bool, optional
        Feed the network channels-last tensors (pair with a model converted by
        ``model.to(memory_format=torch.channels_last)``). Default False.

    Returns
    -------
    mask : ndarray of bool
        ``(H, W)`` or ``(Z, Y, X)``, the input's spatial shape, for one region
        named by a string; ``(R, H, W)`` or ``(R, Z, Y, X)`` for a sequence of R
        regions, in its order. Tumor only inside the brain.

    Raises
    ------
    TypeError
        For an unsupported input type, non-real dtype, a ``model`` that is not
        a torch Module, or a ``quantized`` / ``channels_last`` that is not a
        bool (``quantized="False"`` would load the int8 network).
    MemoryError
        When the input needs more memory than there is (the message gives its
        shape).
    ValueError
        For a wrong number of dimensions or of sequences, NaN / inf values, a
        missing sequence, a region the network does not predict, or a bad
        ``threshold`` / ``batch_size``.

    Examples
    --------
    >>> from pcnnseg import phantom
    >>> flair, truth = phantom.make_slice((150, 170), seed=0)
    >>> mask = predict(np.stack([flair, flair, flair, flair]))
    >>> mask.shape, mask.dtype
    ((150, 170), dtype('bool'))
    """
    stack = _as_stack(volume_or_slices)
    quantized = check_bool(quantized, "quantized")
    channels_last = check_bool(channels_last, "channels_last")
    if not 0.0 < check_number(threshold, "threshold") < 1.0:
        raise ValueError(f"threshold: expected a float in (0, 1), got {threshold}")
    batch_size = check_int(batch_size, "batch_size", 1)
    if isinstance(min_brain_pixels, bool) or not isinstance(min_brain_pixels, numbers.Integral):
        raise TypeError(f"min_brain_pixels: expected an integer, got "
                        f"{type(min_brain_pixels).__name__}")
    if model is None:
        model = _bundled_model(quantized)
    elif not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    with explain_memory_error(f"predict: an input of shape {_shapes(stack)}"):
        return _predict(stack, model, regions, threshold, batch_size, min_brain_pixels,
                        channels_last)


def _shapes(stack):
    """The shape of an input array, or of each sequence of a dict, for messages."""
    if isinstance(stack, dict):
        return {name: getattr(a, "shape", type(a).__name__) for name, a in stack.items()}
    return stack.shape


def _predict(stack, model, regions, threshold, batch_size, min_brain_pixels, channels_last):
    """:func:`predict` on checked arguments."""
    available = model_regions(model)
    rows = _output_rows(regions, available)
    normalized, brain = normalize_case(stack)  # validates dtype, shape, NaN
    two_d = brain.ndim == 2
    if two_d:
        normalized, brain = normalized[:, None], brain[None]
    n_out = len(available)
    out = np.zeros((n_out,) + brain.shape, dtype=bool)
    # A slice without brain has nothing to segment (its output is masked to False).
    keep = nonempty_slices(brain, min_pixels=max(int(min_brain_pixels), 1))
    if len(keep):
        box = brain_box(brain)
        slices = crop_resize(normalized[:, keep], box).transpose(1, 0, 2, 3)
        try:
            device = next(model.parameters()).device
        except StopIteration:  # int8 modules keep packed weights, not parameters
            device = torch.device("cpu")
        was_training = model.training
        model.eval()
        probs = np.empty((len(keep), n_out, SIZE, SIZE), dtype=np.float32)
        for k in range(0, len(keep), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(slices[k:k + batch_size])).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            probs[k:k + batch_size] = model(x).float().cpu().numpy()
        model.train(was_training)
        full = paste_back(probs, box, brain.shape[1:])  # (S, C, H, W)
        out[:, keep] = (full > threshold).transpose(1, 0, 2, 3) & brain[keep][None]
    out = out[rows]
    if two_d:
        out = out[:, 0]
    return out[0] if isinstance(regions, str) else out

