"""Slices for the baseline: per-case normalisation, 128x128 crops, split, augmentation.

Pipeline for one BraTS case (volumes ``(Z, Y, X)`` as :func:`pcnnseg.io.load_brats_case`
returns them; slices are taken along axis 0, the axial slices):

1. **Normalise per case** (:func:`normalize_case`): each sequence is mapped to [0, 1]
   by :func:`pcnnseg.preprocess.normalize_intensity` (1st and 99th percentiles of its
   brain voxels), 0 outside the brain; the four are stacked as FLAIR, T1, T1c, T2.
2. **Crop around the brain** (:func:`brain_box`, :func:`crop_resize`): a square box
   centred on the brain's in-plane bounding box (over the whole volume), of side
   :data:`FIELD` pixels (192, or the brain's extent plus a margin when larger), is
   cut out (zero-padded where it leaves the image) and resampled to
   :data:`SIZE` x :data:`SIZE` (128 x 128). A fixed field keeps the scale the same
   for every case: at BraTS's 1 mm, one network pixel is 1.5 mm. A plain 128 x 128
   crop would cut off the brain (BraTS 2018 brains span up to 178 mm).
3. **Skip empty slices**: slices with fewer than ``min_brain_pixels`` brain voxels.
4. **Split by patient** (:func:`split_cases`): whole cases go to training or
   validation, never single slices, so no patient is on both sides.
5. **Augment** (:func:`augment`): on a share of the training slices (40% by
   default), flips, shifts, Gaussian noise and elastic deformation.
"""
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from pcnnseg.io import BRATS_SEQUENCES, BratsCase
from pcnnseg.metrics import brats_regions
from pcnnseg.preprocess import brain_mask, nonempty_slices, normalize_intensity
from pcnnseg.validation import as_real_array

__all__ = ["SIZE", "FIELD", "REGIONS", "normalize_case", "brain_box", "crop_resize",
           "paste_back", "CaseSlices", "extract_slices", "split_cases", "augment",
           "SliceDataset"]

#: Side of the network's input slices, pixels.
SIZE = 128
#: Side of the square field cut around the brain before resampling to SIZE, pixels.
FIELD = 192
#: BraTS regions in the order of the network's outputs.
REGIONS = ("whole_tumor", "tumor_core", "enhancing")
_MARGIN = 8


def normalize_case(images):
    """Normalise the four sequences of a case to [0, 1] and find the brain.

    Parameters
    ----------
    images : dict of str to (Z, Y, X) or (H, W) array_like, or (4, ...) array_like
        The sequences FLAIR, T1, T1c, T2 (keys ``"flair", "t1", "t1ce", "t2"``),
        raw intensities, background exactly 0 (skull-stripped); or an array with
        them stacked in that order along axis 0.

    Returns
    -------
    stack : (4, Z, Y, X) or (4, H, W) ndarray of float32
        Each sequence mapped by its own brain's 1st and 99th percentiles to
        [0, 1], 0 outside the brain.
    brain : (Z, Y, X) or (H, W) ndarray of bool
        :func:`pcnnseg.preprocess.brain_mask` of the voxels non-zero in any
        sequence; all False for an all-zero input.

    Raises
    ------
    TypeError
        For a non-real dtype or a wrong container.
    ValueError
        For missing sequences, a wrong number of channels or dimensions, shapes
        that differ, or NaN / inf values.
    """
    if isinstance(images, dict):
        missing = [s for s in BRATS_SEQUENCES if s not in images]
        if missing:
            raise ValueError(f"images: expected the sequences {list(BRATS_SEQUENCES)}, "
                             f"missing {missing}")
        arrays = [as_real_array(images[s], f"images[{s!r}]", ndims=(2, 3))
                  for s in BRATS_SEQUENCES]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"images: expected the four sequences to share one shape, got "
                             f"{[a.shape for a in arrays]}")
        stack = np.stack(arrays)
    else:
        stack = as_real_array(images, "images", ndims=(3, 4))
        if stack.shape[0] != len(BRATS_SEQUENCES):
            raise ValueError(f"images: expected the {len(BRATS_SEQUENCES)} sequences "
                             f"(FLAIR, T1, T1c, T2) along axis 0, got shape {stack.shape}")
    nonzero = (stack != 0).any(axis=0)
    brain = brain_mask(nonzero) if nonzero.any() else nonzero
    out = np.zeros(stack.shape, dtype=np.float32)
    for k in range(stack.shape[0]):
        inside = brain & (stack[k] != 0)
        if inside.sum() < 2:
            continue
        try:
            out[k] = normalize_intensity(stack[k], inside)
        except ValueError:  # a constant sequence: no range, leave it at 0
            continue
        out[k][~brain] = 0.0
    return out, brain


