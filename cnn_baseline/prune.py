"""Global magnitude pruning of the compressed U-Net, short fine-tuning, then int8.

Magnitude pruning (Han, Pool, Tran & Dally, "Learning both weights and
connections for efficient neural networks", NeurIPS 2015): the share ``amount``
of the convolution weights with the smallest absolute values, ranked over all
convolutions of the network together (global, so layers lose different shares),
is set to zero; the network is then fine-tuned with those weights held at zero
(:mod:`torch.nn.utils.prune` keeps a mask), the masks are made permanent, and
the pruned network is quantized like the dense one
(:func:`cnn_baseline.quantize.quantize_model`: int8 weights per output channel,
symmetric, so a zero weight stays exactly zero). GroupNorm parameters and biases
are not pruned.

The zeros do not make the dense int8 kernels faster; they make the file smaller
once compressed (:func:`cnn_baseline.bundle.write_bundle` with a ``.xz`` name).

Command line::

    python -m cnn_baseline.prune DATA_DIR [DATA_DIR ...] [--weights FP32.pt]
        [--amounts 0.5 0.6 0.7] [--epochs 1] [--out-dir DIR] [--threads T]
        [--bundle AMOUNT]

For each amount, prunes the fp32 weights, fine-tunes them on the *training*
cases of the weights' split (Adam, the training's learning rate and batch size,
40 % augmentation), calibrates int8 on 64 training slices, and writes
``DIR/pruned_<percent>_fp32.pt`` and ``DIR/pruned_<percent>_int8.pt.xz``;
``--bundle AMOUNT`` also copies that amount's int8 file to the bundled
:data:`cnn_baseline.bundle.PRUNED_INT8_WEIGHTS`.
"""
import argparse
import copy
import os
import sys
import time

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from cnn_baseline.bundle import (FP32_WEIGHTS, PRUNED_INT8_WEIGHTS, fp32_model, read_bundle,
                                 write_bundle)
from cnn_baseline.networks import CompressedUNet

__all__ = ["prunable_weights", "prune_global", "make_permanent", "sparsity", "fine_tune"]


def prunable_weights(model):
    """The ``(module, "weight")`` pairs of every convolution of ``model``."""
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d)]


def prune_global(model, amount):
    """Copy of ``model`` with the smallest-magnitude convolution weights masked to zero.

    Parameters
    ----------
    model : CompressedUNet
        Left unchanged.
    amount : float
        Share of all convolution weights to remove, in [0, 1).

    Returns
    -------
    CompressedUNet
        With :mod:`torch.nn.utils.prune` masks on its convolutions (they stay at
        zero while it is trained); :func:`make_permanent` removes the masks.
    """
    if not isinstance(model, CompressedUNet):
        raise TypeError(f"model: expected a CompressedUNet, got {type(model).__name__}")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) \
            or not 0.0 <= amount < 1.0:
        raise ValueError(f"amount: expected a share in [0, 1), got {amount!r}")
    work = copy.deepcopy(model)
    torch_prune.global_unstructured(prunable_weights(work),
                                    pruning_method=torch_prune.L1Unstructured,
                                    amount=float(amount))
    return work


def make_permanent(model):
    """Fold the pruning masks into the weights, in place; returns ``model``."""
    for module, name in prunable_weights(model):
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, name)
    return model


@torch.no_grad()
def sparsity(model):
    """Share of convolution weights that are exactly zero.

    Returns
    -------
    zeros : float
    remaining : int
        Convolution weights left non-zero.
    """
    weights = [getattr(m, n) for m, n in prunable_weights(model)]
    total = sum(w.numel() for w in weights)
    nonzero = sum(int(torch.count_nonzero(w)) for w in weights)
    return 1.0 - nonzero / total, nonzero


def fine_tune(model, images, targets, *, epochs=1, lr=1e-4, batch_size=2, augment=0.4,
              tumor_share=None, seed=0, progress=False):
    """Train a pruned network further, its pruned weights held at zero; in place.

    Parameters
    ----------
    model : CompressedUNet
        From :func:`prune_global` (masks in place).
    images : (S, 4, H, W) ndarray of float32
    targets : (S, C, H, W) ndarray of float32
        Training slices, never validation ones.
    epochs, lr, batch_size, augment, tumor_share, seed
        As in :mod:`cnn_baseline.train` (``tumor_share`` None: plain shuffling).
    progress : bool

    Returns
    -------
    list of float
        Mean training loss per epoch.
    """
    from cnn_baseline.data import SliceDataset
    from cnn_baseline.train import sampler, train_epoch

    torch.manual_seed(seed)
    dataset = SliceDataset(images, targets, augment_prob=augment, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                         sampler=sampler(targets, tumor_share, generator))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return [train_epoch(model, loader, optimizer, desc=f"fine-tune {e + 1}", progress=progress)
            for e in range(epochs)]


