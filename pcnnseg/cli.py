"""The ``pcnnseg`` command."""
import argparse
import json
import sys

import numpy as np

import pcnnseg
from pcnnseg import phantom
from pcnnseg.io import read_image, write_png
from pcnnseg.signature import binary_entropy
from pcnnseg.simulate import DEFAULT_N_ITER

_MODELS = {"spcnn": None, "pcnn": pcnnseg.PCNN, "icm": pcnnseg.ICM, "scm": pcnnseg.SCM}


def _load_slice(path, slice_index, seed):
    """Return a (H, W) slice and a description of where it came from."""
    if path is None:
        image, _ = phantom.make_slice(seed=seed)
        return image, f"synthetic phantom slice (seed {seed})"
    array = read_image(path).array
    if array.ndim == 2:
        return array, path
    if array.ndim != 3:
        raise ValueError(f"IMAGE: expected a 2-D or 3-D image, got shape {array.shape}")
    z = array.shape[0] // 2 if slice_index is None else slice_index
    if not -array.shape[0] <= z < array.shape[0]:
        raise ValueError(f"--slice: expected an index in [0, {array.shape[0]}), got {z}")
    return array[z], f"{path} slice {z % array.shape[0]}"


def fire_time_picture(fire_time, n_iter):
    """Fire-time map as uint8: early pulses bright, never-pulsing pixels black."""
    picture = np.zeros(fire_time.shape, dtype=np.uint8)
    fired = fire_time >= 0
    picture[fired] = np.round(255 * (n_iter - fire_time[fired]) / n_iter).astype(np.uint8)
    return picture


def _signature(args):
    image, source = _load_slice(args.image, args.slice, args.seed)
    factory = _MODELS[args.model]
    model = None if factory is None else factory()
    result = pcnnseg.pulse(image, model, n_iter=args.n_iter)
    counts = result.counts
    fraction = counts / image.size
    entropy = binary_entropy(fraction)
    if args.fire_time:
        write_png(args.fire_time, fire_time_picture(result.fire_time, args.n_iter))
    if args.json:
        json.dump({"source": source, "shape": list(image.shape), "model": repr(result.model),
                   "counts": counts.tolist(), "normalized": fraction.tolist(),
                   "entropy": entropy.tolist()}, sys.stdout, indent=2)
        print()
        return 0
    print(f"# {source}, shape {image.shape}")
    print(f"# model {result.model!r}")
    print(f"{'k':>4} {'G[k]':>9} {'G[k]/HW':>9} {'entropy':>8}")
    for k in range(args.n_iter):
        print(f"{k:>4} {counts[k]:>9d} {fraction[k]:>9.5f} {entropy[k]:>8.4f}")
    if args.fire_time:
        print(f"# fire-time map written to {args.fire_time}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="pcnnseg",
        description="Pulse-coupled neural network segmentation of medical images.")
    parser.add_argument("--version", action="version", version=f"pcnnseg {pcnnseg.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sig = sub.add_parser(
        "signature", help="time signature G[k] of a slice",
        description="Print the PCNN time signature of a slice: pulses per iteration, "
                    "normalised by the pixel count, and their entropy. With no IMAGE, "
                    "a synthetic phantom slice.")
    sig.add_argument("image", nargs="?", metavar="IMAGE",
                     help="2-D or 3-D image (NIfTI, MetaImage, NRRD, PNG, TIFF, ...)")
    sig.add_argument("--slice", type=int, default=None,
                     help="slice index of a 3-D image (default: the middle one)")
    sig.add_argument("--model", choices=sorted(_MODELS), default="spcnn",
                     help="model (default: spcnn, parameters set from the image)")
    sig.add_argument("--n-iter", type=int, default=DEFAULT_N_ITER,
                     help=f"iterations (default {DEFAULT_N_ITER})")
    sig.add_argument("--seed", type=int, default=0, help="phantom seed when no IMAGE")
    sig.add_argument("--fire-time", metavar="PNG", help="also write the fire-time map as PNG")
    sig.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sig.set_defaults(run=_signature)
    return parser


def main(argv=None):
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"pcnnseg {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
