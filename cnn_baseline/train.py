"""Train the compressed U-Net on BraTS-style case folders, resumably.

::

    python -m cnn_baseline.train (DATA_DIR [DATA_DIR ...] | --slices FILE) [--out DIR] [--epochs N]
        [--patience P] [--batch-size 2] [--lr 1e-4] [--seed 0] [--val-fraction 0.2]
        [--cases N] [--regions whole_tumor [tumor_core enhancing]] [--augment 0.4]
        [--tumor-share P] [--monitor loss|dice] [--schedule constant|plateau]
        [--device auto|cpu|cuda] [--threads T] [--max-minutes M] [--export FILE]
        [--init WEIGHTS] [--resume]

Several ``DATA_DIR`` (collections, e.g. ``brats2018`` and ``brats2023_ssa``) can be
given; cases are split 80/20 by patient within each collection
(:func:`cnn_baseline.data.split_cases` with ``groups``), so validation holds cases
of every collection. Slices are extracted with
:func:`cnn_baseline.data.extract_slices`. Adam (lr 1e-4) minimises binary
cross-entropy + Dice (:func:`cnn_baseline.losses.bce_dice_loss`: both terms per
region, averaged over the regions) on mini-batches of 2, 40% of the training
slices augmented: the recipe of Niepceron et al. (2020). Two departures are
options, off by default: ``--tumor-share P`` draws slices with tumor (any target
region) with probability ``P`` per draw (with replacement, an epoch as many draws
as slices), so that the tumor-core and enhancing outputs see enough examples;
``--schedule plateau`` halves the learning rate when the monitored score has not
improved for 2 epochs.

After each epoch the validation loss (same loss, same batch size) and Dice per
region are computed. ``--monitor`` chooses the score that picks the best epoch
and stops early: the validation loss (default, the paper's) or the mean
validation Dice over the regions. Training stops when it has not improved for
``--patience`` epochs, after ``--epochs`` epochs, or when another epoch would
pass ``--max-minutes``.

``DIR`` receives, after every epoch and atomically, ``last.pt`` (a checkpoint:
model, optimiser, scheduler, every random generator's state, epoch, best score,
history and settings), ``best.pt`` (the weights of the best epoch), ``log.csv``
(losses and Dice per epoch) and ``split.json``. ``--resume`` continues from
``last.pt`` with the same settings (``--epochs``, ``--patience`` and
``--max-minutes`` may change): an interrupted run loses at most the epoch in
progress, and a resumed run ends with the same weights as an uninterrupted one
on the CPU. ``--export`` writes the best weights with their configuration and
split, the form that :func:`cnn_baseline.load_pretrained` reads. ``--init``
starts from the weights of an exported file instead of random ones (see
:func:`warm_start`).

``--slices FILE`` trains on the slices of a file written by
:mod:`cnn_baseline.slice_file` instead of case folders: the same cases give the
same split, and the images are the folders' quantised to steps of 1/255. This is
how a machine without the data (a GPU machine, say) trains.

On a CPU shared with other busy processes, ``--threads 1`` is much faster than
two threads: with 2 threads on 2 cores next to another process, steps went from
0.35 s to over 10 s (threads waiting on each other at every operator); the bundled
weights were trained with ``--threads 1`` (about 0.5 s per step).
"""
import argparse
import csv
import io
import json
import os
import pickle
import sys
import time

import numpy as np
import torch

from cnn_baseline.bundle import read_bundle, write_bundle
from cnn_baseline.data import REGIONS, SliceDataset, extract_slices, split_cases
from cnn_baseline.losses import bce_dice_loss
from cnn_baseline.networks import CompressedUNet, count_parameters
from cnn_baseline.slice_file import read_slice_file
from pcnnseg.io import find_brats_cases, load_brats_case, write_bytes_atomic

__all__ = ["main", "load_slices", "training_slices", "train_epoch", "evaluate_loss",
           "warm_start", "sampler"]