def brain_box(brain, *, field=FIELD):
    """Square in-plane box around the brain: ``(y0, x0, side)``.

    Parameters
    ----------
    brain : (Z, Y, X) or (H, W) array_like of bool
        Brain mask; for a volume the box covers the brain in every slice.
    field : int, optional
        Minimum side, pixels. Default :data:`FIELD`.

    Returns
    -------
    (int, int, int)
        Top-left corner and side; the box may extend beyond the image. For an
        empty mask, a box of side ``field`` centred on the image.
    """
    mask = np.asarray(brain, dtype=bool)
    plane = mask.any(axis=0) if mask.ndim == 3 else mask
    h, w = plane.shape
    if plane.any():
        ys, xs = np.nonzero(plane.any(axis=1))[0], np.nonzero(plane.any(axis=0))[0]
        y_lo, y_hi, x_lo, x_hi = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    else:
        y_lo, y_hi, x_lo, x_hi = 0, h, 0, w
    side = int(max(field, y_hi - y_lo + 2 * _MARGIN, x_hi - x_lo + 2 * _MARGIN))
    y0 = int((y_lo + y_hi) // 2 - side // 2)
    x0 = int((x_lo + x_hi) // 2 - side // 2)
    return y0, x0, side


def _overlap(box, shape):
    """Where the box and an ``(H, W)`` image meet: ``(in_image, in_box)`` index
    tuples for ``(..., H, W)`` and ``(..., side, side)`` arrays, or None."""
    y0, x0, side = box
    h, w = shape
    ys, ye = max(y0, 0), min(y0 + side, h)
    xs, xe = max(x0, 0), min(x0 + side, w)
    if ys >= ye or xs >= xe:
        return None
    return ((Ellipsis, slice(ys, ye), slice(xs, xe)),
            (Ellipsis, slice(ys - y0, ye - y0), slice(xs - x0, xe - x0)))


def _cut(array, box):
    """``array[..., y0:y0+side, x0:x0+side]`` with zeros outside the image."""
    side = box[2]
    out = np.zeros(array.shape[:-2] + (side, side), dtype=np.float32)
    overlap = _overlap(box, array.shape[-2:])
    if overlap is not None:
        in_image, in_box = overlap
        out[in_box] = array[in_image]
    return out


def crop_resize(array, box, *, size=SIZE, mask=False):
    """Cut a square box out of slices and resample it to ``size x size``.

    Parameters
    ----------
    array : (..., H, W) ndarray
        Images (bilinear, antialiased resampling) or a binary mask (``mask=True``:
        bilinear, then thresholded at 0.5).
    box : (int, int, int)
        ``(y0, x0, side)`` from :func:`brain_box`.
    size : int, optional
        Output side. Default :data:`SIZE`.

    Returns
    -------
    (..., size, size) ndarray of float32 (of 0.0 / 1.0 for a mask)
    """
    cut = _cut(np.asarray(array, dtype=np.float32), box)
    lead = cut.shape[:-2]
    t = torch.from_numpy(cut.reshape((-1, 1) + cut.shape[-2:]))
    if cut.shape[-1] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=not mask and cut.shape[-1] > size)
    out = t.numpy().reshape(lead + (size, size))
    if mask:
        out = (out >= 0.5).astype(np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)


def paste_back(values, box, shape):
    """Inverse of :func:`crop_resize`: resample ``(..., s, s)`` to the box, place it.

    Parameters
    ----------
    values : (..., s, s) ndarray or tensor
        Network outputs (probabilities) on the resampled box.
    box : (int, int, int)
        ``(y0, x0, side)`` used for the crop.
    shape : (int, int)
        ``(H, W)`` of the original slices.

    Returns
    -------
    (..., H, W) ndarray of float32
        Bilinearly resampled values inside the box, 0 outside.
    """
    side = box[2]
    t = torch.as_tensor(values, dtype=torch.float32)
    lead = tuple(t.shape[:-2])
    t = t.reshape((-1, 1) + tuple(t.shape[-2:]))
    if t.shape[-1] != side:
        t = F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False)
    big = t.numpy().reshape(lead + (side, side))
    out = np.zeros(lead + tuple(shape), dtype=np.float32)
    overlap = _overlap(box, shape)
    if overlap is not None:
        in_image, in_box = overlap
        out[in_image] = big[in_box]
    return out