def _parser():
    p = argparse.ArgumentParser(prog="python -m cnn_baseline.prune",
                                description="Global magnitude pruning, fine-tuning and int8 "
                                            "of the compressed U-Net.")
    p.add_argument("data_dirs", nargs="+", metavar="DATA_DIR",
                   help="folders holding the training cases of the weights' split")
    p.add_argument("--weights", default=str(FP32_WEIGHTS), help="fp32 bundle")
    p.add_argument("--amounts", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    p.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default 1)")
    p.add_argument("--out-dir", default="runs/pruned")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--slices", type=int, default=64, help="int8 calibration slices")
    p.add_argument("--bundle", type=float, default=None,
                   help="copy this amount's int8 file to the bundled pruned weights")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    from cnn_baseline.quantize import calibration_batches, quantize_model
    from cnn_baseline.train import training_slices
    from pcnnseg.io import write_bytes_atomic

    args = _parser().parse_args(argv)
    if any(not 0.0 < a < 1.0 for a in args.amounts) or args.epochs < 0:
        print("error: --amounts must lie in (0, 1) and --epochs be >= 0", file=sys.stderr)
        return 2
    if args.bundle is not None and args.bundle not in args.amounts:
        print(f"error: --bundle {args.bundle} is not among --amounts", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        dense = fp32_model(read_bundle(args.weights))
        images, targets = training_slices(dense.info, args.data_dirs,
                                          progress=not args.no_progress)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = dense.info
    train_cases = info["split"]["train_cases"]
    regions = tuple(info["regions"])
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_flush_denormal(True)  # as in training (cnn_baseline.train.main)
    try:
        for amount in args.amounts:
            t0 = time.perf_counter()
            model = prune_global(dense, amount)
            losses = fine_tune(model, images, targets, epochs=args.epochs,
                               lr=info.get("lr", 1e-4), batch_size=info.get("batch_size", 2),
                               augment=info.get("augment", 0.4),
                               tumor_share=info.get("tumor_share"),
                               progress=not args.no_progress)
            make_permanent(model).eval()
            zeros, remaining = sparsity(model)
            pruning = {"amount": amount, "method": "global L1 magnitude, convolutions",
                       "fine_tune_epochs": args.epochs, "fine_tune_losses": losses,
                       "zeros": zeros, "remaining_weights": remaining,
                       "from": os.path.basename(args.weights),
                       "minutes": round((time.perf_counter() - t0) / 60, 1)}
            tag = f"pruned_{round(100 * amount)}"
            meta = {k: v for k, v in info.items() if k not in ("config",)}
            write_bundle({"state_dict": model.state_dict(), "config": model.config, **meta,
                          "pruning": pruning}, os.path.join(args.out_dir, f"{tag}_fp32.pt"))
            batches = calibration_batches(images, n_slices=args.slices, seed=0)
            qmodel = quantize_model(model, batches)
            int8_path = os.path.join(args.out_dir, f"{tag}_int8.pt.xz")
            write_bundle({"state_dict": qmodel.state_dict(), "config": model.config,
                          "backend": torch.backends.quantized.engine, "regions": list(regions),
                          "split": info["split"], "pruning": pruning,
                          "calibration": {"cases": train_cases,
                                          "slices": sum(len(b) for b in batches), "seed": 0},
                          "torch": torch.__version__}, int8_path)
            print(f"{tag}: {100 * zeros:.1f} % zeros, {remaining:,} weights left, "
                  f"fine-tune losses {', '.join(f'{v:.4f}' for v in losses)}; "
                  f"{os.path.getsize(int8_path) / 2**20:.2f} MiB int8", file=sys.stderr)
            if args.bundle == amount:
                with open(int8_path, "rb") as fh:
                    write_bytes_atomic(PRUNED_INT8_WEIGHTS, fh.read())
                print(f"wrote {PRUNED_INT8_WEIGHTS}", file=sys.stderr)
    finally:
        torch.set_flush_denormal(False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
