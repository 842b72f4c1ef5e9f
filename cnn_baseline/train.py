"""Train the compressed U-Net on BraTS-style case folders.

::

    python -m cnn_baseline.train DATA_DIR [--out DIR] [--epochs N] [--patience P]
        [--batch-size 2] [--lr 1e-4] [--seed 0] [--val-fraction 0.2] [--cases N]
        [--regions whole_tumor [tumor_core enhancing]] [--augment 0.4]
        [--device auto|cpu|cuda] [--threads T] [--max-minutes M] [--export FILE]
        [--init WEIGHTS]

Cases are split 80/20 by patient (:func:`cnn_baseline.data.split_cases`), slices
extracted with :func:`cnn_baseline.data.extract_slices`; Adam (lr 1e-4) minimises
binary cross-entropy + Dice on mini-batches of 2, 40% of the training slices
augmented. After each epoch the validation loss (same loss, same batch size) is
computed; training stops when it has not improved for ``--patience`` epochs, after
``--epochs`` epochs, or when another epoch would pass ``--max-minutes``. ``DIR``
receives ``last.pt`` (model, optimizer, epoch), ``best.pt`` (the weights of the best
validation loss), ``log.csv`` (losses per epoch) and ``split.json``; ``--export``
writes the best weights with their configuration and split, the form that
:func:`cnn_baseline.load_pretrained` reads. ``--init`` starts from the weights of
an exported file instead of random ones (see :func:`warm_start`), for instance the
three-region network from the whole-tumor one.

On a CPU shared with other busy processes, ``--threads 1`` is much faster than
two threads: with 2 threads on 2 cores next to another process, steps went from
0.35 s to over 10 s (threads waiting on each other at every operator); the bundled
weights were trained with ``--threads 1`` (about 0.5 s per step).
"""
import argparse
import csv
import json
import os
import pickle
import sys
import time

import numpy as np
import torch

from cnn_baseline.data import REGIONS, SliceDataset, extract_slices, split_cases
from cnn_baseline.losses import bce_dice_loss
from cnn_baseline.networks import CompressedUNet, count_parameters
from pcnnseg.io import find_brats_cases, load_brats_case

__all__ = ["main", "load_slices", "evaluate_loss", "warm_start"]


def load_slices(case_dirs, regions, *, progress=True):
    """Extract the slices of several cases: ``(images, targets, per-case list)``."""
    from tqdm import tqdm

    per_case = []
    for d in tqdm(case_dirs, desc="loading cases", disable=not progress, file=sys.stderr):
        per_case.append(extract_slices(load_brats_case(d), regions=regions))
    images = np.concatenate([c.images for c in per_case])
    targets = np.concatenate([c.targets for c in per_case])
    return images, targets, per_case


def _shared_config(config):
    """A network configuration without its number of outputs, channels as a tuple."""
    return {k: tuple(v) if k == "channels" else v for k, v in config.items()
            if k != "out_channels"}


@torch.no_grad()
def warm_start(model, bundle, regions):
    """Copy trained weights into ``model`` wherever names and shapes agree.

    The output layer (``head``) of a network trained for other regions gets the
    rows of the regions both share; its other rows keep their initial values.

    Parameters
    ----------
    model : CompressedUNet
        The network to train, with one output per entry of ``regions``.
    bundle : dict
        An exported weights file (``--export``): ``state_dict``, ``config``,
        ``regions``.
    regions : sequence of str
        The regions of ``model``'s outputs.

    Returns
    -------
    list of str
        Names of the tensors copied (whole or in part).

    Raises
    ------
    ValueError
        If the bundle's network has another configuration than ``model`` (other
        than the number of outputs).
    """
    if _shared_config(bundle["config"]) != _shared_config(model.config):
        raise ValueError(f"init: network configuration {bundle['config']} does not match "
                         f"{model.config}")
    source_rows = {r: i for i, r in enumerate(bundle.get("regions", ["whole_tumor"]))}
    copied = []
    for name, target in model.state_dict().items():
        source = bundle["state_dict"].get(name)
        if source is None:
            continue
        if source.shape == target.shape:
            target.copy_(source)
            copied.append(name)
        elif name.startswith("head."):
            for row, region in enumerate(regions):
                if region in source_rows:
                    target[row].copy_(source[source_rows[region]])
            copied.append(name)
    return copied


