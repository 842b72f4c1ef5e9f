"""Training slices in one compact file, for training where the MRI is not.

::

    python -m cnn_baseline.slice_file DATA_DIR [DATA_DIR ...] -o FILE.npz.xz
        [--regions whole_tumor [tumor_core enhancing]]

Extracting the slices of 22 cases (:func:`cnn_baseline.data.extract_slices`:
normalisation, crop, resampling) takes about a minute and needs the NIfTI files
(210 MB for the dev data); the slices themselves, stored as below, take 48 MB.
Written once, the file lets ``python -m cnn_baseline.train --slices FILE`` train on
a machine that holds neither the data nor SimpleITK (a GPU machine, say), with the
same patient-level split as from the folders.

Format: an ``.npz`` archive (no pickled objects), LZMA-compressed as a whole.

- ``images``: ``(S, 4, 128, 128)`` uint8, the normalised intensities in [0, 1]
  quantised to steps of 1/255 (:func:`quantize_images`; the largest error, 0.002,
  is far below the training's augmentation noise of SD 0.03);
- ``targets``: the ``(S, C, 128, 128)`` binary targets, bit-packed;
- ``case_of_slice``: ``(S,)`` index into ``cases``; ``cases`` and ``collections``:
  each case's name and collection (the basename of its data folder);
- ``regions``: the target regions, in the order of the targets' axis 1;
- ``version``: the format's version, :data:`VERSION`.
"""
import argparse
import io
import lzma
import os
import pathlib
import sys
import zipfile

import numpy as np

from cnn_baseline.data import REGIONS, SIZE, _check_regions
from pcnnseg.io import write_bytes_atomic

__all__ = ["VERSION", "quantize_images", "write_slice_file", "read_slice_file", "main"]

#: Version of the file format.
VERSION = 1
_KEYS = ("version", "images", "targets", "case_of_slice", "cases", "collections", "regions")


def quantize_images(images):
    """Normalised images in [0, 1] as uint8 steps of 1/255 (rounded, clipped)."""
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_slice_file(path, cases, regions):
    """Write the slices of several cases to one LZMA-compressed ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
        Written atomically (nothing is left if writing fails).
    cases : sequence of (str, str, ndarray, ndarray)
        Per case: name, collection, images ``(S_i, 4, 128, 128)`` float in [0, 1]
        and targets ``(S_i, C, 128, 128)`` of 0 / 1, as
        :func:`cnn_baseline.data.extract_slices` returns them.
    regions : sequence of str
        The ``C`` target regions, among :data:`cnn_baseline.data.REGIONS`.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    ValueError
        For no cases, repeated names, wrong shapes, targets that are not 0 / 1,
        or non-finite images.
    """
    regions = _check_regions(regions)
    cases = list(cases)
    if not cases:
        raise ValueError("cases: expected at least one case")
    names = [str(c[0]) for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"cases: expected distinct names, got {names}")
    images, targets = [], []
    for name, _, img, tgt in cases:
        img, tgt = np.asarray(img), np.asarray(tgt)
        if img.ndim != 4 or img.shape[1:] != (4, SIZE, SIZE):
            raise ValueError(f"case {name!r}: expected images (S, 4, {SIZE}, {SIZE}), got "
                             f"{img.shape}")
        if tgt.shape != (len(img), len(regions), SIZE, SIZE):
            raise ValueError(f"case {name!r}: expected targets "
                             f"{(len(img), len(regions), SIZE, SIZE)}, got {tgt.shape}")
        if not np.isfinite(img).all():
            raise ValueError(f"case {name!r}: images hold NaN or inf")
        if not np.isin(tgt, (0, 1)).all():
            raise ValueError(f"case {name!r}: targets must be 0 / 1")
        images.append(quantize_images(img))
        targets.append(tgt.astype(bool))
    case_of_slice = np.concatenate([np.full(len(t), k, dtype=np.int32)
                                    for k, t in enumerate(targets)])
    buffer = io.BytesIO()
    np.savez(buffer, version=np.int32(VERSION), images=np.concatenate(images),
             targets=np.packbits(np.concatenate(targets), axis=None),
             case_of_slice=case_of_slice, cases=np.array(names),
             collections=np.array([str(c[1]) for c in cases]), regions=np.array(regions))
    data = lzma.compress(buffer.getvalue(), preset=6)
    write_bytes_atomic(path, data)
    return len(data)


def read_slice_file(path):
    """Read a slice file: the slices of each case, as training uses them.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    cases : dict of str to (ndarray, ndarray)
        Per case name, in the file's order: images ``(S_i, 4, 128, 128)`` float32
        (the stored uint8 / 255) and targets ``(S_i, C, 128, 128)`` float32 0 / 1.
    collections : dict of str to str
        Each case's collection.
    regions : tuple of str

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If it is not a slice file of this version (corrupt, truncated, other format).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no slice file {str(path)!r}")
    try:
        with np.load(io.BytesIO(lzma.decompress(path.read_bytes())),
                     allow_pickle=False) as archive:
            missing = [k for k in _KEYS if k not in archive.files]
            if missing:
                raise ValueError(f"missing {missing}")
            arrays = {k: archive[k] for k in _KEYS}
    except (lzma.LZMAError, zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"path: {str(path)!r} is not a readable slice file ({err})") from None
    if int(arrays["version"]) != VERSION:
        raise ValueError(f"path: {str(path)!r} has format version {int(arrays['version'])}, "
                         f"this reader knows {VERSION}")
    regions = tuple(str(r) for r in arrays["regions"])
    images, index = arrays["images"], arrays["case_of_slice"]
    shape = (len(images), len(regions), SIZE, SIZE)
    if (images.ndim != 4 or images.shape[1:] != (4, SIZE, SIZE) or images.dtype != np.uint8
            or index.shape != (len(images),)
            or arrays["targets"].size * 8 < int(np.prod(shape))):
        raise ValueError(f"path: {str(path)!r} holds arrays of inconsistent shapes")
    targets = np.unpackbits(arrays["targets"], count=int(np.prod(shape))).reshape(shape)
    names = [str(n) for n in arrays["cases"]]
    cases = {}
    for k, name in enumerate(names):
        rows = index == k
        cases[name] = (images[rows].astype(np.float32) / np.float32(255.0),
                       targets[rows].astype(np.float32))
    collections = dict(zip(names, (str(c) for c in arrays["collections"])))
    return cases, collections, regions


def _parser():
    p = argparse.ArgumentParser(prog="python -m cnn_baseline.slice_file",
                                description="Extract the training slices of BraTS case "
                                            "folders into one compact file.")
    p.add_argument("data_dirs", nargs="+", metavar="DATA_DIR",
                   help="folders of BraTS case folders (one per collection)")
    p.add_argument("-o", "--output", required=True, help="file to write (.npz.xz)")
    p.add_argument("--regions", nargs="+", default=list(REGIONS), choices=REGIONS)
    return p


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    from cnn_baseline.data import extract_slices
    from pcnnseg.io import find_brats_cases, load_brats_case

    args = _parser().parse_args(argv)
    regions = tuple(args.regions)
    cases = []
    try:
        for root in args.data_dirs:
            collection = os.path.basename(os.path.normpath(root))
            for d in find_brats_cases(root):
                s = extract_slices(load_brats_case(d), regions=regions)
                if s.targets is None:
                    raise ValueError(f"case {d.name!r} has no labels")
                cases.append((d.name, collection, s.images, s.targets))
        size = write_slice_file(args.output, cases, regions)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(cases)} cases, "
          f"{sum(len(c[2]) for c in cases)} slices, {size / 2**20:.1f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