@dataclass(frozen=True)
class CaseSlices:
    """The network-ready slices of one case.

    Attributes
    ----------
    name : str
        Case name.
    images : (S, 4, SIZE, SIZE) ndarray of float32
        Normalised FLAIR, T1, T1c, T2.
    targets : (S, C, SIZE, SIZE) ndarray of float32 or None
        0 / 1 per region in ``regions`` order; None without labels.
    index : (S,) ndarray of int
        Index of each slice along the volume's axis 0.
    box : (int, int, int)
        ``(y0, x0, side)`` of the crop in the original slices.
    """

    name: str
    images: np.ndarray
    targets: np.ndarray | None
    index: np.ndarray
    box: tuple


def _check_regions(regions):
    if isinstance(regions, str):
        regions = (regions,)
    regions = tuple(regions)
    if not regions or any(r not in REGIONS for r in regions) or len(set(regions)) != len(regions):
        raise ValueError(f"regions: expected distinct names among {list(REGIONS)}, got "
                         f"{list(regions)}")
    return regions


def extract_slices(case, *, regions=("whole_tumor",), min_brain_pixels=100):
    """Normalise a case, crop it around the brain and keep its non-empty slices.

    Parameters
    ----------
    case : pcnnseg.io.BratsCase
        With all four sequences; labels optional.
    regions : sequence of str, optional
        Target regions among :data:`REGIONS`. Default whole tumor only.
    min_brain_pixels : int, optional
        Slices with fewer brain voxels are skipped; at least 1. Default 100.

    Returns
    -------
    CaseSlices
    """
    if not isinstance(case, BratsCase):
        raise TypeError(f"case: expected a pcnnseg.io.BratsCase, got {type(case).__name__}")
    regions = _check_regions(regions)
    stack, brain = normalize_case(case.images)
    if stack.ndim != 4:
        raise ValueError(f"case: expected (Z, Y, X) volumes, got {stack.shape[1:]}")
    box = brain_box(brain)
    keep = nonempty_slices(brain, min_pixels=min_brain_pixels)
    images = crop_resize(stack[:, keep], box).transpose(1, 0, 2, 3)
    targets = None
    if case.labels is not None:
        reg = brats_regions(case.labels[keep])
        targets = np.stack([crop_resize(reg[r], box, mask=True) for r in regions], axis=1)
    return CaseSlices(name=case.name, images=np.ascontiguousarray(images), targets=targets,
                      index=keep, box=box)