@torch.no_grad()
def evaluate_loss(model, images, targets, *, batch_size=2, device="cpu", chunk=16):
    """Mean loss over consecutive mini-batches of ``batch_size``, and the Dice per region.

    The network runs on chunks of ``chunk`` slices; the loss is then taken on
    mini-batches of ``batch_size``, the training's definition.

    Returns
    -------
    loss : float
    dice : list of float
        Dice of the thresholded (0.5) predictions over all slices, per region.
    """
    model.eval()
    losses, inter, total = [], 0.0, 0.0
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(images[start:start + chunk]).to(device)
        t = torch.from_numpy(targets[start:start + chunk]).to(device)
        logits = model.logits(x)
        for k in range(0, len(x), batch_size):
            losses.append(float(bce_dice_loss(logits[k:k + batch_size], t[k:k + batch_size])))
        p = (logits > 0).float()
        inter = inter + (p * t).sum((0, 2, 3)).cpu().numpy()
        total = total + (p.sum((0, 2, 3)) + t.sum((0, 2, 3))).cpu().numpy()
    dice = np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)
    return float(np.mean(losses)), [float(v) for v in dice]


def _parser():
    p = argparse.ArgumentParser(prog="python -m cnn_baseline.train",
                                description="Train the compressed U-Net baseline on BraTS "
                                            "case folders.")
    p.add_argument("data_dir", help="folder of BraTS case folders (../shared/data/brats2018)")
    p.add_argument("--out", default="runs/cnn_baseline",
                   help="folder for checkpoints, log and split (default %(default)s)")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs (default 30)")
    p.add_argument("--patience", type=int, default=4,
                   help="epochs without a better validation loss before stopping (default 4)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--cases", type=int, default=None,
                   help="use only the first N cases (sorted by name)")
    p.add_argument("--regions", nargs="+", default=["whole_tumor"], choices=REGIONS)
    p.add_argument("--augment", type=float, default=0.4,
                   help="share of training slices augmented (default 0.4)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="do not start an epoch that would end after this many minutes")
    p.add_argument("--export", default=None,
                   help="write the best weights, configuration and split to this .pt file")
    p.add_argument("--init", default=None,
                   help="start from the weights of this exported .pt file (matching layers; "
                        "the output rows of shared regions)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    # Denormal floats (tiny gradients near empty background) made single steps 25
    # times slower on x86 CPUs: flush them to zero while training, and restore
    # the process default after, for whatever runs next in this process.
    torch.set_flush_denormal(True)
    try:
        return _train(_parser().parse_args(argv))
    finally:
        torch.set_flush_denormal(False)


def _train(args):
    from tqdm import tqdm

    for name in ("epochs", "patience", "batch_size"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    device = "cuda" if args.device == "cuda" or (args.device == "auto"
                                                 and torch.cuda.is_available()) else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    init = None
    if args.init:
        try:
            init = torch.load(args.init, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            print(f"error: --init {args.init!r}: {err}", file=sys.stderr)
            return 2
    try:
        dirs = find_brats_cases(args.data_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.cases is not None:
        dirs = dirs[:args.cases]
    if len(dirs) < 2:
        print(f"error: need at least 2 cases in {args.data_dir!r}, found {len(dirs)}",
              file=sys.stderr)
        return 2
    train_names, val_names = split_cases([d.name for d in dirs],
                                         val_fraction=args.val_fraction, seed=args.seed)
    by_name = {d.name: d for d in dirs}
    os.makedirs(args.out, exist_ok=True)
    progress = not args.no_progress
    regions = tuple(args.regions)

    x_train, y_train, train_cases = load_slices([by_name[n] for n in train_names], regions,
                                                progress=progress)
    x_val, y_val, val_cases = load_slices([by_name[n] for n in val_names], regions,
                                          progress=progress)
    split = {"data_dir": os.path.abspath(args.data_dir), "seed": args.seed,
             "train_cases": train_names, "val_cases": val_names,
             "train_slices": int(len(x_train)), "val_slices": int(len(x_val)),
             "regions": list(regions)}
    with open(os.path.join(args.out, "split.json"), "w") as fh:
        json.dump(split, fh, indent=2)
    print(f"train: {len(train_names)} cases, {len(x_train)} slices; "
          f"val: {len(val_names)} cases, {len(x_val)} slices; device {device}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)

    model = CompressedUNet(out_channels=len(regions))
    if init is not None:
        try:
            copied = warm_start(model, init, regions)
        except (KeyError, ValueError, RuntimeError) as err:
            print(f"error: --init {args.init!r}: {err}", file=sys.stderr)
            return 2
        print(f"initialised {len(copied)} tensors from {args.init}", file=sys.stderr)
    model = model.to(device)
    print(f"CompressedUNet: {count_parameters(model):,} parameters", file=sys.stderr)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    dataset = SliceDataset(x_train, y_train, augment_prob=args.augment, seed=args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                         generator=generator, num_workers=0)

    log_path = os.path.join(args.out, "log.csv")
    fields = ["epoch", "train_loss", "val_loss"] + [f"val_dice_{r}" for r in regions] + [
        "seconds"]
    with open(log_path, "w", newline="") as fh:
        csv.writer(fh).writerow(fields)

    best, best_epoch, history = float("inf"), 0, []
    start, epoch_time = time.perf_counter(), 0.0
    for epoch in range(1, args.epochs + 1):
        elapsed = time.perf_counter() - start
        if (args.max_minutes is not None and epoch > 1
                and elapsed + epoch_time > 60.0 * args.max_minutes):
            print(f"stopping before epoch {epoch}: it would pass --max-minutes "
                  f"{args.max_minutes}", file=sys.stderr)
            break
        t0 = time.perf_counter()
        model.train()
        running = []
        bar = tqdm(loader, desc=f"epoch {epoch}", disable=not progress, file=sys.stderr,
                   mininterval=5.0)
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            loss = bce_dice_loss(model.logits(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}", refresh=False)
        train_loss = float(np.mean(running))
        val_loss, val_dice = evaluate_loss(model, x_val, y_val, batch_size=args.batch_size,
                                           device=device)
        epoch_time = time.perf_counter() - t0
        row = [epoch, round(train_loss, 5), round(val_loss, 5)] + [round(d, 4) for d in
                                                                   val_dice] + [
                  round(epoch_time, 1)]
        history.append(dict(zip(fields, row)))
        with open(log_path, "a", newline="") as fh:
            csv.writer(fh).writerow(row)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
              f"val Dice {', '.join(f'{d:.3f}' for d in val_dice)} ({epoch_time:.0f} s)",
              file=sys.stderr)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": epoch, "config": model.config},
                   os.path.join(args.out, "last.pt"))
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            torch.save({"model": model.state_dict(), "epoch": epoch, "config": model.config},
                       os.path.join(args.out, "best.pt"))
        elif epoch - best_epoch >= args.patience:
            print(f"early stopping: no better validation loss for {args.patience} epochs",
                  file=sys.stderr)
            break

    total = time.perf_counter() - start
    print(f"best epoch {best_epoch}, validation loss {best:.4f}; {total / 60:.1f} min",
          file=sys.stderr)
    if args.export:
        state = torch.load(os.path.join(args.out, "best.pt"), map_location="cpu")
        bundle = {"state_dict": {k: v.cpu() for k, v in state["model"].items()},
                  "config": state["config"], "regions": list(regions),
                  "split": split, "best_epoch": best_epoch, "epochs_run": len(history),
                  "history": history, "seed": args.seed, "lr": args.lr,
                  "batch_size": args.batch_size, "augment": args.augment,
                  "train_minutes": round(total / 60, 1), "torch": torch.__version__,
                  "init": os.path.basename(args.init) if args.init else None}
        os.makedirs(os.path.dirname(os.path.abspath(args.export)), exist_ok=True)
        torch.save(bundle, args.export)
        print(f"wrote {args.export}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