def load_slices(case_dirs, regions, *, progress=True):
    """Extract the slices of several cases: ``(images, targets, per-case list)``."""
    from tqdm import tqdm

    per_case = []
    for d in tqdm(case_dirs, desc="loading cases", disable=not progress, file=sys.stderr):
        per_case.append(extract_slices(load_brats_case(d), regions=regions))
    images = np.concatenate([c.images for c in per_case])
    targets = np.concatenate([c.targets for c in per_case])
    return images, targets, per_case


def training_slices(info, data_dirs, *, progress=True):
    """The slices of the training cases of an exported network's split.

    For what is derived from trained weights (int8 calibration, pruning's
    fine-tuning), which must see the training cases only.

    Parameters
    ----------
    info : dict
        ``model.info`` of an exported network: ``split`` and ``regions``.
    data_dirs : sequence of str
        Folders of BraTS case folders holding those cases.
    progress : bool, optional

    Returns
    -------
    images, targets : ndarray
        As :func:`load_slices`.

    Raises
    ------
    ValueError
        If a training case is in none of the folders.
    """
    train_cases = info["split"]["train_cases"]
    dirs = {d.name: d for root in data_dirs for d in find_brats_cases(root)}
    missing = [n for n in train_cases if n not in dirs]
    if missing:
        raise ValueError(f"training cases {missing} not found in {list(data_dirs)}")
    images, targets, _ = load_slices([dirs[n] for n in train_cases], tuple(info["regions"]),
                                     progress=progress)
    return images, targets


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


