"""Post-training static 8-bit quantization of the compressed U-Net.

Eager-mode static quantization (:mod:`torch.ao.quantization`): observers are
inserted after every convolution (1x1, depthwise 3x3, pointwise 1x1, head),
GroupNorm, LeakyReLU, residual addition and skip concatenation; calibration runs
fp32 training slices through the network to record activation ranges; conversion
swaps the modules for their int8 kernels (weights per output channel, activations
per tensor). Max pooling and bilinear upsampling run directly on int8 tensors.
The network's ``QuantStub`` quantizes once, after the first level, and the logits
are dequantized before the sigmoid.

The first level (``inc``: two separable blocks at full resolution, 62 million of
the 815 million MACs of a 128 x 128 slice with three outputs) stays in float32.
Quantized, the GroupNorm after its depthwise convolution divided int8 rounding
noise by the small spread of some channel groups: on validation slices the
signal-to-noise ratio against fp32 fell from 14 dB to -13 dB at that layer and
the whole-tumor Dice of one validation volume from 0.67 to 0.09; with the level in
float the thresholded int8 outputs agree with fp32 on 99.9% of pixels. These
figures come from the 2 validation cases of the bundled weights' split, the
cases that also chose this design (and the training epoch) and that
``benchmarks/baseline.py`` reports on, so the int8 figures there are not
independent of it.

Eager-mode quantization runs on the CPU only; the ``x86`` engine (FBGEMM and
oneDNN) is used by default. PyTorch 2.13 marks ``torch.ao.quantization`` as
deprecated (in favour of torchao) but still ships it; its deprecation and observer
warnings are silenced here.

Command line, to write the bundled int8 network from the fp32 one::

    python -m cnn_baseline.quantize DATA_DIR [DATA_DIR ...] [--weights FP32.pt.xz]
        [--out INT8.pt.xz] [--slices 64] [--seed 0]

calibrates on slices of the *training* cases of the fp32 weights' split. The file
holds the calibration (the observers' state, :func:`calibrate`), the name and
SHA-256 of the fp32 weights it was recorded on, and no weights:
:func:`cnn_baseline.load_pretrained` rebuilds the int8 network from the fp32 file
beside it (:func:`quantize_with_state`), the same network as quantizing right
after calibration, for 0.25 MiB instead of 2.4 MiB of int8 weights.
"""
import argparse
import copy
import hashlib
import pathlib
import sys
import warnings

import numpy as np
import torch
from torch.ao import quantization as tq

from cnn_baseline.bundle import FP32_WEIGHTS, INT8_WEIGHTS, fp32_model, read_bundle, write_bundle
from cnn_baseline.networks import CompressedUNet

__all__ = ["DEFAULT_BACKEND", "calibrate", "quantize_with_state", "quantize_model",
           "quantized_skeleton", "calibration_batches", "weights_digest"]

#: Quantized engine used by default.
DEFAULT_BACKEND = "x86"


def _set_engine(backend):
    if backend not in torch.backends.quantized.supported_engines:
        raise ValueError(f"backend: expected one of "
                         f"{torch.backends.quantized.supported_engines}, got {backend!r}")
    # The quantized kernels are chosen by this process-wide setting at run time.
    torch.backends.quantized.engine = backend


def _prepared(model, backend):
    if not isinstance(model, CompressedUNet):
        raise TypeError(f"model: expected a CompressedUNet, got {type(model).__name__}")
    _set_engine(backend)
    work = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        work.qconfig = tq.get_default_qconfig(backend)
        work.inc.qconfig = None  # the first level stays in float (module docstring)
        return tq.prepare(work, inplace=False)