def split_cases(names, *, val_fraction=0.2, seed=0, groups=None):
    """Split case names into training and validation, by patient.

    Parameters
    ----------
    names : sequence of str
        Case (patient) names, at least 2.
    val_fraction : float, optional
        Share of cases for validation, in (0, 1); rounded to the nearest count
        and at least 1. Default 0.2 (the 80/20 split).
    seed : int, optional
        Seed of the shuffle. Default 0.
    groups : dict of str to str, optional
        Group of each case (e.g. its collection). The split is then made within
        each group, ``val_fraction`` of each (at least one case of every group
        with two or more), so that validation holds cases of every group.
        Default: one group.

    Returns
    -------
    train, val : list of str
        Disjoint, each sorted.
    """
    names = list(names)
    if len(names) < 2:
        raise ValueError(f"names: expected at least 2 cases to split, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("names: expected distinct case names")
    if not isinstance(val_fraction, numbers.Real) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    if groups is None:
        groups = dict.fromkeys(names, "")
    missing = [n for n in names if n not in groups]
    if missing:
        raise ValueError(f"groups: no group for the case(s) {missing}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for group in sorted({str(groups[n]) for n in names}):
        members = sorted(n for n in names if str(groups[n]) == group)
        n_val = min(len(members) - 1, max(1, int(round(len(members) * val_fraction))))
        order = [str(n) for n in rng.permutation(members)]
        val += order[:n_val]
        train += order[n_val:]
    if not val:
        raise ValueError("groups: every group holds a single case; nothing left to validate on")
    return sorted(train), sorted(val)


def _elastic(shape, rng, alpha, sigma):
    """Smooth random displacement field (Simard et al. 2003), pixels."""
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), sigma) * alpha
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), sigma) * alpha
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return np.array([yy + dy, xx + dx])


def augment(image, target, rng, *, max_shift=12, noise=0.03, alpha=30.0, sigma=5.0):
    """Random flips, shift, Gaussian noise and elastic deformation of one slice.

    Each of the four transforms is applied with probability 1/2 (independently).

    Parameters
    ----------
    image : (4, H, W) ndarray of float32
    target : (C, H, W) ndarray of float32, 0 / 1
    rng : numpy.random.Generator
    max_shift : int, optional
        Largest shift per axis, pixels (zeros shifted in).
    noise : float, optional
        Standard deviation of the additive Gaussian noise (images in [0, 1]).
    alpha, sigma : float, optional
        Elastic deformation: displacement scale and smoothing, pixels.

    Returns
    -------
    image, target : new arrays of the same shapes and dtypes; targets stay 0 / 1.
    """
    image = image.copy()
    target = target.copy()
    if rng.random() < 0.5:
        axis = int(rng.integers(1, 3))
        image = np.flip(image, axis).copy()
        target = np.flip(target, axis).copy()
    if rng.random() < 0.5:
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        image = ndimage.shift(image, (0, dy, dx), order=0, mode="constant")
        target = ndimage.shift(target, (0, dy, dx), order=0, mode="constant")
    if rng.random() < 0.5:
        coords = _elastic(image.shape[1:], rng, alpha, sigma)
        image = np.stack([ndimage.map_coordinates(c, coords, order=1, mode="constant")
                          for c in image]).astype(np.float32)
        target = np.stack([ndimage.map_coordinates(c, coords, order=1, mode="constant")
                           for c in target]) >= 0.5
        target = target.astype(np.float32)
    if rng.random() < 0.5:
        image = image + rng.normal(0.0, noise, image.shape).astype(np.float32)
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(target,
                                                                              dtype=np.float32)


class SliceDataset(torch.utils.data.Dataset):
    """Training or validation slices, augmented on the fly.

    Parameters
    ----------
    images : (S, 4, H, W) ndarray of float32
    targets : (S, C, H, W) ndarray of float32
    augment_prob : float, optional
        Probability that a slice is augmented when drawn. Default 0 (none);
        training uses 0.4.
    seed : int, optional
        Seed of the augmentation draws; with a single-process loader the whole
        sequence is reproducible.

    Notes
    -----
    ``dataset[i]`` is a pair of tensors ``(4, H, W)`` and ``(C, H, W)``.
    """

    def __init__(self, images, targets, *, augment_prob=0.0, seed=0):
        if len(images) != len(targets):
            raise ValueError(f"targets: expected {len(images)} slices like images, got "
                             f"{len(targets)}")
        if not 0.0 <= augment_prob <= 1.0:
            raise ValueError(f"augment_prob: expected a probability in [0, 1], got "
                             f"{augment_prob}")
        self.images = images
        self.targets = targets
        self.augment_prob = float(augment_prob)
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image, target = self.images[i], self.targets[i]
        if self.augment_prob > 0 and self.rng.random() < self.augment_prob:
            image, target = augment(image, target, self.rng)
        return torch.from_numpy(np.array(image)), torch.from_numpy(np.array(target))