def train_epoch(model, loader, optimizer, *, device="cpu", desc="epoch", progress=False):
    """One pass over ``loader``: Adam steps on :func:`bce_dice_loss`; the mean loss.

    Parameters
    ----------
    model : CompressedUNet
    loader : iterable of (images, targets) tensor pairs
        ``(N, 4, H, W)`` and ``(N, C, H, W)``.
    optimizer : torch.optim.Optimizer
    device : str, optional
    desc : str, optional
        Label of the progress bar.
    progress : bool, optional
        Show a progress bar on stderr.

    Returns
    -------
    float
    """
    from tqdm import tqdm

    model.train()
    running = []
    bar = tqdm(loader, desc=desc, disable=not progress, file=sys.stderr, mininterval=5.0)
    for x, y in bar:
        x, y = x.to(device), y.to(device)
        loss = bce_dice_loss(model.logits(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}", refresh=False)
    return float(np.mean(running))


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
    p.add_argument("data_dirs", nargs="*", metavar="DATA_DIR",
                   help="folders of BraTS case folders (e.g. ../shared/data/brats2018 "
                        "../shared/data/brats2023_ssa); the split is made within each")
    p.add_argument("--slices", default=None, metavar="FILE",
                   help="train on a slice file (python -m cnn_baseline.slice_file) instead "
                        "of DATA_DIRs")
    p.add_argument("--out", default="runs/cnn_baseline",
                   help="folder for checkpoints, log and split (default %(default)s)")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs (default 30)")
    p.add_argument("--patience", type=int, default=4,
                   help="epochs without a better validation score before stopping (default 4)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--cases", type=int, default=None,
                   help="use only the first N cases of each folder (sorted by name)")
    p.add_argument("--regions", nargs="+", default=["whole_tumor"], choices=REGIONS)
    p.add_argument("--augment", type=float, default=0.4,
                   help="share of training slices augmented (default 0.4)")
    p.add_argument("--tumor-share", type=float, default=None,
                   help="draw slices with tumor with this probability (default: plain "
                        "shuffle)")
    p.add_argument("--monitor", default="loss", choices=("loss", "dice"),
                   help="validation score of the best epoch and early stopping: loss "
                        "(default) or mean Dice over the regions")
    p.add_argument("--schedule", default="constant", choices=("constant", "plateau"),
                   help="learning rate: constant (default) or halved after 2 epochs "
                        "without a better validation score")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="do not start an epoch that would end after this many minutes")
    p.add_argument("--export", default=None,
                   help="write the best weights, configuration and split to this .pt file")
    p.add_argument("--init", default=None,
                   help="start from the weights of this exported .pt file (matching layers; "
                        "the output rows of shared regions)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run whose checkpoint is OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


#: Settings a resumed run must share with the checkpoint it continues.
_RESUME_SETTINGS = ("batch_size", "lr", "seed", "val_fraction", "cases", "regions", "augment",
                    "tumor_share", "monitor", "schedule", "slices")


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


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def _find_cases(data_dirs, limit):
    """``{name: case folder}`` and ``{name: collection}`` over several folders."""
    dirs, groups = {}, {}
    for root in data_dirs:
        found = find_brats_cases(root)
        if limit is not None:
            found = found[:limit]
        for d in found:
            if d.name in dirs:
                raise ValueError(f"case {d.name!r} is in both {str(dirs[d.name].parent)!r} "
                                 f"and {root!r}")
            dirs[d.name] = d
            groups[d.name] = os.path.basename(os.path.normpath(root))
    return dirs, groups


def _slice_file_cases(path, limit, regions):
    """``{name: (images, targets)}`` and ``{name: collection}`` of a slice file,
    the first ``limit`` cases (by name) of each collection, targets in ``regions`` order."""
    cases, groups, stored = read_slice_file(path)
    missing = [r for r in regions if r not in stored]
    if missing:
        raise ValueError(f"--slices {path!r} holds the regions {list(stored)}, not {missing}")
    rows = [stored.index(r) for r in regions]
    keep = set()
    for group in set(groups.values()):
        members = sorted(n for n in cases if groups[n] == group)
        keep.update(members[:limit] if limit is not None else members)
    return ({n: (cases[n][0], cases[n][1][:, rows]) for n in cases if n in keep},
            {n: groups[n] for n in keep})


def sampler(targets, share, generator):
    """The order of an epoch's slices: a shuffle, or draws that favour tumor.

    Parameters
    ----------
    targets : (S, C, H, W) ndarray
    share : float or None
        Probability that a draw is a slice with any target pixel (draws with
        replacement, ``S`` per epoch); None for a plain shuffle.
    generator : torch.Generator

    Returns
    -------
    torch.utils.data.Sampler
    """
    tumor = targets.reshape(len(targets), -1).any(axis=1)
    if share is None or tumor.all() or not tumor.any():
        return torch.utils.data.RandomSampler(range(len(targets)), generator=generator)
    weights = np.where(tumor, share / tumor.sum(), (1.0 - share) / (~tumor).sum())
    return torch.utils.data.WeightedRandomSampler(torch.as_tensor(weights), len(targets),
                                                  replacement=True, generator=generator)


def _rng_state(dataset, generator):
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "dataset": dataset.rng.bit_generator.state, "loader": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state, dataset, generator):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    dataset.rng.bit_generator.state = state["dataset"]
    generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_args(args):
    for name in ("epochs", "patience", "batch_size"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be at least 1"
    if args.tumor_share is not None and not 0.0 < args.tumor_share < 1.0:
        return f"--tumor-share must be in (0, 1), got {args.tumor_share}"
    if args.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda but CUDA is not available"
    if bool(args.data_dirs) == bool(args.slices):
        return "give either DATA_DIRs or --slices FILE"
    if args.resume and args.init:
        return "--resume continues a run; --init starts one: give one of them"
    return None


def _train(args):
    problem = _check_args(args)
    if problem:
        return _fail(problem)
    device = "cuda" if args.device == "cuda" or (args.device == "auto"
                                                 and torch.cuda.is_available()) else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {k: getattr(args, k) for k in _RESUME_SETTINGS}
    settings["regions"] = list(args.regions)
    settings["data_dirs"] = [os.path.abspath(d) for d in args.data_dirs]
    settings["slices"] = os.path.abspath(args.slices) if args.slices else None
    init_name = os.path.basename(args.init) if args.init else None
    checkpoint = None
    if args.resume:
        path = os.path.join(args.out, "last.pt")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
            saved = checkpoint["settings"]
        except (OSError, RuntimeError, EOFError, KeyError, TypeError,
                pickle.UnpicklingError) as err:
            return _fail(f"--resume: no readable checkpoint {path!r} ({err})")
        changed = sorted(k for k in settings if saved.get(k) != settings[k])
        init_name = checkpoint.get("init")
        if changed:
            return _fail("--resume: settings differ from the checkpoint's: "
                         + ", ".join(f"{k} {saved.get(k)!r} -> {settings[k]!r}"
                                     for k in changed))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    init = None
    if args.init:
        try:
            init = read_bundle(args.init)   # an exported file, LZMA-compressed or not
        except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            return _fail(f"--init {args.init!r}: {err}")
    regions = tuple(args.regions)
    try:
        if args.slices:
            # sources: each case's folder, or its (images, targets) from the file
            sources, groups = _slice_file_cases(args.slices, args.cases, regions)
        else:
            sources, groups = _find_cases(args.data_dirs, args.cases)
    except (FileNotFoundError, ValueError) as err:
        return _fail(err)
    if len(sources) < 2:
        return _fail(f"need at least 2 cases in {args.slices or args.data_dirs}, found "
                     f"{len(sources)}")
    try:
        train_names, val_names = split_cases(sorted(sources),
                                             val_fraction=args.val_fraction,
                                             seed=args.seed, groups=groups)
    except ValueError as err:
        return _fail(err)
    if checkpoint is not None and (checkpoint["split"]["train_cases"] != train_names
                                   or checkpoint["split"]["val_cases"] != val_names):
        return _fail("--resume: the cases found differ from the checkpoint's split")
    os.makedirs(args.out, exist_ok=True)
    progress = not args.no_progress
    if args.slices:
        x_train, y_train = (np.concatenate([sources[n][i] for n in train_names])
                            for i in (0, 1))
        x_val, y_val = (np.concatenate([sources[n][i] for n in val_names]) for i in (0, 1))
    else:
        x_train, y_train, _ = load_slices([sources[n] for n in train_names], regions,
                                          progress=progress)
        x_val, y_val, _ = load_slices([sources[n] for n in val_names], regions,
                                      progress=progress)
    split = {"data_dirs": settings["data_dirs"], "slices": settings["slices"],
             "seed": args.seed,
             "train_cases": train_names, "val_cases": val_names,
             "collections": {n: groups[n] for n in sorted(sources)},
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
            return _fail(f"--init {args.init!r}: {err}")
        print(f"initialised {len(copied)} tensors from {args.init}", file=sys.stderr)
    model = model.to(device)
    print(f"CompressedUNet: {count_parameters(model):,} parameters", file=sys.stderr)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    higher_is_better = args.monitor == "dice"
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if higher_is_better else "min", factor=0.5, patience=2)
        if args.schedule == "plateau" else None)
    dataset = SliceDataset(x_train, y_train, augment_prob=args.augment, seed=args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, num_workers=0,
        sampler=sampler(y_train, args.tumor_share, generator))

    fields = ["epoch", "train_loss", "val_loss"] + [f"val_dice_{r}" for r in regions] + [
        "lr", "seconds"]
    best, best_epoch, history, first_epoch = None, 0, [], 1
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_state(checkpoint["rng"], dataset, generator)
        best, best_epoch = checkpoint["best"], checkpoint["best_epoch"]
        history, first_epoch = checkpoint["history"], checkpoint["epoch"] + 1
        print(f"resuming after epoch {checkpoint['epoch']} (best epoch {best_epoch})",
              file=sys.stderr)
    _write_log(os.path.join(args.out, "log.csv"), fields, history)

    start, epoch_time = time.perf_counter(), 0.0
    if history and first_epoch - 1 - best_epoch >= args.patience:
        first_epoch = args.epochs + 1   # the run had stopped early: nothing left to train
    for epoch in range(first_epoch, args.epochs + 1):
        elapsed = time.perf_counter() - start
        if (args.max_minutes is not None and epoch > first_epoch
                and elapsed + epoch_time > 60.0 * args.max_minutes):
            print(f"stopping before epoch {epoch}: it would pass --max-minutes "
                  f"{args.max_minutes}", file=sys.stderr)
            break
        t0 = time.perf_counter()
        train_loss = train_epoch(model, loader, optimizer, device=device,
                                 desc=f"epoch {epoch}", progress=progress)
        val_loss, val_dice = evaluate_loss(model, x_val, y_val, batch_size=args.batch_size,
                                           device=device)
        score = float(np.mean(val_dice)) if higher_is_better else val_loss
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step(score)
        epoch_time = time.perf_counter() - t0
        row = [epoch, round(train_loss, 5), round(val_loss, 5)] + [
            round(d, 4) for d in val_dice] + [lr, round(epoch_time, 1)]
        history.append(dict(zip(fields, row)))
        print(f"epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
              f"val Dice {', '.join(f'{d:.3f}' for d in val_dice)} ({epoch_time:.0f} s)",
              file=sys.stderr)
        improved = best is None or (score > best if higher_is_better else score < best)
        if improved:
            best, best_epoch = score, epoch
            write_bundle({"model": model.state_dict(), "epoch": epoch, "config": model.config},
                         os.path.join(args.out, "best.pt"))
        write_bundle({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict() if scheduler is not None else None,
                      "rng": _rng_state(dataset, generator), "epoch": epoch, "best": best,
                      "best_epoch": best_epoch, "history": history, "config": model.config,
                      "settings": settings, "split": split, "init": init_name},
                     os.path.join(args.out, "last.pt"))
        _write_log(os.path.join(args.out, "log.csv"), fields, history)
        if epoch - best_epoch >= args.patience:
            print(f"early stopping: no better validation {args.monitor} for "
                  f"{args.patience} epochs", file=sys.stderr)
            break

    total = time.perf_counter() - start
    if not best_epoch:
        return _fail("no epoch was trained")
    print(f"best epoch {best_epoch}, validation {args.monitor} {best:.4f}; "
          f"{total / 60:.1f} min in this run", file=sys.stderr)
    if args.export:
        state = torch.load(os.path.join(args.out, "best.pt"), map_location="cpu")
        bundle = {"state_dict": {k: v.cpu() for k, v in state["model"].items()},
                  "config": state["config"], "regions": list(regions),
                  "split": split, "best_epoch": best_epoch, "epochs_run": len(history),
                  "history": history, "seed": args.seed, "lr": args.lr,
                  "batch_size": args.batch_size, "augment": args.augment,
                  "tumor_share": args.tumor_share, "monitor": args.monitor,
                  "schedule": args.schedule,
                  "train_minutes": round(sum(h["seconds"] for h in history) / 60, 1),
                  "torch": torch.__version__, "device": device,
                  "init": init_name}
        os.makedirs(os.path.dirname(os.path.abspath(args.export)), exist_ok=True)
        write_bundle(bundle, args.export)   # LZMA-compressed when the name ends in .xz
        print(f"wrote {args.export}", file=sys.stderr)
    return 0


def _write_log(path, fields, history):
    """The log of every epoch so far, rewritten whole (a resumed run's log is complete)."""
    text = io.StringIO(newline="")
    csv.writer(text).writerows([fields] + [[h[f] for f in fields] for h in history])
    write_bytes_atomic(path, text.getvalue().encode())


if __name__ == "__main__":
    sys.exit(main())