def calibration_batches(images, *, n_slices=64, batch_size=16, seed=0):
    """Pick calibration slices at random and group them in batches.

    Parameters
    ----------
    images : (S, 4, H, W) ndarray of float32
        Training slices (never the validation ones).
    n_slices : int, optional
        How many slices, at most ``S``. Default 64.
    batch_size : int, optional
        Slices per batch. Default 16.
    seed : int, optional

    Returns
    -------
    list of (n, 4, H, W) torch.Tensor
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images: expected (S, 4, H, W) slices, got shape {images.shape}")
    pick = np.sort(np.random.default_rng(seed).permutation(len(images))[:n_slices])
    return [torch.from_numpy(images[pick[k:k + batch_size]])
            for k in range(0, len(pick), batch_size)]


@torch.no_grad()
def calibrate(model, calibration, *, backend=DEFAULT_BACKEND):
    """Record activation ranges of ``model`` on calibration slices.

    Parameters
    ----------
    model : CompressedUNet
        Trained fp32 network; left unchanged.
    calibration : iterable of (N, 4, H, W) torch.Tensor
        Batches of training slices, e.g. from :func:`calibration_batches`.
    backend : str, optional
        Quantized engine, default ``"x86"``.

    Returns
    -------
    dict of str to torch.Tensor
        The observers' state (``activation_post_process`` entries): with the
        fp32 weights, all :func:`quantize_with_state` needs, about a tenth of the
        int8 weights' size once compressed.

    Raises
    ------
    TypeError
        If ``model`` is not a CompressedUNet.
    ValueError
        If ``calibration`` holds no batch, or the backend is unknown.
    """
    prepared = _prepared(model, backend)
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch in calibration:
            prepared(torch.as_tensor(batch, dtype=torch.float32))
            n += 1
    if n == 0:
        raise ValueError("calibration: expected at least one batch of slices, got none")
    return {k: v.clone() for k, v in prepared.state_dict().items()
            if "activation_post_process" in k}


@torch.no_grad()
def quantize_with_state(model, state, *, backend=DEFAULT_BACKEND):
    """Int8 copy of ``model`` from observer state recorded by :func:`calibrate`.

    The weights' int8 values and scales follow from the fp32 weights
    (per output channel); the activations' from ``state``. The result equals
    the network :func:`quantize_model` returns for the same calibration.

    Parameters
    ----------
    model : CompressedUNet
        The fp32 network the state was recorded on; left unchanged.
    state : dict of str to torch.Tensor
    backend : str, optional

    Returns
    -------
    CompressedUNet
        In eval mode on the CPU, with int8 modules.

    Raises
    ------
    ValueError
        If ``state`` does not hold the observers of this network.
    """
    prepared = _prepared(model, backend)
    expected = {k for k in prepared.state_dict() if "activation_post_process" in k}
    if set(state) != expected:
        raise ValueError(f"state: expected the {len(expected)} observer entries of this "
                         f"network, got {len(state)} entries ({len(set(state) - expected)} "
                         f"unknown, {len(expected - set(state))} missing)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared.load_state_dict(state, strict=False)
        return tq.convert(prepared, inplace=False)


def quantize_model(model, calibration, *, backend=DEFAULT_BACKEND):
    """Int8 copy of a trained :class:`CompressedUNet`, calibrated on slices.

    :func:`calibrate` then :func:`quantize_with_state`.

    Parameters
    ----------
    model : CompressedUNet
        Trained fp32 network; left unchanged.
    calibration : iterable of (N, 4, H, W) torch.Tensor
        Batches of training slices, e.g. from :func:`calibration_batches`.
    backend : str, optional
        Quantized engine, default ``"x86"``; sets
        ``torch.backends.quantized.engine``, which int8 inference needs.

    Returns
    -------
    CompressedUNet
        In eval mode on the CPU, with int8 modules; ``forward`` takes and returns
        float tensors like the fp32 network.

    Raises
    ------
    TypeError
        If ``model`` is not a CompressedUNet.
    ValueError
        If ``calibration`` holds no batch, or the backend is unknown.
    """
    return quantize_with_state(model, calibrate(model, calibration, backend=backend),
                               backend=backend)


def weights_digest(model):
    """SHA-256 of a network's parameters and buffers (names and bytes, sorted by name).

    Ties an int8 calibration file to the fp32 weights it was recorded on.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def quantized_skeleton(config, *, backend=DEFAULT_BACKEND):
    """An uncalibrated int8 CompressedUNet of ``config``, ready for ``load_state_dict``.

    The state dict of a quantized model holds the int8 weights, scales and zero
    points; loading it into this skeleton restores the calibrated model.

    Parameters
    ----------
    config : dict
        ``CompressedUNet.config`` of the fp32 network.
    backend : str, optional
        As in :func:`quantize_model`.

    Returns
    -------
    CompressedUNet
    """
    prepared = _prepared(CompressedUNet(**config), backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tq.convert(prepared, inplace=False)


def main(argv=None):
    """Write the int8 weights: calibrate the fp32 bundle on its training cases."""
    from cnn_baseline.train import training_slices

    p = argparse.ArgumentParser(prog="python -m cnn_baseline.quantize",
                                description="Post-training static int8 quantization of "
                                            "the compressed U-Net.")
    p.add_argument("data_dirs", nargs="+", metavar="DATA_DIR",
                   help="folders holding the training cases of the weights' split")
    p.add_argument("--weights", default=str(FP32_WEIGHTS), help="fp32 bundle")
    p.add_argument("--out", default=str(INT8_WEIGHTS), help="int8 bundle to write")
    p.add_argument("--slices", type=int, default=64, help="calibration slices (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default=DEFAULT_BACKEND)
    args = p.parse_args(argv)
    model = fp32_model(read_bundle(args.weights))
    info = model.info
    try:
        images, _ = training_slices(info, args.data_dirs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    batches = calibration_batches(images, n_slices=args.slices, seed=args.seed)
    state = calibrate(model, batches, backend=args.backend)
    bundle = {"calibration_state": state, "config": model.config, "backend": args.backend,
              "regions": info["regions"], "split": info["split"],
              "calibration": {"cases": info["split"]["train_cases"],
                              "slices": sum(len(b) for b in batches),
                              "seed": args.seed},
              "fp32_weights": pathlib.Path(args.weights).name,
              "fp32_sha256": weights_digest(model), "torch": torch.__version__}
    write_bundle(bundle, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
